/* mixq_layout.c - layout helpers of the public API (sizes of packed weights and tensors). */
#include "mixq_internal.h"

int32_t mixq_weight_row_len(int32_t k, int32_t w_bits) {
    if (k <= 0 || !mixq_bits_ok(w_bits)) {
        return -1;
    }
    return mixq_row_len(k, w_bits);
}

int32_t mixq_weights_size(int32_t k, int32_t c_out, int32_t w_bits) {
    if (k <= 0 || c_out <= 0 || !mixq_bits_ok(w_bits)) {
        return -1;
    }
    return mixq_filter_bytes(k, c_out, w_bits);
}

int32_t mixq_w4_lanes_size(int32_t k, int32_t c_out) {
    if (k <= 0 || c_out <= 0) {
        return -1;
    }
    return mixq_row_len(k, 4) * ((c_out + 1) & ~1);
}

int32_t mixq_packed_size(int32_t count, int32_t bits) {
    if (count < 0 || !mixq_bits_ok(bits)) {
        return -1;
    }
    return (count * bits + 7) / 8;
}

int32_t mixq_has_dsp(void) { return MIXQ_DSP; }
