/*
 * mixq_depthwise_core.h - depthwise convolution core, written once for all bitwidths.
 *
 * Weights [1, KH, KW, C_in * ch_mult] packed plainly (signed, little-end first); output channel
 * oc reads input channel oc / ch_mult. No scratch. The DSP build uses the same code: depthwise
 * has K = kh*kw per output, too short for the packed-lane schemes of the convolution core.
 */
#ifndef MIXQ_DEPTHWISE_CORE_H
#define MIXQ_DEPTHWISE_CORE_H

#include "mixq_internal.h"

MIXQ_INLINE int32_t mixq_dw_buffer_size(int32_t IB, int32_t WB, int32_t OB, const mixq_conv_params *p,
                                        const mixq_dims *in, const mixq_dims *filter, const mixq_dims *out) {
    (void)p;
    (void)in;
    (void)filter;
    (void)out;
    if (!mixq_bits_ok(IB) || !mixq_bits_ok(WB) || !mixq_bits_ok(OB)) {
        return -1;
    }
    return 0;
}

MIXQ_INLINE mixq_status mixq_dw_run(int32_t IB, int32_t WB, int32_t OB, const mixq_context *ctx,
                                    const mixq_conv_params *p, const mixq_per_channel_quant *q,
                                    const mixq_dims *in_dims, const void *in_v, const mixq_dims *filter_dims,
                                    const void *filter_v, const int32_t *bias, const mixq_dims *out_dims,
                                    void *out_v) {
    (void)ctx;
    if (!mixq_bits_ok(IB) || !mixq_bits_ok(WB) || !mixq_bits_ok(OB) || p == 0 || q == 0 || q->multiplier == 0 ||
        q->shift == 0 || in_dims == 0 || filter_dims == 0 || out_dims == 0 || in_v == 0 || filter_v == 0 ||
        out_v == 0) {
        return MIXQ_ERR_ARG;
    }
    const int32_t n = in_dims->n, ih = in_dims->h, iw = in_dims->w, cin = in_dims->c;
    const int32_t oh = out_dims->h, ow = out_dims->w, cout = out_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, mult = p->ch_mult;
    const int32_t sh = p->stride.h, sw = p->stride.w, ph = p->padding.h, pw = p->padding.w;
    const int32_t dh = p->dilation.h, dw = p->dilation.w;
    const int32_t zp = p->input_zp, ozp = p->output_zp, lo = p->act_min, hi = p->act_max;
    if (n <= 0 || ih <= 0 || iw <= 0 || cin <= 0 || oh <= 0 || ow <= 0 || kh <= 0 || kw <= 0 || mult <= 0 ||
        cout != cin * mult || filter_dims->c != cout || filter_dims->n != 1 || out_dims->n != n || sh <= 0 ||
        sw <= 0 || dh <= 0 || dw <= 0 || ph < 0 || pw < 0) {
        return MIXQ_ERR_ARG;
    }
    if (lo > hi || lo < mixq_act_lo(OB) || hi > mixq_act_hi(OB) || zp < mixq_act_lo(IB) || zp > mixq_act_hi(IB)) {
        return MIXQ_ERR_ARG;
    }
    const uint8_t *in = (const uint8_t *)in_v;
    const uint8_t *w = (const uint8_t *)filter_v;
    uint8_t *out = (uint8_t *)out_v;
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < oh; oy++) {
            for (int32_t ox = 0; ox < ow; ox++) {
                const int32_t obase = ((b * oh + oy) * ow + ox) * cout;
                for (int32_t oc = 0; oc < cout; oc++) {
                    const int32_t ci = oc / mult;
                    int32_t acc = bias ? bias[oc] : 0;
                    for (int32_t ky = 0; ky < kh; ky++) {
                        const int32_t iy = oy * sh - ph + ky * dh;
                        if (iy < 0 || iy >= ih) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; kx++) {
                            const int32_t ix = ox * sw - pw + kx * dw;
                            if (ix < 0 || ix >= iw) {
                                continue;
                            }
                            const int32_t x = mixq_get_act(in, ((b * ih + iy) * iw + ix) * cin + ci, IB) - zp;
                            acc += x * mixq_get_dw_weight(w, (ky * kw + kx) * cout + oc, WB);
                        }
                    }
                    mixq_put_act(out, obase + oc, OB, mixq_requant(acc, q->multiplier[oc], q->shift[oc], ozp, lo, hi));
                }
            }
        }
    }
    return MIXQ_OK;
}

#endif /* MIXQ_DEPTHWISE_CORE_H */
