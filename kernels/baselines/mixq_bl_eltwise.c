/* Baseline elementwise add and average pool: TFLite's integer arithmetic, one element at a time
 * (sub-byte operands unpacked to integers, results packed back). */
#include "mixq_bl_common.h"

MIXQ_BL_INLINE int32_t mul_smaller_than_one(int32_t x, int32_t multiplier, int32_t shift)
{
    return mixq_bl_rounding_divide_by_pot(mixq_bl_doubling_high_mul(x, multiplier), -shift);
}

MIXQ_BL_INLINE void add_impl(const mixq_bl_add_params *p, const uint8_t *a, const uint8_t *b, uint8_t *out,
                             int32_t ib, int32_t ob)
{
    const mixq_bl_add_params q = *p; /* byte stores below may alias *p: keep a local copy */
    for (int32_t i = 0; i < q.count; ++i) {
        const int32_t x1 = (mixq_bl_get(a, i, ib, ib == 8) + q.input1_offset) * (1 << q.left_shift);
        const int32_t x2 = (mixq_bl_get(b, i, ib, ib == 8) + q.input2_offset) * (1 << q.left_shift);
        const int32_t s1 = mul_smaller_than_one(x1, q.input1_multiplier, q.input1_shift);
        const int32_t s2 = mul_smaller_than_one(x2, q.input2_multiplier, q.input2_shift);
        const int32_t v = mul_smaller_than_one(s1 + s2, q.output_multiplier, q.output_shift) + q.output_offset;
        mixq_bl_put(out, i, ob, mixq_bl_clamp(v, q.act_min, q.act_max));
    }
}

#define MIXQ_BL_FOR_IO_BITS(X) X(8, 8) X(8, 4) X(8, 2) X(4, 8) X(4, 4) X(4, 2) X(2, 8) X(2, 4) X(2, 2)

#define MIXQ_BL_DEFINE(I, O)                                                                                     \
    static void add_##I##_##O(const mixq_bl_add_params *p, const uint8_t *a, const uint8_t *b, uint8_t *out)      \
    {                                                                                                            \
        add_impl(p, a, b, out, I, O);                                                                             \
    }
MIXQ_BL_FOR_IO_BITS(MIXQ_BL_DEFINE)
#undef MIXQ_BL_DEFINE

int mixq_bl_add(const mixq_bl_add_params *p, const void *input1, const void *input2, void *output)
{
    switch (p->in_bits * 10 + p->out_bits) {
#define MIXQ_BL_CASE(I, O)                                                                                        \
    case (I) * 10 + (O):                                                                                          \
        add_##I##_##O(p, (const uint8_t *)input1, (const uint8_t *)input2, (uint8_t *)output);                    \
        return MIXQ_BL_OK;
        MIXQ_BL_FOR_IO_BITS(MIXQ_BL_CASE)
#undef MIXQ_BL_CASE
    default:
        return MIXQ_BL_BAD_ARGS;
    }
}

MIXQ_BL_INLINE void avgpool_impl(const mixq_bl_layer *layer, const mixq_bl_requant *rq, const uint8_t *in,
                                 uint8_t *out, int32_t ib, int32_t ob)
{
    const mixq_bl_layer lcopy = *layer; /* byte stores below may alias *layer */
    const mixq_bl_layer *L = &lcopy;
    const int32_t mult = rq != NULL ? rq->multiplier[0] : 0;
    const int32_t shift = rq != NULL ? rq->shift[0] : 0;
    const int32_t C = L->cin;
    const int32_t offset = rq != NULL ? L->input_offset : 0;
    for (int32_t oy = 0; oy < L->out_h; ++oy) {
        const int32_t y0 = oy * L->stride_h - L->pad_h;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = (L->in_h - y0) < L->kh ? (L->in_h - y0) : L->kh;
        for (int32_t ox = 0; ox < L->out_w; ++ox) {
            const int32_t x0 = ox * L->stride_w - L->pad_w;
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = (L->in_w - x0) < L->kw ? (L->in_w - x0) : L->kw;
            const int32_t count = (ky1 - ky0) * (kx1 - kx0);
            for (int32_t c = 0; c < C; ++c) {
                int32_t sum = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        sum += mixq_bl_get(in, ((y0 + ky) * L->in_w + (x0 + kx)) * C + c, ib, ib == 8) + offset;
                    }
                }
                int32_t avg = 0;
                if (count > 0) {
                    avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                }
                if (rq != NULL) {
                    avg = mixq_bl_requantize(avg, mult, shift) + L->output_offset;
                }
                mixq_bl_put(out, (oy * L->out_w + ox) * C + c, ob, mixq_bl_clamp(avg, L->act_min, L->act_max));
            }
        }
    }
}

#define MIXQ_BL_DEFINE(I, O)                                                                                     \
    static void avgpool_##I##_##O(const mixq_bl_layer *L, const mixq_bl_requant *rq, const uint8_t *in,         \
                                  uint8_t *out)                                                                  \
    {                                                                                                            \
        avgpool_impl(L, rq, in, out, I, O);                                                                       \
    }
MIXQ_BL_FOR_IO_BITS(MIXQ_BL_DEFINE)
#undef MIXQ_BL_DEFINE

int mixq_bl_avgpool(const mixq_bl_layer *layer, const mixq_bl_requant *rq, const void *input, void *output)
{
    if (layer->stride_h <= 0 || layer->stride_w <= 0) {
        return MIXQ_BL_BAD_ARGS;
    }
    switch (layer->in_bits * 10 + layer->out_bits) {
#define MIXQ_BL_CASE(I, O)                                                                                        \
    case (I) * 10 + (O):                                                                                          \
        avgpool_##I##_##O(layer, rq, (const uint8_t *)input, (uint8_t *)output);                                  \
        return MIXQ_BL_OK;
        MIXQ_BL_FOR_IO_BITS(MIXQ_BL_CASE)
#undef MIXQ_BL_CASE
    default:
        return MIXQ_BL_BAD_ARGS;
    }
}
