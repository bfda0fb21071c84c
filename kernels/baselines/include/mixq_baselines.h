/*
 * Baseline kernels the benchmark compares the project's kernels with (DESIGN sections 3 and 5).
 *
 *  - cmsis_int8: int8 activations and weights, CMSIS-NN style. Operands are widened to 16 bit
 *    with SXTB16/SXTAB16 (input offset folded into the widening) and multiplied with SMLAD
 *    (2 MACs per instruction); conv and pointwise use an im2col of two output pixels and a
 *    2x2 output block (2 pixels x 2 output channels); fully connected a 2x1 block; depthwise
 *    4 channels per step with SMLABB/SMLATT.
 *  - cmix_unpack16: the same kernels for sub-byte operands, CMix-NN style: 4/2-bit activations
 *    and weights are unpacked to 16-bit lanes, then the same SMLAD loops and blocking run.
 *    Whatever the bitwidth, one SMLAD retires 2 MACs: what packing must beat.
 *
 * One generic implementation covers every (in, w, out) bitwidth in {8,4,2}^3; cmsis_int8 is its
 * (8,8,8) instance. Numerics are TFLite's (per-channel MultiplyByQuantizedMultiplier with double
 * rounding, output zero point, clamp) and bit-exact with tvm_mixq/reference.
 *
 * Data conventions (tvm_mixq/reference/subbyte.py):
 *  - 8-bit activations are int8; 4/2-bit activations are unsigned, zero point in their range.
 *  - Weights are signed with zero point 0: int8, or 4/2-bit two's complement.
 *  - Sub-byte tensors are packed little-end first in NHWC (activations) / OHWI (conv weights),
 *    [1, KH, KW, C] (depthwise weights), [N, K] (fully connected weights).
 *  - Outputs of 8 bits are int8, of 4/2 bits unsigned packed; act_min/act_max are the clamp
 *    bounds in the output's integer range (fused activation included).
 *
 * Constraints (a kernel returns MIXQ_BL_BAD_ARGS otherwise):
 *  - conv / pointwise / fully connected: K * w_bits is a multiple of 8 (every weight row starts
 *    on a byte), K = KH * KW * C_IN.
 *  - depthwise: C * max(in_bits, w_bits, out_bits) is a multiple of 8.
 *  - Every buffer (tensors and scratch) is 4-byte aligned.
 * Scratch: the caller provides mixq_bl_*_scratch_bytes(...) bytes, 4-byte aligned.
 *
 * Target: Armv7E-M with the DSP extension (Cortex-M4/M7/M33); built with -mcpu=cortex-m4|m7.
 */
#ifndef MIXQ_BASELINES_H_
#define MIXQ_BASELINES_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIXQ_BL_OK 0
#define MIXQ_BL_BAD_ARGS (-1)

/* Shape, bitwidths and quantization of one layer. For fully connected: in_h = in_w = out_h =
 * out_w = kh = kw = 1, cin = K, cout = N. For depthwise: cout = cin (multiplier 1). */
typedef struct {
    int32_t in_h, in_w, cin;
    int32_t out_h, out_w, cout;
    int32_t kh, kw;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w; /* top / left padding; the bottom / right follow from the output size */
    int32_t in_bits, w_bits, out_bits;
    int32_t input_offset;  /* minus the input zero point */
    int32_t output_offset; /* the output zero point */
    int32_t act_min, act_max;
} mixq_bl_layer;

/* Per-output-channel requantization: acc -> MultiplyByQuantizedMultiplier(acc, multiplier[c],
 * shift[c]) + output_offset, clamped. bias may be NULL. */
typedef struct {
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} mixq_bl_requant;

/* Conv2d with any kernel, stride and padding (also 1x1 pointwise): input [H, W, C_IN],
 * weights [C_OUT, KH, KW, C_IN], output [OH, OW, C_OUT]. */
size_t mixq_bl_conv2d_scratch_bytes(const mixq_bl_layer *layer);
int mixq_bl_conv2d(const mixq_bl_layer *layer, const mixq_bl_requant *rq, const void *input, const void *weights,
                   void *output, void *scratch);

/* Depthwise conv, multiplier 1: input [H, W, C], weights [1, KH, KW, C], output [OH, OW, C]. */
size_t mixq_bl_depthwise_scratch_bytes(const mixq_bl_layer *layer);
int mixq_bl_depthwise(const mixq_bl_layer *layer, const mixq_bl_requant *rq, const void *input, const void *weights,
                      void *output, void *scratch);

/* Fully connected: input [K], weights [N, K], output [N]. */
size_t mixq_bl_fully_connected_scratch_bytes(const mixq_bl_layer *layer);
int mixq_bl_fully_connected(const mixq_bl_layer *layer, const mixq_bl_requant *rq, const void *input,
                            const void *weights, void *output, void *scratch);

/* Elementwise add, TFLite quantized ADD arithmetic (left shift 20, per-input multipliers),
 * `count` elements of in_bits inputs to out_bits output (unsigned when sub-byte). */
typedef struct {
    int32_t count;
    int32_t in_bits, out_bits;
    int32_t input1_offset, input2_offset; /* minus the zero points */
    int32_t output_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} mixq_bl_add_params;
int mixq_bl_add(const mixq_bl_add_params *p, const void *input1, const void *input2, void *output);

/* Average pool over the valid (unpadded) window elements, input [H, W, C] -> output [OH, OW, C],
 * rounding as TFLite ((sum +- count/2) / count, truncating division). Uses kh, kw, stride, pad,
 * in_bits, out_bits, act_min, act_max of `layer`.
 *  - rq == NULL: TFLite's form (input and output share scale and zero point): the average of the
 *    raw values, clamped.
 *  - rq != NULL: the project's requantized form (tvm_mixq.reference.ops.avg_pool): the average of
 *    (x + input_offset) becomes MultiplyByQuantizedMultiplier(avg, multiplier[0], shift[0]) +
 *    output_offset, clamped. */
int mixq_bl_avgpool(const mixq_bl_layer *layer, const mixq_bl_requant *rq, const void *input, void *output);

#ifdef __cplusplus
}
#endif

#endif /* MIXQ_BASELINES_H_ */
