/* Baseline elementwise add and average pool: TFLite's integer arithmetic, one element at a time
 * (sub-byte operands unpacked to integers, results packed back). */
#include "mixq_bl_common.h"

MIXQ_BL_INLINE int32_t mul_smaller_than_one(int32_t x, int32_t multiplier, int32_t shift)
{
    return mixq_bl_rounding_divide_by_pot(mixq_bl_doubling_high_mul(x, multiplier), -shift);
}

int mixq_bl_add(const mixq_bl_add_params *p, const void *input1, const void *input2, void *output)
{
    const uint8_t *a = (const uint8_t *)input1;
    const uint8_t *b = (const uint8_t *)input2;
    uint8_t *out = (uint8_t *)output;
    const int32_t ib = p->in_bits;
    const int32_t ob = p->out_bits;
    if ((ib != 8 && ib != 4 && ib != 2) || (ob != 8 && ob != 4 && ob != 2)) {
        return MIXQ_BL_BAD_ARGS;
    }
    for (int32_t i = 0; i < p->count; ++i) {
        const int32_t x1 = (mixq_bl_get(a, i, ib, ib == 8) + p->input1_offset) * (1 << p->left_shift);
        const int32_t x2 = (mixq_bl_get(b, i, ib, ib == 8) + p->input2_offset) * (1 << p->left_shift);
        const int32_t s1 = mul_smaller_than_one(x1, p->input1_multiplier, p->input1_shift);
        const int32_t s2 = mul_smaller_than_one(x2, p->input2_multiplier, p->input2_shift);
        const int32_t v = mul_smaller_than_one(s1 + s2, p->output_multiplier, p->output_shift) + p->output_offset;
        mixq_bl_put(out, i, ob, mixq_bl_clamp(v, p->act_min, p->act_max));
    }
    return MIXQ_BL_OK;
}

int mixq_bl_avgpool(const mixq_bl_layer *L, const mixq_bl_requant *rq, const void *input, void *output)
{
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const int32_t ib = L->in_bits;
    const int32_t ob = L->out_bits;
    const int32_t C = L->cin;
    const int32_t offset = rq != NULL ? L->input_offset : 0;
    if ((ib != 8 && ib != 4 && ib != 2) || (ob != 8 && ob != 4 && ob != 2) || L->stride_h <= 0 || L->stride_w <= 0) {
        return MIXQ_BL_BAD_ARGS;
    }
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
                    avg = mixq_bl_requantize(avg, rq->multiplier[0], rq->shift[0]) + L->output_offset;
                }
                mixq_bl_put(out, (oy * L->out_w + ox) * C + c, ob, mixq_bl_clamp(avg, L->act_min, L->act_max));
            }
        }
    }
    return MIXQ_BL_OK;
}
