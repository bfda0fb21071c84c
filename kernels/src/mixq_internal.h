/*
 * mixq_internal.h - helpers shared by the kernel cores: requantization (TFLite double rounding),
 * access to packed sub-byte activations, and decoding of the kernel weight layout.
 * Everything here is force-inlined; the generated variants instantiate the cores with constant
 * bitwidths so that the compiler removes every bitwidth test.
 */
#ifndef MIXQ_INTERNAL_H
#define MIXQ_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "mixq_kernels.h"

#if defined(__GNUC__)
#define MIXQ_INLINE static inline __attribute__((always_inline))
#define MIXQ_NOINLINE __attribute__((noinline, unused))
#else
#define MIXQ_INLINE static inline
#define MIXQ_NOINLINE
#endif

/* The DSP path's inline assembly needs the optimizer (register allocation of up to 13 operands,
 * immediates folded through inlining): an unoptimized (-O0) build takes the portable path. */
#if defined(__ARM_FEATURE_DSP) && !defined(MIXQ_NO_DSP) && defined(__OPTIMIZE__)
#define MIXQ_DSP 1
#include <arm_acle.h>
#else
#define MIXQ_DSP 0
#endif

#if MIXQ_DSP
/* ---- packed SIMD helpers (Cortex-M DSP extension) ------------------------------------------ */

/* SXTB16 of the operand rotated right by 8 bits: lanes (byte1, byte3), sign extended. */
MIXQ_INLINE uint32_t mixq_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

MIXQ_INLINE uint32_t mixq_ror(uint32_t x, uint32_t r) { return r == 0 ? x : (x >> r) | (x << (32u - r)); }

MIXQ_INLINE int32_t mixq_smlad(uint32_t a, uint32_t b, int32_t acc) {
    return __smlad((int16x2_t)a, (int16x2_t)b, acc);
}

#endif

/* Byte of four 2-bit activations -> SMLAD lane word (mixq_tables.c). */
extern const uint32_t mixq_a2_lane_table[256];

/* Kernel families sharing the convolution core. */
#define MIXQ_KIND_CONV2D 0
#define MIXQ_KIND_POINTWISE 1
#define MIXQ_KIND_FC 2

/* ---- integer helpers ----------------------------------------------------------------------- */

MIXQ_INLINE int32_t mixq_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
MIXQ_INLINE int32_t mixq_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }

MIXQ_INLINE int32_t mixq_bits_ok(int32_t b) { return b == 8 || b == 4 || b == 2; }

/* Inclusive range of an activation of b bits: int8 at 8 bits, unsigned below. */
MIXQ_INLINE int32_t mixq_act_lo(int32_t b) { return b == 8 ? -128 : 0; }
MIXQ_INLINE int32_t mixq_act_hi(int32_t b) { return b == 8 ? 127 : (1 << b) - 1; }

MIXQ_INLINE uint32_t mixq_load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

MIXQ_INLINE void mixq_store_u32(void *p, uint32_t v) { memcpy(p, &v, 4); }

/* ---- requantization: TFLite MultiplyByQuantizedMultiplier with double rounding ------------- */

/* SaturatingRoundingDoublingHighMul. TFLite's (ab + nudge) / 2^31 with a sign-dependent nudge and
 * truncating division equals floor((ab + 2^30) / 2^31) for every product, i.e. an arithmetic shift. */
MIXQ_INLINE int32_t mixq_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

MIXQ_INLINE int32_t mixq_rdbpot(int32_t x, int32_t exponent) {
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

MIXQ_INLINE int32_t mixq_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return mixq_rdbpot(mixq_srdhm(shifted, multiplier), right);
}

MIXQ_INLINE int32_t mixq_requant(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp, int32_t lo,
                                 int32_t hi) {
    int32_t v = mixq_mbqm(acc, multiplier, shift) + zp;
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* The same MultiplyByQuantizedMultiplier in one 64-bit multiply-accumulate, exact for every
 * multiplier >= 0 (see kernels/README.md, "Requantization"): with r = -shift >= 1,
 *   MBQM(x) = (x * m + 2^30 + 2^(30 + r) - [x < 0] * 2^31) >> (31 + r),
 * whose high word shifted right by r - 1 is the result; with shift >= 0 (r = 0),
 *   MBQM(x) = ((x << shift) * m + 2^30) >> 31. */
typedef struct {
    int32_t m;    /* multiplier, >= 0 */
    uint32_t blo; /* low and high words of 2^30 + 2^(30 + r) (2^30 when shift >= 0) */
    int32_t bhi;
    int32_t sh; /* r - 1 when shift < 0, else -1 - shift */
} mixq_rq;

MIXQ_INLINE mixq_rq mixq_rq_make(int32_t multiplier, int32_t shift) {
    mixq_rq q;
    q.m = multiplier;
    if (shift >= 0) {
        q.blo = 1u << 30;
        q.bhi = 0;
        q.sh = -1 - shift;
    } else {
        const uint64_t b = ((uint64_t)1 << 30) + ((uint64_t)1 << (30 - shift));
        q.blo = (uint32_t)b;
        q.bhi = (int32_t)(b >> 32);
        q.sh = -shift - 1;
    }
    return q;
}

/* shift <= -2 (q->sh >= 1): the low word of B is 2^30 and B - 2^31 borrows, so
 * B - [acc < 0] 2^31 = (bhi + (acc >> 31)) : (2^30 | (acc & 2^31)). */
MIXQ_INLINE int32_t mixq_rq_apply_r2(int32_t acc, int32_t m, int32_t bhi, int32_t sh) {
    const uint32_t lo = ((uint32_t)acc & 0x80000000u) | 0x40000000u;
    const int32_t hi = bhi + (acc >> 31);
    const int64_t t = (int64_t)acc * m + (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo);
    return (int32_t)(t >> 32) >> sh;
}

/* The right-shift case (shift < 0, q->sh >= 0) alone. */
MIXQ_INLINE int32_t mixq_rq_apply_right(int32_t acc, const mixq_rq *q) {
    /* B - [acc < 0] 2^31: flip the top bit of the low word, borrow from the high word when that
     * bit was clear */
    const uint32_t neg = (uint32_t)(acc >> 31);
    const uint32_t lo = q->blo ^ (neg & 0x80000000u);
    const int32_t hi = q->bhi + (int32_t)(neg & (uint32_t)((int32_t)~q->blo >> 31));
    const int64_t t = (int64_t)acc * q->m + (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo);
    return (int32_t)(t >> 32) >> q->sh;
}

MIXQ_INLINE int32_t mixq_rq_apply(int32_t acc, const mixq_rq *q) {
    if (q->sh >= 0) {
        return mixq_rq_apply_right(acc, q);
    }
    {
        const int32_t x = (int32_t)((uint32_t)acc << (-1 - q->sh));
        return (int32_t)(((int64_t)x * q->m + ((int64_t)1 << 30)) >> 31);
    }
}

MIXQ_INLINE int32_t mixq_clamp(int32_t v, int32_t lo, int32_t hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* ---- packed activations ------------------------------------------------------------------ */

/* Element idx of a packed activation tensor: int8 at 8 bits, unsigned below. */
MIXQ_INLINE int32_t mixq_get_act(const uint8_t *base, int32_t idx, int32_t bits) {
    if (bits == 8) {
        return (int32_t)(int8_t)base[idx];
    }
    if (bits == 4) {
        return (base[idx >> 1] >> ((idx & 1) << 2)) & 0xF;
    }
    return (base[idx >> 2] >> ((idx & 3) << 1)) & 0x3;
}

/* Write element idx (value already inside the bitwidth's range); sub-byte: read-modify-write. */
MIXQ_INLINE void mixq_put_act(uint8_t *base, int32_t idx, int32_t bits, int32_t v) {
    if (bits == 8) {
        base[idx] = (uint8_t)v;
    } else if (bits == 4) {
        const int32_t sh = (idx & 1) << 2;
        uint8_t *p = base + (idx >> 1);
        *p = (uint8_t)((*p & ~(0xF << sh)) | ((v & 0xF) << sh));
    } else {
        const int32_t sh = (idx & 3) << 1;
        uint8_t *p = base + (idx >> 2);
        *p = (uint8_t)((*p & ~(0x3 << sh)) | ((v & 0x3) << sh));
    }
}

/* ---- weight kernel layout (see README "Weight layout") ----------------------------------- */

MIXQ_INLINE int32_t mixq_row_len(int32_t k, int32_t w_bits) {
    const int32_t m = w_bits == 8 ? 4 : 16;
    return (k + m - 1) / m * m;
}

MIXQ_INLINE int32_t mixq_row_bytes(int32_t k, int32_t w_bits) { return mixq_row_len(k, w_bits) * w_bits / 8; }

/* Bytes of conv2d / pointwise / fully connected weights (channel count rounded up to even). */
MIXQ_INLINE int32_t mixq_filter_bytes(int32_t k, int32_t c_out, int32_t w_bits) {
    return mixq_row_bytes(k, w_bits) * ((c_out + 1) & ~1);
}

/* Bit position of element t (0..15) inside a 32-bit word of 2-bit weights. Lane word j = ror(x, r_j)
 * & 0x30033003 with r = {0, 2, 8, 10} holds u(4j+1) at bit 0, u(4j) at 12, u(4j+3) at 16 and
 * u(4j+2) at 28 (u = w + 2). */
MIXQ_INLINE int32_t mixq_w2_bitpos(int32_t t) {
    static const uint8_t pos[16] = {12, 0, 28, 16, 14, 2, 30, 18, 20, 8, 4, 24, 22, 10, 6, 26};
    return pos[t];
}

/* Byte offset of the 32-bit word holding weight k of output channel c. Rows are interleaved by
 * channel pairs, one 32-bit word at a time: [c0 word0, c1 word0, c0 word1, c1 word1, ...] (an odd
 * last channel is paired with a zero row). */
MIXQ_INLINE int32_t mixq_weight_word(int32_t row_bytes, int32_t c, int32_t k, int32_t w_bits) {
    const int32_t per_word = 32 / w_bits;
    return (c >> 1) * 2 * row_bytes + (k / per_word) * 8 + (c & 1) * 4;
}

/* Weight k of output channel c in kernel layout (signed value). */
MIXQ_INLINE int32_t mixq_get_weight(const uint8_t *filter, int32_t row_bytes, int32_t c, int32_t k, int32_t w_bits) {
    const uint8_t *word = filter + mixq_weight_word(row_bytes, c, k, w_bits);
    if (w_bits == 8) {
        return (int32_t)(int8_t)word[k & 3];
    }
    if (w_bits == 4) {
        const int32_t t = k & 7;
        const int32_t v = (word[t >> 1] >> ((t & 1) << 2)) & 0xF;
        return v >= 8 ? v - 16 : v;
    }
    {
        const int32_t pos = mixq_w2_bitpos(k & 15);
        return ((word[pos >> 3] >> (pos & 7)) & 3) - 2;
    }
}

/* Depthwise weights [KH, KW, C] packed plainly (signed two's complement). */
MIXQ_INLINE int32_t mixq_get_dw_weight(const uint8_t *w, int32_t idx, int32_t w_bits) {
    if (w_bits == 8) {
        return (int32_t)(int8_t)w[idx];
    }
    if (w_bits == 4) {
        const int32_t v = (w[idx >> 1] >> ((idx & 1) << 2)) & 0xF;
        return v >= 8 ? v - 16 : v;
    }
    {
        const int32_t v = (w[idx >> 2] >> ((idx & 3) << 1)) & 0x3;
        return v >= 2 ? v - 4 : v;
    }
}

#endif /* MIXQ_INTERNAL_H */
