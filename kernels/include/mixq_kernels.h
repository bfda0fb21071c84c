/*
 * mixq_kernels.h - mixed-precision (8/4/2-bit) quantized kernels for Cortex-M and the host.
 *
 * Public API of the kernel library. One function per (op, input bits, weight bits, output bits)
 * variant, named  mixq_<op>_a<in>w<w>o<out>  (add: mixq_add_a<in1>b<in2>o<out>, average pool:
 * mixq_avgpool_a<in>o<out>), each with a _get_buffer_size twin giving the scratch it needs, plus
 * a thin dispatcher per op that picks the variant from a mixq_bits value.
 *
 * Conventions (see kernels/README.md for the full description):
 *   - Activations are NHWC (batch n, height, width, channels). 8-bit activations are int8
 *     (signed); 4- and 2-bit activations are unsigned ([0, 15] and [0, 3]). Sub-byte tensors are
 *     packed little-end first: element i of the flattened NHWC tensor sits in bits
 *     [(i % k) * b, (i % k + 1) * b) of byte i / k, k = 8 / b. Real value = scale * (q - zp).
 *   - Weights are signed with zero point 0, quantized per output channel, and are passed in the
 *     kernel layout produced offline by tvm_mixq.kernellib.pack_weights() (conv2d, pointwise,
 *     fully connected: OHWI rows padded to mixq_weight_row_len(), channel pairs interleaved one
 *     32-bit word at a time, 2-bit weights stored as w + 2 in a permuted order; depthwise:
 *     [KH, KW, C*mult] packed plainly). mixq_weights_size() gives the byte count. The weight
 *     pointer must be 4-byte aligned. A4W4 conv2d / pointwise / fully connected also take their
 *     weights already re-spaced into SMLAD lane words, through the entry points with the suffix
 *     _lanes (below): no scratch and no call-start work for the weights.
 *   - Bias is int32 per output channel (may be NULL).
 *   - Requantization is TFLite's (double rounding): out = clamp(MBQM(acc, mult[c], shift[c]) +
 *     output_zp, act_min, act_max), acc = bias[c] + sum((x - input_zp) * w). act_min/act_max must
 *     lie inside the output bitwidth's range. Multipliers must be >= 0 and shifts in [-31, 30].
 *   - Scratch memory comes from the caller through mixq_context (ctx->buf aligned to 4 bytes,
 *     ctx->size bytes, at least what _get_buffer_size returned). The library never allocates.
 *   - Every kernel returns MIXQ_OK or a negative mixq_status and writes nothing on error.
 */
#ifndef MIXQ_KERNELS_H
#define MIXQ_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIXQ_API_VERSION 2 /* 2: the A4W4 lane-weight entry points (_lanes) */

typedef int32_t mixq_status;
#define MIXQ_OK 0
#define MIXQ_ERR_ARG (-1)     /* a shape, parameter or bitwidth the kernel cannot take */
#define MIXQ_ERR_SCRATCH (-2) /* ctx->buf NULL or smaller than _get_buffer_size() */

/* Caller-provided scratch. */
typedef struct {
    void *buf;
    int32_t size;
} mixq_context;

/* Tensor dimensions. Activations [n, h, w, c]; conv filters [c_out=n, kh=h, kw=w, c_in=c];
 * depthwise filters [1, kh, kw, c_out]; fully connected: input [n, 1, 1, k], filter [c_out, 1, 1, k]. */
typedef struct {
    int32_t n, h, w, c;
} mixq_dims;

typedef struct {
    int32_t h, w;
} mixq_tile;

/* Bitwidths of one variant: 8, 4 or 2 each. For add, w is the second input's bitwidth. */
typedef struct {
    int32_t in, w, out;
} mixq_bits;

/* conv2d, pointwise, depthwise. padding is the top/left padding; bottom/right follows from the
 * output dims. Input elements outside the image count as input_zp (contribute zero). */
typedef struct {
    int32_t input_zp;
    int32_t output_zp;
    mixq_tile stride;
    mixq_tile padding;
    mixq_tile dilation;
    int32_t ch_mult; /* depthwise channel multiplier (c_out = c_in * ch_mult); ignored otherwise */
    int32_t act_min;
    int32_t act_max;
} mixq_conv_params;

typedef struct {
    int32_t input_zp;
    int32_t output_zp;
    int32_t act_min;
    int32_t act_max;
} mixq_fc_params;

/* Per output channel requantization: real multiplier = multiplier * 2^(shift - 31). */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
} mixq_per_channel_quant;

/* Elementwise add, TFLite's int8 ADD arithmetic:
 *   a1 = MBQM((x1 - in1_zp) << left_shift, in1_mult, in1_shift), a2 likewise,
 *   out = clamp(MBQM(a1 + a2, out_mult, out_shift) + output_zp, act_min, act_max). */
typedef struct {
    int32_t in1_zp, in1_mult, in1_shift;
    int32_t in2_zp, in2_mult, in2_shift;
    int32_t left_shift;
    int32_t output_zp, out_mult, out_shift;
    int32_t act_min, act_max;
} mixq_add_params;

/* Average pool over valid (non-padded) elements. acc = sum over the window of (x - input_zp),
 * avg = acc / count rounded half away from zero (TFLite), then
 *   out = clamp(MBQM(avg, multiplier, shift) + output_zp, act_min, act_max)
 * when multiplier != 0, else out = clamp(avg + output_zp, act_min, act_max). */
typedef struct {
    mixq_tile stride;
    mixq_tile padding;
    mixq_tile filter;
    int32_t input_zp;
    int32_t output_zp;
    int32_t multiplier;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} mixq_pool_params;

/* ---- layout helpers ---------------------------------------------------------------------- */

/* Elements per weight row (one output channel) after padding K = kh*kw*c_in for the kernel
 * layout: multiple of 4 for 8-bit weights, of 16 for 4- and 2-bit weights. */
int32_t mixq_weight_row_len(int32_t k, int32_t w_bits);
/* Bytes of conv2d / pointwise / fully connected weights in kernel layout. */
int32_t mixq_weights_size(int32_t k, int32_t c_out, int32_t w_bits);
/* Bytes of A4W4 weights re-spaced into lane words (the _lanes entry points): one per weight of the
 * padded rows, c_out rounded up to even. */
int32_t mixq_w4_lanes_size(int32_t k, int32_t c_out);
/* Bytes of a packed activation tensor of count elements. */
int32_t mixq_packed_size(int32_t count, int32_t bits);
/* 1 when the library was built with the Cortex-M DSP (packed SIMD) paths, else 0. */
int32_t mixq_has_dsp(void);

/* ---- dispatchers ------------------------------------------------------------------------- */

int32_t mixq_conv2d_get_buffer_size(mixq_bits bits, const mixq_conv_params *p, const mixq_dims *in,
                                    const mixq_dims *filter, const mixq_dims *out);
mixq_status mixq_conv2d(mixq_bits bits, const mixq_context *ctx, const mixq_conv_params *p,
                        const mixq_per_channel_quant *q, const mixq_dims *in_dims, const void *in,
                        const mixq_dims *filter_dims, const void *filter, const int32_t *bias,
                        const mixq_dims *out_dims, void *out);

int32_t mixq_pointwise_get_buffer_size(mixq_bits bits, const mixq_conv_params *p, const mixq_dims *in,
                                       const mixq_dims *filter, const mixq_dims *out);
mixq_status mixq_pointwise(mixq_bits bits, const mixq_context *ctx, const mixq_conv_params *p,
                           const mixq_per_channel_quant *q, const mixq_dims *in_dims, const void *in,
                           const mixq_dims *filter_dims, const void *filter, const int32_t *bias,
                           const mixq_dims *out_dims, void *out);

int32_t mixq_depthwise_get_buffer_size(mixq_bits bits, const mixq_conv_params *p, const mixq_dims *in,
                                       const mixq_dims *filter, const mixq_dims *out);
mixq_status mixq_depthwise(mixq_bits bits, const mixq_context *ctx, const mixq_conv_params *p,
                           const mixq_per_channel_quant *q, const mixq_dims *in_dims, const void *in,
                           const mixq_dims *filter_dims, const void *filter, const int32_t *bias,
                           const mixq_dims *out_dims, void *out);

int32_t mixq_fully_connected_get_buffer_size(mixq_bits bits, const mixq_fc_params *p, const mixq_dims *in,
                                             const mixq_dims *filter, const mixq_dims *out);
mixq_status mixq_fully_connected(mixq_bits bits, const mixq_context *ctx, const mixq_fc_params *p,
                                 const mixq_per_channel_quant *q, const mixq_dims *in_dims, const void *in,
                                 const mixq_dims *filter_dims, const void *filter, const int32_t *bias,
                                 const mixq_dims *out_dims, void *out);

/* bits.in: first input, bits.w: second input, bits.out: output. Both inputs and the output
 * have the same dims (no broadcasting). */
int32_t mixq_add_get_buffer_size(mixq_bits bits, const mixq_dims *dims);
mixq_status mixq_add(mixq_bits bits, const mixq_context *ctx, const mixq_add_params *p, const mixq_dims *dims,
                     const void *in1, const void *in2, void *out);

/* bits.w is ignored. */
int32_t mixq_avgpool_get_buffer_size(mixq_bits bits, const mixq_pool_params *p, const mixq_dims *in,
                                     const mixq_dims *out);
mixq_status mixq_avgpool(mixq_bits bits, const mixq_context *ctx, const mixq_pool_params *p,
                         const mixq_dims *in_dims, const void *in, const mixq_dims *out_dims, void *out);

/* ---- A4W4 weights in lane words ------------------------------------------------------------
 * mixq_conv2d_a4w4o<b>_lanes, mixq_pointwise_a4w4o<b>_lanes, mixq_fully_connected_a4w4o<b>_lanes
 * (b = 8, 4, 2; and their _get_buffer_size twins) take the same arguments as the variant without
 * the suffix, except:
 *   - `filter` holds the 4-bit weights re-spaced offline into the SMLAD lane words of the packed
 *     A4W4 path (mixq_w4_lanes_size(K, c_out) bytes, one per weight; produced by
 *     tvm_mixq.kernellib.pack_w4_lanes): rows padded to mixq_weight_row_len(K, 4); per channel pair
 *     (an odd last channel paired with a zero row) and per 8 weights w0..w7 of a row four 32-bit
 *     words  c0 A, c0 B, c1 A, c1 B  of int16 halfwords  A = (w1 + 2048 w0, w5 + 2048 w4),
 *     B = (w3 + 2048 w2, w7 + 2048 w6);
 *   - `bias` is the lane bias  b'[c] = bias[c] + (8 - input_zp) * sum_k w[c][k]  (the bias of the
 *     activations centred at 8; tvm_mixq.kernellib.w4_lane_bias; NULL means 0 for every channel).
 * The call then neither re-spaces the weights into scratch nor spends call-start time on them, and
 * it takes the packed path whatever its pixel count (kernels/README.md, "W4A4"). */

/* ---- the variants (generated) ------------------------------------------------------------ */
#include "mixq_kernels_variants.h"

#ifdef __cplusplus
}
#endif

#endif /* MIXQ_KERNELS_H */
