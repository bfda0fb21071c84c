/*
 * mixq_conv_dsp.h - Cortex-M DSP (ARMv7E-M / ARMv8-M DSP extension) path of the convolution core.
 * Included by mixq_conv_core.h only when __ARM_FEATURE_DSP is defined.
 *
 * Three inner kernels, all with 2x2 output blocking (two output pixels x two output channels
 * share every load), selected at compile time by the variant's bitwidths:
 *
 *   A4W4  packed lanes, spacing 11: 4 MACs per SMLAD, extraction every 4 SMLADs (16 MACs)
 *   A2W2  packed lanes, spacing 12: 4 MACs per SMLAD, extraction every 112 SMLADs (448 MACs)
 *   other widen to 16 bit + SMLAD (2 MACs per SMLAD); weights unpacked in registers
 *         (W8: SXTB16, W4: masked SXTB16 giving 16*w, W2: AND with rotated operand giving w+2)
 *
 * The lane arithmetic and its overflow bounds are derived in kernels/README.md.
 * Odd pixel or channel counts reuse the 2x2 kernel with the last pixel/channel duplicated
 * (the duplicate's result is discarded).
 */
#ifndef MIXQ_CONV_DSP_H
#define MIXQ_CONV_DSP_H

#include "mixq_internal.h"
#include "mixq_requant_row.h"

#include <stddef.h>

/* Packed-lane kernels (A4W4, A2W2) are used from this many output pixels on; below it the
 * per-call weight preparation does not pay off and the widen-to-16 kernel runs instead. A4W4
 * weights already in lane words (the _lanes entry points) need no preparation: every call is packed. */
#define MIXQ_PACKED_MIN_PIXELS 8

MIXQ_INLINE int32_t mixq_npix(const mixq_conv_geom *g) { return g->n * g->oh * g->ow; }

MIXQ_INLINE int32_t mixq_use_packed(int32_t IB, int32_t WB, const mixq_conv_geom *g) {
    if (IB == 4 && WB == 4 && g->lanes) {
        return 1;
    }
    return ((IB == 4 && WB == 4) || (IB == 2 && WB == 2)) && mixq_npix(g) >= MIXQ_PACKED_MIN_PIXELS;
}

MIXQ_INLINE int32_t mixq_use_ring(int32_t IB, const mixq_conv_geom *g);
MIXQ_INLINE int32_t mixq_ring_bytes(int32_t IB, const mixq_conv_geom *g);
MIXQ_INLINE int32_t mixq_row8_bytes(int32_t IB, int32_t WB, const mixq_conv_geom *g);
MIXQ_INLINE int32_t mixq_use_srow(int32_t IB, const mixq_conv_geom *g);
MIXQ_INLINE int32_t mixq_srow_bytes(int32_t IB, const mixq_conv_geom *g);

/* Bytes of scratch the DSP path needs without the ring of converted rows. */
MIXQ_INLINE int32_t mixq_conv_dsp_scratch_min(int32_t IB, int32_t WB, const mixq_conv_geom *g) {
    const int32_t cpad = (g->cout + 1) & ~1;
    /* per channel: requantization parameters (16 bytes), an int32 constant, two accumulators */
    const int32_t per_channel = cpad * (int32_t)(sizeof(mixq_rq) + 12);
    if (mixq_use_packed(IB, WB, g)) {
        /* activation lanes of two pixels (kp/2 halfwords each), for A4W4 the re-spaced weights
         * (kp/2 halfwords per channel; none when the caller passes them, the _lanes entry points) */
        return 2 * g->kp + per_channel + (IB == 4 && !g->lanes ? cpad * g->kp : 0);
    }
    /* int16 im2col rows of two pixels, the byte row of 8-bit inputs off the word taps */
    return 4 * g->kp + mixq_row8_bytes(IB, WB, g) + per_channel;
}

/* Bytes of scratch the DSP path asks for (get_buffer_size): the above, then the ring of converted
 * rows where it runs. A call given less than this but at least the minimum runs without the ring
 * (a patch tile narrower than the layer its scratch was sized for may take the ring where the
 * whole layer, whose ring is too large, does not). */
MIXQ_INLINE int32_t mixq_conv_dsp_scratch(int32_t IB, int32_t WB, const mixq_conv_geom *g) {
    if (!mixq_use_packed(IB, WB, g)) {
        return mixq_conv_dsp_scratch_min(IB, WB, g);
    }
    return mixq_conv_dsp_scratch_min(IB, WB, g) + (mixq_use_ring(IB, g) ? mixq_ring_bytes(IB, g) : 0) +
           (mixq_use_srow(IB, g) ? mixq_srow_bytes(IB, g) : 0);
}

/* Two pixels share one activation buffer, interleaved 8 bytes at a time:
 * [p0 halfwords 0-3, p1 halfwords 0-3, p0 halfwords 4-7, ...]. Halfword h of pixel p: */
MIXQ_INLINE int32_t mixq_ipos(int32_t h, int32_t p) { return ((h >> 2) << 3) + (p << 2) + (h & 3); }

/* ---- im2col helpers -------------------------------------------------------------------- */

/* Position of element k of an im2col row in the 16-bit layout that matches the weight lanes. */
MIXQ_INLINE int32_t mixq_perm16(int32_t WB, int32_t k) {
    if (WB == 8) {
        /* groups of 4: a0 a2 a1 a3 (pairs with SXTB16(w), SXTB16(w ror 8)) */
        return (k & ~3) | ((k & 1) << 1) | ((k >> 1) & 1);
    }
    if (WB == 4) {
        /* groups of 8: a0 a4 a1 a5 a2 a6 a3 a7 */
        return (k & ~7) | ((k & 3) << 1) | ((k >> 2) & 1);
    }
    {
        /* groups of 4: a1 a3 a0 a2 (pairs with (u1, u3) and (u0, u2)) */
        static const uint8_t p[4] = {2, 0, 3, 1};
        return (k & ~3) | p[k & 3];
    }
}

/* Flat output pixel index -> (batch, oy, ox). */
MIXQ_INLINE void mixq_pixel(const mixq_conv_geom *g, int32_t pix, int32_t *b, int32_t *oy, int32_t *ox) {
    *ox = pix % g->ow;
    pix /= g->ow;
    *oy = pix % g->oh;
    *b = pix / g->oh;
}

/* 8-bit inputs whose taps are whole permutation groups (Cin % 4 == 0; 4-bit weights: Cin % 8 == 0)
 * are widened straight from the input, tap by tap; other 8-bit inputs go through a byte row. */
MIXQ_INLINE int32_t mixq_word_taps8(int32_t WB, const mixq_conv_geom *g) {
    return (g->cin & (WB == 4 ? 7 : 3)) == 0;
}

/* Per-call constants of the byte row (mixq_gather8), in scratch in front of it (mixq_row8_init). */
typedef struct {
    const uint8_t *src_max; /* interior windows whose top-left byte is at most here read no word past the input */
    uint32_t yend, xend;    /* interior windows: top-left input row < yend, column < xend (0: none) */
    int32_t nw;             /* words of one window-row copy, ceil(KW Cin / 4) */
    int32_t sadj, dadj;     /* source / byte-row advance after a window-row copy */
    uint32_t zw;            /* the zero point's byte, 4 times */
    uint32_t off;           /* -zp in both halfwords */
} mixq_row8;

/* Bytes of the byte-row block (constants, kp bytes, 4 bytes a word copy may write past them), 0
 * when the layer does not use it. */
MIXQ_INLINE int32_t mixq_row8_bytes(int32_t IB, int32_t WB, const mixq_conv_geom *g) {
    return IB == 8 && !mixq_word_taps8(WB, g) ? (int32_t)sizeof(mixq_row8) + g->kp + 4 : 0;
}

/* The block sits after the int16 rows of the two pixels (4 kp bytes from buf). */
MIXQ_INLINE mixq_row8 *mixq_row8_at(const mixq_conv_geom *g, int16_t *buf) {
    return (mixq_row8 *)(void *)((uint8_t *)(void *)buf + 4 * g->kp);
}

/* Widen the 8-bit values at src (nb bytes, a multiple of the permutation group, any alignment) to
 * int16 (x - zp) in mixq_perm16 order into slot p of buf from halfword idx (a group boundary);
 * off = -zp in both halfwords. Returns sum(x - zp) for 2-bit weights (else 0). Per 4 values:
 * SXTB16 of the word and of the word rotated by 8, two SADD16 (4-bit weights: PKHBT/PKHTB merges
 * of two words into the order a0 a4 a1 a5 a2 a6 a3 a7; 2-bit weights: SADD16 and SMLAD of the sum). */
MIXQ_INLINE int32_t mixq_widen8(int32_t WB, const uint8_t *src, int32_t nb, int32_t idx, int32_t p, int16_t *buf,
                                uint32_t off) {
    int32_t sum = 0;
    uint32_t *dst = (uint32_t *)(void *)(buf + mixq_ipos(idx, p));
    if (WB == 4) {
        /* per 8 values x0..3, y0..3: 2 LDR, 4 SXTB16, PKHBT (x0, y0), (x1, y1), PKHTB (x2, y2),
         * (x3, y3), 4 SADD16, STRD of the first pair to this group, of the second 16 bytes on */
        int32_t n = nb >> 3;
        uint32_t x, y, xe, xo, ye, yo;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[x], [%[s]], #4\n\t"
            "ldr %[y], [%[s]], #4\n\t"
            "sxtb16 %[xe], %[x]\n\t"
            "sxtb16 %[xo], %[x], ror #8\n\t"
            "sxtb16 %[ye], %[y]\n\t"
            "sxtb16 %[yo], %[y], ror #8\n\t"
            "pkhbt %[x], %[xe], %[ye], lsl #16\n\t"
            "pkhbt %[y], %[xo], %[yo], lsl #16\n\t"
            "pkhtb %[xe], %[ye], %[xe], asr #16\n\t"
            "pkhtb %[xo], %[yo], %[xo], asr #16\n\t"
            "sadd16 %[x], %[x], %[off]\n\t"
            "sadd16 %[y], %[y], %[off]\n\t"
            "sadd16 %[xe], %[xe], %[off]\n\t"
            "sadd16 %[xo], %[xo], %[off]\n\t"
            "strd %[x], %[y], [%[d]]\n\t"
            "strd %[xe], %[xo], [%[d], #16]\n\t"
            "add %[d], %[d], #32\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [s] "+r"(src), [d] "+r"(dst), [n] "+r"(n), [x] "=&r"(x), [y] "=&r"(y), [xe] "=&r"(xe),
              [xo] "=&r"(xo), [ye] "=&r"(ye), [yo] "=&r"(yo)
            : [off] "r"(off)
            : "cc", "memory");
        return 0;
    }
    if (WB == 8) {
        /* per 4 values: LDR, 2 SXTB16, 2 SADD16 (none when zp is 0 or folded into the constants,
         * mixq_fold_zp8), STRD (to the next group of the slot, 16 bytes on) */
        int32_t n = nb >> 2;
        uint32_t x, e, o;
#define MIXQ_WIDEN8_LOOP(sub)                                                                           \
    __asm__ volatile("1:\n\t"                                                                           \
                     "ldr %[x], [%[s]], #4\n\t"                                                         \
                     "sxtb16 %[e], %[x]\n\t"                                                            \
                     "sxtb16 %[o], %[x], ror #8\n\t" sub "strd %[e], %[o], [%[d]], #16\n\t"              \
                     "subs %[n], %[n], #1\n\t"                                                          \
                     "bne 1b\n\t"                                                                       \
                     : [s] "+r"(src), [d] "+r"(dst), [n] "+r"(n), [x] "=&r"(x), [e] "=&r"(e), [o] "=&r"(o) \
                     : [off] "r"(off)                                                                   \
                     : "cc", "memory")
        if (off == 0) {
            MIXQ_WIDEN8_LOOP("");
        } else {
            MIXQ_WIDEN8_LOOP("sadd16 %[e], %[e], %[off]\n\tsadd16 %[o], %[o], %[off]\n\t");
        }
#undef MIXQ_WIDEN8_LOOP
        return 0;
    }
    for (int32_t i = 0; i < nb; i += 4, dst += 4) { /* a1 a3 a0 a2 */
        const uint32_t x = mixq_load_u32(src + i);
        const uint32_t e = (uint32_t)__sadd16((int16x2_t)__sxtb16(x), (int16x2_t)off);       /* a0, a2 */
        const uint32_t o = (uint32_t)__sadd16((int16x2_t)mixq_sxtb16_ror8(x), (int16x2_t)off); /* a1, a3 */
        dst[0] = o;
        dst[1] = e;
        /* |x - zp| <= 255, so the pair sums stay int16 */
        sum = mixq_smlad((uint32_t)__sadd16((int16x2_t)e, (int16x2_t)o), 0x00010001u, sum);
    }
    return sum;
}

/* Copy n > 0 bytes a word at a time (unaligned loads and stores; up to 3 bytes past dst + n are
 * written); src + n <= end, and no word is read past end. Returns dst + n. */
MIXQ_INLINE uint8_t *mixq_copy8(uint8_t *dst, const uint8_t *src, int32_t n, const uint8_t *end) {
    int32_t i = 0;
    if (end - src < ((n + 3) & ~3)) { /* the last bytes of the tensor */
        for (; i + 4 <= n; i += 4) {
            mixq_store_u32(dst + i, mixq_load_u32(src + i));
        }
        for (; i < n; i++) {
            dst[i] = src[i];
        }
        return dst + n;
    }
    do {
        mixq_store_u32(dst + i, mixq_load_u32(src + i));
        i += 4;
    } while (i < n);
    return dst + n;
}

/* Fill n >= 0 bytes with the byte pattern w (up to 3 bytes past dst + n are written). */
MIXQ_INLINE uint8_t *mixq_fill8(uint8_t *dst, uint32_t w, int32_t n) {
    for (int32_t i = 0; i < n; i += 4) {
        mixq_store_u32(dst + i, w);
    }
    return dst + n;
}

/* Once per call: the constants of the byte row, and its tail [K, kp + 4) filled with the zero
 * point's byte (each pixel restores the word at K, the only part a copy may overwrite). */
MIXQ_INLINE void mixq_row8_init(const mixq_conv_geom *g, const uint8_t *in, int16_t *buf) {
    mixq_row8 *r = mixq_row8_at(g, buf);
    const int32_t cin = g->cin, rowb = g->kw * cin, step = g->dh * g->iw * cin;
    const int32_t ylim = g->ih - (g->kh - 1) * g->dh, xlim = g->iw - g->kw + 1;
    r->nw = (rowb + 3) >> 2;
    r->sadj = step - 4 * r->nw;
    r->dadj = rowb - 4 * r->nw;
    r->zw = (uint32_t)(uint8_t)g->in_zp * 0x01010101u;
    r->off = (uint32_t)(uint16_t)(int16_t)(-g->in_zp) * 0x00010001u;
    /* every tap of a window inside needs dilation 1 across and room for the window */
    r->yend = g->dw == 1 && ylim > 0 && xlim > 0 ? (uint32_t)ylim : 0;
    r->xend = r->yend != 0 ? (uint32_t)xlim : 0;
    /* the last window row's word copies end at most at the end of the input */
    const int32_t room = g->n * g->ih * g->iw * cin - (g->kh - 1) * step - 4 * r->nw;
    r->src_max = room >= 0 ? in + room : in;
    if (room < 0) {
        r->yend = r->xend = 0;
    }
    mixq_fill8((uint8_t *)(r + 1) + g->k, r->zw, g->kp + 4 - g->k - 3);
}

/* 8-bit weights, many pixels per channel (each pixel then saves two SADD16 per 4 values, each
 * channel costs about 3 instructions per 4 weights): the byte row keeps the raw x (r->off = 0) and
 * the constants take -zp sum(w) (padding taps hold zp, so sum (x - zp) w = sum x w - zp sum w; the
 * padded weights are 0). sum(w) by USADA8 of w ^ 0x80808080 (w + 128 per byte), minus 128 kp.
 * Modulo 2^32: the accumulator plus the constant is the exact sum. */
MIXQ_INLINE void mixq_fold_zp8(const mixq_conv_geom *g, const uint8_t *filter, int16_t *buf, int32_t *cst) {
    mixq_row8 *r = mixq_row8_at(g, buf);
    if (r->off == 0 || mixq_npix(g) < 2 * g->cout) {
        return;
    }
    const int32_t pair_words = g->kp >> 1; /* words of a channel pair, interleaved one word at a time */
    const uint32_t *w = (const uint32_t *)(const void *)filter;
    const uint32_t zp = (uint32_t)g->in_zp, bias = 128u * (uint32_t)g->kp;
    for (int32_t c = 0; c < g->cout; c += 2, w += pair_words) {
        uint32_t s0 = 0, s1 = 0;
        for (int32_t j = 0; j < pair_words; j += 2) {
            s0 = __usada8(w[j] ^ 0x80808080u, 0, s0);
            s1 = __usada8(w[j + 1] ^ 0x80808080u, 0, s1);
        }
        cst[c] = (int32_t)((uint32_t)cst[c] - zp * (s0 - bias));
        if (c + 1 < g->cout) {
            cst[c + 1] = (int32_t)((uint32_t)cst[c + 1] - zp * (s1 - bias));
        }
    }
    r->off = 0;
}

/* The im2col row of output pixel (b, oy, ox) of an 8-bit input as bytes at row (the byte row of
 * the block r): with dilation 1 a window row is KW*Cin contiguous input bytes, copied a word at a
 * time; taps outside the image hold the zero point's byte (x - zp = 0), as does the tail up to kp.
 * Each copy or fill may write up to 3 bytes past its end, which the next one overwrites. */
MIXQ_INLINE void mixq_gather8(const mixq_conv_geom *g, const mixq_row8 *r, const uint8_t *in, int32_t b, int32_t oy,
                              int32_t ox, uint8_t *row) {
    const int32_t cin = g->cin, y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
    uint8_t *dst = row;
    if ((uint32_t)y0 < r->yend && (uint32_t)x0 < r->xend) {
        const uint8_t *src = in + ((b * g->ih + y0) * g->iw + x0) * cin;
        if (src <= r->src_max) {
            /* every tap inside: KH copies of nw words, rows dh * iw * cin source bytes and KW * Cin
             * row bytes apart; up to 4 words unrolled (2 instructions a word, 4 a row), longer rows in
             * a loop (4 a word, 5 a row); then the tail word at K back to zero points */
            int32_t rows = g->kh, n;
            uint32_t t;
            const int32_t step = r->sadj + 4 * r->nw, rowb = r->dadj + 4 * r->nw;
#define MIXQ_COPY_ROWS(body)                                                                              \
    __asm__ volatile("1:\n\t" body "add %[s], %[s], %[step]\n\t"                                         \
                     "add %[d], %[d], %[rowb]\n\t"                                                        \
                     "subs %[rows], %[rows], #1\n\t"                                                      \
                     "bne 1b\n\t"                                                                         \
                     "str %[zw], [%[d]]\n\t"                                                              \
                     : [s] "+r"(src), [d] "+r"(dst), [rows] "+r"(rows), [t] "=&r"(t)                      \
                     : [step] "r"(step), [rowb] "r"(rowb), [zw] "r"(r->zw)                                 \
                     : "cc", "memory")
#define MIXQ_COPY_WORD(off) "ldr %[t], [%[s], #" off "]\n\tstr %[t], [%[d], #" off "]\n\t"
            if (r->nw == 1) {
                MIXQ_COPY_ROWS(MIXQ_COPY_WORD("0"));
            } else if (r->nw == 2) {
                MIXQ_COPY_ROWS(MIXQ_COPY_WORD("0") MIXQ_COPY_WORD("4"));
            } else if (r->nw == 3) {
                MIXQ_COPY_ROWS(MIXQ_COPY_WORD("0") MIXQ_COPY_WORD("4") MIXQ_COPY_WORD("8"));
            } else if (r->nw == 4) {
                MIXQ_COPY_ROWS(MIXQ_COPY_WORD("0") MIXQ_COPY_WORD("4") MIXQ_COPY_WORD("8") MIXQ_COPY_WORD("12"));
            } else {
                __asm__ volatile("1:\n\t"
                                 "mov %[n], %[nw]\n"
                                 "2:\n\t"
                                 "ldr %[t], [%[s]], #4\n\t"
                                 "str %[t], [%[d]], #4\n\t"
                                 "subs %[n], %[n], #1\n\t"
                                 "bne 2b\n\t"
                                 "add %[s], %[s], %[sadj]\n\t"
                                 "add %[d], %[d], %[dadj]\n\t"
                                 "subs %[rows], %[rows], #1\n\t"
                                 "bne 1b\n\t"
                                 "str %[zw], [%[d]]\n\t"
                                 : [s] "+r"(src), [d] "+r"(dst), [rows] "+r"(rows), [n] "=&r"(n), [t] "=&r"(t)
                                 : [nw] "r"(r->nw), [sadj] "r"(r->sadj), [dadj] "r"(r->dadj), [zw] "r"(r->zw)
                                 : "cc", "memory");
            }
#undef MIXQ_COPY_ROWS
#undef MIXQ_COPY_WORD
            return;
        }
    }
    const uint8_t *end = in + g->n * g->ih * g->iw * cin;
    const int32_t rowb = g->kw * cin;
    /* taps [kx0, kx1) of a window row are inside (dilation 1) */
    const int32_t kx0 = x0 >= 0 ? 0 : mixq_min_i32(-x0, g->kw);
    const int32_t kx1 = mixq_max_i32(mixq_min_i32(g->kw, g->iw - x0), kx0);
    const int32_t pre = kx0 * cin, mid = (kx1 - kx0) * cin, post = (g->kw - kx1) * cin;
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const int32_t iy = y0 + ky * g->dh;
        if ((uint32_t)iy >= (uint32_t)g->ih) {
            dst = mixq_fill8(dst, r->zw, rowb);
            continue;
        }
        const int32_t line = (b * g->ih + iy) * g->iw;
        if (g->dw == 1) {
            dst = mixq_fill8(dst, r->zw, pre);
            if (mid > 0) {
                dst = mixq_copy8(dst, in + (line + x0 + kx0) * cin, mid, end);
            }
            dst = mixq_fill8(dst, r->zw, post);
            continue;
        }
        for (int32_t kx = 0; kx < g->kw; kx++) {
            const int32_t ix = x0 + kx * g->dw;
            dst = (uint32_t)ix < (uint32_t)g->iw ? mixq_copy8(dst, in + (line + ix) * cin, cin, end)
                                                 : mixq_fill8(dst, r->zw, cin);
        }
    }
    mixq_store_u32(dst, r->zw);
}

/* im2col of output pixel pix into slot p of buf as int16 (x - zp) in mixq_perm16 order; returns
 * sum(x - zp) (not computed for 8-bit weights, which do not need it). 8-bit inputs: a word at a
 * time, from the input (mixq_word_taps8) or from the byte row at buf + 4 kp bytes (mixq_gather8,
 * mixq_row8_init once per call); sub-byte inputs element by element. */
MIXQ_INLINE int32_t mixq_im2col16(int32_t IB, int32_t WB, const mixq_conv_geom *g, const uint8_t *in, int32_t pix,
                                  int32_t p, int16_t *buf) {
    int32_t b, oy, ox, sum = 0, idx = 0;
    mixq_pixel(g, pix, &b, &oy, &ox);
    const uint32_t off = (uint32_t)(uint16_t)(int16_t)(-g->in_zp) * 0x00010001u;
    if (IB == 8 && !mixq_word_taps8(WB, g)) {
        const mixq_row8 *r = mixq_row8_at(g, buf);
        uint8_t *row = (uint8_t *)(void *)(mixq_row8_at(g, buf) + 1);
        mixq_gather8(g, r, in, b, oy, ox, row);
        return mixq_widen8(WB, row, g->kp, 0, p, buf, r->off);
    }
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const int32_t iy = oy * g->sh - g->ph + ky * g->dh;
        for (int32_t kx = 0; kx < g->kw; kx++) {
            const int32_t ix = ox * g->sw - g->pw + kx * g->dw;
            const int32_t inside = mixq_inside(g, iy, ix);
            const int32_t base = ((b * g->ih + iy) * g->iw + ix) * g->cin;
            if (IB == 8) { /* whole groups: widened from the input, padding taps 0 */
                if (inside) {
                    sum += mixq_widen8(WB, in + base, g->cin, idx, p, buf, off);
                } else {
                    for (int32_t i = 0; i < g->cin; i += 4) {
                        uint32_t *dst = (uint32_t *)(void *)(buf + mixq_ipos(idx + i, p));
                        dst[0] = 0;
                        dst[1] = 0;
                    }
                }
                idx += g->cin;
            } else {
                for (int32_t ci = 0; ci < g->cin; ci++, idx++) {
                    const int32_t v = inside ? mixq_get_act(in, base + ci, IB) - g->in_zp : 0;
                    buf[mixq_ipos(mixq_perm16(WB, idx), p)] = (int16_t)v;
                    sum += v;
                }
            }
        }
    }
    for (; idx < g->kp; idx++) {
        buf[mixq_ipos(mixq_perm16(WB, idx), p)] = 0;
    }
    return sum;
}

/* ---- widen-to-16 kernel (every combination; A4W4 and A2W2 only for few pixels) ----------- */

/* One pair of weight lane words (channel 0, channel 1) times one activation word of each pixel
 * (NP = 2) or of pixel 0 only (NP = 1). */
#define MIXQ_DOT2(l0, l1, a0, a1)                  \
    do {                                           \
        s00 = mixq_smlad((a0), (l0), s00);         \
        s01 = mixq_smlad((a0), (l1), s01);         \
        if (NP == 2) {                             \
            s10 = mixq_smlad((a1), (l0), s10);     \
            s11 = mixq_smlad((a1), (l1), s11);     \
        }                                          \
    } while (0)

/* acc[pixel * 2 + channel] = dot products of the NP pixels in buf with the channel pair at wp. */
MIXQ_INLINE void mixq_block16(int32_t WB, int32_t NP, const mixq_conv_geom *g, const uint32_t *ap,
                              const uint32_t *wp, int32_t acc[4]) {
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0; /* s<pixel><channel> */
    if (WB == 8 && NP == 2) {
        /* per 4 K values: 3 LDRD, 4 SXTB16, 8 SMLAD (16 MACs) */
        uint32_t x0, x1, e0, e1, p0, p1;
        int32_t n = g->kp >> 2;
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[x0], %[x1], [%[wp]], #8\n\t"
            "ldrd %[p0], %[p1], [%[ap]], #8\n\t"
            "sxtb16 %[e0], %[x0]\n\t"
            "sxtb16 %[e1], %[x1]\n\t"
            "sxtb16 %[x0], %[x0], ror #8\n\t"
            "sxtb16 %[x1], %[x1], ror #8\n\t"
            "smlad %[s00], %[p0], %[e0], %[s00]\n\t"
            "smlad %[s01], %[p0], %[e1], %[s01]\n\t"
            "smlad %[s00], %[p1], %[x0], %[s00]\n\t"
            "smlad %[s01], %[p1], %[x1], %[s01]\n\t"
            "ldrd %[p0], %[p1], [%[ap]], #8\n\t"
            "smlad %[s10], %[p0], %[e0], %[s10]\n\t"
            "smlad %[s11], %[p0], %[e1], %[s11]\n\t"
            "smlad %[s10], %[p1], %[x0], %[s10]\n\t"
            "smlad %[s11], %[p1], %[x1], %[s11]\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [wp] "+r"(wp), [ap] "+r"(ap),
              [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [e0] "=&r"(e0), [e1] "=&r"(e1), [p0] "=&r"(p0),
              [p1] "=&r"(p1)
            :
            : "cc", "memory");
    } else if (WB == 4 && NP == 2) {
        /* per 8 K values: 1 LDRD, 8 SXTB16 of masked nibbles (16 * w), 8 LDR, 16 SMLAD (32 MACs) */
        uint32_t x0, x1, e0, e1, f0, f1, p;
        int32_t n = g->kp >> 3;
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[x0], %[x1], [%[wp]], #8\n\t"
            "lsl %[e0], %[x0], #4\n\t"
            "and %[e0], %[e0], #0xF0F0F0F0\n\t"
            "sxtb16 %[f0], %[e0], ror #8\n\t"
            "sxtb16 %[e0], %[e0]\n\t"
            "lsl %[e1], %[x1], #4\n\t"
            "and %[e1], %[e1], #0xF0F0F0F0\n\t"
            "sxtb16 %[f1], %[e1], ror #8\n\t"
            "sxtb16 %[e1], %[e1]\n\t"
            "ldr %[p], [%[ap]]\n\t"
            "smlad %[s00], %[p], %[e0], %[s00]\n\t"
            "smlad %[s01], %[p], %[e1], %[s01]\n\t"
            "ldr %[p], [%[ap], #8]\n\t"
            "smlad %[s10], %[p], %[e0], %[s10]\n\t"
            "smlad %[s11], %[p], %[e1], %[s11]\n\t"
            "ldr %[p], [%[ap], #16]\n\t"
            "smlad %[s00], %[p], %[f0], %[s00]\n\t"
            "smlad %[s01], %[p], %[f1], %[s01]\n\t"
            "ldr %[p], [%[ap], #24]\n\t"
            "smlad %[s10], %[p], %[f0], %[s10]\n\t"
            "smlad %[s11], %[p], %[f1], %[s11]\n\t"
            "and %[x0], %[x0], #0xF0F0F0F0\n\t"
            "and %[x1], %[x1], #0xF0F0F0F0\n\t"
            "sxtb16 %[e0], %[x0]\n\t"
            "sxtb16 %[f0], %[x0], ror #8\n\t"
            "sxtb16 %[e1], %[x1]\n\t"
            "sxtb16 %[f1], %[x1], ror #8\n\t"
            "ldr %[p], [%[ap], #4]\n\t"
            "smlad %[s00], %[p], %[e0], %[s00]\n\t"
            "smlad %[s01], %[p], %[e1], %[s01]\n\t"
            "ldr %[p], [%[ap], #12]\n\t"
            "smlad %[s10], %[p], %[e0], %[s10]\n\t"
            "smlad %[s11], %[p], %[e1], %[s11]\n\t"
            "ldr %[p], [%[ap], #20]\n\t"
            "smlad %[s00], %[p], %[f0], %[s00]\n\t"
            "smlad %[s01], %[p], %[f1], %[s01]\n\t"
            "ldr %[p], [%[ap], #28]\n\t"
            "smlad %[s10], %[p], %[f0], %[s10]\n\t"
            "smlad %[s11], %[p], %[f1], %[s11]\n\t"
            "adds %[ap], %[ap], #32\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [wp] "+r"(wp), [ap] "+r"(ap),
              [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [e0] "=&r"(e0), [e1] "=&r"(e1), [f0] "=&r"(f0),
              [f1] "=&r"(f1), [p] "=&r"(p)
            :
            : "cc", "memory");
        s00 >>= 4; /* exact: every product carried a factor 16 */
        s01 >>= 4;
        s10 >>= 4;
        s11 >>= 4;
    } else if (WB == 8) {
        /* one pixel (the odd last one, fully connected): 2 LDRD, 4 SXTB16, 4 SMLAD per 8 MACs */
        uint32_t x0, x1, e0, e1, p0, p1;
        int32_t n = g->kp >> 2;
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[x0], %[x1], [%[wp]], #8\n\t"
            "ldrd %[p0], %[p1], [%[ap]], #16\n\t"
            "sxtb16 %[e0], %[x0]\n\t"
            "sxtb16 %[e1], %[x1]\n\t"
            "sxtb16 %[x0], %[x0], ror #8\n\t"
            "sxtb16 %[x1], %[x1], ror #8\n\t"
            "smlad %[s00], %[p0], %[e0], %[s00]\n\t"
            "smlad %[s01], %[p0], %[e1], %[s01]\n\t"
            "smlad %[s00], %[p1], %[x0], %[s00]\n\t"
            "smlad %[s01], %[p1], %[x1], %[s01]\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [s00] "+r"(s00), [s01] "+r"(s01), [wp] "+r"(wp), [ap] "+r"(ap), [n] "+r"(n), [x0] "=&r"(x0),
              [x1] "=&r"(x1), [e0] "=&r"(e0), [e1] "=&r"(e1), [p0] "=&r"(p0), [p1] "=&r"(p1)
            :
            : "cc", "memory");
    } else if (WB == 4) { /* one pixel */
        for (int32_t k = 0; k < g->kp; k += 8, ap += 8, wp += 2) {
            const uint32_t x0 = wp[0], x1 = wp[1];
            const uint32_t hi0 = x0 & 0xF0F0F0F0u, hi1 = x1 & 0xF0F0F0F0u;
            const uint32_t lo0 = (x0 << 4) & 0xF0F0F0F0u, lo1 = (x1 << 4) & 0xF0F0F0F0u;
            MIXQ_DOT2((uint32_t)__sxtb16(lo0), (uint32_t)__sxtb16(lo1), ap[0], ap[2]); /* 16*(w0, w4) */
            MIXQ_DOT2((uint32_t)__sxtb16(hi0), (uint32_t)__sxtb16(hi1), ap[1], ap[3]); /* 16*(w1, w5) */
            MIXQ_DOT2(mixq_sxtb16_ror8(lo0), mixq_sxtb16_ror8(lo1), ap[4], ap[6]);     /* 16*(w2, w6) */
            MIXQ_DOT2(mixq_sxtb16_ror8(hi0), mixq_sxtb16_ror8(hi1), ap[5], ap[7]);     /* 16*(w3, w7) */
        }
        s00 >>= 4; /* exact: every product carried a factor 16 */
        s01 >>= 4;
        s10 >>= 4;
        s11 >>= 4;
    } else {
        const uint32_t m = 0x00030003u;
        for (int32_t k = 0; k < g->kp; k += 16, ap += 16, wp += 2) {
            const uint32_t x0 = wp[0], x1 = wp[1];
            /* lane j: ror r_j -> (u(4j+1), u(4j+3)); ror r_j + 12 -> (u(4j), u(4j+2)) */
            MIXQ_DOT2(mixq_ror(x0, 0) & m, mixq_ror(x1, 0) & m, ap[0], ap[2]);
            MIXQ_DOT2(mixq_ror(x0, 12) & m, mixq_ror(x1, 12) & m, ap[1], ap[3]);
            MIXQ_DOT2(mixq_ror(x0, 2) & m, mixq_ror(x1, 2) & m, ap[4], ap[6]);
            MIXQ_DOT2(mixq_ror(x0, 14) & m, mixq_ror(x1, 14) & m, ap[5], ap[7]);
            MIXQ_DOT2(mixq_ror(x0, 8) & m, mixq_ror(x1, 8) & m, ap[8], ap[10]);
            MIXQ_DOT2(mixq_ror(x0, 20) & m, mixq_ror(x1, 20) & m, ap[9], ap[11]);
            MIXQ_DOT2(mixq_ror(x0, 10) & m, mixq_ror(x1, 10) & m, ap[12], ap[14]);
            MIXQ_DOT2(mixq_ror(x0, 22) & m, mixq_ror(x1, 22) & m, ap[13], ap[15]);
        }
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}
#undef MIXQ_DOT2

/* Lane words of 8 nibbles n0..n7 (one 32-bit word): lane A = [(n0-8) + (n1-8)*2^11,
 * (n4-8) + (n5-8)*2^11], lane B = [(n2-8) + (n3-8)*2^11, (n6-8) + (n7-8)*2^11]. With swap the
 * roles of the two nibbles of each byte are exchanged ((n1-8) + (n0-8)*2^11, ...). */
MIXQ_INLINE void mixq_nibble_lanes(uint32_t x, int32_t swap, uint32_t *la, uint32_t *lb) {
    const uint32_t y = x & 0x0F0F0F0Fu, z = (x >> 4) & 0x0F0F0F0Fu;
    const uint32_t lo = swap ? z : y, hi = swap ? y : z;
    const uint32_t c = 0x40084008u; /* 8 + 8*2^11 per halfword */
    *la = (uint32_t)__ssub16((int16x2_t)(__uxtb16(lo) | (__uxtb16(hi) << 11)), (int16x2_t)c);
    *lb = (uint32_t)__ssub16((int16x2_t)(__uxtb16(lo >> 8) | (__uxtb16(hi >> 8) << 11)), (int16x2_t)c);
}

/* ---- bit-stream im2col for packed lanes (channel counts off the word paths) ---------------
 * The im2col row of one pixel is the K = KH*KW*Cin input elements in (ky, kx, ci) order. A window
 * row with every tap inside (dilation 1) is KW*Cin contiguous elements of the packed input, so the
 * row is assembled as a bit stream: chunks of at most 24 bits are read from the input (one
 * unaligned word load and a shift), padding taps append the zero point's bit pattern, and every
 * full 32-bit word of the stream (8 nibbles / 16 crumbs) is converted to lane words at once
 * (mixq_bs_emit, the same conversion as the word paths). The stream ends with zero
 * elements up to kp (A2: a = 0 against u = 2 of the padded weights; A4: the padded weights are 0). */

typedef struct {
    uint32_t acc;  /* pending bits, little-end first */
    int32_t nb;    /* number of pending bits (< 32) */
    uint32_t *dst; /* next lane word of the pixel */
    int32_t t;     /* A2: segment sum in the field [12, 24) */
    int32_t words; /* stream words emitted */
} mixq_bstream;

/* Lane words of one stream word: A4 2 lane words at dst[0], dst[1] (then 4 words on); A2 4 lane
 * words at dst[0], dst[2], dst[4], dst[6] (then 8 on) and their sum into t. */
MIXQ_INLINE void mixq_bs_emit(int32_t IB, mixq_bstream *s, uint32_t x) {
    if (IB == 4) {
        mixq_nibble_lanes(x, 0, &s->dst[0], &s->dst[1]);
        s->dst += 4;
    } else {
        const uint32_t l0 = mixq_a2_lane_table[x & 0xFFu];
        const uint32_t l1 = mixq_a2_lane_table[(x >> 8) & 0xFFu];
        const uint32_t l2 = mixq_a2_lane_table[(x >> 16) & 0xFFu];
        const uint32_t l3 = mixq_a2_lane_table[x >> 24];
        s->dst[0] = l0;
        s->dst[2] = l1;
        s->dst[4] = l2;
        s->dst[6] = l3;
        s->t = mixq_smlad(l0, 0x10011001u, s->t);
        s->t = mixq_smlad(l1, 0x10011001u, s->t);
        s->t = mixq_smlad(l2, 0x10011001u, s->t);
        s->t = mixq_smlad(l3, 0x10011001u, s->t);
        s->dst += 8;
    }
    s->words++;
}

MIXQ_INLINE void mixq_bs_push(int32_t IB, mixq_bstream *s, uint32_t v, int32_t c) {
    s->acc |= v << s->nb;
    s->nb += c;
    if (s->nb >= 32) { /* c <= 24, so nb >= 8 before the push and the shift below is < 32 */
        mixq_bs_emit(IB, s, s->acc);
        s->nb -= 32;
        s->acc = v >> (c - s->nb);
    }
}

/* Append nbits bits of the packed input starting at bit bo (end: one past its last byte). */
MIXQ_INLINE void mixq_bs_copy(int32_t IB, mixq_bstream *s, const uint8_t *in, const uint8_t *end, int32_t bo,
                              int32_t nbits) {
    while (nbits > 0) {
        const int32_t c = nbits < 24 ? nbits : 24;
        const uint8_t *src = in + (bo >> 3);
        uint32_t w;
        if (src + 4 <= end) {
            w = mixq_load_u32(src);
        } else { /* last bytes of the tensor: no read past its end */
            w = 0;
            for (int32_t i = 0; src + i < end; i++) {
                w |= (uint32_t)src[i] << (8 * i);
            }
        }
        mixq_bs_push(IB, s, (w >> (bo & 7)) & ((1u << c) - 1u), c);
        bo += c;
        nbits -= c;
    }
}

/* Append nbits bits of the repeated pattern pat (whole elements, nbits a multiple of IB). */
MIXQ_INLINE void mixq_bs_fill(int32_t IB, mixq_bstream *s, uint32_t pat, int32_t nbits) {
    while (nbits > 0) {
        const int32_t c = nbits < 24 ? nbits : 24;
        mixq_bs_push(IB, s, pat & ((1u << c) - 1u), c);
        nbits -= c;
    }
}

/* Is the bit-stream im2col the one to run (packed kernels, channels off the word paths)? A2: the
 * segment sum of the whole row stays in its 12-bit field (3 K <= 4095). */
MIXQ_INLINE int32_t mixq_use_stream(int32_t IB, const mixq_conv_geom *g) {
    return IB == 4 ? (g->cin & 7) != 0 : ((g->cin & 15) != 0 && g->k <= 1364);
}

/* Bit-stream im2col of pixel pix into slot p of the lane rows; returns sum(a) for A2 (padding
 * counts as the zero point), 0 for A4. */
MIXQ_INLINE int32_t mixq_im2col_stream(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, int32_t pix,
                                       int32_t p, int16_t *buf) {
    int32_t b, oy, ox;
    mixq_pixel(g, pix, &b, &oy, &ox);
    const uint8_t *end = in + ((g->n * g->ih * g->iw * g->cin * IB + 7) >> 3);
    const uint32_t pat = (uint32_t)g->in_zp * (IB == 4 ? 0x11111111u : 0x55555555u);
    const int32_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
    const int32_t tap_bits = g->cin * IB;
    const int32_t whole = g->dw == 1 && x0 >= 0 && x0 + g->kw <= g->iw; /* every tap of a row inside */
    mixq_bstream s;
    s.acc = 0;
    s.nb = 0;
    s.dst = (uint32_t *)(void *)buf + (IB == 4 ? 2 * p : p);
    s.t = 0;
    s.words = 0;
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const int32_t iy = y0 + ky * g->dh;
        if ((uint32_t)iy >= (uint32_t)g->ih) {
            mixq_bs_fill(IB, &s, pat, g->kw * tap_bits);
            continue;
        }
        const int32_t row = (b * g->ih + iy) * g->iw;
        if (whole) {
            mixq_bs_copy(IB, &s, in, end, (row + x0) * tap_bits, g->kw * tap_bits);
            continue;
        }
        for (int32_t kx = 0; kx < g->kw; kx++) {
            const int32_t ix = x0 + kx * g->dw;
            if ((uint32_t)ix < (uint32_t)g->iw) {
                mixq_bs_copy(IB, &s, in, end, (row + ix) * tap_bits, tap_bits);
            } else {
                mixq_bs_fill(IB, &s, pat, tap_bits);
            }
        }
    }
    if (s.nb > 0) {
        mixq_bs_emit(IB, &s, s.acc);
    }
    const int32_t total = (g->kp * IB) >> 5;
    while (s.words < total) {
        mixq_bs_emit(IB, &s, 0);
    }
    return IB == 2 ? (int32_t)(((uint32_t)s.t >> 12) & 0xFFFu) : 0;
}

/* ---- stream rows: the bit-stream im2col from padded copies of the input rows ---------------
 * (stream layers with dilation 1 across and more than one tap). Each input row an output row
 * needs is copied once into one of KH slots as a bit row of the padded image: columns -pw ..
 * (OW - 1) SW + KW - 1 - pw, those outside the image the zero point's pattern, column -pw at bit
 * o0 of the slot (o0 < 8 puts column 0 on a byte, so the row is copied 24 bits at a time with one
 * shift); rows outside the image read a slot that holds the pattern only. Window row ky of output
 * column ox is then rb = KW Cin IB contiguous bits of its slot from bit X = o0 + ox SW Cin IB,
 * read in pieces of at most 24 bits 3 bytes apart (one unaligned word load, the shift X & 7 that
 * every piece of the pixel shares, a mask) and added at its stream position into a 64-bit
 * accumulator (UMLAL by 2^pos); each full 32-bit stream word is converted to lanes as in the
 * stream path (mixq_sg_a2 / mixq_sg_a4 in mixq_conv_asm.c, a pixel pair at a time). The stream
 * beyond K is zero (pieces are masked); the lanes past its last word are written once per call. */

#define MIXQ_RING_MAX_KH 16       /* rings of converted rows and stream rows: at most this many slots */
#define MIXQ_RING_MAX_BYTES 16384 /* ... and bytes */
#define MIXQ_SROW_MAX_PIECES 48
#define MIXQ_SROW_MAX_WORDS 64 /* K IB <= 2048 bits */

/* Frame of mixq_sg_a2 / mixq_sg_a4 (offsets fixed by the assembly). */
typedef struct {
    const uint32_t *plan; /* 0: per stream word the count of pieces starting in it, then {p, mask, mul} each */
    uint32_t b0, sh0;     /* 4, 8: byte offset and shift of pixel 0's window in its slots */
    uint32_t b1, sh1;     /* 12, 16: ... of pixel 1 */
    uint32_t *dst;        /* 20: the pixel pair's lane rows */
    uint32_t k[4];        /* 24: A2 lane table, 0x10011001, sums t0, t1; A4 0x78007800, 0x40084008, 0x000F000F */
} mixq_sgf;

typedef char mixq_sgf_layout_check[(sizeof(mixq_sgf) == 40 && offsetof(mixq_sgf, k) == 24) ? 1 : -1];

void mixq_sg_a2(mixq_sgf *f);
void mixq_sg_a4(mixq_sgf *f);

typedef struct {
    uint8_t *slots;     /* KH slots, then the pattern row */
    uint32_t *plan;     /* the gather plan (mixq_sgf) */
    const uint8_t *end; /* one past the last byte of the input */
    int32_t slot_bytes, o0, ebits, dpx, npr, nw, dstart, ncol;
    uint32_t pat;       /* the zero point's pattern word */
    int32_t tag[MIXQ_RING_MAX_KH]; /* b * ih + iy held by each slot, -1: none */
    int32_t row;        /* b * oh + oy the plan points into, -1: none */
    mixq_sgf f;
} mixq_srow;

MIXQ_INLINE int32_t mixq_srow_rb(int32_t IB, const mixq_conv_geom *g) { return g->kw * g->cin * IB; }
MIXQ_INLINE int32_t mixq_srow_npr(int32_t IB, const mixq_conv_geom *g) { return (mixq_srow_rb(IB, g) + 23) / 24; }
MIXQ_INLINE int32_t mixq_srow_o0(int32_t IB, const mixq_conv_geom *g) { return (8 - ((g->pw * g->cin * IB) & 7)) & 7; }

/* Bytes of one slot: the padded row from bit o0, 8 bytes of room for word reads and writes past it. */
MIXQ_INLINE int32_t mixq_srow_slot_bytes(int32_t IB, const mixq_conv_geom *g) {
    const int32_t npx = (g->ow - 1) * g->sw + g->kw;
    return ((((mixq_srow_o0(IB, g) + npx * g->cin * IB + 7) >> 3) + 8) + 3) & ~3;
}

/* Bytes of the block: the plan (a count per stream word, 3 words per piece, the end mark), KH
 * slots and the pattern row. */
MIXQ_INLINE int32_t mixq_srow_bytes(int32_t IB, const mixq_conv_geom *g) {
    const int32_t nw = (g->kh * mixq_srow_rb(IB, g) + 31) >> 5;
    return 4 * (nw + 1) + 12 * g->kh * mixq_srow_npr(IB, g) + (g->kh + 1) * mixq_srow_slot_bytes(IB, g);
}

/* Do stream rows build the activation rows of this layer (packed path, channels off the word
 * paths, several taps, dilation 1 across, within the bounds of the plan and the ring bytes)? */
MIXQ_INLINE int32_t mixq_use_srow(int32_t IB, const mixq_conv_geom *g) {
    if (!mixq_use_stream(IB, g) || g->dw != 1 || g->kh * g->kw < 2 || g->kh > MIXQ_RING_MAX_KH) {
        return 0;
    }
    /* in 64 bits first: no int32 overflow for wide layers */
    const int64_t rb = (int64_t)g->kw * g->cin * IB, npx = (int64_t)(g->ow - 1) * g->sw + g->kw;
    const int64_t np = g->kh * ((rb + 23) / 24), nw = (g->kh * rb + 31) >> 5;
    if (np > MIXQ_SROW_MAX_PIECES || nw > MIXQ_SROW_MAX_WORDS) {
        return 0;
    }
    const int64_t slot = ((((mixq_srow_o0(IB, g) + npx * g->cin * IB + 7) >> 3) + 8) + 3) & ~(int64_t)3;
    return 4 * (nw + 1) + 12 * np + (g->kh + 1) * slot <= MIXQ_RING_MAX_BYTES;
}

/* Once per call: the constants, the plan's counts, masks and multipliers, the pattern row, the
 * lanes past the stream. */
MIXQ_INLINE void mixq_srow_init(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, uint8_t *base, mixq_srow *s,
                                int16_t *buf) {
    const int32_t rb = mixq_srow_rb(IB, g), npr = mixq_srow_npr(IB, g), np = g->kh * npr;
    s->nw = (g->kh * rb + 31) >> 5;
    s->plan = (uint32_t *)(void *)base;
    s->slots = base + 4 * (s->nw + 1) + 12 * np;
    s->end = in + ((g->n * g->ih * g->iw * g->cin * IB + 7) >> 3);
    s->slot_bytes = mixq_srow_slot_bytes(IB, g);
    s->o0 = mixq_srow_o0(IB, g);
    s->ebits = g->cin * IB;
    s->dpx = g->sw * s->ebits;
    s->npr = npr;
    s->dstart = (s->o0 + g->pw * s->ebits) >> 3;
    s->ncol = mixq_min_i32(g->iw, (g->ow - 1) * g->sw + g->kw - g->pw);
    s->pat = (uint32_t)g->in_zp * (IB == 4 ? 0x11111111u : 0x55555555u);
    /* plan: word i's count, then its pieces (pieces in stream order: ky, then 24-bit parts) */
    uint32_t *w = s->plan;
    for (int32_t i = 0, j = 0; i < s->nw; i++) {
        uint32_t *count = w++;
        *count = 0;
        for (; j < np && (j / npr) * rb + 24 * (j % npr) < 32 * (i + 1); j++, w += 3) {
            const int32_t pos = (j / npr) * rb + 24 * (j % npr), len = mixq_min_i32(24, rb - 24 * (j % npr));
            w[0] = 0;
            w[1] = (1u << len) - 1u;
            w[2] = 1u << (pos & 31);
            (*count)++;
        }
    }
    *w = 0xFFFFFFFFu;
    uint32_t *z = (uint32_t *)(void *)(s->slots + g->kh * s->slot_bytes);
    for (int32_t i = 0; i < (s->slot_bytes >> 2); i++) {
        z[i] = s->pat;
    }
    for (int32_t i = 0; i < g->kh; i++) {
        s->tag[i] = -1;
    }
    s->row = -1;
    /* lanes of the stream words past K (zero) in both pixel slots */
    uint32_t *lw = (uint32_t *)(void *)buf;
    for (int32_t i = (IB == 4 ? 4 : 8) * s->nw; i < (g->kp >> 1); i++) {
        lw[i] = 0;
    }
    s->f.plan = s->plan;
    if (IB == 2) {
        s->f.k[0] = (uint32_t)(uintptr_t)mixq_a2_lane_table;
        s->f.k[1] = 0x10011001u;
    } else {
        s->f.k[0] = 0x78007800u;
        s->f.k[1] = 0x40084008u;
        s->f.k[2] = 0x000F000Fu;
    }
}

/* Copy input row iy of image b into slot d (see above). */
MIXQ_INLINE void mixq_srow_fill(const mixq_conv_geom *g, const mixq_srow *s, const uint8_t *in, int32_t b,
                                int32_t iy, uint8_t *d) {
    const uint32_t pat = s->pat;
    for (int32_t i = 0; i < s->dstart; i += 4) { /* left padding (and the bits below o0) */
        mixq_store_u32(d + i, pat);
    }
    const int32_t nbits = s->ncol * s->ebits;
    int32_t e = s->dstart; /* byte where the pattern resumes (above bit rem of it) */
    uint32_t rem = 0;
    if (s->ncol > 0) {
        const int32_t sb = (b * g->ih + iy) * g->iw * s->ebits;
        const uint8_t *src = in + (sb >> 3);
        const uint32_t sh = (uint32_t)sb & 7u;
        uint8_t *dst = d + s->dstart;
        /* chunks of 4 bytes (row on a byte: plain words) or 3 (each word shifted), loads that stay
         * inside the input first, then the last ones byte by byte */
        const int32_t step = sh == 0 ? 4 : 3, n = (nbits + 8 * step - 1) / (8 * step);
        const int32_t room = (int32_t)(s->end - src) - 4;
        int32_t safe = room < 0 ? 0 : room / step + 1, m = 0;
        if (safe > n) {
            safe = n;
        }
        if (sh == 0) {
            for (; m < safe; m++, src += 4, dst += 4) {
                mixq_store_u32(dst, mixq_load_u32(src));
            }
        } else {
            for (; m < safe; m++, src += 3, dst += 3) {
                mixq_store_u32(dst, mixq_load_u32(src) >> sh);
            }
        }
        for (; m < n; m++, src += step, dst += step) { /* the last bytes of the input: no read past its end */
            uint32_t v = 0;
            for (int32_t i = 0; i < 4 && src + i < s->end; i++) {
                v |= (uint32_t)src[i] << (8 * i);
            }
            mixq_store_u32(dst, v >> sh);
        }
        e += nbits >> 3;
        rem = (uint32_t)nbits & 7u;
    }
    /* right padding: the bits above rem of byte e, then whole words to the end of the slot (the
     * copies wrote at most 3 bytes past byte e) */
    const uint32_t low = (1u << rem) - 1u;
    mixq_store_u32(d + e, (mixq_load_u32(d + e) & low) | (pat & ~low));
    for (int32_t i = e + 4; i + 4 <= s->slot_bytes; i += 4) {
        mixq_store_u32(d + i, pat);
    }
}

/* Point the plan's pieces at the slots of output row oy of image b, copying the rows no slot holds.
 * With dilation 1 down the KH rows of an output row are consecutive, so row r of the image lives in
 * slot r mod KH (no two rows of an output row share one); otherwise slots are found by their tags. */
MIXQ_INLINE void mixq_srow_row(const mixq_conv_geom *g, const uint8_t *in, int32_t b, int32_t oy, mixq_srow *s) {
    const uint8_t *rp[MIXQ_RING_MAX_KH];
    const int32_t y0 = oy * g->sh - g->ph;
    if (g->dh == 1) {
        int32_t i = (b * g->ih + y0) % g->kh;
        if (i < 0) {
            i += g->kh;
        }
        for (int32_t ky = 0; ky < g->kh; ky++) {
            const int32_t iy = y0 + ky;
            uint8_t *d = s->slots + i * s->slot_bytes;
            if ((uint32_t)iy >= (uint32_t)g->ih) {
                rp[ky] = s->slots + g->kh * s->slot_bytes; /* the pattern row */
            } else {
                if (s->tag[i] != b * g->ih + iy) {
                    mixq_srow_fill(g, s, in, b, iy, d);
                    s->tag[i] = b * g->ih + iy;
                }
                rp[ky] = d;
            }
            if (++i == g->kh) {
                i = 0;
            }
        }
    } else {
        int32_t keep[MIXQ_RING_MAX_KH], map[MIXQ_RING_MAX_KH];
        for (int32_t i = 0; i < g->kh; i++) {
            keep[i] = 0;
        }
        for (int32_t ky = 0; ky < g->kh; ky++) {
            const int32_t iy = y0 + ky * g->dh;
            map[ky] = g->kh; /* the pattern row */
            if ((uint32_t)iy < (uint32_t)g->ih) {
                map[ky] = -1;
                for (int32_t i = 0; i < g->kh; i++) {
                    if (s->tag[i] == b * g->ih + iy) {
                        map[ky] = i;
                        keep[i] = 1;
                    }
                }
            }
        }
        for (int32_t ky = 0; ky < g->kh; ky++) {
            if (map[ky] < 0) {
                int32_t i = 0;
                while (keep[i]) { /* at most kh - 1 slots are kept, so one is free */
                    i++;
                }
                mixq_srow_fill(g, s, in, b, y0 + ky * g->dh, s->slots + i * s->slot_bytes);
                s->tag[i] = b * g->ih + y0 + ky * g->dh;
                map[ky] = i;
                keep[i] = 1;
            }
            rp[ky] = s->slots + map[ky] * s->slot_bytes;
        }
    }
    uint32_t *w = s->plan;
    int32_t ky = 0, part = 0;
    for (int32_t i = 0; i < s->nw; i++) {
        for (int32_t n = (int32_t)*w++; n > 0; n--, w += 3) {
            w[0] = (uint32_t)(uintptr_t)(rp[ky] + 3 * part);
            if (++part == s->npr) {
                part = 0;
                ky++;
            }
        }
    }
    s->row = b * g->oh + oy;
}

/* Lane words of output column ox alone (its row's plan set) into slot p of the lane rows, in C
 * (pairs that straddle two output rows); returns the A2 sum. */
MIXQ_INLINE int32_t mixq_srow_pixel(int32_t IB, const mixq_srow *s, int32_t ox, int32_t p, int16_t *buf) {
    const uint32_t x = (uint32_t)(s->o0 + ox * s->dpx), B = x >> 3, sh = x & 7u;
    const uint32_t *w = s->plan;
    uint32_t *dst = (uint32_t *)(void *)buf + (IB == 4 ? 2 * p : p);
    uint64_t acc = 0;
    int32_t t = 0;
    for (int32_t i = 0; i < s->nw; i++) {
        for (int32_t n = (int32_t)*w++; n > 0; n--, w += 3) {
            const uint32_t v = (mixq_load_u32((const uint8_t *)(uintptr_t)w[0] + B) >> sh) & w[1];
            acc += (uint64_t)v * w[2];
        }
        const uint32_t xw = (uint32_t)acc;
        acc >>= 32;
        if (IB == 4) {
            mixq_nibble_lanes(xw, 0, &dst[0], &dst[1]);
            dst += 4;
        } else {
            for (int32_t j = 0; j < 4; j++) {
                const uint32_t l = mixq_a2_lane_table[(xw >> (8 * j)) & 0xFFu];
                dst[2 * j] = l;
                t = mixq_smlad(l, 0x10011001u, t);
            }
            dst += 8;
        }
    }
    return IB == 2 ? (int32_t)(((uint32_t)t >> 12) & 0xFFFu) : 0;
}

/* Lane rows of pixels pix and pix1 (pix1 = pix for a duplicated last pixel, else pix + 1);
 * returns the A2 activation sums (padding counts as the zero point). */
MIXQ_INLINE void mixq_srow_pair(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, int32_t pix, int32_t pix1,
                                mixq_srow *s, int16_t *buf, int32_t sum[2]) {
    int32_t b, oy, ox;
    mixq_pixel(g, pix, &b, &oy, &ox);
    if (s->row != b * g->oh + oy) {
        mixq_srow_row(g, in, b, oy, s);
    }
    if (pix1 != pix && ox + 1 == g->ow) { /* the pair straddles two output rows: one pixel at a time */
        sum[0] = mixq_srow_pixel(IB, s, ox, 0, buf);
        mixq_pixel(g, pix1, &b, &oy, &ox);
        mixq_srow_row(g, in, b, oy, s);
        sum[1] = mixq_srow_pixel(IB, s, ox, 1, buf);
        return;
    }
    const uint32_t x0 = (uint32_t)(s->o0 + ox * s->dpx), x1 = pix1 != pix ? x0 + (uint32_t)s->dpx : x0;
    s->f.dst = (uint32_t *)(void *)buf;
    s->f.b0 = x0 >> 3;
    s->f.sh0 = x0 & 7u;
    s->f.b1 = x1 >> 3;
    s->f.sh1 = x1 & 7u;
    if (IB == 2) {
        s->f.k[2] = 0;
        s->f.k[3] = 0;
        mixq_sg_a2(&s->f);
        sum[0] = (int32_t)((s->f.k[2] >> 12) & 0xFFFu);
        sum[1] = (int32_t)((s->f.k[3] >> 12) & 0xFFFu);
    } else {
        mixq_sg_a4(&s->f);
        sum[0] = sum[1] = 0;
    }
}

/* ---- A4W4: packed lanes, spacing 11 -------------------------------------------------------- */

#define MIXQ_A4_PAIR(a, b) ((uint32_t)(uint16_t)(int16_t)((a) + (b) * 2048))

/* Halfword index of element k in an A4W4 lane row. */
MIXQ_INLINE int32_t mixq_a4_hw(int32_t k) {
    const int32_t p = (k & 7) >> 1;
    return ((k >> 3) << 2) | ((p & 1) << 1) | (p >> 1);
}

MIXQ_INLINE void mixq_im2col_a4(const mixq_conv_geom *g, const uint8_t *in, int32_t pix, int32_t p, int16_t *buf) {
    if (mixq_use_stream(4, g)) {
        mixq_im2col_stream(4, g, in, pix, p, buf);
        return;
    }
    int32_t b, oy, ox, idx = 0;
    mixq_pixel(g, pix, &b, &oy, &ox);
    const int32_t fast = (g->cin & 7) == 0;
    const int32_t pz = g->in_zp - 8;
    const uint32_t pad_word = MIXQ_A4_PAIR(pz, pz) * 0x00010001u;
    if (!fast) {
        for (int32_t h = 0; h < (g->kp >> 1); h += 4) {
            uint32_t *dst = (uint32_t *)(void *)(buf + mixq_ipos(h, p));
            dst[0] = 0;
            dst[1] = 0;
        }
    }
    if (fast) {
        /* 8 nibbles (one word of input) -> 2 lane words at words 0, 1 of the pixel's 8-byte slot */
        const int32_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
        const int32_t pix_words = g->cin >> 3;
        uint32_t *dst = (uint32_t *)(void *)buf + 2 * p;
        for (int32_t ky = 0; ky < g->kh; ky++) {
            const int32_t iy = y0 + ky * g->dh;
            const int32_t row_ok = (uint32_t)iy < (uint32_t)g->ih;
            const int32_t row = (b * g->ih + iy) * g->iw;
            for (int32_t kx = 0; kx < g->kw; kx++) {
                const int32_t ix = x0 + kx * g->dw;
                if (row_ok && (uint32_t)ix < (uint32_t)g->iw) {
                    const uint8_t *src = in + (row + ix) * (g->cin >> 1);
                    for (int32_t j = 0; j < pix_words; j++, src += 4, dst += 4) {
                        mixq_nibble_lanes(mixq_load_u32(src), 0, &dst[0], &dst[1]);
                    }
                } else {
                    for (int32_t j = 0; j < pix_words; j++, dst += 4) {
                        dst[0] = dst[1] = pad_word;
                    }
                }
            }
        }
        idx = g->k;
    }
    for (int32_t ky = 0; ky < g->kh && idx < g->k; ky++) {
        const int32_t iy = oy * g->sh - g->ph + ky * g->dh;
        for (int32_t kx = 0; kx < g->kw; kx++) {
            const int32_t ix = ox * g->sw - g->pw + kx * g->dw;
            const int32_t inside = mixq_inside(g, iy, ix);
            const int32_t base = ((b * g->ih + iy) * g->iw + ix) * g->cin;
            if (fast) {
                for (int32_t ci = 0; ci < g->cin; ci += 8, idx += 8) {
                    uint32_t *dst = (uint32_t *)(void *)(buf + mixq_ipos(idx >> 1, p));
                    uint32_t la = pad_word, lb = pad_word;
                    if (inside) {
                        mixq_nibble_lanes(mixq_load_u32(in + ((base + ci) >> 1)), 0, &la, &lb);
                    }
                    dst[0] = la;
                    dst[1] = lb;
                }
            } else {
                for (int32_t ci = 0; ci < g->cin; ci++, idx++) {
                    const int32_t v = inside ? mixq_get_act(in, base + ci, 4) - 8 : pz;
                    int16_t *h = buf + mixq_ipos(mixq_a4_hw(idx), p);
                    *h = (int16_t)(uint16_t)((uint16_t)*h + (uint16_t)(v * ((idx & 1) ? 2048 : 1)));
                }
            }
        }
    }
    for (; fast && idx < g->kp; idx += 8) {
        uint32_t *dst = (uint32_t *)(void *)(buf + mixq_ipos(idx >> 1, p));
        dst[0] = 0;
        dst[1] = 0;
    }
}

/* Re-space the 4-bit weights into lane words [w1 + w0*2^11, w5 + w4*2^11], [w3 + w2*2^11, ...]
 * (channel pairs interleaved 8 bytes at a time like the activations) and compute the per-channel
 * constants bias + (8 - zp) * sum(w) - 896 * (kp / 16). */
MIXQ_INLINE void mixq_prepare_w4(const mixq_conv_geom *g, const uint8_t *filter, const int32_t *bias, uint32_t *wl,
                                 int32_t *cst) {
    const int32_t words = g->kp >> 3; /* 32-bit words of nibbles per channel */
    const int32_t cpad = (g->cout + 1) & ~1;
    const uint32_t *src = (const uint32_t *)(const void *)filter;
    const uint32_t m = 0x0F0F0F0Fu, c = 0x40084008u; /* c: 8 + 8 * 2^11 per halfword */
    for (int32_t pair = 0; pair < cpad; pair += 2) {
        /* per word, n = w + 8 (EOR 0x88888888), y / z its low / high nibbles; lanes
         * (UXTB16(z) | UXTB16(y) << 11) - c and the same of the odd bytes (ROR 8), the mixq_nibble_lanes
         * of n with the nibbles swapped; USADA8 against 0x0F0F0F0F adds 15 - byte, so the sums end as
         * 120 words - sum(n). 15 instructions per word. */
        uint32_t s0 = 0, s1 = 0, x0, x1, y, z, t;
        int32_t n = words;
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[x0], %[x1], [%[src]], #8\n\t"
            "eor %[x0], %[x0], #0x88888888\n\t"
            "and %[y], %[x0], %[m]\n\t"
            "and %[z], %[m], %[x0], lsr #4\n\t"
            "usada8 %[s0], %[y], %[m], %[s0]\n\t"
            "usada8 %[s0], %[z], %[m], %[s0]\n\t"
            "uxtb16 %[t], %[z]\n\t"
            "uxtb16 %[x0], %[y]\n\t"
            "orr %[t], %[t], %[x0], lsl #11\n\t"
            "ssub16 %[t], %[t], %[c]\n\t"
            "uxtb16 %[x0], %[z], ror #8\n\t"
            "uxtb16 %[y], %[y], ror #8\n\t"
            "orr %[x0], %[x0], %[y], lsl #11\n\t"
            "ssub16 %[x0], %[x0], %[c]\n\t"
            "strd %[t], %[x0], [%[wl]], #8\n\t"
            "eor %[x1], %[x1], #0x88888888\n\t"
            "and %[y], %[x1], %[m]\n\t"
            "and %[z], %[m], %[x1], lsr #4\n\t"
            "usada8 %[s1], %[y], %[m], %[s1]\n\t"
            "usada8 %[s1], %[z], %[m], %[s1]\n\t"
            "uxtb16 %[t], %[z]\n\t"
            "uxtb16 %[x1], %[y]\n\t"
            "orr %[t], %[t], %[x1], lsl #11\n\t"
            "ssub16 %[t], %[t], %[c]\n\t"
            "uxtb16 %[x1], %[z], ror #8\n\t"
            "uxtb16 %[y], %[y], ror #8\n\t"
            "orr %[x1], %[x1], %[y], lsl #11\n\t"
            "ssub16 %[x1], %[x1], %[c]\n\t"
            "strd %[t], %[x1], [%[wl]], #8\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [src] "+r"(src), [wl] "+r"(wl), [n] "+r"(n), [s0] "+r"(s0), [s1] "+r"(s1), [x0] "=&r"(x0),
              [x1] "=&r"(x1), [y] "=&r"(y), [z] "=&r"(z), [t] "=&r"(t)
            : [m] "r"(m), [c] "r"(c)
            : "cc", "memory");
        const int32_t sum0 = 120 * words - (int32_t)s0, sum1 = 120 * words - (int32_t)s1; /* sum(n) */
        const int32_t k8 = 8 * g->kp; /* sum(n) = sum(w) + 8 kp */
        const int32_t corr = -896 * (g->kp >> 4);
        cst[pair] = (bias ? bias[pair] : 0) + (8 - g->in_zp) * (sum0 - k8) + corr;
        cst[pair + 1] = pair + 1 < g->cout ? (bias ? bias[pair + 1] : 0) + (8 - g->in_zp) * (sum1 - k8) + corr : 0;
    }
}

/* Accumulators of 2 pixels x 2 channels over the lane row; each 16 K values (4 SMLADs) the field
 * [11, 22) is extracted. The preload P = 896*2^11 + 1024 keeps both fields non-negative: the field
 * sum of 16 products lies in [-896, 1024], the low field (8 cross products) in [-448, 512]. */
MIXQ_INLINE void mixq_block_a4w4(const mixq_conv_geom *g, const uint32_t *ap, const uint32_t *wp, int32_t acc[4]) {
    const int32_t P = (896 << 11) + 1024;
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    if (g->kp <= 544) {
        /* the per-output sums of extracted fields stay below 34 * 1920 < 2^16: the two channels of
         * a pixel share one register (low and high halfword) */
        uint32_t sp0 = 0, sp1 = 0, a0, a1, w0, w1;
        int32_t t00, t01, t10, t11, n = g->kp >> 4;
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[a0], %[a1], [%[ap]], #32\n\t"
            "ldrd %[w0], %[w1], [%[wp]], #32\n\t"
            "smlad %[t00], %[a0], %[w0], %[P]\n\t"
            "smlad %[t00], %[a1], %[w1], %[t00]\n\t"
            "ldrd %[w0], %[w1], [%[wp], #-24]\n\t"
            "smlad %[t01], %[a0], %[w0], %[P]\n\t"
            "smlad %[t01], %[a1], %[w1], %[t01]\n\t"
            "ldrd %[a0], %[a1], [%[ap], #-24]\n\t"
            "smlad %[t11], %[a0], %[w0], %[P]\n\t"
            "smlad %[t11], %[a1], %[w1], %[t11]\n\t"
            "ldrd %[w0], %[w1], [%[wp], #-32]\n\t"
            "smlad %[t10], %[a0], %[w0], %[P]\n\t"
            "smlad %[t10], %[a1], %[w1], %[t10]\n\t"
            "ldrd %[a0], %[a1], [%[ap], #-16]\n\t"
            "ldrd %[w0], %[w1], [%[wp], #-16]\n\t"
            "smlad %[t00], %[a0], %[w0], %[t00]\n\t"
            "smlad %[t00], %[a1], %[w1], %[t00]\n\t"
            "ldrd %[w0], %[w1], [%[wp], #-8]\n\t"
            "smlad %[t01], %[a0], %[w0], %[t01]\n\t"
            "smlad %[t01], %[a1], %[w1], %[t01]\n\t"
            "ldrd %[a0], %[a1], [%[ap], #-8]\n\t"
            "smlad %[t11], %[a0], %[w0], %[t11]\n\t"
            "smlad %[t11], %[a1], %[w1], %[t11]\n\t"
            "ldrd %[w0], %[w1], [%[wp], #-16]\n\t"
            "smlad %[t10], %[a0], %[w0], %[t10]\n\t"
            "smlad %[t10], %[a1], %[w1], %[t10]\n\t"
            "ubfx %[t00], %[t00], #11, #11\n\t"
            "ubfx %[t01], %[t01], #11, #11\n\t"
            "ubfx %[t10], %[t10], #11, #11\n\t"
            "ubfx %[t11], %[t11], #11, #11\n\t"
            "add %[sp0], %[sp0], %[t00]\n\t"
            "add %[sp0], %[sp0], %[t01], lsl #16\n\t"
            "add %[sp1], %[sp1], %[t10]\n\t"
            "add %[sp1], %[sp1], %[t11], lsl #16\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [sp0] "+r"(sp0), [sp1] "+r"(sp1), [ap] "+r"(ap), [wp] "+r"(wp), [n] "+r"(n), [a0] "=&r"(a0),
              [a1] "=&r"(a1), [w0] "=&r"(w0), [w1] "=&r"(w1), [t00] "=&r"(t00), [t01] "=&r"(t01),
              [t10] "=&r"(t10), [t11] "=&r"(t11)
            : [P] "r"(P)
            : "cc", "memory");
        acc[0] = (int32_t)(sp0 & 0xFFFFu);
        acc[1] = (int32_t)(sp0 >> 16);
        acc[2] = (int32_t)(sp1 & 0xFFFFu);
        acc[3] = (int32_t)(sp1 >> 16);
        return;
    }
    for (int32_t k = 0; k < g->kp; k += 16, ap += 8, wp += 8) {
        int32_t t00 = mixq_smlad(ap[0], wp[0], P), t01 = mixq_smlad(ap[0], wp[2], P);
        int32_t t10 = mixq_smlad(ap[2], wp[0], P), t11 = mixq_smlad(ap[2], wp[2], P);
        t00 = mixq_smlad(ap[1], wp[1], t00);
        t01 = mixq_smlad(ap[1], wp[3], t01);
        t10 = mixq_smlad(ap[3], wp[1], t10);
        t11 = mixq_smlad(ap[3], wp[3], t11);
        t00 = mixq_smlad(ap[4], wp[4], t00);
        t01 = mixq_smlad(ap[4], wp[6], t01);
        t10 = mixq_smlad(ap[6], wp[4], t10);
        t11 = mixq_smlad(ap[6], wp[6], t11);
        t00 = mixq_smlad(ap[5], wp[5], t00);
        t01 = mixq_smlad(ap[5], wp[7], t01);
        t10 = mixq_smlad(ap[7], wp[5], t10);
        t11 = mixq_smlad(ap[7], wp[7], t11);
        s00 += ((uint32_t)t00 >> 11) & 0x7FF;
        s01 += ((uint32_t)t01 >> 11) & 0x7FF;
        s10 += ((uint32_t)t10 >> 11) & 0x7FF;
        s11 += ((uint32_t)t11 >> 11) & 0x7FF;
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

/* ---- A2W2: packed lanes, spacing 12 -------------------------------------------------------- */

/* Lane word of 4 activations (one byte of crumbs): a0 | a1 << 12 | a2 << 16 | a3 << 28. */
MIXQ_INLINE uint32_t mixq_a2_lane(uint32_t byte) {
    return (byte & 3u) | ((byte & 0xCu) << 10) | ((byte & 0x30u) << 12) | ((byte & 0xC0u) << 22);
}

#define MIXQ_A2_CHUNK 448 /* K values per extraction: 112 SMLADs, field sum <= 112 * 36 < 4096 */

/* A2 lane rows of two pixels interleave one lane word (4 K values) at a time:
 * [p0 word0, p1 word0, p0 word1, ...], so one LDRD loads the same lane of both pixels.
 * Halfword h of pixel p: */
MIXQ_INLINE int32_t mixq_ipos2(int32_t h, int32_t p) { return ((h >> 1) << 2) + (p << 1) + (h & 1); }

/* im2col into A2 lanes; returns the sum of the activations (padding counts as in_zp). */
MIXQ_INLINE int32_t mixq_im2col_a2(const mixq_conv_geom *g, const uint8_t *in, int32_t pix, int32_t p,
                                   int16_t *buf) {
    if (g->kh == 1 && g->kw == 1 && (g->cin & 15) != 0 && (g->cin & 3) == 0 && g->cin <= 1364) {
        /* one tap, whole bytes (pointwise with Cin = 4, 8, 12, 20, ...; the 16-multiples take the
         * word path below): one table lane per byte, zero lanes (a = 0) up to kp */
        int32_t t = 0, w = 0, lin = pix, inside = 1;
        const int32_t nb = g->cin >> 2;
        uint32_t *dst = (uint32_t *)(void *)buf + p;
        if (g->sh != 1 || g->sw != 1 || g->ph != 0 || g->pw != 0 || g->ih != g->oh || g->iw != g->ow) {
            int32_t b, oy, ox;
            mixq_pixel(g, pix, &b, &oy, &ox);
            const int32_t iy = oy * g->sh - g->ph, ix = ox * g->sw - g->pw;
            inside = (uint32_t)iy < (uint32_t)g->ih && (uint32_t)ix < (uint32_t)g->iw;
            lin = (b * g->ih + iy) * g->iw + ix;
        }
        if (inside) {
            const uint8_t *src = in + lin * nb;
            for (; w < nb; w++) {
                const uint32_t lane = mixq_a2_lane_table[src[w]];
                dst[2 * w] = lane;
                t = mixq_smlad(lane, 0x10011001u, t);
            }
            t = (int32_t)(((uint32_t)t >> 12) & 0xFFFu);
        } else {
            const uint32_t pad_word = mixq_a2_lane((uint32_t)g->in_zp * 0x55u);
            for (; w < nb; w++) {
                dst[2 * w] = pad_word;
            }
            t = g->in_zp * g->cin;
        }
        for (; w < (g->kp >> 2); w++) {
            dst[2 * w] = 0;
        }
        return t;
    }
    if (mixq_use_stream(2, g)) {
        return mixq_im2col_stream(2, g, in, pix, p, buf);
    }
    int32_t b, oy, ox, idx = 0, sum = 0;
    mixq_pixel(g, pix, &b, &oy, &ox);
    const int32_t fast = (g->cin & 3) == 0 && g->cin <= 1364; /* segment sum fits the SMLAD field */
    const uint32_t pad_word = mixq_a2_lane((uint32_t)g->in_zp * 0x55u);
    if (!fast) {
        for (int32_t w = 0; w < (g->kp >> 2); w++) {
            ((uint32_t *)(void *)buf)[2 * w + p] = 0;
        }
    }
    if ((g->cin & 15) == 0 && g->cin <= 1364) {
        /* 16 crumbs (one word of input) -> 4 lane words, at words 0, 2, 4, 6 of the pixel (the other
         * pixel's lanes in between); sum(a) of a segment through SMLAD of the lanes with
         * 0x10011001 (field [12, 24)) */
        const int32_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
        const int32_t pix_words = g->cin >> 4;
        uint32_t *dst = (uint32_t *)(void *)buf + p;
        for (int32_t ky = 0; ky < g->kh; ky++) {
            const int32_t iy = y0 + ky * g->dh;
            const int32_t row_ok = (uint32_t)iy < (uint32_t)g->ih;
            const int32_t row = (b * g->ih + iy) * g->iw;
            for (int32_t kx = 0; kx < g->kw; kx++) {
                const int32_t ix = x0 + kx * g->dw;
                if (row_ok && (uint32_t)ix < (uint32_t)g->iw) {
                    const uint8_t *src = in + (row + ix) * (g->cin >> 2);
                    int32_t t = 0;
                    for (int32_t j = 0; j < pix_words; j++, src += 4, dst += 8) {
                        const uint32_t x = mixq_load_u32(src);
                        const uint32_t l0 = mixq_a2_lane_table[x & 0xFFu];
                        const uint32_t l1 = mixq_a2_lane_table[(x >> 8) & 0xFFu];
                        const uint32_t l2 = mixq_a2_lane_table[(x >> 16) & 0xFFu];
                        const uint32_t l3 = mixq_a2_lane_table[x >> 24];
                        dst[0] = l0;
                        dst[2] = l1;
                        dst[4] = l2;
                        dst[6] = l3;
                        t = mixq_smlad(l0, 0x10011001u, t);
                        t = mixq_smlad(l1, 0x10011001u, t);
                        t = mixq_smlad(l2, 0x10011001u, t);
                        t = mixq_smlad(l3, 0x10011001u, t);
                    }
                    sum += (int32_t)(((uint32_t)t >> 12) & 0xFFFu);
                } else {
                    for (int32_t j = 0; j < pix_words; j++, dst += 8) {
                        dst[0] = dst[2] = dst[4] = dst[6] = pad_word;
                    }
                    sum += g->in_zp * g->cin;
                }
            }
        }
        idx = g->k;
    }
    for (int32_t ky = 0; ky < g->kh && idx < g->k; ky++) {
        const int32_t iy = oy * g->sh - g->ph + ky * g->dh;
        for (int32_t kx = 0; kx < g->kw; kx++) {
            const int32_t ix = ox * g->sw - g->pw + kx * g->dw;
            const int32_t inside = mixq_inside(g, iy, ix);
            const int32_t base = ((b * g->ih + iy) * g->iw + ix) * g->cin;
            if (fast) {
                const uint8_t *src = in + (base >> 2);
                if (!inside) {
                    sum += g->in_zp * g->cin;
                }
                if (inside) {
                    /* lanes from the table; their sum through SMLAD with lanes of ones (field [12, 24)) */
                    int32_t t = 0;
                    for (int32_t ci = 0; ci < g->cin; ci += 4, idx += 4) {
                        const uint32_t lane = mixq_a2_lane_table[src[ci >> 2]];
                        t = mixq_smlad(lane, 0x10011001u, t);
                        *(uint32_t *)(void *)(buf + mixq_ipos2(idx >> 1, p)) = lane;
                    }
                    sum += (int32_t)(((uint32_t)t >> 12) & 0xFFFu);
                } else {
                    for (int32_t ci = 0; ci < g->cin; ci += 4, idx += 4) {
                        *(uint32_t *)(void *)(buf + mixq_ipos2(idx >> 1, p)) = pad_word;
                    }
                }
            } else {
                for (int32_t ci = 0; ci < g->cin; ci++, idx++) {
                    const int32_t v = inside ? mixq_get_act(in, base + ci, 2) : g->in_zp;
                    int16_t *h = buf + mixq_ipos2(idx >> 1, p);
                    *h = (int16_t)(uint16_t)((uint16_t)*h + (uint16_t)(v << ((idx & 1) * 12)));
                    sum += v;
                }
            }
        }
    }
    for (; fast && idx < g->kp; idx += 4) {
        *(uint32_t *)(void *)(buf + mixq_ipos2(idx >> 1, p)) = 0;
    }
    return sum;
}

/* Per-channel constants bias - zp * sum(w); sum(w) = sum(u) - 2 kp from the crumbs u = w + 2. */
MIXQ_INLINE void mixq_prepare_w2(const mixq_conv_geom *g, const uint8_t *filter, const int32_t *bias, int32_t *cst) {
    const int32_t words = g->kp >> 4;
    const uint32_t *src = (const uint32_t *)(const void *)filter;
    for (int32_t pair = 0; pair < g->cout; pair += 2) {
        uint32_t s0 = 0, s1 = 0;
        int32_t j = 0;
        /* two words of a channel at a time: their nibble sums (at most 6 each) share one word; the
         * masks in registers make each masked shift one AND with a shifted operand */
        uint32_t m3 = 0x33333333u, mf = 0x0F0F0F0Fu;
        __asm__("" : "+r"(m3), "+r"(mf));
        for (; j + 2 <= words; j += 2, src += 4) {
            const uint32_t n0 = (src[0] & m3) + ((src[0] >> 2) & m3) + (src[2] & m3) + ((src[2] >> 2) & m3);
            const uint32_t n1 = (src[1] & m3) + ((src[1] >> 2) & m3) + (src[3] & m3) + ((src[3] >> 2) & m3);
            s0 = __usada8((n0 & mf) + ((n0 >> 4) & mf), 0, s0);
            s1 = __usada8((n1 & mf) + ((n1 >> 4) & mf), 0, s1);
        }
        for (; j < words; j++, src += 2) {
            const uint32_t n0 = (src[0] & 0x33333333u) + ((src[0] >> 2) & 0x33333333u);
            const uint32_t n1 = (src[1] & 0x33333333u) + ((src[1] >> 2) & 0x33333333u);
            s0 = __usada8((n0 & 0x0F0F0F0Fu) + ((n0 >> 4) & 0x0F0F0F0Fu), 0, s0);
            s1 = __usada8((n1 & 0x0F0F0F0Fu) + ((n1 >> 4) & 0x0F0F0F0Fu), 0, s1);
        }
        cst[pair] = (bias ? bias[pair] : 0) - g->in_zp * ((int32_t)s0 - 2 * g->kp);
        cst[pair + 1] = pair + 1 < g->cout ? (bias ? bias[pair + 1] : 0) - g->in_zp * ((int32_t)s1 - 2 * g->kp) : 0;
    }
}

MIXQ_INLINE void mixq_block_a2w2(const mixq_conv_geom *g, const uint32_t *ap, const uint32_t *wp, int32_t acc[4]) {
    const uint32_t m = 0x30033003u;
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    for (int32_t k0 = 0; k0 < g->kp; k0 += MIXQ_A2_CHUNK) {
        const int32_t k1 = mixq_min_i32(k0 + MIXQ_A2_CHUNK, g->kp);
        int32_t t00 = 0, t01 = 0, t10 = 0, t11 = 0;
        /* per 16 K values: 1 LDRD of weights, 8 AND with rotated operand, 4 LDRD of activations,
         * 16 SMLAD (64 MACs); lane word j of pixel p sits at ap[2 j + p] */
        uint32_t x0, x1, l0, l1, a0, a1;
        int32_t n = (k1 - k0) >> 4;
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[x0], %[x1], [%[wp]], #8\n\t"
            "and %[l0], %[m], %[x0]\n\t"
            "and %[l1], %[m], %[x1]\n\t"
            "ldrd %[a0], %[a1], [%[ap]], #32\n\t"
            "smlad %[t00], %[a0], %[l0], %[t00]\n\t"
            "smlad %[t01], %[a0], %[l1], %[t01]\n\t"
            "smlad %[t10], %[a1], %[l0], %[t10]\n\t"
            "smlad %[t11], %[a1], %[l1], %[t11]\n\t"
            "and %[l0], %[m], %[x0], ror #2\n\t"
            "and %[l1], %[m], %[x1], ror #2\n\t"
            "ldrd %[a0], %[a1], [%[ap], #-24]\n\t"
            "smlad %[t00], %[a0], %[l0], %[t00]\n\t"
            "smlad %[t01], %[a0], %[l1], %[t01]\n\t"
            "smlad %[t10], %[a1], %[l0], %[t10]\n\t"
            "smlad %[t11], %[a1], %[l1], %[t11]\n\t"
            "and %[l0], %[m], %[x0], ror #8\n\t"
            "and %[l1], %[m], %[x1], ror #8\n\t"
            "ldrd %[a0], %[a1], [%[ap], #-16]\n\t"
            "smlad %[t00], %[a0], %[l0], %[t00]\n\t"
            "smlad %[t01], %[a0], %[l1], %[t01]\n\t"
            "smlad %[t10], %[a1], %[l0], %[t10]\n\t"
            "smlad %[t11], %[a1], %[l1], %[t11]\n\t"
            "and %[l0], %[m], %[x0], ror #10\n\t"
            "and %[l1], %[m], %[x1], ror #10\n\t"
            "ldrd %[a0], %[a1], [%[ap], #-8]\n\t"
            "smlad %[t00], %[a0], %[l0], %[t00]\n\t"
            "smlad %[t01], %[a0], %[l1], %[t01]\n\t"
            "smlad %[t10], %[a1], %[l0], %[t10]\n\t"
            "smlad %[t11], %[a1], %[l1], %[t11]\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [t00] "+r"(t00), [t01] "+r"(t01), [t10] "+r"(t10), [t11] "+r"(t11), [ap] "+r"(ap), [wp] "+r"(wp),
              [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [l0] "=&r"(l0), [l1] "=&r"(l1), [a0] "=&r"(a0),
              [a1] "=&r"(a1)
            : [m] "r"(m)
            : "cc", "memory");
        s00 += ((uint32_t)t00 >> 12) & 0xFFF;
        s01 += ((uint32_t)t01 >> 12) & 0xFFF;
        s10 += ((uint32_t)t10 >> 12) & 0xFFF;
        s11 += ((uint32_t)t11 >> 12) & 0xFFF;
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

/* ---- ring of converted input rows (packed word paths, several taps) ------------------------
 * Each input row is converted to lanes once, into one of KH ring slots, in pair form: entry q of
 * a slot (input column x = q - pw) holds the lane words of column x for pixel slot 0 and those of
 * column x + sw for pixel slot 1, interleaved exactly as in the activation rows of a pixel pair
 * (A4: 2 words per pixel at a time, A2: 1 word). For two output pixels (ox, ox + 1) of one output
 * row, the taps of a window row are then entries ox sw + kx dw, copied word for word (LDM/STM);
 * columns and rows outside the image are the zero point's lane pattern. A2 keeps per slot the
 * activation sum of every output column's window row (padding counts as the zero point). */

MIXQ_INLINE int32_t mixq_ring_nq(const mixq_conv_geom *g) { return (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1; }

/* 32-bit words of one slot: nq entries of cin/2 words, then (A2) ow window-row sums. */
MIXQ_INLINE int32_t mixq_ring_slot_words(int32_t IB, const mixq_conv_geom *g) {
    return mixq_ring_nq(g) * (g->cin >> 1) + (IB == 2 ? g->ow : 0);
}

/* Bytes of the ring: KH slots, then (A2) nq + sw column sums. */
MIXQ_INLINE int32_t mixq_ring_bytes(int32_t IB, const mixq_conv_geom *g) {
    return 4 * (g->kh * mixq_ring_slot_words(IB, g) + (IB == 2 ? mixq_ring_nq(g) + g->sw : 0));
}

MIXQ_INLINE int32_t mixq_use_ring(int32_t IB, const mixq_conv_geom *g) {
    const int32_t word_path = IB == 4 ? (g->cin & 7) == 0 : ((g->cin & 15) == 0 && g->cin <= 1364);
    if (!word_path || g->kh * g->kw < 2 || g->ow < 2 || g->kh > MIXQ_RING_MAX_KH) {
        return 0;
    }
    /* bounded in 64 bits first (no int32 overflow for wide layers) */
    const int64_t nq = (int64_t)(g->ow - 1) * g->sw + (int64_t)(g->kw - 1) * g->dw + 1;
    const int64_t bytes = 4 * ((int64_t)g->kh * (nq * (g->cin >> 1) + g->ow) + nq + g->sw);
    return bytes <= MIXQ_RING_MAX_BYTES;
}

/* Copy n words (n > 0, a multiple of 4); returns dst + n. */
MIXQ_INLINE uint32_t *mixq_copy_words(uint32_t *dst, const uint32_t *src, int32_t n) {
    register uint32_t r4 __asm__("r4");
    register uint32_t r5 __asm__("r5");
    register uint32_t r6 __asm__("r6");
    register uint32_t r8 __asm__("r8");
    if (n & 4) {
        __asm__ volatile("ldmia %[s]!, {%[a], %[b], %[c], %[d]}\n\t"
                         "stmia %[t]!, {%[a], %[b], %[c], %[d]}\n\t"
                         : [s] "+r"(src), [t] "+r"(dst), [a] "=r"(r4), [b] "=r"(r5), [c] "=r"(r6), [d] "=r"(r8)
                         :
                         : "memory");
        n -= 4;
    }
    if (n > 0) {
        __asm__ volatile("1:\n\t"
                         "ldmia %[s]!, {%[a], %[b], %[c], %[d]}\n\t"
                         "stmia %[t]!, {%[a], %[b], %[c], %[d]}\n\t"
                         "ldmia %[s]!, {%[a], %[b], %[c], %[d]}\n\t"
                         "stmia %[t]!, {%[a], %[b], %[c], %[d]}\n\t"
                         "subs %[n], %[n], #8\n\t"
                         "bne 1b\n\t"
                         : [s] "+r"(src), [t] "+r"(dst), [n] "+r"(n), [a] "=r"(r4), [b] "=r"(r5), [c] "=r"(r6),
                           [d] "=r"(r8)
                         :
                         : "cc", "memory");
    }
    return dst;
}

/* Convert input row iy of batch b into ring slot q (pair form; A2: window-row sums at q + nq ew,
 * column sums in cs). */
MIXQ_INLINE void mixq_ring_fill(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, int32_t b, int32_t iy,
                                uint32_t *q, int32_t *cs) {
    const int32_t ew = g->cin >> 1, nq = mixq_ring_nq(g);
    const int32_t in_words = IB == 4 ? g->cin >> 3 : g->cin >> 4; /* input words per pixel */
    const uint32_t pad_word = IB == 4 ? MIXQ_A4_PAIR(g->in_zp - 8, g->in_zp - 8) * 0x00010001u
                                      : mixq_a2_lane((uint32_t)g->in_zp * 0x55u);
    const uint8_t *row = in + (size_t)(b * g->ih + iy) * g->iw * (g->cin * IB / 8);
    for (int32_t e = 0; e < nq + g->sw; e++) {
        const int32_t x = e - g->pw;
        /* destinations: entry e, slot 0 and entry e - sw, slot 1 */
        uint32_t *d0 = e < nq ? q + e * ew : 0;
        uint32_t *d1 = e >= g->sw ? q + (e - g->sw) * ew + (IB == 4 ? 2 : 1) : 0;
        if ((uint32_t)x >= (uint32_t)g->iw) {
            for (int32_t w = 0; w < ew; w += (IB == 4 ? 4 : 2)) {
                if (d0) {
                    d0[w] = pad_word;
                    d0[w + (IB == 4 ? 1 : 0)] = pad_word;
                }
                if (d1) {
                    d1[w] = pad_word;
                    d1[w + (IB == 4 ? 1 : 0)] = pad_word;
                }
            }
            if (IB == 2) {
                cs[e] = g->in_zp * g->cin;
            }
            continue;
        }
        const uint8_t *src = row + x * in_words * 4;
        int32_t t = 0;
        for (int32_t j = 0; j < in_words; j++, src += 4) {
            const uint32_t v = mixq_load_u32(src);
            if (IB == 4) {
                uint32_t la, lb;
                mixq_nibble_lanes(v, 0, &la, &lb);
                if (d0) {
                    d0[4 * j] = la;
                    d0[4 * j + 1] = lb;
                }
                if (d1) {
                    d1[4 * j] = la;
                    d1[4 * j + 1] = lb;
                }
            } else {
                const uint32_t l0 = mixq_a2_lane_table[v & 0xFFu];
                const uint32_t l1 = mixq_a2_lane_table[(v >> 8) & 0xFFu];
                const uint32_t l2 = mixq_a2_lane_table[(v >> 16) & 0xFFu];
                const uint32_t l3 = mixq_a2_lane_table[v >> 24];
                if (d0) {
                    d0[8 * j] = l0;
                    d0[8 * j + 2] = l1;
                    d0[8 * j + 4] = l2;
                    d0[8 * j + 6] = l3;
                }
                if (d1) {
                    d1[8 * j] = l0;
                    d1[8 * j + 2] = l1;
                    d1[8 * j + 4] = l2;
                    d1[8 * j + 6] = l3;
                }
                t = mixq_smlad(l0, 0x10011001u, t);
                t = mixq_smlad(l1, 0x10011001u, t);
                t = mixq_smlad(l2, 0x10011001u, t);
                t = mixq_smlad(l3, 0x10011001u, t);
            }
        }
        if (IB == 2) {
            cs[e] = (int32_t)(((uint32_t)t >> 12) & 0xFFFu);
        }
    }
    if (IB == 2) {
        int32_t *ws = (int32_t *)(void *)(q + nq * ew);
        for (int32_t ox = 0; ox < g->ow; ox++) {
            int32_t s = 0;
            for (int32_t kx = 0; kx < g->kw; kx++) {
                s += cs[ox * g->sw + kx * g->dw];
            }
            ws[ox] = s;
        }
    }
}

typedef struct {
    uint32_t *base;               /* first slot */
    int32_t *cs;                  /* A2 column sums */
    int32_t tag[MIXQ_RING_MAX_KH]; /* b * ih + iy held by each slot, -1: none */
    int32_t map[MIXQ_RING_MAX_KH]; /* slot of each window row of the current output row, -1: padding */
    const uint32_t *src[MIXQ_RING_MAX_KH]; /* the slot of each window row, 0: padding */
    int32_t row;                  /* b * oh + oy the map is for, -1: none */
} mixq_ring;

MIXQ_INLINE void mixq_ring_init(int32_t IB, const mixq_conv_geom *g, uint32_t *base, mixq_ring *r) {
    r->base = base;
    r->cs = (int32_t *)(void *)(base + g->kh * mixq_ring_slot_words(IB, g));
    for (int32_t i = 0; i < g->kh; i++) {
        r->tag[i] = -1;
    }
    r->row = -1;
}

/* Make the ring hold every input row of output row oy of batch b. */
MIXQ_INLINE void mixq_ring_row(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, int32_t b, int32_t oy,
                               mixq_ring *r) {
    int32_t keep[MIXQ_RING_MAX_KH];
    const int32_t sw = mixq_ring_slot_words(IB, g);
    for (int32_t s = 0; s < g->kh; s++) {
        keep[s] = 0;
    }
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const int32_t iy = oy * g->sh - g->ph + ky * g->dh;
        r->map[ky] = -1;
        if ((uint32_t)iy >= (uint32_t)g->ih) {
            continue;
        }
        for (int32_t s = 0; s < g->kh; s++) {
            if (r->tag[s] == b * g->ih + iy) {
                r->map[ky] = s;
                keep[s] = 1;
            }
        }
    }
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const int32_t iy = oy * g->sh - g->ph + ky * g->dh;
        if ((uint32_t)iy >= (uint32_t)g->ih || r->map[ky] >= 0) {
            continue;
        }
        int32_t s = 0;
        while (keep[s]) { /* at most kh - 1 slots are kept, so one is free */
            s++;
        }
        mixq_ring_fill(IB, g, in, b, iy, r->base + s * sw, r->cs);
        r->tag[s] = b * g->ih + iy;
        r->map[ky] = s;
        keep[s] = 1;
    }
    for (int32_t ky = 0; ky < g->kh; ky++) {
        r->src[ky] = r->map[ky] < 0 ? 0 : r->base + r->map[ky] * sw;
    }
    r->row = b * g->oh + oy;
}

/* Activation rows of the pixel pair (ox, ox + 1) of output row oy (ox + 1 < ow) from the ring;
 * returns (A2) the activation sums in sum[0], sum[1]. The lanes past K (zero) are not written:
 * the caller writes them once (mixq_ring_tail). */
MIXQ_INLINE void mixq_ring_pair(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, int32_t b, int32_t oy,
                                int32_t ox, mixq_ring *r, int16_t *buf, int32_t sum[2]) {
    if (r->row != b * g->oh + oy) {
        mixq_ring_row(IB, g, in, b, oy, r);
    }
    const int32_t ew = g->cin >> 1, n = g->kw * ew, off = ox * g->sw * ew;
    uint32_t *dst = (uint32_t *)(void *)buf;
    int32_t s0 = 0, s1 = 0;
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const uint32_t *src = r->src[ky];
        if (src == 0) {
            const uint32_t pad_word = IB == 4 ? MIXQ_A4_PAIR(g->in_zp - 8, g->in_zp - 8) * 0x00010001u
                                              : mixq_a2_lane((uint32_t)g->in_zp * 0x55u);
            for (int32_t w = 0; w < n; w++) {
                dst[w] = pad_word;
            }
            dst += n;
            if (IB == 2) {
                s0 += g->kw * g->cin * g->in_zp;
                s1 += g->kw * g->cin * g->in_zp;
            }
            continue;
        }
        if (g->dw == 1) {
            dst = mixq_copy_words(dst, src + off, n);
        } else {
            for (int32_t kx = 0; kx < g->kw; kx++) {
                dst = mixq_copy_words(dst, src + off + kx * g->dw * ew, ew);
            }
        }
        if (IB == 2) {
            const int32_t *ws = (const int32_t *)(const void *)(src + mixq_ring_nq(g) * ew);
            s0 += ws[ox];
            s1 += ws[ox + 1];
        }
    }
    sum[0] = s0;
    sum[1] = s1;
}

/* The lanes past K of both pixels (zero), written once per call on the ring path. */
MIXQ_INLINE void mixq_ring_tail(const mixq_conv_geom *g, int16_t *buf) {
    uint32_t *w = (uint32_t *)(void *)buf;
    for (int32_t i = g->k >> 1; i < g->kp >> 1; i++) {
        w[i] = 0;
    }
}

/* ---- fused channel loops (mixq_conv_asm.c) ----------------------------------------------- */

/* Frame of a fused call: one pixel pair, every channel pair (the routine copies it to its stack;
 * offsets fixed by the assembly). */
typedef struct {
    uint32_t k[4];          /* 0: A2 selector words 0, 1, 2, 3 in both halfwords; A4 suffix u: entry, 0, 0 */
    const uint32_t *ap;     /* 16: activation rows of the pixel pair */
    int32_t n;              /* 20: inner-loop iterations per channel pair (A2 whole steps: entry offset) */
    const int32_t *prm;     /* 24: parameter blocks, one per channel pair */
    const int32_t *prm_end; /* 28 */
    uint8_t *out0;          /* 32: first output byte of pixel 0 */
    uint8_t *out1;          /* 36: ... of pixel 1 (= out0 when the pixel is duplicated) */
    int32_t pre0, pre1;     /* 40, 44: A2 accumulator preloads */
    const uint32_t *wp;     /* 48: weights of the first channel pair */
    uint32_t spill;         /* 52: used by the routine */
    uint32_t mask;          /* 56: A2 lane mask 0x30033003, A4 preload P */
} mixq_fz;

typedef char mixq_fz_layout_check[(sizeof(mixq_fz) == 60 && offsetof(mixq_fz, mask) == 56) ? 1 : -1];

void mixq_fz_w8o8(const mixq_fz *f);
void mixq_fz_w8o4(const mixq_fz *f);
void mixq_fz_w8o2(const mixq_fz *f);
void mixq_fz_a4o8(const mixq_fz *f);
void mixq_fz_a4o4(const mixq_fz *f);
void mixq_fz_a4o2(const mixq_fz *f);
void mixq_fz_a2o8(const mixq_fz *f);
void mixq_fz_a2o4(const mixq_fz *f);
void mixq_fz_a2o2(const mixq_fz *f);
void mixq_fz_w8o8l(const mixq_fz *f);
void mixq_fz_w8o4l(const mixq_fz *f);
void mixq_fz_w8o2l(const mixq_fz *f);
void mixq_fz_a4o8l(const mixq_fz *f);
void mixq_fz_a4o4l(const mixq_fz *f);
void mixq_fz_a4o2l(const mixq_fz *f);
void mixq_fz_a2o8l(const mixq_fz *f);
void mixq_fz_a2o4l(const mixq_fz *f);
void mixq_fz_w8o8m(const mixq_fz *f);
void mixq_fz_w8o4m(const mixq_fz *f);
void mixq_fz_w8o2m(const mixq_fz *f);
void mixq_fz_a4o8m(const mixq_fz *f);
void mixq_fz_a4o4m(const mixq_fz *f);
void mixq_fz_a4o2m(const mixq_fz *f);
void mixq_fz_a2o8m(const mixq_fz *f);
void mixq_fz_a2o4m(const mixq_fz *f);
void mixq_fz_a2o2r(const mixq_fz *f);
void mixq_fz_a2o2l(const mixq_fz *f);
void mixq_fz_a2o2m(const mixq_fz *f);
void mixq_fz_a2o2h(const mixq_fz *f);
void mixq_fz_a2o8h(const mixq_fz *f);
void mixq_fz_a2o4h(const mixq_fz *f);
void mixq_fz_a2o8lh(const mixq_fz *f);
void mixq_fz_a2o4lh(const mixq_fz *f);
void mixq_fz_a2o8mh(const mixq_fz *f);
void mixq_fz_a2o4mh(const mixq_fz *f);
void mixq_fz_a2o2rh(const mixq_fz *f);
void mixq_fz_a2o2lh(const mixq_fz *f);
void mixq_fz_a2o2mh(const mixq_fz *f);
void mixq_fz_a4o8t(const mixq_fz *f);
void mixq_fz_a4o4t(const mixq_fz *f);
void mixq_fz_a4o2t(const mixq_fz *f);
void mixq_fz_a4o8lt(const mixq_fz *f);
void mixq_fz_a4o4lt(const mixq_fz *f);
void mixq_fz_a4o2lt(const mixq_fz *f);
void mixq_fz_a4o8mt(const mixq_fz *f);
void mixq_fz_a4o4mt(const mixq_fz *f);
void mixq_fz_a4o2mt(const mixq_fz *f);
void mixq_fz_a4o8u(const mixq_fz *f);
void mixq_fz_a4o4u(const mixq_fz *f);
void mixq_fz_a4o2u(const mixq_fz *f);
void mixq_fz_a4o8lu(const mixq_fz *f);
void mixq_fz_a4o4lu(const mixq_fz *f);
void mixq_fz_a4o2lu(const mixq_fz *f);
void mixq_fz_a4o8mu(const mixq_fz *f);
void mixq_fz_a4o4mu(const mixq_fz *f);
void mixq_fz_a4o2mu(const mixq_fz *f);
void mixq_fz_a4o8ut(const mixq_fz *f);
void mixq_fz_a4o4ut(const mixq_fz *f);
void mixq_fz_a4o2ut(const mixq_fz *f);
void mixq_fz_a4o8lut(const mixq_fz *f);
void mixq_fz_a4o4lut(const mixq_fz *f);
void mixq_fz_a4o2lut(const mixq_fz *f);
void mixq_fz_a4o8mut(const mixq_fz *f);
void mixq_fz_a4o4mut(const mixq_fz *f);
void mixq_fz_a4o2mut(const mixq_fz *f);
void mixq_fz_a2o2t(const mixq_fz *f);
void mixq_fz_a2o8t(const mixq_fz *f);
void mixq_fz_a2o4t(const mixq_fz *f);
void mixq_fz_a2o8lt(const mixq_fz *f);
void mixq_fz_a2o4lt(const mixq_fz *f);
void mixq_fz_a2o8mt(const mixq_fz *f);
void mixq_fz_a2o4mt(const mixq_fz *f);
void mixq_fz_a2o2rt(const mixq_fz *f);
void mixq_fz_a2o2lt(const mixq_fz *f);
void mixq_fz_a2o2mt(const mixq_fz *f);

#define MIXQ_FZ_W8 1
#define MIXQ_FZ_A4 2
#define MIXQ_FZ_A2 3
#define MIXQ_FZ_A2H 4 /* routine selection only: A2 with K <= 8 */
#define MIXQ_FZ_A2T 5 /* routine selection only: A2 with the lanes of a last partial weight word trimmed */
#define MIXQ_FZ_A4T 6 /* routine selection only: A4 with a last half chunk (K % 16 in 1..8, K > 16) */
#define MIXQ_FZ_A4U 7 /* routine selection only: A4 whole chunks, kp <= 16 MIXQ_FZ_A4_UNROLL (unrolled steps) */
#define MIXQ_FZ_A4UT 8 /* routine selection only: A4U with a last half chunk (as MIXQ_FZ_A4T) */
#define MIXQ_FZ_A4_UNROLL 16      /* A4 routines with suffix u: unrolled 16-K steps, activations on their stack */
#define MIXQ_FZ_A4_STEP_BYTES 120 /* ... each 30 instructions (26 32-bit LDM / LDRD / SMLAD / UBFX / ADD.W) */
#define MIXQ_FZ_THR_MIN_PIXELS 64 /* A2 2-bit outputs: thresholds from this many output pixels on */
#define MIXQ_FZ_A2_MAX_K 272 /* S' = sum(a u) - 2 sum(a) + 6K <= 15K < 4096 (one 12-bit field) */
#define MIXQ_FZ_A2_UNROLL 17     /* A2 routines of whole steps: unrolled 16-K steps (MIXQ_FZ_A2_MAX_K / 16) */
#define MIXQ_FZ_A2_STEP_BYTES 116 /* ... each 29 32-bit instructions */
#define MIXQ_FZ_A2_LANE_BYTES 28  /* the lanes of a trimmed tail (suffix t), 7 32-bit instructions each */

/* Which fused routine can run this layer (before the per-channel checks), or 0. Every output
 * width has its routine; 2-bit outputs pack two channel pairs per byte (Cout % 4 == 0). */
MIXQ_INLINE int32_t mixq_fz_kind(int32_t IB, int32_t WB, int32_t OB, const mixq_conv_geom *g, int32_t packed) {
    if ((g->cout & 1) != 0 || mixq_npix(g) < 2) { /* one pixel (fully connected): half the block idle */
        return 0;
    }
    if (OB == 2 && (g->cout & 3) != 0) {
        return 0;
    }
    if (!packed && WB == 8) {
        return MIXQ_FZ_W8;
    }
    if (packed && IB == 4 && g->kp <= 544) {
        return MIXQ_FZ_A4;
    }
    if (packed && IB == 2 && g->k <= MIXQ_FZ_A2_MAX_K) {
        return MIXQ_FZ_A2;
    }
    return 0;
}

/* The fused routine of (kind, output width, requantization form: 1 right shifts, 2 shifts >= 0,
 * 3 any shifts, 4 thresholds (A2 with 2-bit outputs)). */
typedef void (*mixq_fz_fn)(const mixq_fz *f);

MIXQ_INLINE mixq_fz_fn mixq_fz_routine(int32_t fz, int32_t OB, int32_t form) {
    /* fz and OB are constants of the variant: only its routines are referenced (each routine has a
     * section of its own, so a linker with --gc-sections keeps only those a firmware calls) */
#define MIXQ_FZ_PICK(r, l, m) (form == 1 ? (r) : (form == 2 ? (l) : (m)))
    if (fz == MIXQ_FZ_W8) {
        return OB == 8 ? MIXQ_FZ_PICK(mixq_fz_w8o8, mixq_fz_w8o8l, mixq_fz_w8o8m)
                       : (OB == 4 ? MIXQ_FZ_PICK(mixq_fz_w8o4, mixq_fz_w8o4l, mixq_fz_w8o4m)
                                  : MIXQ_FZ_PICK(mixq_fz_w8o2, mixq_fz_w8o2l, mixq_fz_w8o2m));
    }
    if (fz == MIXQ_FZ_A4T) {
        return OB == 8 ? MIXQ_FZ_PICK(mixq_fz_a4o8t, mixq_fz_a4o8lt, mixq_fz_a4o8mt)
                       : (OB == 4 ? MIXQ_FZ_PICK(mixq_fz_a4o4t, mixq_fz_a4o4lt, mixq_fz_a4o4mt)
                                  : MIXQ_FZ_PICK(mixq_fz_a4o2t, mixq_fz_a4o2lt, mixq_fz_a4o2mt));
    }
    if (fz == MIXQ_FZ_A4UT) {
        return OB == 8 ? MIXQ_FZ_PICK(mixq_fz_a4o8ut, mixq_fz_a4o8lut, mixq_fz_a4o8mut)
                       : (OB == 4 ? MIXQ_FZ_PICK(mixq_fz_a4o4ut, mixq_fz_a4o4lut, mixq_fz_a4o4mut)
                                  : MIXQ_FZ_PICK(mixq_fz_a4o2ut, mixq_fz_a4o2lut, mixq_fz_a4o2mut));
    }
    if (fz == MIXQ_FZ_A4U) {
        return OB == 8 ? MIXQ_FZ_PICK(mixq_fz_a4o8u, mixq_fz_a4o8lu, mixq_fz_a4o8mu)
                       : (OB == 4 ? MIXQ_FZ_PICK(mixq_fz_a4o4u, mixq_fz_a4o4lu, mixq_fz_a4o4mu)
                                  : MIXQ_FZ_PICK(mixq_fz_a4o2u, mixq_fz_a4o2lu, mixq_fz_a4o2mu));
    }
    if (fz == MIXQ_FZ_A4) {
        return OB == 8 ? MIXQ_FZ_PICK(mixq_fz_a4o8, mixq_fz_a4o8l, mixq_fz_a4o8m)
                       : (OB == 4 ? MIXQ_FZ_PICK(mixq_fz_a4o4, mixq_fz_a4o4l, mixq_fz_a4o4m)
                                  : MIXQ_FZ_PICK(mixq_fz_a4o2, mixq_fz_a4o2l, mixq_fz_a4o2m));
    }
    if (fz == MIXQ_FZ_A2H) { /* K <= 8: the routines without the padding lanes */
        if (OB == 2 && form == 4) {
            return mixq_fz_a2o2h;
        }
        return OB == 8 ? MIXQ_FZ_PICK(mixq_fz_a2o8h, mixq_fz_a2o8lh, mixq_fz_a2o8mh)
                       : (OB == 4 ? MIXQ_FZ_PICK(mixq_fz_a2o4h, mixq_fz_a2o4lh, mixq_fz_a2o4mh)
                                  : MIXQ_FZ_PICK(mixq_fz_a2o2rh, mixq_fz_a2o2lh, mixq_fz_a2o2mh));
    }
    if (fz == MIXQ_FZ_A2T) { /* K of 4 nf + t lane words, nf >= 1, t = 1..3: the last t lanes trimmed */
        if (OB == 2 && form == 4) {
            return mixq_fz_a2o2t;
        }
        return OB == 8 ? MIXQ_FZ_PICK(mixq_fz_a2o8t, mixq_fz_a2o8lt, mixq_fz_a2o8mt)
                       : (OB == 4 ? MIXQ_FZ_PICK(mixq_fz_a2o4t, mixq_fz_a2o4lt, mixq_fz_a2o4mt)
                                  : MIXQ_FZ_PICK(mixq_fz_a2o2rt, mixq_fz_a2o2lt, mixq_fz_a2o2mt));
    }
    if (OB == 2 && form == 4) {
        return mixq_fz_a2o2;
    }
    return OB == 8 ? MIXQ_FZ_PICK(mixq_fz_a2o8, mixq_fz_a2o8l, mixq_fz_a2o8m)
                   : (OB == 4 ? MIXQ_FZ_PICK(mixq_fz_a2o4, mixq_fz_a2o4l, mixq_fz_a2o4m)
                              : MIXQ_FZ_PICK(mixq_fz_a2o2r, mixq_fz_a2o2l, mixq_fz_a2o2m));
#undef MIXQ_FZ_PICK
}

/* Words of one channel pair's parameter block. */
MIXQ_INLINE int32_t mixq_fz_block_words(int32_t fz, int32_t OB, int32_t form) {
    (void)fz;
    (void)OB;
    return form == 4 ? 6 : (form == 3 ? 10 : 8);
}

MIXQ_INLINE int64_t mixq_abs64(int64_t v) { return v < 0 ? -v : v; }

/* Parameter blocks of the SMMLAR requantization (W8, A4, A2 with 8-/4-bit outputs): per channel
 * pair cst0, cst1 (cst[c] + off), then per channel (s = max(shift, 0), r = max(-shift, 0)):
 *   form 1, every shift <= -1 and m >= 2^30: m2 = 2m - 2^32, C2 = 2^(r-1) + zp 2^r, r;
 *   form 2, every shift >= 0 and m >= 2^30: m2, zp, s;
 *   form 3, any other layer (shifts of both signs, shift 0 next to right shifts, multipliers
 *   below 2^30): mm = m 2^(s+1) - k 2^32 in int32 (k >= 0), c2 (C2, or zp when r = 0), k,
 *   rw = r | 2^31 (r >= 1) or 0 (10 words per pair: the blocks run over the constants, which are
 *   read first).
 * Exact with the clamp the whole output range when, for every |x| <= |cst + off| + span (span
 * bounds the dot product), |SRDHM(x, m)| + |C2| + 1 < 2^31 (right shifts) or |x| 2^s + |zp| < 2^31
 * (s >= 0; then also |k x + zp| < 2^31, k <= 2^s). Returns the form, or 0 when a channel does not
 * qualify (the caller then runs the general path; cst is then intact). */
MIXQ_INLINE int32_t mixq_fz_fill_rq(int32_t OB, const mixq_conv_geom *g, const mixq_per_channel_quant *q,
                                    const int32_t *cst, int32_t off, int64_t span, int32_t *prm) {
    if (g->lo != mixq_act_lo(OB) || g->hi != mixq_act_hi(OB)) {
        return 0;
    }
    /* 32-bit bounds: |x| <= xb < 2^31 - 2^24 (so |SRDHM(x, m)| <= xb); right shifts r <= 23 with
     * |C2| <= (2 |zp| + 1) 2^(r-1) < 2^31 - xb - 2; shifts s >= 0 with xb 2^s + |zp| < 2^31 */
    if (span >= ((int64_t)1 << 30)) {
        return 0;
    }
    const int32_t zp = g->out_zp, azp = zp < 0 ? -zp : zp;
    const int32_t room = (int32_t)(((int64_t)1 << 31) - 2 - span); /* > 2^30 */
    int32_t neg = 0, nonneg = 0, small = 0;
    for (int32_t c = 0; c < g->cout; c++) {
        const int32_t m = q->multiplier[c], s = q->shift[c], x = cst[c];
        if (x <= INT32_MIN + (1 << 24) || x >= INT32_MAX - (1 << 24)) {
            return 0;
        }
        small |= m < (1 << 30); /* m >= 0 (checked by the caller) */
        const int32_t cc = x + off; /* |off| < 2^24 (6 K with K <= 272) */
        const int32_t left = room - (cc < 0 ? -cc : cc); /* 2^31 - 2 - xb */
        if (left <= 0) {
            return 0;
        }
        if (s < 0) {
            if (s < -23 || ((2 * azp + 1) << (-s - 1)) >= left) {
                return 0;
            }
            neg = 1;
        } else {
            /* xb 2^s + |zp| < 2^31 <=> (2^31 - 2 - left) 2^s + |zp| < 2^31 */
            const uint32_t xb = (uint32_t)(((int64_t)1 << 31) - 2 - left);
            if (s > 30 || ((uint64_t)xb << s) + (uint32_t)azp + 1 >= ((uint64_t)1 << 31)) {
                return 0;
            }
            nonneg = 1;
        }
    }
    const int32_t form = small || (neg && nonneg) ? 3 : (neg ? 1 : 2);
    const int32_t words = form == 3 ? 5 : 4; /* per channel */
    for (int32_t c = 0; c < g->cout; c += 2) {
        const int32_t cc0 = cst[c] + off, cc1 = cst[c + 1] + off; /* read before the block is written */
        int32_t *blk = prm + c * words;
        blk[0] = cc0;
        blk[1] = cc1;
        for (int32_t j = 0; j < 2; j++) {
            const int32_t m = q->multiplier[c + j], s = q->shift[c + j];
            int32_t *e = blk + 2 + j * (words - 1);
            if (form == 3) {
                /* m 2^(s+1) < 2^62 split into k 2^32 + mm with mm in [-2^31, 2^31) */
                const int64_t mf = (int64_t)m << (s > 0 ? s + 1 : 1);
                const int64_t k = (mf + ((int64_t)1 << 31)) >> 32;
                e[0] = (int32_t)(mf - (k << 32));
                e[1] = s < 0 ? (int32_t)((1u << (-s - 1)) + (uint32_t)zp * (1u << -s)) : zp;
                e[2] = (int32_t)k;
                e[3] = s < 0 ? (int32_t)((uint32_t)-s | 0x80000000u) : 0;
                continue;
            }
            e[0] = (int32_t)(2u * (uint32_t)m);
            if (s < 0) {
                e[1] = (int32_t)((1u << (-s - 1)) + (uint32_t)zp * (1u << -s));
                e[2] = -s;
            } else {
                e[1] = zp;
                e[2] = s;
            }
        }
    }
    return form;
}

/* Output of channel c for accumulator x (exact reference, used to place the A2 thresholds). */
MIXQ_INLINE int32_t mixq_fz_ref(const mixq_conv_geom *g, const mixq_per_channel_quant *q, int32_t c, int64_t x) {
    const int32_t xc = (int32_t)(x < INT32_MIN ? INT32_MIN : (x > INT32_MAX ? INT32_MAX : x));
    const int32_t m = q->multiplier[c], s = q->shift[c];
    if (s < 0) {
        /* SRDHM, then RDBPOT as (h + 2^(r-1) - [h < 0]) >> r (round half away from zero) */
        const int32_t h = (int32_t)(((int64_t)xc * m + ((int64_t)1 << 30)) >> 31);
        const int32_t v = (int32_t)(((int64_t)h + ((int64_t)1 << (-s - 1)) - (h < 0)) >> -s) + g->out_zp;
        return mixq_clamp(v, g->lo, g->hi);
    }
    return mixq_requant(xc, m, s, g->out_zp, g->lo, g->hi);
}

/* A2 thresholds: output v of channel c = #{i in 1..3 : S' >= T_i} with S' in [0, 15K] and
 * x = S' - 6K + cst[c]. The output is a non-decreasing function of x (m >= 0, and for left shifts
 * x << shift does not wrap on the range, else 0 is returned), so T_i = min {S' : v(S') >= i},
 * found with the exact reference (15K + 1: never): two probes next to a float estimate of the step
 * (usually enough), then bisection of whatever interval is left, so the result does not depend on
 * the estimate's accuracy. Parameter block per channel pair: 16 T_i in both halfwords, channel 0
 * then channel 1. */
/* MBQM(x) + zp for shift -r <= -1 in 32-bit arithmetic (one SMULL): exact when
 * |x| + 2^(r-1) < 2^31 (then |SRDHM| <= |x| and the rounding add cannot wrap). */
MIXQ_INLINE int32_t mixq_fz_v32(int32_t x, int32_t m, int32_t r, int32_t zp) {
    const int32_t h = (int32_t)(((int64_t)x * m + ((int64_t)1 << 30)) >> 31);
    return ((h + (1 << (r - 1)) - (h < 0 ? 1 : 0)) >> r) + zp;
}

/* Closed-form threshold: the smallest t in [1, smax] with SRDHM(base + t, m) >= H, given
 * h0 = SRDHM(base) < H <= SRDHM(base + smax), where base m + 2^30 = h0 2^31 + rem0 (rem0 in
 * [0, 2^31), the low bits of the same SMULL). SRDHM(base + t) >= H <=> t m >= D with
 * D = (H - h0) 2^31 - rem0 (D > 0, D < 2^43), so t = ceil(D / m): a float estimate (relative error
 * ~2^-22, so at most one off) and an exact fix-up with one or two 64-bit comparisons. */
MIXQ_INLINE int32_t mixq_thr_solve(int32_t smax, int32_t m, int32_t dh, uint32_t rem0, float invm) {
    const int64_t D = (int64_t)dh * ((int64_t)1 << 31) - (int64_t)rem0;
    int32_t t = (int32_t)(((float)dh * 2147483648.0f - (float)rem0) * invm) + 1; /* ~floor + 1 = ceil */
    t = mixq_clamp(t, 1, smax);
    while ((int64_t)t * m < D) {
        t++;
    }
    while ((int64_t)(t - 1) * m >= D) { /* t - 1 = 0 fails: D > 0 */
        t--;
    }
    return t;
}

MIXQ_INLINE int32_t mixq_fz_fill_thr(const mixq_conv_geom *g, const mixq_per_channel_quant *q, const int32_t *cst,
                                     uint32_t *prm) {
    const int32_t smax = 15 * g->k, off = 6 * g->k;
    for (int32_t c = 0; c < g->cout; c++) {
        const int64_t base = (int64_t)cst[c] - off;
        const int32_t s = q->shift[c];
        if (s < 0 && s >= -28 && q->multiplier[c] >= (1 << 30) && mixq_abs64(base) + smax + 1 < ((int64_t)1 << 31)) {
            /* right shift r = -s <= 28, accumulators inside int32: v(x) >= i <=> lo >= i, or hi >= i
             * and RDBPOT(SRDHM(x), r) >= j = i - zp <=> SRDHM(x) >= H_j = j 2^r - 2^(r-1) + [j <= 0]
             * (|H_j| < 2^30) */
            const int32_t r = -s, m = q->multiplier[c], b0 = (int32_t)base;
            const int64_t p0 = (int64_t)b0 * m + (1 << 30), p1 = (int64_t)(b0 + smax) * m + (1 << 30);
            const int32_t h0 = (int32_t)(p0 >> 31), h1 = (int32_t)(p1 >> 31);
            const uint32_t rem0 = (uint32_t)p0 & 0x7FFFFFFFu;
            const float invm = 1.0f / (float)m;
            for (int32_t i = 1; i <= 3; i++) {
                int32_t t;
                const int32_t jj = i - g->out_zp;
                const int32_t H = jj * (1 << r) - (1 << (r - 1)) + (jj <= 0 ? 1 : 0);
                if (g->lo >= i || (g->hi >= i && H <= h0)) {
                    t = 0;
                } else if (g->hi < i || H > h1) {
                    t = smax + 1;
                } else {
                    t = mixq_thr_solve(smax, m, H - h0, rem0, invm);
                }
                prm[3 * c + i - 1] = (uint32_t)(16 * t) * 0x00010001u;
            }
            continue;
        }
        if (s > 0) {
            const int64_t lim = (int64_t)1 << (31 - s);
            if (base < -lim || base + smax >= lim) {
                return 0;
            }
        }
        const int32_t m = q->multiplier[c];
        /* the usual case (right shift, accumulators well inside int32): one SMULL per evaluation,
         * clamp as two comparisons of the step index i */
        const int64_t xb = mixq_abs64(base) + smax + 1;
        const int32_t quick = s < 0 && xb + ((int64_t)1 << (-s - 1)) < ((int64_t)1 << 31);
        /* estimate: v(x) ~ round(x real) + zp steps to i near x = (i - zp - 1/2) / real */
        float real = 0.0f;
        if (m > 0) {
            const uint32_t e = (uint32_t)(127 + s - 31) << 23; /* 2^(shift - 31), a normal float */
            float p2;
            memcpy(&p2, &e, 4);
            real = (float)m * p2;
        }
        const float fbase = quick ? (float)(int32_t)base : (float)base;
        int32_t t = 0;
        for (int32_t i = 1; i <= 3; i++) {
            int32_t a = t, b = smax + 1; /* T_i in [a, b] */
#define MIXQ_FZ_GE(sp)                                                                                    \
    (quick ? (g->lo >= i || (g->hi >= i && mixq_fz_v32((int32_t)base + (sp), m, -s, g->out_zp) >= i))       \
           : mixq_fz_ref(g, q, c, base + (sp)) >= i)
            if (real > 0.0f) {
                /* two probes around the estimate, then bisection of what is left (exact either way) */
                const float se = ((float)(i - g->out_zp) - 0.5f) / real - fbase;
                int32_t probe = se <= (float)a ? a : (se >= (float)b ? b : (int32_t)se);
                for (int32_t k = 0; k < 2 && a < b; k++) {
                    probe = mixq_clamp(probe, a, b - 1);
                    if (MIXQ_FZ_GE(probe)) {
                        b = probe;
                        probe--;
                    } else {
                        a = probe + 1;
                        probe++;
                    }
                }
            }
            while (a < b) {
                const int32_t mid = (a + b) >> 1;
                if (MIXQ_FZ_GE(mid)) {
                    b = mid;
                } else {
                    a = mid + 1;
                }
            }
#undef MIXQ_FZ_GE
            t = a;
            prm[3 * c + i - 1] = (uint32_t)(16 * t) * 0x00010001u;
        }
    }
    return 1;
}

/* Largest |x - zp| of an activation of b bits. */
MIXQ_INLINE int32_t mixq_max_dev(int32_t b, int32_t zp) {
    return mixq_max_i32(mixq_act_hi(b) - zp, zp - mixq_act_lo(b));
}

MIXQ_INLINE int32_t mixq_smmlar(int32_t a, int32_t b, int32_t acc) {
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* Output for accumulator x with the per-channel words e of a parameter block (form 1, 2, 3 of
 * mixq_fz_fill_rq): the routines' arithmetic in C. */
MIXQ_INLINE int32_t mixq_fz_rq_c(int32_t OB, int32_t form, int32_t x, const int32_t *e) {
    int32_t v;
    if (form == 2) {
        const int32_t xs = (int32_t)((uint32_t)x << e[2]);
        v = mixq_smmlar(xs, e[0], xs + e[1]);
    } else if (form == 3) {
        const int32_t sg = (int32_t)((uint32_t)e[3] & (uint32_t)(x >> 31)) >> 31;
        v = mixq_smmlar(x, e[0], (int32_t)((uint32_t)x * (uint32_t)e[2] + (uint32_t)(e[1] + sg))) >> (e[3] & 0xFF);
    } else {
        v = mixq_smmlar(x, e[0], x + e[1] + (x >> 31)) >> e[2];
    }
    return mixq_sat(OB, v);
}

/* The odd last pixel of a W8 fused call: the one-pixel block (mixq_block16, NP = 1) per channel
 * pair instead of a duplicated pixel pair, requantized with the same parameter blocks in C. */
MIXQ_INLINE void mixq_fz_w8_last(int32_t IB, int32_t OB, int32_t form, const mixq_conv_geom *g, const uint8_t *in,
                                 const uint8_t *filter, const int32_t *prm, int16_t *act, int32_t pix, uint8_t *out) {
    const int32_t pair_words = mixq_row_bytes(g->k, 8) >> 1, bw = form == 3 ? 10 : 8, e1 = form == 3 ? 6 : 5;
    uint8_t *dst = out + pix * (g->cout * OB / 8);
    uint32_t byte = 0;
    mixq_im2col16(IB, 8, g, in, pix, 0, act);
    for (int32_t c = 0; c < g->cout; c += 2) {
        const int32_t *blk = prm + (c >> 1) * bw;
        int32_t acc[4];
        mixq_block16(8, 1, g, (const uint32_t *)(const void *)act,
                     (const uint32_t *)(const void *)filter + (c >> 1) * pair_words, acc);
        const uint32_t v0 = (uint32_t)mixq_fz_rq_c(OB, form, acc[0] + blk[0], blk + 2);
        const uint32_t v1 = (uint32_t)mixq_fz_rq_c(OB, form, acc[1] + blk[1], blk + e1);
        if (OB == 8) {
            dst[c] = (uint8_t)v0;
            dst[c + 1] = (uint8_t)v1;
        } else if (OB == 4) {
            dst[c >> 1] = (uint8_t)(v0 | (v1 << 4));
        } else {
            byte |= (v0 | (v1 << 2)) << ((c & 2) << 1);
            if (c & 2) {
                dst[c >> 2] = (uint8_t)byte;
                byte = 0;
            }
        }
    }
}

/* The pixel loop of a fused call on stream rows (out of line: few live values, no spills): pairs
 * along the output rows, counters kept as they go; a pair that straddles two output rows is
 * gathered one pixel at a time. */
static MIXQ_NOINLINE void mixq_srow_row_call(const mixq_conv_geom *g, const uint8_t *in, int32_t b, int32_t oy,
                                             mixq_srow *s) {
    mixq_srow_row(g, in, b, oy, s);
}

/* A pair that straddles two output rows: column OW - 1 of the current row, then column 0 of
 * output row oy of image b. */
static MIXQ_NOINLINE void mixq_srow_straddle(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, int32_t b,
                                             int32_t oy, mixq_srow *s, int16_t *act, int32_t t[2]) {
    t[0] = mixq_srow_pixel(IB, s, g->ow - 1, 0, act);
    mixq_srow_row(g, in, b, oy, s);
    t[1] = mixq_srow_pixel(IB, s, 0, 1, act);
}

MIXQ_INLINE void mixq_fz_srow_loop(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, mixq_srow *s,
                                   int16_t *act, mixq_fz *f, mixq_fz_fn fn, uint8_t *out, int32_t row_bytes) {
    const int32_t npix = mixq_npix(g), k6 = 6 * g->k;
    int32_t b = 0, oy = 0, ox = 0;
    for (int32_t pix = 0; pix < npix; pix += 2) {
        if (s->row != b * g->oh + oy) {
            mixq_srow_row_call(g, in, b, oy, s);
        }
        int32_t t0, t1;
        f->out0 = out;
        f->out1 = pix + 1 < npix ? out + row_bytes : out;
        out += 2 * row_bytes;
        if (ox + 1 < g->ow || pix + 1 == npix) {
            const uint32_t x0 = (uint32_t)(s->o0 + ox * s->dpx), x1 = pix + 1 < npix ? x0 + (uint32_t)s->dpx : x0;
            s->f.b0 = x0 >> 3;
            s->f.sh0 = x0 & 7u;
            s->f.b1 = x1 >> 3;
            s->f.sh1 = x1 & 7u;
            s->f.dst = (uint32_t *)(void *)act; /* the routine advances it */
            if (IB == 2) {
                s->f.k[2] = 0;
                s->f.k[3] = 0;
                mixq_sg_a2(&s->f);
                t0 = (int32_t)((s->f.k[2] >> 12) & 0xFFFu);
                t1 = (int32_t)((s->f.k[3] >> 12) & 0xFFFu);
            } else {
                mixq_sg_a4(&s->f);
                t0 = t1 = 0;
            }
            ox += 2;
        } else { /* straddles two output rows */
            int32_t t[2];
            ox = 0;
            if (++oy == g->oh) {
                oy = 0;
                b++;
            }
            mixq_srow_straddle(IB, g, in, b, oy, s, act, t);
            t0 = t[0];
            t1 = t[1];
            ox = 1;
        }
        if (ox >= g->ow) {
            ox -= g->ow;
            if (++oy == g->oh) {
                oy = 0;
                b++;
            }
        }
        if (IB == 2) {
            f->pre0 = (int32_t)((uint32_t)(k6 - 2 * t0) << 12);
            f->pre1 = (int32_t)((uint32_t)(k6 - 2 * t1) << 12);
        }
        fn(f);
    }
}

static MIXQ_NOINLINE void mixq_fz_srow_loop2(const mixq_conv_geom *g, const uint8_t *in, mixq_srow *s, int16_t *act,
                                             mixq_fz *f, mixq_fz_fn fn, uint8_t *out, int32_t row_bytes) {
    mixq_fz_srow_loop(2, g, in, s, act, f, fn, out, row_bytes);
}

static MIXQ_NOINLINE void mixq_fz_srow_loop4(const mixq_conv_geom *g, const uint8_t *in, mixq_srow *s, int16_t *act,
                                             mixq_fz *f, mixq_fz_fn fn, uint8_t *out, int32_t row_bytes) {
    mixq_fz_srow_loop(4, g, in, s, act, f, fn, out, row_bytes);
}

/* The pixel loop of a fused call with the ring of converted rows (out of line: few live values,
 * the code of the variant's other paths does not share its registers): pairs along an output row
 * copy their rows from the ring, pairs that straddle two output rows run the per-pixel im2col. */
MIXQ_INLINE void mixq_fz_ring_loop(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, mixq_ring *ring,
                                   int16_t *act, mixq_fz *f, mixq_fz_fn fn, uint8_t *out, int32_t row_bytes) {
    const int32_t npix = mixq_npix(g), k6 = 6 * g->k;
    int32_t b = 0, oy = 0, ox = 0;
    mixq_ring_tail(g, act);
    for (int32_t pix = 0; pix < npix; pix += 2, out += 2 * row_bytes) {
        const int32_t pix1 = pix + 1 < npix ? pix + 1 : pix;
        if (ox + 1 < g->ow) {
            int32_t sums[2];
            mixq_ring_pair(IB, g, in, b, oy, ox, ring, act, sums);
            if (IB == 2) {
                f->pre0 = (int32_t)((uint32_t)(k6 - 2 * sums[0]) << 12);
                f->pre1 = (int32_t)((uint32_t)(k6 - 2 * sums[1]) << 12);
            }
        } else if (IB == 4) {
            mixq_im2col_a4(g, in, pix, 0, act);
            mixq_im2col_a4(g, in, pix1, 1, act);
        } else {
            f->pre0 = (int32_t)((uint32_t)(k6 - 2 * mixq_im2col_a2(g, in, pix, 0, act)) << 12);
            f->pre1 = (int32_t)((uint32_t)(k6 - 2 * mixq_im2col_a2(g, in, pix1, 1, act)) << 12);
        }
        f->out0 = out;
        f->out1 = pix1 != pix ? out + row_bytes : out;
        fn(f);
        ox += 2;
        while (ox >= g->ow) {
            ox -= g->ow;
            if (++oy == g->oh) {
                oy = 0;
                b++;
            }
        }
    }
}

static MIXQ_NOINLINE void mixq_fz_ring_loop2(const mixq_conv_geom *g, const uint8_t *in, mixq_ring *ring,
                                             int16_t *act, mixq_fz *f, mixq_fz_fn fn, uint8_t *out,
                                             int32_t row_bytes) {
    mixq_fz_ring_loop(2, g, in, ring, act, f, fn, out, row_bytes);
}

static MIXQ_NOINLINE void mixq_fz_ring_loop4(const mixq_conv_geom *g, const uint8_t *in, mixq_ring *ring,
                                             int16_t *act, mixq_fz *f, mixq_fz_fn fn, uint8_t *out,
                                             int32_t row_bytes) {
    mixq_fz_ring_loop(4, g, in, ring, act, f, fn, out, row_bytes);
}

/* The pixel loop of a fused A2 call on one tap of the same pixel (pointwise, stride 1) with whole
 * input bytes per pixel (out of line: few live values): the lane rows of a pixel pair are the table
 * lanes of its input bytes, lane word w of pixel p at 2 w + p (the zero lanes up to kp are written
 * once). */
static MIXQ_NOINLINE void mixq_fz_direct_loop(const mixq_conv_geom *g, const uint8_t *in, int16_t *act, mixq_fz *f,
                                              mixq_fz_fn fn, uint8_t *out, int32_t row_bytes) {
    const int32_t nb = g->cin >> 2, npix = mixq_npix(g), k6 = 6 * g->k;
    uint32_t *lanes = (uint32_t *)(void *)act;
    for (int32_t w = 2 * nb; w < (g->kp >> 1); w++) {
        lanes[w] = 0;
    }
    for (int32_t pix = 0; pix < npix; pix += 2, in += 2 * nb, out += 2 * row_bytes) {
        const int32_t two = pix + 1 < npix;
        const uint8_t *s1 = two ? in + nb : in;
        uint32_t *d = lanes;
        int32_t t0 = 0, t1 = 0;
        for (int32_t w = 0; w < nb; w++, d += 2) {
            const uint32_t l0 = mixq_a2_lane_table[in[w]], l1 = mixq_a2_lane_table[s1[w]];
            d[0] = l0;
            d[1] = l1;
            t0 = mixq_smlad(l0, 0x10011001u, t0);
            t1 = mixq_smlad(l1, 0x10011001u, t1);
        }
        /* sum(a) <= 3 Cin <= 4092: the field [12, 24) of the SMLAD sums */
        f->pre0 = (int32_t)((uint32_t)(k6 - 2 * (int32_t)(((uint32_t)t0 >> 12) & 0xFFFu)) << 12);
        f->pre1 = (int32_t)((uint32_t)(k6 - 2 * (int32_t)(((uint32_t)t1 >> 12) & 0xFFFu)) << 12);
        f->out0 = out;
        f->out1 = two ? out + row_bytes : out;
        fn(f);
    }
}

/* The pixel loop of a fused A4 call with the unrolled routines (suffix u) on one tap of the same
 * pixel (pointwise, stride 1) with whole input words per pixel (Cin % 8 == 0; out of line): the
 * routine converts the packed inputs of the two pixels (frame pre0, pre1) into lane words on its
 * stack itself (k[3] = Cin / 8), no im2col row. */
static MIXQ_NOINLINE void mixq_fz_direct4_loop(const mixq_conv_geom *g, const uint8_t *in, mixq_fz *f,
                                               mixq_fz_fn fn, uint8_t *out, int32_t row_bytes) {
    const int32_t nb = g->cin >> 1, npix = mixq_npix(g);
    f->k[3] = (uint32_t)(g->cin >> 3);
    for (int32_t pix = 0; pix < npix; pix += 2, in += 2 * nb, out += 2 * row_bytes) {
        const int32_t two = pix + 1 < npix;
        f->pre0 = (int32_t)(uint32_t)(uintptr_t)in;
        f->pre1 = (int32_t)(uint32_t)(uintptr_t)(two ? in + nb : in);
        f->out0 = out;
        f->out1 = two ? out + row_bytes : out;
        fn(f);
    }
}

/* Run a fused routine over every pixel pair; returns 0 (nothing written) when the layer's
 * parameters do not qualify. */
MIXQ_INLINE int32_t mixq_conv_fused(int32_t IB, int32_t WB, int32_t OB, int32_t fz, const mixq_conv_geom *g,
                                    const mixq_per_channel_quant *q, const uint8_t *in, const uint8_t *filter,
                                    const int32_t *cst, const uint32_t *wl, int16_t *act, int32_t *prm,
                                    mixq_ring *ring, mixq_srow *srow, uint8_t *out) {
    mixq_fz f;
    int32_t ok; /* 0, or the requantization form (mixq_fz_routine) */
    if (fz == MIXQ_FZ_W8) {
        ok = mixq_fz_fill_rq(OB, g, q, cst, 0, (int64_t)g->k * mixq_max_dev(IB, g->in_zp) * 128, prm);
    } else if (fz == MIXQ_FZ_A4) {
        ok = mixq_fz_fill_rq(OB, g, q, cst, 0, (int64_t)(g->kp >> 4) * 1920, prm);
    } else {
        /* SMMLAR form: x = S' + cst - 6K with S' in [0, 15K]; 2-bit outputs take the thresholds
         * (placed at call start, fewer instructions per output) from MIXQ_FZ_THR_MIN_PIXELS output
         * pixels on, or when the SMMLAR form does not apply */
        ok = 0;
        if (OB != 2 || mixq_npix(g) < MIXQ_FZ_THR_MIN_PIXELS) {
            ok = mixq_fz_fill_rq(OB, g, q, cst, -6 * g->k, (int64_t)15 * g->k, prm);
        }
        if (!ok && OB == 2) {
            ok = mixq_fz_fill_thr(g, q, cst, (uint32_t *)(void *)prm) ? 4 : 0;
        }
    }
    if (!ok) {
        return 0;
    }
    /* A2 with K <= 8: the routines without the inner loop and lanes 2 and 3 (zero padding); with
     * K of 4 nf + t lane words (nf >= 1, t = 1..3), those that run t lanes of the last weight word */
    const int32_t nl = (g->k + 3) >> 2, trim = fz == MIXQ_FZ_A2 && nl >= 4 && (nl & 3) != 0;
    /* A4 with K % 16 in 1..8 (K > 16): those that run only the first group of the last chunk */
    const int32_t half = fz == MIXQ_FZ_A4 && g->k > 16 && (g->k & 15) != 0 && (g->k & 15) <= 8;
    /* A4 with K <= 256: the unrolled routines (suffix u; ut with a last half chunk), entered at
     * step UNROLL - n (n whole chunks) through the frame's k[0] (k[1] = k[2] = 0: the halfword sums) */
    const int32_t a4u = fz == MIXQ_FZ_A4 && g->kp <= 16 * MIXQ_FZ_A4_UNROLL;
    const int32_t a4n = half ? g->k >> 4 : g->kp >> 4;
    const mixq_fz_fn fn = mixq_fz_routine(
        fz == MIXQ_FZ_A2 && g->kp == 16 && g->k <= 8
            ? MIXQ_FZ_A2H
            : (trim ? MIXQ_FZ_A2T
                    : (a4u ? (half ? MIXQ_FZ_A4UT : MIXQ_FZ_A4U) : (half ? MIXQ_FZ_A4T : fz))),
        OB, ok);
    f.k[0] = a4u ? (uint32_t)(MIXQ_FZ_A4_STEP_BYTES * (MIXQ_FZ_A4_UNROLL - a4n) - 2) : 0;
    f.k[1] = a4u ? 0 : 0x00010001u;
    f.k[2] = a4u ? 0 : 0x00020002u;
    f.k[3] = 0x00030003u;
    f.ap = (const uint32_t *)(const void *)act;
    /* A2 routines of whole steps (neither trimmed nor K <= 8): the offset of the entry into their
     * unrolled steps (mixq_conv_asm.c) */
    const int32_t unrolled = fz == MIXQ_FZ_A2 && !trim && (g->kp > 16 || g->k > 8);
    f.n = fz == MIXQ_FZ_W8 ? g->kp >> 2
                           : (trim ? (MIXQ_FZ_A2_STEP_BYTES * (MIXQ_FZ_A2_UNROLL - (nl >> 2)) - 2) |
                                         ((MIXQ_FZ_A2_LANE_BYTES * (3 - (nl & 3)) - 2) << 16)
                                   : (half ? g->k >> 4
                                           : (unrolled ? MIXQ_FZ_A2_STEP_BYTES * (MIXQ_FZ_A2_UNROLL - (g->kp >> 4)) - 2
                                                       : g->kp >> 4)));
    f.prm = prm;
    f.prm_end = prm + mixq_fz_block_words(fz, OB, ok) * (g->cout >> 1);
    f.wp = fz == MIXQ_FZ_A4 ? wl : (const uint32_t *)(const void *)filter;
    f.spill = 0;
    f.mask = fz == MIXQ_FZ_A4 ? (896u << 11) + 1024u : 0x30033003u;
    f.pre0 = f.pre1 = 0;
    const int32_t npix = mixq_npix(g);
    const int32_t row_bytes = g->cout * OB / 8;
    /* A2, one tap on the same pixel (pointwise, stride 1), whole input bytes: the lane rows are the
     * table lanes of the pixel's bytes; the zero lanes (a = 0) up to kp are written once */
    const int32_t nb = g->cin >> 2, nw = g->kp >> 2, k6 = 6 * g->k;
    const int32_t direct = fz == MIXQ_FZ_A2 && g->kh == 1 && g->kw == 1 && (g->cin & 3) == 0 && g->sh == 1 &&
                           g->sw == 1 && g->ph == 0 && g->pw == 0 && g->ih == g->oh && g->iw == g->ow;
    uint32_t *lanes = (uint32_t *)(void *)act;
    if (direct) {
        for (int32_t w = 2 * nb; w < 2 * nw; w++) {
            lanes[w] = 0;
        }
    }
    if (a4u && g->kh == 1 && g->kw == 1 && (g->cin & 7) == 0 && g->sh == 1 && g->sw == 1 && g->ph == 0 &&
        g->pw == 0 && g->ih == g->oh && g->iw == g->ow) {
        /* A4 unrolled, one tap on the same pixel, whole input words: the routine converts the inputs */
        mixq_fz_direct4_loop(g, in, &f, fn, out, row_bytes);
        return 1;
    }
    if (srow != 0) { /* stream rows: the pixel loop out of line */
        if (IB == 2) {
            mixq_fz_srow_loop2(g, in, srow, act, &f, fn, out, row_bytes);
        } else {
            mixq_fz_srow_loop4(g, in, srow, act, &f, fn, out, row_bytes);
        }
        return 1;
    }
    if (direct) {
        mixq_fz_direct_loop(g, in, act, &f, fn, out, row_bytes);
        return 1;
    }
    if (ring != 0 && fz != MIXQ_FZ_W8) { /* the ring: the pixel loop out of line */
        if (IB == 2) {
            mixq_fz_ring_loop2(g, in, ring, act, &f, fn, out, row_bytes);
        } else {
            mixq_fz_ring_loop4(g, in, ring, act, &f, fn, out, row_bytes);
        }
        return 1;
    }
    /* W8: an odd last pixel runs the one-pixel block */
    const int32_t last = fz == MIXQ_FZ_W8 && (npix & 1) ? npix - 1 : npix;
    for (int32_t pix = 0; pix < last; pix += 2) {
        const int32_t pix1 = pix + 1 < npix ? pix + 1 : pix;
        if (direct) {
            const uint8_t *s0 = in + pix * nb, *s1 = in + pix1 * nb;
            int32_t t0 = 0, t1 = 0;
            for (int32_t w = 0; w < nb; w++) { /* lane word w of pixel p at 2 w + p */
                const uint32_t l0 = mixq_a2_lane_table[s0[w]], l1 = mixq_a2_lane_table[s1[w]];
                lanes[2 * w] = l0;
                lanes[2 * w + 1] = l1;
                t0 = mixq_smlad(l0, 0x10011001u, t0);
                t1 = mixq_smlad(l1, 0x10011001u, t1);
            }
            /* sum(a) <= 3 Cin <= 4092: the field [12, 24) of the SMLAD sums */
            f.pre0 = (int32_t)((uint32_t)(k6 - 2 * (int32_t)(((uint32_t)t0 >> 12) & 0xFFFu)) << 12);
            f.pre1 = (int32_t)((uint32_t)(k6 - 2 * (int32_t)(((uint32_t)t1 >> 12) & 0xFFFu)) << 12);
            f.out0 = out + pix * row_bytes;
            f.out1 = out + pix1 * row_bytes;
            fn(&f);
            continue;
        }
        if (fz == MIXQ_FZ_W8) {
            mixq_im2col16(IB, WB, g, in, pix, 0, act);
            mixq_im2col16(IB, WB, g, in, pix1, 1, act);
        } else if (fz == MIXQ_FZ_A4) {
            mixq_im2col_a4(g, in, pix, 0, act);
            mixq_im2col_a4(g, in, pix1, 1, act);
        } else {
            f.pre0 = (int32_t)((uint32_t)(6 * g->k - 2 * mixq_im2col_a2(g, in, pix, 0, act)) << 12);
            f.pre1 = (int32_t)((uint32_t)(6 * g->k - 2 * mixq_im2col_a2(g, in, pix1, 1, act)) << 12);
        }
        f.out0 = out + pix * row_bytes;
        f.out1 = out + pix1 * row_bytes;
        fn(&f);
    }
    if (last < npix) {
        mixq_fz_w8_last(IB, OB, ok, g, in, filter, prm, act, last, out);
    }
    return 1;
}

/* ---- driver ------------------------------------------------------------------------------ */

MIXQ_INLINE void mixq_conv_dsp(int32_t IB, int32_t WB, int32_t OB, const mixq_conv_geom *g, void *scratch,
                               const mixq_per_channel_quant *q, const uint8_t *in, const uint8_t *filter,
                               const int32_t *bias, uint8_t *out) {
    const int32_t packed = mixq_use_packed(IB, WB, g);
    const int32_t pair_words = mixq_row_bytes(g->k, WB) >> 1; /* 32-bit words of one channel pair */
    const int32_t npix = mixq_npix(g);
    int16_t *act = (int16_t *)scratch;
    /* after the activations (2 pixels; 8-bit inputs off the word taps: then their byte row):
     * requantization parameters, per-channel constants, then the A4W4 re-spaced weights (unless the
     * caller passes them: the _lanes entry points), then the ring */
    mixq_rq *rq = (mixq_rq *)(void *)(act + (packed ? g->kp : 2 * g->kp + mixq_row8_bytes(IB, WB, g) / 2));
    if (mixq_row8_bytes(IB, WB, g) != 0) {
        mixq_row8_init(g, in, act);
    }
    int32_t *cst = (int32_t *)(void *)(rq + ((g->cout + 1) & ~1));
    const int32_t cpad = (g->cout + 1) & ~1;
    int32_t *accs = cst + cpad; /* 2 * cpad accumulators */
    uint32_t *wbuf = (uint32_t *)(void *)(accs + 2 * cpad);
    const uint32_t *wl = wbuf;
    uint8_t *ring_base = (uint8_t *)(void *)wbuf;
    if (packed && IB == 4 && g->lanes) {
        /* lane words from flash; the lane bias already holds bias + (8 - zp) sum(w) */
        const int32_t corr = -896 * (g->kp >> 4);
        wl = (const uint32_t *)(const void *)filter;
        for (int32_t c = 0; c < cpad; c++) {
            cst[c] = (bias && c < g->cout ? bias[c] : 0) + corr;
        }
    } else if (packed && IB == 4) {
        mixq_prepare_w4(g, filter, bias, wbuf, cst);
        ring_base += cpad * g->kp;
    } else if (packed) {
        mixq_prepare_w2(g, filter, bias, cst);
    } else {
        for (int32_t c = 0; c < g->cout; c++) {
            cst[c] = bias ? bias[c] : 0;
        }
        if (WB == 8 && mixq_row8_bytes(IB, WB, g) != 0) {
            mixq_fold_zp8(g, filter, act, cst);
        }
    }
    const int32_t fz = mixq_fz_kind(IB, WB, OB, g, packed);
    mixq_ring ring_state;
    mixq_ring *ring = 0;
    if (packed && mixq_use_ring(IB, g) && g->scratch >= mixq_conv_dsp_scratch(IB, WB, g)) {
        ring = &ring_state;
        mixq_ring_init(IB, g, (uint32_t *)(void *)ring_base, ring);
    }
    mixq_srow srow_state;
    mixq_srow *srow = 0;
    if (packed && mixq_use_srow(IB, g) && g->scratch >= mixq_conv_dsp_scratch(IB, WB, g)) {
        srow = &srow_state;
        mixq_srow_init(IB, g, in, ring_base, srow, act);
    }
    if (fz != 0 &&
        mixq_conv_fused(IB, WB, OB, fz, g, q, in, filter, cst, wl, act, (int32_t *)(void *)rq, ring, srow, out)) {
        return;
    }
    int32_t mode = mixq_rq_fill(g->cout, q, rq);
    if (g->lo == mixq_act_lo(OB) && g->hi == mixq_act_hi(OB)) {
        mode |= MIXQ_RQ_FULL;
    }
    if (ring != 0) {
        mixq_ring_tail(g, act);
    }
    for (int32_t pix = 0; pix < npix; pix += 2) {
        const int32_t two = pix + 1 < npix;
        const int32_t pix1 = two ? pix + 1 : pix;
        int32_t sum0 = 0, sum1 = 0;
        int32_t rb, roy, rox;
        mixq_pixel(g, pix, &rb, &roy, &rox);
        if (srow != 0) {
            int32_t sums[2];
            mixq_srow_pair(IB, g, in, pix, pix1, srow, act, sums);
            sum0 = sums[0];
            sum1 = sums[1];
        } else if (ring != 0 && two && rox + 1 < g->ow) {
            int32_t sums[2];
            mixq_ring_pair(IB, g, in, rb, roy, rox, ring, act, sums);
            sum0 = sums[0];
            sum1 = sums[1];
        } else if (packed && IB == 4) {
            mixq_im2col_a4(g, in, pix, 0, act);
            mixq_im2col_a4(g, in, pix1, 1, act);
        } else if (packed) {
            sum0 = mixq_im2col_a2(g, in, pix, 0, act);
            sum1 = mixq_im2col_a2(g, in, pix1, 1, act);
        } else {
            sum0 = mixq_im2col16(IB, WB, g, in, pix, 0, act);
            if (two) {
                sum1 = mixq_im2col16(IB, WB, g, in, pix1, 1, act);
            }
        }
        int32_t corr0 = 0, corr1 = 0; /* -2 sum(a) for 2-bit weights */
        if (WB == 2) {
            corr0 = -2 * sum0;
            corr1 = -2 * sum1;
        }
        const uint32_t *ap = (const uint32_t *)(const void *)act;
        /* accumulators of both pixels for every channel, then one requantization pass */
        for (int32_t c = 0; c < g->cout; c += 2) {
            int32_t acc[4];
            if (packed && IB == 4) {
                mixq_block_a4w4(g, ap, wl + c * (g->kp >> 2), acc);
            } else if (packed) {
                mixq_block_a2w2(g, ap, (const uint32_t *)(const void *)filter + (c >> 1) * pair_words, acc);
            } else if (two) {
                mixq_block16(WB, 2, g, ap, (const uint32_t *)(const void *)filter + (c >> 1) * pair_words, acc);
            } else {
                mixq_block16(WB, 1, g, ap, (const uint32_t *)(const void *)filter + (c >> 1) * pair_words, acc);
            }
            const int32_t b0 = cst[c], b1 = cst[c + 1];
            accs[c] = acc[0] + b0 + corr0;
            accs[c + 1] = acc[1] + b1 + corr0;
            accs[cpad + c] = acc[2] + b0 + corr1;
            accs[cpad + c + 1] = acc[3] + b1 + corr1;
        }
        mixq_requant_row(OB, g->cout, accs, rq, g->out_zp, g->lo, g->hi, mode, out, pix * g->cout);
        if (two) {
            mixq_requant_row(OB, g->cout, accs + cpad, rq, g->out_zp, g->lo, g->hi, mode, out, (pix + 1) * g->cout);
        }
    }
}

#endif /* MIXQ_CONV_DSP_H */
