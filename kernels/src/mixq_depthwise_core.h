/*
 * mixq_depthwise_core.h - depthwise convolution core, written once for all bitwidths.
 *
 * Weights [1, KH, KW, C_in * ch_mult] packed plainly (signed, little-end first); output channel
 * oc reads input channel oc / ch_mult. Channels are contiguous in NHWC, so the kernel keeps one
 * int32 accumulator per channel in scratch, adds every valid filter tap as a channel-wise
 * multiply-accumulate (on DSP cores for 8-bit operands: SXTB16 + SMLABB/SMLATT, 4 channels per
 * word), then requantizes the row. Scratch: 24 bytes per output channel.
 */
#ifndef MIXQ_DEPTHWISE_CORE_H
#define MIXQ_DEPTHWISE_CORE_H

#include "mixq_internal.h"
#include "mixq_requant_row.h"

MIXQ_INLINE int32_t mixq_dw_scratch(int32_t cout) { return cout * (int32_t)(sizeof(mixq_rq) + 8); }

MIXQ_INLINE int32_t mixq_dw_buffer_size(int32_t IB, int32_t WB, int32_t OB, const mixq_conv_params *p,
                                        const mixq_dims *in, const mixq_dims *filter, const mixq_dims *out) {
    (void)p;
    (void)in;
    (void)filter;
    if (!mixq_bits_ok(IB) || !mixq_bits_ok(WB) || !mixq_bits_ok(OB) || out == 0 || out->c <= 0) {
        return -1;
    }
    return mixq_dw_scratch(out->c);
}

/* acc[c] += (x[c] - zp) * w[c] for the n channels of one filter tap (ch_mult == 1). */
MIXQ_INLINE void mixq_dw_tap(int32_t IB, int32_t WB, const uint8_t *in, int32_t xbase, const uint8_t *w,
                             int32_t wbase, int32_t n, int32_t zp, int32_t *acc) {
    int32_t c = 0;
#if MIXQ_DSP
    if (IB == 8 && WB == 8) {
        const uint32_t off = (uint32_t)(uint16_t)(int16_t)(-zp) * 0x00010001u;
        for (; c + 4 <= n; c += 4) {
            const uint32_t x = mixq_load_u32(in + xbase + c), wv = mixq_load_u32(w + wbase + c);
            const int32_t xe = __sadd16((int16x2_t)__sxtb16(x), (int16x2_t)off);
            const int32_t xo = __sadd16((int16x2_t)mixq_sxtb16_ror8(x), (int16x2_t)off);
            const int32_t we = (int32_t)__sxtb16(wv), wo = (int32_t)mixq_sxtb16_ror8(wv);
            acc[c] = __smlabb(xe, we, acc[c]);
            acc[c + 1] = __smlabb(xo, wo, acc[c + 1]);
            acc[c + 2] = __smlatt(xe, we, acc[c + 2]);
            acc[c + 3] = __smlatt(xo, wo, acc[c + 3]);
        }
    }
#endif
    for (; c < n; c++) {
        acc[c] += (mixq_get_act(in, xbase + c, IB) - zp) * mixq_get_dw_weight(w, wbase + c, WB);
    }
}

MIXQ_INLINE mixq_status mixq_dw_run(int32_t IB, int32_t WB, int32_t OB, const mixq_context *ctx,
                                    const mixq_conv_params *p, const mixq_per_channel_quant *q,
                                    const mixq_dims *in_dims, const void *in_v, const mixq_dims *filter_dims,
                                    const void *filter_v, const int32_t *bias, const mixq_dims *out_dims,
                                    void *out_v) {
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
    for (int32_t c = 0; c < cout; c++) {
        if (q->multiplier[c] < 0 || q->shift[c] < -31 || q->shift[c] > 30) {
            return MIXQ_ERR_ARG;
        }
    }
    if (ctx == 0 || ctx->buf == 0 || ((uintptr_t)ctx->buf & 3u) != 0 || ctx->size < mixq_dw_scratch(cout)) {
        return MIXQ_ERR_SCRATCH;
    }
    const uint8_t *in = (const uint8_t *)in_v;
    const uint8_t *w = (const uint8_t *)filter_v;
    uint8_t *out = (uint8_t *)out_v;
    mixq_rq *rq = (mixq_rq *)ctx->buf;
    int32_t *cst = (int32_t *)(void *)(rq + cout);
    int32_t *acc = cst + cout;
    mixq_rq_fill(cout, q, rq);
    for (int32_t c = 0; c < cout; c++) {
        cst[c] = bias ? bias[c] : 0;
    }
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < oh; oy++) {
            for (int32_t ox = 0; ox < ow; ox++) {
                memset(acc, 0, (size_t)cout * sizeof(int32_t));
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
                        const int32_t xbase = ((b * ih + iy) * iw + ix) * cin;
                        const int32_t wbase = (ky * kw + kx) * cout;
                        if (mult == 1) {
                            mixq_dw_tap(IB, WB, in, xbase, w, wbase, cout, zp, acc);
                        } else {
                            for (int32_t oc = 0; oc < cout; oc++) {
                                acc[oc] += (mixq_get_act(in, xbase + oc / mult, IB) - zp) *
                                           mixq_get_dw_weight(w, wbase + oc, WB);
                            }
                        }
                    }
                }
                mixq_requant_row(OB, cout, acc, cst, rq, 0, ozp, lo, hi, out, ((b * oh + oy) * ow + ox) * cout);
            }
        }
    }
    return MIXQ_OK;
}

#endif /* MIXQ_DEPTHWISE_CORE_H */
