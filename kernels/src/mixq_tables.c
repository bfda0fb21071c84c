/* mixq_tables.c - constant tables of the DSP path. */
#include "mixq_internal.h"

/* Byte of four 2-bit activations a0..a3 -> SMLAD lane word a0 | a1 << 12 | a2 << 16 | a3 << 28. */
#define MIXQ_L(b) (((b)&3u) | (((b)&0xCu) << 10) | (((b)&0x30u) << 12) | (((b)&0xC0u) << 22))
#define MIXQ_L4(b) MIXQ_L(b), MIXQ_L((b) + 1u), MIXQ_L((b) + 2u), MIXQ_L((b) + 3u)
#define MIXQ_L16(b) MIXQ_L4(b), MIXQ_L4((b) + 4u), MIXQ_L4((b) + 8u), MIXQ_L4((b) + 12u)
#define MIXQ_L64(b) MIXQ_L16(b), MIXQ_L16((b) + 16u), MIXQ_L16((b) + 32u), MIXQ_L16((b) + 48u)

const uint32_t mixq_a2_lane_table[256] = {MIXQ_L64(0u), MIXQ_L64(64u), MIXQ_L64(128u), MIXQ_L64(192u)};
