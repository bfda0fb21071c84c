/*
 * mixq_depthwise_core.h - depthwise convolution core, written once for all bitwidths.
 *
 * Weights [1, KH, KW, C_in * ch_mult] packed plainly (signed, little-end first); output channel
 * oc reads input channel oc / ch_mult. Per output pixel the valid filter taps are listed once, then
 * each channel (on DSP cores with 8-bit operands: each group of 4 channels, SXTB16 +
 * SMLABB/SMLATT with the accumulators in registers) runs over the taps and is requantized.
 * Scratch: 20 bytes per output channel and 8 per filter tap.
 */
#ifndef MIXQ_DEPTHWISE_CORE_H
#define MIXQ_DEPTHWISE_CORE_H

#include "mixq_internal.h"
#include "mixq_requant_row.h"

/* requantization parameters and bias per channel, (input, weight) offsets of the valid taps */
MIXQ_INLINE int32_t mixq_dw_scratch(int32_t cout, int32_t taps) {
    return cout * (int32_t)(sizeof(mixq_rq) + 4) + 8 * taps;
}

MIXQ_INLINE int32_t mixq_dw_buffer_size(int32_t IB, int32_t WB, int32_t OB, const mixq_conv_params *p,
                                        const mixq_dims *in, const mixq_dims *filter, const mixq_dims *out) {
    (void)p;
    (void)in;
    if (!mixq_bits_ok(IB) || !mixq_bits_ok(WB) || !mixq_bits_ok(OB) || out == 0 || out->c <= 0 || filter == 0 ||
        filter->h <= 0 || filter->w <= 0) {
        return -1;
    }
    return mixq_dw_scratch(out->c, filter->h * filter->w);
}

/* One output pixel: channels c of every valid tap (taps[2t] = input element offset of channel 0,
 * taps[2t + 1] = weight element offset), requantized and stored at output element o. */
MIXQ_INLINE void mixq_dw_pixel(int32_t IB, int32_t WB, int32_t OB, const uint8_t *in, const uint8_t *w,
                               const int32_t *taps, int32_t ntaps, int32_t cout, int32_t mult, int32_t zp,
                               const int32_t *cst, const mixq_rq *rq, int32_t ozp, int32_t lo, int32_t hi,
                               uint8_t *out, int32_t o) {
    int32_t c = 0;
#if MIXQ_DSP
    if (IB == 8 && WB == 8 && OB == 8 && mult == 1) {
        const uint32_t off = (uint32_t)(uint16_t)(int16_t)(-zp) * 0x00010001u;
        for (; c + 4 <= cout; c += 4) {
            int32_t a0 = cst[c], a1 = cst[c + 1], a2 = cst[c + 2], a3 = cst[c + 3];
            for (int32_t t = 0; t < ntaps; t++) {
                const uint32_t x = mixq_load_u32(in + taps[2 * t] + c), wv = mixq_load_u32(w + taps[2 * t + 1] + c);
                const int32_t xe = __sadd16((int16x2_t)__sxtb16(x), (int16x2_t)off);
                const int32_t xo = __sadd16((int16x2_t)mixq_sxtb16_ror8(x), (int16x2_t)off);
                const int32_t we = (int32_t)__sxtb16(wv), wo = (int32_t)mixq_sxtb16_ror8(wv);
                a0 = __smlabb(xe, we, a0);
                a1 = __smlabb(xo, wo, a1);
                a2 = __smlatt(xe, we, a2);
                a3 = __smlatt(xo, wo, a3);
            }
            int8_t *dst = (int8_t *)out + o + c;
            dst[0] = (int8_t)mixq_clamp(mixq_rq_apply(a0, &rq[c]) + ozp, lo, hi);
            dst[1] = (int8_t)mixq_clamp(mixq_rq_apply(a1, &rq[c + 1]) + ozp, lo, hi);
            dst[2] = (int8_t)mixq_clamp(mixq_rq_apply(a2, &rq[c + 2]) + ozp, lo, hi);
            dst[3] = (int8_t)mixq_clamp(mixq_rq_apply(a3, &rq[c + 3]) + ozp, lo, hi);
        }
    }
#endif
    for (; c < cout; c++) {
        int32_t acc = cst[c];
        const int32_t ci = mult == 1 ? c : c / mult;
        for (int32_t t = 0; t < ntaps; t++) {
            acc += (mixq_get_act(in, taps[2 * t] + ci, IB) - zp) * mixq_get_dw_weight(w, taps[2 * t + 1] + c, WB);
        }
        mixq_put_act(out, o + c, OB, mixq_clamp(mixq_rq_apply(acc, &rq[c]) + ozp, lo, hi));
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
    if (ctx == 0 || ctx->buf == 0 || ((uintptr_t)ctx->buf & 3u) != 0 || ctx->size < mixq_dw_scratch(cout, kh * kw)) {
        return MIXQ_ERR_SCRATCH;
    }
    const uint8_t *in = (const uint8_t *)in_v;
    const uint8_t *w = (const uint8_t *)filter_v;
    uint8_t *out = (uint8_t *)out_v;
    mixq_rq *rq = (mixq_rq *)ctx->buf;
    int32_t *cst = (int32_t *)(void *)(rq + cout);
    int32_t *taps = cst + cout;
    (void)mixq_rq_fill(cout, q, rq);
    for (int32_t c = 0; c < cout; c++) {
        cst[c] = bias ? bias[c] : 0;
    }
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < oh; oy++) {
            for (int32_t ox = 0; ox < ow; ox++) {
                int32_t ntaps = 0;
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
                        taps[2 * ntaps] = ((b * ih + iy) * iw + ix) * cin;
                        taps[2 * ntaps + 1] = (ky * kw + kx) * cout;
                        ntaps++;
                    }
                }
                mixq_dw_pixel(IB, WB, OB, in, w, taps, ntaps, cout, mult, zp, cst, rq, ozp, lo, hi, out,
                              ((b * oh + oy) * ow + ox) * cout);
            }
        }
    }
    return MIXQ_OK;
}

#endif /* MIXQ_DEPTHWISE_CORE_H */
