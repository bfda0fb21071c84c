/* Integer ops of the generated-model runtime (see mixq_rt.h). Each function follows the Python
 * reference named in its comment; the parameters come from that reference at codegen time. */
#include "mixq_rt.h"

#include <string.h>

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

#define RT_INT32_MIN (-2147483647 - 1)
#define RT_INT32_MAX 2147483647

static int32_t wrap32(int64_t v)
{
    return (int32_t)(uint32_t)(uint64_t)v;
}

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* fixedpoint.saturating_rounding_doubling_high_mul */
int32_t mixq_rt_srdhm(int32_t a, int32_t b)
{
    if (a == RT_INT32_MIN && b == RT_INT32_MIN) {
        return RT_INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (int64_t)1 << 30 : 1 - ((int64_t)1 << 30);
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* fixedpoint.rounding_divide_by_pot (arithmetic shift of a 64-bit value) */
int32_t mixq_rt_rdbp(int64_t x, int32_t exponent)
{
    const int64_t mask = ((int64_t)1 << exponent) - 1;
    const int64_t remainder = x & mask;
    const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* fixedpoint.multiply_by_quantized_multiplier */
int32_t mixq_rt_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return mixq_rt_rdbp(mixq_rt_srdhm(shifted, multiplier), right);
}

/* ---- broadcasting element-wise ---------------------------------------------------------------- */

/* ops.add (TFLite AddElementwise with MultiplyByQuantizedMultiplierSmallerThanOneExp) */
void mixq_rt_add(const mixq_rt_add_params *p, const mixq_rt_shape *os, const int32_t s1[4], const int32_t s2[4],
                 const int8_t *in1, const int8_t *in2, int8_t *out)
{
    int32_t k = 0;
    for (int32_t i0 = 0; i0 < os->d[0]; i0++) {
        for (int32_t i1 = 0; i1 < os->d[1]; i1++) {
            for (int32_t i2 = 0; i2 < os->d[2]; i2++) {
                for (int32_t i3 = 0; i3 < os->d[3]; i3++) {
                    const int32_t o1 = i0 * s1[0] + i1 * s1[1] + i2 * s1[2] + i3 * s1[3];
                    const int32_t o2 = i0 * s2[0] + i1 * s2[1] + i2 * s2[2] + i3 * s2[3];
                    const int32_t a0 = (in1[o1] - p->in1_zp) * (1 << p->left_shift);
                    const int32_t b0 = (in2[o2] - p->in2_zp) * (1 << p->left_shift);
                    const int32_t a = mixq_rt_rdbp(mixq_rt_srdhm(a0, p->in1_mult), -p->in1_shift);
                    const int32_t b = mixq_rt_rdbp(mixq_rt_srdhm(b0, p->in2_mult), -p->in2_shift);
                    const int32_t r = mixq_rt_rdbp(mixq_rt_srdhm(a + b, p->out_mult), -p->out_shift) + p->out_zp;
                    out[k++] = (int8_t)clamp32(r, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* ops.mul */
void mixq_rt_mul(const mixq_rt_mul_params *p, const mixq_rt_shape *os, const int32_t s1[4], const int32_t s2[4],
                 const int8_t *in1, const int8_t *in2, int8_t *out)
{
    int32_t k = 0;
    for (int32_t i0 = 0; i0 < os->d[0]; i0++) {
        for (int32_t i1 = 0; i1 < os->d[1]; i1++) {
            for (int32_t i2 = 0; i2 < os->d[2]; i2++) {
                for (int32_t i3 = 0; i3 < os->d[3]; i3++) {
                    const int32_t o1 = i0 * s1[0] + i1 * s1[1] + i2 * s1[2] + i3 * s1[3];
                    const int32_t o2 = i0 * s2[0] + i1 * s2[1] + i2 * s2[2] + i3 * s2[3];
                    const int32_t prod = (in1[o1] - p->in1_zp) * (in2[o2] - p->in2_zp);
                    const int32_t r = mixq_rt_mbqm(prod, p->mult, p->shift) + p->out_zp;
                    out[k++] = (int8_t)clamp32(r, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* ---- pooling and reductions ------------------------------------------------------------------- */

/* ops.max_pool: maximum over the valid (unpadded) taps of each window */
void mixq_rt_max_pool(const mixq_rt_pool_params *p, const mixq_rt_shape *is, const mixq_rt_shape *os,
                      const int8_t *in, int8_t *out)
{
    const int32_t h = is->d[1], w = is->d[2], c = is->d[3];
    for (int32_t n = 0; n < os->d[0]; n++) {
        for (int32_t oy = 0; oy < os->d[1]; oy++) {
            for (int32_t ox = 0; ox < os->d[2]; ox++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                for (int32_t ch = 0; ch < c; ch++) {
                    int32_t best = -129;
                    for (int32_t fy = 0; fy < p->filter_h; fy++) {
                        const int32_t y = y0 + fy;
                        if (y < 0 || y >= h) {
                            continue;
                        }
                        for (int32_t fx = 0; fx < p->filter_w; fx++) {
                            const int32_t x = x0 + fx;
                            if (x < 0 || x >= w) {
                                continue;
                            }
                            const int32_t v = in[((n * h + y) * w + x) * c + ch];
                            best = v > best ? v : best;
                        }
                    }
                    if (p->requant) {
                        best = mixq_rt_mbqm(best - p->in_zp, p->mult, p->shift) + p->out_zp;
                    }
                    out[((n * os->d[1] + oy) * os->d[2] + ox) * c + ch] = (int8_t)clamp32(best, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* interpreter._prepare_mean (reference_ops::QuantizedMeanOrSum with 1/count in the multiplier) */
void mixq_rt_mean(const mixq_rt_mean_params *p, const mixq_rt_shape *is, const int8_t *in, int8_t *out)
{
    int32_t outer[4], inner[4];
    for (int32_t a = 0; a < 4; a++) {
        outer[a] = p->reduce[a] ? 1 : is->d[a];
        inner[a] = p->reduce[a] ? is->d[a] : 1;
    }
    int32_t k = 0;
    for (int32_t i0 = 0; i0 < outer[0]; i0++) {
        for (int32_t i1 = 0; i1 < outer[1]; i1++) {
            for (int32_t i2 = 0; i2 < outer[2]; i2++) {
                for (int32_t i3 = 0; i3 < outer[3]; i3++) {
                    int32_t sum = 0;
                    for (int32_t j0 = 0; j0 < inner[0]; j0++) {
                        for (int32_t j1 = 0; j1 < inner[1]; j1++) {
                            for (int32_t j2 = 0; j2 < inner[2]; j2++) {
                                for (int32_t j3 = 0; j3 < inner[3]; j3++) {
                                    const int32_t idx =
                                        (((i0 + j0) * is->d[1] + (i1 + j1)) * is->d[2] + (i2 + j2)) * is->d[3] + i3 + j3;
                                    sum += in[idx];
                                }
                            }
                        }
                    }
                    const int32_t total = wrap32((int64_t)sum - (int64_t)p->in_zp * p->count);
                    const int32_t r = mixq_rt_mbqm(total, p->mult, p->shift) + p->out_zp;
                    out[k++] = (int8_t)clamp32(r, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* ---- data movement ---------------------------------------------------------------------------- */

/* interpreter._prepare_pad (np.pad with a constant) */
void mixq_rt_pad(const mixq_rt_shape *is, const mixq_rt_shape *os, const int32_t before[4], int8_t value,
                 const int8_t *in, int8_t *out)
{
    int32_t k = 0;
    for (int32_t i0 = 0; i0 < os->d[0]; i0++) {
        const int32_t j0 = i0 - before[0];
        for (int32_t i1 = 0; i1 < os->d[1]; i1++) {
            const int32_t j1 = i1 - before[1];
            for (int32_t i2 = 0; i2 < os->d[2]; i2++) {
                const int32_t j2 = i2 - before[2];
                for (int32_t i3 = 0; i3 < os->d[3]; i3++) {
                    const int32_t j3 = i3 - before[3];
                    const int inside = j0 >= 0 && j0 < is->d[0] && j1 >= 0 && j1 < is->d[1] && j2 >= 0 &&
                                       j2 < is->d[2] && j3 >= 0 && j3 < is->d[3];
                    out[k++] = inside ? in[((j0 * is->d[1] + j1) * is->d[2] + j2) * is->d[3] + j3] : value;
                }
            }
        }
    }
}

/* interpreter._prepare_transpose (np.transpose) */
void mixq_rt_transpose(const mixq_rt_shape *is, const int32_t perm[4], const int8_t *in, int8_t *out)
{
    const int32_t stride[4] = {is->d[1] * is->d[2] * is->d[3], is->d[2] * is->d[3], is->d[3], 1};
    const int32_t od[4] = {is->d[perm[0]], is->d[perm[1]], is->d[perm[2]], is->d[perm[3]]};
    const int32_t os[4] = {stride[perm[0]], stride[perm[1]], stride[perm[2]], stride[perm[3]]};
    int32_t k = 0;
    for (int32_t i0 = 0; i0 < od[0]; i0++) {
        for (int32_t i1 = 0; i1 < od[1]; i1++) {
            for (int32_t i2 = 0; i2 < od[2]; i2++) {
                for (int32_t i3 = 0; i3 < od[3]; i3++) {
                    out[k++] = in[i0 * os[0] + i1 * os[1] + i2 * os[2] + i3 * os[3]];
                }
            }
        }
    }
}

/* interpreter._prepare_concatenation (np.concatenate) */
void mixq_rt_concat(int32_t outer, int32_t count, const int32_t *block_bytes, const int8_t *const *ins, int8_t *out)
{
    for (int32_t o = 0; o < outer; o++) {
        for (int32_t i = 0; i < count; i++) {
            memcpy(out, ins[i] + (int32_t)o * block_bytes[i], (size_t)block_bytes[i]);
            out += block_bytes[i];
        }
    }
}

/* interpreter._prepare_resize_nearest_neighbor (index maps from _nearest_indices) */
void mixq_rt_resize_nearest(const mixq_rt_shape *is, const mixq_rt_shape *os, const int16_t *rows,
                            const int16_t *cols, const int8_t *in, int8_t *out)
{
    const int32_t c = is->d[3];
    for (int32_t n = 0; n < os->d[0]; n++) {
        for (int32_t y = 0; y < os->d[1]; y++) {
            for (int32_t x = 0; x < os->d[2]; x++) {
                const int8_t *src = in + ((n * is->d[1] + rows[y]) * is->d[2] + cols[x]) * c;
                memcpy(out, src, (size_t)c);
                out += c;
            }
        }
    }
}

/* ---- patch tiles ---------------------------------------------------------------------------------- */

static uint32_t get_elem(const uint8_t *p, int32_t i, int32_t bits)
{
    const int32_t per = 8 / bits;
    return ((uint32_t)p[i / per] >> ((i % per) * bits)) & ((1u << bits) - 1u);
}

static void put_elem(uint8_t *p, int32_t i, int32_t bits, uint32_t v)
{
    const int32_t per = 8 / bits;
    const int32_t sh = (i % per) * bits;
    const uint32_t mask = ((1u << bits) - 1u) << sh;
    p[i / per] = (uint8_t)(((uint32_t)p[i / per] & ~mask) | ((v << sh) & mask));
}

/* n packed elements from element si of src to element di of dst. When both start at the same bit
 * of a byte the middle whole bytes go by memcpy (every row of a tensor whose pixels start on a byte),
 * the partial bytes at either end element by element. */
static void copy_elems(const uint8_t *src, int32_t si, uint8_t *dst, int32_t di, int32_t n, int32_t bits)
{
    const int32_t per = 8 / bits;
    int32_t i = 0;
    if (si % per == di % per) {
        for (; i < n && (si + i) % per != 0; i++) {
            put_elem(dst, di + i, bits, get_elem(src, si + i, bits));
        }
        const int32_t whole = (n - i) / per;
        if (whole > 0) {
            memcpy(dst + (di + i) / per, src + (si + i) / per, (size_t)whole);
            i += whole * per;
        }
    }
    for (; i < n; i++) {
        put_elem(dst, di + i, bits, get_elem(src, si + i, bits));
    }
}

static void copy_rect(const uint8_t *src, int32_t src_w, int32_t sy, int32_t sx, uint8_t *dst, int32_t dst_w,
                      int32_t dy, int32_t dx, int32_t h, int32_t w, int32_t c, int32_t bits)
{
    for (int32_t y = 0; y < h; y++) {
        const int32_t s0 = ((sy + y) * src_w + sx) * c;
        const int32_t d0 = ((dy + y) * dst_w + dx) * c;
        const int32_t n = w * c;
        if (bits == 8) {
            memcpy(dst + d0, src + s0, (size_t)n);
        } else {
            copy_elems(src, s0, dst, d0, n, bits);
        }
    }
}

void mixq_rt_gather(const void *src, int32_t src_w, int32_t c, int32_t bits, int32_t y0, int32_t x0, int32_t h,
                    int32_t w, void *dst)
{
    copy_rect((const uint8_t *)src, src_w, y0, x0, (uint8_t *)dst, w, 0, 0, h, w, c, bits);
}

void mixq_rt_scatter(const void *src, int32_t h, int32_t w, int32_t c, int32_t bits, void *dst, int32_t dst_w,
                     int32_t y0, int32_t x0)
{
    copy_rect((const uint8_t *)src, w, 0, 0, (uint8_t *)dst, dst_w, y0, x0, h, w, c, bits);
}

/* ---- channel splits: schedule/execute.py _run_split (ops.conv2d_accumulate, _requantize_consumer) */

/* Value of element i of an activation tensor: int8, or unsigned sub-byte packed (shifts, no division). */
static int32_t act_value(const uint8_t *p, int32_t i, int32_t bits)
{
    if (bits == 8) {
        return (int32_t)(int8_t)p[i];
    }
    if (bits == 4) {
        return (int32_t)((p[i >> 1] >> ((i & 1) << 2)) & 15u);
    }
    return (int32_t)((p[i >> 2] >> ((i & 3) << 1)) & 3u);
}

/* Widened (x - zp) of one pixel's cs channels into cs4 int16 in the SMLAD pair order (x0, x2), (x1, x3)
 * of every group of 4 (SXTB16 of a weight word gives (w0, w2), of the word rotated by 8 (w1, w3));
 * padding channels are 0. */
static void acc_widen(const mixq_rt_acc_params *p, const uint8_t *in, int32_t pixel, int16_t *dst)
{
    const int32_t cs = p->cs, cs4 = (cs + 3) & ~3, base = pixel * cs, zp = p->in_zp, bits = p->in_bits;
    int32_t k = 0;
    for (; k + 4 <= cs; k += 4) {
        dst[k] = (int16_t)(act_value(in, base + k, bits) - zp);
        dst[k + 1] = (int16_t)(act_value(in, base + k + 2, bits) - zp);
        dst[k + 2] = (int16_t)(act_value(in, base + k + 1, bits) - zp);
        dst[k + 3] = (int16_t)(act_value(in, base + k + 3, bits) - zp);
    }
    for (; k < cs4; k++) {
        const int32_t v = k < cs ? act_value(in, base + k, bits) - zp : 0;
        dst[(k & ~3) | ((k & 1) << 1) | ((k >> 1) & 1)] = (int16_t)v;
    }
}

/* 1x1, stride 1, no padding (the usual consumer: a block's project convolution): two pixels at a
 * time share every weight word; with the DSP extension two MACs per SMLAD. */
static void acc_pointwise(const mixq_rt_acc_params *p, const uint8_t *in, const int8_t *w, int32_t *acc,
                          int16_t *buf)
{
    const int32_t cs4 = (p->cs + 3) & ~3, pixels = p->out_h * p->out_w, cout = p->cout;
    int16_t *x1 = buf + cs4;
    for (int32_t px = 0; px < pixels; px += 2) {
        const int32_t two = px + 1 < pixels;
        acc_widen(p, in, px, buf);
        if (two) {
            acc_widen(p, in, px + 1, x1);
        }
        int32_t *a0 = acc + px * cout;
        for (int32_t co = 0; co < cout; co++) {
            const int8_t *wr = w + co * cs4;
            int32_t s0 = 0, s1 = 0;
#if defined(__ARM_FEATURE_DSP)
            for (int32_t k = 0; k < cs4; k += 4) {
                uint32_t wv;
                memcpy(&wv, wr + k, 4);
                const int16x2_t we = __sxtb16(wv), wo = __sxtb16((wv >> 8) | (wv << 24));
                int16x2_t a, b;
                memcpy(&a, buf + k, 4);
                memcpy(&b, buf + k + 2, 4);
                s0 = __smlad(a, we, s0);
                s0 = __smlad(b, wo, s0);
                memcpy(&a, x1 + k, 4);
                memcpy(&b, x1 + k + 2, 4);
                s1 = __smlad(a, we, s1);
                s1 = __smlad(b, wo, s1);
            }
#else
            for (int32_t k = 0; k < cs4; k += 4) {
                const int32_t w0 = wr[k], w1 = wr[k + 1], w2 = wr[k + 2], w3 = wr[k + 3];
                s0 += buf[k] * w0 + buf[k + 1] * w2 + buf[k + 2] * w1 + buf[k + 3] * w3;
                s1 += x1[k] * w0 + x1[k + 1] * w2 + x1[k + 2] * w1 + x1[k + 3] * w3;
            }
#endif
            a0[co] += s0;
            if (two) {
                a0[cout + co] += s1;
            }
        }
    }
}

void mixq_rt_conv_accumulate(const mixq_rt_acc_params *p, const void *in_v, const int8_t *w, int32_t *acc,
                             int16_t *buf)
{
    const uint8_t *in = (const uint8_t *)in_v;
    const int32_t cs4 = (p->cs + 3) & ~3;
    if (p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && p->pt == 0 && p->pl == 0 && p->in_h == p->out_h &&
        p->in_w == p->out_w) {
        acc_pointwise(p, in, w, acc, buf);
        return;
    }
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int32_t *a = acc + (oy * p->out_w + ox) * p->cout;
            for (int32_t co = 0; co < p->cout; co++) {
                int32_t sum = 0;
                for (int32_t ky = 0; ky < p->kh; ky++) {
                    const int32_t y = oy * p->sh - p->pt + ky * p->dh;
                    if (y < 0 || y >= p->in_h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < p->kw; kx++) {
                        const int32_t x = ox * p->sw - p->pl + kx * p->dw;
                        if (x < 0 || x >= p->in_w) {
                            continue;
                        }
                        const int32_t xi = (y * p->in_w + x) * p->cs;
                        const int8_t *wi = w + ((co * p->kh + ky) * p->kw + kx) * cs4;
                        for (int32_t ci = 0; ci < p->cs; ci++) {
                            sum += (act_value(in, xi + ci, p->in_bits) - p->in_zp) * (int32_t)wi[ci];
                        }
                    }
                }
                a[co] += sum;
            }
        }
    }
}

void mixq_rt_requantize_acc(int32_t count, int32_t channels, const int32_t *acc, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t act_min,
                            int32_t act_max, int32_t out_bits, void *out_v)
{
    uint8_t *out = (uint8_t *)out_v;
    for (int32_t i = 0; i < count; i++) {
        const int32_t c = i % channels;
        const int32_t v = acc[i] + (bias != NULL ? bias[c] : 0);
        const int32_t r = clamp32(mixq_rt_mbqm(v, mult[c], shift[c]) + out_zp, act_min, act_max);
        if (out_bits == 8) {
            out[i] = (uint8_t)(int8_t)r;
        } else {
            put_elem(out, i, out_bits, (uint32_t)r);
        }
    }
}

void mixq_rt_put_channels(int32_t pixels, int32_t cs, int32_t channels, int32_t c0, int32_t bits, const void *src,
                          void *dst)
{
    for (int32_t p = 0; p < pixels; p++) {
        if (bits == 8) {
            memcpy((uint8_t *)dst + p * channels + c0, (const uint8_t *)src + p * cs, (size_t)cs);
        } else {
            copy_elems((const uint8_t *)src, p * cs, (uint8_t *)dst, p * channels + c0, cs, bits);
        }
    }
}

/* ---- point-wise ------------------------------------------------------------------------------- */

/* interpreter._table_kernel */
void mixq_rt_lut(int32_t count, const int8_t table[256], const int8_t *in, int8_t *out)
{
    for (int32_t i = 0; i < count; i++) {
        out[i] = table[(int32_t)in[i] + 128];
    }
}

/* interpreter._prepare_relu_x and the integer branch of _prepare_quantize */
void mixq_rt_requantize(int32_t count, int32_t in_zp, int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min,
                        int32_t act_max, const int8_t *in, int8_t *out)
{
    for (int32_t i = 0; i < count; i++) {
        const int32_t r = mixq_rt_mbqm((int32_t)in[i] - in_zp, mult, shift) + out_zp;
        out[i] = (int8_t)clamp32(r, act_min, act_max);
    }
}

/* ---- softmax family: transcendental.py, gemmlowp fixed point ---------------------------------- */

static int32_t clz32(int32_t x)
{
    uint32_t u = (uint32_t)x;
    int32_t n = 0;
    if (u == 0u) {
        return 32;
    }
    while ((u & 0x80000000u) == 0u) {
        u <<= 1;
        n++;
    }
    return n;
}

static int32_t add32(int32_t a, int32_t b)
{
    return wrap32((int64_t)a + (int64_t)b);
}

static int32_t sat64(int64_t v)
{
    return v > RT_INT32_MAX ? RT_INT32_MAX : (v < RT_INT32_MIN ? RT_INT32_MIN : (int32_t)v);
}

/* _sat_left_shift / _sat_left_shift_param (exponent >= 0) */
static int32_t sat_left_shift(int32_t x, int32_t exponent)
{
    if (exponent == 0) {
        return x;
    }
    const int64_t threshold = ((int64_t)1 << (31 - exponent)) - 1;
    if (x > threshold) {
        return RT_INT32_MAX;
    }
    if (x < -threshold) {
        return RT_INT32_MIN;
    }
    return wrap32((int64_t)((uint64_t)(int64_t)x << exponent));
}

static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a + (int64_t)b;
    const int64_t t = s + (s >= 0 ? 1 : -1);
    return (int32_t)(t / 2);
}

/* one_over_one_plus_x_for_x_in_0_1 */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int32_t half_denominator = rounding_half_sum(a, RT_INT32_MAX);
    int32_t x = add32(1515870810, mixq_rt_srdhm(half_denominator, -1010580540));
    for (int32_t i = 0; i < 3; i++) {
        const int32_t one_minus = wrap32((int64_t)(1 << 29) - (int64_t)mixq_rt_srdhm(half_denominator, x));
        x = add32(x, sat_left_shift(mixq_rt_srdhm(x, one_minus), 2));
    }
    return sat_left_shift(x, 1);
}

/* log_x_for_x_greater_than_or_equal_to_1 with output_bits 5, input_bits 12 */
static int32_t log_x_q5_from_q12(int32_t z_a)
{
    const int32_t input_bits = 12;
    const int32_t accum_bits = 6;
    const int32_t log_2 = 1488522236, sqrt_sqrt_half = 1805811301, sqrt_half = 1518500250;
    const int32_t alpha_n = 117049297, alpha_d = 127690142, alpha_i = 1057819769, alpha_f = 638450708;
    const int32_t shifted_quarter = mixq_rt_rdbp(536870912, accum_bits);

    const int32_t z_a_headroom_plus_1 = clz32(z_a);
    const int32_t r_a_tmp = sat_left_shift(z_a, z_a_headroom_plus_1 - 1);
    const int32_t r_a_raw = sat_left_shift(mixq_rt_srdhm(r_a_tmp, sqrt_half), 1);
    const int32_t z_a_pow_2_adj =
        sat64((int64_t)sat_left_shift(input_bits - z_a_headroom_plus_1, 31 - accum_bits) + shifted_quarter);
    const int32_t z_b = mixq_rt_srdhm(z_a, sqrt_half);
    const int32_t z_b_headroom = clz32(z_b) - 1;
    const int32_t r_b_raw = sat_left_shift(z_a, z_b_headroom);
    const int32_t z_b_pow_2_adj =
        sat64((int64_t)sat_left_shift(input_bits - z_b_headroom, 31 - accum_bits) - shifted_quarter);

    const int32_t r = r_a_raw < r_b_raw ? r_a_raw : r_b_raw;
    const int32_t z_pow_2_adj = z_a_pow_2_adj > z_b_pow_2_adj ? z_a_pow_2_adj : z_b_pow_2_adj;
    const int32_t p = rounding_half_sum(r, sqrt_sqrt_half);
    int32_t q = add32(r, -sqrt_sqrt_half);
    q = add32(q, q);
    const int32_t common_sq = mixq_rt_srdhm(q, q);
    const int32_t num = add32(mixq_rt_srdhm(q, r), mixq_rt_srdhm(mixq_rt_srdhm(q, common_sq), alpha_n));
    const int32_t denom_minus_one =
        add32(mixq_rt_srdhm(p, add32(add32(alpha_i, q), mixq_rt_srdhm(alpha_d, common_sq))), mixq_rt_srdhm(alpha_f, q));
    const int32_t recip_denom = one_over_one_plus_x(denom_minus_one);
    const int32_t num_scaled = mixq_rt_rdbp(num, accum_bits);
    const int32_t total = add32(mixq_rt_srdhm(z_pow_2_adj, log_2), mixq_rt_srdhm(num_scaled, recip_denom));
    return sat_left_shift(total, 1);
}

static int32_t row_max(const int8_t *x, int32_t depth)
{
    int32_t m = -128;
    for (int32_t i = 0; i < depth; i++) {
        m = x[i] > m ? x[i] : m;
    }
    return m;
}

static int32_t row_sum_of_exps(const int8_t *x, int32_t depth, int32_t max, int32_t diff_min, const int32_t exps[256])
{
    uint32_t sum = 0u;
    for (int32_t i = 0; i < depth; i++) {
        const int32_t d = max - x[i];
        if (-d >= diff_min) {
            sum += (uint32_t)mixq_rt_rdbp(exps[d], 12);
        }
    }
    return (int32_t)sum;
}

/* softmax_int8 (output scale 1/256, zero point -128) */
void mixq_rt_softmax(int32_t rows, int32_t depth, int32_t diff_min, const int32_t exps[256], const int8_t *in,
                     int8_t *out)
{
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        int8_t *y = out + r * depth;
        const int32_t max = row_max(x, depth);
        const int32_t sum = row_sum_of_exps(x, depth, max, diff_min, exps);
        const int32_t headroom_plus_one = clz32(sum);
        const int32_t num_bits_over_unit = 12 - headroom_plus_one;
        const uint32_t shifted = headroom_plus_one >= 32 ? 0u : (uint32_t)sum << headroom_plus_one;
        const int32_t shifted_scale = one_over_one_plus_x((int32_t)(shifted - 0x80000000u));
        const int32_t exponent = num_bits_over_unit + 31 - 8;
        for (int32_t i = 0; i < depth; i++) {
            const int32_t d = max - x[i];
            if (-d >= diff_min) {
                const int32_t v = mixq_rt_rdbp(mixq_rt_srdhm(shifted_scale, exps[d]), exponent) - 128;
                y[i] = (int8_t)clamp32(v, -128, 127);
            } else {
                y[i] = -128;
            }
        }
    }
}

/* log_softmax_int8 (output scale 16/256, zero point 127) */
void mixq_rt_log_softmax(int32_t rows, int32_t depth, int32_t diff_min, const int32_t rescaled[256],
                         const int32_t exps[256], int32_t reverse_mult, int32_t reverse_shift, const int8_t *in,
                         int8_t *out)
{
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        int8_t *y = out + r * depth;
        const int32_t max = row_max(x, depth);
        const int32_t sum = row_sum_of_exps(x, depth, max, diff_min, exps);
        const int32_t log_sum = log_x_q5_from_q12(sum);
        const int32_t shifted_log_sum = add32(log_sum, RT_INT32_MIN);
        const int32_t scaled = mixq_rt_mbqm(shifted_log_sum, reverse_mult, reverse_shift);
        const int32_t adjusted_diff_min = scaled > diff_min - 1 ? scaled : diff_min - 1;
        for (int32_t i = 0; i < depth; i++) {
            const int32_t diff = x[i] - max;
            if (diff > adjusted_diff_min) {
                const int32_t v = mixq_rt_rdbp(add32(rescaled[-diff], -log_sum), 31 - 5 - 4) + 127;
                y[i] = (int8_t)clamp32(v, -128, 127);
            } else {
                y[i] = -128;
            }
        }
    }
}
