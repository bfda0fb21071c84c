/*
 * mixq_weighted_ops.cc - MIXQ_CONV_2D, MIXQ_DEPTHWISE_CONV_2D and MIXQ_FULLY_CONNECTED.
 *
 * Semantics: TFLite's int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED with the input, the
 * weights and the output each at 8, 4 or 2 bits (see mixq_tflm.h). acc = bias[c] +
 * sum((x - input_zp) * w) over the window (padding contributes nothing), out = clamp(
 * MultiplyByQuantizedMultiplier(acc, m[c], s[c]) + output_zp, act_min, act_max).
 * A 1x1 convolution without padding runs the pointwise kernel. A fully connected layer with one
 * input row runs in blocks of kFcBlock output channels, so that the kernel's per-channel scratch
 * (requantization data) stays small however wide the layer is; the results are the same. The
 * weights of the first c output channels (c a multiple of kFcBlock) are the first
 * mixq_weights_size(K, c, w_bits) bytes of the kernel layout (channel-major, in pairs).
 */
#include "mixq_tflm_common.h"
#include "mixq_tflm_ops.h"

namespace mixq_tflm {
namespace {

using internal::Scratch;

enum class Kind { kConv2d, kPointwise, kDepthwise, kFullyConnected };

constexpr int kInput = 0;
constexpr int kWeights = 1;
constexpr int kBias = 2;
constexpr int kRequant = 3;

/* Output channels per fully connected kernel call (whole bytes at any output bitwidth, whole
 * channel pairs of the weight layout). */
constexpr int32_t kFcBlock = 16;

struct OpData {
  Kind kind;
  bool options_ok;
  mixq_bits bits;
  mixq_conv_params conv;
  mixq_fc_params fc;
  mixq_dims in;
  mixq_dims filter;
  mixq_dims out;
  int32_t block; /* output channels per kernel call */
  Scratch scratch;
};

const char* OpName(Kind kind) {
  switch (kind) {
    case Kind::kDepthwise:
      return "MIXQ_DEPTHWISE_CONV_2D";
    case Kind::kFullyConnected:
      return "MIXQ_FULLY_CONNECTED";
    default:
      return "MIXQ_CONV_2D";
  }
}

/* Parse the options into op data; false on a missing or malformed option. */
bool ParseOptions(const char* buffer, size_t length, Kind kind, OpData* data) {
  const flexbuffers::Map map = internal::OptionsMap(buffer, length);
  int32_t version = 0;
  if (!internal::ReadInt(map, "version", &version) || version != kOptionsVersion) {
    return false;
  }
  int32_t input_zp = 0, output_zp = 0, act_min = 0, act_max = 0;
  bool ok = internal::ReadInt(map, "in_bits", &data->bits.in) && internal::ReadInt(map, "w_bits", &data->bits.w) &&
            internal::ReadInt(map, "out_bits", &data->bits.out) && internal::ReadInt(map, "input_zp", &input_zp) &&
            internal::ReadInt(map, "output_zp", &output_zp) && internal::ReadInt(map, "act_min", &act_min) &&
            internal::ReadInt(map, "act_max", &act_max) && internal::ReadDims(map, "in_shape", &data->in) &&
            internal::ReadDims(map, "filter_shape", &data->filter) && internal::ReadDims(map, "out_shape", &data->out);
  if (!ok || !internal::BitsOk(data->bits.in) || !internal::BitsOk(data->bits.w) ||
      !internal::BitsOk(data->bits.out)) {
    return false;
  }
  if (kind == Kind::kFullyConnected) {
    data->kind = kind;
    data->fc.input_zp = input_zp;
    data->fc.output_zp = output_zp;
    data->fc.act_min = act_min;
    data->fc.act_max = act_max;
    return true;
  }
  mixq_conv_params& p = data->conv;
  p.input_zp = input_zp;
  p.output_zp = output_zp;
  p.act_min = act_min;
  p.act_max = act_max;
  p.ch_mult = 1;
  ok = internal::ReadTile(map, "stride", &p.stride) && internal::ReadTile(map, "padding", &p.padding) &&
       internal::ReadTile(map, "dilation", &p.dilation);
  if (!ok) {
    return false;
  }
  if (kind == Kind::kDepthwise) {
    if (!internal::ReadInt(map, "depth_multiplier", &p.ch_mult)) {
      return false;
    }
    data->kind = kind;
    return true;
  }
  const bool pointwise = data->filter.h == 1 && data->filter.w == 1 && p.padding.h == 0 && p.padding.w == 0;
  data->kind = pointwise ? Kind::kPointwise : Kind::kConv2d;
  return true;
}

void* InitKind(TfLiteContext* context, const char* buffer, size_t length, Kind kind) {
  OpData* data = internal::AllocateOpData<OpData>(context);
  if (data == nullptr) {
    return nullptr;
  }
  data->kind = kind;
  data->options_ok = ParseOptions(buffer, length, kind, data);
  return data;
}

void* InitConv(TfLiteContext* context, const char* buffer, size_t length) {
  return InitKind(context, buffer, length, Kind::kConv2d);
}
void* InitDepthwise(TfLiteContext* context, const char* buffer, size_t length) {
  return InitKind(context, buffer, length, Kind::kDepthwise);
}
void* InitFullyConnected(TfLiteContext* context, const char* buffer, size_t length) {
  return InitKind(context, buffer, length, Kind::kFullyConnected);
}

/* Bytes of the weights in kernel layout. */
int32_t WeightBytes(const OpData& d) {
  if (d.kind == Kind::kDepthwise) {
    return internal::ActivationBytes(d.filter.h * d.filter.w * d.filter.c, d.bits.w);
  }
  return mixq_weights_size(d.filter.h * d.filter.w * d.filter.c, d.filter.n, d.bits.w);
}

/* Output channels per kernel call: kFcBlock for a single-row fully connected layer, else all. */
int32_t CallBlock(const OpData& d) {
  if (d.kind == Kind::kFullyConnected && d.in.n == 1 && d.out.c > kFcBlock) {
    return kFcBlock;
  }
  return d.out.c;
}

int32_t BufferSize(const OpData& d) {
  switch (d.kind) {
    case Kind::kConv2d:
      return mixq_conv2d_get_buffer_size(d.bits, &d.conv, &d.in, &d.filter, &d.out);
    case Kind::kPointwise:
      return mixq_pointwise_get_buffer_size(d.bits, &d.conv, &d.in, &d.filter, &d.out);
    case Kind::kDepthwise:
      return mixq_depthwise_get_buffer_size(d.bits, &d.conv, &d.in, &d.filter, &d.out);
    case Kind::kFullyConnected: {
      mixq_dims filter = d.filter;
      mixq_dims out = d.out;
      filter.n = out.c = d.block;
      return mixq_fully_connected_get_buffer_size(d.bits, &d.fc, &d.in, &filter, &out);
    }
  }
  return -1;
}

/* The fully connected layer block by block (see the file comment). */
mixq_status FullyConnectedBlocks(const OpData& d, const mixq_context* ctx, const mixq_per_channel_quant& q,
                                 const uint8_t* x, const uint8_t* w, const int32_t* bias, uint8_t* y) {
  const int32_t k = d.filter.h * d.filter.w * d.filter.c;
  for (int32_t c0 = 0; c0 < d.out.c; c0 += d.block) {
    const int32_t count = d.out.c - c0 < d.block ? d.out.c - c0 : d.block;
    mixq_dims filter = d.filter;
    mixq_dims out = d.out;
    filter.n = out.c = count;
    const mixq_per_channel_quant qb = {q.multiplier + c0, q.shift + c0};
    const int32_t w_offset = c0 == 0 ? 0 : mixq_weights_size(k, c0, d.bits.w);
    const mixq_status st = mixq_fully_connected(d.bits, ctx, &d.fc, &qb, &d.in, x, &filter, w + w_offset,
                                                bias != nullptr ? bias + c0 : nullptr, &out,
                                                y + c0 * d.bits.out / 8);
    if (st != MIXQ_OK) {
      return st;
    }
  }
  return MIXQ_OK;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  OpData* data = static_cast<OpData*>(node->user_data);
  const char* name = data != nullptr ? OpName(data->kind) : "MIXQ weighted op";
  MIXQ_TFLM_ENSURE(name, data != nullptr, "no persistent memory for the op data");
  MIXQ_TFLM_ENSURE(name, data->options_ok, "custom options missing, malformed or of another version");
  MIXQ_TFLM_ENSURE(name, node->inputs->size == 4 && node->outputs->size == 1,
                   "needs inputs [x, weights, bias, requant] and one output");
  TF_LITE_ENSURE_OK(context, internal::CheckActivation(name, "input", internal::Input(context, node, kInput),
                                                        data->in, data->bits.in));
  TF_LITE_ENSURE_OK(context, internal::CheckActivation(name, "output", internal::Output(context, node, 0),
                                                        data->out, data->bits.out));
  const int32_t cout = data->out.c;
  const TfLiteEvalTensor* weights = internal::Input(context, node, kWeights);
  MIXQ_TFLM_ENSURE(name, weights != nullptr && internal::TensorBytes(weights) == WeightBytes(*data),
                   "weights must hold the kernel layout of filter_shape at w_bits");
  const TfLiteEvalTensor* bias = internal::Input(context, node, kBias);
  MIXQ_TFLM_ENSURE(name, bias == nullptr || (bias->type == kTfLiteInt32 && internal::TensorBytes(bias) == 4 * cout),
                   "bias must be INT32 [C_out]");
  const TfLiteEvalTensor* requant = internal::Input(context, node, kRequant);
  MIXQ_TFLM_ENSURE(name,
                   requant != nullptr && requant->type == kTfLiteInt32 && internal::TensorBytes(requant) == 8 * cout,
                   "requant must be INT32 [2, C_out]");
  data->block = CallBlock(*data);
  const int32_t size = BufferSize(*data);
  MIXQ_TFLM_ENSURE(name, size >= 0, "the kernel library rejects this shape or bitwidth combination");
  return internal::RequestScratch(context, size, &data->scratch);
}

TfLiteStatus Invoke(TfLiteContext* context, TfLiteNode* node) {
  const OpData& d = *static_cast<const OpData*>(node->user_data);
  const TfLiteEvalTensor* input = internal::Input(context, node, kInput);
  const TfLiteEvalTensor* weights = internal::Input(context, node, kWeights);
  const TfLiteEvalTensor* bias = internal::Input(context, node, kBias);
  const TfLiteEvalTensor* requant = internal::Input(context, node, kRequant);
  TfLiteEvalTensor* output = internal::Output(context, node, 0);
  const mixq_context ctx = internal::ScratchContext(context, d.scratch);
  const mixq_per_channel_quant q = {requant->data.i32, requant->data.i32 + d.out.c};
  const int32_t* bias_data = bias != nullptr ? bias->data.i32 : nullptr;
  const void* x = input->data.data;
  const void* w = weights->data.data;
  void* y = output->data.data;
  mixq_status status = MIXQ_ERR_ARG;
  switch (d.kind) {
    case Kind::kConv2d:
      status = mixq_conv2d(d.bits, &ctx, &d.conv, &q, &d.in, x, &d.filter, w, bias_data, &d.out, y);
      break;
    case Kind::kPointwise:
      status = mixq_pointwise(d.bits, &ctx, &d.conv, &q, &d.in, x, &d.filter, w, bias_data, &d.out, y);
      break;
    case Kind::kDepthwise:
      status = mixq_depthwise(d.bits, &ctx, &d.conv, &q, &d.in, x, &d.filter, w, bias_data, &d.out, y);
      break;
    case Kind::kFullyConnected:
      status = FullyConnectedBlocks(d, &ctx, q, static_cast<const uint8_t*>(x), static_cast<const uint8_t*>(w),
                                    bias_data, static_cast<uint8_t*>(y));
      break;
  }
  if (status != MIXQ_OK) {
    MicroPrintf("%s: kernel returned %d", OpName(d.kind), static_cast<int>(status));
    return kTfLiteError;
  }
  return kTfLiteOk;
}

TFLMRegistration MakeRegistration(void* (*init)(TfLiteContext*, const char*, size_t)) {
  TFLMRegistration r = {};
  r.init = init;
  r.prepare = Prepare;
  r.invoke = Invoke;
  return r;
}

}  // namespace

TFLMRegistration Register_MIXQ_CONV_2D() { return MakeRegistration(InitConv); }
TFLMRegistration Register_MIXQ_DEPTHWISE_CONV_2D() { return MakeRegistration(InitDepthwise); }
TFLMRegistration Register_MIXQ_FULLY_CONNECTED() { return MakeRegistration(InitFullyConnected); }

}  // namespace mixq_tflm
