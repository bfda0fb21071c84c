/* Baseline depthwise conv (multiplier 1), 4 channels per step: activations and weights widened
 * to 16-bit lanes (channels c, c+2 | c+1, c+3), then SMLABB/SMLATT (1 MAC per instruction, as
 * CMSIS-NN's depthwise kernels). Sub-byte weights are widened as value * 2^(8 - w_bits) and the
 * accumulator is shifted back, as in mixq_bl_conv.c. */
#include "mixq_bl_common.h"

MIXQ_BL_INLINE uint32_t read_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Four activations of channels c..c+3 at `p` (byte-aligned) as two lane words with the offset:
 * (c, c+2) and (c+1, c+3). */
MIXQ_BL_INLINE void load4_act(const uint8_t *p, int32_t bits, uint32_t off2, uint32_t *lo, uint32_t *hi)
{
    if (bits == 8) {
        const uint32_t u = mixq_bl_read_u32(p);
        *lo = mixq_bl_sxtab16(off2, u);
        *hi = mixq_bl_sxtab16_ror8(off2, u);
    } else if (bits == 4) {
        const uint32_t u = read_u16(p);
        const uint32_t v = u | (u << 8);
        *lo = mixq_bl_uxtab16(off2, v & 0x000F000Fu);
        *hi = mixq_bl_uxtab16(off2, (v >> 4) & 0x000F000Fu);
    } else {
        const uint32_t b = p[0];
        const uint32_t v = b | (b << 12);
        *lo = mixq_bl_uxtab16(off2, v & 0x00030003u);
        *hi = mixq_bl_uxtab16(off2, (v >> 2) & 0x00030003u);
    }
}

/* Four weights of channels c..c+3 at `p` (byte-aligned), values times 2^(8 - bits). */
MIXQ_BL_INLINE void load4_w(const uint8_t *p, int32_t bits, uint32_t *lo, uint32_t *hi)
{
    if (bits == 8) {
        const uint32_t u = mixq_bl_read_u32(p);
        *lo = mixq_bl_sxtb16(u);
        *hi = mixq_bl_sxtb16_ror8(u);
    } else if (bits == 4) {
        const uint32_t u = read_u16(p);
        const uint32_t v = u | (u << 8);
        *lo = mixq_bl_sxtb16((v << 4) & 0x00F000F0u);
        *hi = mixq_bl_sxtb16(v & 0x00F000F0u);
    } else {
        const uint32_t b = p[0];
        const uint32_t v = b | (b << 12);
        *lo = mixq_bl_sxtb16((v << 6) & 0x00C000C0u);
        *hi = mixq_bl_sxtb16((v << 4) & 0x00C000C0u);
    }
}

typedef struct {
    int32_t output_offset, act_min, act_max;
} output_q;

MIXQ_BL_INLINE int32_t finish(int32_t acc, const mixq_bl_requant *rq, int32_t c, output_q o, int32_t w_bits)
{
    const mixq_bl_channel q = mixq_bl_channel_params(rq->bias, rq->multiplier, rq->shift, c);
    const int32_t v = mixq_bl_requantize_channel(acc >> (8 - w_bits), q) + o.output_offset;
    return mixq_bl_clamp(v, o.act_min, o.act_max);
}

MIXQ_BL_INLINE void store(uint8_t *out, int32_t index, int32_t out_bits, int32_t v)
{
    if (out_bits == 8) {
        out[index] = (uint8_t)(int8_t)v;
    } else {
        mixq_bl_put(out, index, out_bits, v);
    }
}

MIXQ_BL_INLINE void depthwise_impl(const mixq_bl_layer *L, const mixq_bl_requant *rq, const uint8_t *in,
                                   const uint8_t *w, uint8_t *out, int32_t in_bits, int32_t w_bits, int32_t out_bits)
{
    const int32_t C = L->cin;
    const int32_t in_w = L->in_w, in_h = L->in_h, kh = L->kh, kw = L->kw;
    const int32_t out_w = L->out_w, out_h = L->out_h;
    const int32_t stride_h = L->stride_h, stride_w = L->stride_w, pad_h = L->pad_h, pad_w = L->pad_w;
    const int32_t input_offset = L->input_offset;
    const uint32_t off2 = mixq_bl_pair(input_offset);
    const int32_t C4 = C - C % 4;
    const int32_t in_pix = C * in_bits / 8;  /* bytes per input pixel */
    const int32_t w_pix = C * w_bits / 8;    /* bytes per filter tap */
    const mixq_bl_requant r = *rq;
    output_q oq;
    oq.output_offset = L->output_offset;
    oq.act_min = L->act_min;
    oq.act_max = L->act_max;
    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t y0 = oy * stride_h - pad_h;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = (in_h - y0) < kh ? (in_h - y0) : kh;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t x0 = ox * stride_w - pad_w;
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = (in_w - x0) < kw ? (in_w - x0) : kw;
            const int32_t out_base = (oy * out_w + ox) * C;
            const uint8_t *in_first = in + ((y0 + ky0) * in_w + (x0 + kx0)) * in_pix;
            const uint8_t *w_first = w + (ky0 * kw + kx0) * w_pix;
            for (int32_t c = 0; c < C4; c += 4) {
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                const uint8_t *irow = in_first + c * in_bits / 8;
                const uint8_t *wrow = w_first + c * w_bits / 8;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    const uint8_t *ip = irow;
                    const uint8_t *wp = wrow;
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        uint32_t xl, xh, wl, wh;
                        load4_act(ip, in_bits, off2, &xl, &xh);
                        load4_w(wp, w_bits, &wl, &wh);
                        a0 = mixq_bl_smlabb(xl, wl, a0);
                        a2 = mixq_bl_smlatt(xl, wl, a2);
                        a1 = mixq_bl_smlabb(xh, wh, a1);
                        a3 = mixq_bl_smlatt(xh, wh, a3);
                        ip += in_pix;
                        wp += w_pix;
                    }
                    irow += in_w * in_pix;
                    wrow += kw * w_pix;
                }
                const int32_t v0 = finish(a0, &r, c, oq, w_bits);
                const int32_t v1 = finish(a1, &r, c + 1, oq, w_bits);
                const int32_t v2 = finish(a2, &r, c + 2, oq, w_bits);
                const int32_t v3 = finish(a3, &r, c + 3, oq, w_bits);
                store(out, out_base + c, out_bits, v0);
                store(out, out_base + c + 1, out_bits, v1);
                store(out, out_base + c + 2, out_bits, v2);
                store(out, out_base + c + 3, out_bits, v3);
            }
            for (int32_t c = C4; c < C; ++c) {
                int32_t acc = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const int32_t x =
                            mixq_bl_get(in, ((y0 + ky) * in_w + (x0 + kx)) * C + c, in_bits, in_bits == 8) +
                            input_offset;
                        acc += x * mixq_bl_get(w, (ky * kw + kx) * C + c, w_bits, 1);
                    }
                }
                store(out, out_base + c, out_bits, finish(acc * (1 << (8 - w_bits)), &r, c, oq, w_bits));
            }
        }
    }
}

#define MIXQ_BL_FOR_ALL_BITS(X)                                                                                   \
    X(8, 8, 8) X(8, 8, 4) X(8, 8, 2) X(8, 4, 8) X(8, 4, 4) X(8, 4, 2) X(8, 2, 8) X(8, 2, 4) X(8, 2, 2)            \
    X(4, 8, 8) X(4, 8, 4) X(4, 8, 2) X(4, 4, 8) X(4, 4, 4) X(4, 4, 2) X(4, 2, 8) X(4, 2, 4) X(4, 2, 2)        \
    X(2, 8, 8) X(2, 8, 4) X(2, 8, 2) X(2, 4, 8) X(2, 4, 4) X(2, 4, 2) X(2, 2, 8) X(2, 2, 4) X(2, 2, 2)

#define MIXQ_BL_DEFINE(I, W, O)                                                                                  \
    static void dw_##I##_##W##_##O(const mixq_bl_layer *L, const mixq_bl_requant *rq, const uint8_t *in,        \
                                   const uint8_t *w, uint8_t *out)                                                 \
    {                                                                                                            \
        depthwise_impl(L, rq, in, w, out, I, W, O);                                                               \
    }
MIXQ_BL_FOR_ALL_BITS(MIXQ_BL_DEFINE)

size_t mixq_bl_depthwise_scratch_bytes(const mixq_bl_layer *layer)
{
    (void)layer;
    return 0u;
}

int mixq_bl_depthwise(const mixq_bl_layer *layer, const mixq_bl_requant *rq, const void *input, const void *weights,
                      void *output, void *scratch)
{
    (void)scratch;
    int32_t widest = 8;
    const int32_t bits[3] = {layer->in_bits, layer->w_bits, layer->out_bits};
    for (int i = 0; i < 3; ++i) {
        if (bits[i] != 8 && bits[i] != 4 && bits[i] != 2) {
            return MIXQ_BL_BAD_ARGS;
        }
        widest = bits[i] < widest ? bits[i] : widest;
    }
    if ((layer->cin * widest) % 8 != 0 || layer->cout != layer->cin || layer->stride_h <= 0 || layer->stride_w <= 0) {
        return MIXQ_BL_BAD_ARGS;
    }
    switch (layer->in_bits * 100 + layer->w_bits * 10 + layer->out_bits) {
#define MIXQ_BL_CASE(I, W, O)                                                                                     \
    case (I) * 100 + (W) * 10 + (O):                                                                              \
        dw_##I##_##W##_##O(layer, rq, (const uint8_t *)input, (const uint8_t *)weights, (uint8_t *)output);       \
        return MIXQ_BL_OK;
        MIXQ_BL_FOR_ALL_BITS(MIXQ_BL_CASE)
#undef MIXQ_BL_CASE
    default:
        return MIXQ_BL_BAD_ARGS;
    }
}
