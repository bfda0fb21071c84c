/*
 * mixq_eltwise_core.h - elementwise add and average pool cores, written once for all bitwidths.
 * Neither needs scratch (the add's input tables and the pool's block sums live on the stack).
 * Arithmetic follows TFLite's int8 ADD and AVERAGE_POOL_2D (see the parameter structs in
 * mixq_kernels.h); the SIMD paths and their bounds are described in kernels/README.md, "Average
 * pool and add".
 */
#ifndef MIXQ_ELTWISE_CORE_H
#define MIXQ_ELTWISE_CORE_H

#include "mixq_internal.h"
#include "mixq_requant_row.h"

/* SMMLAR: (acc 2^32 + a b + 2^31) >> 32, the high word of a rounded multiply-accumulate. */
MIXQ_INLINE int32_t mixq_mmlar(int32_t a, int32_t b, int32_t acc) {
#if MIXQ_DSP
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return (int32_t)((int64_t)(((uint64_t)(uint32_t)acc << 32) + (uint64_t)((int64_t)a * b) + 0x80000000u) >> 32);
#endif
}

/* MultiplyByQuantizedMultiplier(x, m, shift) + zp for |x| <= xb, by form:
 *   0  m = 0 taken as no requantization (average pool): x + zp;
 *   1  m >= 2^30, shift -r <= -1: SMMLAR(x, m2, x + c2 - [x < 0]) >> r with m2 = 2m - 2^32,
 *      c2 = 2^(r-1) + zp 2^r (the fused conv routines' form, kernels/README.md "Requantization"),
 *      exact when xb + |c2| + 2 < 2^31;
 *   2  m >= 2^30, shift s >= 0: SMMLAR(x << s, m2, (x << s) + zp), exact when xb 2^s + |zp| < 2^31;
 *   3  otherwise: mixq_rq_apply + zp (one 64-bit multiply-accumulate). */
typedef struct {
    int32_t form, m2, c2, sh; /* sh: r (form 1) or s (form 2); c2 = zp in form 2 */
    mixq_rq rq;               /* form 3 */
    int32_t zp;
} mixq_qf;

MIXQ_INLINE void mixq_qf_init(mixq_qf *q, int32_t m, int32_t shift, int32_t zp, int64_t xb, int32_t zero_is_none) {
    const int64_t azp = zp < 0 ? -(int64_t)zp : zp;
    q->zp = zp;
    q->m2 = (int32_t)(2u * (uint32_t)m);
    q->c2 = 0;
    q->sh = 0;
    q->rq = mixq_rq_make(m, shift);
    q->form = 3;
    if (m == 0 && zero_is_none) {
        q->form = 0;
    } else if (m >= (1 << 30) && shift <= -1) {
        const int64_t c2 = ((int64_t)1 << (-shift - 1)) + (int64_t)zp * ((int64_t)1 << -shift);
        if (xb + (c2 < 0 ? -c2 : c2) + 2 < ((int64_t)1 << 31)) {
            q->form = 1;
            q->sh = -shift;
            q->c2 = (int32_t)c2;
        }
    } else if (m >= (1 << 30) && shift >= 0 && (xb << shift) + azp < ((int64_t)1 << 31)) {
        q->form = 2;
        q->sh = shift;
        q->c2 = zp;
    }
}

MIXQ_INLINE int32_t mixq_qf_apply(int32_t form, const mixq_qf *q, int32_t x) {
    if (form == 0) {
        return x + q->zp;
    }
    if (form == 1) {
        return mixq_mmlar(x, q->m2, x + q->c2 + (x >> 31)) >> q->sh;
    }
    if (form == 2) {
        const int32_t xs = (int32_t)((uint32_t)x << q->sh);
        return mixq_mmlar(xs, q->m2, xs + q->c2);
    }
    return mixq_rq_apply(x, &q->rq) + q->zp;
}

/* The output clamp: the output range by saturation, a narrower one also by min / max. */
MIXQ_INLINE int32_t mixq_out_clamp(int32_t OB, int32_t v, int32_t full, int32_t lo, int32_t hi) {
    v = mixq_sat(OB, v);
    return full ? v : mixq_clamp(v, lo, hi);
}

MIXQ_INLINE int32_t mixq_add_buffer_size(int32_t IB1, int32_t IB2, int32_t OB, const mixq_dims *dims) {
    (void)dims;
    return (mixq_bits_ok(IB1) && mixq_bits_ok(IB2) && mixq_bits_ok(OB)) ? 0 : -1;
}

/* Four consecutive elements (from element i, a multiple of 4) of a packed tensor, in the low
 * 4 * IB bits; exactly their bytes are read. */
MIXQ_INLINE uint32_t mixq_load4(int32_t IB, const uint8_t *t, int32_t i) {
    const uint8_t *p = t + (i * IB >> 3);
    if (IB == 8) {
        return mixq_load_u32(p);
    }
    return IB == 4 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : p[0];
}

/* Input j (0..3) of a group of four (mixq_load4), scaled: MBQM((x - zp) << ls, m, shift); 8 bits
 * by form 1 ((x - zp) 2^ls by one multiply-accumulate; R = 0: shift 0, one SMMLAR), sub-byte inputs
 * from the table t of every input value. */
MIXQ_INLINE int32_t mixq_add_in(int32_t IB, int32_t R, uint32_t v, int32_t j, const mixq_qf *q, int32_t scale,
                                int32_t off, const int32_t *t) {
    if (IB == 8) {
        const int32_t a = ((int32_t)(v << (24 - 8 * j)) >> 24) * scale - off;
        return R == 0 ? mixq_mmlar(a, q->m2, a) : mixq_mmlar(a, q->m2, a + q->c2 + (a >> 31)) >> q->sh;
    }
    return t[(v >> (j * IB)) & ((1u << IB) - 1u)];
}

/* Elements [0, count & ~3) of the fast path, four at a time; R1, R2: 0 when that 8-bit input's
 * shift is 0 (mixq_add_in). */
MIXQ_INLINE void mixq_add_groups(int32_t IB1, int32_t IB2, int32_t OB, int32_t R1, int32_t R2, const uint8_t *in1,
                                 const uint8_t *in2, uint8_t *out, int32_t count, const mixq_qf *q1, const mixq_qf *q2,
                                 const mixq_qf *qo, const int32_t *t1, const int32_t *t2, int32_t ls, int32_t off1,
                                 int32_t off2, int32_t full, int32_t lo, int32_t hi) {
    for (int32_t i = 0; i + 4 <= count; i += 4) {
        const uint32_t v1 = mixq_load4(IB1, in1, i), v2 = mixq_load4(IB2, in2, i);
        uint32_t o = 0;
        for (int32_t j = 0; j < 4; j++) {
            const int32_t a = mixq_add_in(IB1, R1, v1, j, q1, 1 << ls, off1, t1);
            const int32_t b = mixq_add_in(IB2, R2, v2, j, q2, 1 << ls, off2, t2);
            const int32_t v = mixq_out_clamp(OB, mixq_qf_apply(1, qo, a + b), full, lo, hi);
            o |= ((uint32_t)v & ((1u << OB) - 1u)) << (j * OB);
        }
        uint8_t *dst = out + (i * OB >> 3);
        if (OB == 8) {
            mixq_store_u32(dst, o);
        } else if (OB == 4) {
            dst[0] = (uint8_t)o;
            dst[1] = (uint8_t)(o >> 8);
        } else {
            dst[0] = (uint8_t)o;
        }
    }
}

/* Largest |MBQM((x - zp) << ls, m, shift)| over the inputs of b bits (MBQM is monotone for m >= 0). */
MIXQ_INLINE int64_t mixq_add_bound(int32_t b, int32_t zp, int32_t ls, int32_t m, int32_t shift) {
    int64_t lo = mixq_mbqm((mixq_act_lo(b) - zp) * (1 << ls), m, shift);
    int64_t hi = mixq_mbqm((mixq_act_hi(b) - zp) * (1 << ls), m, shift);
    lo = lo < 0 ? -lo : lo;
    hi = hi < 0 ? -hi : hi;
    return lo > hi ? lo : hi;
}

/* TFLite's ADD: out = clamp(MBQM(a1 + a2, mo, so) + ozp), a_k = MBQM((x_k - zp_k) << ls, m_k, s_k).
 * Fast path (the output scaled by the SMMLAR form 1 of mixq_qf, 8-bit inputs by form 1 or with
 * shift 0; the usual TFLite case: shifts <= 0, multipliers >= 2^30): groups of four elements (one
 * load per input: a word, a halfword or a byte; one store), 8-bit inputs scaled per element (a
 * multiply, then 2 ADD, SMMLAR, ASR; shift 0: one SMMLAR), sub-byte inputs through a table of their
 * 16 / 4 scaled values; the last count % 4 elements, and calls off the fast path, element by
 * element with the general multiply. */
MIXQ_INLINE mixq_status mixq_add_run(int32_t IB1, int32_t IB2, int32_t OB, const mixq_context *ctx,
                                     const mixq_add_params *p, const mixq_dims *dims, const void *in1_v,
                                     const void *in2_v, void *out_v) {
    (void)ctx;
    if (!mixq_bits_ok(IB1) || !mixq_bits_ok(IB2) || !mixq_bits_ok(OB) || p == 0 || dims == 0 || in1_v == 0 ||
        in2_v == 0 || out_v == 0) {
        return MIXQ_ERR_ARG;
    }
    if (dims->n <= 0 || dims->h <= 0 || dims->w <= 0 || dims->c <= 0 || p->act_min > p->act_max ||
        p->act_min < mixq_act_lo(OB) || p->act_max > mixq_act_hi(OB) || p->left_shift < 0 || p->left_shift > 20) {
        return MIXQ_ERR_ARG;
    }
    if (p->in1_mult < 0 || p->in2_mult < 0 || p->out_mult < 0 || p->in1_shift < -31 || p->in1_shift > 30 ||
        p->in2_shift < -31 || p->in2_shift > 30 || p->out_shift < -31 || p->out_shift > 30) {
        return MIXQ_ERR_ARG;
    }
    const uint8_t *in1 = (const uint8_t *)in1_v;
    const uint8_t *in2 = (const uint8_t *)in2_v;
    uint8_t *out = (uint8_t *)out_v;
    const int32_t count = dims->n * dims->h * dims->w * dims->c;
    const int32_t ls = p->left_shift, zp1 = p->in1_zp, zp2 = p->in2_zp;
    const int32_t lo = p->act_min, hi = p->act_max, full = lo == mixq_act_lo(OB) && hi == mixq_act_hi(OB);
    mixq_qf q1, q2, qo;
    mixq_qf_init(&q1, p->in1_mult, p->in1_shift, 0, (int64_t)255 << ls, 0);
    mixq_qf_init(&q2, p->in2_mult, p->in2_shift, 0, (int64_t)255 << ls, 0);
    mixq_qf_init(&qo, p->out_mult, p->out_shift, p->output_zp,
                 mixq_add_bound(IB1, zp1, ls, p->in1_mult, p->in1_shift) +
                     mixq_add_bound(IB2, zp2, ls, p->in2_mult, p->in2_shift),
                 0);
    int32_t i = 0;
    /* 8-bit inputs: a right shift (form 1) or shift 0 (form 2, s = 0, zp = 0: one SMMLAR) */
    const int32_t z1 = IB1 == 8 && q1.form == 2 && q1.sh == 0, z2 = IB2 == 8 && q2.form == 2 && q2.sh == 0;
    if ((IB1 != 8 || q1.form == 1 || z1) && (IB2 != 8 || q2.form == 1 || z2) && qo.form == 1) {
        int32_t t1[16], t2[16]; /* sub-byte inputs: the scaled value of each input value */
        for (int32_t v = 0; v < 16; v++) {
            t1[v] = IB1 == 8 || v >> IB1 ? 0 : mixq_mbqm((v - zp1) * (1 << ls), p->in1_mult, p->in1_shift);
            t2[v] = IB2 == 8 || v >> IB2 ? 0 : mixq_mbqm((v - zp2) * (1 << ls), p->in2_mult, p->in2_shift);
        }
        const int32_t off1 = zp1 * (1 << ls), off2 = zp2 * (1 << ls);
#define MIXQ_ADD_GROUPS(r1, r2) \
    mixq_add_groups(IB1, IB2, OB, r1, r2, in1, in2, out, count, &q1, &q2, &qo, t1, t2, ls, off1, off2, full, lo, hi)
        if (z1 && z2) {
            MIXQ_ADD_GROUPS(0, 0);
        } else if (z1) {
            MIXQ_ADD_GROUPS(0, 1);
        } else if (z2) {
            MIXQ_ADD_GROUPS(1, 0);
        } else {
            MIXQ_ADD_GROUPS(1, 1);
        }
#undef MIXQ_ADD_GROUPS
        i = count & ~3;
    }
    const mixq_rq r1 = mixq_rq_make(p->in1_mult, p->in1_shift);
    const mixq_rq r2 = mixq_rq_make(p->in2_mult, p->in2_shift);
    const mixq_rq ro = mixq_rq_make(p->out_mult, p->out_shift);
    for (; i < count; i++) {
        const int32_t a = (mixq_get_act(in1, i, IB1) - zp1) * (1 << ls);
        const int32_t b = (mixq_get_act(in2, i, IB2) - zp2) * (1 << ls);
        const int32_t v = mixq_rq_apply(mixq_rq_apply(a, &r1) + mixq_rq_apply(b, &r2), &ro) + p->output_zp;
        mixq_put_act(out, i, OB, mixq_clamp(v, lo, hi));
    }
    return MIXQ_OK;
}

MIXQ_INLINE int32_t mixq_pool_buffer_size(int32_t IB, int32_t OB, const mixq_pool_params *p, const mixq_dims *in,
                                          const mixq_dims *out) {
    (void)p;
    (void)in;
    (void)out;
    return (mixq_bits_ok(IB) && mixq_bits_ok(OB)) ? 0 : -1;
}

/* TFLite's rounded division of a window sum by its count (half away from zero):
 * (sum +- count / 2) / count with truncating division; h = count / 2 < count, so sum = 0 gives 0
 * with either sign. */
MIXQ_INLINE int32_t mixq_round_div(int32_t sum, int32_t count, int32_t h) {
    const int32_t t = sum >> 31; /* 0 or -1: h or -h */
    return (sum + ((h ^ t) - t)) / count;
}

/* ---- average pool ----------------------------------------------------------------------------
 * Pixels whose channels start on a byte (C * IB % 8 == 0) run in channel blocks of whole 32-bit
 * words: 4 words at 8 and 4 bits (16 / 32 channels), 2 at 2 bits (32 channels), then single
 * words; the channels of a last partial word go element by element. Per block and output pixel the
 * window's input words are summed per channel (mixq_pool_sums), then each channel is finished in
 * C: minus count * zp, rounded division, requantization, zero point, clamp, packed store. */

#define MIXQ_POOL_MAX_CH 32 /* channels of one block */

/* Words of a full block and channels per word. */
MIXQ_INLINE int32_t mixq_pool_words(int32_t IB) { return IB == 2 ? 2 : 4; }
MIXQ_INLINE int32_t mixq_pool_word_ch(int32_t IB) { return 32 / IB; }

#if MIXQ_DSP
MIXQ_INLINE uint32_t mixq_sxtab16_ror8(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

MIXQ_INLINE uint32_t mixq_uxtab16_ror8(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm__("uxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* Pixels between two flushes of the register accumulators: 8 bits, 16-bit lanes of SXTAB16
 * (|sum| <= 256 * 128); 4 and 2 bits, byte lanes of masked words (17 * 15, 85 * 3 <= 255). */
MIXQ_INLINE int32_t mixq_pool_period(int32_t IB) { return IB == 8 ? 256 : (IB == 4 ? 17 : 85); }

/* A full block (mixq_pool_words) in assembly, out of line (it takes 14 registers): n >= 1 pixels pb
 * bytes apart from p into the accumulators a (see mixq_pool_add). Per pixel: 8 bits 4 LDR + 8
 * SXTAB16 (15 instructions with the pointer and the count, 16 channels); 4 bits 4 LDR + 8 AND +
 * 8 ADD (23, 32 channels); 2 bits 2 LDR + 8 AND + 8 ADD (21, 32 channels). */
MIXQ_NOINLINE static void mixq_pool_add_block(int32_t IB, const uint8_t *p, int32_t n, int32_t pb, uint32_t *a) {
    uint32_t t, u, a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5], a6 = a[6], a7 = a[7];
    const uint32_t m = IB == 4 ? 0x0F0F0F0Fu : 0x03030303u;
#define MIXQ_POOL_LOOP(body)                                                                             \
    __asm__ volatile("1:\n\t" body "add %[p], %[p], %[pb]\n\t"                                           \
                     "subs %[n], %[n], #1\n\t"                                                           \
                     "bne 1b\n\t"                                                                        \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4), [a5] "+r"(a5), \
                       [a6] "+r"(a6), [a7] "+r"(a7), [p] "+r"(p), [n] "+r"(n), [t] "=&r"(t), [u] "=&r"(u)   \
                     : [pb] "r"(pb), [m] "r"(m)                                                          \
                     : "cc", "memory")
/* the word at byte offset off of the pixel: 8 bits into the lanes of a<k> and a<k1>; 4 bits the
 * low and high nibbles into a<k> and a<k1>; 2 bits crumbs 0..3 of each byte into a<k>..a<k3> */
#define MIXQ_POOL_W8(k, k1, off)                                                                         \
    "ldr %[t], [%[p], #" off "]\n\t"                                                                     \
    "sxtab16 %[a" k "], %[a" k "], %[t]\n\t"                                                             \
    "sxtab16 %[a" k1 "], %[a" k1 "], %[t], ror #8\n\t"
#define MIXQ_POOL_MASKED(k, shift)                                                                       \
    "and %[u], %[m], %[t]" shift "\n\t"                                                                  \
    "add %[a" k "], %[a" k "], %[u]\n\t"
#define MIXQ_POOL_W4(k, k1, off)                                                                         \
    "ldr %[t], [%[p], #" off "]\n\t" MIXQ_POOL_MASKED(k, "") MIXQ_POOL_MASKED(k1, ", lsr #4")
#define MIXQ_POOL_W2(k, k1, k2, k3, off)                                                                 \
    "ldr %[t], [%[p], #" off "]\n\t" MIXQ_POOL_MASKED(k, "") MIXQ_POOL_MASKED(k1, ", lsr #2")            \
        MIXQ_POOL_MASKED(k2, ", lsr #4") MIXQ_POOL_MASKED(k3, ", lsr #6")
    if (IB == 8) {
        MIXQ_POOL_LOOP(MIXQ_POOL_W8("0", "1", "0") MIXQ_POOL_W8("2", "3", "4") MIXQ_POOL_W8("4", "5", "8")
                           MIXQ_POOL_W8("6", "7", "12"));
    } else if (IB == 4) {
        MIXQ_POOL_LOOP(MIXQ_POOL_W4("0", "1", "0") MIXQ_POOL_W4("2", "3", "4") MIXQ_POOL_W4("4", "5", "8")
                           MIXQ_POOL_W4("6", "7", "12"));
    } else {
        MIXQ_POOL_LOOP(MIXQ_POOL_W2("0", "1", "2", "3", "0") MIXQ_POOL_W2("4", "5", "6", "7", "4"));
    }
#undef MIXQ_POOL_LOOP
#undef MIXQ_POOL_W8
#undef MIXQ_POOL_MASKED
#undef MIXQ_POOL_W4
#undef MIXQ_POOL_W2
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
    a[4] = a4;
    a[5] = a5;
    a[6] = a6;
    a[7] = a7;
}

/* Add n >= 1 pixels (pb bytes apart, from p) of W words to the register accumulators a:
 *   8 bits:  a[2j] += SXTB16(x_j) (channels 4j, 4j+2), a[2j+1] += SXTB16(x_j ror 8) (4j+1, 4j+3);
 *   4 bits:  a[2j] += x_j & 0x0F0F0F0F (8j + 0, 2, 4, 6), a[2j+1] += (x_j >> 4) & 0x0F0F0F0F (odd);
 *   2 bits:  a[4j+i] += (x_j >> 2i) & 0x03030303 (channels 16j + i + 4b in byte b). */
MIXQ_INLINE void mixq_pool_add(int32_t IB, int32_t W, const uint8_t *p, int32_t n, int32_t pb, uint32_t *a) {
    if (W == mixq_pool_words(IB)) {
        mixq_pool_add_block(IB, p, n, pb, a);
        return;
    }
    do {
        for (int32_t j = 0; j < W; j++) {
            const uint32_t x = mixq_load_u32(p + 4 * j);
            if (IB == 8) {
                a[2 * j] = (uint32_t)__sxtab16((int16x2_t)a[2 * j], (int8x4_t)x);
                a[2 * j + 1] = mixq_sxtab16_ror8(a[2 * j + 1], x);
            } else if (IB == 4) {
                a[2 * j] += x & 0x0F0F0F0Fu;
                a[2 * j + 1] += (x >> 4) & 0x0F0F0F0Fu;
            } else {
                a[4 * j] += x & 0x03030303u;
                a[4 * j + 1] += (x >> 2) & 0x03030303u;
                a[4 * j + 2] += (x >> 4) & 0x03030303u;
                a[4 * j + 3] += (x >> 6) & 0x03030303u;
            }
        }
        p += pb;
    } while (--n > 0);
}

/* Sub-byte: the byte accumulators a into the 16-bit lanes l (UXTAB16 of bytes 0, 2 and 1, 3):
 * l[2k] = (byte 0, byte 2) and l[2k+1] = (byte 1, byte 3) of a[k]. */
MIXQ_INLINE void mixq_pool_bytes_to_lanes(int32_t nacc, uint32_t *a, uint32_t *l) {
    for (int32_t k = 0; k < nacc; k++) {
        l[2 * k] = (uint32_t)__uxtab16((uint16x2_t)l[2 * k], (uint8x4_t)a[k]);
        l[2 * k + 1] = mixq_uxtab16_ror8(l[2 * k + 1], a[k]);
        a[k] = 0;
    }
}

/* Channel of lane word w, half h (0 low, 1 high) of a block (see mixq_pool_add). */
MIXQ_INLINE int32_t mixq_pool_lane_ch(int32_t IB, int32_t w, int32_t h) {
    if (IB == 8) { /* a[2j] = (4j, 4j+2), a[2j+1] = (4j+1, 4j+3) */
        return (w >> 1) * 4 + (w & 1) + 2 * h;
    }
    if (IB == 4) { /* a[k] -> l[2k] = bytes (0, 2), l[2k+1] = bytes (1, 3); a[2j + o] byte b = 8j + o + 2b */
        const int32_t k = w >> 1, b = (w & 1) + 2 * h;
        return (k >> 1) * 8 + (k & 1) + 2 * b;
    }
    { /* a[4j + i] byte b = 16j + i + 4b */
        const int32_t k = w >> 1, b = (w & 1) + 2 * h;
        return (k >> 2) * 16 + (k & 3) + 4 * b;
    }
}

/* The 16-bit lanes v (nl words; signed at 8 bits) stored into the channel sums s (fresh) or added
 * to them; v cleared. */
MIXQ_INLINE void mixq_pool_lanes_to_sums(int32_t IB, int32_t nl, uint32_t *v, int32_t *s, int32_t fresh) {
    for (int32_t w = 0; w < nl; w++) {
        const int32_t lo = IB == 8 ? (int32_t)(int16_t)v[w] : (int32_t)(v[w] & 0xFFFFu);
        const int32_t hi = IB == 8 ? (int32_t)v[w] >> 16 : (int32_t)(v[w] >> 16);
        const int32_t c0 = mixq_pool_lane_ch(IB, w, 0), c1 = mixq_pool_lane_ch(IB, w, 1);
        s[c0] = fresh ? lo : s[c0] + lo;
        s[c1] = fresh ? hi : s[c1] + hi;
        v[w] = 0;
    }
}
#endif

/* s[0 .. W * 32 / IB) = the window sums of the block (raw x): rows window rows of cols pixels
 * (rows, cols >= 1), from p (the block's first byte in the window's top-left pixel), pixels pb
 * bytes apart, rows rb. */
MIXQ_INLINE void mixq_pool_sums(int32_t IB, int32_t W, const uint8_t *p, int32_t rows, int32_t cols, int32_t pb,
                                int32_t rb, int32_t *s) {
#if MIXQ_DSP
    /* register accumulators, flushed every mixq_pool_period pixels: at 8 bits into s; at 4 and 2
     * bits into 16-bit lanes (at most 15 * 4369 and 3 * 21845 per lane: 257 flushes), which go
     * into s every 257 flushes and at the end */
    const int32_t nacc = IB == 2 ? 4 * W : 2 * W, period = mixq_pool_period(IB);
    uint32_t a[8], l[16];
    for (int32_t k = 0; k < nacc; k++) {
        a[k] = 0;
        if (IB != 8) {
            l[2 * k] = l[2 * k + 1] = 0;
        }
    }
    int32_t room = period, flushes = 0, fresh = 1;
    if (cols * pb == rb) { /* the window spans whole input rows: one run of rows * cols pixels */
        cols *= rows;
        rows = 1;
    }
    for (int32_t y = 0; y < rows; y++, p += rb) {
        const uint8_t *q = p;
        int32_t left = cols;
        while (left > 0) {
            const int32_t run = left < room ? left : room;
            mixq_pool_add(IB, W, q, run, pb, a);
            q += run * pb;
            left -= run;
            room -= run;
            if (room == 0) {
                room = period;
                if (IB == 8) {
                    mixq_pool_lanes_to_sums(8, nacc, a, s, fresh);
                    fresh = 0;
                } else {
                    mixq_pool_bytes_to_lanes(nacc, a, l);
                    if (++flushes == 257) {
                        mixq_pool_lanes_to_sums(IB, 2 * nacc, l, s, fresh);
                        fresh = 0;
                        flushes = 0;
                    }
                }
            }
        }
    }
    if (IB == 8) {
        mixq_pool_lanes_to_sums(8, nacc, a, s, fresh);
    } else {
        mixq_pool_bytes_to_lanes(nacc, a, l);
        mixq_pool_lanes_to_sums(IB, 2 * nacc, l, s, fresh);
    }
#else
    const int32_t nch = W * mixq_pool_word_ch(IB);
    for (int32_t ch = 0; ch < nch; ch++) {
        s[ch] = 0;
    }
    for (int32_t y = 0; y < rows; y++, p += rb) {
        const uint8_t *q = p;
        for (int32_t x = 0; x < cols; x++, q += pb) {
            for (int32_t ch = 0; ch < nch; ch++) {
                s[ch] += mixq_get_act(q, ch, IB);
            }
        }
    }
#endif
}

/* How a window sum becomes an output: the centred sum x = sum - count * zp (nz), a = round(x /
 * count) (|a| <= 255), then the requantization (mixq_qf; multiplier 0: none) and the clamp. */
typedef struct {
    int32_t count, half, nz; /* of the output pixel */
    mixq_qf q;
    int32_t lo, hi, full; /* full: the clamp is the output range */
} mixq_pool_fin;

MIXQ_INLINE void mixq_pool_fin_init(int32_t OB, const mixq_pool_params *p, mixq_pool_fin *f) {
    f->lo = p->act_min;
    f->hi = p->act_max;
    f->full = f->lo == mixq_act_lo(OB) && f->hi == mixq_act_hi(OB);
    mixq_qf_init(&f->q, p->multiplier, p->multiplier != 0 ? p->shift : 0, p->output_zp, 255, 1);
}

MIXQ_INLINE int32_t mixq_pool_value(int32_t OB, int32_t form, const mixq_pool_fin *f, int32_t sum) {
    const int32_t a = mixq_round_div(sum - f->nz, f->count, f->half);
    return mixq_out_clamp(OB, mixq_qf_apply(form, &f->q, a), f->full, f->lo, f->hi);
}

/* Outputs of n channels (sums s) from element e of out, with the form a constant; whole bytes when
 * e starts a byte and n fills bytes, else element by element. */
MIXQ_INLINE void mixq_pool_store_form(int32_t OB, int32_t form, const mixq_pool_fin *f, const int32_t *s, int32_t n,
                                      uint8_t *out, int32_t e) {
    const int32_t per = 8 / OB;
    if (((e | n) & (per - 1)) == 0) {
        uint8_t *dst = out + e / per;
        for (int32_t ch = 0; ch < n; ch += per) {
            uint32_t byte = 0;
            for (int32_t i = 0; i < per; i++) {
                byte |= ((uint32_t)mixq_pool_value(OB, form, f, s[ch + i]) & ((1u << OB) - 1u)) << (i * OB);
            }
            *dst++ = (uint8_t)byte;
        }
        return;
    }
    for (int32_t ch = 0; ch < n; ch++) {
        mixq_put_act(out, e + ch, OB, mixq_pool_value(OB, form, f, s[ch]));
    }
}

MIXQ_INLINE void mixq_pool_store(int32_t OB, const mixq_pool_fin *f, const int32_t *s, int32_t n, uint8_t *out,
                                 int32_t e) {
    if (f->q.form == 0) {
        mixq_pool_store_form(OB, 0, f, s, n, out, e);
    } else if (f->q.form == 1) {
        mixq_pool_store_form(OB, 1, f, s, n, out, e);
    } else if (f->q.form == 2) {
        mixq_pool_store_form(OB, 2, f, s, n, out, e);
    } else {
        mixq_pool_store_form(OB, 3, f, s, n, out, e);
    }
}

MIXQ_INLINE mixq_status mixq_pool_run(int32_t IB, int32_t OB, const mixq_context *ctx, const mixq_pool_params *p,
                                      const mixq_dims *in_dims, const void *in_v, const mixq_dims *out_dims,
                                      void *out_v) {
    (void)ctx;
    if (!mixq_bits_ok(IB) || !mixq_bits_ok(OB) || p == 0 || in_dims == 0 || out_dims == 0 || in_v == 0 ||
        out_v == 0) {
        return MIXQ_ERR_ARG;
    }
    const int32_t n = in_dims->n, ih = in_dims->h, iw = in_dims->w, c = in_dims->c;
    const int32_t oh = out_dims->h, ow = out_dims->w;
    const int32_t fh = p->filter.h, fw = p->filter.w, sh = p->stride.h, sw = p->stride.w;
    if (n <= 0 || ih <= 0 || iw <= 0 || c <= 0 || oh <= 0 || ow <= 0 || out_dims->c != c || out_dims->n != n ||
        fh <= 0 || fw <= 0 || sh <= 0 || sw <= 0 || p->padding.h < 0 || p->padding.w < 0 || p->act_min > p->act_max ||
        p->act_min < mixq_act_lo(OB) || p->act_max > mixq_act_hi(OB) || p->multiplier < 0 ||
        (p->multiplier != 0 && (p->shift < -31 || p->shift > 30))) {
        return MIXQ_ERR_ARG;
    }
    const uint8_t *in = (const uint8_t *)in_v;
    uint8_t *out = (uint8_t *)out_v;
    mixq_pool_fin f;
    mixq_pool_fin_init(OB, p, &f);
    /* whole words of a pixel's channels (pixels on byte boundaries), then element by element */
    const int32_t pb = (c * IB) >> 3, aligned = ((c * IB) & 7) == 0;
    const int32_t wch = mixq_pool_word_ch(IB), nwords = aligned ? pb >> 2 : 0, full = mixq_pool_words(IB);
    int32_t s[MIXQ_POOL_MAX_CH];
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < oh; oy++) {
            const int32_t y0 = oy * sh - p->padding.h;
            const int32_t ys = mixq_max_i32(y0, 0), ye = mixq_min_i32(y0 + fh, ih);
            for (int32_t ox = 0; ox < ow; ox++) {
                const int32_t x0 = ox * sw - p->padding.w;
                const int32_t xs = mixq_max_i32(x0, 0), xe = mixq_min_i32(x0 + fw, iw);
                const int32_t rows = mixq_max_i32(ye - ys, 0), cols = mixq_max_i32(xe - xs, 0);
                f.count = mixq_max_i32(rows * cols, 1);
                f.half = f.count / 2;
                f.nz = rows * cols * p->input_zp;
                const int32_t obase = ((b * oh + oy) * ow + ox) * c;
                const int32_t pix0 = (b * ih + ys) * iw + xs; /* top-left pixel of the window */
                int32_t word = 0;
                while (word < nwords) { /* blocks of whole words */
                    const int32_t w = nwords - word >= full ? full : 1, nch = w * wch;
                    if (rows == 0 || cols == 0) { /* an empty window (padding only) */
                        for (int32_t i = 0; i < nch; i++) {
                            s[i] = 0;
                        }
                    } else if (w == full) {
                        mixq_pool_sums(IB, full, in + pix0 * pb + 4 * word, rows, cols, pb, iw * pb, s);
                    } else {
                        mixq_pool_sums(IB, 1, in + pix0 * pb + 4 * word, rows, cols, pb, iw * pb, s);
                    }
                    mixq_pool_store(OB, &f, s, nch, out, obase + word * wch);
                    word += w;
                }
                for (int32_t ch = nwords * wch; ch < c; ch++) { /* the rest, element by element */
                    int32_t sum = 0;
                    for (int32_t y = ys; y < ye; y++) {
                        for (int32_t x = xs; x < xe; x++) {
                            sum += mixq_get_act(in, ((b * ih + y) * iw + x) * c + ch, IB);
                        }
                    }
                    mixq_pool_store(OB, &f, &sum, 1, out, obase + ch);
                }
            }
        }
    }
    return MIXQ_OK;
}

#endif /* MIXQ_ELTWISE_CORE_H */
