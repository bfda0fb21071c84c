/*
 * mixq_requant_row.h - requantization of a row of int32 accumulators (one output pixel, all
 * channels) into packed 8/4/2-bit outputs. The loops are kept out of line so that they run from
 * registers whatever the caller's register pressure.
 */
#ifndef MIXQ_REQUANT_ROW_H
#define MIXQ_REQUANT_ROW_H

#include "mixq_internal.h"

/* How a row can be requantized: MIXQ_RQ_R2 when every shift is <= -2 (no per-output branch),
 * MIXQ_RQ_FULL when the clamp is the whole output range (a single SSAT/USAT on DSP cores). */
#define MIXQ_RQ_R2 1
#define MIXQ_RQ_FULL 2
/* MIXQ_RQ_R1: every shift is <= -1 (the right-shift form with its borrow, see mixq_rq_apply_right);
 * only the exact mode MIXQ_RQ_R1 | MIXQ_RQ_FULL has a path of its own (assembly on DSP cores),
 * any other mode holding it runs the general form. */
#define MIXQ_RQ_R1 4
/* MIXQ_RQ_ANY: mode MIXQ_RQ_ANY | MIXQ_RQ_FULL runs an assembly path with one branch per output on
 * the sign of the shift (any shifts, whole output range). */
#define MIXQ_RQ_ANY 8

/* MIXQ_RQ_R1 when every rq[c].sh >= 0 (shift <= -1). */
MIXQ_INLINE int32_t mixq_rq_r1(int32_t n, const mixq_rq *rq) {
    int32_t r1 = 1;
    for (int32_t c = 0; c < n; c++) {
        r1 &= rq[c].sh >= 0;
    }
    return r1 ? MIXQ_RQ_R1 : 0;
}

/* Fill rq[0..n) from per-channel multipliers and shifts; returns the MIXQ_RQ_R2 flag. */
MIXQ_INLINE int32_t mixq_rq_fill(int32_t n, const mixq_per_channel_quant *q, mixq_rq *rq) {
    int32_t r2 = 1;
    for (int32_t c = 0; c < n; c++) {
        rq[c] = mixq_rq_make(q->multiplier[c], q->shift[c]);
        r2 &= rq[c].sh >= 1;
    }
    return r2 ? MIXQ_RQ_R2 : 0;
}

/* Clamp to the whole range of an OB-bit output. */
MIXQ_INLINE int32_t mixq_sat(int32_t OB, int32_t v) {
#if MIXQ_DSP
    return OB == 8 ? __ssat(v, 8) : (OB == 4 ? __usat(v, 4) : __usat(v, 2));
#else
    return mixq_clamp(v, mixq_act_lo(OB), mixq_act_hi(OB));
#endif
}

/* Requantize the accumulators of one pixel (bias and corrections already added) and store them.
 * Kept out of line so that the loops run from registers. */
#define MIXQ_ROW_ARGS \
    int32_t n, const int32_t *accs, const mixq_rq *rq, int32_t zp, int32_t lo, int32_t hi, int32_t mode

/* value of channel c with the requantization variant M */
#define MIXQ_RQV(M, c)                                                                                   \
    ((M) == 3 ? mixq_sat(OB, mixq_rq_apply_r2(accs[c], rq[c].m, rq[c].bhi, rq[c].sh) + zp)              \
     : (M) == 1 ? mixq_clamp(mixq_rq_apply_r2(accs[c], rq[c].m, rq[c].bhi, rq[c].sh) + zp, lo, hi)      \
                : mixq_clamp(mixq_rq_apply(accs[c], &rq[c]) + zp, lo, hi))

#define MIXQ_ROW_LOOPS(STORE)                       \
    if (mode == 3) {                                \
        STORE(3);                                   \
    } else if (mode == 1) {                         \
        STORE(1);                                   \
    } else {                                        \
        STORE(0);                                   \
    }

#if MIXQ_DSP
/* One output of mode MIXQ_RQ_R2 | MIXQ_RQ_FULL in assembly: 2 loads of parameters, AND/ORR/ADD for
 * B - [acc < 0] 2^31, SMLAL, ASR, the zero point and a saturation (SAT: "ssat %[v], #8" or
 * "usat %[v], #4" ...). Leaves the value in v. */
#define MIXQ_RQ_ASM(SAT)                              \
    "ldr %[a], [%[accs]], #4\n\t"                    \
    "ldr %[m], [%[rq]], #16\n\t"                     \
    "ldrd %[hi], %[sh], [%[rq], #-8]\n\t"            \
    "and %[lo], %[a], #0x80000000\n\t"               \
    "orr %[lo], %[lo], #0x40000000\n\t"              \
    "add %[hi], %[hi], %[a], asr #31\n\t"            \
    "smlal %[lo], %[hi], %[a], %[m]\n\t"             \
    "asr %[hi], %[hi], %[sh]\n\t"                    \
    "add %[hi], %[hi], %[zp]\n\t" SAT "\n\t"
/* The same for mode MIXQ_RQ_R1 | MIXQ_RQ_FULL: B - [acc < 0] 2^31 from both words of B (BIC/ADD for
 * the borrow, AND/EOR for the top bit of the low word), two more instructions. */
#define MIXQ_RQ1_ASM(SAT)                             \
    "ldr %[a], [%[accs]], #4\n\t"                    \
    "ldr %[m], [%[rq]], #16\n\t"                     \
    "ldrd %[lo], %[hi], [%[rq], #-12]\n\t"           \
    "bic %[sh], %[a], %[lo]\n\t"                     \
    "add %[hi], %[hi], %[sh], asr #31\n\t"           \
    "and %[sh], %[a], #0x80000000\n\t"               \
    "eor %[lo], %[lo], %[sh]\n\t"                    \
    "ldr %[sh], [%[rq], #-4]\n\t"                    \
    "smlal %[lo], %[hi], %[a], %[m]\n\t"             \
    "asr %[hi], %[hi], %[sh]\n\t"                    \
    "add %[hi], %[hi], %[zp]\n\t" SAT "\n\t"
/* Any shift: left shifts (rq.sh < 0) as ((acc << shift) m + 2^30) >> 31, right shifts as above. */
#define MIXQ_RQA_ASM(SAT)                             \
    "ldr %[a], [%[accs]], #4\n\t"                    \
    "ldr %[m], [%[rq]], #16\n\t"                     \
    "ldr %[sh], [%[rq], #-4]\n\t"                    \
    "cmp %[sh], #0\n\t"                              \
    "bge 2f\n\t"                                     \
    "mvn %[lo], %[sh]\n\t"                           \
    "lsl %[a], %[a], %[lo]\n\t"                      \
    "mov %[lo], #0x40000000\n\t"                     \
    "mov %[hi], #0\n\t"                              \
    "smlal %[lo], %[hi], %[a], %[m]\n\t"             \
    "lsr %[lo], %[lo], #31\n\t"                      \
    "orr %[hi], %[lo], %[hi], lsl #1\n\t"            \
    "b 3f\n\t"                                       \
    "2:\n\t"                                         \
    "ldrd %[lo], %[hi], [%[rq], #-12]\n\t"           \
    "bic %[sh], %[a], %[lo]\n\t"                     \
    "add %[hi], %[hi], %[sh], asr #31\n\t"           \
    "and %[sh], %[a], #0x80000000\n\t"               \
    "eor %[lo], %[lo], %[sh]\n\t"                    \
    "ldr %[sh], [%[rq], #-4]\n\t"                    \
    "smlal %[lo], %[hi], %[a], %[m]\n\t"             \
    "asr %[hi], %[hi], %[sh]\n\t"                    \
    "3:\n\t"                                         \
    "add %[hi], %[hi], %[zp]\n\t" SAT "\n\t"
#define MIXQ_RQ_ASM_OPERANDS                                                                                     \
    [accs] "+r"(accs), [rq] "+r"(rq), [dst] "+r"(dst), [n] "+r"(n), [a] "=&r"(a), [m] "=&r"(m), [lo] "=&r"(lo), \
        [hi] "=&r"(hi), [sh] "=&r"(sh)

/* One stored byte of a row: one 8-bit output, two 4-bit or four 2-bit outputs packed little-end
 * first, each requantized by RQ (MIXQ_RQ_ASM, MIXQ_RQ1_ASM or MIXQ_RQA_ASM). */
#define MIXQ_RQ_BYTE8(RQ) RQ("ssat %[hi], #8, %[hi]") "strb %[hi], [%[dst]], #1\n\t"
#define MIXQ_RQ_BYTE4(RQ) \
    RQ("usat %[v], #4, %[hi]") RQ("usat %[hi], #4, %[hi]") "orr %[v], %[v], %[hi], lsl #4\n\t" \
    "strb %[v], [%[dst]], #1\n\t"
#define MIXQ_RQ_BYTE2(RQ)                                                                             \
    RQ("usat %[v], #2, %[hi]") RQ("usat %[hi], #2, %[hi]") "orr %[v], %[v], %[hi], lsl #2\n\t"       \
    RQ("usat %[hi], #2, %[hi]") "orr %[v], %[v], %[hi], lsl #4\n\t"                                \
    RQ("usat %[hi], #2, %[hi]") "orr %[v], %[v], %[hi], lsl #6\n\t" "strb %[v], [%[dst]], #1\n\t"

/* The whole-range modes of a row in assembly (n >> PACK stored bytes): returns from the calling
 * row function when mode has an assembly loop. */
#define MIXQ_RQ_ASM_LOOP(BYTE, RQ, PACK)                                                      \
    do {                                                                                      \
        int32_t a, m, lo, hi, sh, v;                                                          \
        n >>= (PACK);                                                                         \
        __asm__ volatile("1:\n\t" BYTE(RQ) "subs %[n], %[n], #1\n\t"                         \
                         "bne 1b\n\t"                                                         \
                         : MIXQ_RQ_ASM_OPERANDS, [v] "=&r"(v)                                 \
                         : [zp] "r"(zp)                                                       \
                         : "cc", "memory");                                                   \
    } while (0)
#define MIXQ_RQ_ASM_MODES(BYTE, PACK)                                  \
    if (mode == (MIXQ_RQ_R2 | MIXQ_RQ_FULL) && n > 0) {                \
        MIXQ_RQ_ASM_LOOP(BYTE, MIXQ_RQ_ASM, PACK);                     \
        return;                                                        \
    }                                                                  \
    if (mode == (MIXQ_RQ_R1 | MIXQ_RQ_FULL) && n > 0) {                \
        MIXQ_RQ_ASM_LOOP(BYTE, MIXQ_RQ1_ASM, PACK);                    \
        return;                                                        \
    }                                                                  \
    if (mode == (MIXQ_RQ_ANY | MIXQ_RQ_FULL) && n > 0) {               \
        MIXQ_RQ_ASM_LOOP(BYTE, MIXQ_RQA_ASM, PACK);                    \
        return;                                                        \
    }
#endif

static MIXQ_NOINLINE void mixq_requant_row8(MIXQ_ROW_ARGS, int8_t *dst) {
    const int32_t OB = 8;
#if MIXQ_DSP
    MIXQ_RQ_ASM_MODES(MIXQ_RQ_BYTE8, 0)
#endif
#define MIXQ_STORE8(M)                       \
    for (int32_t c = 0; c < n; c++) {        \
        dst[c] = (int8_t)MIXQ_RQV(M, c);     \
    }
    MIXQ_ROW_LOOPS(MIXQ_STORE8)
#undef MIXQ_STORE8
}

static MIXQ_NOINLINE void mixq_requant_row4(MIXQ_ROW_ARGS, uint8_t *dst) {
    const int32_t OB = 4;
#if MIXQ_DSP
    MIXQ_RQ_ASM_MODES(MIXQ_RQ_BYTE4, 1)
#endif
#define MIXQ_STORE4(M)                                                        \
    for (int32_t c = 0; c < n; c += 2) {                                      \
        dst[c >> 1] = (uint8_t)(MIXQ_RQV(M, c) | (MIXQ_RQV(M, c + 1) << 4));  \
    }
    MIXQ_ROW_LOOPS(MIXQ_STORE4)
#undef MIXQ_STORE4
}

static MIXQ_NOINLINE void mixq_requant_row2(MIXQ_ROW_ARGS, uint8_t *dst) {
    const int32_t OB = 2;
#if MIXQ_DSP
    MIXQ_RQ_ASM_MODES(MIXQ_RQ_BYTE2, 2)
#endif
#define MIXQ_STORE2(M)                                                                                  \
    for (int32_t c = 0; c < n; c += 4) {                                                                \
        dst[c >> 2] = (uint8_t)(MIXQ_RQV(M, c) | (MIXQ_RQV(M, c + 1) << 2) | (MIXQ_RQV(M, c + 2) << 4) | \
                                (MIXQ_RQV(M, c + 3) << 6));                                             \
    }
    MIXQ_ROW_LOOPS(MIXQ_STORE2)
#undef MIXQ_STORE2
}

static MIXQ_NOINLINE void mixq_requant_row_any(int32_t OB, MIXQ_ROW_ARGS, uint8_t *out, int32_t o) {
    (void)mode;
    for (int32_t c = 0; c < n; c++) {
        mixq_put_act(out, o + c, OB, MIXQ_RQV(0, c));
    }
}

/* Output elements o .. o+n of an OB-bit tensor from n accumulators. */
MIXQ_INLINE void mixq_requant_row(int32_t OB, int32_t n, const int32_t *accs, const mixq_rq *rq, int32_t zp,
                                  int32_t lo, int32_t hi, int32_t mode, uint8_t *out, int32_t o) {
    if (OB == 8) {
        mixq_requant_row8(n, accs, rq, zp, lo, hi, mode, (int8_t *)out + o);
    } else if (OB == 4 && ((o | n) & 1) == 0) {
        mixq_requant_row4(n, accs, rq, zp, lo, hi, mode, out + (o >> 1));
    } else if (OB == 2 && ((o | n) & 3) == 0) {
        mixq_requant_row2(n, accs, rq, zp, lo, hi, mode, out + (o >> 2));
    } else {
        mixq_requant_row_any(OB, n, accs, rq, zp, lo, hi, mode, out, o);
    }
}
#undef MIXQ_RQV
#undef MIXQ_ROW_LOOPS
#if MIXQ_DSP
#undef MIXQ_RQ_ASM
#undef MIXQ_RQ1_ASM
#undef MIXQ_RQA_ASM
#undef MIXQ_RQ_ASM_OPERANDS
#endif
#undef MIXQ_ROW_ARGS

#endif /* MIXQ_REQUANT_ROW_H */
