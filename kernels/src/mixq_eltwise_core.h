/*
 * mixq_eltwise_core.h - elementwise add and average pool cores, written once for all bitwidths.
 * Neither needs scratch. Arithmetic follows TFLite's int8 ADD and AVERAGE_POOL_2D (see the
 * parameter structs in mixq_kernels.h).
 */
#ifndef MIXQ_ELTWISE_CORE_H
#define MIXQ_ELTWISE_CORE_H

#include "mixq_internal.h"

MIXQ_INLINE int32_t mixq_add_buffer_size(int32_t IB1, int32_t IB2, int32_t OB, const mixq_dims *dims) {
    (void)dims;
    return (mixq_bits_ok(IB1) && mixq_bits_ok(IB2) && mixq_bits_ok(OB)) ? 0 : -1;
}

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
    const mixq_rq r1 = mixq_rq_make(p->in1_mult, p->in1_shift);
    const mixq_rq r2 = mixq_rq_make(p->in2_mult, p->in2_shift);
    const mixq_rq ro = mixq_rq_make(p->out_mult, p->out_shift);
    const int32_t ls = p->left_shift, zp1 = p->in1_zp, zp2 = p->in2_zp;
    const int32_t ozp = p->output_zp, lo = p->act_min, hi = p->act_max;
    for (int32_t i = 0; i < count; i++) {
        const int32_t a = (mixq_get_act(in1, i, IB1) - zp1) * (1 << ls);
        const int32_t b = (mixq_get_act(in2, i, IB2) - zp2) * (1 << ls);
        const int32_t v = mixq_rq_apply(mixq_rq_apply(a, &r1) + mixq_rq_apply(b, &r2), &ro) + ozp;
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

/* TFLite's rounded division of a window sum by its count (half away from zero). */
MIXQ_INLINE int32_t mixq_round_div(int32_t sum, int32_t count) {
    return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
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
        p->act_min < mixq_act_lo(OB) || p->act_max > mixq_act_hi(OB)) {
        return MIXQ_ERR_ARG;
    }
    const uint8_t *in = (const uint8_t *)in_v;
    uint8_t *out = (uint8_t *)out_v;
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < oh; oy++) {
            const int32_t y0 = oy * sh - p->padding.h;
            const int32_t ys = mixq_max_i32(y0, 0), ye = mixq_min_i32(y0 + fh, ih);
            for (int32_t ox = 0; ox < ow; ox++) {
                const int32_t x0 = ox * sw - p->padding.w;
                const int32_t xs = mixq_max_i32(x0, 0), xe = mixq_min_i32(x0 + fw, iw);
                const int32_t count = mixq_max_i32((ye - ys) * (xe - xs), 1);
                const int32_t obase = ((b * oh + oy) * ow + ox) * c;
                for (int32_t ch = 0; ch < c; ch++) {
                    int32_t sum = 0;
                    for (int32_t y = ys; y < ye; y++) {
                        for (int32_t x = xs; x < xe; x++) {
                            sum += mixq_get_act(in, ((b * ih + y) * iw + x) * c + ch, IB) - p->input_zp;
                        }
                    }
                    int32_t v = mixq_round_div(sum, count);
                    v = p->multiplier != 0 ? mixq_mbqm(v, p->multiplier, p->shift) : v;
                    v += p->output_zp;
                    v = v < p->act_min ? p->act_min : (v > p->act_max ? p->act_max : v);
                    mixq_put_act(out, obase + ch, OB, v);
                }
            }
        }
    }
    return MIXQ_OK;
}

#endif /* MIXQ_ELTWISE_CORE_H */
