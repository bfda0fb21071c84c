/*
 * mixq_depthwise_core.h - depthwise convolution core, written once for all bitwidths.
 *
 * Weights [1, KH, KW, C_in * ch_mult] packed plainly (signed, little-end first); output channel
 * oc reads input channel oc / ch_mult. Per output pixel the valid filter taps are listed once, then
 * each channel (on DSP cores, ch_mult 1: each group of 4 channels, activations widened to int16
 * lanes (x - zp) by SXTB16 or masks, weights by SXTB16 at 8 bits or re-ordered once per call into
 * int16 lanes in scratch, SMLABB/SMLATT with the accumulators in registers) runs over the taps and
 * is requantized. Scratch: 20 bytes per output channel, 12 per filter tap and 2 per filter weight
 * (channels padded to 4).
 */
#ifndef MIXQ_DEPTHWISE_CORE_H
#define MIXQ_DEPTHWISE_CORE_H

#include "mixq_internal.h"
#include "mixq_requant_row.h"

/* Channels padded to a multiple of 4 (stride of one tap in the re-ordered int16 weights). */
MIXQ_INLINE int32_t mixq_dw_cpad4(int32_t cout) { return (cout + 3) & ~3; }

/* requantization parameters and bias per channel, the int16 weights re-ordered for the DSP path
 * (2 bytes per tap and channel, channels padded to 4), one input pointer per tap (8 bytes
 * reserved), (input, weight) offsets of the valid taps, one row of accumulators and one input
 * pixel of zero points (padding of the DSP path). The same size on every build. */
MIXQ_INLINE int32_t mixq_dw_scratch(int32_t cout, int32_t taps) {
    const int32_t cpad4 = mixq_dw_cpad4(cout);
    return cout * (int32_t)(sizeof(mixq_rq) + 4) + 2 * taps * cpad4 + 16 * taps + 5 * cpad4;
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

/* The DSP path runs groups of 4 channels when ch_mult == 1 and every pixel starts on a byte. */
MIXQ_INLINE int32_t mixq_dw_fast(int32_t IB, int32_t cin, int32_t mult) {
    return MIXQ_DSP && mult == 1 && (IB == 8 || (IB == 4 && (cin & 1) == 0) || (IB == 2 && (cin & 3) == 0));
}

#if MIXQ_DSP
#endif

#if MIXQ_DSP
/* Channels c..c+3 of one output pixel over all KT taps: ptr[t] = input pixel of tap t (the zero
 * point pixel for padding), wg = the group's re-ordered int16 weights (KT x 4), acc preloaded with
 * bias - zp sum(w). Sums of x * w: the zero points of padding taps cancel against the constant. */
MIXQ_INLINE void mixq_dw_group(int32_t IB, int32_t KT, const uint8_t *const *ptr, int32_t cb, const uint32_t *wg,
                               int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3) {
    int32_t s0 = *a0, s1 = *a1, s2 = *a2, s3 = *a3;
    for (int32_t t = 0; t < KT; t++) {
        const uint8_t *ip = ptr[t] + cb;
        uint32_t xe, xo;
        if (IB == 8) {
            const uint32_t x = mixq_load_u32(ip);
            xe = __sxtb16(x);
            xo = mixq_sxtb16_ror8(x);
        } else if (IB == 4) {
            uint16_t h;
            memcpy(&h, ip, 2);
            const uint32_t v = (uint32_t)h | ((uint32_t)h << 8); /* bytes 0 and 2: x0 | x1 << 4, x2 | x3 << 4 */
            xe = v & 0x000F000Fu;
            xo = (v >> 4) & 0x000F000Fu;
        } else {
            const uint32_t bt = ip[0];
            const uint32_t v = bt | (bt << 12); /* x0 at bit 0, x1 at 2, x2 at 16, x3 at 18 */
            xe = v & 0x00030003u;
            xo = (v >> 2) & 0x00030003u;
        }
        const uint32_t we = wg[2 * t], wo = wg[2 * t + 1];
        s0 = __smlabb((int16x2_t)xe, (int16x2_t)we, s0);
        s1 = __smlabb((int16x2_t)xo, (int16x2_t)wo, s1);
        s2 = __smlatt((int16x2_t)xe, (int16x2_t)we, s2);
        s3 = __smlatt((int16x2_t)xo, (int16x2_t)wo, s3);
    }
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
}

/* Four channels k, k + 1, k + H, k + 1 + H of a word group of sub-byte inputs (H = 16 / IB: one
 * 32-bit word holds 2H packed activations, lanes (x_j, x_{j+H}) = (v >> j IB) & mask) over all KT
 * taps; wg = the pass's lane words (w_k, w_{k+H}), (w_{k+1}, w_{k+1+H}), KT x 2. */
MIXQ_INLINE void mixq_dw_pass(int32_t IB, int32_t KT, int32_t k, const uint8_t *const *ptr, int32_t cb,
                              const uint32_t *wg, int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3) {
    int32_t s0 = *a0, s1 = *a1, s2 = *a2, s3 = *a3;
    const uint32_t mask = IB == 4 ? 0x000F000Fu : 0x00030003u;
    const uint8_t *const *pp = ptr;
    const uint32_t *wp = wg;
    for (int32_t t = 0; t < KT; t++) {
        /* per tap: 2 LDR, 2 AND with a shifted operand, LDRD, 4 multiply-accumulates (register
         * allocation pinned by the assembly: the C form spills) */
        uint32_t v, xo, wa, wb;
        if (k == 0) {
            __asm__("ldr %[v], [%[pp]], #4\n\t"
                    "ldr %[v], [%[v], %[cb]]\n\t"
                    "and %[xo], %[m], %[v], lsr %[s1]\n\t"
                    "and %[v], %[m], %[v]\n\t"
                    "ldrd %[wa], %[wb], [%[wp]], #8\n\t"
                    "smlabb %[s0], %[v], %[wa], %[s0]\n\t"
                    "smlatt %[s2], %[v], %[wa], %[s2]\n\t"
                    "smlabb %[s1r], %[xo], %[wb], %[s1r]\n\t"
                    "smlatt %[s3], %[xo], %[wb], %[s3]"
                    : [v] "=&r"(v), [xo] "=&r"(xo), [wa] "=&r"(wa), [wb] "=&r"(wb), [s0] "+r"(s0), [s1r] "+r"(s1),
                      [s2] "+r"(s2), [s3] "+r"(s3), [pp] "+r"(pp), [wp] "+r"(wp)
                    : [cb] "r"(cb), [m] "r"(mask), [s1] "i"(IB)
                    : "memory");
        } else {
            __asm__("ldr %[v], [%[pp]], #4\n\t"
                    "ldr %[v], [%[v], %[cb]]\n\t"
                    "and %[xo], %[m], %[v], lsr %[s1]\n\t"
                    "and %[v], %[m], %[v], lsr %[s0s]\n\t"
                    "ldrd %[wa], %[wb], [%[wp]], #8\n\t"
                    "smlabb %[s0], %[v], %[wa], %[s0]\n\t"
                    "smlatt %[s2], %[v], %[wa], %[s2]\n\t"
                    "smlabb %[s1r], %[xo], %[wb], %[s1r]\n\t"
                    "smlatt %[s3], %[xo], %[wb], %[s3]"
                    : [v] "=&r"(v), [xo] "=&r"(xo), [wa] "=&r"(wa), [wb] "=&r"(wb), [s0] "+r"(s0), [s1r] "+r"(s1),
                      [s2] "+r"(s2), [s3] "+r"(s3), [pp] "+r"(pp), [wp] "+r"(wp)
                    : [cb] "r"(cb), [m] "r"(mask), [s1] "i"((k + 1) * IB), [s0s] "i"(k * IB)
                    : "memory");
        }
    }
    *a0 = s0;
    *a1 = s1;
    *a2 = s2;
    *a3 = s3;
}

/* Channel groups of one output pixel (nw channels in word groups of 32 / IB for sub-byte inputs,
 * then groups of 4 up to ncg): accumulators into accs[0..ncg), then one out-of-line requantization
 * of the row (mixq_requant_row) stores them at output element o. cst = bias - zp sum(w) per
 * channel; the weights of the group starting at channel c are at word kt c / 2 of ws. */
MIXQ_INLINE void mixq_dw_pixel_dsp(int32_t IB, int32_t OB, int32_t KT, const uint8_t *const *ptr, const uint32_t *ws,
                                   int32_t nw, int32_t ncg, const int32_t *cst, int32_t *accs, const mixq_rq *rq,
                                   int32_t ozp, int32_t lo, int32_t hi, int32_t mode, uint8_t *out, int32_t o) {
    int32_t c = 0;
    if (IB != 8) {
        const int32_t H = 16 / IB;
        for (; c < nw; c += 2 * H) {
#pragma GCC unroll 8
            for (int32_t k = 0; k < H; k += 2) {
                int32_t a[4] = {cst[c + k], cst[c + k + 1], cst[c + k + H], cst[c + k + 1 + H]};
                mixq_dw_pass(IB, KT, k, ptr, c * IB / 8, ws + KT * c / 2 + KT * k, &a[0], &a[1], &a[2], &a[3]);
                accs[c + k] = a[0];
                accs[c + k + 1] = a[1];
                accs[c + k + H] = a[2];
                accs[c + k + 1 + H] = a[3];
            }
        }
    }
    for (; c < ncg; c += 4) {
        int32_t a[4] = {cst[c], cst[c + 1], cst[c + 2], cst[c + 3]};
        mixq_dw_group(IB, KT, ptr, c * IB / 8, ws + KT * c / 2, &a[0], &a[1], &a[2], &a[3]);
        memcpy(accs + c, a, sizeof(a));
    }
    mixq_requant_row(OB, ncg, accs, rq, ozp, lo, hi, mode, out, o);
}
#endif

/* Channels c0.. of one output pixel, portable: every valid tap (taps[2t] = input element offset of
 * channel 0, taps[2t + 1] = weight element offset), requantized and stored at output element o. */
MIXQ_INLINE void mixq_dw_pixel(int32_t IB, int32_t WB, int32_t OB, const uint8_t *in, const uint8_t *w,
                               const int32_t *taps, int32_t ntaps, int32_t c0, int32_t cout, int32_t mult,
                               int32_t zp, const int32_t *cst, const mixq_rq *rq, int32_t ozp, int32_t lo,
                               int32_t hi, uint8_t *out, int32_t o) {
    for (int32_t c = c0; c < cout; c++) {
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
    const int32_t cpad4 = mixq_dw_cpad4(cout), kt = kh * kw;
    int16_t *ws = (int16_t *)(void *)(cst + cout);
    const uint8_t **ptr = (const uint8_t **)(void *)(ws + kt * cpad4);
    int32_t *taps = (int32_t *)(void *)((uint8_t *)ptr + 8 * kt);
    int32_t *accs = taps + 2 * kt;
    uint8_t *zrow = (uint8_t *)(accs + cpad4);
    int32_t mode = mixq_rq_fill(cout, q, rq);
    if (lo == mixq_act_lo(OB) && hi == mixq_act_hi(OB)) {
        mode |= MIXQ_RQ_FULL;
    }
    if (mode == MIXQ_RQ_FULL) {
        mode |= mixq_rq_r1(cout, rq);
    }
    if (mode == MIXQ_RQ_FULL) {
        mode |= MIXQ_RQ_ANY;
    }
    (void)mode;
    (void)accs;
    for (int32_t c = 0; c < cout; c++) {
        cst[c] = bias ? bias[c] : 0;
    }
    /* DSP path: channel groups [0, ncg) */
    const int32_t ncg = mixq_dw_fast(IB, cin, mult) ? (cout & ~3) : 0;
    const int32_t nw = IB == 8 ? 0 : ncg / (32 / IB) * (32 / IB);
    if (ncg > 0) {
        /* weights of group g, tap t as int16 lane words (w0, w2), (w1, w3) at ws[(g kt + t) 4];
         * cst = bias - zp sum(w); the zero point pixel stands for padding */
        for (int32_t c = 0; c < ncg; c++) {
            int32_t base; /* int16 index of tap 0 of channel c; the next tap is 4 further */
            if (c < nw) {
                /* word group of 2H channels, pass p = j / 2 (mod H) of 4 channels, tap k: lane words
                 * (w_{2p}, w_{2p+H}), (w_{2p+1}, w_{2p+1+H}) */
                const int32_t H = 16 / IB, g = c & ~(2 * H - 1), j = c - g, jj = j & (H - 1);
                base = kt * g + 2 * kt * (jj & ~1) + (jj & 1) * 2 + (j >= H);
            } else {
                const int32_t g = c & ~3, j = c - g; /* lane words (w0, w2), (w1, w3) */
                base = kt * g + (j & 1) * 2 + (j >> 1);
            }
            int16_t *d = ws + base;
            int32_t sum = 0;
            for (int32_t k = 0, idx = c; k < kt; k++, idx += cout) {
                const int32_t v = mixq_get_dw_weight(w, idx, WB);
                sum += v;
                d[4 * k] = (int16_t)v;
            }
            cst[c] -= zp * sum;
        }
        for (int32_t c = 0; c < cpad4; c++) {
            mixq_put_act(zrow, c, IB, zp);
        }
    }
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < oh; oy++) {
            for (int32_t ox = 0; ox < ow; ox++) {
                const int32_t o = ((b * oh + oy) * ow + ox) * cout;
#if MIXQ_DSP
                if (ncg > 0) {
                    for (int32_t ky = 0; ky < kh; ky++) {
                        const int32_t iy = oy * sh - ph + ky * dh;
                        for (int32_t kx = 0; kx < kw; kx++) {
                            const int32_t ix = ox * sw - pw + kx * dw;
                            ptr[ky * kw + kx] = (iy < 0 || iy >= ih || ix < 0 || ix >= iw)
                                                    ? zrow
                                                    : in + ((b * ih + iy) * iw + ix) * cin * IB / 8;
                        }
                    }
                    const uint32_t *wsw = (const uint32_t *)(const void *)ws;
                    if (kt == 9) {
                        mixq_dw_pixel_dsp(IB, OB, 9, ptr, wsw, nw, ncg, cst, accs, rq, ozp, lo, hi, mode, out, o);
                    } else {
                        mixq_dw_pixel_dsp(IB, OB, kt, ptr, wsw, nw, ncg, cst, accs, rq, ozp, lo, hi, mode, out, o);
                    }
                    if (ncg == cout) {
                        continue;
                    }
                }
#endif
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
                mixq_dw_pixel(IB, WB, OB, in, w, taps, ntaps, ncg, cout, mult, zp, cst, rq, ozp, lo, hi, out, o);
            }
        }
    }
    return MIXQ_OK;
}

#endif /* MIXQ_DEPTHWISE_CORE_H */
