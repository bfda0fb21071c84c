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
 * field [11, 22) of the accumulator. pre = LOFF + FOFF 2^11 keeps both fields non-negative, so
 * UBFX(acc, 11, 11) = F + FOFF exactly. Stream record of a channel: w_row0, w_row1, w_row2, pre,
 * then the requantization words of the call's mode (f = F + FOFF, K = bias - zp sum(w) - FOFF, so
 * x = f + K is the exact sum; s = max(shift, 0), r = max(-shift, 0), z = output zero point):
 *   MIXQ_DWP_NEG (every shift negative): 2K, m, rz = 2^(r-1) + z 2^r, r
 *       a = 2K + 2f (ADD), SMMLAR(a, m, rz - [x < 0]) asr r
 *   MIXQ_DWP_POS (every shift >= 0):     K 2^(s+1), 2^(s+1), m, z
 *       a = f 2^(s+1) + K 2^(s+1) (MLA), SMMLAR(a, m, z)            (RDBPOT by 0: no sign term)
 *   MIXQ_DWP_MIX (both signs):           K 2^(s+1), 2^(s+1), m, rz, r | [r > 0] 2^31
 *       MLA, the sign term masked by bit 31 of the last word (AND, ADD .. ASR #31), ASR by its
 *       low byte (= r) */
#define MIXQ_DWP_NEG 0
#define MIXQ_DWP_POS 1
#define MIXQ_DWP_MIX 2
MIXQ_INLINE int32_t mixq_dwp_rec_words(int32_t mode) { return mode == MIXQ_DWP_MIX ? 9 : 8; }

/* One channel of one pixel (X words at byte offset O from p0, p1, p2): three rows, extraction,
 * requantization (RQ), saturation; then PACK (a string) puts the result in place. r4, r5, r6, r8
 * (and r9) hold the record words (ascending registers for LDM). */
#define MIXQ_DWP_MAC(O)                                                                           \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "ldr %[x], [%[p0], #" O "]\n\t"                                                               \
    "smlad %[acc], %[x], r4, r8\n\t"                                                              \
    "ldr %[x], [%[p1], #" O "]\n\t"                                                               \
    "smlad %[acc], %[x], r5, %[acc]\n\t"                                                          \
    "ldr %[x], [%[p2], #" O "]\n\t"                                                               \
    "smlad %[acc], %[x], r6, %[acc]\n\t"                                                          \
    "ubfx %[acc], %[acc], #11, #11\n\t"
#define MIXQ_DWP_RQ_NEG                                                                           \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "add %[acc], r4, %[acc], lsl #1\n\t"                                                          \
    "add r6, r6, %[acc], asr #31\n\t"                                                             \
    "smmlar %[acc], %[acc], r5, r6\n\t"                                                           \
    "asr %[acc], %[acc], r8\n\t"
#define MIXQ_DWP_RQ_POS                                                                           \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "mla %[acc], %[acc], r5, r4\n\t"                                                              \
    "smmlar %[acc], %[acc], r6, r8\n\t"
#define MIXQ_DWP_RQ_MIX                                                                           \
    "ldmia %[st]!, {r4, r5, r6, r8, r9}\n\t"                                                      \
    "mla %[acc], %[acc], r5, r4\n\t"                                                              \
    "and %[x], r9, %[acc], asr #31\n\t"                                                           \
    "add r8, r8, %[x], asr #31\n\t"                                                               \
    "smmlar %[acc], %[acc], r6, r8\n\t"                                                           \
    "asr %[acc], %[acc], r9\n\t"

/* The 8 channels of a chunk: slot s (X word at byte 4 s, record s) holds channel
 * (s >> 1) + 4 (s & 1), i.e. the order 0, 4, 1, 5, 2, 6, 3, 7. CH(O, I) is one channel at X offset O
 * whose channel index in the chunk is I (for the packing). */
#define MIXQ_DWP_8(CH) CH("0", 0) CH("4", 4) CH("8", 1) CH("12", 5) CH("16", 2) CH("20", 6) CH("24", 3) CH("28", 7)

#define MIXQ_DWP_PUT8(A, PK, I) "strb %[" A "], [%[" PK "], #" #I "]\n\t"

/* One pixel, 8 channels: *p0, *p1, *p2 = the chunk's X words of the three filter rows at this column
 * (8 words each), st = the chunk's 8 records, out = the chunk's first output byte. */
#define MIXQ_DWP_OPS1(PK)                                                                          \
    : [st] "+r"(st), [acc] "=&r"(acc), [x] "=&r"(x), [pk] PK                                       \
    : [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2)                                                     \
    : "r4", "r5", "r6", "r8", "r9", "memory"
#define MIXQ_DWP_C8N(O, I) MIXQ_DWP_MAC(O) MIXQ_DWP_RQ_NEG "ssat %[acc], #8, %[acc]\n\t" MIXQ_DWP_PUT8("acc", "pk", I)
#define MIXQ_DWP_C8P(O, I) MIXQ_DWP_MAC(O) MIXQ_DWP_RQ_POS "ssat %[acc], #8, %[acc]\n\t" MIXQ_DWP_PUT8("acc", "pk", I)
#define MIXQ_DWP_C8M(O, I) MIXQ_DWP_MAC(O) MIXQ_DWP_RQ_MIX "ssat %[acc], #8, %[acc]\n\t" MIXQ_DWP_PUT8("acc", "pk", I)
/* sub-byte packing strings (the shift is a literal per channel index) */
#define MIXQ_DWP_P4_0 "mov %[pk], %[acc]\n\t"
#define MIXQ_DWP_P4_1 "orr %[pk], %[pk], %[acc], lsl #4\n\t"
#define MIXQ_DWP_P4_2 "orr %[pk], %[pk], %[acc], lsl #8\n\t"
#define MIXQ_DWP_P4_3 "orr %[pk], %[pk], %[acc], lsl #12\n\t"
#define MIXQ_DWP_P4_4 "orr %[pk], %[pk], %[acc], lsl #16\n\t"
#define MIXQ_DWP_P4_5 "orr %[pk], %[pk], %[acc], lsl #20\n\t"
#define MIXQ_DWP_P4_6 "orr %[pk], %[pk], %[acc], lsl #24\n\t"
#define MIXQ_DWP_P4_7 "orr %[pk], %[pk], %[acc], lsl #28\n\t"
#define MIXQ_DWP_P2_0 "mov %[pk], %[acc]\n\t"
#define MIXQ_DWP_P2_1 "orr %[pk], %[pk], %[acc], lsl #2\n\t"
#define MIXQ_DWP_P2_2 "orr %[pk], %[pk], %[acc], lsl #4\n\t"
#define MIXQ_DWP_P2_3 "orr %[pk], %[pk], %[acc], lsl #6\n\t"
#define MIXQ_DWP_P2_4 "orr %[pk], %[pk], %[acc], lsl #8\n\t"
#define MIXQ_DWP_P2_5 "orr %[pk], %[pk], %[acc], lsl #10\n\t"
#define MIXQ_DWP_P2_6 "orr %[pk], %[pk], %[acc], lsl #12\n\t"
#define MIXQ_DWP_P2_7 "orr %[pk], %[pk], %[acc], lsl #14\n\t"
#define MIXQ_DWP_C4N(O, I) MIXQ_DWP_MAC(O) MIXQ_DWP_RQ_NEG "usat %[acc], #4, %[acc]\n\t" MIXQ_DWP_P4_##I
#define MIXQ_DWP_C4P(O, I) MIXQ_DWP_MAC(O) MIXQ_DWP_RQ_POS "usat %[acc], #4, %[acc]\n\t" MIXQ_DWP_P4_##I
#define MIXQ_DWP_C4M(O, I) MIXQ_DWP_MAC(O) MIXQ_DWP_RQ_MIX "usat %[acc], #4, %[acc]\n\t" MIXQ_DWP_P4_##I
#define MIXQ_DWP_C2N(O, I) MIXQ_DWP_MAC(O) MIXQ_DWP_RQ_NEG "usat %[acc], #2, %[acc]\n\t" MIXQ_DWP_P2_##I
#define MIXQ_DWP_C2P(O, I) MIXQ_DWP_MAC(O) MIXQ_DWP_RQ_POS "usat %[acc], #2, %[acc]\n\t" MIXQ_DWP_P2_##I
#define MIXQ_DWP_C2M(O, I) MIXQ_DWP_MAC(O) MIXQ_DWP_RQ_MIX "usat %[acc], #2, %[acc]\n\t" MIXQ_DWP_P2_##I

MIXQ_INLINE void mixq_dwp_pixel(int32_t OB, int32_t mode, const uint32_t *st, const uint32_t *p0, const uint32_t *p1,
                                const uint32_t *p2, uint8_t *out) {
    uint32_t acc, x, pk;
    if (OB == 8) {
        pk = (uint32_t)(uintptr_t)out;
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWP_8(MIXQ_DWP_C8N) MIXQ_DWP_OPS1("+r"(pk)));
        } else if (mode == MIXQ_DWP_POS) {
            __asm__ volatile(MIXQ_DWP_8(MIXQ_DWP_C8P) MIXQ_DWP_OPS1("+r"(pk)));
        } else {
            __asm__ volatile(MIXQ_DWP_8(MIXQ_DWP_C8M) MIXQ_DWP_OPS1("+r"(pk)));
        }
    } else if (OB == 4) {
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWP_8(MIXQ_DWP_C4N) MIXQ_DWP_OPS1("=&r"(pk)));
        } else if (mode == MIXQ_DWP_POS) {
            __asm__ volatile(MIXQ_DWP_8(MIXQ_DWP_C4P) MIXQ_DWP_OPS1("=&r"(pk)));
        } else {
            __asm__ volatile(MIXQ_DWP_8(MIXQ_DWP_C4M) MIXQ_DWP_OPS1("=&r"(pk)));
        }
        mixq_store_u32(out, pk);
    } else {
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWP_8(MIXQ_DWP_C2N) MIXQ_DWP_OPS1("=&r"(pk)));
        } else if (mode == MIXQ_DWP_POS) {
            __asm__ volatile(MIXQ_DWP_8(MIXQ_DWP_C2P) MIXQ_DWP_OPS1("=&r"(pk)));
        } else {
            __asm__ volatile(MIXQ_DWP_8(MIXQ_DWP_C2M) MIXQ_DWP_OPS1("=&r"(pk)));
        }
        const uint16_t h = (uint16_t)pk;
        memcpy(out, &h, 2);
    }
    (void)acc;
    (void)x;
}

/* Two pixels (q, q + 1: X words of q + 1 32 bytes after those of q), 8 channels, every record read
 * once for both: per channel 2 LDM, 6 LDR, 6 SMLAD, then 6 (NEG) or 4 (POS) instructions per output
 * before the saturation and the packing. The sign term goes to x (rz stays for the second pixel).
 * Nine operands and four fixed registers (MIX: eight and five, see MIXQ_DWP_MAC2M). */
#define MIXQ_DWP_MAC2(O, OB_)                                                                    \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "ldr %[x], [%[p0], #" OB_ "]\n\t"                                                             \
    "smlad %[b], %[x], r4, r8\n\t"                                                                \
    "ldr %[x], [%[p0], #" O "]\n\t"                                                               \
    "smlad %[a], %[x], r4, r8\n\t"                                                                \
    "ldr %[x], [%[p1], #" OB_ "]\n\t"                                                             \
    "smlad %[b], %[x], r5, %[b]\n\t"                                                              \
    "ldr %[x], [%[p1], #" O "]\n\t"                                                               \
    "smlad %[a], %[x], r5, %[a]\n\t"                                                              \
    "ldr %[x], [%[p2], #" OB_ "]\n\t"                                                             \
    "smlad %[b], %[x], r6, %[b]\n\t"                                                              \
    "ldr %[x], [%[p2], #" O "]\n\t"                                                               \
    "smlad %[a], %[x], r6, %[a]\n\t"                                                              \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "ubfx %[a], %[a], #11, #11\n\t"                                                               \
    "ubfx %[b], %[b], #11, #11\n\t"
#define MIXQ_DWP_RQ2_NEG(A)                                                                       \
    "add %[" A "], r4, %[" A "], lsl #1\n\t"                                                      \
    "add %[x], r6, %[" A "], asr #31\n\t"                                                         \
    "smmlar %[" A "], %[" A "], r5, %[x]\n\t"                                                     \
    "asr %[" A "], %[" A "], r8\n\t"
#define MIXQ_DWP_RQ2_POS(A)                                                                       \
    "mla %[" A "], %[" A "], r5, r4\n\t"                                                          \
    "smmlar %[" A "], %[" A "], r6, r8\n\t"
#define MIXQ_DWP_OPS2(PK)                                                                          \
    : [st] "+r"(st), [a] "=&r"(a), [b] "=&r"(b), [x] "=&r"(x), [pa] PK(pa), [pb] PK(pb)            \
    : [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2)                                                     \
    : "r4", "r5", "r6", "r8", "memory"
#define MIXQ_DWP_IN(V) "+r"(V)
#define MIXQ_DWP_OUT(V) "=&r"(V)
/* one channel of both pixels: MAC2, then per pixel RQ, SAT, PUT (PUT(A, PK) a string) */
#define MIXQ_DWP_2CH(O, OB_, RQ, SAT, PUTA, PUTB) \
    MIXQ_DWP_MAC2(O, OB_) RQ("a") SAT("a") PUTA RQ("b") SAT("b") PUTB
#define MIXQ_DWP_SSAT8(A) "ssat %[" A "], #8, %[" A "]\n\t"
#define MIXQ_DWP_USAT4(A) "usat %[" A "], #4, %[" A "]\n\t"
#define MIXQ_DWP_USAT2(A) "usat %[" A "], #2, %[" A "]\n\t"
#define MIXQ_DWP_S8(I) "strb %[a], [%[pa], #" #I "]\n\t", "strb %[b], [%[pb], #" #I "]\n\t"
#define MIXQ_DWP_Q4_0 "mov %[pa], %[a]\n\t", "mov %[pb], %[b]\n\t"
#define MIXQ_DWP_QS(S) "orr %[pa], %[pa], %[a], lsl #" S "\n\t", "orr %[pb], %[pb], %[b], lsl #" S "\n\t"
#define MIXQ_DWP_2CHX(...) MIXQ_DWP_2CH(__VA_ARGS__)
#define MIXQ_DWP_2x8(RQ, SAT, P0, P4, P1, P5, P2, P6, P3, P7)                                                   \
    MIXQ_DWP_2CHX("0", "32", RQ, SAT, P0) MIXQ_DWP_2CHX("4", "36", RQ, SAT, P4)                                \
    MIXQ_DWP_2CHX("8", "40", RQ, SAT, P1) MIXQ_DWP_2CHX("12", "44", RQ, SAT, P5)                               \
    MIXQ_DWP_2CHX("16", "48", RQ, SAT, P2) MIXQ_DWP_2CHX("20", "52", RQ, SAT, P6)                              \
    MIXQ_DWP_2CHX("24", "56", RQ, SAT, P3) MIXQ_DWP_2CHX("28", "60", RQ, SAT, P7)

/* MIX mode, both pixels: the X words go through r9 (free until the second LDM), the record's five
 * words to r4, r5, r6, r8, r9; after both MLAs r4 is the sign temporary. */
#define MIXQ_DWP_MAC2M(O, OB_)                                                                   \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "ldr r9, [%[p0], #" OB_ "]\n\t"                                                               \
    "smlad %[b], r9, r4, r8\n\t"                                                                  \
    "ldr r9, [%[p0], #" O "]\n\t"                                                                 \
    "smlad %[a], r9, r4, r8\n\t"                                                                  \
    "ldr r9, [%[p1], #" OB_ "]\n\t"                                                               \
    "smlad %[b], r9, r5, %[b]\n\t"                                                                \
    "ldr r9, [%[p1], #" O "]\n\t"                                                                 \
    "smlad %[a], r9, r5, %[a]\n\t"                                                                \
    "ldr r9, [%[p2], #" OB_ "]\n\t"                                                               \
    "smlad %[b], r9, r6, %[b]\n\t"                                                                \
    "ldr r9, [%[p2], #" O "]\n\t"                                                                 \
    "smlad %[a], r9, r6, %[a]\n\t"                                                                \
    "ldmia %[st]!, {r4, r5, r6, r8, r9}\n\t"                                                      \
    "ubfx %[a], %[a], #11, #11\n\t"                                                               \
    "ubfx %[b], %[b], #11, #11\n\t"                                                               \
    "mla %[a], %[a], r5, r4\n\t"                                                                  \
    "mla %[b], %[b], r5, r4\n\t"
#define MIXQ_DWP_RQ2_MIX(A)                                                                       \
    "and r4, r9, %[" A "], asr #31\n\t"                                                           \
    "add r4, r8, r4, asr #31\n\t"                                                                 \
    "smmlar %[" A "], %[" A "], r6, r4\n\t"                                                       \
    "asr %[" A "], %[" A "], r9\n\t"
#define MIXQ_DWP_OPS2M(PK)                                                                         \
    : [st] "+r"(st), [a] "=&r"(a), [b] "=&r"(b), [pa] PK(pa), [pb] PK(pb)                          \
    : [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2)                                                     \
    : "r4", "r5", "r6", "r8", "r9", "memory"
#define MIXQ_DWP_2CHM(O, OB_, RQ, SAT, PUTA, PUTB) \
    MIXQ_DWP_MAC2M(O, OB_) RQ("a") SAT("a") PUTA RQ("b") SAT("b") PUTB
#define MIXQ_DWP_2CHMX(...) MIXQ_DWP_2CHM(__VA_ARGS__)
#define MIXQ_DWP_2x8M(SAT, P0, P4, P1, P5, P2, P6, P3, P7)                                                      \
    MIXQ_DWP_2CHMX("0", "32", MIXQ_DWP_RQ2_MIX, SAT, P0) MIXQ_DWP_2CHMX("4", "36", MIXQ_DWP_RQ2_MIX, SAT, P4)    \
    MIXQ_DWP_2CHMX("8", "40", MIXQ_DWP_RQ2_MIX, SAT, P1) MIXQ_DWP_2CHMX("12", "44", MIXQ_DWP_RQ2_MIX, SAT, P5)   \
    MIXQ_DWP_2CHMX("16", "48", MIXQ_DWP_RQ2_MIX, SAT, P2) MIXQ_DWP_2CHMX("20", "52", MIXQ_DWP_RQ2_MIX, SAT, P6)  \
    MIXQ_DWP_2CHMX("24", "56", MIXQ_DWP_RQ2_MIX, SAT, P3) MIXQ_DWP_2CHMX("28", "60", MIXQ_DWP_RQ2_MIX, SAT, P7)

MIXQ_INLINE void mixq_dwp_pixel2(int32_t OB, int32_t mode, const uint32_t *st, const uint32_t *p0,
                                 const uint32_t *p1, const uint32_t *p2, uint8_t *out, int32_t opix) {
    uint32_t a, b, x, pa, pb;
    if (OB == 8) {
        pa = (uint32_t)(uintptr_t)out;
        pb = pa + (uint32_t)opix;
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWP_2x8(MIXQ_DWP_RQ2_NEG, MIXQ_DWP_SSAT8, MIXQ_DWP_S8(0), MIXQ_DWP_S8(4),
                                          MIXQ_DWP_S8(1), MIXQ_DWP_S8(5), MIXQ_DWP_S8(2), MIXQ_DWP_S8(6),
                                          MIXQ_DWP_S8(3), MIXQ_DWP_S8(7)) MIXQ_DWP_OPS2(MIXQ_DWP_IN));
        } else if (mode == MIXQ_DWP_MIX) {
            __asm__ volatile(MIXQ_DWP_2x8M(MIXQ_DWP_SSAT8, MIXQ_DWP_S8(0), MIXQ_DWP_S8(4), MIXQ_DWP_S8(1),
                                           MIXQ_DWP_S8(5), MIXQ_DWP_S8(2), MIXQ_DWP_S8(6), MIXQ_DWP_S8(3),
                                           MIXQ_DWP_S8(7)) MIXQ_DWP_OPS2M(MIXQ_DWP_IN));
        } else {
            __asm__ volatile(MIXQ_DWP_2x8(MIXQ_DWP_RQ2_POS, MIXQ_DWP_SSAT8, MIXQ_DWP_S8(0), MIXQ_DWP_S8(4),
                                          MIXQ_DWP_S8(1), MIXQ_DWP_S8(5), MIXQ_DWP_S8(2), MIXQ_DWP_S8(6),
                                          MIXQ_DWP_S8(3), MIXQ_DWP_S8(7)) MIXQ_DWP_OPS2(MIXQ_DWP_IN));
        }
    } else if (OB == 4) {
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWP_2x8(MIXQ_DWP_RQ2_NEG, MIXQ_DWP_USAT4, MIXQ_DWP_Q4_0, MIXQ_DWP_QS("16"),
                                          MIXQ_DWP_QS("4"), MIXQ_DWP_QS("20"), MIXQ_DWP_QS("8"), MIXQ_DWP_QS("24"),
                                          MIXQ_DWP_QS("12"), MIXQ_DWP_QS("28")) MIXQ_DWP_OPS2(MIXQ_DWP_OUT));
        } else if (mode == MIXQ_DWP_MIX) {
            __asm__ volatile(MIXQ_DWP_2x8M(MIXQ_DWP_USAT4, MIXQ_DWP_Q4_0, MIXQ_DWP_QS("16"), MIXQ_DWP_QS("4"),
                                           MIXQ_DWP_QS("20"), MIXQ_DWP_QS("8"), MIXQ_DWP_QS("24"), MIXQ_DWP_QS("12"),
                                           MIXQ_DWP_QS("28")) MIXQ_DWP_OPS2M(MIXQ_DWP_OUT));
        } else {
            __asm__ volatile(MIXQ_DWP_2x8(MIXQ_DWP_RQ2_POS, MIXQ_DWP_USAT4, MIXQ_DWP_Q4_0, MIXQ_DWP_QS("16"),
                                          MIXQ_DWP_QS("4"), MIXQ_DWP_QS("20"), MIXQ_DWP_QS("8"), MIXQ_DWP_QS("24"),
                                          MIXQ_DWP_QS("12"), MIXQ_DWP_QS("28")) MIXQ_DWP_OPS2(MIXQ_DWP_OUT));
        }
        mixq_store_u32(out, pa);
        mixq_store_u32(out + opix, pb);
    } else {
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWP_2x8(MIXQ_DWP_RQ2_NEG, MIXQ_DWP_USAT2, MIXQ_DWP_Q4_0, MIXQ_DWP_QS("8"),
                                          MIXQ_DWP_QS("2"), MIXQ_DWP_QS("10"), MIXQ_DWP_QS("4"), MIXQ_DWP_QS("12"),
                                          MIXQ_DWP_QS("6"), MIXQ_DWP_QS("14")) MIXQ_DWP_OPS2(MIXQ_DWP_OUT));
        } else if (mode == MIXQ_DWP_MIX) {
            __asm__ volatile(MIXQ_DWP_2x8M(MIXQ_DWP_USAT2, MIXQ_DWP_Q4_0, MIXQ_DWP_QS("8"), MIXQ_DWP_QS("2"),
                                           MIXQ_DWP_QS("10"), MIXQ_DWP_QS("4"), MIXQ_DWP_QS("12"), MIXQ_DWP_QS("6"),
                                           MIXQ_DWP_QS("14")) MIXQ_DWP_OPS2M(MIXQ_DWP_OUT));
        } else {
            __asm__ volatile(MIXQ_DWP_2x8(MIXQ_DWP_RQ2_POS, MIXQ_DWP_USAT2, MIXQ_DWP_Q4_0, MIXQ_DWP_QS("8"),
                                          MIXQ_DWP_QS("2"), MIXQ_DWP_QS("10"), MIXQ_DWP_QS("4"), MIXQ_DWP_QS("12"),
                                          MIXQ_DWP_QS("6"), MIXQ_DWP_QS("14")) MIXQ_DWP_OPS2(MIXQ_DWP_OUT));
        }
        const uint16_t ha = (uint16_t)pa, hb = (uint16_t)pb;
        memcpy(out, &ha, 2);
        memcpy(out + opix, &hb, 2);
    }
    (void)a;
    (void)b;
    (void)x;
}

/* ---- stride-1 pair words (kernels/README.md "Three taps per SMLAD", stride 1) ----
 * With P_c = a_c + a_(c+1) 2^11 (two columns of one channel in one lane), the word
 * X = (P_p, P_(p+2)) of a filter row serves both pixels of a pair (window starts p and p + 1):
 *   SMLAD(X, A) with A = (w_1 + w_0 2^11, w_2 2^11): field [11, 22) += a_p w_0 + a_(p+1) w_1 + a_(p+2) w_2,
 *   SMLAD(X, B) with B = (w_0, w_2 + w_1 2^11):      field [11, 22) += a_(p+1) w_0 + a_(p+2) w_1 + a_(p+3) w_2,
 * low fields a_p w_1 (A) and a_p w_0 + a_(p+2) w_2 (B): at most 6 products per pixel over 3 rows, so
 * the preload's low part is 2 LOFF. Record of a channel (mixq_dwq_rec_words): A0, B0, A1, B1, pre,
 * A2, B2, then the requantization words of the mode (as mixq_dwp: NEG 2K, m, rz, r; POS K 2^(s+1),
 * 2^(s+1), m, z; MIX K 2^(s+1), 2^(s+1), m, rz, r | [r > 0] 2^31). Two LDM of 5 words (r4, r5, r6,
 * r8, r9) and one LDR / LDRD per channel for both pixels. */
MIXQ_INLINE int32_t mixq_dwq_rec_words(int32_t mode) { return mode == MIXQ_DWP_MIX ? 12 : 11; }

/* The X words go through a (row 0, before its SMLADs), r4 (row 1) and r9 (row 2), so that besides
 * the five fixed registers only st, a, b, the two output registers and p0, p1, p2 are needed. After
 * the second LDM (A2, B2 and the first two requantization words in r4, r5, r6, r8) TAIL loads the
 * rest: NEG rz, r and POS m, z into r4, r5; MIX m, rz, rw into r4, r5, r9. */
#define MIXQ_DWQ_TAIL1 "ldrd r4, r5, [%[st]], #8\n\t"
#define MIXQ_DWQ_TAILM "ldmia %[st]!, {r4, r5, r9}\n\t"
/* both pixels of one channel (X words at byte offset O of p0, p1, p2), up to the extracted fields */
#define MIXQ_DWQ_MAC2(O, TAIL)                                                                    \
    "ldmia %[st]!, {r4, r5, r6, r8, r9}\n\t"                                                      \
    "ldr %[a], [%[p0], #" O "]\n\t"                                                               \
    "smlad %[b], %[a], r5, r9\n\t"                                                                \
    "smlad %[a], %[a], r4, r9\n\t"                                                                \
    "ldr r4, [%[p1], #" O "]\n\t"                                                                 \
    "smlad %[a], r4, r6, %[a]\n\t"                                                                \
    "smlad %[b], r4, r8, %[b]\n\t"                                                                \
    "ldr r9, [%[p2], #" O "]\n\t"                                                                 \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "smlad %[a], r9, r4, %[a]\n\t"                                                                \
    "smlad %[b], r9, r5, %[b]\n\t" TAIL                                                           \
    "ubfx %[a], %[a], #11, #11\n\t"                                                               \
    "ubfx %[b], %[b], #11, #11\n\t"
/* one pixel (the first of the pair) */
#define MIXQ_DWQ_MAC1(O, TAIL)                                                                    \
    "ldmia %[st]!, {r4, r5, r6, r8, r9}\n\t"                                                      \
    "ldr %[a], [%[p0], #" O "]\n\t"                                                               \
    "smlad %[a], %[a], r4, r9\n\t"                                                                \
    "ldr r4, [%[p1], #" O "]\n\t"                                                                 \
    "smlad %[a], r4, r6, %[a]\n\t"                                                                \
    "ldr r9, [%[p2], #" O "]\n\t"                                                                 \
    "ldmia %[st]!, {r4, r5, r6, r8}\n\t"                                                          \
    "smlad %[a], r9, r4, %[a]\n\t" TAIL                                                           \
    "ubfx %[a], %[a], #11, #11\n\t"
/* requantization of one extracted field A: NEG r6 = 2K, r8 = m, r4 = rz, r5 = r (r9 the sign
 * temporary); POS r6 = K 2^(s+1), r8 = 2^(s+1), r4 = m, r5 = z; MIX: both MLAs first (MIXQ_DWQ_MLA2,
 * then r6 is the temporary), r4 = m, r5 = rz, r9 = r | [r > 0] 2^31 */
#define MIXQ_DWQ_RQ_NEG(A)                                                                        \
    "add %[" A "], r6, %[" A "], lsl #1\n\t"                                                      \
    "add r9, r4, %[" A "], asr #31\n\t"                                                           \
    "smmlar %[" A "], %[" A "], r8, r9\n\t"                                                       \
    "asr %[" A "], %[" A "], r5\n\t"
#define MIXQ_DWQ_RQ_POS(A)                                                                        \
    "mla %[" A "], %[" A "], r8, r6\n\t"                                                          \
    "smmlar %[" A "], %[" A "], r4, r5\n\t"
#define MIXQ_DWQ_MLA2 "mla %[a], %[a], r8, r6\n\t" "mla %[b], %[b], r8, r6\n\t"
#define MIXQ_DWQ_MLA1 "mla %[a], %[a], r8, r6\n\t"
#define MIXQ_DWQ_RQ_MIX(A)                                                                        \
    "and r6, r9, %[" A "], asr #31\n\t"                                                           \
    "add r6, r5, r6, asr #31\n\t"                                                                 \
    "smmlar %[" A "], %[" A "], r4, r6\n\t"                                                       \
    "asr %[" A "], %[" A "], r9\n\t"
/* saturation and placement of value A in P: channel I of the chunk, nibble shift S4, crumb shift S2;
 * the first channel of a sub-byte chunk saturates straight into P */
#define MIXQ_DWQ_P8(A, P, I, S4, S2) "ssat %[" A "], #8, %[" A "]\n\t" "strb %[" A "], [%[" P "], #" #I "]\n\t"
#define MIXQ_DWQ_P4(A, P, I, S4, S2) "usat %[" A "], #4, %[" A "]\n\t" "orr %[" P "], %[" P "], %[" A "], lsl #" S4 "\n\t"
#define MIXQ_DWQ_P2(A, P, I, S4, S2) "usat %[" A "], #2, %[" A "]\n\t" "orr %[" P "], %[" P "], %[" A "], lsl #" S2 "\n\t"
#define MIXQ_DWQ_F4(A, P, I, S4, S2) "usat %[" P "], #4, %[" A "]\n\t"
#define MIXQ_DWQ_F2(A, P, I, S4, S2) "usat %[" P "], #2, %[" A "]\n\t"
/* the 8 slots of a chunk: X offset, channel index in the chunk (order 0, 4, 1, 5, 2, 6, 3, 7) and its
 * nibble / crumb shifts; the first slot takes PUT0 */
#define MIXQ_DWQ_8(CH, PUT0, PUT)                                                                 \
    CH("0", 0, "0", "0", PUT0) CH("4", 4, "16", "8", PUT) CH("8", 1, "4", "2", PUT)               \
    CH("12", 5, "20", "10", PUT) CH("16", 2, "8", "4", PUT) CH("20", 6, "24", "12", PUT)          \
    CH("24", 3, "12", "6", PUT) CH("28", 7, "28", "14", PUT)
#define MIXQ_DWQ_OPS2(PK)                                                                          \
    : [st] "+r"(st), [a] "=&r"(a), [b] "=&r"(b), [pa] PK(pa), [pb] PK(pb)                          \
    : [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2)                                                     \
    : "r4", "r5", "r6", "r8", "r9", "memory"
#define MIXQ_DWQ_OPS1(PK)                                                                          \
    : [st] "+r"(st), [a] "=&r"(a), [pa] PK(pa)                                                     \
    : [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2)                                                     \
    : "r4", "r5", "r6", "r8", "r9", "memory"

/* Both pixels of a pair, 8 channels: p0, p1, p2 = the chunk's 8 X words of the three filter rows, st
 * = its 8 records (returned advanced past them), out = pixel q's first output byte, pixel q + 1's
 * opix bytes on. */
MIXQ_INLINE const uint32_t *mixq_dwq_pixel2(int32_t OB, int32_t mode, const uint32_t *st, const uint32_t *p0,
                                            const uint32_t *p1, const uint32_t *p2, uint8_t *out, int32_t opix) {
    uint32_t a, b, pa, pb;
#define MIXQ_DWQ_C2N(O, I, S4, S2, PUT) MIXQ_DWQ_MAC2(O, MIXQ_DWQ_TAIL1) MIXQ_DWQ_RQ_NEG("a") PUT("a", "pa", I, S4, S2) \
    MIXQ_DWQ_RQ_NEG("b") PUT("b", "pb", I, S4, S2)
#define MIXQ_DWQ_C2P(O, I, S4, S2, PUT) MIXQ_DWQ_MAC2(O, MIXQ_DWQ_TAIL1) MIXQ_DWQ_RQ_POS("a") PUT("a", "pa", I, S4, S2) \
    MIXQ_DWQ_RQ_POS("b") PUT("b", "pb", I, S4, S2)
#define MIXQ_DWQ_C2M(O, I, S4, S2, PUT) MIXQ_DWQ_MAC2(O, MIXQ_DWQ_TAILM) MIXQ_DWQ_MLA2 MIXQ_DWQ_RQ_MIX("a") PUT("a", "pa", I, S4, S2) \
    MIXQ_DWQ_RQ_MIX("b") PUT("b", "pb", I, S4, S2)
    if (OB == 8) {
        pa = (uint32_t)(uintptr_t)out;
        pb = pa + (uint32_t)opix;
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C2N, MIXQ_DWQ_P8, MIXQ_DWQ_P8) MIXQ_DWQ_OPS2(MIXQ_DWP_IN));
        } else if (mode == MIXQ_DWP_POS) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C2P, MIXQ_DWQ_P8, MIXQ_DWQ_P8) MIXQ_DWQ_OPS2(MIXQ_DWP_IN));
        } else {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C2M, MIXQ_DWQ_P8, MIXQ_DWQ_P8) MIXQ_DWQ_OPS2(MIXQ_DWP_IN));
        }
    } else if (OB == 4) {
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C2N, MIXQ_DWQ_F4, MIXQ_DWQ_P4) MIXQ_DWQ_OPS2(MIXQ_DWP_OUT));
        } else if (mode == MIXQ_DWP_POS) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C2P, MIXQ_DWQ_F4, MIXQ_DWQ_P4) MIXQ_DWQ_OPS2(MIXQ_DWP_OUT));
        } else {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C2M, MIXQ_DWQ_F4, MIXQ_DWQ_P4) MIXQ_DWQ_OPS2(MIXQ_DWP_OUT));
        }
        mixq_store_u32(out, pa);
        mixq_store_u32(out + opix, pb);
    } else {
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C2N, MIXQ_DWQ_F2, MIXQ_DWQ_P2) MIXQ_DWQ_OPS2(MIXQ_DWP_OUT));
        } else if (mode == MIXQ_DWP_POS) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C2P, MIXQ_DWQ_F2, MIXQ_DWQ_P2) MIXQ_DWQ_OPS2(MIXQ_DWP_OUT));
        } else {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C2M, MIXQ_DWQ_F2, MIXQ_DWQ_P2) MIXQ_DWQ_OPS2(MIXQ_DWP_OUT));
        }
        const uint16_t ha = (uint16_t)pa, hb = (uint16_t)pb;
        memcpy(out, &ha, 2);
        memcpy(out + opix, &hb, 2);
    }
    (void)a;
    (void)b;
    return st;
}

/* The first pixel of a pair alone (a last odd pixel of a row): the A words of the same records. */
MIXQ_INLINE const uint32_t *mixq_dwq_pixel1(int32_t OB, int32_t mode, const uint32_t *st, const uint32_t *p0,
                                            const uint32_t *p1, const uint32_t *p2, uint8_t *out) {
    uint32_t a, pa;
#define MIXQ_DWQ_C1N(O, I, S4, S2, PUT) MIXQ_DWQ_MAC1(O, MIXQ_DWQ_TAIL1) MIXQ_DWQ_RQ_NEG("a") PUT("a", "pa", I, S4, S2)
#define MIXQ_DWQ_C1P(O, I, S4, S2, PUT) MIXQ_DWQ_MAC1(O, MIXQ_DWQ_TAIL1) MIXQ_DWQ_RQ_POS("a") PUT("a", "pa", I, S4, S2)
#define MIXQ_DWQ_C1M(O, I, S4, S2, PUT) MIXQ_DWQ_MAC1(O, MIXQ_DWQ_TAILM) MIXQ_DWQ_MLA1 MIXQ_DWQ_RQ_MIX("a") PUT("a", "pa", I, S4, S2)
    if (OB == 8) {
        pa = (uint32_t)(uintptr_t)out;
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C1N, MIXQ_DWQ_P8, MIXQ_DWQ_P8) MIXQ_DWQ_OPS1(MIXQ_DWP_IN));
        } else if (mode == MIXQ_DWP_POS) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C1P, MIXQ_DWQ_P8, MIXQ_DWQ_P8) MIXQ_DWQ_OPS1(MIXQ_DWP_IN));
        } else {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C1M, MIXQ_DWQ_P8, MIXQ_DWQ_P8) MIXQ_DWQ_OPS1(MIXQ_DWP_IN));
        }
    } else if (OB == 4) {
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C1N, MIXQ_DWQ_F4, MIXQ_DWQ_P4) MIXQ_DWQ_OPS1(MIXQ_DWP_OUT));
        } else if (mode == MIXQ_DWP_POS) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C1P, MIXQ_DWQ_F4, MIXQ_DWQ_P4) MIXQ_DWQ_OPS1(MIXQ_DWP_OUT));
        } else {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C1M, MIXQ_DWQ_F4, MIXQ_DWQ_P4) MIXQ_DWQ_OPS1(MIXQ_DWP_OUT));
        }
        mixq_store_u32(out, pa);
    } else {
        if (mode == MIXQ_DWP_NEG) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C1N, MIXQ_DWQ_F2, MIXQ_DWQ_P2) MIXQ_DWQ_OPS1(MIXQ_DWP_OUT));
        } else if (mode == MIXQ_DWP_POS) {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C1P, MIXQ_DWQ_F2, MIXQ_DWQ_P2) MIXQ_DWQ_OPS1(MIXQ_DWP_OUT));
        } else {
            __asm__ volatile(MIXQ_DWQ_8(MIXQ_DWQ_C1M, MIXQ_DWQ_F2, MIXQ_DWQ_P2) MIXQ_DWQ_OPS1(MIXQ_DWP_OUT));
        }
        const uint16_t ha = (uint16_t)pa;
        memcpy(out, &ha, 2);
    }
    (void)a;
    return st;
}

#undef MIXQ_DW_OUTS
#endif /* MIXQ_DSP */

#endif /* MIXQ_DEPTHWISE_DSP_H */
