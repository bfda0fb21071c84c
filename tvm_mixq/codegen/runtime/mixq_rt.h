/*
 * mixq_rt.h - the small runtime of generated models: the int8 ops the kernel library does not
 * provide (broadcasting ADD, MUL, MAX_POOL_2D, MEAN, PAD, SOFTMAX, LOG_SOFTMAX, QUANTIZE,
 * DEQUANTIZE, TRANSPOSE, CONCATENATION, RESIZE_NEAREST_NEIGHBOR, table look-ups for LOGISTIC and
 * HARD_SWISH, RELU/RELU6 requantization).
 *
 * Semantics are those of the project's Python reference (tvm_mixq.reference), bit for bit: the
 * parameters (multipliers, shifts, clamp bounds, tables, index maps) are computed in Python by
 * the reference's own functions when the code is generated; these functions only apply them.
 *
 * Shapes are 4-D ([d0, d1, d2, d3], row-major, lower-rank tensors padded with leading 1s).
 * Activations are int8 (float32 only at QUANTIZE input / DEQUANTIZE output).
 */
#ifndef MIXQ_RT_H
#define MIXQ_RT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t d[4];
} mixq_rt_shape;

/* ---- fixed-point primitives (gemmlowp / TFLite) ------------------------------------------ */
int32_t mixq_rt_srdhm(int32_t a, int32_t b);
int32_t mixq_rt_rdbp(int64_t x, int32_t exponent);
/* MultiplyByQuantizedMultiplier: shift > 0 is a left shift. */
int32_t mixq_rt_mbqm(int32_t x, int32_t multiplier, int32_t shift);

/* ---- element-wise with broadcasting: strides are 0 along broadcast dimensions --------------- */
typedef struct {
    int32_t in1_zp, in1_mult, in1_shift;
    int32_t in2_zp, in2_mult, in2_shift;
    int32_t left_shift;
    int32_t out_zp, out_mult, out_shift;
    int32_t act_min, act_max;
} mixq_rt_add_params;

void mixq_rt_add(const mixq_rt_add_params *p, const mixq_rt_shape *out_shape, const int32_t s1[4],
                 const int32_t s2[4], const int8_t *in1, const int8_t *in2, int8_t *out);

typedef struct {
    int32_t in1_zp, in2_zp;
    int32_t mult, shift;
    int32_t out_zp, act_min, act_max;
} mixq_rt_mul_params;

void mixq_rt_mul(const mixq_rt_mul_params *p, const mixq_rt_shape *out_shape, const int32_t s1[4],
                 const int32_t s2[4], const int8_t *in1, const int8_t *in2, int8_t *out);

/* ---- pooling and reductions --------------------------------------------------------------- */
typedef struct {
    int32_t filter_h, filter_w, stride_h, stride_w, pad_top, pad_left;
    int32_t requant; /* 0: plain max; 1: MBQM(max - in_zp, mult, shift) + out_zp */
    int32_t in_zp, mult, shift, out_zp;
    int32_t act_min, act_max;
} mixq_rt_pool_params;

/* in/out are NHWC: shape d = [n, h, w, c]. */
void mixq_rt_max_pool(const mixq_rt_pool_params *p, const mixq_rt_shape *in_shape, const mixq_rt_shape *out_shape,
                      const int8_t *in, int8_t *out);

typedef struct {
    int32_t reduce[4]; /* 1 for the reduced axes */
    int32_t count;     /* elements summed per output */
    int32_t in_zp, mult, shift, out_zp, act_min, act_max;
} mixq_rt_mean_params;

void mixq_rt_mean(const mixq_rt_mean_params *p, const mixq_rt_shape *in_shape, const int8_t *in, int8_t *out);

/* ---- data movement ------------------------------------------------------------------------ */
/* before[i] elements of value `value` are added in front of axis i (after[] follows from out_shape). */
void mixq_rt_pad(const mixq_rt_shape *in_shape, const mixq_rt_shape *out_shape, const int32_t before[4],
                 int8_t value, const int8_t *in, int8_t *out);
/* out[o0..o3] = in[index with axis perm[k] = o_k]. */
void mixq_rt_transpose(const mixq_rt_shape *in_shape, const int32_t perm[4], const int8_t *in, int8_t *out);
/* outer x (axis_i x inner) blocks of each input, in input order. */
void mixq_rt_concat(int32_t outer, int32_t count, const int32_t *block_bytes, const int8_t *const *ins, int8_t *out);
/* NHWC; rows[oh], cols[ow] are the source indices. */
void mixq_rt_resize_nearest(const mixq_rt_shape *in_shape, const mixq_rt_shape *out_shape, const int16_t *rows,
                            const int16_t *cols, const int8_t *in, int8_t *out);

/* ---- patch tiles (NHWC, batch 1, element i of a b-bit tensor in bits [(i % (8/b)) * b, ...) of
 * byte i / (8/b)) --------------------------------------------------------------------------------- */
/* dst (h x w x c, contiguous) = src[y0 .. y0 + h, x0 .. x0 + w, :] of a tensor src_w pixels wide. */
void mixq_rt_gather(const void *src, int32_t src_w, int32_t c, int32_t bits, int32_t y0, int32_t x0, int32_t h,
                    int32_t w, void *dst);
/* dst[y0 .. y0 + h, x0 .. x0 + w, :] of a tensor dst_w pixels wide = src (h x w x c, contiguous). */
void mixq_rt_scatter(const void *src, int32_t h, int32_t w, int32_t c, int32_t bits, void *dst, int32_t dst_w,
                     int32_t y0, int32_t x0);

/* ---- channel splits (int8 or sub-byte packed activations) ------------------------------------ */
/* acc[n, oy, ox, co] += sum over (ky, kx, ci) of (in[n, y, x, ci] - in_zp) * w[co, ky, kx, ci] for one
 * input-channel slice (in: [1, h, w, cs] at in_bits (8: int8, 4/2: unsigned packed), w: [cout, kh, kw,
 * cs4] one int8 byte per weight, each tap's cs weights padded with zeros to cs4 = cs rounded up to 4,
 * 4-byte aligned), y = oy*sh - pt + ky*dh, padded positions skipped. buf: 4 * cs4 bytes of scratch,
 * 4-byte aligned (two widened pixels of the 1x1 path). */
typedef struct {
    int32_t in_h, in_w, cs, out_h, out_w, cout, kh, kw, sh, sw, dh, dw, pt, pl, in_zp, in_bits;
} mixq_rt_acc_params;
void mixq_rt_conv_accumulate(const mixq_rt_acc_params *p, const void *in, const int8_t *w, int32_t *acc,
                             int16_t *buf);
/* out = clamp(MBQM(acc + bias[c], mult[c], shift[c]) + out_zp, act_min, act_max), c = i % channels,
 * stored at out_bits (8: int8, 4/2: unsigned packed). */
void mixq_rt_requantize_acc(int32_t count, int32_t channels, const int32_t *acc, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int32_t out_zp, int32_t act_min,
                            int32_t act_max, int32_t out_bits, void *out);
/* dst[p, c0 .. c0 + cs] = src[p, 0 .. cs] for every pixel p (dst has `channels` channels), elements of
 * `bits` bits. */
void mixq_rt_put_channels(int32_t pixels, int32_t cs, int32_t channels, int32_t c0, int32_t bits, const void *src,
                          void *dst);

/* ---- point-wise ----------------------------------------------------------------------------- */
/* out = table[in + 128] (LOGISTIC, HARD_SWISH). */
void mixq_rt_lut(int32_t count, const int8_t table[256], const int8_t *in, int8_t *out);
/* out = clamp(MBQM(in - in_zp, mult, shift) + out_zp, act_min, act_max) (RELU, RELU6, int QUANTIZE). */
void mixq_rt_requantize(int32_t count, int32_t in_zp, int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min,
                        int32_t act_max, const int8_t *in, int8_t *out);
/* float QUANTIZE: clamp(round_half_away(x / scale) + zp, act_min, act_max). */
void mixq_rt_quantize_f32(int32_t count, float scale, int32_t zp, int32_t act_min, int32_t act_max, const float *in,
                          int8_t *out);
/* DEQUANTIZE: (float)((double)scale * (x - zp)). */
void mixq_rt_dequantize_f32(int32_t count, float scale, int32_t zp, const int8_t *in, float *out);

/* ---- softmax family (rows of `depth` values along the last axis) ---------------------------- */
/* exps[d] = exp of diff -d (Q0) for d in [0, 255]; valid when -d >= diff_min. */
void mixq_rt_softmax(int32_t rows, int32_t depth, int32_t diff_min, const int32_t exps[256], const int8_t *in,
                     int8_t *out);
/* rescaled[d], exps[d] as for softmax; reverse multiplier and shift of TFLite's LOG_SOFTMAX. */
void mixq_rt_log_softmax(int32_t rows, int32_t depth, int32_t diff_min, const int32_t rescaled[256],
                         const int32_t exps[256], int32_t reverse_mult, int32_t reverse_shift, const int8_t *in,
                         int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* MIXQ_RT_H */
