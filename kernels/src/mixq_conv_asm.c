/*
 * mixq_conv_asm.c - fused channel loops of the convolution core's DSP path (Cortex-M, Thumb-2).
 *
 * One call computes every output channel of a pair of output pixels: for each channel pair the
 * 2x2 block's inner loop, then the requantization of its four accumulators in registers and the
 * stores, with no round trip of the accumulators through memory (kernels/README.md, "Fused
 * channel loops"). Each routine takes a mixq_fz frame (mixq_conv_dsp.h) and copies it onto its
 * own stack, so that every register is free for the inner loop.
 *
 *   mixq_fz_w8o<b>   W8 weights on int16 im2col rows (widen-16 path, any input width)
 *   mixq_fz_a4o<b>   A4W4 lanes (spacing 11)
 *   mixq_fz_a2o<b>   A2W2 lanes (spacing 12); 2-bit outputs through per-channel thresholds
 *                    (mixq_fz_a2o2) or, for calls with few output pixels, the SMMLAR form
 *
 * for every output width b = 8, 4, 2 (2-bit outputs: two channel pairs per stored byte).
 * Requantization (MIXQ_FZ_RQ): with r = -shift >= 1, m2 = 2m - 2^32 (m >= 2^30) and
 * C2 = 2^(r-1) + zp 2^r, the output is SAT(SMMLAR(x, m2, x + C2 - [x < 0]) >> r); the routines
 * with the suffix l take layers whose shifts s are all >= 0 (MIXQ_FZ_RQL):
 * SAT(SMMLAR(x << s, m2, (x << s) + zp)); those with the suffix m any other layer: shifts of both
 * signs, shift 0 next to right shifts, multipliers below 2^30 (MIXQ_FZ_RQM, one instruction more
 * per output than the right-shift form).
 */
#include "mixq_internal.h"

#if MIXQ_DSP

/* Bytes of the frame copy (struct mixq_fz, 15 words; checked in mixq_conv_dsp.h). Stack layout:
 * [0..12] k0..k3  [16] ap  [20] n  [24] prm  [28] prm_end  [32] out0  [36] out1  [40] pre0
 * [44] pre1  [48] wp  [52] spill  [56] mask */
#define MIXQ_FZ_BYTES "60"

#define MIXQ_FZ_FUNC(name)              \
    ".section .text." name ",\"ax\",%progbits\n\t" \
    ".syntax unified\n\t"               \
    ".thumb\n\t"                        \
    ".p2align 2\n\t"                    \
    ".global " name "\n\t"              \
    ".type " name ", %function\n\t"     \
    ".thumb_func\n"                     \
    name ":\n\t"

#define MIXQ_FZ_ENTER MIXQ_FZ_ENTER_OF(MIXQ_FZ_BYTES)
#define MIXQ_FZ_ENTER_OF(bytes)              \
    "push {r4-r11, lr}\n\t"                  \
    "sub sp, sp, #" bytes "\n\t"             \
    "ldm r0!, {r1-r8}\n\t"                   \
    "stm sp, {r1-r8}\n\t"                    \
    "ldm r0, {r1-r7}\n\t"                    \
    "add r8, sp, #32\n\t"                    \
    "stm r8, {r1-r7}\n\t"

#define MIXQ_FZ_LEAVE(name) MIXQ_FZ_LEAVE_OF(name, MIXQ_FZ_BYTES)
#define MIXQ_FZ_LEAVE_OF(name, bytes)        \
    "add sp, sp, #" bytes "\n\t"             \
    "pop {r4-r11, pc}\n\t"                   \
    ".size " name ", .-" name "\n\t" \
    ".previous\n\t"

/* x <- SAT(SMMLAR(x, m2, x + C2 - [x < 0]) >> r); t is a temporary, sat e.g. "ssat", "#8". */
#define MIXQ_FZ_RQ(x, m2, c2, r, t, sat, bits)   \
    "add " t ", " c2 ", " x ", asr #31\n\t"      \
    "add " t ", " t ", " x "\n\t"                \
    "smmlar " x ", " x ", " m2 ", " t "\n\t"     \
    "asr " x ", " x ", " r "\n\t"                \
    sat " " x ", " bits ", " x "\n\t"

/* The same for shift s >= 0 (left shift, register r holds s, c2 holds zp):
 * x <- SAT(SMMLAR(x << s, m2, (x << s) + zp)) = SAT(SRDHM(x << s, m) + zp). */
#define MIXQ_FZ_RQL(x, m2, c2, r, t, sat, bits)  \
    "lsl " x ", " x ", " r "\n\t"                \
    "add " t ", " x ", " c2 "\n\t"               \
    "smmlar " x ", " x ", " m2 ", " t "\n\t"     \
    sat " " x ", " bits ", " x "\n\t"

/* Any shifts (suffix m): per channel (mm, c2, k, rw) with s = max(shift, 0), r = max(-shift, 0),
 * mm = m 2^(s+1) - k 2^32 (an int32; k = the integer that puts it there, 0 <= k <= 2^s),
 * c2 = 2^(r-1) + zp 2^r (r >= 1) or zp (r = 0), rw = r | 2^31 (r >= 1) or 0:
 * x <- SAT(SMMLAR(x, mm, k x + c2 - [x < 0][r > 0]) >> r)
 * (SMMLAR(x, mm, a) = a - k x + SRDHM(x << s, m); the AND keeps rw where x < 0, its bit 31 then
 * gives the -1 of the sign term; a register ASR takes the low byte of rw, r). */
#define MIXQ_FZ_RQM(x, mm, c2, k, rw, t, sat, bits) \
    "and " t ", " rw ", " x ", asr #31\n\t"          \
    "add " t ", " c2 ", " t ", asr #31\n\t"          \
    "mla " t ", " x ", " k ", " t "\n\t"             \
    "smmlar " x ", " x ", " mm ", " t "\n\t"         \
    "asr " x ", " x ", " rw "\n\t"                   \
    sat " " x ", " bits ", " x "\n\t"

/* The four outputs of a channel pair after requantization are left in registers P0C0, P0C1
 * (pixel 0, channels 0 and 1), P1C0, P1C1. Stores, per output width:
 *   8 bits: four STRB (two per pixel);
 *   4 bits: one byte per pixel (channel 0 in the low nibble);
 *   2 bits: two channel pairs make a byte per pixel; the first pair's crumbs wait in the frame's
 *           spill word (pixel 0 in bits 0-3, pixel 1 in bits 16-19). */
#define MIXQ_FZ_STORE8(p0c0, p0c1, p1c0, p1c1, u, v) \
    "ldrd " u ", " v ", [sp, #32]\n\t"                \
    "strb " p0c0 ", [" u "], #1\n\t"                  \
    "strb " p0c1 ", [" u "], #1\n\t"                  \
    "strb " p1c0 ", [" v "], #1\n\t"                  \
    "strb " p1c1 ", [" v "], #1\n\t"                  \
    "strd " u ", " v ", [sp, #32]\n\t"

#define MIXQ_FZ_STORE4(p0c0, p0c1, p1c0, p1c1, u, v) \
    "orr " p0c0 ", " p0c0 ", " p0c1 ", lsl #4\n\t"   \
    "orr " p1c0 ", " p1c0 ", " p1c1 ", lsl #4\n\t"   \
    "ldrd " u ", " v ", [sp, #32]\n\t"                \
    "strb " p0c0 ", [" u "], #1\n\t"                  \
    "strb " p1c0 ", [" v "], #1\n\t"                  \
    "strd " u ", " v ", [sp, #32]\n\t"

/* first channel pair of a 2-bit byte: crumbs to the spill word */
#define MIXQ_FZ_HOLD2(p0c0, p0c1, p1c0, p1c1)         \
    "orr " p0c0 ", " p0c0 ", " p0c1 ", lsl #2\n\t"   \
    "orr " p1c0 ", " p1c0 ", " p1c1 ", lsl #2\n\t"   \
    "orr " p0c0 ", " p0c0 ", " p1c0 ", lsl #16\n\t"  \
    "str " p0c0 ", [sp, #52]\n\t"

/* second channel pair: merge with the spill word and store one byte per pixel */
#define MIXQ_FZ_STORE2(p0c0, p0c1, p1c0, p1c1, u, v) \
    "orr " p0c0 ", " p0c0 ", " p0c1 ", lsl #2\n\t"   \
    "orr " p1c0 ", " p1c0 ", " p1c1 ", lsl #2\n\t"   \
    "ldr " p0c1 ", [sp, #52]\n\t"                     \
    "orr " p0c1 ", " p0c1 ", " p0c0 ", lsl #4\n\t"   \
    "orr " p0c1 ", " p0c1 ", " p1c0 ", lsl #20\n\t"  \
    "ldrd " u ", " v ", [sp, #32]\n\t"                \
    "strb " p0c1 ", [" u "], #1\n\t"                  \
    "lsr " p0c1 ", " p0c1 ", #16\n\t"                 \
    "strb " p0c1 ", [" v "], #1\n\t"                  \
    "strd " u ", " v ", [sp, #32]\n\t"

/* ---- W8 weights (widen-16 activation rows, any input width) ----------------------------------
 * Inner loop per 4 K values: 3 LDRD, 4 SXTB16, 8 SMLAD (16 MACs); the accumulators start at the
 * per-channel constants. Parameter block per channel pair (8 words):
 * cst0, cst1, m2_0, C2_0, r_0, m2_1, C2_1, r_1. lr walks the parameter blocks. Outputs: r3
 * (pixel 0, channel 0), r4 (0, 1), r5 (1, 0), r6 (1, 1). */
#define MIXQ_FZ_W8_LOOP                                         \
    "ldrd r3, r4, [lr], #8\n\t"                                 \
    "mov r5, r3\n\t"                                            \
    "mov r6, r4\n\t"                                            \
    "ldr r0, [sp, #16]\n\t"                                     \
    "ldr r2, [sp, #20]\n"                                       \
    "2:\n\t"                                                    \
    "ldrd r7, r8, [r1], #8\n\t"                                 \
    "ldrd r11, r12, [r0], #8\n\t"                               \
    "sxtb16 r9, r7\n\t"                                         \
    "sxtb16 r10, r8\n\t"                                        \
    "sxtb16 r7, r7, ror #8\n\t"                                 \
    "sxtb16 r8, r8, ror #8\n\t"                                 \
    "smlad r3, r11, r9, r3\n\t"                                 \
    "smlad r4, r11, r10, r4\n\t"                                \
    "smlad r3, r12, r7, r3\n\t"                                 \
    "smlad r4, r12, r8, r4\n\t"                                 \
    "ldrd r11, r12, [r0], #8\n\t"                               \
    "smlad r5, r11, r9, r5\n\t"                                 \
    "smlad r6, r11, r10, r6\n\t"                                \
    "smlad r5, r12, r7, r5\n\t"                                 \
    "smlad r6, r12, r8, r6\n\t"                                 \
    "subs r2, r2, #1\n\t"                                       \
    "bne 2b\n\t"

#define MIXQ_FZ_W8_PAIR(RQ, sat, bits)                          \
    MIXQ_FZ_W8_LOOP                                             \
    "ldm lr!, {r0, r2, r7, r8, r9, r10}\n\t"                    \
    RQ("r3", "r0", "r2", "r7", "r11", sat, bits)        \
    RQ("r5", "r0", "r2", "r7", "r11", sat, bits)        \
    RQ("r4", "r8", "r9", "r10", "r11", sat, bits)       \
    RQ("r6", "r8", "r9", "r10", "r11", sat, bits)

/* the same with 10-word parameter blocks (cst0, cst1, then mm, c2, k, rw per channel) */
#define MIXQ_FZ_W8_PAIRM(sat, bits)                                       \
    MIXQ_FZ_W8_LOOP                                                       \
    "ldm lr!, {r0, r2, r7, r8}\n\t"                                       \
    MIXQ_FZ_RQM("r3", "r0", "r2", "r7", "r8", "r9", sat, bits)            \
    MIXQ_FZ_RQM("r5", "r0", "r2", "r7", "r8", "r9", sat, bits)            \
    "ldm lr!, {r0, r2, r7, r8}\n\t"                                       \
    MIXQ_FZ_RQM("r4", "r0", "r2", "r7", "r8", "r9", sat, bits)            \
    MIXQ_FZ_RQM("r6", "r0", "r2", "r7", "r8", "r9", sat, bits)

#define MIXQ_FZ_LOOP_LR      \
    "ldr r0, [sp, #28]\n\t"  \
    "cmp lr, r0\n\t"         \
    "bne 1b\n\t"

/* One routine per output width and requantization form (RQ: MIXQ_FZ_RQ for right shifts, name
 * without suffix; MIXQ_FZ_RQL for shifts >= 0, suffix l; MIXQ_FZ_RQM for any shifts, suffix m). */
#define MIXQ_FZ_W8_O8(name, PAIR)                                 \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER                    \
            "ldr r1, [sp, #48]\n\t"                             \
            "ldr lr, [sp, #24]\n"                                \
            "1:\n\t"                                             \
            PAIR("ssat", "#8")                   \
            MIXQ_FZ_STORE8("r3", "r4", "r5", "r6", "r0", "r2")  \
            MIXQ_FZ_LOOP_LR MIXQ_FZ_LEAVE(name))
#define MIXQ_FZ_W8_O4(name, PAIR)                                 \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER                    \
            "ldr r1, [sp, #48]\n\t"                             \
            "ldr lr, [sp, #24]\n"                                \
            "1:\n\t"                                             \
            PAIR("usat", "#4")                   \
            MIXQ_FZ_STORE4("r3", "r4", "r5", "r6", "r0", "r2")  \
            MIXQ_FZ_LOOP_LR MIXQ_FZ_LEAVE(name))
#define MIXQ_FZ_W8_O2(name, PAIR)                                 \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER                    \
            "ldr r1, [sp, #48]\n\t"                             \
            "ldr lr, [sp, #24]\n"                                \
            "1:\n\t"                                             \
            PAIR("usat", "#2")                   \
            MIXQ_FZ_HOLD2("r3", "r4", "r5", "r6")               \
            PAIR("usat", "#2")                   \
            MIXQ_FZ_STORE2("r3", "r4", "r5", "r6", "r0", "r2")  \
            MIXQ_FZ_LOOP_LR MIXQ_FZ_LEAVE(name))

#define MIXQ_FZ_W8_R(sat, bits) MIXQ_FZ_W8_PAIR(MIXQ_FZ_RQ, sat, bits)
#define MIXQ_FZ_W8_L(sat, bits) MIXQ_FZ_W8_PAIR(MIXQ_FZ_RQL, sat, bits)
MIXQ_FZ_W8_O8("mixq_fz_w8o8", MIXQ_FZ_W8_R);
MIXQ_FZ_W8_O4("mixq_fz_w8o4", MIXQ_FZ_W8_R);
MIXQ_FZ_W8_O2("mixq_fz_w8o2", MIXQ_FZ_W8_R);
MIXQ_FZ_W8_O8("mixq_fz_w8o8l", MIXQ_FZ_W8_L);
MIXQ_FZ_W8_O4("mixq_fz_w8o4l", MIXQ_FZ_W8_L);
MIXQ_FZ_W8_O2("mixq_fz_w8o2l", MIXQ_FZ_W8_L);
MIXQ_FZ_W8_O8("mixq_fz_w8o8m", MIXQ_FZ_W8_PAIRM);
MIXQ_FZ_W8_O4("mixq_fz_w8o4m", MIXQ_FZ_W8_PAIRM);
MIXQ_FZ_W8_O2("mixq_fz_w8o2m", MIXQ_FZ_W8_PAIRM);



/* ---- A4W4 (lanes of spacing 11) ----------------------------------------------------------------
 * Inner loop as mixq_block_a4w4 (K <= 544): per 16 K values 10 LDRD, 16 SMLAD, 4 UBFX, 4 ADD;
 * the extracted fields of the two channels of a pixel are summed as two halfwords (r3: pixel 0,
 * r4: pixel 1). Parameter block per channel pair as for W8 (cst includes the -896 K/16 offset).
 * Outputs: r11 (pixel 0, channel 0), r12 (0, 1), r3 (1, 0), r4 (1, 1); lr ends on the next
 * parameter block. */
/* first group (8 K values) of a chunk: p0 / p1 activation words at addressing a0 / a1 (a0 may
 * post-increment the row by a chunk), the weights advanced by a chunk */
#define MIXQ_FZ_A4_G0(a0, a1)                                   \
    "ldrd r5, r6, [r0" a0 "\n\t"                                \
    "ldrd r7, r8, [r1], #32\n\t"                                \
    "smlad r9, r5, r7, lr\n\t"                                  \
    "smlad r9, r6, r8, r9\n\t"                                  \
    "ldrd r7, r8, [r1, #-24]\n\t"                               \
    "smlad r10, r5, r7, lr\n\t"                                 \
    "smlad r10, r6, r8, r10\n\t"                                \
    "ldrd r5, r6, [r0" a1 "\n\t"                                \
    "smlad r12, r5, r7, lr\n\t"                                 \
    "smlad r12, r6, r8, r12\n\t"                                \
    "ldrd r7, r8, [r1, #-32]\n\t"                               \
    "smlad r11, r5, r7, lr\n\t"                                 \
    "smlad r11, r6, r8, r11\n\t"

/* the four fields into the halfword sums */
#define MIXQ_FZ_A4_EXTRACT                                      \
    "ubfx r9, r9, #11, #11\n\t"                                 \
    "ubfx r10, r10, #11, #11\n\t"                               \
    "ubfx r11, r11, #11, #11\n\t"                               \
    "ubfx r12, r12, #11, #11\n\t"                               \
    "add r3, r3, r9\n\t"                                        \
    "add r3, r3, r10, lsl #16\n\t"                              \
    "add r4, r4, r11\n\t"                                       \
    "add r4, r4, r12, lsl #16\n\t"

#define MIXQ_FZ_A4_LOOP                                         \
    "movs r3, #0\n\t"                                           \
    "movs r4, #0\n\t"                                           \
    "ldr r0, [sp, #16]\n\t"                                     \
    "ldr r2, [sp, #20]\n\t"                                     \
    "ldr lr, [sp, #56]\n"                                       \
    "2:\n\t"                                                    \
    MIXQ_FZ_A4_G0("], #32", ", #-24]")                          \
    "ldrd r5, r6, [r0, #-16]\n\t"                               \
    "ldrd r7, r8, [r1, #-16]\n\t"                               \
    "smlad r9, r5, r7, r9\n\t"                                  \
    "smlad r9, r6, r8, r9\n\t"                                  \
    "ldrd r7, r8, [r1, #-8]\n\t"                                \
    "smlad r10, r5, r7, r10\n\t"                                \
    "smlad r10, r6, r8, r10\n\t"                                \
    "ldrd r5, r6, [r0, #-8]\n\t"                                \
    "smlad r12, r5, r7, r12\n\t"                                \
    "smlad r12, r6, r8, r12\n\t"                                \
    "ldrd r7, r8, [r1, #-16]\n\t"                               \
    "smlad r11, r5, r7, r11\n\t"                                \
    "smlad r11, r6, r8, r11\n\t"                                \
    MIXQ_FZ_A4_EXTRACT                                          \
    "subs r2, r2, #1\n\t"                                       \
    "bne 2b\n\t"

/* The same with a last half chunk (suffix t): K % 16 in 1..8 (and K > 16), the loop over the nf
 * full chunks (n of the frame), then the 8 K values of the last chunk's first group only: 5 LDRD,
 * 8 SMLAD, the 4 extractions (21 instructions instead of 36). */
#define MIXQ_FZ_A4_LOOPT                                        \
    MIXQ_FZ_A4_LOOP                                             \
    MIXQ_FZ_A4_G0("]", ", #8]")                                 \
    MIXQ_FZ_A4_EXTRACT

#define MIXQ_FZ_A4_PAIR_OF(LOOP, RQ, sat, bits)                 \
    LOOP                                                        \
    "ldr lr, [sp, #24]\n\t"                                     \
    "ldm lr!, {r0, r2, r5, r6, r7, r8, r9, r10}\n\t"            \
    "str lr, [sp, #24]\n\t"                                     \
    "uxtah r11, r0, r3\n\t"                                     \
    "add r12, r2, r3, lsr #16\n\t"                              \
    "uxtah r3, r0, r4\n\t"                                      \
    "add r4, r2, r4, lsr #16\n\t"                               \
    RQ("r11", "r5", "r6", "r7", "r0", sat, bits)        \
    RQ("r3", "r5", "r6", "r7", "r0", sat, bits)         \
    RQ("r12", "r8", "r9", "r10", "r0", sat, bits)       \
    RQ("r4", "r8", "r9", "r10", "r0", sat, bits)

/* any shifts: 10-word parameter blocks (cst0, cst1, then mm, c2, k, rw per channel) */
#define MIXQ_FZ_A4_PAIRM_OF(LOOP, sat, bits)                                 \
    LOOP                                                                     \
    "ldr lr, [sp, #24]\n\t"                                                  \
    "ldm lr!, {r0, r2, r5, r6, r7, r8}\n\t"                                  \
    "uxtah r11, r0, r3\n\t"                                                  \
    "add r12, r2, r3, lsr #16\n\t"                                           \
    "uxtah r3, r0, r4\n\t"                                                   \
    "add r4, r2, r4, lsr #16\n\t"                                            \
    MIXQ_FZ_RQM("r11", "r5", "r6", "r7", "r8", "r0", sat, bits)              \
    MIXQ_FZ_RQM("r3", "r5", "r6", "r7", "r8", "r0", sat, bits)               \
    "ldm lr!, {r5, r6, r7, r8}\n\t"                                          \
    "str lr, [sp, #24]\n\t"                                                  \
    MIXQ_FZ_RQM("r12", "r5", "r6", "r7", "r8", "r0", sat, bits)              \
    MIXQ_FZ_RQM("r4", "r5", "r6", "r7", "r8", "r0", sat, bits)

/* routines from the code of one channel pair's block (CODE: its inner loop and requantization) */
#define MIXQ_FZ_A4_FN84(name, CODE, STORE)                      \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER                    \
            "ldr r1, [sp, #48]\n"                                \
            "1:\n\t"                                             \
            CODE                                                \
            STORE("r11", "r12", "r3", "r4", "r0", "r2")         \
            MIXQ_FZ_LOOP_LR MIXQ_FZ_LEAVE(name))
#define MIXQ_FZ_A4_FN2(name, CODE)                              \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER                    \
            "ldr r1, [sp, #48]\n"                                \
            "1:\n\t"                                             \
            CODE                                                \
            MIXQ_FZ_HOLD2("r11", "r12", "r3", "r4")             \
            CODE                                                \
            MIXQ_FZ_STORE2("r11", "r12", "r3", "r4", "r0", "r2") \
            MIXQ_FZ_LOOP_LR MIXQ_FZ_LEAVE(name))

/* the nine routines of one inner loop: 8-, 4-, 2-bit outputs, right shifts (no suffix), shifts
 * >= 0 (l), any shifts (m); sfx names the loop */
#define MIXQ_FZ_A4_SET(sfx, LOOP)                                                                       \
    MIXQ_FZ_A4_FN84("mixq_fz_a4o8" sfx, MIXQ_FZ_A4_PAIR_OF(LOOP, MIXQ_FZ_RQ, "ssat", "#8"), MIXQ_FZ_STORE8);    \
    MIXQ_FZ_A4_FN84("mixq_fz_a4o4" sfx, MIXQ_FZ_A4_PAIR_OF(LOOP, MIXQ_FZ_RQ, "usat", "#4"), MIXQ_FZ_STORE4);    \
    MIXQ_FZ_A4_FN2("mixq_fz_a4o2" sfx, MIXQ_FZ_A4_PAIR_OF(LOOP, MIXQ_FZ_RQ, "usat", "#2"));                    \
    MIXQ_FZ_A4_FN84("mixq_fz_a4o8l" sfx, MIXQ_FZ_A4_PAIR_OF(LOOP, MIXQ_FZ_RQL, "ssat", "#8"), MIXQ_FZ_STORE8);  \
    MIXQ_FZ_A4_FN84("mixq_fz_a4o4l" sfx, MIXQ_FZ_A4_PAIR_OF(LOOP, MIXQ_FZ_RQL, "usat", "#4"), MIXQ_FZ_STORE4);  \
    MIXQ_FZ_A4_FN2("mixq_fz_a4o2l" sfx, MIXQ_FZ_A4_PAIR_OF(LOOP, MIXQ_FZ_RQL, "usat", "#2"));                  \
    MIXQ_FZ_A4_FN84("mixq_fz_a4o8m" sfx, MIXQ_FZ_A4_PAIRM_OF(LOOP, "ssat", "#8"), MIXQ_FZ_STORE8);             \
    MIXQ_FZ_A4_FN84("mixq_fz_a4o4m" sfx, MIXQ_FZ_A4_PAIRM_OF(LOOP, "usat", "#4"), MIXQ_FZ_STORE4);             \
    MIXQ_FZ_A4_FN2("mixq_fz_a4o2m" sfx, MIXQ_FZ_A4_PAIRM_OF(LOOP, "usat", "#2"))

MIXQ_FZ_A4_SET("", MIXQ_FZ_A4_LOOP);
MIXQ_FZ_A4_SET("t", MIXQ_FZ_A4_LOOPT); /* a last half chunk */

/* ---- A4W4 whole chunks, unrolled (suffix u: K <= 256 without a last half chunk) ---------------
 * The activation rows of the pixel pair are copied at call start onto the routine's stack, so the
 * inner loop addresses them from sp with immediate offsets and r0 / r2 are free for operands: per
 * group of 8 K values one LDM of the four weight words of both channels (c0 A, c0 B, c1 A, c1 B)
 * and one LDRD per pixel, 8 SMLAD (3 loads instead of 5), lr keeps the preload P for the whole
 * call (the parameter blocks are walked through r0). The inner loop is MIXQ_FZ_A4_UNROLL copies of
 * one 16-K step (2 LDM, 4 LDRD, 16 SMLAD, 4 UBFX, 4 ADD: 30 instructions, 120 bytes), copy j reading
 * the activations at sp + 60 + 32 j; the call copies the n chunks of the rows to copy UNROLL - n
 * and each channel pair enters there by one ADD PC of the frame's k[0] (120 (UNROLL - n) - 2, the
 * caller's), after one LDM of [k0, k1, k2] = [entry, 0, 0] that also clears the halfword sums: no
 * counter, no loop branch. Stack: the 60-byte frame copy and 32 UNROLL bytes of rows. */
#define MIXQ_FZ_A4U_BYTES "572" /* 60 + 32 * 16 */
#define MIXQ_FZ_A4U_UNROLL_S "16"
/* one group of 8 K values at activation offset off (pixel 0 at off, pixel 1 at off + 8); first
 * group of a step: the accumulators start at P (lr) */
#define MIXQ_FZ_A4U_GROUP(off, a9, a10, a11, a12)               \
    "ldm r1!, {r5, r6, r7, r8}\n\t"                             \
    "ldrd r0, r2, [sp, #" off "]\n\t"                           \
    "smlad r9, r0, r5, " a9 "\n\t"                              \
    "smlad r9, r2, r6, r9\n\t"                                  \
    "smlad r10, r0, r7, " a10 "\n\t"                            \
    "smlad r10, r2, r8, r10\n\t"                                \
    "ldrd r0, r2, [sp, #" off " + 8]\n\t"                       \
    "smlad r11, r0, r5, " a11 "\n\t"                            \
    "smlad r11, r2, r6, r11\n\t"                                \
    "smlad r12, r0, r7, " a12 "\n\t"                            \
    "smlad r12, r2, r8, r12\n\t"
#define MIXQ_FZ_A4U_STEP                                        \
    MIXQ_FZ_A4U_GROUP("60 + 32 * \\j", "lr", "lr", "lr", "lr")  \
    MIXQ_FZ_A4U_GROUP("76 + 32 * \\j", "r9", "r10", "r11", "r12") \
    "ubfx r9, r9, #11, #11\n\t"                                 \
    "ubfx r10, r10, #11, #11\n\t"                               \
    "ubfx r11, r11, #11, #11\n\t"                               \
    "ubfx r12, r12, #11, #11\n\t"                               \
    "add.w r3, r3, r9\n\t"                                      \
    "add.w r3, r3, r10, lsl #16\n\t"                            \
    "add.w r4, r4, r11\n\t"                                     \
    "add.w r4, r4, r12, lsl #16\n\t"
#define MIXQ_FZ_A4U_LOOP                                        \
    "ldm sp, {r2, r3, r4}\n"                                    \
    "5:\n\t"                                                    \
    "add pc, r2\n"                                              \
    "6:\n\t"                                                    \
    ".irp j, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n\t" \
    MIXQ_FZ_A4U_STEP                                            \
    ".endr\n"                                                   \
    "7:\n\t"                                                    \
    ".ifne (6b - 5b) - 2\n\t"                                   \
    ".error \"mixq_fz_a4u: the entry is not one 16-bit ADD\"\n\t" \
    ".endif\n\t"                                                \
    ".ifne (7b - 6b) - 120 * " MIXQ_FZ_A4U_UNROLL_S "\n\t"      \
    ".error \"mixq_fz_a4u: the unrolled steps are not 120 bytes each\"\n\t" \
    ".endif\n\t"
/* call start: the activation rows of the pixel pair to sp + 572 - 32 n (n: the frame's chunks).
 * Frame pre0 = 0: copied from the rows at ap (im2col, ring, stream rows: the n chunks). Otherwise
 * pre0 / pre1 point at the packed inputs of the two pixels (pointwise, Cin % 8 == 0, whole words)
 * and k[3] holds Cin / 8: each input word of each pixel (8 nibbles) becomes the two lane words of
 * one group, as mixq_nibble_lanes computes them (a - 8 in every nibble, pairs at spacing 11), the
 * four lane words of a group (p0 A, p0 B, p1 A, p1 B) stored by one STM; 25 instructions per group
 * of both pixels. When Cin % 16 == 8 the last group of the last chunk is not written: its weights
 * are the zero padding, so whatever the stack holds there adds 0. */
#define MIXQ_FZ_A4U_COPY MIXQ_FZ_A4U_COPY_OF("")
#define MIXQ_FZ_A4U_COPY_OF(more)                               \
    "ldrd r0, r1, [sp, #40]\n\t"                                \
    "ldr r2, [sp, #20]\n\t"                                     \
    "add r3, sp, #572\n\t"                                      \
    "sub r3, r3, r2, lsl #5\n\t"                                \
    "cbnz r0, 9f\n\t"                                           \
    more                                                        \
    "ldr r0, [sp, #16]\n"                                       \
    "8:\n\t"                                                    \
    "ldm r0!, {r4, r5, r6, r7, r8, r9, r10, r11}\n\t"           \
    "stm r3!, {r4, r5, r6, r7, r8, r9, r10, r11}\n\t"           \
    "subs r2, r2, #1\n\t"                                       \
    "bne 8b\n\t"                                                \
    "b 10f\n"                                                    \
    "9:\n\t"                                                    \
    "ldr r2, [sp, #12]\n\t"                                     \
    "mov r12, #0x0F0F0F0F\n\t"                                  \
    "movw r11, #0x4008\n\t"                                     \
    "movt r11, #0x4008\n"                                       \
    "11:\n\t"                                                   \
    "ldr r4, [r0], #4\n\t"                                      \
    "ldr r5, [r1], #4\n\t"                                      \
    "and r6, r4, r12\n\t"                                       \
    "and r7, r12, r4, lsr #4\n\t"                               \
    "uxtb16 r8, r6\n\t"                                         \
    "uxtb16 r9, r7\n\t"                                         \
    "orr r8, r8, r9, lsl #11\n\t"                               \
    "ssub16 r8, r8, r11\n\t"                                    \
    "uxtb16 r6, r6, ror #8\n\t"                                 \
    "uxtb16 r7, r7, ror #8\n\t"                                 \
    "orr r9, r6, r7, lsl #11\n\t"                               \
    "ssub16 r9, r9, r11\n\t"                                    \
    "and r6, r5, r12\n\t"                                       \
    "and r7, r12, r5, lsr #4\n\t"                               \
    "uxtb16 r10, r6\n\t"                                        \
    "uxtb16 r4, r7\n\t"                                         \
    "orr r10, r10, r4, lsl #11\n\t"                             \
    "ssub16 r10, r10, r11\n\t"                                  \
    "uxtb16 r6, r6, ror #8\n\t"                                 \
    "uxtb16 r7, r7, ror #8\n\t"                                 \
    "orr lr, r6, r7, lsl #11\n\t"                               \
    "ssub16 lr, lr, r11\n\t"                                    \
    "stm r3!, {r8, r9, r10, lr}\n\t"                            \
    "subs r2, r2, #1\n\t"                                       \
    "bne 11b\n"                                                  \
    "10:\n\t"
/* the fields and the constants into x: r12 (pixel 0, channel 0), r3 (0, 1), r2 (1, 0), r4 (1, 1) */
#define MIXQ_FZ_A4U_PAIR(RQ, sat, bits) MIXQ_FZ_A4U_PAIR_OF(MIXQ_FZ_A4U_LOOP, RQ, sat, bits)
#define MIXQ_FZ_A4U_PAIR_OF(LOOP, RQ, sat, bits)                \
    LOOP                                                        \
    "ldr r0, [sp, #24]\n\t"                                     \
    "ldm r0!, {r2, r5, r6, r7, r8, r9, r10, r11}\n\t"           \
    "str r0, [sp, #24]\n\t"                                     \
    "uxtah r12, r2, r3\n\t"                                     \
    "uxtah r2, r2, r4\n\t"                                      \
    "add r3, r5, r3, lsr #16\n\t"                               \
    "add r4, r5, r4, lsr #16\n\t"                               \
    RQ("r12", "r6", "r7", "r8", "r0", sat, bits)                \
    RQ("r2", "r6", "r7", "r8", "r0", sat, bits)                 \
    RQ("r3", "r9", "r10", "r11", "r0", sat, bits)               \
    RQ("r4", "r9", "r10", "r11", "r0", sat, bits)
/* any shifts: 10-word parameter blocks (cst0, cst1, then mm, c2, k, rw per channel) */
#define MIXQ_FZ_A4U_PAIRM(sat, bits) MIXQ_FZ_A4U_PAIRM_OF(MIXQ_FZ_A4U_LOOP, sat, bits)
#define MIXQ_FZ_A4U_PAIRM_OF(LOOP, sat, bits)                                \
    LOOP                                                                     \
    "ldr r0, [sp, #24]\n\t"                                                  \
    "ldm r0!, {r2, r5, r6, r7, r8, r9}\n\t"                                  \
    "uxtah r12, r2, r3\n\t"                                                  \
    "uxtah r2, r2, r4\n\t"                                                   \
    "add r3, r5, r3, lsr #16\n\t"                                            \
    "add r4, r5, r4, lsr #16\n\t"                                            \
    MIXQ_FZ_RQM("r12", "r6", "r7", "r8", "r9", "r10", sat, bits)             \
    MIXQ_FZ_RQM("r2", "r6", "r7", "r8", "r9", "r10", sat, bits)              \
    "ldm r0!, {r6, r7, r8, r9}\n\t"                                          \
    "str r0, [sp, #24]\n\t"                                                  \
    MIXQ_FZ_RQM("r3", "r6", "r7", "r8", "r9", "r10", sat, bits)              \
    MIXQ_FZ_RQM("r4", "r6", "r7", "r8", "r9", "r10", sat, bits)

#define MIXQ_FZ_A4U_FN84(name, CODE, STORE) MIXQ_FZ_A4U_FN84_OF(name, CODE, STORE, MIXQ_FZ_A4U_BYTES, MIXQ_FZ_A4U_COPY)
#define MIXQ_FZ_A4U_FN84_OF(name, CODE, STORE, bytes, copy)                  \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER_OF(bytes)                       \
            copy                                                             \
            "ldr r1, [sp, #48]\n\t"                                          \
            "ldr lr, [sp, #56]\n"                                            \
            "1:\n\t"                                                         \
            CODE                                                             \
            STORE("r12", "r3", "r2", "r4", "r0", "r5")                       \
            "ldrd r0, r2, [sp, #24]\n\t"                                   \
            "cmp r0, r2\n\t"                                               \
            "bne 1b\n\t"                                                   \
            MIXQ_FZ_LEAVE_OF(name, bytes))
#define MIXQ_FZ_A4U_FN2(name, CODE) MIXQ_FZ_A4U_FN2_OF(name, CODE, MIXQ_FZ_A4U_BYTES, MIXQ_FZ_A4U_COPY)
#define MIXQ_FZ_A4U_FN2_OF(name, CODE, bytes, copy)                          \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER_OF(bytes)                       \
            copy                                                             \
            "ldr r1, [sp, #48]\n\t"                                          \
            "ldr lr, [sp, #56]\n"                                            \
            "1:\n\t"                                                         \
            CODE                                                             \
            MIXQ_FZ_HOLD2("r12", "r3", "r2", "r4")                           \
            CODE                                                             \
            MIXQ_FZ_STORE2("r12", "r3", "r2", "r4", "r0", "r5")              \
            "ldrd r0, r2, [sp, #24]\n\t"                                   \
            "cmp r0, r2\n\t"                                               \
            "bne 1b\n\t"                                                   \
            MIXQ_FZ_LEAVE_OF(name, bytes))

MIXQ_FZ_A4U_FN84("mixq_fz_a4o8u", MIXQ_FZ_A4U_PAIR(MIXQ_FZ_RQ, "ssat", "#8"), MIXQ_FZ_STORE8);
MIXQ_FZ_A4U_FN84("mixq_fz_a4o4u", MIXQ_FZ_A4U_PAIR(MIXQ_FZ_RQ, "usat", "#4"), MIXQ_FZ_STORE4);
MIXQ_FZ_A4U_FN2("mixq_fz_a4o2u", MIXQ_FZ_A4U_PAIR(MIXQ_FZ_RQ, "usat", "#2"));
MIXQ_FZ_A4U_FN84("mixq_fz_a4o8lu", MIXQ_FZ_A4U_PAIR(MIXQ_FZ_RQL, "ssat", "#8"), MIXQ_FZ_STORE8);
MIXQ_FZ_A4U_FN84("mixq_fz_a4o4lu", MIXQ_FZ_A4U_PAIR(MIXQ_FZ_RQL, "usat", "#4"), MIXQ_FZ_STORE4);
MIXQ_FZ_A4U_FN2("mixq_fz_a4o2lu", MIXQ_FZ_A4U_PAIR(MIXQ_FZ_RQL, "usat", "#2"));
MIXQ_FZ_A4U_FN84("mixq_fz_a4o8mu", MIXQ_FZ_A4U_PAIRM("ssat", "#8"), MIXQ_FZ_STORE8);
MIXQ_FZ_A4U_FN84("mixq_fz_a4o4mu", MIXQ_FZ_A4U_PAIRM("usat", "#4"), MIXQ_FZ_STORE4);
MIXQ_FZ_A4U_FN2("mixq_fz_a4o2mu", MIXQ_FZ_A4U_PAIRM("usat", "#2"));

/* The same with a last half chunk (suffix ut: K > 16, K % 16 in 1..8, kp <= 256): the frame's n
 * whole chunks in the unrolled steps, then the first group of the last chunk at sp + 572 (its
 * second group is zero padding: the weight pointer skips it), 20 instructions; the call copies
 * n + 1 chunks (the pointwise conversion writes the Cin / 8 groups there anyway). Stack: 32 bytes
 * more than the u routines. */
#define MIXQ_FZ_A4UT_BYTES "604" /* 572 + 32 */
#define MIXQ_FZ_A4UT_COPY MIXQ_FZ_A4U_COPY_OF("add r2, r2, #1\n\t")
#define MIXQ_FZ_A4UT_LOOP                                       \
    MIXQ_FZ_A4U_LOOP                                            \
    MIXQ_FZ_A4U_GROUP("572", "lr", "lr", "lr", "lr")            \
    "add r1, r1, #16\n\t"                                       \
    "ubfx r9, r9, #11, #11\n\t"                                 \
    "ubfx r10, r10, #11, #11\n\t"                               \
    "ubfx r11, r11, #11, #11\n\t"                               \
    "ubfx r12, r12, #11, #11\n\t"                               \
    "add r3, r3, r9\n\t"                                        \
    "add r3, r3, r10, lsl #16\n\t"                              \
    "add r4, r4, r11\n\t"                                       \
    "add r4, r4, r12, lsl #16\n\t"
#define MIXQ_FZ_A4UT_SET(rsfx, RQ, sat, bits, STORE)                                                    \
    MIXQ_FZ_A4U_FN84_OF("mixq_fz_a4o" bits rsfx "ut", MIXQ_FZ_A4U_PAIR_OF(MIXQ_FZ_A4UT_LOOP, RQ, sat, "#" bits), \
                        STORE, MIXQ_FZ_A4UT_BYTES, MIXQ_FZ_A4UT_COPY)
MIXQ_FZ_A4UT_SET("", MIXQ_FZ_RQ, "ssat", "8", MIXQ_FZ_STORE8);
MIXQ_FZ_A4UT_SET("", MIXQ_FZ_RQ, "usat", "4", MIXQ_FZ_STORE4);
MIXQ_FZ_A4UT_SET("l", MIXQ_FZ_RQL, "ssat", "8", MIXQ_FZ_STORE8);
MIXQ_FZ_A4UT_SET("l", MIXQ_FZ_RQL, "usat", "4", MIXQ_FZ_STORE4);
MIXQ_FZ_A4U_FN84_OF("mixq_fz_a4o8mut", MIXQ_FZ_A4U_PAIRM_OF(MIXQ_FZ_A4UT_LOOP, "ssat", "#8"), MIXQ_FZ_STORE8,
                    MIXQ_FZ_A4UT_BYTES, MIXQ_FZ_A4UT_COPY);
MIXQ_FZ_A4U_FN84_OF("mixq_fz_a4o4mut", MIXQ_FZ_A4U_PAIRM_OF(MIXQ_FZ_A4UT_LOOP, "usat", "#4"), MIXQ_FZ_STORE4,
                    MIXQ_FZ_A4UT_BYTES, MIXQ_FZ_A4UT_COPY);
MIXQ_FZ_A4U_FN2_OF("mixq_fz_a4o2ut", MIXQ_FZ_A4U_PAIR_OF(MIXQ_FZ_A4UT_LOOP, MIXQ_FZ_RQ, "usat", "#2"),
                   MIXQ_FZ_A4UT_BYTES, MIXQ_FZ_A4UT_COPY);
MIXQ_FZ_A4U_FN2_OF("mixq_fz_a4o2lut", MIXQ_FZ_A4U_PAIR_OF(MIXQ_FZ_A4UT_LOOP, MIXQ_FZ_RQL, "usat", "#2"),
                   MIXQ_FZ_A4UT_BYTES, MIXQ_FZ_A4UT_COPY);
MIXQ_FZ_A4U_FN2_OF("mixq_fz_a4o2mut", MIXQ_FZ_A4U_PAIRM_OF(MIXQ_FZ_A4UT_LOOP, "usat", "#2"),
                   MIXQ_FZ_A4UT_BYTES, MIXQ_FZ_A4UT_COPY);



/* ---- A2W2 (lanes of spacing 12) ----------------------------------------------------------------
 * Inner loop as mixq_block_a2w2 (one extraction chunk): per 16 K values 1 LDRD of weights, 8 AND
 * with a rotated operand, 4 LDRD of activations (lane j of both pixels), 16 SMLAD, unrolled (no
 * counter, no branch; below: whole steps, a trimmed tail, K <= 8). The
 * accumulators start at pre_p = (6K - 2 sum(a_p)) << 12, so that the field [12, 24) ends as
 * S' = sum(a u) - 2 sum(a) + 6K in [0, 15K] (K <= 272). Accumulators: r3 (pixel 0, channel 0),
 * r4 (0, 1), r5 (1, 0), r6 (1, 1). */
/* one lane word of the block: the weight lanes of both channels from r7 / r8 rotated by rot, the
 * activation lanes of both pixels at [r0 + addr, four SMLAD */
#define MIXQ_FZ_A2_LANE(rot, addr)               \
    "and r9, lr, r7" rot "\n\t"                 \
    "and r10, lr, r8" rot "\n\t"                \
    "ldrd r11, r12, [r0" addr "\n\t"            \
    "smlad r3, r11, r9, r3\n\t"                 \
    "smlad r4, r11, r10, r4\n\t"                \
    "smlad r5, r12, r9, r5\n\t"                 \
    "smlad r6, r12, r10, r6\n\t"

/* the mask's load into lr (the routines that use lr for their parameter blocks), or nothing where
 * lr keeps it (the threshold routines) */
#define MIXQ_FZ_A2_LDM "ldr lr, [sp, #56]\n\t"

/* 2-bit outputs through per-channel thresholds: the output of channel c is the number of its
 * thresholds T1 <= T2 <= T3 that S' reaches. Bits [8, 24) of the accumulator are
 * 16 S' + (low field >> 8), one halfword per pixel after LSL + PKHTB; USUB16 against 16 T (both
 * halfwords) sets the GE flags of the pixels with S' >= T, and SEL picks 1, 2 or 3 (k1..k3 of the
 * frame, k0 = 0). Parameter block per channel pair (6 words): 16 T1 | 16 T1 << 16, ... for
 * channel 0, then channel 1. Leaves pixel 0's crumbs (channel 0, channel 1) in bits 0-3 of r3 and
 * pixel 1's in bits 16-19. */
#define MIXQ_FZ_A2_PAIR_OF(LOOP)             \
    LOOP                                     \
    "lsl r5, r5, #8\n\t"                     \
    "pkhtb r3, r5, r3, asr #8\n\t"           \
    "lsl r6, r6, #8\n\t"                     \
    "pkhtb r4, r6, r4, asr #8\n\t"           \
    "ldr r0, [sp, #24]\n\t"                  \
    "ldm r0!, {r5, r6, r7, r8, r9, r10}\n\t" \
    "str r0, [sp, #24]\n\t"                  \
    "ldm sp, {r0, r2, r11, r12}\n\t"         \
    "usub16 r5, r3, r5\n\t"                  \
    "sel r5, r2, r0\n\t"                     \
    "usub16 r6, r3, r6\n\t"                  \
    "sel r5, r11, r5\n\t"                    \
    "usub16 r7, r3, r7\n\t"                  \
    "sel r3, r12, r5\n\t"                    \
    "usub16 r8, r4, r8\n\t"                  \
    "sel r5, r2, r0\n\t"                     \
    "usub16 r9, r4, r9\n\t"                  \
    "sel r5, r11, r5\n\t"                    \
    "usub16 r10, r4, r10\n\t"                \
    "sel r4, r12, r5\n\t"                    \
    "orr r3, r3, r4, lsl #2\n\t"

/* ---- A2 inner loops -----------------------------------------------------------------------------
 * Whole steps (every A2 routine without suffix, K > 8 without a trimmed tail, and the suffix t before
 * its tail): the inner loop as MIXQ_FZ_A2_UNROLL copies of one 16-K step (29 instructions, each 32 bits wide:
 * 116 bytes), entered at copy UNROLL - n by an ADD PC of the offset the caller puts in the frame's n
 * (116 (UNROLL - n) - 2: the PC reads 4 past the 16-bit ADD, the copies start 2 past it): no
 * counter, no loop branch, the same offset for both channel pairs of a byte. At call start the
 * routine writes [ap, entry, pre0, pre0, pre1, pre1] above the frame copy (sp + 60), so that one
 * LDM sets the activation pointer, the entry and the four accumulators of each channel pair. */
#define MIXQ_FZ_A2_UNROLL_S "17" /* K <= 272 (MIXQ_FZ_A2_MAX_K): at most 17 steps of 16 (MIXQ_FZ_A2_UNROLL) */
#define MIXQ_FZ_A2_XBYTES "84" /* the frame copy and the 6-word block at sp + 60 */
#define MIXQ_FZ_A2_STEP                      \
    "ldrd r7, r8, [r1], #8\n\t"              \
    MIXQ_FZ_A2_LANE("", "], #32")            \
    MIXQ_FZ_A2_LANE(", ror #2", ", #-24]")   \
    MIXQ_FZ_A2_LANE(", ror #8", ", #-16]")   \
    MIXQ_FZ_A2_LANE(", ror #10", ", #-8]")
#define MIXQ_FZ_A2_STEP4 MIXQ_FZ_A2_STEP MIXQ_FZ_A2_STEP MIXQ_FZ_A2_STEP MIXQ_FZ_A2_STEP
/* call start: the block at sp + 60 (r1 and lr are set after it) */
#define MIXQ_FZ_A2_XBLOCK                    \
    "ldrd r3, r5, [sp, #40]\n\t"            \
    "mov r4, r3\n\t"                         \
    "mov r6, r5\n\t"                         \
    "ldrd r1, r2, [sp, #16]\n\t"            \
    "add r0, sp, #60\n\t"                    \
    "stm r0, {r1-r6}\n\t"
#define MIXQ_FZ_A2_LOOPU MIXQ_FZ_A2_LOOPU_OF(MIXQ_FZ_A2_LDM)
#define MIXQ_FZ_A2_LOOPUK MIXQ_FZ_A2_LOOPU_OF("")
#define MIXQ_FZ_A2_LOOPU_OF(ldm)             \
    "add r0, sp, #60\n\t"                    \
    "ldm r0, {r0, r2, r3, r4, r5, r6}\n\t"   \
    ldm                                      \
    "5:\n\t"                                 \
    "add pc, r2\n\t"                         \
    "6:\n\t"                                 \
    MIXQ_FZ_A2_STEP4 MIXQ_FZ_A2_STEP4 MIXQ_FZ_A2_STEP4 MIXQ_FZ_A2_STEP4 MIXQ_FZ_A2_STEP \
    "7:\n\t"                                 \
    ".ifne (6b - 5b) - 2\n\t"                \
    ".error \"mixq_fz_a2o2: the entry is not one 16-bit ADD\"\n\t" \
    ".endif\n\t"                             \
    ".ifne (7b - 6b) - 116 * " MIXQ_FZ_A2_UNROLL_S "\n\t" \
    ".error \"mixq_fz_a2o2: the unrolled steps are not 116 bytes each\"\n\t" \
    ".endif\n\t"

/* The trimmed tail after the unrolled steps (suffix t): frame n = entry | tail << 16, the block at
 * sp + 60 gets the tail's offset as its 7th word, 28 (3 - t) - 2 (-2 for t = 3: ASR of n; one lane: 7 instructions of 32
 * bits); one LDRD of the last weight word and an ADD PC enter the lanes in reverse order. */
#define MIXQ_FZ_A2_XBYTES_T "88"
#define MIXQ_FZ_A2_XBLOCK_T                  \
    "ldrd r3, r5, [sp, #40]\n\t"            \
    "mov r4, r3\n\t"                         \
    "mov r6, r5\n\t"                         \
    "ldrd r1, r2, [sp, #16]\n\t"            \
    "asr r7, r2, #16\n\t"                    \
    "uxth r2, r2\n\t"                        \
    "add r0, sp, #60\n\t"                    \
    "stm r0, {r1-r7}\n\t"
#define MIXQ_FZ_A2_LOOPTU MIXQ_FZ_A2_LOOPTU_OF(MIXQ_FZ_A2_LDM)
#define MIXQ_FZ_A2_LOOPTUK MIXQ_FZ_A2_LOOPTU_OF("")
#define MIXQ_FZ_A2_LOOPTU_OF(ldm)            \
    MIXQ_FZ_A2_LOOPU_OF(ldm)                 \
    "ldr r2, [sp, #84]\n\t"                  \
    "ldrd r7, r8, [r1], #8\n\t"              \
    "3:\n\t"                                 \
    "add pc, r2\n\t"                         \
    "4:\n\t"                                 \
    MIXQ_FZ_A2_LANE(", ror #8", ", #16]")    \
    MIXQ_FZ_A2_LANE(", ror #2", ", #8]")     \
    MIXQ_FZ_A2_LANE("", "]")                 \
    "8:\n\t"                                 \
    ".ifne (4b - 3b) - 2\n\t"                \
    ".error \"mixq_fz_a2o2t: the tail entry is not one 16-bit ADD\"\n\t" \
    ".endif\n\t"                             \
    ".ifne (8b - 4b) - 84\n\t"               \
    ".error \"mixq_fz_a2o2t: the tail lanes are not 28 bytes each\"\n\t" \
    ".endif\n\t"

/* K <= 8 (suffix h): the block at sp + 60 holds [lane 0 of pixels 0 and 1, pre0, pre0, pre1, pre1,
 * lane 1 of pixels 0 and 1], all of it one LDM per channel pair */
#define MIXQ_FZ_A2_XBYTES_H "92"
#define MIXQ_FZ_A2_XBLOCK_H                  \
    "ldrd r3, r5, [sp, #40]\n\t"            \
    "mov r4, r3\n\t"                         \
    "mov r6, r5\n\t"                         \
    "ldr r0, [sp, #16]\n\t"                  \
    "ldrd r1, r2, [r0]\n\t"                  \
    "ldrd r7, r8, [r0, #8]\n\t"              \
    "add r0, sp, #60\n\t"                    \
    "stm r0, {r1-r8}\n\t"
#define MIXQ_FZ_A2_HALFU MIXQ_FZ_A2_HALFU_OF(MIXQ_FZ_A2_LDM)
#define MIXQ_FZ_A2_HALFUK MIXQ_FZ_A2_HALFU_OF("")
#define MIXQ_FZ_A2_HALFU_OF(ldm)             \
    "add r0, sp, #60\n\t"                    \
    "ldm r0, {r0, r2, r3, r4, r5, r6, r11, r12}\n\t" \
    ldm                                      \
    "ldrd r7, r8, [r1], #8\n\t"              \
    "and r9, lr, r7\n\t"                     \
    "and r10, lr, r8\n\t"                    \
    "smlad r3, r0, r9, r3\n\t"               \
    "smlad r4, r0, r10, r4\n\t"              \
    "smlad r5, r2, r9, r5\n\t"               \
    "smlad r6, r2, r10, r6\n\t"              \
    "and r9, lr, r7, ror #2\n\t"             \
    "and r10, lr, r8, ror #2\n\t"            \
    "smlad r3, r11, r9, r3\n\t"              \
    "smlad r4, r11, r10, r4\n\t"             \
    "smlad r5, r12, r9, r5\n\t"              \
    "smlad r6, r12, r10, r6\n\t"

#define MIXQ_FZ_A2_THR_OF(name, LOOP, bytes, xblock) \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER_OF(bytes) \
            xblock                                    \
            "ldr r1, [sp, #48]\n\t"                   \
            "ldr lr, [sp, #56]\n"                     \
            "1:\n\t"                                  \
            MIXQ_FZ_A2_PAIR_OF(LOOP)                 \
            "str r3, [sp, #52]\n\t"                   \
            MIXQ_FZ_A2_PAIR_OF(LOOP)                 \
            "ldr r4, [sp, #52]\n\t"                   \
            "orr r3, r4, r3, lsl #4\n\t"              \
            "ldrd r0, r2, [sp, #32]\n\t"              \
            "strb r3, [r0], #1\n\t"                   \
            "lsr r3, r3, #16\n\t"                     \
            "strb r3, [r2], #1\n\t"                   \
            "strd r0, r2, [sp, #32]\n\t"              \
            "ldrd r0, r2, [sp, #24]\n\t"              \
            "cmp r0, r2\n\t"                          \
            "bne 1b\n\t"                              \
            MIXQ_FZ_LEAVE_OF(name, bytes))


/* 8- and 4-bit outputs through the SMMLAR form: x = S' + cst', cst' = cst - 6K (parameter block as
 * for W8). */
#define MIXQ_FZ_A2_RQ(LOOP, RQ, sat, bits)                          \
    LOOP                                                        \
    "ubfx r3, r3, #12, #12\n\t"                                 \
    "ubfx r4, r4, #12, #12\n\t"                                 \
    "ubfx r5, r5, #12, #12\n\t"                                 \
    "ubfx r6, r6, #12, #12\n\t"                                 \
    "ldr lr, [sp, #24]\n\t"                                     \
    "ldm lr!, {r0, r2, r7, r8, r9, r10, r11, r12}\n\t"          \
    "str lr, [sp, #24]\n\t"                                     \
    "add r3, r3, r0\n\t"                                        \
    "add r5, r5, r0\n\t"                                        \
    "add r4, r4, r2\n\t"                                        \
    "add r6, r6, r2\n\t"                                        \
    RQ("r3", "r7", "r8", "r9", "r0", sat, bits)         \
    RQ("r5", "r7", "r8", "r9", "r0", sat, bits)         \
    RQ("r4", "r10", "r11", "r12", "r2", sat, bits)      \
    RQ("r6", "r10", "r11", "r12", "r2", sat, bits)

/* any shifts: 10-word parameter blocks; lr is a temporary */
#define MIXQ_FZ_A2_RQM_OF(LOOP, sat, bits)                                   \
    LOOP                                                                     \
    "ubfx r3, r3, #12, #12\n\t"                                              \
    "ubfx r4, r4, #12, #12\n\t"                                              \
    "ubfx r5, r5, #12, #12\n\t"                                              \
    "ubfx r6, r6, #12, #12\n\t"                                              \
    "ldr lr, [sp, #24]\n\t"                                                  \
    "ldm lr!, {r0, r2, r7, r8, r9, r10, r11, r12}\n\t"                       \
    "add r3, r3, r0\n\t"                                                     \
    "add r5, r5, r0\n\t"                                                     \
    "add r4, r4, r2\n\t"                                                     \
    "add r6, r6, r2\n\t"                                                     \
    "ldm lr!, {r0, r2}\n\t"                                                  \
    "str lr, [sp, #24]\n\t"                                                  \
    MIXQ_FZ_RQM("r3", "r7", "r8", "r9", "r10", "lr", sat, bits)              \
    MIXQ_FZ_RQM("r5", "r7", "r8", "r9", "r10", "lr", sat, bits)              \
    MIXQ_FZ_RQM("r4", "r11", "r12", "r0", "r2", "lr", sat, bits)             \
    MIXQ_FZ_RQM("r6", "r11", "r12", "r0", "r2", "lr", sat, bits)

#define MIXQ_FZ_LOOP_FRAME       \
    "ldrd r0, r2, [sp, #24]\n\t" \
    "cmp r0, r2\n\t"             \
    "bne 1b\n\t"

/* routines from the code of one channel pair's block (CODE: its inner loop and requantization) */
#define MIXQ_FZ_A2_FN84(name, CODE, STORE, bytes, xblock)       \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER_OF(bytes) xblock   \
            "ldr r1, [sp, #48]\n"                                \
            "1:\n\t"                                             \
            CODE                                                \
            STORE("r3", "r4", "r5", "r6", "r0", "r2")           \
            MIXQ_FZ_LOOP_FRAME MIXQ_FZ_LEAVE_OF(name, bytes))

/* 2-bit outputs through the SMMLAR form (few output pixels: no threshold placement at call start);
 * two channel pairs per stored byte. */
#define MIXQ_FZ_A2_FN2(name, CODE, bytes, xblock)                \
    __asm__(MIXQ_FZ_FUNC(name) MIXQ_FZ_ENTER_OF(bytes) xblock   \
            "ldr r1, [sp, #48]\n"                                \
            "1:\n\t"                                             \
            CODE                                                \
            MIXQ_FZ_HOLD2("r3", "r4", "r5", "r6")               \
            CODE                                                \
            MIXQ_FZ_STORE2("r3", "r4", "r5", "r6", "r0", "r2")  \
            MIXQ_FZ_LOOP_FRAME MIXQ_FZ_LEAVE_OF(name, bytes))

/* the ten routines of one inner loop: 2-bit outputs through thresholds, then 8-, 4-, 2-bit outputs
 * through the SMMLAR form with right shifts (2-bit: suffix r), shifts >= 0 (l), any shifts (m);
 * sfx names the loop */
#define MIXQ_FZ_A2_SET(sfx, LOOP, LOOPK) MIXQ_FZ_A2_SET_OF(sfx, LOOP, LOOPK, MIXQ_FZ_BYTES, "")
#define MIXQ_FZ_A2_SET_OF(sfx, LOOP, LOOPK, b, x)                                                               \
    MIXQ_FZ_A2_THR_OF("mixq_fz_a2o2" sfx, LOOPK, b, x);                                                      \
    MIXQ_FZ_A2_FN84("mixq_fz_a2o8" sfx, MIXQ_FZ_A2_RQ(LOOP, MIXQ_FZ_RQ, "ssat", "#8"), MIXQ_FZ_STORE8, b, x);   \
    MIXQ_FZ_A2_FN84("mixq_fz_a2o4" sfx, MIXQ_FZ_A2_RQ(LOOP, MIXQ_FZ_RQ, "usat", "#4"), MIXQ_FZ_STORE4, b, x);   \
    MIXQ_FZ_A2_FN2("mixq_fz_a2o2r" sfx, MIXQ_FZ_A2_RQ(LOOP, MIXQ_FZ_RQ, "usat", "#2"), b, x);                   \
    MIXQ_FZ_A2_FN84("mixq_fz_a2o8l" sfx, MIXQ_FZ_A2_RQ(LOOP, MIXQ_FZ_RQL, "ssat", "#8"), MIXQ_FZ_STORE8, b, x); \
    MIXQ_FZ_A2_FN84("mixq_fz_a2o4l" sfx, MIXQ_FZ_A2_RQ(LOOP, MIXQ_FZ_RQL, "usat", "#4"), MIXQ_FZ_STORE4, b, x); \
    MIXQ_FZ_A2_FN2("mixq_fz_a2o2l" sfx, MIXQ_FZ_A2_RQ(LOOP, MIXQ_FZ_RQL, "usat", "#2"), b, x);                 \
    MIXQ_FZ_A2_FN84("mixq_fz_a2o8m" sfx, MIXQ_FZ_A2_RQM_OF(LOOP, "ssat", "#8"), MIXQ_FZ_STORE8, b, x);          \
    MIXQ_FZ_A2_FN84("mixq_fz_a2o4m" sfx, MIXQ_FZ_A2_RQM_OF(LOOP, "usat", "#4"), MIXQ_FZ_STORE4, b, x);          \
    MIXQ_FZ_A2_FN2("mixq_fz_a2o2m" sfx, MIXQ_FZ_A2_RQM_OF(LOOP, "usat", "#2"), b, x)

/* whole steps (K > 8, no trimmed tail): the unrolled steps, entered at copy 17 - n */
MIXQ_FZ_A2_SET_OF("", MIXQ_FZ_A2_LOOPU, MIXQ_FZ_A2_LOOPUK, MIXQ_FZ_A2_XBYTES, MIXQ_FZ_A2_XBLOCK);
/* K <= 8: lanes 0 and 1 only */
MIXQ_FZ_A2_SET_OF("h", MIXQ_FZ_A2_HALFU, MIXQ_FZ_A2_HALFUK, MIXQ_FZ_A2_XBYTES_H, MIXQ_FZ_A2_XBLOCK_H);
/* a last partial weight word trimmed */
MIXQ_FZ_A2_SET_OF("t", MIXQ_FZ_A2_LOOPTU, MIXQ_FZ_A2_LOOPTUK, MIXQ_FZ_A2_XBYTES_T, MIXQ_FZ_A2_XBLOCK_T);


/* ---- stream rows: gather of a pixel pair (mixq_srow_pair in mixq_conv_dsp.h) -----------------
 * Frame (mixq_sgf): 0 plan, 4 B0, 8 sh0, 12 B1, 16 sh1, 20 dst, then A2: 24 lane table,
 * 28 0x10011001, 32 t0, 36 t1 (segment sums, accumulated); A4: 24 0x78007800, 28 0x40084008,
 * 32 0x000F000F. The plan holds, per stream word, the number of pieces that start in it, then per
 * piece {p, mask, mul}; a negative count ends it. Per piece and pixel: v = (load(p + B) >> sh) &
 * mask, added into the pixel's 64-bit accumulator (r5:r6, r7:r8) as v mul (UMLAL); after the
 * pieces of a word its low halves are the two pixels' stream words: B and sh go to the stack
 * while they are converted (A2: 4 table lanes each, stored as lane pairs with STRD, sums by SMLAD;
 * A4: 2 lane words each), then the accumulators move down by 32 bits. 11 instructions per piece
 * (both pixels), 42 (A2) / 32 (A4) per stream word. */
#define MIXQ_SG_PIECES                       \
    "1:\n\t"                                 \
    "ldm r0!, {r9, r10, r11}\n\t"            \
    "ldr r12, [r9, r1]\n\t"                  \
    "lsr r12, r12, r2\n\t"                   \
    "and r12, r12, r10\n\t"                  \
    "umlal r5, r6, r12, r11\n\t"             \
    "ldr r12, [r9, r3]\n\t"                  \
    "lsr r12, r12, r4\n\t"                   \
    "and r12, r12, r10\n\t"                  \
    "umlal r7, r8, r12, r11\n\t"             \
    "subs lr, lr, #1\n\t"                    \
    "bne 1b\n"

#define MIXQ_SG_NEXT                         \
    "pop {r0-r4}\n\t"                        \
    "mov r5, r6\n\t"                         \
    "mov.w r6, #0\n\t"                       \
    "mov r7, r8\n\t"                         \
    "mov.w r8, #0\n\t"                       \
    "ldr lr, [r0], #4\n\t"                   \
    "cmp lr, #0\n\t"                         \
    "bgt 1b\n\t"                             \
    "beq 2b\n\t"

#define MIXQ_SG_ENTER                        \
    "push {r0, r4-r11, lr}\n\t"              \
    "ldm r0, {r0-r4}\n\t"                    \
    "mov.w r5, #0\n\t"                       \
    "mov.w r6, #0\n\t"                       \
    "mov.w r7, #0\n\t"                       \
    "mov.w r8, #0\n\t"                       \
    "ldr lr, [r0], #4\n\t"                   \
    "cmp lr, #0\n\t"                         \
    "beq 2f\n\t"

/* one lane of both pixels: table lookups, one STRD, the two segment sums */
#define MIXQ_SG_A2_LANE(ext0, ext1, off)          \
    ext0 "\n\t" ext1 "\n\t"                       \
    "ldr r10, [r2, r10, lsl #2]\n\t"              \
    "ldr r11, [r2, r11, lsl #2]\n\t"              \
    "strd r10, r11, [r1, #" off "]\n\t"           \
    "smlad r4, r10, r3, r4\n\t"                   \
    "smlad r9, r11, r3, r9\n\t"

__asm__(MIXQ_FZ_FUNC("mixq_sg_a2") MIXQ_SG_ENTER MIXQ_SG_PIECES
        "2:\n\t"
        "push {r0-r4}\n\t"
        "ldr r0, [sp, #20]\n\t"
        "add r0, r0, #20\n\t"
        "ldm r0, {r1, r2, r3, r4, r9}\n\t"
        MIXQ_SG_A2_LANE("uxtb r10, r5", "uxtb r11, r7", "0")
        MIXQ_SG_A2_LANE("ubfx r10, r5, #8, #8", "ubfx r11, r7, #8, #8", "8")
        MIXQ_SG_A2_LANE("ubfx r10, r5, #16, #8", "ubfx r11, r7, #16, #8", "16")
        MIXQ_SG_A2_LANE("lsr r10, r5, #24", "lsr r11, r7, #24", "24")
        "add r1, r1, #32\n\t"
        "stm r0, {r1, r2, r3, r4, r9}\n\t"
        MIXQ_SG_NEXT
        "pop {r0, r4-r11, pc}\n\t"
        ".size mixq_sg_a2, .-mixq_sg_a2\n\t"
        ".previous\n\t");

/* two lane words of one pixel's stream word x: [(n0-8) + (n1-8) 2^11, (n4-8) + (n5-8) 2^11] and
 * [(n2-8) + (n3-8) 2^11, (n6-8) + (n7-8) 2^11] (as mixq_nibble_lanes) */
#define MIXQ_SG_A4_WORD(x, off)                    \
    "and r9, " x ", #0x000F000F\n\t"               \
    "and r10, r2, " x ", lsl #7\n\t"               \
    "orr r9, r9, r10\n\t"                          \
    "ssub16 r9, r9, r3\n\t"                        \
    "and r10, r4, " x ", lsr #8\n\t"               \
    "and r11, r2, " x ", lsr #1\n\t"               \
    "orr r10, r10, r11\n\t"                        \
    "ssub16 r10, r10, r3\n\t"                      \
    "strd r9, r10, [r1, #" off "]\n\t"

__asm__(MIXQ_FZ_FUNC("mixq_sg_a4") MIXQ_SG_ENTER MIXQ_SG_PIECES
        "2:\n\t"
        "push {r0-r4}\n\t"
        "ldr r0, [sp, #20]\n\t"
        "add r0, r0, #20\n\t"
        "ldm r0, {r1, r2, r3, r4}\n\t"
        MIXQ_SG_A4_WORD("r5", "0")
        MIXQ_SG_A4_WORD("r7", "8")
        "add r1, r1, #16\n\t"
        "str r1, [r0]\n\t"
        MIXQ_SG_NEXT
        "pop {r0, r4-r11, pc}\n\t"
        ".size mixq_sg_a4, .-mixq_sg_a4\n\t"
        ".previous\n\t");


#else
/* ISO C forbids an empty translation unit. */
typedef int mixq_conv_asm_unused;
#endif /* MIXQ_DSP */
