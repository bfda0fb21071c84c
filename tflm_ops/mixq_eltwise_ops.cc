/*
 * mixq_eltwise_ops.cc - MIXQ_ADD and MIXQ_AVERAGE_POOL_2D.
 *
 * MIXQ_ADD: TFLite's int8 ADD with each operand at 8, 4 or 2 bits and its own scale and zero
 *   point: a_i = MultiplyByQuantizedMultiplierSmallerThanOneExp((x_i - zp_i) << left_shift,
 *   m_i, s_i), out = clamp(MBQM(a_1 + a_2, out_mult, out_shift) + output_zp, act_min, act_max).
 *   Both inputs and the output have the same logical shape.
 * MIXQ_AVERAGE_POOL_2D: TFLite's rounded average of the valid (unpadded) window elements; when
 *   the output has another scale or zero point than the input (a sub-byte output), the centred
 *   average is requantized by the options' multiplier and shift.
 */
#include "mixq_tflm_common.h"
#include "mixq_tflm_ops.h"

namespace mixq_tflm {
namespace {

using internal::Scratch;

constexpr char kAddName[] = "MIXQ_ADD";
constexpr char kPoolName[] = "MIXQ_AVERAGE_POOL_2D";

struct AddData {
  bool options_ok;
  mixq_bits bits; /* in: first input, w: second input, out: output */
  mixq_add_params params;
  mixq_dims dims;
  Scratch scratch;
};

struct PoolData {
  bool options_ok;
  mixq_bits bits; /* w unused */
  mixq_pool_params params;
  mixq_dims in;
  mixq_dims out;
  Scratch scratch;
};

bool VersionOk(const flexbuffers::Map& map) {
  int32_t version = 0;
  return internal::ReadInt(map, "version", &version) && version == kOptionsVersion;
}

bool ParseAdd(const char* buffer, size_t length, AddData* d) {
  const flexbuffers::Map map = internal::OptionsMap(buffer, length);
  mixq_add_params& p = d->params;
  const bool ok =
      VersionOk(map) && internal::ReadInt(map, "in1_bits", &d->bits.in) &&
      internal::ReadInt(map, "in2_bits", &d->bits.w) && internal::ReadInt(map, "out_bits", &d->bits.out) &&
      internal::ReadDims(map, "shape", &d->dims) && internal::ReadInt(map, "in1_zp", &p.in1_zp) &&
      internal::ReadInt(map, "in1_mult", &p.in1_mult) && internal::ReadInt(map, "in1_shift", &p.in1_shift) &&
      internal::ReadInt(map, "in2_zp", &p.in2_zp) && internal::ReadInt(map, "in2_mult", &p.in2_mult) &&
      internal::ReadInt(map, "in2_shift", &p.in2_shift) && internal::ReadInt(map, "left_shift", &p.left_shift) &&
      internal::ReadInt(map, "output_zp", &p.output_zp) && internal::ReadInt(map, "out_mult", &p.out_mult) &&
      internal::ReadInt(map, "out_shift", &p.out_shift) && internal::ReadInt(map, "act_min", &p.act_min) &&
      internal::ReadInt(map, "act_max", &p.act_max);
  return ok && internal::BitsOk(d->bits.in) && internal::BitsOk(d->bits.w) && internal::BitsOk(d->bits.out);
}

bool ParsePool(const char* buffer, size_t length, PoolData* d) {
  const flexbuffers::Map map = internal::OptionsMap(buffer, length);
  mixq_pool_params& p = d->params;
  d->bits.w = 8;
  const bool ok =
      VersionOk(map) && internal::ReadInt(map, "in_bits", &d->bits.in) &&
      internal::ReadInt(map, "out_bits", &d->bits.out) && internal::ReadDims(map, "in_shape", &d->in) &&
      internal::ReadDims(map, "out_shape", &d->out) && internal::ReadTile(map, "filter", &p.filter) &&
      internal::ReadTile(map, "stride", &p.stride) && internal::ReadTile(map, "padding", &p.padding) &&
      internal::ReadInt(map, "input_zp", &p.input_zp) && internal::ReadInt(map, "output_zp", &p.output_zp) &&
      internal::ReadInt(map, "multiplier", &p.multiplier) && internal::ReadInt(map, "shift", &p.shift) &&
      internal::ReadInt(map, "act_min", &p.act_min) && internal::ReadInt(map, "act_max", &p.act_max);
  return ok && internal::BitsOk(d->bits.in) && internal::BitsOk(d->bits.out);
}

void* InitAdd(TfLiteContext* context, const char* buffer, size_t length) {
  AddData* d = internal::AllocateOpData<AddData>(context);
  if (d != nullptr) {
    d->options_ok = ParseAdd(buffer, length, d);
  }
  return d;
}

void* InitPool(TfLiteContext* context, const char* buffer, size_t length) {
  PoolData* d = internal::AllocateOpData<PoolData>(context);
  if (d != nullptr) {
    d->options_ok = ParsePool(buffer, length, d);
  }
  return d;
}

TfLiteStatus PrepareAdd(TfLiteContext* context, TfLiteNode* node) {
  AddData* d = static_cast<AddData*>(node->user_data);
  MIXQ_TFLM_ENSURE(kAddName, d != nullptr, "no persistent memory for the op data");
  MIXQ_TFLM_ENSURE(kAddName, d->options_ok, "custom options missing, malformed or of another version");
  MIXQ_TFLM_ENSURE(kAddName, node->inputs->size == 2 && node->outputs->size == 1, "needs two inputs, one output");
  TF_LITE_ENSURE_OK(context, internal::CheckActivation(kAddName, "first input", internal::Input(context, node, 0),
                                                        d->dims, d->bits.in));
  TF_LITE_ENSURE_OK(context, internal::CheckActivation(kAddName, "second input", internal::Input(context, node, 1),
                                                        d->dims, d->bits.w));
  TF_LITE_ENSURE_OK(context, internal::CheckActivation(kAddName, "output", internal::Output(context, node, 0),
                                                        d->dims, d->bits.out));
  const int32_t size = mixq_add_get_buffer_size(d->bits, &d->dims);
  MIXQ_TFLM_ENSURE(kAddName, size >= 0, "the kernel library rejects this bitwidth combination");
  return internal::RequestScratch(context, size, &d->scratch);
}

TfLiteStatus InvokeAdd(TfLiteContext* context, TfLiteNode* node) {
  const AddData& d = *static_cast<const AddData*>(node->user_data);
  const mixq_context ctx = internal::ScratchContext(context, d.scratch);
  const mixq_status status =
      mixq_add(d.bits, &ctx, &d.params, &d.dims, internal::Input(context, node, 0)->data.data,
               internal::Input(context, node, 1)->data.data, internal::Output(context, node, 0)->data.data);
  if (status != MIXQ_OK) {
    MicroPrintf("%s: kernel returned %d", kAddName, static_cast<int>(status));
    return kTfLiteError;
  }
  return kTfLiteOk;
}

TfLiteStatus PreparePool(TfLiteContext* context, TfLiteNode* node) {
  PoolData* d = static_cast<PoolData*>(node->user_data);
  MIXQ_TFLM_ENSURE(kPoolName, d != nullptr, "no persistent memory for the op data");
  MIXQ_TFLM_ENSURE(kPoolName, d->options_ok, "custom options missing, malformed or of another version");
  MIXQ_TFLM_ENSURE(kPoolName, node->inputs->size == 1 && node->outputs->size == 1, "needs one input, one output");
  TF_LITE_ENSURE_OK(context, internal::CheckActivation(kPoolName, "input", internal::Input(context, node, 0), d->in,
                                                        d->bits.in));
  TF_LITE_ENSURE_OK(context, internal::CheckActivation(kPoolName, "output", internal::Output(context, node, 0),
                                                        d->out, d->bits.out));
  const int32_t size = mixq_avgpool_get_buffer_size(d->bits, &d->params, &d->in, &d->out);
  MIXQ_TFLM_ENSURE(kPoolName, size >= 0, "the kernel library rejects this shape or bitwidth combination");
  return internal::RequestScratch(context, size, &d->scratch);
}

TfLiteStatus InvokePool(TfLiteContext* context, TfLiteNode* node) {
  const PoolData& d = *static_cast<const PoolData*>(node->user_data);
  const mixq_context ctx = internal::ScratchContext(context, d.scratch);
  const mixq_status status = mixq_avgpool(d.bits, &ctx, &d.params, &d.in, internal::Input(context, node, 0)->data.data,
                                          &d.out, internal::Output(context, node, 0)->data.data);
  if (status != MIXQ_OK) {
    MicroPrintf("%s: kernel returned %d", kPoolName, static_cast<int>(status));
    return kTfLiteError;
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration Register_MIXQ_ADD() {
  TFLMRegistration r = {};
  r.init = InitAdd;
  r.prepare = PrepareAdd;
  r.invoke = InvokeAdd;
  return r;
}

TFLMRegistration Register_MIXQ_AVERAGE_POOL_2D() {
  TFLMRegistration r = {};
  r.init = InitPool;
  r.prepare = PreparePool;
  r.invoke = InvokePool;
  return r;
}

}  // namespace mixq_tflm
