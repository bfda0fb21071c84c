/*
 * mixq_depthwise_dsp.h - Cortex-M DSP building blocks of the depthwise core (mixq_depthwise_core.h):
 * one pass of 4 channels over all filter taps (int16 lanes, SMLABB/SMLATT, accumulators in
 * registers) and the requantization of one accumulator with a single SMMLAR.
 *
 * A pass reads its constants from a stream the core writes once per call (scratch), one record of
 * 20 + 2 KT words per pass of 4 channels (a, b, c, d):
 *   [0..4)            accumulator preload of a, b, c, d: (bias - zp sum(w)) * 2^e
 *   [4 + 2t, 6 + 2t)  tap t: lane words (w_a, w_c) and (w_b, w_d), int16 weights scaled by 2^e
 *   [4 + 2KT + 4j..)  requantization of channel j: m, rz, r, nm (see mixq_dw_rq)
 * with e = 1 + max(shift, 0): the accumulator holds 2^e x for the exact sum x, so that
 * SMMLAR(2^e x, m, .) = SRDHM(x << max(shift, 0), m) (see kernels/README.md, "Depthwise").
 */
#ifndef MIXQ_DEPTHWISE_DSP_H
#define MIXQ_DEPTHWISE_DSP_H

#include "mixq_internal.h"

/* How a pass turns the loaded activations into the lane words (x_a, x_c), (x_b, x_d). */
#define MIXQ_DW_W8 0   /* 8-bit word of channels a..a+3: SXTB16 and SXTB16 ror 8 */
#define MIXQ_DW_WORD 1 /* sub-byte word: (v >> S0) & mask and (v >> S1) & mask */
#define MIXQ_DW_HALF 2 /* 4-bit halfword of 4 channels: h | h << 8, masks */
#define MIXQ_DW_BYTE 3 /* 2-bit byte of 4 channels: b | b << 12, masks */

/* Words of one pass record in the stream. */
MIXQ_INLINE int32_t mixq_dw_rec_words(int32_t kt) { return 20 + 2 * kt; }

#if MIXQ_DSP

/* multiply-accumulate of one tap: lane words in X (x_a, x_c) and xo (x_b, x_d) */
#define MIXQ_DW_MAC(X)                                 \
    "ldrd %[wa], %[wb], [%[wp]], #8\n\t"               \
    "smlabb %[s0], %[" X "], %[wa], %[s0]\n\t"         \
    "smlatt %[s2], %[" X "], %[wa], %[s2]\n\t"         \
    "smlabb %[s1], %[xo], %[wb], %[s1]\n\t"            \
    "smlatt %[s3], %[xo], %[wb], %[s3]\n\t"

#define MIXQ_DW_LANES_W8(X) "sxtb16 %[xo], %[" X "], ror #8\n\t" "sxtb16 %[" X "], %[" X "]\n\t"
#define MIXQ_DW_LANES_WORD0(X) "and %[xo], %[m], %[" X "], lsr %[S1]\n\t" "and %[" X "], %[m], %[" X "]\n\t"
#define MIXQ_DW_LANES_WORD(X) "and %[xo], %[m], %[" X "], lsr %[S1]\n\t" "and %[" X "], %[m], %[" X "], lsr %[S0]\n\t"
#define MIXQ_DW_LANES_HALF(X)                                                                    \
    "orr %[" X "], %[" X "], %[" X "], lsl #8\n\t" "and %[xo], %[m], %[" X "], lsr #4\n\t"       \
    "and %[" X "], %[m], %[" X "]\n\t"
#define MIXQ_DW_LANES_BYTE(X)                                                                    \
    "orr %[" X "], %[" X "], %[" X "], lsl #12\n\t" "and %[xo], %[m], %[" X "], lsr #2\n\t"      \
    "and %[" X "], %[m], %[" X "]\n\t"

/* two taps: offsets (o1, o2) of the list, their activations, lanes, 8 multiply-accumulates */
#define MIXQ_DW_PAIR(LD, LANES)                                                                          \
    "ldrd %[o1], %[o2], [%[pp]], #8\n\t" LD " %[o1], [%[b], %[o1]]\n\t" LD " %[o2], [%[b], %[o2]]\n\t"   \
    LANES("o1") MIXQ_DW_MAC("o1") LANES("o2") MIXQ_DW_MAC("o2")
#define MIXQ_DW_ONE(LD, LANES) \
    "ldr %[o1], [%[pp]], #4\n\t" LD " %[o1], [%[b], %[o1]]\n\t" LANES("o1") MIXQ_DW_MAC("o1")

#define MIXQ_DW_OUTS                                                                                        \
    [o1] "=&r"(o1), [o2] "=&r"(o2), [xo] "=&r"(xo), [wa] "=&r"(wa), [wb] "=&r"(wb), [s0] "+r"(s0),          \
        [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [pp] "+r"(pp), [wp] "+r"(wp)

/* Statement running a pair (P = MIXQ_DW_PAIR) or a single tap (P = MIXQ_DW_ONE) of the pass kind. */
#define MIXQ_DW_STEP(P)                                                                                      \
    do {                                                                                                     \
        uint32_t o1, o2, xo, wa, wb;                                                                         \
        if (kind == MIXQ_DW_W8) {                                                                            \
            __asm__(P("ldr", MIXQ_DW_LANES_W8) : MIXQ_DW_OUTS : [b] "r"(base) : "memory");                   \
        } else if (kind == MIXQ_DW_WORD && S0 == 0) {                                                        \
            __asm__(P("ldr", MIXQ_DW_LANES_WORD0) : MIXQ_DW_OUTS                                             \
                    : [b] "r"(base), [m] "r"(mask), [S1] "i"(S0 + IB) : "memory");                           \
        } else if (kind == MIXQ_DW_WORD) {                                                                   \
            __asm__(P("ldr", MIXQ_DW_LANES_WORD) : MIXQ_DW_OUTS                                              \
                    : [b] "r"(base), [m] "r"(mask), [S0] "i"(S0), [S1] "i"(S0 + IB) : "memory");             \
        } else if (kind == MIXQ_DW_HALF) {                                                                   \
            __asm__(P("ldrh", MIXQ_DW_LANES_HALF) : MIXQ_DW_OUTS : [b] "r"(base), [m] "r"(mask) : "memory"); \
        } else {                                                                                             \
            __asm__(P("ldrb", MIXQ_DW_LANES_BYTE) : MIXQ_DW_OUTS : [b] "r"(base), [m] "r"(mask) : "memory"); \
        }                                                                                                    \
        (void)o2;                                                                                            \
    } while (0)

/* One pass of 4 channels over the KT taps of one output pixel: offs = byte offsets of the taps
 * from base (base = the pass's first byte in the top-left tap pixel; padding taps point to the
 * zero-point pixel), *wpp = the pass record (advanced past its tap words), acc = the 4 sums. */
MIXQ_INLINE void mixq_dw_taps(int32_t IB, int32_t kind, int32_t S0, int32_t KT, const int32_t *offs, uint32_t base,
                              const uint32_t **wpp, int32_t *acc) {
    int32_t s0, s1, s2, s3;
    const int32_t *pp = offs;
    const uint32_t *wp = *wpp;
    const uint32_t mask = IB == 4 ? 0x000F000Fu : 0x00030003u;
    (void)mask;
    __asm__("ldrd %[s0], %[s1], [%[wp]], #8\n\t"
            "ldrd %[s2], %[s3], [%[wp]], #8"
            : [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3), [wp] "+r"(wp)
            :
            : "memory");
    int32_t t = 0;
    if (KT == 9) {
#pragma GCC unroll 4
        for (; t + 1 < KT; t += 2) {
            MIXQ_DW_STEP(MIXQ_DW_PAIR);
        }
    } else {
        for (; t + 1 < KT; t += 2) {
            MIXQ_DW_STEP(MIXQ_DW_PAIR);
        }
    }
    if (t < KT) {
        MIXQ_DW_STEP(MIXQ_DW_ONE);
    }
    *wpp = wp;
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}

/* Requantization of one accumulator a = 2^e x with the record words (m, rz, r, nm) at rq + OFF bytes:
 *   floor((SRDHM(x << max(shift, 0), m) + rz - [x < 0]) / 2^r),  r = max(-shift, 0),
 * nm = -1 when r >= 1 (the sign term of RDBPOT), 0 when r = 0; rz = 2^(r-1) + z 2^r folds the
 * rounding offset and an integer z (the output zero point) in; SMMLAR adds rz - [x < 0] to the
 * high word of a m + 2^31 (exact: the core checks that the sum stays inside int32). FAST: every
 * shift of the call is negative (nm = -1 always): the sign term is added without the mask. */
#define MIXQ_DW_RQ(FAST, ACC, RQP, OFF)                                                                          \
    do {                                                                                                      \
        uint32_t m_, rz_, r_, nm_;                                                                            \
        if (FAST) {                                                                                           \
            __asm__("ldrd %[m], %[rz], [%[rq], %[o0]]\n\t"                                                    \
                    "ldr %[r], [%[rq], %[o2]]\n\t"                                                            \
                    "add %[rz], %[rz], %[a], asr #31\n\t"                                                     \
                    "smmlar %[a], %[a], %[m], %[rz]\n\t"                                                      \
                    "asr %[a], %[a], %[r]"                                                                    \
                    : [a] "+r"(ACC), [m] "=&r"(m_), [rz] "=&r"(rz_), [r] "=&r"(r_)                              \
                    : [rq] "r"(RQP), [o0] "i"(OFF), [o2] "i"((OFF) + 8)                                        \
                    : "memory");                                                                              \
            (void)nm_;                                                                                        \
        } else {                                                                                              \
            __asm__("ldrd %[m], %[rz], [%[rq], %[o0]]\n\t"                                                    \
                    "ldrd %[r], %[nm], [%[rq], %[o2]]\n\t"                                                    \
                    "and %[nm], %[nm], %[a], asr #31\n\t"                                                     \
                    "add %[rz], %[rz], %[nm]\n\t"                                                             \
                    "smmlar %[a], %[a], %[m], %[rz]\n\t"                                                      \
                    "asr %[a], %[a], %[r]"                                                                    \
                    : [a] "+r"(ACC), [m] "=&r"(m_), [rz] "=&r"(rz_), [r] "=&r"(r_), [nm] "=&r"(nm_)             \
                    : [rq] "r"(RQP), [o0] "i"(OFF), [o2] "i"((OFF) + 8)                                        \
                    : "memory");                                                                              \
        }                                                                                                     \
    } while (0)

/* ---- packed-field path: 4- and 2-bit activations x 4- and 2-bit weights, 3x3 filters ----------
 * (kernels/README.md, "Depthwise", "Three taps per SMLAD"). Per input row and output column q the
 * core writes, for each channel, the activation word X = (a_p + a_{p+1} 2^11, a_{p+2}) (p = the
 * window's first column, unsigned activations); per channel the stream holds, for each filter row,
 * the weight word (w_1 + w_0 2^11, w_2 2^11), so one SMLAD adds the row's three products to the
 * field [11, 22) of the accumulator. Stream record of a channel: 8 words
 *   w_row0, w_row1, w_row2, pre, k2 = 2 (bias - zp sum(w) - FOFF), m, rz, r
 * (requantization as MIXQ_DW_RQ, every shift negative). pre = LOFF + FOFF 2^11 keeps both fields
 * non-negative, so UBFX(acc, 11, 11) = F + FOFF exactly. */
MIXQ_INLINE int32_t mixq_dwp_rec_words(void) { return 8; }

/* One channel: three rows, extraction, requantization, saturation; then PACK (a string) puts the
 * result in place. r4, r5, r6, r8 hold the record words (ascending registers for LDM). */
#define MIXQ_DWP_CH(SAT, PACK)                                                                    \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "ldr %[x], [%[p0]], #4\n\t"                                                                   \
    "smlad %[acc], %[x], r4, r8\n\t"                                                              \
    "ldr %[x], [%[p1]], #4\n\t"                                                                   \
    "smlad %[acc], %[x], r5, %[acc]\n\t"                                                          \
    "ldr %[x], [%[p2]], #4\n\t"                                                                   \
    "smlad %[acc], %[x], r6, %[acc]\n\t"                                                          \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "ubfx %[acc], %[acc], #11, #11\n\t"                                                           \
    "add %[acc], r4, %[acc], lsl #1\n\t"                                                          \
    "add r6, r6, %[acc], asr #31\n\t"                                                             \
    "smmlar %[acc], %[acc], r5, r6\n\t"                                                           \
    "asr %[acc], %[acc], r8\n\t" SAT PACK

/* the 8 channels of a chunk come in the order 0, 4, 1, 5, 2, 6, 3, 7 */
#define MIXQ_DWP_8(SAT, P0, P4, P1, P5, P2, P6, P3, P7)                                             \
    MIXQ_DWP_CH(SAT, P0) MIXQ_DWP_CH(SAT, P4) MIXQ_DWP_CH(SAT, P1) MIXQ_DWP_CH(SAT, P5)               \
    MIXQ_DWP_CH(SAT, P2) MIXQ_DWP_CH(SAT, P6) MIXQ_DWP_CH(SAT, P3) MIXQ_DWP_CH(SAT, P7)

#define MIXQ_DWP_OPS(PK)                                                                          \
    : [st] "+r"(st), [p0] "+r"(*p0), [p1] "+r"(*p1), [p2] "+r"(*p2), [acc] "=&r"(acc), [x] "=&r"(x), \
      [pk] PK                                                                                     \
    :                                                                                             \
    : "r4", "r5", "r6", "r8", "memory"

/* 8 channels of one output pixel: *p0, *p1, *p2 = the X words of the three filter rows at this
 * column (advanced by 8 words), st = the chunk's 8 records, out = the chunk's first output byte.
 * Seven operands and four fixed registers. */
MIXQ_INLINE void mixq_dwp_pixel(int32_t OB, const uint32_t *st, const uint32_t **p0, const uint32_t **p1,
                                const uint32_t **p2, uint8_t *out) {
    uint32_t acc, x, pk;
#define O4(S) "orr %[pk], %[pk], %[acc], lsl #" S "\n\t"
    if (OB == 8) {
        pk = (uint32_t)(uintptr_t)out;
#define B8(S) "strb %[acc], [%[pk], #" S "]\n\t"
        __asm__ volatile(MIXQ_DWP_8("ssat %[acc], #8, %[acc]\n\t", B8("0"), B8("4"), B8("1"), B8("5"), B8("2"), B8("6"),
                                    B8("3"), B8("7")) MIXQ_DWP_OPS("+r"(pk)));
#undef B8
    } else if (OB == 4) {
        __asm__ volatile(MIXQ_DWP_8("usat %[acc], #4, %[acc]\n\t", "mov %[pk], %[acc]\n\t", O4("16"), O4("4"), O4("20"),
                                    O4("8"), O4("24"), O4("12"), O4("28")) MIXQ_DWP_OPS("=&r"(pk)));
        mixq_store_u32(out, pk);
    } else {
        __asm__ volatile(MIXQ_DWP_8("usat %[acc], #2, %[acc]\n\t", "mov %[pk], %[acc]\n\t", O4("8"), O4("2"), O4("10"),
                                    O4("4"), O4("12"), O4("6"), O4("14")) MIXQ_DWP_OPS("=&r"(pk)));
        const uint16_t h = (uint16_t)pk;
        memcpy(out, &h, 2);
    }
#undef O4
    (void)acc;
    (void)x;
}
#undef MIXQ_DWP_OPS

#undef MIXQ_DW_OUTS
#endif /* MIXQ_DSP */

#endif /* MIXQ_DEPTHWISE_DSP_H */
