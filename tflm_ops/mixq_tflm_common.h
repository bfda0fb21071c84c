/*
 * mixq_tflm_common.h - helpers shared by the MIXQ ops (internal to tflm_ops/).
 *
 * Reading the flexbuffer options, checking a TFLM tensor against the logical shape and
 * bitwidth the options give, and kernel scratch memory taken from the TFLM arena.
 */
#ifndef MIXQ_TFLM_COMMON_H_
#define MIXQ_TFLM_COMMON_H_

#include <stddef.h>
#include <stdint.h>

#include <new>

#include "flatbuffers/flexbuffers.h"
#include "mixq_kernels.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_log.h"

namespace mixq_tflm {
namespace internal {

/* Log a failed check (op name, the condition, a reason) and return kTfLiteError. */
#define MIXQ_TFLM_ENSURE(op_name, cond, reason)                                      \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      MicroPrintf("%s: check failed: %s (%s)", (op_name), #cond, (reason));          \
      return kTfLiteError;                                                           \
    }                                                                                \
  } while (0)

/* The options map of a custom op, or an empty map when the buffer is not a flexbuffer map. */
flexbuffers::Map OptionsMap(const char* buffer, size_t length);

/* Integer option `key` into *out (int32 range checked); false when absent or not an integer. */
bool ReadInt(const flexbuffers::Map& map, const char* key, int32_t* out);

/* Integer vector option of exactly `count` elements. */
bool ReadInts(const flexbuffers::Map& map, const char* key, int32_t* out, int count);

/* A shape option [n, h, w, c]. */
bool ReadDims(const flexbuffers::Map& map, const char* key, mixq_dims* out);

/* A pair option [h, w] (stride, padding, dilation, filter). */
bool ReadTile(const flexbuffers::Map& map, const char* key, mixq_tile* out);

/* 8, 4 or 2. */
bool BitsOk(int32_t bits);

/* Elements of a shape. */
int32_t DimsCount(const mixq_dims& dims);

/* Bytes of an activation of `count` elements at `bits` bits (8-bit: one byte each). */
int32_t ActivationBytes(int32_t count, int32_t bits);

/* Bytes the eval tensor holds (1-byte and 4-byte integer types; -1 for anything else). */
int32_t TensorBytes(const TfLiteEvalTensor* tensor);

/* Eval tensor of input `index` of the node, NULL for an omitted optional input. */
TfLiteEvalTensor* Input(TfLiteContext* context, const TfLiteNode* node, int index);
TfLiteEvalTensor* Output(TfLiteContext* context, const TfLiteNode* node, int index);

/* Check an activation tensor: INT8 at 8 bits, UINT8 (or INT8) holding the packed bytes below. */
TfLiteStatus CheckActivation(const char* op_name, const char* what, const TfLiteEvalTensor* tensor,
                             const mixq_dims& dims, int32_t bits);

/* Kernel scratch memory requested in Prepare, fetched in Invoke. */
struct Scratch {
  int index;
  int32_t size;
};

/* Request `size` bytes (none when size is 0). */
TfLiteStatus RequestScratch(TfLiteContext* context, int32_t size, Scratch* scratch);

/* The kernel context for an Invoke; NULL buffer when the arena lost the request. */
mixq_context ScratchContext(TfLiteContext* context, const Scratch& scratch);

/* Persistent op data of type T from the arena (NULL when the arena is full). */
template <typename T>
T* AllocateOpData(TfLiteContext* context) {
  void* raw = context->AllocatePersistentBuffer(context, sizeof(T));
  if (raw == nullptr) {
    return nullptr;
  }
  return new (raw) T();
}

}  // namespace internal
}  // namespace mixq_tflm

#endif  // MIXQ_TFLM_COMMON_H_
