/*
 * mixq_depthwise_core.h - depthwise convolution core, written once for all bitwidths.
 *
 * Weights [1, KH, KW, C_in * ch_mult] packed plainly (signed, little-end first); output channel
 * oc reads input channel oc / ch_mult.
 *
 * Portable path: per output pixel the valid taps are listed once, then each channel runs over them
 * and is requantized (TFLite's MultiplyByQuantizedMultiplier).
 *
 * DSP path (ch_mult 1, every pixel starting on a byte): passes of 4 channels (mixq_depthwise_dsp.h)
 * read a stream of per-pass constants written once per call (accumulator preload, int16 weight lane
 * words scaled by 2^e, requantization words), run all taps with the accumulators in registers
 * (padding taps read a pixel of zero points, so every pixel runs every tap with no bounds test;
 * interior pixels share one list of tap offsets) and requantize in registers with one SMMLAR per
 * output. Scratch: the stream (20 + 2 KT words per 4 channels), two tap-offset lists and the tap list
 * of the portable path (4 words per tap), and one pixel of zero points (C4 bytes).
 *
 * Three-taps path (4- / 2-bit activations and weights, 3x3, C % 8 == 0, whole range, negative
 * shifts): per filter row one SMLAD adds three products to a bit field (mixq_depthwise_dsp.h);
 * scratch: a stream of 8 words per channel and a ring of three rows of X words (ow x 8 words).
 * Horizontal stride 1 (mixq_dwq_*): one X word (P_p, P_p+2) per row serves both pixels of a pair;
 * 11-12 stream words per channel, a ring of (ow + 1) / 2 words per channel and row.
 */
#ifndef MIXQ_DEPTHWISE_CORE_H
#define MIXQ_DEPTHWISE_CORE_H

#include "mixq_depthwise_dsp.h"
#include "mixq_internal.h"

/* Channels padded to a multiple of 4. */
MIXQ_INLINE int32_t mixq_dw_cpad4(int32_t cout) { return (cout + 3) & ~3; }

/* The stream (C4 / 4 records of 20 + 2 KT words), the interior and border tap-offset lists (KT words
 * each), the portable tap list (2 KT words) and one input pixel of zero points (C4 bytes). The same
 * size on every build. */
MIXQ_INLINE int32_t mixq_dw_scratch(int32_t cout, int32_t taps) {
    const int32_t cpad4 = mixq_dw_cpad4(cout);
    return cpad4 * mixq_dw_rec_words(taps) + 16 * taps + cpad4;
}

/* Whether a call may take the packed-field path (given the DSP build, every shift negative, the
 * whole output range and the bounds): 4- or 2-bit activations and weights, 3x3 filter, horizontal
 * dilation 1, ch_mult 1, C a multiple of 8. */
MIXQ_INLINE int32_t mixq_dwp_shape_ok(int32_t IB, int32_t WB, int32_t kh, int32_t kw, int32_t dw, int32_t mult,
                                      int32_t cout) {
    return IB != 8 && WB != 8 && kh == 3 && kw == 3 && dw == 1 && mult == 1 && (cout & 7) == 0;
}

/* Channels per group of the packed-field path: all of them when the ring of three rows of X words
 * (12 bytes per channel and window, windows rounded up to even) fits in MIXQ_DWP_RING bytes,
 * otherwise as few groups as fit, of equal size (multiples of 8, at least 8). */
#define MIXQ_DWP_RING 6144
MIXQ_INLINE int32_t mixq_dwp_group(int32_t cout, int32_t ow) {
    const int32_t gmax = mixq_max_i32(MIXQ_DWP_RING / (96 * ((ow + 1) & ~1)) * 8, 8);
    const int32_t ng = (cout + gmax - 1) / gmax; /* groups, then channels spread evenly over them */
    return ((cout + ng - 1) / ng + 7) & ~7;
}

/* Scratch of the packed-field path with groups of g channels: the stream (at most 36 bytes per
 * channel), the ring (3 rows of g x (ow rounded up to even) words) and one pixel of zero points for
 * a group (g bytes). */
MIXQ_INLINE int32_t mixq_dwp_scratch_g(int32_t cout, int32_t ow, int32_t g) {
    return 36 * cout + 12 * ((ow + 1) & ~1) * g + g;
}

/* The scratch get_buffer_size asks for: groups of mixq_dwp_group channels. */
MIXQ_INLINE int32_t mixq_dwp_scratch(int32_t cout, int32_t ow) {
    return mixq_dwp_scratch_g(cout, ow, mixq_dwp_group(cout, ow));
}

/* The group a call runs with in `size` bytes of scratch: mixq_dwp_group's, or when that does not fit
 * the largest multiple of 8 below it that does (0: none). A call on a narrower tile than the layer
 * whose size was asked for (patch-based schedules) may get a larger default group than the layer's,
 * whose ring would not fit; the layer's group always fits then, since the ring shrinks with ow. */
MIXQ_INLINE int32_t mixq_dwp_fit_group(int32_t cout, int32_t ow, int32_t size) {
    int32_t g = mixq_dwp_group(cout, ow);
    while (g >= 8 && mixq_dwp_scratch_g(cout, ow, g) > size) {
        g -= 8;
    }
    return g >= 8 ? g : 0;
}

/* Scratch of the stride-1 pair-word path with groups of g channels: the stream (at most 48 bytes per
 * channel), the ring (3 rows of g words per pair of output columns) and the zero-point pixel. */
MIXQ_INLINE int32_t mixq_dwq_scratch_g(int32_t cout, int32_t ow, int32_t g) {
    return 48 * cout + 12 * ((ow + 1) >> 1) * g + g;
}

/* The group of the stride-1 path in `size` bytes of scratch: mixq_dwp_group's default or the largest
 * multiple of 8 below it that fits (0: none; the call then takes the three-taps path with its own
 * group). get_buffer_size asks for the three-taps path's figure, which holds this path's at the default
 * group whenever cout <= g ((ow + 1) / 2). */
MIXQ_INLINE int32_t mixq_dwq_fit_group(int32_t cout, int32_t ow, int32_t size) {
    int32_t g = mixq_dwp_group(cout, ow);
    while (g >= 8 && mixq_dwq_scratch_g(cout, ow, g) > size) {
        g -= 8;
    }
    return g >= 8 ? g : 0;
}

MIXQ_INLINE int32_t mixq_dw_buffer_size(int32_t IB, int32_t WB, int32_t OB, const mixq_conv_params *p,
                                        const mixq_dims *in, const mixq_dims *filter, const mixq_dims *out) {
    (void)in;
    if (!mixq_bits_ok(IB) || !mixq_bits_ok(WB) || !mixq_bits_ok(OB) || out == 0 || out->c <= 0 || filter == 0 ||
        filter->h <= 0 || filter->w <= 0) {
        return -1;
    }
    int32_t size = mixq_dw_scratch(out->c, filter->h * filter->w);
    if (p != 0 && out->w > 0 && mixq_dwp_shape_ok(IB, WB, filter->h, filter->w, p->dilation.w, p->ch_mult, out->c)) {
        size = mixq_max_i32(size, mixq_dwp_scratch(out->c, out->w));
    }
    return size;
}

/* The DSP path runs passes of 4 channels when ch_mult == 1 and every pixel starts on a byte. */
MIXQ_INLINE int32_t mixq_dw_fast(int32_t IB, int32_t cin, int32_t mult) {
    return MIXQ_DSP && mult == 1 && (IB == 8 || (IB == 4 && (cin & 1) == 0) || (IB == 2 && (cin & 3) == 0));
}

/* Pass record and slot (0..3 = a, b, c, d) of channel c < ncg in the DSP stream. 8-bit inputs:
 * passes of channels (c, c+1, c+2, c+3). Sub-byte inputs, channels below nw: word blocks of 2H
 * channels (H = 16 / IB), pass k = 0, 2, .. H - 2 of a block takes (k, k+1, k+H, k+1+H); then
 * passes of 4 channels (halfword / byte). */
MIXQ_INLINE void mixq_dw_slot(int32_t IB, int32_t c, int32_t nw, int32_t *rec, int32_t *j) {
    if (IB != 8 && c < nw) {
        const int32_t H = 16 / IB, i = c & (2 * H - 1), k = (i & (H - 1)) & ~1;
        *rec = (c / (2 * H)) * (H / 2) + k / 2;
        *j = (i & 1) | ((i >= H) << 1);
    } else {
        *rec = (c >> 2);
        *j = c & 3;
    }
}

#if MIXQ_DSP
/* Clamp of one requantized value: FULL: the whole output range (the record folds the zero point
 * in); otherwise the record folds output_zp - lo and the clamp is [0, span = hi - lo], then + lo. */
MIXQ_INLINE int32_t mixq_dw_clamp(int32_t OB, int32_t FULL, int32_t v, int32_t lo, int32_t span) {
    if (FULL) {
        return OB == 8 ? __ssat(v, 8) : (OB == 4 ? (int32_t)__usat(v, 4) : (int32_t)__usat(v, 2));
    }
    v = (int32_t)__usat(v, 8);
    v = v > span ? span : v;
    return v + lo;
}

/* One pass (channels at pos[0..3] from the block's first output element o) of one pixel: accumulate,
 * requantize, then store (8-bit) or OR into the block's packed bits pk (sub-byte outputs). *wpp
 * moves to the next record. */
MIXQ_INLINE void mixq_dw_pass(int32_t IB, int32_t OB, int32_t FULL, int32_t FAST, int32_t kind, int32_t S0,
                              int32_t KT, const int32_t *offs, uint32_t base, const uint32_t **wpp,
                              const int32_t *pos, int32_t lo, int32_t span, int32_t aligned, uint8_t *out, int32_t o,
                              uint64_t *pk) {
    int32_t acc[4];
    mixq_dw_taps(IB, kind, S0, KT, offs, base, wpp, acc);
    const uint32_t *rq = *wpp;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    MIXQ_DW_RQ(FAST, a0, rq, 0);
    MIXQ_DW_RQ(FAST, a1, rq, 16);
    MIXQ_DW_RQ(FAST, a2, rq, 32);
    MIXQ_DW_RQ(FAST, a3, rq, 48);
    *wpp = rq + 16;
    const int32_t v[4] = {mixq_dw_clamp(OB, FULL, a0, lo, span), mixq_dw_clamp(OB, FULL, a1, lo, span),
                          mixq_dw_clamp(OB, FULL, a2, lo, span), mixq_dw_clamp(OB, FULL, a3, lo, span)};
#pragma GCC unroll 4
    for (int32_t j = 0; j < 4; j++) {
        if (OB == 8) {
            ((int8_t *)out)[o + pos[j]] = (int8_t)v[j];
        } else if (aligned) {
            *pk |= (uint64_t)(uint32_t)v[j] << (pos[j] * OB);
        } else {
            mixq_put_act(out, o + pos[j], OB, v[j]);
        }
    }
}

/* Store the packed outputs of a block of n channels at output element o (o * OB a multiple of 8). */
MIXQ_INLINE void mixq_dw_store_block(int32_t OB, int32_t n, uint8_t *out, int32_t o, uint64_t pk) {
    uint8_t *d = out + o * OB / 8;
    const int32_t bytes = n * OB / 8;
    if (bytes >= 4) {
        mixq_store_u32(d, (uint32_t)pk);
        if (bytes == 8) {
            mixq_store_u32(d + 4, (uint32_t)(pk >> 32));
        }
    } else if (bytes == 2) {
        const uint16_t h = (uint16_t)pk;
        memcpy(d, &h, 2);
    } else {
        d[0] = (uint8_t)pk;
    }
}

/* Channels [0, ncg) of one output pixel on the DSP path; tl = address of the pixel's top-left tap
 * (outside the input for padding, never read there), offs = tap offsets from tl. */
MIXQ_INLINE void mixq_dw_pixel_dsp(int32_t IB, int32_t OB, int32_t FULL, int32_t FAST, int32_t KT, const int32_t *offs,
                                   uint32_t tl, const uint32_t *st, int32_t nw, int32_t ncg, int32_t lo, int32_t span,
                                   int32_t aligned, uint8_t *out, int32_t o) {
    int32_t c = 0;
    if (IB != 8) {
        const int32_t H = 16 / IB;
        for (; c < nw; c += 2 * H) {
            uint64_t pk = 0;
#pragma GCC unroll 8
            for (int32_t k = 0; k < H; k += 2) {
                const int32_t pos[4] = {k, k + 1, k + H, k + 1 + H};
                mixq_dw_pass(IB, OB, FULL, FAST, MIXQ_DW_WORD, k * IB, KT, offs, tl, &st, pos, lo, span, aligned,
                             out, o + c, &pk);
            }
            if (OB != 8 && aligned) {
                mixq_dw_store_block(OB, 2 * H, out, o + c, pk);
            }
            tl += 4;
        }
    }
    for (; c < ncg; c += 4) {
        uint64_t pk = 0;
        const int32_t pos[4] = {0, 1, 2, 3};
        const int32_t kind = IB == 8 ? MIXQ_DW_W8 : (IB == 4 ? MIXQ_DW_HALF : MIXQ_DW_BYTE);
        mixq_dw_pass(IB, OB, FULL, FAST, kind, 0, KT, offs, tl, &st, pos, lo, span, aligned, out, o + c, &pk);
        if (OB != 8 && aligned) {
            mixq_dw_store_block(OB, 4, out, o + c, pk);
        }
        tl += (uint32_t)(IB / 2);
    }
}

/* Whether channel c falls outside the DSP path's bounds (shift > 7, or sums that would leave int32
 * once scaled); b = |bias|, the rest as in mixq_dw_stream. */
MIXQ_INLINE int32_t mixq_dw_out_of_bounds(int32_t sh, int64_t b, int64_t xmax, int32_t z) {
    const int64_t lim = ((int64_t)1 << 31) - 1;
    const int32_t e = 1 + (sh > 0 ? sh : 0), r = sh < 0 ? -sh : 0;
    const int64_t bound = b + xmax; /* >= |x| */
    return sh > 7 || (bound << e) > lim ||
           (bound << (e - 1)) + 2 + (r > 0 ? ((int64_t)1 << (r - 1)) : 0) + ((int64_t)(z < 0 ? -z : z) << r) > lim;
}

/* Whether every channel of [0, ncg) is inside the DSP paths' bounds (mixq_dw_out_of_bounds; z = the
 * integer the requantization adds). Checked once with the largest |bias| (bmax), left and right shift
 * (shmax, shmin) of the call's channels (each term grows with them; the caller gathers them while it
 * validates the parameters), and channel by channel only when that check fails. */
MIXQ_INLINE int32_t mixq_dw_bounds_ok(int32_t IB, int32_t WB, int32_t KT, int32_t ncg, const int32_t *bias,
                                      const mixq_per_channel_quant *q, int32_t zp, int32_t z, int32_t shmin,
                                      int32_t shmax, uint32_t bmax) {
    const int64_t xmax = (int64_t)KT * (1 << (WB - 1)) * mixq_max_i32(mixq_act_hi(IB) - zp, zp - mixq_act_lo(IB));
    if (shmax > 7) {
        return 0;
    }
    /* worst case of both terms: largest left shift and largest right shift together */
    const int32_t e = 1 + (shmax > 0 ? shmax : 0), r = shmin < 0 ? -shmin : 0;
    const int64_t bound = (int64_t)bmax + xmax, lim = ((int64_t)1 << 31) - 1;
    if ((bound << e) <= lim &&
        (bound << (e - 1)) + 2 + (r > 0 ? ((int64_t)1 << (r - 1)) : 0) + ((int64_t)(z < 0 ? -z : z) << r) <= lim) {
        return 1;
    }
    for (int32_t c = 0; c < ncg; c++) {
        const int32_t b = bias ? bias[c] : 0;
        if (mixq_dw_out_of_bounds(q->shift[c], b < 0 ? -(int64_t)b : (int64_t)b, xmax, z)) {
            return 0;
        }
    }
    return 1;
}

/* Weights idx and idx + 1 (idx even, so that at 4 and 2 bits one byte holds both). */
MIXQ_INLINE void mixq_dw_wpair(int32_t WB, const uint8_t *w, int32_t idx, int32_t *v0, int32_t *v1) {
    if (WB == 8) {
        *v0 = (int8_t)w[idx];
        *v1 = (int8_t)w[idx + 1];
    } else if (WB == 4) {
        const uint32_t by = w[idx >> 1];
        *v0 = (int32_t)(by << 28) >> 28;
        *v1 = (int32_t)(by << 24) >> 28;
    } else {
        const uint32_t by = (uint32_t)w[idx >> 2] << (28 - 2 * (idx & 3)); /* the pair at bits 28..31 */
        *v0 = (int32_t)(by << 2) >> 30;
        *v1 = (int32_t)by >> 30;
    }
}

/* Fill the stream for channels [0, ncg); returns 0 when a channel falls outside the path's bounds
 * (mixq_dw_bounds_ok), in which case the portable path runs. Weights are decoded a pair of channels at a time (one byte
 * holds both at 4 and 2 bits when C is even), straight into their lane slots. */
MIXQ_INLINE int32_t mixq_dw_stream(int32_t IB, int32_t WB, int32_t FULL, int32_t KT, int32_t cout, int32_t ncg,
                                   int32_t nw, const uint8_t *w, const int32_t *bias,
                                   const mixq_per_channel_quant *q, int32_t zp, int32_t ozp, int32_t lo,
                                   int32_t shmin, int32_t shmax, uint32_t bmax, uint32_t *st) {
    const int32_t rw = mixq_dw_rec_words(KT);
    const int32_t z = FULL ? ozp : ozp - lo;
    if (!mixq_dw_bounds_ok(IB, WB, KT, ncg, bias, q, zp, z, shmin, shmax, bmax)) {
        return 0;
    }
    /* byte-wise decoding needs both weights of a channel pair in one byte at every tap */
    const int32_t pairs = WB == 8 || (cout & 1) == 0;
    for (int32_t c = 0; c < ncg; c += 2) {
        int32_t g, j;
        mixq_dw_slot(IB, c, nw, &g, &j); /* c even: j even, channel c + 1 takes slot j + 1 */
        uint32_t *rec = st + g * rw;
        int16_t *lanes = (int16_t *)(void *)(rec + 4) + (j >> 1);
        const int32_t sh0 = q->shift[c], sh1 = q->shift[c + 1];
        const int32_t e0 = 1 + (sh0 > 0 ? sh0 : 0), e1 = 1 + (sh1 > 0 ? sh1 : 0);
        int32_t sum0 = 0, sum1 = 0;
        if (pairs) {
            int32_t idx = c;
            for (int32_t t = 0; t < KT; t++, idx += cout) {
                int32_t v0, v1;
                mixq_dw_wpair(WB, w, idx, &v0, &v1);
                sum0 += v0;
                sum1 += v1;
                lanes[4 * t] = (int16_t)(v0 * (1 << e0));
                lanes[4 * t + 2] = (int16_t)(v1 * (1 << e1));
            }
        } else {
            for (int32_t t = 0, idx = c; t < KT; t++, idx += cout) {
                const int32_t v0 = mixq_get_dw_weight(w, idx, WB), v1 = mixq_get_dw_weight(w, idx + 1, WB);
                sum0 += v0;
                sum1 += v1;
                lanes[4 * t] = (int16_t)(v0 * (1 << e0));
                lanes[4 * t + 2] = (int16_t)(v1 * (1 << e1));
            }
        }
#pragma GCC unroll 2
        for (int32_t i = 0; i < 2; i++) {
            const int32_t sh = i ? sh1 : sh0, e = i ? e1 : e0, r = sh < 0 ? -sh : 0;
            const int32_t b = bias ? bias[c + i] : 0;
            rec[j + i] = (uint32_t)((b - zp * (i ? sum1 : sum0)) * (1 << e));
            uint32_t *rq = rec + 4 + 2 * KT + 4 * (j + i);
            rq[0] = (uint32_t)q->multiplier[c + i];
            rq[1] = (uint32_t)((r > 0 ? (1u << (r - 1)) : 0u) + ((uint32_t)z << r));
            rq[2] = (uint32_t)r;
            rq[3] = r > 0 ? 0xFFFFFFFFu : 0u;
        }
    }
    return 1;
}

/* ---- packed-field path (mixq_depthwise_dsp.h, kernels/README.md "Three taps per SMLAD") ---- */

/* Field offsets: LOFF >= -(low field), FOFF >= -F for 3 rows of 3 taps. */
MIXQ_INLINE int32_t mixq_dwp_loff(int32_t IB, int32_t WB) { return 3 * ((1 << IB) - 1) * (1 << (WB - 1)); }
MIXQ_INLINE int32_t mixq_dwp_foff(int32_t IB, int32_t WB) { return 3 * mixq_dwp_loff(IB, WB); }

/* Stream of the packed-field path: one record per channel (mixq_dwp_rec_words), chunks of 8
 * channels in the order 0, 4, 1, 5, 2, 6, 3, 7; requantization words of the call's mode (see
 * mixq_depthwise_dsp.h). The caller has checked the bounds and FULL. Weights are read a word of one
 * tap at a time: 8 channels (4-bit) or 16 (2-bit), so that the decoding is shifts of one register. */
MIXQ_INLINE void mixq_dwp_stream(int32_t IB, int32_t WB, int32_t mode, int32_t cout, const uint8_t *w,
                                 const int32_t *bias, const mixq_per_channel_quant *q, int32_t zp, int32_t ozp,
                                 uint32_t *st) {
    const int32_t rw = mixq_dwp_rec_words(mode), foff = mixq_dwp_foff(IB, WB);
    const uint32_t pre = (uint32_t)(mixq_dwp_loff(IB, WB) + foff * 2048);
    const int32_t tapbytes = cout * WB / 8; /* bytes of one tap over all channels */
    for (int32_t c8 = 0; c8 < cout; c8 += 8) {
        uint32_t wv[9]; /* the 8 channels' weights of each tap, WB bits each, little-end first */
        const uint8_t *wp = w + c8 * WB / 8;
        for (int32_t t = 0; t < 9; t++, wp += tapbytes) {
            if (WB == 4) {
                wv[t] = mixq_load_u32(wp);
            } else {
                uint16_t h;
                memcpy(&h, wp, 2);
                wv[t] = h;
            }
        }
        uint32_t *rec = st + c8 * rw;
#pragma GCC unroll 8
        for (int32_t i = 0; i < 8; i++, rec += rw) {
            const int32_t j = (i >> 1) + ((i & 1) << 2); /* slot i holds channel j */
            const int32_t c = c8 + j;
            int32_t v[9], sum = 0;
#pragma GCC unroll 9
            for (int32_t t = 0; t < 9; t++) {
                v[t] = (int32_t)(wv[t] << (32 - WB * (j + 1))) >> (32 - WB);
                sum += v[t];
            }
#pragma GCC unroll 3
            for (int32_t ky = 0; ky < 3; ky++) {
                rec[ky] = (uint32_t)(uint16_t)(v[3 * ky + 1] + v[3 * ky] * 2048) | ((uint32_t)v[3 * ky + 2] << 27);
            }
            rec[3] = pre;
            const int32_t sh = q->shift[c], r = sh < 0 ? -sh : 0, s = sh > 0 ? sh : 0;
            const uint32_t k = (bias ? (uint32_t)bias[c] : 0u) - (uint32_t)zp * (uint32_t)sum - (uint32_t)foff;
            const uint32_t rz = (r > 0 ? (1u << (r - 1)) : 0u) + ((uint32_t)ozp << r);
            if (mode == MIXQ_DWP_NEG) {
                rec[4] = 2u * k;
                rec[5] = (uint32_t)q->multiplier[c];
                rec[6] = rz;
                rec[7] = (uint32_t)r;
            } else {
                rec[4] = k << (s + 1);
                rec[5] = 2u << s;
                rec[6] = (uint32_t)q->multiplier[c];
                rec[7] = rz;
                if (mode == MIXQ_DWP_MIX) {
                    rec[8] = (uint32_t)r | (r > 0 ? 0x80000000u : 0u);
                }
            }
        }
    }
}

/* Activations of one pixel's chunk of 8 channels as u: (u >> (IB j)) & mask = (a_j, a_{j+4}). */
MIXQ_INLINE uint32_t mixq_dwp_load(int32_t IB, const uint8_t *px) {
    if (IB == 4) {
        return mixq_load_u32(px);
    }
    uint16_t h;
    memcpy(&h, px, 2);
    return (uint32_t)h | ((uint32_t)h << 8);
}

/* X words of one window start for the nch chunks of a group: pa, pb, pc = the group's first byte
 * in the window's three columns (the zero-point pixel for columns outside the input), X = the
 * first chunk's 8 words; chunks are 16 words apart (a block holds the window pair q, q + 1 of one
 * chunk, see mixq_dwp_run). Per chunk: three loads (2-bit: halfword h as h | h << 8), then per pair
 * of channels (j, j + 4) three masks ((u >> IB j) & (0x000F000F or 0x00030003) = (a_j, a_j+4)), one
 * ADD (a_p + a_p+1 2^11 of both), PKHBT / PKHTB and one STRD: the words X_j, X_j+4. */
MIXQ_INLINE void mixq_dwp_win(int32_t IB, const uint8_t *pa, const uint8_t *pb, const uint8_t *pc, uint32_t *X,
                              int32_t nch) {
    const uint32_t m = IB == 4 ? 0x000F000Fu : 0x00030003u;
    uint32_t ua, ub, uc, la, lb, lc;
#define MIXQ_DWP_J(S, OFF)                                                   \
    "and %[la], %[m], %[ua], lsr #" S "\n\t"                                 \
    "and %[lb], %[m], %[ub], lsr #" S "\n\t"                                 \
    "and %[lc], %[m], %[uc], lsr #" S "\n\t"                                 \
    "add %[la], %[la], %[lb], lsl #11\n\t"                                   \
    "pkhbt %[lb], %[la], %[lc], lsl #16\n\t"                                 \
    "pkhtb %[lc], %[lc], %[la], asr #16\n\t"                                 \
    "strd %[lb], %[lc], [%[X], #" OFF "]\n\t"
#define MIXQ_DWP_J0                                                          \
    "and %[la], %[m], %[ua]\n\t"                                             \
    "and %[lb], %[m], %[ub]\n\t"                                             \
    "and %[lc], %[m], %[uc]\n\t"                                             \
    "add %[la], %[la], %[lb], lsl #11\n\t"                                   \
    "pkhbt %[lb], %[la], %[lc], lsl #16\n\t"                                 \
    "pkhtb %[lc], %[lc], %[la], asr #16\n\t"                                 \
    "strd %[lb], %[lc], [%[X]], #64\n\t"
#define MIXQ_DWP_XOPS                                                                              \
    : [ua] "=&r"(ua), [ub] "=&r"(ub), [uc] "=&r"(uc), [la] "=&r"(la), [lb] "=&r"(lb), [lc] "=&r"(lc), \
      [pa] "+r"(pa), [pb] "+r"(pb), [pc] "+r"(pc), [X] "+r"(X), [n] "+r"(nch)                      \
    : [m] "r"(m)                                                                                   \
    : "cc", "memory"
    if (IB == 4) {
        __asm__ volatile("1:\n\t"
                         "ldr %[ua], [%[pa]], #4\n\t"
                         "ldr %[ub], [%[pb]], #4\n\t"
                         "ldr %[uc], [%[pc]], #4\n\t" MIXQ_DWP_J("4", "8") MIXQ_DWP_J("8", "16")
                             MIXQ_DWP_J("12", "24") MIXQ_DWP_J0 "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t" MIXQ_DWP_XOPS);
    } else {
        __asm__ volatile("1:\n\t"
                         "ldrh %[ua], [%[pa]], #2\n\t"
                         "ldrh %[ub], [%[pb]], #2\n\t"
                         "ldrh %[uc], [%[pc]], #2\n\t"
                         "orr %[ua], %[ua], %[ua], lsl #8\n\t"
                         "orr %[ub], %[ub], %[ub], lsl #8\n\t"
                         "orr %[uc], %[uc], %[uc], lsl #8\n\t" MIXQ_DWP_J("2", "8") MIXQ_DWP_J("4", "16")
                             MIXQ_DWP_J("6", "24") MIXQ_DWP_J0 "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t" MIXQ_DWP_XOPS);
    }
#undef MIXQ_DWP_J
#undef MIXQ_DWP_J0
#undef MIXQ_DWP_XOPS
}

/* One chunk (8 channels), interior windows, two per iteration (q even: the block of the pair
 * (q, q + 1) holds the chunk's 8 words of q, then those of q + 1; the next block is xs bytes on):
 * pa = window q's first column, columns ps bytes apart, windows sw ps bytes apart (sw = 1, 2:
 * the step is ps or 2 ps, so no register of its own). */
MIXQ_INLINE void mixq_dwp_win2(int32_t IB, int32_t SW, const uint8_t *pa, int32_t ps, uint32_t *X, int32_t xs,
                               int32_t npairs) {
    const uint32_t m = IB == 4 ? 0x000F000Fu : 0x00030003u;
    const int32_t ps2 = 2 * ps;
    uint32_t ua, ub, uc, la, lb, lc;
#define MIXQ_DWP_J(S, OFF)                                                   \
    "and %[la], %[m], %[ua], lsr #" S "\n\t"                                 \
    "and %[lb], %[m], %[ub], lsr #" S "\n\t"                                 \
    "and %[lc], %[m], %[uc], lsr #" S "\n\t"                                 \
    "add %[la], %[la], %[lb], lsl #11\n\t"                                   \
    "pkhbt %[lb], %[la], %[lc], lsl #16\n\t"                                 \
    "pkhtb %[lc], %[lc], %[la], asr #16\n\t"                                 \
    "strd %[lb], %[lc], [%[X], #" OFF "]\n\t"
#define MIXQ_DWP_J0(OFF)                                                     \
    "and %[la], %[m], %[ua]\n\t"                                             \
    "and %[lb], %[m], %[ub]\n\t"                                             \
    "and %[lc], %[m], %[uc]\n\t"                                             \
    "add %[la], %[la], %[lb], lsl #11\n\t"                                   \
    "pkhbt %[lb], %[la], %[lc], lsl #16\n\t"                                 \
    "pkhtb %[lc], %[lc], %[la], asr #16\n\t"                                 \
    "strd %[lb], %[lc], [%[X], #" OFF "]\n\t"
#define MIXQ_DWP_LD4 "ldr %[ua], [%[pa]]\n\t" "ldr %[ub], [%[pa], %[ps]]\n\t" "ldr %[uc], [%[pa], %[ps2]]\n\t"
#define MIXQ_DWP_LD2                                                                                  \
    "ldrh %[ua], [%[pa]]\n\t" "ldrh %[ub], [%[pa], %[ps]]\n\t" "ldrh %[uc], [%[pa], %[ps2]]\n\t"        \
    "orr %[ua], %[ua], %[ua], lsl #8\n\t" "orr %[ub], %[ub], %[ub], lsl #8\n\t"                       \
    "orr %[uc], %[uc], %[uc], lsl #8\n\t"
#define MIXQ_DWP_W4(B) MIXQ_DWP_J0(#B) MIXQ_DWP_J("4", #B "+8") MIXQ_DWP_J("8", #B "+16") MIXQ_DWP_J("12", #B "+24")
#define MIXQ_DWP_W2(B) MIXQ_DWP_J0(#B) MIXQ_DWP_J("2", #B "+8") MIXQ_DWP_J("4", #B "+16") MIXQ_DWP_J("6", #B "+24")
#define MIXQ_DWP_XOPS                                                                              \
    : [ua] "=&r"(ua), [ub] "=&r"(ub), [uc] "=&r"(uc), [la] "=&r"(la), [lb] "=&r"(lb), [lc] "=&r"(lc), \
      [pa] "+r"(pa), [X] "+r"(X), [n] "+r"(npairs)                                                 \
    : [m] "r"(m), [ps] "r"(ps), [ps2] "r"(ps2), [xs] "r"(xs)                                       \
    : "cc", "memory"
/* One loop over interior window pairs: LD/W convert one window, PS names the stride operand. */
#define MIXQ_DWP_XLOOP(LD, W, PS)                                                                   \
    __asm__ volatile("1:\n\t" LD W(0) "add %[pa], %[pa], %[" PS "]\n\t" LD W(32)                  \
                     "add %[pa], %[pa], %[" PS "]\n\t"                                              \
                     "add %[X], %[X], %[xs]\n\t"                                                   \
                     "subs %[n], %[n], #1\n\t"                                                     \
                     "bne 1b\n\t" MIXQ_DWP_XOPS)
    if (IB == 4 && SW == 1) {
        MIXQ_DWP_XLOOP(MIXQ_DWP_LD4, MIXQ_DWP_W4, "ps");
    } else if (IB == 4) {
        MIXQ_DWP_XLOOP(MIXQ_DWP_LD4, MIXQ_DWP_W4, "ps2");
    } else if (SW == 1) {
        MIXQ_DWP_XLOOP(MIXQ_DWP_LD2, MIXQ_DWP_W2, "ps");
    } else {
        MIXQ_DWP_XLOOP(MIXQ_DWP_LD2, MIXQ_DWP_W2, "ps2");
    }
#undef MIXQ_DWP_XLOOP
#undef MIXQ_DWP_J
#undef MIXQ_DWP_J0
#undef MIXQ_DWP_LD4
#undef MIXQ_DWP_LD2
#undef MIXQ_DWP_W4
#undef MIXQ_DWP_W2
#undef MIXQ_DWP_XOPS
}

/* X words of one input row of a group (row = the group's first byte in the row, 0 for a padding
 * row) at the ow window starts p = q sw - pw; columns outside the input read zpix (the group's
 * zero-point pixel). Interior windows q in [q0, q1) step through the row. */
MIXQ_INLINE void mixq_dwp_row(int32_t IB, uint32_t *X, const uint8_t *row, int32_t iw, int32_t ps, int32_t ow,
                              int32_t sw, int32_t pw, int32_t nch, const uint8_t *zpix) {
    const int32_t blk = nch * 16; /* words of one block (a window pair of every chunk) */
    if (row == 0) { /* a padding row: every X word is (zp + zp 2^11, zp) */
        const uint32_t zp = zpix[0] & (IB == 4 ? 0xFu : 0x3u), xw = zp * 2049u | zp << 16;
        uint32_t *end = X + ((ow + 1) >> 1) * blk; /* a multiple of 16 words */
        __asm__ volatile("mov r8, %[w]\n\t"
                         "mov r9, %[w]\n\t"
                         "mov r10, %[w]\n\t"
                         "mov r11, %[w]\n\t"
                         "1:\n\t" /* 16 words per iteration: four STM */
                         "stmia %[x]!, {r8, r9, r10, r11}\n\t"
                         "stmia %[x]!, {r8, r9, r10, r11}\n\t"
                         "stmia %[x]!, {r8, r9, r10, r11}\n\t"
                         "stmia %[x]!, {r8, r9, r10, r11}\n\t"
                         "cmp %[x], %[e]\n\t"
                         "bcc 1b"
                         : [x] "+r"(X)
                         : [w] "r"(xw), [e] "r"(end)
                         : "r8", "r9", "r10", "r11", "cc", "memory");
        return;
    }
    int32_t q0 = 0, q1 = 0;
    if (row != 0) {
        q0 = mixq_min_i32((pw + sw - 1) / sw, ow);
        q1 = mixq_max_i32(q0, mixq_min_i32(ow, iw - 3 + pw >= 0 ? (iw - 3 + pw) / sw + 1 : 0));
    }
    for (int32_t q = 0, p = -pw; q < ow; q++, p += sw) {
        if (q == q0 && q1 > q0 && sw <= 2) {
            /* interior: an odd first window alone, then pairs chunk by chunk, then an odd last one */
            if (q & 1) {
                const uint8_t *c0 = row + p * ps;
                mixq_dwp_win(IB, c0, c0 + ps, c0 + 2 * ps, X + (q >> 1) * blk + 8, nch);
                q++;
                p += sw;
            }
            const int32_t np = (q1 - q) >> 1;
            if (np > 0 && 3 * np >= nch) { /* else the per-window calls cost less (few windows) */
                const uint8_t *c0 = row + p * ps;
                uint32_t *xk = X + (q >> 1) * blk;
                for (int32_t k = 0; k < nch; k++, c0 += IB, xk += 16) {
                    if (sw == 1) {
                        mixq_dwp_win2(IB, 1, c0, ps, xk, blk * 4, np);
                    } else {
                        mixq_dwp_win2(IB, 2, c0, ps, xk, blk * 4, np);
                    }
                }
                q += 2 * np;
                p += 2 * np * sw;
            }
            for (; q < q1; q++, p += sw) {
                const uint8_t *c0 = row + p * ps;
                mixq_dwp_win(IB, c0, c0 + ps, c0 + 2 * ps, X + (q >> 1) * blk + (q & 1) * 8, nch);
            }
            q--;
            p -= sw;
            continue;
        }
        const uint8_t *c0 = row == 0 || p < 0 || p >= iw ? zpix : row + p * ps;
        const uint8_t *c1 = row == 0 || p + 1 < 0 || p + 1 >= iw ? zpix : row + (p + 1) * ps;
        const uint8_t *c2 = row == 0 || p + 2 < 0 || p + 2 >= iw ? zpix : row + (p + 2) * ps;
        mixq_dwp_win(IB, c0, c1, c2, X + (q >> 1) * blk + (q & 1) * 8, nch);
    }
}

/* The whole call on the packed-field path: groups of G channels (mixq_dwp_fit_group); per group a ring of
 * three rows of X words (each input row converted once per group), then every output pixel runs the
 * group's chunks of 8 channels back to back. */
MIXQ_INLINE void mixq_dwp_run(int32_t IB, int32_t OB, int32_t mode, const uint8_t *in, uint8_t *out,
                              const uint32_t *st, uint32_t *ring, int32_t n, int32_t ih, int32_t iw, int32_t cout,
                              int32_t oh, int32_t ow, int32_t sh, int32_t sw, int32_t ph, int32_t pw, int32_t dh,
                              int32_t zp, int32_t G) {
    const int32_t ps = cout * IB / 8, rw = mixq_dwp_rec_words(mode);
    const int32_t opix = cout * OB / 8, rowwords = ((ow + 1) & ~1) * G;
    uint8_t *zpix = (uint8_t *)(ring + 3 * rowwords);
    memset(zpix, (int)(IB == 4 ? (uint32_t)zp * 0x11u : (uint32_t)zp * 0x55u), (size_t)(G * IB / 8));
    for (int32_t b = 0; b < n; b++) {
        for (int32_t g0 = 0; g0 < cout; g0 += G) {
            const int32_t gc = mixq_min_i32(G, cout - g0), nch = gc / 8;
            int32_t tag[3] = {INT32_MIN, INT32_MIN, INT32_MIN};
            const uint32_t *stg = st + g0 * rw;
            const uint8_t *inb = in + (b * ih * iw) * ps + g0 * IB / 8;
            uint8_t *o = out + ((b * oh * ow) * cout + g0) * OB / 8;
            for (int32_t oy = 0; oy < oh; oy++) {
                const int32_t iy0 = oy * sh - ph;
                int32_t use[3];
                for (int32_t ky = 0; ky < 3; ky++) {
                    const int32_t iy = iy0 + ky * dh;
                    use[ky] = tag[0] == iy ? 0 : (tag[1] == iy ? 1 : (tag[2] == iy ? 2 : -1));
                }
                for (int32_t ky = 0; ky < 3; ky++) {
                    if (use[ky] >= 0) {
                        continue;
                    }
                    int32_t s = 0;
                    while (s == use[0] || s == use[1] || s == use[2]) {
                        s++;
                    }
                    const int32_t iy = iy0 + ky * dh;
                    const uint8_t *row = iy < 0 || iy >= ih ? 0 : inb + iy * iw * ps;
                    mixq_dwp_row(IB, ring + s * rowwords, row, iw, ps, ow, sw, pw, nch, zpix);
                    tag[s] = iy;
                    use[ky] = s;
                }
                /* ring rows: blocks of a window pair (q, q + 1) x every chunk, 16 words per chunk */
                const uint32_t *p0 = ring + use[0] * rowwords, *p1 = ring + use[1] * rowwords,
                               *p2 = ring + use[2] * rowwords;
                const int32_t blk = nch * 16;
                int32_t ox = 0;
                {
                    for (; ox + 1 < ow; ox += 2, o += 2 * opix) {
                        const int32_t off = (ox >> 1) * blk;
                        const uint32_t *sk = stg, *q0 = p0 + off, *q1 = p1 + off, *q2 = p2 + off;
                        uint8_t *ok = o;
                        for (int32_t k = 0; k < nch; k++, sk += 8 * rw, ok += OB, q0 += 16, q1 += 16, q2 += 16) {
                            mixq_dwp_pixel2(OB, mode, sk, q0, q1, q2, ok, opix);
                        }
                    }
                }
                for (; ox < ow; ox++, o += opix) {
                    const int32_t off = (ox >> 1) * blk + (ox & 1) * 8;
                    const uint32_t *sk = stg, *q0 = p0 + off, *q1 = p1 + off, *q2 = p2 + off;
                    uint8_t *ok = o;
                    for (int32_t k = 0; k < nch; k++, sk += 8 * rw, ok += OB, q0 += 16, q1 += 16, q2 += 16) {
                        mixq_dwp_pixel(OB, mode, sk, q0, q1, q2, ok);
                    }
                }
            }
        }
    }
}
#endif

#if MIXQ_DSP
/* ---- stride-1 pair-word path (mixq_depthwise_dsp.h "stride-1 pair words") ---- */

/* Stream of the stride-1 path: one record of mixq_dwq_rec_words(mode) words per channel, chunks of 8
 * channels in the order 0, 4, 1, 5, 2, 6, 3, 7 (as mixq_dwp_stream). */
MIXQ_INLINE void mixq_dwq_stream(int32_t IB, int32_t WB, int32_t mode, int32_t cout, const uint8_t *w,
                                 const int32_t *bias, const mixq_per_channel_quant *q, int32_t zp, int32_t ozp,
                                 uint32_t *st) {
    const int32_t rw = mixq_dwq_rec_words(mode), foff = mixq_dwp_foff(IB, WB);
    const uint32_t pre = (uint32_t)(2 * mixq_dwp_loff(IB, WB) + foff * 2048);
    const int32_t tapbytes = cout * WB / 8;
    for (int32_t c8 = 0; c8 < cout; c8 += 8) {
        uint32_t wv[9];
        const uint8_t *wp = w + c8 * WB / 8;
        for (int32_t t = 0; t < 9; t++, wp += tapbytes) {
            if (WB == 4) {
                wv[t] = mixq_load_u32(wp);
            } else {
                uint16_t h;
                memcpy(&h, wp, 2);
                wv[t] = h;
            }
        }
        uint32_t *rec = st + c8 * rw;
#pragma GCC unroll 8
        for (int32_t i = 0; i < 8; i++, rec += rw) {
            const int32_t j = (i >> 1) + ((i & 1) << 2);
            const int32_t c = c8 + j;
            int32_t v[9], sum = 0;
#pragma GCC unroll 9
            for (int32_t t = 0; t < 9; t++) {
                v[t] = (int32_t)(wv[t] << (32 - WB * (j + 1))) >> (32 - WB);
                sum += v[t];
            }
            uint32_t wa[3], wb[3];
#pragma GCC unroll 3
            for (int32_t ky = 0; ky < 3; ky++) { /* PKHBT: the low half of one, the high of the other */
                const int32_t w0 = v[3 * ky], w1 = v[3 * ky + 1], w2 = v[3 * ky + 2];
                __asm__("pkhbt %0, %1, %2, lsl #27" : "=r"(wa[ky]) : "r"(w1 + w0 * 2048), "r"(w2));
                __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(wb[ky]) : "r"(w0), "r"(w2 + w1 * 2048));
            }
            rec[0] = wa[0];
            rec[1] = wb[0];
            rec[2] = wa[1];
            rec[3] = wb[1];
            rec[4] = pre;
            rec[5] = wa[2];
            rec[6] = wb[2];
            const int32_t sh = q->shift[c], r = sh < 0 ? -sh : 0, s = sh > 0 ? sh : 0;
            const uint32_t k = (bias ? (uint32_t)bias[c] : 0u) - (uint32_t)zp * (uint32_t)sum - (uint32_t)foff;
            const uint32_t rz = (r > 0 ? (1u << (r - 1)) : 0u) + ((uint32_t)ozp << r);
            if (mode == MIXQ_DWP_NEG) {
                rec[7] = 2u * k;
                rec[8] = (uint32_t)q->multiplier[c];
                rec[9] = rz;
                rec[10] = (uint32_t)r;
            } else {
                rec[7] = k << (s + 1);
                rec[8] = 2u << s;
                rec[9] = (uint32_t)q->multiplier[c];
                rec[10] = rz;
                if (mode == MIXQ_DWP_MIX) {
                    rec[11] = (uint32_t)r | (r > 0 ? 0x80000000u : 0u);
                }
            }
        }
    }
}

/* One column pair P_c = a_c + a_(c+1) 2^11 of a ring row, nch chunks: pa, pb = the group's first
 * byte in columns c and c + 1 (the zero-point pixel outside the input). LO: the low halfwords of
 * the pair block xl (pair k, window start c); HI: the high halfwords of the previous pair's block
 * (xh = that block + 2 bytes). Per chunk two loads, then per channel pair (j, j + 4) two masks, one
 * ADD (both channels' P) and the halfword stores; j = 0 last, its stores move xl / xh on. */
#define MIXQ_DWQ_PJ(S, OFF, OFF4, STL, STH)                                                        \
    "and %[la], %[m], %[ua], lsr #" S "\n\t"                                                       \
    "and %[lb], %[m], %[ub], lsr #" S "\n\t"                                                       \
    "add %[la], %[la], %[lb], lsl #11\n\t" STL("la", OFF) STH("la", OFF)                          \
    "lsr %[la], %[la], #16\n\t" STL("la", OFF4) STH("la", OFF4)
#define MIXQ_DWQ_PJ0(STL, STH, STLP, STHP)                                                         \
    "and %[la], %[m], %[ua]\n\t"                                                                   \
    "and %[lb], %[m], %[ub]\n\t"                                                                   \
    "add %[la], %[la], %[lb], lsl #11\n\t"                                                         \
    "lsr %[lb], %[la], #16\n\t" STL("lb", "4") STH("lb", "4") STLP STHP
#define MIXQ_DWQ_SL(R, OFF) "strh %[" R "], [%[xl], #" OFF "]\n\t"
#define MIXQ_DWQ_SH(R, OFF) "strh %[" R "], [%[xh], #" OFF "]\n\t"
#define MIXQ_DWQ_SN(R, OFF) ""
#define MIXQ_DWQ_LD4 "ldr %[ua], [%[pa]], #4\n\t" "ldr %[ub], [%[pb]], #4\n\t"
#define MIXQ_DWQ_LD2                                                                               \
    "ldrh %[ua], [%[pa]], #2\n\t" "ldrh %[ub], [%[pb]], #2\n\t"                                    \
    "orr %[ua], %[ua], %[ua], lsl #8\n\t" "orr %[ub], %[ub], %[ub], lsl #8\n\t"
#define MIXQ_DWQ_PBODY(LD, S1, S2, S3, STL, STH, STLP, STHP)                                       \
    "1:\n\t" LD MIXQ_DWQ_PJ(S1, "8", "12", STL, STH) MIXQ_DWQ_PJ(S2, "16", "20", STL, STH)         \
        MIXQ_DWQ_PJ(S3, "24", "28", STL, STH) MIXQ_DWQ_PJ0(STL, STH, STLP, STHP)                  \
    "subs %[n], %[n], #1\n\t"                                                                      \
    "bne 1b\n\t"
#define MIXQ_DWQ_POPS                                                                              \
    : [ua] "=&r"(ua), [ub] "=&r"(ub), [la] "=&r"(la), [lb] "=&r"(lb), [pa] "+r"(pa), [pb] "+r"(pb), \
      [xl] "+r"(xl), [xh] "+r"(xh), [n] "+r"(nch)                                                  \
    : [m] "r"(m)                                                                                   \
    : "cc", "memory"
#define MIXQ_DWQ_PSTL "strh %[la], [%[xl]], #32\n\t"
#define MIXQ_DWQ_PSTH "strh %[la], [%[xh]], #32\n\t"
#define MIXQ_DWQ_PASM(LD, S1, S2, S3)                                                              \
    if (LO && HI) {                                                                                \
        __asm__ volatile(MIXQ_DWQ_PBODY(LD, S1, S2, S3, MIXQ_DWQ_SL, MIXQ_DWQ_SH, MIXQ_DWQ_PSTL,    \
                                        MIXQ_DWQ_PSTH) MIXQ_DWQ_POPS);                             \
    } else if (LO) {                                                                               \
        __asm__ volatile(MIXQ_DWQ_PBODY(LD, S1, S2, S3, MIXQ_DWQ_SL, MIXQ_DWQ_SN, MIXQ_DWQ_PSTL, "") \
                             MIXQ_DWQ_POPS);                                                       \
    } else {                                                                                       \
        __asm__ volatile(MIXQ_DWQ_PBODY(LD, S1, S2, S3, MIXQ_DWQ_SN, MIXQ_DWQ_SH, "", MIXQ_DWQ_PSTH) \
                             MIXQ_DWQ_POPS);                                                       \
    }
MIXQ_INLINE void mixq_dwq_p(int32_t IB, int32_t LO, int32_t HI, const uint8_t *pa, const uint8_t *pb, uint8_t *xl,
                            uint8_t *xh, int32_t nch) {
    const uint32_t m = IB == 4 ? 0x000F000Fu : 0x00030003u;
    uint32_t ua, ub, la, lb;
    if (IB == 4) {
        MIXQ_DWQ_PASM(MIXQ_DWQ_LD4, "4", "8", "12")
    } else {
        MIXQ_DWQ_PASM(MIXQ_DWQ_LD2, "2", "4", "6")
    }
}

/* One-chunk groups (8 channels): n interior column pairs in one loop, pa = the first one's column c,
 * c + 1 at pa + ps, the next pair 2 ps on; blocks 32 bytes apart (the j = 0 stores move xl, xh on). */
#define MIXQ_DWQ_LDI4 "ldr %[ua], [%[pa]]\n\t" "ldr %[ub], [%[pa], %[ps]]\n\t" "add %[pa], %[pa], %[ps], lsl #1\n\t"
#define MIXQ_DWQ_LDI2                                                                              \
    "ldrh %[ua], [%[pa]]\n\t" "ldrh %[ub], [%[pa], %[ps]]\n\t" "add %[pa], %[pa], %[ps], lsl #1\n\t" \
    "orr %[ua], %[ua], %[ua], lsl #8\n\t" "orr %[ub], %[ub], %[ub], lsl #8\n\t"
MIXQ_INLINE void mixq_dwq_p1(int32_t IB, const uint8_t *pa, int32_t ps, uint8_t *xl, uint8_t *xh, int32_t n) {
    const uint32_t m = IB == 4 ? 0x000F000Fu : 0x00030003u;
    uint32_t ua, ub, la, lb;
#define MIXQ_DWQ_P1OPS                                                                             \
    : [ua] "=&r"(ua), [ub] "=&r"(ub), [la] "=&r"(la), [lb] "=&r"(lb), [pa] "+r"(pa), [xl] "+r"(xl), \
      [xh] "+r"(xh), [n] "+r"(n)                                                                   \
    : [m] "r"(m), [ps] "r"(ps)                                                                     \
    : "cc", "memory"
    if (IB == 4) {
        __asm__ volatile(MIXQ_DWQ_PBODY(MIXQ_DWQ_LDI4, "4", "8", "12", MIXQ_DWQ_SL, MIXQ_DWQ_SH, MIXQ_DWQ_PSTL,
                                        MIXQ_DWQ_PSTH) MIXQ_DWQ_P1OPS);
    } else {
        __asm__ volatile(MIXQ_DWQ_PBODY(MIXQ_DWQ_LDI2, "2", "4", "6", MIXQ_DWQ_SL, MIXQ_DWQ_SH, MIXQ_DWQ_PSTL,
                                        MIXQ_DWQ_PSTH) MIXQ_DWQ_P1OPS);
    }
#undef MIXQ_DWQ_P1OPS
}
#undef MIXQ_DWQ_LDI4
#undef MIXQ_DWQ_LDI2
#undef MIXQ_DWQ_PJ
#undef MIXQ_DWQ_PJ0
#undef MIXQ_DWQ_SL
#undef MIXQ_DWQ_SH
#undef MIXQ_DWQ_SN
#undef MIXQ_DWQ_LD4
#undef MIXQ_DWQ_LD2
#undef MIXQ_DWQ_PBODY
#undef MIXQ_DWQ_POPS
#undef MIXQ_DWQ_PSTL
#undef MIXQ_DWQ_PSTH
#undef MIXQ_DWQ_PASM

/* One ring row of the stride-1 path: np = (ow + 1) / 2 pair blocks of nch chunks x 8 words, block k =
 * (P_c, P_(c+2)) per channel with c = 2k - pw. row = the group's first byte in the input row, 0 for a
 * padding row (every word (P_z, P_z), P_z = zp + zp 2^11). */
MIXQ_INLINE void mixq_dwq_row(int32_t IB, uint32_t *X, const uint8_t *row, int32_t iw, int32_t ps, int32_t ow,
                              int32_t pw, int32_t nch, const uint8_t *zpix) {
    const int32_t np = (ow + 1) >> 1, blk = nch * 32; /* bytes of one pair block */
    if (row == 0) {
        const uint32_t zp = zpix[0] & (IB == 4 ? 0xFu : 0x3u), pz = zp * 2049u, xw = pz | pz << 16;
        uint32_t *end = X + np * nch * 8; /* a multiple of 8 words */
        __asm__ volatile("mov r8, %[w]\n\t"
                         "mov r9, %[w]\n\t"
                         "mov r10, %[w]\n\t"
                         "mov r11, %[w]\n\t"
                         "1:\n\t"
                         "stmia %[x]!, {r8, r9, r10, r11}\n\t"
                         "stmia %[x]!, {r8, r9, r10, r11}\n\t"
                         "cmp %[x], %[e]\n\t"
                         "bcc 1b"
                         : [x] "+r"(X)
                         : [w] "r"(xw), [e] "r"(end)
                         : "r8", "r9", "r10", "r11", "cc", "memory");
        return;
    }
    uint8_t *xb = (uint8_t *)X;
    /* interior pairs k in [k0, k1): both columns c = 2k - pw and c + 1 inside the row */
    const int32_t k0 = mixq_max_i32(1, (pw + 1) >> 1);
    const int32_t k1 = iw - 2 + pw >= 0 ? mixq_min_i32(np, (iw - 2 + pw) / 2 + 1) : 0;
    for (int32_t k = 0; k <= np; k++) {
        if (k == k0 && k1 > k0) { /* the interior run */
            const uint8_t *pa = row + (2 * k - pw) * ps;
            uint8_t *xl = xb + k * blk;
            if (nch == 1) {
                mixq_dwq_p1(IB, pa, ps, xl, xl - blk + 2, k1 - k0);
            } else {
                for (int32_t i = k0; i < k1; i++, pa += 2 * ps, xl += blk) {
                    mixq_dwq_p(IB, 1, 1, pa, pa + ps, xl, xl - blk + 2, nch);
                }
            }
            k = k1 - 1;
            continue;
        }
        const int32_t c = 2 * k - pw;
        const uint8_t *pa = c >= 0 && c < iw ? row + c * ps : zpix;
        const uint8_t *pb = c + 1 >= 0 && c + 1 < iw ? row + (c + 1) * ps : zpix;
        if (k == 0) {
            mixq_dwq_p(IB, 1, 0, pa, pb, xb, xb, nch);
        } else if (k == np) {
            mixq_dwq_p(IB, 0, 1, pa, pb, xb, xb + (k - 1) * blk + 2, nch);
        } else {
            mixq_dwq_p(IB, 1, 1, pa, pb, xb + k * blk, xb + (k - 1) * blk + 2, nch);
        }
    }
}

/* The whole call on the stride-1 path (horizontal stride 1): groups of G channels, a ring of three
 * rows of pair words, every output pixel pair runs the group's chunks back to back (as mixq_dwp_run). */
MIXQ_INLINE void mixq_dwq_run(int32_t IB, int32_t OB, int32_t mode, const uint8_t *in, uint8_t *out,
                              const uint32_t *st, uint32_t *ring, int32_t n, int32_t ih, int32_t iw, int32_t cout,
                              int32_t oh, int32_t ow, int32_t sh, int32_t ph, int32_t pw, int32_t dh, int32_t zp,
                              int32_t G) {
    const int32_t ps = cout * IB / 8, rw = mixq_dwq_rec_words(mode);
    const int32_t opix = cout * OB / 8, rowwords = ((ow + 1) >> 1) * G;
    uint8_t *zpix = (uint8_t *)(ring + 3 * rowwords);
    memset(zpix, (int)(IB == 4 ? (uint32_t)zp * 0x11u : (uint32_t)zp * 0x55u), (size_t)(G * IB / 8));
    for (int32_t b = 0; b < n; b++) {
        for (int32_t g0 = 0; g0 < cout; g0 += G) {
            const int32_t gc = mixq_min_i32(G, cout - g0), nch = gc / 8;
            int32_t tag[3] = {INT32_MIN, INT32_MIN, INT32_MIN};
            const uint32_t *stg = st + g0 * rw;
            const uint8_t *inb = in + (b * ih * iw) * ps + g0 * IB / 8;
            uint8_t *o = out + ((b * oh * ow) * cout + g0) * OB / 8;
            for (int32_t oy = 0; oy < oh; oy++) {
                const int32_t iy0 = oy * sh - ph;
                int32_t use[3];
                for (int32_t ky = 0; ky < 3; ky++) {
                    const int32_t iy = iy0 + ky * dh;
                    use[ky] = tag[0] == iy ? 0 : (tag[1] == iy ? 1 : (tag[2] == iy ? 2 : -1));
                }
                for (int32_t ky = 0; ky < 3; ky++) {
                    if (use[ky] >= 0) {
                        continue;
                    }
                    int32_t s = 0;
                    while (s == use[0] || s == use[1] || s == use[2]) {
                        s++;
                    }
                    const int32_t iy = iy0 + ky * dh;
                    const uint8_t *row = iy < 0 || iy >= ih ? 0 : inb + iy * iw * ps;
                    mixq_dwq_row(IB, ring + s * rowwords, row, iw, ps, ow, pw, nch, zpix);
                    tag[s] = iy;
                    use[ky] = s;
                }
                const uint32_t *q0 = ring + use[0] * rowwords, *q1 = ring + use[1] * rowwords,
                               *q2 = ring + use[2] * rowwords;
                int32_t ox = 0;
                for (; ox + 1 < ow; ox += 2, o += 2 * opix) {
                    const uint32_t *sk = stg;
                    uint8_t *ok = o;
                    for (int32_t k = 0; k < nch; k++, ok += OB, q0 += 8, q1 += 8, q2 += 8) {
                        sk = mixq_dwq_pixel2(OB, mode, sk, q0, q1, q2, ok, opix);
                    }
                }
                if (ox < ow) {
                    const uint32_t *sk = stg;
                    uint8_t *ok = o;
                    for (int32_t k = 0; k < nch; k++, ok += OB, q0 += 8, q1 += 8, q2 += 8) {
                        sk = mixq_dwq_pixel1(OB, mode, sk, q0, q1, q2, ok);
                    }
                    o += opix;
                }
            }
        }
    }
}
#endif

/* Channels c0.. of one output pixel, portable: every valid tap (taps[2t] = input element offset of
 * channel 0, taps[2t + 1] = weight element offset), requantized and stored at output element o. */
MIXQ_INLINE void mixq_dw_pixel(int32_t IB, int32_t WB, int32_t OB, const uint8_t *in, const uint8_t *w,
                               const int32_t *taps, int32_t ntaps, int32_t c0, int32_t cout, int32_t mult,
                               int32_t zp, const int32_t *bias, const mixq_per_channel_quant *q, int32_t ozp,
                               int32_t lo, int32_t hi, uint8_t *out, int32_t o) {
    for (int32_t c = c0; c < cout; c++) {
        int32_t acc = bias ? bias[c] : 0;
        const int32_t ci = mult == 1 ? c : c / mult;
        for (int32_t t = 0; t < ntaps; t++) {
            acc += (mixq_get_act(in, taps[2 * t] + ci, IB) - zp) * mixq_get_dw_weight(w, taps[2 * t + 1] + c, WB);
        }
        mixq_put_act(out, o + c, OB, mixq_requant(acc, q->multiplier[c], q->shift[c], ozp, lo, hi));
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
    int32_t shmin = 30, shmax = -31; /* and the largest |bias|: for the DSP paths' bounds */
    uint32_t bmax = 0;
    int32_t mor = 0; /* OR of the multipliers: negative when one is */
    for (int32_t c = 0; c < cout; c++) {
        const int32_t sh = q->shift[c];
        mor |= q->multiplier[c];
        shmin = sh < shmin ? sh : shmin;
        shmax = sh > shmax ? sh : shmax;
    }
    if (mor < 0 || shmin < -31 || shmax > 30) {
        return MIXQ_ERR_ARG;
    }
#if MIXQ_DSP
    if (bias) {
        uint32_t bor = 0; /* |bias| <= bor for every channel (OR of the magnitudes) */
        for (int32_t c = 0; c < cout; c++) {
            const int32_t b = bias[c];
            bor |= (uint32_t)(b ^ (b >> 31));
        }
        bmax = bor + 1u;
    }
#endif
    if (ctx == 0 || ctx->buf == 0 || ((uintptr_t)ctx->buf & 3u) != 0 || ctx->size < mixq_dw_scratch(cout, kh * kw)) {
        return MIXQ_ERR_SCRATCH;
    }
    const uint8_t *in = (const uint8_t *)in_v;
    const uint8_t *w = (const uint8_t *)filter_v;
    uint8_t *out = (uint8_t *)out_v;
    const int32_t cpad4 = mixq_dw_cpad4(cout), kt = kh * kw;
    uint32_t *st = (uint32_t *)ctx->buf;
    int32_t *ioff = (int32_t *)(void *)(st + cpad4 / 4 * mixq_dw_rec_words(kt));
    int32_t *boff = ioff + kt;
    int32_t *taps = boff + kt;
    uint8_t *zrow = (uint8_t *)(taps + 2 * kt);
    const int32_t full = lo == mixq_act_lo(OB) && hi == mixq_act_hi(OB);
    int32_t neg = 1; /* every shift negative: the sign term needs no mask (MIXQ_DW_RQ) */
#if MIXQ_DSP
    const int32_t dwp_g = mixq_dwp_fit_group(cout, ow, ctx->size);
    const int32_t dwq_g = sw == 1 ? mixq_dwq_fit_group(cout, ow, ctx->size) : 0;
    if (full && mixq_dwp_shape_ok(IB, WB, kh, kw, dw, mult, cout) && (dwp_g > 0 || dwq_g > 0)) {
        if (mixq_dw_bounds_ok(IB, WB, 9, cout, bias, q, zp, ozp, shmin, shmax, bmax)) {
            const int32_t mode = shmax < 0 ? MIXQ_DWP_NEG : (shmin >= 0 ? MIXQ_DWP_POS : MIXQ_DWP_MIX);
            if (dwq_g > 0) { /* stride 1: pair words, one X word per row for both pixels of a pair */
                mixq_dwq_stream(IB, WB, mode, cout, w, bias, q, zp, ozp, st);
                uint32_t *ring = st + cout * mixq_dwq_rec_words(mode);
                mixq_dwq_run(IB, OB, mode, in, out, st, ring, n, ih, iw, cout, oh, ow, sh, ph, pw, dh, zp, dwq_g);
                return MIXQ_OK;
            }
            mixq_dwp_stream(IB, WB, mode, cout, w, bias, q, zp, ozp, st);
            mixq_dwp_run(IB, OB, mode, in, out, st, st + cout * mixq_dwp_rec_words(mode), n, ih, iw, cout, oh, ow, sh,
                         sw, ph, pw, dh, zp, dwp_g);
            return MIXQ_OK;
        }
    }
#endif
    /* DSP path: channels [0, ncg) */
    int32_t ncg = mixq_dw_fast(IB, cin, mult) ? (cout & ~3) : 0;
    const int32_t nw = IB == 8 ? 0 : ncg / (32 / IB) * (32 / IB);
#if MIXQ_DSP
    const int32_t aligned = ((cout * OB) & 7) == 0;
    for (int32_t c = 0; c < ncg; c++) {
        neg &= q->shift[c] < 0;
    }
    /* the unrolled path for 3x3 filters and the whole output range (negative shifts: the sign term
     * without its mask; any shifts: masked, one instruction more per output, when exactly one operand
     * is 8-bit and the outputs are bytes or whole blocks: sub-byte inputs or weights make shifts >= 0
     * common (s_in s_w / s_out grows), two sub-byte operands take the three-taps path above, and with
     * 8-bit activations and weights shifts >= 0 do not occur in practice; the copy costs ~1.5 KB of
     * flash per variant); any other call runs the general path (tap loop, mask of the sign term,
     * clamp) */
    const int32_t any_shift = (IB == 8) != (WB == 8) && (OB == 8 || aligned);
    const int32_t quick = full && kt == 9 && (neg || any_shift);
    if (ncg > 0 && !mixq_dw_stream(IB, WB, quick, kt, cout, ncg, nw, w, bias, q, zp, ozp, lo, shmin, shmax, bmax, st)) {
        ncg = 0;
    }
    if (ncg > 0) {
        memset(zrow, (int)(uint8_t)(IB == 8 ? zp : (IB == 4 ? zp * 0x11 : zp * 0x55)), (size_t)(cpad4 * IB / 8));
        for (int32_t ky = 0; ky < kh; ky++) {
            for (int32_t kx = 0; kx < kw; kx++) {
                ioff[ky * kw + kx] = (ky * dh * iw + kx * dw) * cin * IB / 8;
            }
        }
    }
#else
    (void)nw;
    (void)shmin;
    (void)shmax;
    (void)bmax;
    (void)full;
    (void)neg;
    (void)ioff;
    (void)boff;
    (void)zrow;
#endif
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < oh; oy++) {
            const int32_t iy0 = oy * sh - ph;
            const int32_t yin = iy0 >= 0 && iy0 + (kh - 1) * dh < ih;
            (void)yin;
            for (int32_t ox = 0; ox < ow; ox++) {
                const int32_t o = ((b * oh + oy) * ow + ox) * cout;
                const int32_t ix0 = ox * sw - pw;
#if MIXQ_DSP
                if (ncg > 0) {
                    const uint32_t tl = (uint32_t)(uintptr_t)in + (uint32_t)(((b * ih + iy0) * iw + ix0) * cin * IB / 8);
                    const int32_t *offs = ioff;
                    if (!yin || ix0 < 0 || ix0 + (kw - 1) * dw >= iw) {
                        const int32_t zoff = (int32_t)((uint32_t)(uintptr_t)zrow - tl);
                        for (int32_t ky = 0; ky < kh; ky++) {
                            const int32_t iy = iy0 + ky * dh;
                            for (int32_t kx = 0; kx < kw; kx++) {
                                const int32_t ix = ix0 + kx * dw;
                                boff[ky * kw + kx] =
                                    (iy < 0 || iy >= ih || ix < 0 || ix >= iw) ? zoff : ioff[ky * kw + kx];
                            }
                        }
                        offs = boff;
                    }
                    if (quick && neg && OB != 8 && aligned) { /* packed sub-byte stores: a constant, not a test */
                        mixq_dw_pixel_dsp(IB, OB, 1, 1, 9, offs, tl, st, nw, ncg, lo, hi - lo, 1, out, o);
                    } else if (quick && neg) {
                        mixq_dw_pixel_dsp(IB, OB, 1, 1, 9, offs, tl, st, nw, ncg, lo, hi - lo, aligned, out, o);
                    } else if (any_shift && quick) { /* any shifts (OB == 8 or aligned) */
                        mixq_dw_pixel_dsp(IB, OB, 1, 0, 9, offs, tl, st, nw, ncg, lo, hi - lo, 1, out, o);
                    } else {
                        mixq_dw_pixel_dsp(IB, OB, 0, 0, kt, offs, tl, st, nw, ncg, lo, hi - lo, aligned, out, o);
                    }
                    if (ncg == cout) {
                        continue;
                    }
                }
#endif
                int32_t ntaps = 0;
                for (int32_t ky = 0; ky < kh; ky++) {
                    const int32_t iy = iy0 + ky * dh;
                    if (iy < 0 || iy >= ih) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < kw; kx++) {
                        const int32_t ix = ix0 + kx * dw;
                        if (ix < 0 || ix >= iw) {
                            continue;
                        }
                        taps[2 * ntaps] = ((b * ih + iy) * iw + ix) * cin;
                        taps[2 * ntaps + 1] = (ky * kw + kx) * cout;
                        ntaps++;
                    }
                }
                mixq_dw_pixel(IB, WB, OB, in, w, taps, ntaps, ncg, cout, mult, zp, bias, q, ozp, lo, hi, out, o);
            }
        }
    }
    return MIXQ_OK;
}

#endif /* MIXQ_DEPTHWISE_CORE_H */
