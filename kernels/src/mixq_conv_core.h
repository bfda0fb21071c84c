/*
 * mixq_conv_core.h - the convolution core behind conv2d, pointwise and fully connected.
 *
 * Every output pixel is a dot product of one im2col row (K = kh*kw*c_in input values) with
 * c_out weight rows in kernel layout. The core is written once with the bitwidths as
 * parameters; the generated variants call it with constants (IB, WB, OB) and the compiler
 * keeps only the code of that variant.
 *
 * Portable path (any target): the im2col row is built in scratch as int16 (x - input_zp) and
 * multiplied element by element with decoded weights.
 * DSP path (__ARM_FEATURE_DSP): see mixq_conv_dsp.h; W8A8, W4A4 and W2A2 use packed SIMD.
 */
#ifndef MIXQ_CONV_CORE_H
#define MIXQ_CONV_CORE_H

#include "mixq_internal.h"
#include "mixq_requant_row.h"

typedef struct {
    int32_t n, ih, iw, cin;
    int32_t oh, ow, cout;
    int32_t kh, kw, sh, sw, ph, pw, dh, dw;
    int32_t k, kp; /* K and the padded row length of the weight layout */
    int32_t in_zp, out_zp, lo, hi;
    int32_t scratch; /* bytes of scratch the call was given (0 while sizing it) */
    int32_t lanes; /* A4W4 weights in lane words and the lane bias (the _lanes entry points) */
} mixq_conv_geom;

/* Fill g from the arguments and check them; returns MIXQ_OK or MIXQ_ERR_ARG. */
MIXQ_INLINE mixq_status mixq_conv_setup(int32_t IB, int32_t WB, int32_t OB, int32_t kind, int32_t LANES,
                                        const mixq_conv_params *p,
                                        const mixq_dims *in, const mixq_dims *filter, const mixq_dims *out,
                                        mixq_conv_geom *g) {
    if (p == 0 || in == 0 || filter == 0 || out == 0) {
        return MIXQ_ERR_ARG;
    }
    if (!mixq_bits_ok(IB) || !mixq_bits_ok(WB) || !mixq_bits_ok(OB)) {
        return MIXQ_ERR_ARG;
    }
    if (in->n <= 0 || in->h <= 0 || in->w <= 0 || in->c <= 0 || filter->n <= 0 || filter->h <= 0 ||
        filter->w <= 0 || filter->c <= 0 || out->n <= 0 || out->h <= 0 || out->w <= 0 || out->c <= 0) {
        return MIXQ_ERR_ARG;
    }
    g->n = in->n;
    g->ih = in->h;
    g->iw = in->w;
    g->cin = in->c;
    g->oh = out->h;
    g->ow = out->w;
    g->cout = out->c;
    g->kh = filter->h;
    g->kw = filter->w;
    g->sh = p->stride.h;
    g->sw = p->stride.w;
    g->ph = p->padding.h;
    g->pw = p->padding.w;
    g->dh = p->dilation.h;
    g->dw = p->dilation.w;
    g->in_zp = p->input_zp;
    g->out_zp = p->output_zp;
    g->lo = p->act_min;
    g->hi = p->act_max;
    g->scratch = 0;
    if (kind == MIXQ_KIND_FC) {
        /* input [n, h, w, c] flattened to [n, h*w*c]; filter [c_out, 1, 1, K] */
        g->cin = in->h * in->w * in->c;
        g->ih = g->iw = 1;
        g->kh = g->kw = 1;
        g->sh = g->sw = g->dh = g->dw = 1;
        g->ph = g->pw = 0;
        if (filter->h * filter->w * filter->c != g->cin || out->h != 1 || out->w != 1) {
            return MIXQ_ERR_ARG;
        }
    } else if (filter->c != in->c) {
        return MIXQ_ERR_ARG;
    }
    if (kind == MIXQ_KIND_POINTWISE && (g->kh != 1 || g->kw != 1 || g->ph != 0 || g->pw != 0)) {
        return MIXQ_ERR_ARG;
    }
    if (kind != MIXQ_KIND_FC && (g->sh <= 0 || g->sw <= 0 || g->dh <= 0 || g->dw <= 0 || g->ph < 0 || g->pw < 0)) {
        return MIXQ_ERR_ARG;
    }
    if (filter->n != out->c || out->n != in->n) {
        return MIXQ_ERR_ARG;
    }
    if (g->lo > g->hi || g->lo < mixq_act_lo(OB) || g->hi > mixq_act_hi(OB)) {
        return MIXQ_ERR_ARG;
    }
    if (g->in_zp < mixq_act_lo(IB) || g->in_zp > mixq_act_hi(IB)) {
        return MIXQ_ERR_ARG;
    }
    g->lanes = LANES && IB == 4 && WB == 4;
    g->k = g->kh * g->kw * g->cin;
    g->kp = mixq_row_len(g->k, WB);
    return MIXQ_OK;
}

/* Is input pixel (iy, ix) inside the image? */
MIXQ_INLINE int32_t mixq_inside(const mixq_conv_geom *g, int32_t iy, int32_t ix) {
    return iy >= 0 && iy < g->ih && ix >= 0 && ix < g->iw;
}

/* ---- portable path ------------------------------------------------------------------------- */

/* im2col of output pixel (b, oy, ox) into row[0..kp): int16 (x - input_zp), 0 for padding. */
MIXQ_INLINE void mixq_im2col_i16(int32_t IB, const mixq_conv_geom *g, const uint8_t *in, int32_t b, int32_t oy,
                                 int32_t ox, int16_t *row) {
    int32_t idx = 0;
    for (int32_t ky = 0; ky < g->kh; ky++) {
        const int32_t iy = oy * g->sh - g->ph + ky * g->dh;
        for (int32_t kx = 0; kx < g->kw; kx++) {
            const int32_t ix = ox * g->sw - g->pw + kx * g->dw;
            if (!mixq_inside(g, iy, ix)) {
                memset(row + idx, 0, (size_t)g->cin * sizeof(int16_t));
                idx += g->cin;
                continue;
            }
            const int32_t base = ((b * g->ih + iy) * g->iw + ix) * g->cin;
            for (int32_t ci = 0; ci < g->cin; ci++) {
                row[idx++] = (int16_t)(mixq_get_act(in, base + ci, IB) - g->in_zp);
            }
        }
    }
    for (; idx < g->kp; idx++) {
        row[idx] = 0;
    }
}

/* Weight k of output channel c in the A4W4 lane layout (the _lanes entry points): per channel pair and
 * 8 weights four words c0 A, c0 B, c1 A, c1 B, A = (w1 + 2048 w0) | (w5 + 2048 w4) << 16,
 * B = (w3 + 2048 w2) | (w7 + 2048 w6) << 16. */
MIXQ_INLINE int32_t mixq_get_weight_lanes(const uint8_t *filter, int32_t kp, int32_t c, int32_t k) {
    const int32_t i = k & 7;
    const int32_t word = (c >> 1) * (kp >> 1) + (k >> 3) * 4 + (c & 1) * 2 + ((i >> 1) & 1);
    int16_t h;
    int32_t odd;
    memcpy(&h, filter + 4 * word + 2 * (i >> 2), 2);
    odd = (int32_t)((uint32_t)(uint16_t)h << 21) >> 21; /* w_odd: the low 11 bits, signed */
    return (i & 1) ? odd : (h - odd) / 2048;            /* w_even: exact */
}

/* int16 im2col row, then per channel the requantization parameters and an accumulator */
MIXQ_INLINE int32_t mixq_conv_portable_scratch(const mixq_conv_geom *g) {
    return ((g->kp * 2 + 3) & ~3) + g->cout * (int32_t)(sizeof(mixq_rq) + 4);
}

MIXQ_INLINE void mixq_conv_portable(int32_t IB, int32_t WB, int32_t OB, const mixq_conv_geom *g, void *scratch,
                                    const mixq_per_channel_quant *q, const uint8_t *in, const uint8_t *filter,
                                    const int32_t *bias, uint8_t *out) {
    int16_t *row = (int16_t *)scratch;
    mixq_rq *rq = (mixq_rq *)(void *)((uint8_t *)scratch + ((g->kp * 2 + 3) & ~3));
    int32_t *accs = (int32_t *)(void *)(rq + g->cout);
    const int32_t row_bytes = mixq_row_bytes(g->k, WB);
    int32_t mode = mixq_rq_fill(g->cout, q, rq);
    if (g->lo == mixq_act_lo(OB) && g->hi == mixq_act_hi(OB)) {
        mode |= MIXQ_RQ_FULL;
    }
    for (int32_t b = 0; b < g->n; b++) {
        for (int32_t oy = 0; oy < g->oh; oy++) {
            for (int32_t ox = 0; ox < g->ow; ox++) {
                mixq_im2col_i16(IB, g, in, b, oy, ox, row);
                for (int32_t c = 0; c < g->cout; c++) {
                    int32_t acc = bias ? bias[c] : 0;
                    if (g->lanes) {
                        /* lane bias: bias + (8 - zp) sum(w), so add (zp - 8) sum(w); modulo 2^32 (the
                         * partial sums may leave int32, the result is the accumulator of the plain layout) */
                        uint32_t a = (uint32_t)acc;
                        int32_t sw = 0;
                        for (int32_t k = 0; k < g->k; k++) {
                            const int32_t w = mixq_get_weight_lanes(filter, g->kp, c, k);
                            a += (uint32_t)((int32_t)row[k] * w);
                            sw += w;
                        }
                        accs[c] = (int32_t)(a + (uint32_t)(g->in_zp - 8) * (uint32_t)sw);
                        continue;
                    }
                    for (int32_t k = 0; k < g->k; k++) {
                        acc += (int32_t)row[k] * mixq_get_weight(filter, row_bytes, c, k, WB);
                    }
                    accs[c] = acc;
                }
                mixq_requant_row(OB, g->cout, accs, rq, g->out_zp, g->lo, g->hi, mode, out,
                                 ((b * g->oh + oy) * g->ow + ox) * g->cout);
            }
        }
    }
}

#if MIXQ_DSP
#include "mixq_conv_dsp.h"
#else
MIXQ_INLINE int32_t mixq_conv_dsp_scratch(int32_t IB, int32_t WB, const mixq_conv_geom *g) {
    (void)IB;
    (void)WB;
    return mixq_conv_portable_scratch(g);
}
MIXQ_INLINE int32_t mixq_conv_dsp_scratch_min(int32_t IB, int32_t WB, const mixq_conv_geom *g) {
    return mixq_conv_dsp_scratch(IB, WB, g);
}
#endif

/* ---- entry points used by the generated variants ------------------------------------------- */

MIXQ_INLINE int32_t mixq_conv_buffer_size(int32_t IB, int32_t WB, int32_t OB, int32_t kind, int32_t LANES,
                                          const mixq_conv_params *p, const mixq_dims *in, const mixq_dims *filter,
                                          const mixq_dims *out) {
    mixq_conv_geom g;
    if (mixq_conv_setup(IB, WB, OB, kind, LANES, p, in, filter, out, &g) != MIXQ_OK) {
        return -1;
    }
    return mixq_conv_dsp_scratch(IB, WB, &g);
}

/* LANES (a constant of the variant, A4W4 only): weights in lane words and the lane bias. */
MIXQ_INLINE mixq_status mixq_conv_run(int32_t IB, int32_t WB, int32_t OB, int32_t kind, int32_t LANES,
                                      const mixq_context *ctx, const mixq_conv_params *p,
                                      const mixq_per_channel_quant *q, const mixq_dims *in_dims, const void *in,
                                      const mixq_dims *filter_dims, const void *filter, const int32_t *bias,
                                      const mixq_dims *out_dims, void *out) {
    mixq_conv_geom g;
    const mixq_status st = mixq_conv_setup(IB, WB, OB, kind, LANES, p, in_dims, filter_dims, out_dims, &g);
    if (st != MIXQ_OK) {
        return st;
    }
    if (q == 0 || q->multiplier == 0 || q->shift == 0 || in == 0 || filter == 0 || out == 0 ||
        ((uintptr_t)filter & 3u) != 0) {
        return MIXQ_ERR_ARG;
    }
    for (int32_t c = 0; c < g.cout; c++) { /* TFLite multipliers are >= 0; shifts in [-31, 30] */
        if (q->multiplier[c] < 0 || q->shift[c] < -31 || q->shift[c] > 30) {
            return MIXQ_ERR_ARG;
        }
    }
    if (ctx == 0 || ctx->buf == 0 || ((uintptr_t)ctx->buf & 3u) != 0 ||
        ctx->size < mixq_conv_dsp_scratch_min(IB, WB, &g)) {
        return MIXQ_ERR_SCRATCH;
    }
    g.scratch = ctx->size;
#if MIXQ_DSP
    mixq_conv_dsp(IB, WB, OB, &g, ctx->buf, q, (const uint8_t *)in, (const uint8_t *)filter, bias, (uint8_t *)out);
#else
    mixq_conv_portable(IB, WB, OB, &g, ctx->buf, q, (const uint8_t *)in, (const uint8_t *)filter, bias,
                       (uint8_t *)out);
#endif
    return MIXQ_OK;
}

#endif /* MIXQ_CONV_CORE_H */
