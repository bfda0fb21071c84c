/* Baseline depthwise conv (multiplier 1), 4 channels per step: activations and weights widened
 * to 16-bit lanes (channels c, c+2 | c+1, c+3), then SMLABB/SMLATT (1 MAC per instruction, as
 * CMSIS-NN's depthwise kernels). Sub-byte weights are widened as value * 2^(8 - w_bits) and the
 * accumulator is shifted back, as in mixq_bl_conv.c. */
#include "mixq_bl_common.h"

/* Four activations starting at element `index` (byte-aligned) as two lane words with offset. */
MIXQ_BL_INLINE void load4_act(const uint8_t *in, int32_t index, int32_t bits, uint32_t off2, uint32_t *lo,
                              uint32_t *hi)
{
    if (bits == 8) {
        const uint32_t u = mixq_bl_read_u32(in + index);
        *lo = mixq_bl_sxtab16(off2, u);
        *hi = mixq_bl_sxtab16_ror8(off2, u);
    } else if (bits == 4) {
        const uint32_t u = (uint32_t)in[index / 2] | ((uint32_t)in[index / 2 + 1] << 8);
        const uint32_t v = u | (u << 8);
        *lo = mixq_bl_uxtab16(off2, v & 0x000F000Fu);
        *hi = mixq_bl_uxtab16(off2, (v >> 4) & 0x000F000Fu);
    } else {
        const uint32_t b = in[index / 4];
        const uint32_t v = b | (b << 12);
        *lo = mixq_bl_uxtab16(off2, v & 0x00030003u);
        *hi = mixq_bl_uxtab16(off2, (v >> 2) & 0x00030003u);
    }
}

/* Four weights starting at element `index` (byte-aligned), values times 2^(8 - bits). */
MIXQ_BL_INLINE void load4_w(const uint8_t *w, int32_t index, int32_t bits, uint32_t *lo, uint32_t *hi)
{
    if (bits == 8) {
        const uint32_t u = mixq_bl_read_u32(w + index);
        *lo = mixq_bl_sxtb16(u);
        *hi = mixq_bl_sxtb16_ror8(u);
    } else if (bits == 4) {
        const uint32_t u = (uint32_t)w[index / 2] | ((uint32_t)w[index / 2 + 1] << 8);
        const uint32_t v = u | (u << 8);
        *lo = mixq_bl_sxtb16((v << 4) & 0x00F000F0u);
        *hi = mixq_bl_sxtb16(v & 0x00F000F0u);
    } else {
        const uint32_t b = w[index / 4];
        const uint32_t v = b | (b << 12);
        *lo = mixq_bl_sxtb16((v << 6) & 0x00C000C0u);
        *hi = mixq_bl_sxtb16((v << 4) & 0x00C000C0u);
    }
}

MIXQ_BL_INLINE int32_t finish(int32_t acc, int32_t c, const mixq_bl_requant *rq, const mixq_bl_layer *L,
                              int32_t w_bits)
{
    acc >>= 8 - w_bits;
    if (rq->bias != NULL) {
        acc += rq->bias[c];
    }
    const int32_t v = mixq_bl_requantize(acc, rq->multiplier[c], rq->shift[c]) + L->output_offset;
    return mixq_bl_clamp(v, L->act_min, L->act_max);
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
    const uint32_t off2 = mixq_bl_pair(L->input_offset);
    const int32_t C4 = C - C % 4;
    for (int32_t oy = 0; oy < L->out_h; ++oy) {
        const int32_t y0 = oy * L->stride_h - L->pad_h;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = (L->in_h - y0) < L->kh ? (L->in_h - y0) : L->kh;
        for (int32_t ox = 0; ox < L->out_w; ++ox) {
            const int32_t x0 = ox * L->stride_w - L->pad_w;
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = (L->in_w - x0) < L->kw ? (L->in_w - x0) : L->kw;
            const int32_t out_base = (oy * L->out_w + ox) * C;
            for (int32_t c = 0; c < C4; c += 4) {
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        uint32_t xl, xh, wl, wh;
                        load4_act(in, ((y0 + ky) * L->in_w + (x0 + kx)) * C + c, in_bits, off2, &xl, &xh);
                        load4_w(w, (ky * L->kw + kx) * C + c, w_bits, &wl, &wh);
                        a0 = mixq_bl_smlabb(xl, wl, a0);
                        a2 = mixq_bl_smlatt(xl, wl, a2);
                        a1 = mixq_bl_smlabb(xh, wh, a1);
                        a3 = mixq_bl_smlatt(xh, wh, a3);
                    }
                }
                store(out, out_base + c, out_bits, finish(a0, c, rq, L, w_bits));
                store(out, out_base + c + 1, out_bits, finish(a1, c + 1, rq, L, w_bits));
                store(out, out_base + c + 2, out_bits, finish(a2, c + 2, rq, L, w_bits));
                store(out, out_base + c + 3, out_bits, finish(a3, c + 3, rq, L, w_bits));
            }
            for (int32_t c = C4; c < C; ++c) {
                int32_t acc = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const int32_t x =
                            mixq_bl_get(in, ((y0 + ky) * L->in_w + (x0 + kx)) * C + c, in_bits, in_bits == 8) +
                            L->input_offset;
                        acc += x * mixq_bl_get(w, (ky * L->kw + kx) * C + c, w_bits, 1);
                    }
                }
                store(out, out_base + c, out_bits, finish(acc << (8 - w_bits), c, rq, L, w_bits));
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
