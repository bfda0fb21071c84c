/*
 * mixq_tflm_common.cc - helpers shared by the MIXQ ops: options, tensor checks, scratch.
 */
#include "mixq_tflm_common.h"

namespace mixq_tflm {
namespace internal {

namespace {

/* Stand-in buffer for kernels that need no scratch but reject a NULL pointer. */
int32_t g_no_scratch;

bool ToInt32(const flexbuffers::Reference& ref, int32_t* out) {
  if (!ref.IsIntOrUint()) {
    return false;
  }
  const int64_t value = ref.AsInt64();
  if (value < INT32_MIN || value > INT32_MAX) {
    return false;
  }
  *out = static_cast<int32_t>(value);
  return true;
}

}  // namespace

flexbuffers::Map OptionsMap(const char* buffer, size_t length) {
  if (buffer == nullptr || length == 0) {
    return flexbuffers::Map::EmptyMap();
  }
  const flexbuffers::Reference root = flexbuffers::GetRoot(reinterpret_cast<const uint8_t*>(buffer), length);
  if (!root.IsMap()) {
    return flexbuffers::Map::EmptyMap();
  }
  return root.AsMap();
}

bool ReadInt(const flexbuffers::Map& map, const char* key, int32_t* out) { return ToInt32(map[key], out); }

bool ReadInts(const flexbuffers::Map& map, const char* key, int32_t* out, int count) {
  const flexbuffers::Reference ref = map[key];
  if (ref.IsTypedVector() || ref.IsFixedTypedVector()) {
    const flexbuffers::TypedVector vec = ref.AsTypedVector();
    if (static_cast<int>(vec.size()) != count) {
      return false;
    }
    for (int i = 0; i < count; ++i) {
      if (!ToInt32(vec[i], &out[i])) {
        return false;
      }
    }
    return true;
  }
  if (ref.IsVector()) {
    const flexbuffers::Vector vec = ref.AsVector();
    if (static_cast<int>(vec.size()) != count) {
      return false;
    }
    for (int i = 0; i < count; ++i) {
      if (!ToInt32(vec[i], &out[i])) {
        return false;
      }
    }
    return true;
  }
  return false;
}

bool ReadDims(const flexbuffers::Map& map, const char* key, mixq_dims* out) {
  int32_t v[4];
  if (!ReadInts(map, key, v, 4)) {
    return false;
  }
  out->n = v[0];
  out->h = v[1];
  out->w = v[2];
  out->c = v[3];
  return out->n > 0 && out->h > 0 && out->w > 0 && out->c > 0;
}

bool ReadTile(const flexbuffers::Map& map, const char* key, mixq_tile* out) {
  int32_t v[2];
  if (!ReadInts(map, key, v, 2)) {
    return false;
  }
  out->h = v[0];
  out->w = v[1];
  return true;
}

bool BitsOk(int32_t bits) { return bits == 8 || bits == 4 || bits == 2; }

int32_t DimsCount(const mixq_dims& dims) { return dims.n * dims.h * dims.w * dims.c; }

int32_t ActivationBytes(int32_t count, int32_t bits) { return (count * bits + 7) / 8; }

int32_t TensorBytes(const TfLiteEvalTensor* tensor) {
  int32_t item = 0;
  switch (tensor->type) {
    case kTfLiteInt8:
    case kTfLiteUInt8:
      item = 1;
      break;
    case kTfLiteInt32:
      item = 4;
      break;
    default:
      return -1;
  }
  int32_t count = 1;
  for (int i = 0; i < tensor->dims->size; ++i) {
    count *= tensor->dims->data[i];
  }
  return count * item;
}

TfLiteEvalTensor* Input(TfLiteContext* context, const TfLiteNode* node, int index) {
  if (index >= node->inputs->size) {
    return nullptr;
  }
  const int tensor = node->inputs->data[index];
  if (tensor == kTfLiteOptionalTensor) {
    return nullptr;
  }
  return context->GetEvalTensor(context, tensor);
}

TfLiteEvalTensor* Output(TfLiteContext* context, const TfLiteNode* node, int index) {
  if (index >= node->outputs->size) {
    return nullptr;
  }
  return context->GetEvalTensor(context, node->outputs->data[index]);
}

TfLiteStatus CheckActivation(const char* op_name, const char* what, const TfLiteEvalTensor* tensor,
                             const mixq_dims& dims, int32_t bits) {
  if (tensor == nullptr) {
    MicroPrintf("%s: %s tensor missing", op_name, what);
    return kTfLiteError;
  }
  const bool type_ok = bits == 8 ? tensor->type == kTfLiteInt8
                                 : (tensor->type == kTfLiteUInt8 || tensor->type == kTfLiteInt8);
  if (!type_ok) {
    MicroPrintf("%s: %s tensor has type %d, a %d-bit activation needs %s", op_name, what,
                static_cast<int>(tensor->type), static_cast<int>(bits), bits == 8 ? "INT8" : "UINT8");
    return kTfLiteError;
  }
  const int32_t want = ActivationBytes(DimsCount(dims), bits);
  const int32_t have = TensorBytes(tensor);
  if (have != want) {
    MicroPrintf("%s: %s tensor holds %d bytes, its options say [%d,%d,%d,%d] at %d bits = %d bytes", op_name,
                what, static_cast<int>(have), static_cast<int>(dims.n), static_cast<int>(dims.h),
                static_cast<int>(dims.w), static_cast<int>(dims.c), static_cast<int>(bits), static_cast<int>(want));
    return kTfLiteError;
  }
  return kTfLiteOk;
}

TfLiteStatus RequestScratch(TfLiteContext* context, int32_t size, Scratch* scratch) {
  scratch->index = -1;
  scratch->size = size;
  if (size < 0) {
    return kTfLiteError;
  }
  if (size == 0) {
    return kTfLiteOk;
  }
  return context->RequestScratchBufferInArena(context, static_cast<size_t>(size), &scratch->index);
}

mixq_context ScratchContext(TfLiteContext* context, const Scratch& scratch) {
  mixq_context ctx;
  if (scratch.size == 0) {
    ctx.buf = &g_no_scratch;
    ctx.size = 0;
  } else {
    ctx.buf = context->GetScratchBuffer(context, scratch.index);
    ctx.size = scratch.size;
  }
  return ctx;
}

}  // namespace internal
}  // namespace mixq_tflm
