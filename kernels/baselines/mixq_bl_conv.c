/* Baseline conv2d / pointwise / fully connected: im2col to 16-bit lanes, SMLAD, 2x2 output
 * block (see include/mixq_baselines.h).
 *
 * Lane layout. Weights are read one 32-bit word at a time, i.e. in groups of G = 32 / w_bits
 * elements, and each word is widened into G / 2 lane words (two signed 16-bit lanes each) with
 * shifts, masks and SXTB16, in the order the instructions give for free:
 *   w8: (0,2) (1,3)
 *   w4: (0,4) (1,5) (2,6) (3,7)             each value times 16 (taken from the high nibble)
 *   w2: (0,8) (4,12) (1,9) (5,13) (2,10) (6,14) (3,11) (7,15)   each value times 64
 * Sub-byte weights are thus widened as value * 2^(8 - w_bits); the accumulator is shifted back
 * (exactly: every term is a multiple of that power of two). The im2col column of a pixel holds
 * (activation - input zero point) as 16-bit lanes in the same order, group by group, then the
 * K % G tail elements in plain order. Bounds: |activation term| <= 255 and |weight lane| <= 128,
 * so an int32 accumulator holds K < 65,000 without overflow.
 */
#include "mixq_bl_common.h"

/* Position, inside its group of G elements, of element e once laid out as lanes. */
static const uint8_t lane_pos_w8[4] = {0, 2, 1, 3};
static const uint8_t lane_pos_w4[8] = {0, 2, 4, 6, 1, 3, 5, 7};
static const uint8_t lane_pos_w2[16] = {0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15};

MIXQ_BL_INLINE int32_t group_size(int32_t w_bits)
{
    return 32 / w_bits;
}

MIXQ_BL_INLINE int32_t weight_scale_shift(int32_t w_bits)
{
    return 8 - w_bits;
}

/* Lane word `l` of weight word `u`; `l` and `w_bits` are compile-time constants after inlining. */
MIXQ_BL_INLINE uint32_t weight_lane(uint32_t u, int32_t w_bits, int32_t l)
{
    if (w_bits == 8) {
        return l == 0 ? mixq_bl_sxtb16(u) : mixq_bl_sxtb16_ror8(u);
    }
    if (w_bits == 4) {
        const uint32_t t = (l & 1) ? (u & 0xF0F0F0F0u) : ((u << 4) & 0xF0F0F0F0u);
        return (l < 2) ? mixq_bl_sxtb16(t) : mixq_bl_sxtb16_ror8(t);
    }
    {
        const int32_t j = l >> 1;
        const uint32_t t = (u << (6 - 2 * j)) & 0xC0C0C0C0u;
        return (l & 1) ? mixq_bl_sxtb16_ror8(t) : mixq_bl_sxtb16(t);
    }
}

MIXQ_BL_INLINE int32_t lane_position(int32_t w_bits, int32_t e)
{
    return w_bits == 8 ? lane_pos_w8[e] : (w_bits == 4 ? lane_pos_w4[e] : lane_pos_w2[e]);
}

/* Widen one input word of G in_bits elements (in_bits == w_bits) into its G/2 lane words. */
MIXQ_BL_INLINE void widen_input_word(uint32_t u, int32_t bits, uint32_t off2, uint32_t *dst)
{
    if (bits == 8) {
        dst[0] = mixq_bl_sxtab16(off2, u);
        dst[1] = mixq_bl_sxtab16_ror8(off2, u);
    } else if (bits == 4) {
        const uint32_t lo = u & 0x0F0F0F0Fu;
        const uint32_t hi = (u >> 4) & 0x0F0F0F0Fu;
        dst[0] = mixq_bl_uxtab16(off2, lo);
        dst[1] = mixq_bl_uxtab16(off2, hi);
        dst[2] = mixq_bl_uxtab16_ror8(off2, lo);
        dst[3] = mixq_bl_uxtab16_ror8(off2, hi);
    } else {
        for (int32_t j = 0; j < 4; ++j) {
            const uint32_t t = (u >> (2 * j)) & 0x03030303u;
            dst[2 * j] = mixq_bl_uxtab16(off2, t);
            dst[2 * j + 1] = mixq_bl_uxtab16_ror8(off2, t);
        }
    }
}

/* Column of K 16-bit values in lane order. `seg` copies `n` input elements that start at input
 * element `src_index` to column position `k0` (n == 0 padding handled by the caller). */
MIXQ_BL_INLINE void column_segment(int16_t *col, int32_t k0, const uint8_t *in, int32_t src_index, int32_t n,
                                   int32_t K, int32_t in_bits, int32_t w_bits, int32_t offset, int fast)
{
    const int32_t G = group_size(w_bits);
    const int32_t K4 = K - K % G;
    if (fast) {
        /* in_bits == w_bits, segment aligned on whole words and groups */
        const uint32_t off2 = mixq_bl_pair(offset);
        const uint8_t *src = in + (src_index * in_bits) / 8;
        uint32_t *dst = (uint32_t *)(void *)(col + k0);
        for (int32_t g = 0; g < n / G; ++g) {
            widen_input_word(mixq_bl_read_u32(src + 4 * g), in_bits, off2, dst + g * (G / 2));
        }
        return;
    }
    const int is_signed = in_bits == 8;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t k = k0 + i;
        const int32_t v = mixq_bl_get(in, src_index + i, in_bits, is_signed) + offset;
        const int32_t pos = k < K4 ? (k - k % G) + lane_position(w_bits, k % G) : k;
        col[pos] = (int16_t)v;
    }
}

MIXQ_BL_INLINE void column_zero(int16_t *col, int32_t k0, int32_t n, int32_t K, int32_t w_bits)
{
    const int32_t G = group_size(w_bits);
    const int32_t K4 = K - K % G;
    if (k0 % G == 0 && n % G == 0 && k0 + n <= K4) {
        memset(col + k0, 0, (size_t)n * sizeof(int16_t));
        return;
    }
    for (int32_t i = 0; i < n; ++i) {
        const int32_t k = k0 + i;
        const int32_t pos = k < K4 ? (k - k % G) + lane_position(w_bits, k % G) : k;
        col[pos] = 0;
    }
}

/* im2col of output pixel (oy, ox). */
MIXQ_BL_INLINE void im2col_pixel(const mixq_bl_layer *L, const uint8_t *in, int32_t oy, int32_t ox, int16_t *col,
                                 int32_t in_bits, int32_t w_bits)
{
    const int32_t K = L->kh * L->kw * L->cin;
    const int32_t G = group_size(w_bits);
    const int fast = in_bits == w_bits && L->cin % G == 0;
    for (int32_t ky = 0; ky < L->kh; ++ky) {
        const int32_t iy = oy * L->stride_h - L->pad_h + ky;
        for (int32_t kx = 0; kx < L->kw; ++kx) {
            const int32_t ix = ox * L->stride_w - L->pad_w + kx;
            const int32_t k0 = (ky * L->kw + kx) * L->cin;
            if (iy < 0 || iy >= L->in_h || ix < 0 || ix >= L->in_w) {
                column_zero(col, k0, L->cin, K, w_bits);
            } else {
                column_segment(col, k0, in, (iy * L->in_w + ix) * L->cin, L->cin, K, in_bits, w_bits,
                               L->input_offset, fast);
            }
        }
    }
}

/* Requantization of one output channel, hoisted out of the loops (output stores are byte
 * stores that may alias anything, so nothing is re-read from the parameter structs). */
typedef mixq_bl_channel channel_q;

typedef struct {
    int32_t output_offset, act_min, act_max, scale_shift;
} output_q;

MIXQ_BL_INLINE channel_q channel_params(const mixq_bl_requant *rq, int32_t c)
{
    return mixq_bl_channel_params(rq->bias, rq->multiplier, rq->shift, c);
}

MIXQ_BL_INLINE int32_t finish(int32_t acc, channel_q q, output_q o)
{
    const int32_t v = mixq_bl_requantize_channel(acc >> o.scale_shift, q) + o.output_offset;
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

/* Dot products of two weight rows with two columns (2x2 block). The second weight row starts
 * `row_bytes` after the first, the second column `col_stride` bytes after the first: register
 * offsets keep the inner loop free of spills. */
MIXQ_BL_INLINE void dot_2x2(const uint8_t *w0, int32_t row_bytes, const int16_t *c0, int32_t col_stride, int32_t K,
                            int32_t w_bits, int32_t acc[4])
{
    const int32_t G = group_size(w_bits);
    const int32_t groups = K / G;
    const uint8_t *a = (const uint8_t *)c0;
    const uint8_t *w = w0;
    const uint8_t *const w_end = w0 + 4 * groups;
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    while (w < w_end) {
        const uint32_t u0 = mixq_bl_read_u32(w);
        const uint32_t u1 = mixq_bl_read_u32(w + row_bytes);
        w += 4;
        for (int32_t l = 0; l < G / 2; ++l) {
            const uint32_t x0 = mixq_bl_read_u32(a + 4 * l);
            const uint32_t x1 = mixq_bl_read_u32(a + 4 * l + col_stride);
            const uint32_t y0 = weight_lane(u0, w_bits, l);
            s00 = mixq_bl_smlad(y0, x0, s00);
            s01 = mixq_bl_smlad(y0, x1, s01);
            const uint32_t y1 = weight_lane(u1, w_bits, l);
            s10 = mixq_bl_smlad(y1, x0, s10);
            s11 = mixq_bl_smlad(y1, x1, s11);
        }
        a += 2 * G;
    }
    const int32_t scale = 1 << weight_scale_shift(w_bits);
    const int16_t *c1 = (const int16_t *)(const void *)((const uint8_t *)c0 + col_stride);
    for (int32_t k = groups * G; k < K; ++k) {
        const int32_t y0 = mixq_bl_get(w0, k, w_bits, 1) * scale;
        const int32_t y1 = mixq_bl_get(w0 + row_bytes, k, w_bits, 1) * scale;
        s00 += y0 * c0[k];
        s01 += y0 * c1[k];
        s10 += y1 * c0[k];
        s11 += y1 * c1[k];
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

/* Dot products of two weight rows with one column (2x1 block). */
MIXQ_BL_INLINE void dot_2x1(const uint8_t *w0, const uint8_t *w1, const int16_t *c0, int32_t K, int32_t w_bits,
                            int32_t acc[2])
{
    const int32_t G = group_size(w_bits);
    const int32_t groups = K / G;
    const uint32_t *a0 = (const uint32_t *)(const void *)c0;
    int32_t s0 = 0, s1 = 0;
    for (int32_t g = 0; g < groups; ++g) {
        const uint32_t u0 = mixq_bl_read_u32(w0 + 4 * g);
        const uint32_t u1 = mixq_bl_read_u32(w1 + 4 * g);
        for (int32_t l = 0; l < G / 2; ++l) {
            const uint32_t x0 = a0[l];
            s0 = mixq_bl_smlad(weight_lane(u0, w_bits, l), x0, s0);
            s1 = mixq_bl_smlad(weight_lane(u1, w_bits, l), x0, s1);
        }
        a0 += G / 2;
    }
    const int32_t scale = 1 << weight_scale_shift(w_bits);
    for (int32_t k = groups * G; k < K; ++k) {
        s0 += mixq_bl_get(w0, k, w_bits, 1) * scale * c0[k];
        s1 += mixq_bl_get(w1, k, w_bits, 1) * scale * c0[k];
    }
    acc[0] = s0;
    acc[1] = s1;
}

static int check_layer(const mixq_bl_layer *L)
{
    const int32_t bits[3] = {L->in_bits, L->w_bits, L->out_bits};
    for (int i = 0; i < 3; ++i) {
        if (bits[i] != 8 && bits[i] != 4 && bits[i] != 2) {
            return 0;
        }
    }
    const int32_t K = L->kh * L->kw * L->cin;
    return K > 0 && L->cout > 0 && (K * L->w_bits) % 8 == 0 && L->stride_h > 0 && L->stride_w > 0;
}

static size_t column_bytes(int32_t K)
{
    return (size_t)((K + 1) & ~1) * sizeof(int16_t);
}

size_t mixq_bl_conv2d_scratch_bytes(const mixq_bl_layer *layer)
{
    return 2u * column_bytes(layer->kh * layer->kw * layer->cin);
}

MIXQ_BL_INLINE output_q output_params(const mixq_bl_layer *L, int32_t w_bits)
{
    output_q o;
    o.output_offset = L->output_offset;
    o.act_min = L->act_min;
    o.act_max = L->act_max;
    o.scale_shift = weight_scale_shift(w_bits);
    return o;
}

MIXQ_BL_INLINE void conv_impl(const mixq_bl_layer *L, const mixq_bl_requant *rq, const uint8_t *in,
                              const uint8_t *w, uint8_t *out, int16_t *col0, int16_t *col1, int32_t in_bits,
                              int32_t w_bits, int32_t out_bits)
{
    const int32_t K = L->kh * L->kw * L->cin;
    const int32_t row_bytes = K * w_bits / 8;
    const int32_t pixels = L->out_h * L->out_w;
    const int32_t out_w = L->out_w;
    const int32_t cout = L->cout;
    const output_q oq = output_params(L, w_bits);
    const mixq_bl_requant r = *rq;
    for (int32_t p = 0; p < pixels; p += 2) {
        const int two = p + 1 < pixels;
        im2col_pixel(L, in, p / out_w, p % out_w, col0, in_bits, w_bits);
        if (two) {
            im2col_pixel(L, in, (p + 1) / out_w, (p + 1) % out_w, col1, in_bits, w_bits);
        }
        const int32_t col_stride = two ? (int32_t)((const uint8_t *)col1 - (const uint8_t *)col0) : 0;
        const int32_t base0 = p * cout;
        const int32_t base1 = base0 + cout;
        int32_t o = 0;
        for (; o + 1 < cout; o += 2) {
            int32_t acc[4];
            dot_2x2(w + o * row_bytes, row_bytes, col0, col_stride, K, w_bits, acc);
            const channel_q q0 = channel_params(&r, o);
            const channel_q q1 = channel_params(&r, o + 1);
            const int32_t v00 = finish(acc[0], q0, oq);
            const int32_t v01 = finish(acc[2], q1, oq);
            store(out, base0 + o, out_bits, v00);
            store(out, base0 + o + 1, out_bits, v01);
            if (two) {
                const int32_t v10 = finish(acc[1], q0, oq);
                const int32_t v11 = finish(acc[3], q1, oq);
                store(out, base1 + o, out_bits, v10);
                store(out, base1 + o + 1, out_bits, v11);
            }
        }
        if (o < cout) {
            int32_t acc[4];
            dot_2x2(w + o * row_bytes, 0, col0, col_stride, K, w_bits, acc);
            const channel_q q0 = channel_params(&r, o);
            store(out, base0 + o, out_bits, finish(acc[0], q0, oq));
            if (two) {
                store(out, base1 + o, out_bits, finish(acc[1], q0, oq));
            }
        }
    }
}

MIXQ_BL_INLINE void fc_impl(const mixq_bl_layer *L, const mixq_bl_requant *rq, const uint8_t *in, const uint8_t *w,
                            uint8_t *out, int16_t *col, int32_t in_bits, int32_t w_bits, int32_t out_bits)
{
    const int32_t K = L->cin;
    const int32_t cout = L->cout;
    const int32_t row_bytes = K * w_bits / 8;
    const int32_t G = group_size(w_bits);
    const int fast = in_bits == w_bits && K % G == 0;
    const output_q oq = output_params(L, w_bits);
    const mixq_bl_requant r = *rq;
    column_segment(col, 0, in, 0, K, K, in_bits, w_bits, L->input_offset, fast);
    int32_t o = 0;
    for (; o + 1 < cout; o += 2) {
        int32_t acc[2];
        dot_2x1(w + o * row_bytes, w + (o + 1) * row_bytes, col, K, w_bits, acc);
        const int32_t v0 = finish(acc[0], channel_params(&r, o), oq);
        const int32_t v1 = finish(acc[1], channel_params(&r, o + 1), oq);
        store(out, o, out_bits, v0);
        store(out, o + 1, out_bits, v1);
    }
    if (o < cout) {
        int32_t acc[2];
        dot_2x1(w + o * row_bytes, w + o * row_bytes, col, K, w_bits, acc);
        store(out, o, out_bits, finish(acc[0], channel_params(&r, o), oq));
    }
}

/* One specialised copy per (in, w, out) bitwidth, generated by the preprocessor. */
#define MIXQ_BL_FOR_ALL_BITS(X)                                                                                   \
    X(8, 8, 8) X(8, 8, 4) X(8, 8, 2) X(8, 4, 8) X(8, 4, 4) X(8, 4, 2) X(8, 2, 8) X(8, 2, 4) X(8, 2, 2)            \
    X(4, 8, 8) X(4, 8, 4) X(4, 8, 2) X(4, 4, 8) X(4, 4, 4) X(4, 4, 2) X(4, 2, 8) X(4, 2, 4) X(4, 2, 2)        \
    X(2, 8, 8) X(2, 8, 4) X(2, 8, 2) X(2, 4, 8) X(2, 4, 4) X(2, 4, 2) X(2, 2, 8) X(2, 2, 4) X(2, 2, 2)

#define MIXQ_BL_DEFINE(I, W, O)                                                                                  \
    static void conv_##I##_##W##_##O(const mixq_bl_layer *L, const mixq_bl_requant *rq, const uint8_t *in,      \
                                     const uint8_t *w, uint8_t *out, int16_t *c0, int16_t *c1)                     \
    {                                                                                                            \
        conv_impl(L, rq, in, w, out, c0, c1, I, W, O);                                                            \
    }                                                                                                            \
    static void fc_##I##_##W##_##O(const mixq_bl_layer *L, const mixq_bl_requant *rq, const uint8_t *in,        \
                                   const uint8_t *w, uint8_t *out, int16_t *c0)                                    \
    {                                                                                                            \
        fc_impl(L, rq, in, w, out, c0, I, W, O);                                                                  \
    }
MIXQ_BL_FOR_ALL_BITS(MIXQ_BL_DEFINE)

#define MIXQ_BL_KEY(I, W, O) ((I) * 100 + (W) * 10 + (O))

int mixq_bl_conv2d(const mixq_bl_layer *layer, const mixq_bl_requant *rq, const void *input, const void *weights,
                   void *output, void *scratch)
{
    if (!check_layer(layer)) {
        return MIXQ_BL_BAD_ARGS;
    }
    int16_t *col0 = (int16_t *)scratch;
    int16_t *col1 = (int16_t *)((uint8_t *)scratch + column_bytes(layer->kh * layer->kw * layer->cin));
    switch (MIXQ_BL_KEY(layer->in_bits, layer->w_bits, layer->out_bits)) {
#define MIXQ_BL_CASE(I, W, O)                                                                                     \
    case MIXQ_BL_KEY(I, W, O):                                                                                    \
        conv_##I##_##W##_##O(layer, rq, (const uint8_t *)input, (const uint8_t *)weights, (uint8_t *)output, col0, \
                             col1);                                                                               \
        return MIXQ_BL_OK;
        MIXQ_BL_FOR_ALL_BITS(MIXQ_BL_CASE)
#undef MIXQ_BL_CASE
    default:
        return MIXQ_BL_BAD_ARGS;
    }
}

size_t mixq_bl_fully_connected_scratch_bytes(const mixq_bl_layer *layer)
{
    return column_bytes(layer->cin);
}

int mixq_bl_fully_connected(const mixq_bl_layer *layer, const mixq_bl_requant *rq, const void *input,
                            const void *weights, void *output, void *scratch)
{
    if (!check_layer(layer) || layer->kh != 1 || layer->kw != 1) {
        return MIXQ_BL_BAD_ARGS;
    }
    switch (MIXQ_BL_KEY(layer->in_bits, layer->w_bits, layer->out_bits)) {
#define MIXQ_BL_CASE(I, W, O)                                                                                     \
    case MIXQ_BL_KEY(I, W, O):                                                                                    \
        fc_##I##_##W##_##O(layer, rq, (const uint8_t *)input, (const uint8_t *)weights, (uint8_t *)output,        \
                           (int16_t *)scratch);                                                                   \
        return MIXQ_BL_OK;
        MIXQ_BL_FOR_ALL_BITS(MIXQ_BL_CASE)
#undef MIXQ_BL_CASE
    default:
        return MIXQ_BL_BAD_ARGS;
    }
}
