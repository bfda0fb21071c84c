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

/* Bytes of scratch the DSP path needs. */
MIXQ_INLINE int32_t mixq_conv_dsp_scratch(int32_t IB, int32_t WB, const mixq_conv_geom *g) {
    if (IB == 4 && WB == 4) {
        /* two lane rows (kp/2 halfwords each), re-spaced weights (kp bytes per channel), constants */
        return 2 * g->kp + g->cout * g->kp + 4 * g->cout;
    }
    if (IB == 2 && WB == 2) {
        /* two lane rows (kp/2 halfwords each), per-channel constants */
        return 2 * g->kp + 4 * g->cout;
    }
    /* two int16 im2col rows */
    return 4 * g->kp;
}

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

/* im2col of one output pixel into int16 (x - zp) in mixq_perm16 order; returns sum(x - zp). */
MIXQ_INLINE int32_t mixq_im2col16(int32_t IB, int32_t WB, const mixq_conv_geom *g, const uint8_t *in, int32_t pix,
                                  int16_t *row) {
    int32_t b, oy, ox, sum = 0, idx = 0;
    mixq_pixel(g, pix, &b, &oy, &ox);
    const int32_t fast = IB == 8 && WB == 8 && (g->cin & 3) == 0;
    const uint32_t off = (uint32_t)(uint16_t)(int16_t)(-g->in_zp) * 0x00010001u;
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const int32_t iy = oy * g->sh - g->ph + ky * g->dh;
        for (int32_t kx = 0; kx < g->kw; kx++) {
            const int32_t ix = ox * g->sw - g->pw + kx * g->dw;
            if (!mixq_inside(g, iy, ix)) {
                if (fast) { /* whole groups: the permutation stays inside the segment */
                    memset(row + idx, 0, (size_t)g->cin * 2);
                    idx += g->cin;
                } else {
                    for (int32_t ci = 0; ci < g->cin; ci++, idx++) {
                        row[mixq_perm16(WB, idx)] = 0;
                    }
                }
                continue;
            }
            const int32_t base = ((b * g->ih + iy) * g->iw + ix) * g->cin;
            if (fast) {
                const uint8_t *src = in + base;
                for (int32_t ci = 0; ci < g->cin; ci += 4) {
                    const uint32_t x = mixq_load_u32(src + ci);
                    mixq_store_u32(row + idx, (uint32_t)__sadd16((int16x2_t)__sxtb16(x), (int16x2_t)off));
                    mixq_store_u32(row + idx + 2, (uint32_t)__sadd16((int16x2_t)mixq_sxtb16_ror8(x), (int16x2_t)off));
                    idx += 4;
                }
            } else {
                for (int32_t ci = 0; ci < g->cin; ci++, idx++) {
                    const int32_t v = mixq_get_act(in, base + ci, IB) - g->in_zp;
                    row[mixq_perm16(WB, idx)] = (int16_t)v;
                    sum += v;
                }
            }
        }
    }
    for (; idx < g->kp; idx++) {
        row[mixq_perm16(WB, idx)] = 0;
    }
    return sum;
}

/* ---- widen-to-16 kernel (every combination but A4W4 and A2W2) ---------------------------- */

/* One weight group (4, 8 or 16 weights of one channel) times the matching activations of two
 * pixels, accumulated into s0 (pixel 0) and s1 (pixel 1). */
#define MIXQ_DOT2(wl, off)                                  \
    do {                                                    \
        const uint32_t a0_ = mixq_load_u32(r0 + (off));     \
        const uint32_t a1_ = mixq_load_u32(r1 + (off));     \
        s00 = mixq_smlad(a0_, (wl##0), s00);                \
        s10 = mixq_smlad(a1_, (wl##0), s10);                \
        s01 = mixq_smlad(a0_, (wl##1), s01);                \
        s11 = mixq_smlad(a1_, (wl##1), s11);                \
    } while (0)

MIXQ_INLINE void mixq_block16(int32_t WB, const mixq_conv_geom *g, const int16_t *row0, const int16_t *row1,
                              const uint8_t *wrow0, const uint8_t *wrow1, int32_t out[4]) {
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0; /* s<pixel><channel> */
    const int16_t *r0 = row0, *r1 = row1;
    if (WB == 8) {
        for (int32_t k = 0; k < g->kp; k += 4, r0 += 4, r1 += 4) {
            const uint32_t x0 = mixq_load_u32(wrow0 + k), x1 = mixq_load_u32(wrow1 + k);
            const uint32_t e0 = (uint32_t)__sxtb16(x0), e1 = (uint32_t)__sxtb16(x1);
            MIXQ_DOT2(e, 0);
            const uint32_t o0 = mixq_sxtb16_ror8(x0), o1 = mixq_sxtb16_ror8(x1);
            MIXQ_DOT2(o, 2);
        }
    } else if (WB == 4) {
        for (int32_t k = 0; k < g->kp; k += 8, r0 += 8, r1 += 8) {
            const uint32_t x0 = mixq_load_u32(wrow0 + (k >> 1)), x1 = mixq_load_u32(wrow1 + (k >> 1));
            const uint32_t hi0 = x0 & 0xF0F0F0F0u, hi1 = x1 & 0xF0F0F0F0u;
            const uint32_t lo0 = (x0 << 4) & 0xF0F0F0F0u, lo1 = (x1 << 4) & 0xF0F0F0F0u;
            const uint32_t a0 = (uint32_t)__sxtb16(lo0), a1 = (uint32_t)__sxtb16(lo1); /* 16*(w0, w4) */
            MIXQ_DOT2(a, 0);
            const uint32_t b0 = (uint32_t)__sxtb16(hi0), b1 = (uint32_t)__sxtb16(hi1); /* 16*(w1, w5) */
            MIXQ_DOT2(b, 2);
            const uint32_t c0 = mixq_sxtb16_ror8(lo0), c1 = mixq_sxtb16_ror8(lo1); /* 16*(w2, w6) */
            MIXQ_DOT2(c, 4);
            const uint32_t d0 = mixq_sxtb16_ror8(hi0), d1 = mixq_sxtb16_ror8(hi1); /* 16*(w3, w7) */
            MIXQ_DOT2(d, 6);
        }
        s00 >>= 4; /* exact: every product carried a factor 16 */
        s01 >>= 4;
        s10 >>= 4;
        s11 >>= 4;
    } else {
        const uint32_t m = 0x00030003u;
        for (int32_t k = 0; k < g->kp; k += 16, r0 += 16, r1 += 16) {
            const uint32_t x0 = mixq_load_u32(wrow0 + (k >> 2)), x1 = mixq_load_u32(wrow1 + (k >> 2));
            /* lane j: ror r_j -> (u(4j+1), u(4j+3)); ror r_j + 12 -> (u(4j), u(4j+2)) */
            uint32_t p0 = mixq_ror(x0, 0) & m, p1 = mixq_ror(x1, 0) & m;
            MIXQ_DOT2(p, 0);
            uint32_t q0 = mixq_ror(x0, 12) & m, q1 = mixq_ror(x1, 12) & m;
            MIXQ_DOT2(q, 2);
            p0 = mixq_ror(x0, 2) & m, p1 = mixq_ror(x1, 2) & m;
            MIXQ_DOT2(p, 4);
            q0 = mixq_ror(x0, 14) & m, q1 = mixq_ror(x1, 14) & m;
            MIXQ_DOT2(q, 6);
            p0 = mixq_ror(x0, 8) & m, p1 = mixq_ror(x1, 8) & m;
            MIXQ_DOT2(p, 8);
            q0 = mixq_ror(x0, 20) & m, q1 = mixq_ror(x1, 20) & m;
            MIXQ_DOT2(q, 10);
            p0 = mixq_ror(x0, 10) & m, p1 = mixq_ror(x1, 10) & m;
            MIXQ_DOT2(p, 12);
            q0 = mixq_ror(x0, 22) & m, q1 = mixq_ror(x1, 22) & m;
            MIXQ_DOT2(q, 14);
        }
    }
    out[0] = s00;
    out[1] = s01;
    out[2] = s10;
    out[3] = s11;
}
#undef MIXQ_DOT2

/* ---- A4W4: packed lanes, spacing 11 -------------------------------------------------------- */

#define MIXQ_A4_PAIR(a, b) ((uint32_t)(uint16_t)(int16_t)((a) + (b) * 2048))

/* Lane words of 8 activations (a 32-bit word of 8 nibbles): (lane A, lane B) with
 * A = [(a0-8) + (a1-8)*2^11, (a4-8) + (a5-8)*2^11], B = [(a2-8) + (a3-8)*2^11, (a6-8) + (a7-8)*2^11]. */
MIXQ_INLINE void mixq_a4_lanes(uint32_t x, uint32_t *la, uint32_t *lb) {
    const uint32_t y = x & 0x0F0F0F0Fu, z = (x >> 4) & 0x0F0F0F0Fu;
    const uint32_t c = 0x40084008u; /* 8 + 8*2^11 per halfword */
    *la = (uint32_t)__ssub16((int16x2_t)(__uxtb16(y) | (__uxtb16(z) << 11)), (int16x2_t)c);
    *lb = (uint32_t)__ssub16((int16x2_t)(__uxtb16(y >> 8) | (__uxtb16(z >> 8) << 11)), (int16x2_t)c);
}

/* Halfword index of element k in an A4W4 lane row. */
MIXQ_INLINE int32_t mixq_a4_hw(int32_t k) {
    const int32_t p = (k & 7) >> 1;
    return ((k >> 3) << 2) | ((p & 1) << 1) | (p >> 1);
}

MIXQ_INLINE void mixq_im2col_a4(const mixq_conv_geom *g, const uint8_t *in, int32_t pix, int16_t *lanes) {
    int32_t b, oy, ox, idx = 0;
    mixq_pixel(g, pix, &b, &oy, &ox);
    const int32_t fast = (g->cin & 7) == 0;
    const int32_t pz = g->in_zp - 8;
    const uint32_t pad_word = MIXQ_A4_PAIR(pz, pz) * 0x00010001u;
    if (!fast) {
        memset(lanes, 0, (size_t)g->kp);
    }
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const int32_t iy = oy * g->sh - g->ph + ky * g->dh;
        for (int32_t kx = 0; kx < g->kw; kx++) {
            const int32_t ix = ox * g->sw - g->pw + kx * g->dw;
            const int32_t inside = mixq_inside(g, iy, ix);
            const int32_t base = ((b * g->ih + iy) * g->iw + ix) * g->cin;
            if (fast) {
                for (int32_t ci = 0; ci < g->cin; ci += 8, idx += 8) {
                    uint32_t la = pad_word, lb = pad_word;
                    if (inside) {
                        mixq_a4_lanes(mixq_load_u32(in + ((base + ci) >> 1)), &la, &lb);
                    }
                    mixq_store_u32(lanes + (idx >> 1), la);
                    mixq_store_u32(lanes + (idx >> 1) + 2, lb);
                }
            } else {
                for (int32_t ci = 0; ci < g->cin; ci++, idx++) {
                    const int32_t v = inside ? mixq_get_act(in, base + ci, 4) - 8 : pz;
                    const int32_t h = mixq_a4_hw(idx);
                    lanes[h] = (int16_t)(uint16_t)((uint16_t)lanes[h] + (uint16_t)(v * ((idx & 1) ? 2048 : 1)));
                }
            }
        }
    }
    for (; fast && idx < g->kp; idx += 8) {
        mixq_store_u32(lanes + (idx >> 1), 0);
        mixq_store_u32(lanes + (idx >> 1) + 2, 0);
    }
}

/* Re-space the 4-bit weights into lane halfwords [w1 + w0*2^11, ...] (same order as the activation
 * lanes) and compute the per-channel constants. */
MIXQ_INLINE void mixq_prepare_w4(const mixq_conv_geom *g, const uint8_t *filter, const int32_t *bias, int16_t *wl,
                                 int32_t *cst) {
    const int32_t row_bytes = g->kp >> 1;
    for (int32_t c = 0; c < g->cout; c++) {
        const uint8_t *row = filter + c * row_bytes;
        int16_t *dst = wl + c * (g->kp >> 1);
        int32_t wsum = 0;
        for (int32_t k = 0; k < g->kp; k += 2) {
            const int32_t w0 = mixq_get_weight(row, k, 4), w1 = mixq_get_weight(row, k + 1, 4);
            wsum += w0 + w1;
            dst[mixq_a4_hw(k)] = (int16_t)(w1 + w0 * 2048);
        }
        /* sum (a - zp) w = sum (a - 8) w + (8 - zp) sum w; each extraction carries +896 */
        cst[c] = (bias ? bias[c] : 0) + (8 - g->in_zp) * wsum - 896 * (g->kp >> 4);
    }
}

MIXQ_INLINE void mixq_block_a4w4(const mixq_conv_geom *g, const int16_t *row0, const int16_t *row1,
                                 const int16_t *w0, const int16_t *w1, int32_t out[4]) {
    /* P preloads each partial: 896*2^11 centres the field [11, 22) (sum of 16 products in
     * [-896, 1024]), 1024 centres the low field (sum of 8 cross products in [-448, 512]). */
    const int32_t P = (896 << 11) + 1024;
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    for (int32_t k = 0; k < g->kp; k += 16, row0 += 8, row1 += 8, w0 += 8, w1 += 8) {
        int32_t t00 = P, t01 = P, t10 = P, t11 = P;
        for (int32_t j = 0; j < 8; j += 2) {
            const uint32_t a0 = mixq_load_u32(row0 + j), a1 = mixq_load_u32(row1 + j);
            const uint32_t b0 = mixq_load_u32(w0 + j), b1 = mixq_load_u32(w1 + j);
            t00 = mixq_smlad(a0, b0, t00);
            t01 = mixq_smlad(a0, b1, t01);
            t10 = mixq_smlad(a1, b0, t10);
            t11 = mixq_smlad(a1, b1, t11);
        }
        s00 += ((uint32_t)t00 >> 11) & 0x7FF;
        s01 += ((uint32_t)t01 >> 11) & 0x7FF;
        s10 += ((uint32_t)t10 >> 11) & 0x7FF;
        s11 += ((uint32_t)t11 >> 11) & 0x7FF;
    }
    out[0] = s00;
    out[1] = s01;
    out[2] = s10;
    out[3] = s11;
}

/* ---- A2W2: packed lanes, spacing 12 -------------------------------------------------------- */

/* Lane word of 4 activations (one byte of crumbs): a0 | a1 << 12 | a2 << 16 | a3 << 28. */
MIXQ_INLINE uint32_t mixq_a2_lane(uint32_t byte) {
    return (byte & 3u) | ((byte & 0xCu) << 10) | ((byte & 0x30u) << 12) | ((byte & 0xC0u) << 22);
}

#define MIXQ_A2_CHUNK 448 /* K values per extraction: 112 SMLADs, field sum <= 112 * 36 < 4096 */

MIXQ_INLINE void mixq_im2col_a2(const mixq_conv_geom *g, const uint8_t *in, int32_t pix, int16_t *lanes) {
    int32_t b, oy, ox, idx = 0;
    mixq_pixel(g, pix, &b, &oy, &ox);
    const int32_t fast = (g->cin & 3) == 0;
    const uint32_t pad_word = mixq_a2_lane((uint32_t)g->in_zp * 0x55u);
    if (!fast) {
        memset(lanes, 0, (size_t)g->kp);
    }
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const int32_t iy = oy * g->sh - g->ph + ky * g->dh;
        for (int32_t kx = 0; kx < g->kw; kx++) {
            const int32_t ix = ox * g->sw - g->pw + kx * g->dw;
            const int32_t inside = mixq_inside(g, iy, ix);
            const int32_t base = ((b * g->ih + iy) * g->iw + ix) * g->cin;
            if (fast) {
                const uint8_t *src = in + (base >> 2);
                for (int32_t ci = 0; ci < g->cin; ci += 4, idx += 4) {
                    mixq_store_u32(lanes + (idx >> 1), inside ? mixq_a2_lane(src[ci >> 2]) : pad_word);
                }
            } else {
                for (int32_t ci = 0; ci < g->cin; ci++, idx++) {
                    const int32_t v = inside ? mixq_get_act(in, base + ci, 2) : g->in_zp;
                    const int32_t h = idx >> 1;
                    lanes[h] = (int16_t)(uint16_t)((uint16_t)lanes[h] + (uint16_t)(v << ((idx & 1) * 12)));
                }
            }
        }
    }
    for (; fast && idx < g->kp; idx += 4) {
        mixq_store_u32(lanes + (idx >> 1), 0);
    }
}

/* Sum of the activations held in an A2 lane row (SMLAD with lanes of ones, field [12, 24)). */
MIXQ_INLINE int32_t mixq_a2_sum(const mixq_conv_geom *g, const int16_t *lanes) {
    int32_t sum = 0;
    for (int32_t k0 = 0; k0 < g->kp; k0 += MIXQ_A2_CHUNK) {
        const int32_t k1 = mixq_min_i32(k0 + MIXQ_A2_CHUNK, g->kp);
        int32_t t = 0;
        for (int32_t k = k0; k < k1; k += 4) {
            t = mixq_smlad(mixq_load_u32(lanes + (k >> 1)), 0x10011001u, t);
        }
        sum += ((uint32_t)t >> 12) & 0xFFF;
    }
    return sum;
}

MIXQ_INLINE void mixq_prepare_w2(const mixq_conv_geom *g, const uint8_t *filter, const int32_t *bias, int32_t *cst) {
    const int32_t row_bytes = g->kp >> 2;
    for (int32_t c = 0; c < g->cout; c++) {
        const uint8_t *row = filter + c * row_bytes;
        int32_t wsum = 0;
        for (int32_t k = 0; k < g->k; k++) {
            wsum += mixq_get_weight(row, k, 2);
        }
        /* sum (a - zp) w = sum a (w + 2) - 2 sum a - zp sum w */
        cst[c] = (bias ? bias[c] : 0) - g->in_zp * wsum;
    }
}

#define MIXQ_A2_STEP(r, j)                                              \
    do {                                                                \
        const uint32_t l0_ = mixq_ror(x0, (r)) & m, l1_ = mixq_ror(x1, (r)) & m; \
        const uint32_t a0_ = mixq_load_u32(row0 + 2 * (j));             \
        const uint32_t a1_ = mixq_load_u32(row1 + 2 * (j));             \
        t00 = mixq_smlad(a0_, l0_, t00);                                \
        t01 = mixq_smlad(a0_, l1_, t01);                                \
        t10 = mixq_smlad(a1_, l0_, t10);                                \
        t11 = mixq_smlad(a1_, l1_, t11);                                \
    } while (0)

MIXQ_INLINE void mixq_block_a2w2(const mixq_conv_geom *g, const int16_t *row0, const int16_t *row1,
                                 const uint8_t *w0, const uint8_t *w1, int32_t out[4]) {
    const uint32_t m = 0x30033003u;
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    for (int32_t k0 = 0; k0 < g->kp; k0 += MIXQ_A2_CHUNK) {
        const int32_t k1 = mixq_min_i32(k0 + MIXQ_A2_CHUNK, g->kp);
        int32_t t00 = 0, t01 = 0, t10 = 0, t11 = 0;
        for (int32_t k = k0; k < k1; k += 16, row0 += 8, row1 += 8, w0 += 4, w1 += 4) {
            const uint32_t x0 = mixq_load_u32(w0), x1 = mixq_load_u32(w1);
            MIXQ_A2_STEP(0, 0);
            MIXQ_A2_STEP(2, 1);
            MIXQ_A2_STEP(8, 2);
            MIXQ_A2_STEP(10, 3);
        }
        s00 += ((uint32_t)t00 >> 12) & 0xFFF;
        s01 += ((uint32_t)t01 >> 12) & 0xFFF;
        s10 += ((uint32_t)t10 >> 12) & 0xFFF;
        s11 += ((uint32_t)t11 >> 12) & 0xFFF;
    }
    out[0] = s00;
    out[1] = s01;
    out[2] = s10;
    out[3] = s11;
}
#undef MIXQ_A2_STEP

/* ---- driver ------------------------------------------------------------------------------ */

MIXQ_INLINE void mixq_conv_dsp(int32_t IB, int32_t WB, int32_t OB, const mixq_conv_geom *g, void *scratch,
                               const mixq_per_channel_quant *q, const uint8_t *in, const uint8_t *filter,
                               const int32_t *bias, uint8_t *out) {
    const int32_t packed = (IB == 4 && WB == 4) || (IB == 2 && WB == 2);
    const int32_t row_bytes = mixq_row_bytes(g->k, WB);
    const int32_t npix = g->n * g->oh * g->ow;
    /* scratch: row 0, row 1 (int16 rows: 2*kp bytes each; lane rows: kp bytes each), then for
     * A4W4 the re-spaced weights, then the per-channel constants */
    const int32_t row_len = packed ? (g->kp >> 1) : g->kp; /* in int16 units */
    int16_t *row0 = (int16_t *)scratch;
    int16_t *row1 = row0 + row_len;
    int16_t *wl = row1 + row_len;
    int32_t *cst = (int32_t *)(void *)(wl + ((IB == 4 && WB == 4) ? g->cout * (g->kp >> 1) : 0));
    if (IB == 4 && WB == 4) {
        mixq_prepare_w4(g, filter, bias, wl, cst);
    } else if (IB == 2 && WB == 2) {
        mixq_prepare_w2(g, filter, bias, cst);
    }
    for (int32_t pix = 0; pix < npix; pix += 2) {
        const int32_t two = pix + 1 < npix;
        int32_t sum0 = 0, sum1 = 0;
        if (IB == 4 && WB == 4) {
            mixq_im2col_a4(g, in, pix, row0);
            if (two) {
                mixq_im2col_a4(g, in, pix + 1, row1);
            }
        } else if (IB == 2 && WB == 2) {
            mixq_im2col_a2(g, in, pix, row0);
            sum0 = mixq_a2_sum(g, row0);
            if (two) {
                mixq_im2col_a2(g, in, pix + 1, row1);
                sum1 = mixq_a2_sum(g, row1);
            }
        } else {
            sum0 = mixq_im2col16(IB, WB, g, in, pix, row0);
            if (two) {
                sum1 = mixq_im2col16(IB, WB, g, in, pix + 1, row1);
            }
        }
        const int16_t *r1 = two ? row1 : row0;
        for (int32_t c = 0; c < g->cout; c += 2) {
            const int32_t c1 = c + 1 < g->cout ? c + 1 : c;
            int32_t acc[4];
            if (IB == 4 && WB == 4) {
                mixq_block_a4w4(g, row0, r1, wl + c * (g->kp >> 1), wl + c1 * (g->kp >> 1), acc);
                acc[0] += cst[c];
                acc[1] += cst[c1];
                acc[2] += cst[c];
                acc[3] += cst[c1];
            } else if (IB == 2 && WB == 2) {
                mixq_block_a2w2(g, row0, r1, filter + c * row_bytes, filter + c1 * row_bytes, acc);
                acc[0] += cst[c] - 2 * sum0;
                acc[1] += cst[c1] - 2 * sum0;
                acc[2] += cst[c] - 2 * sum1;
                acc[3] += cst[c1] - 2 * sum1;
            } else {
                mixq_block16(WB, g, row0, r1, filter + c * row_bytes, filter + c1 * row_bytes, acc);
                if (WB == 2) {
                    acc[0] -= 2 * sum0;
                    acc[1] -= 2 * sum0;
                    acc[2] -= 2 * sum1;
                    acc[3] -= 2 * sum1;
                }
                if (bias) {
                    acc[0] += bias[c];
                    acc[1] += bias[c1];
                    acc[2] += bias[c];
                    acc[3] += bias[c1];
                }
            }
            const int32_t o0 = pix * g->cout;
            mixq_put_act(out, o0 + c, OB,
                         mixq_requant(acc[0], q->multiplier[c], q->shift[c], g->out_zp, g->lo, g->hi));
            if (c1 != c) {
                mixq_put_act(out, o0 + c1, OB,
                             mixq_requant(acc[1], q->multiplier[c1], q->shift[c1], g->out_zp, g->lo, g->hi));
            }
            if (two) {
                mixq_put_act(out, o0 + g->cout + c, OB,
                             mixq_requant(acc[2], q->multiplier[c], q->shift[c], g->out_zp, g->lo, g->hi));
                if (c1 != c) {
                    mixq_put_act(out, o0 + g->cout + c1, OB,
                                 mixq_requant(acc[3], q->multiplier[c1], q->shift[c1], g->out_zp, g->lo, g->hi));
                }
            }
        }
    }
}

#endif /* MIXQ_CONV_DSP_H */
