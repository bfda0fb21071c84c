/* Helpers shared by the baseline kernels: requantization (TFLite double rounding), sub-byte
 * element access and the DSP operations the kernels are built from. Internal header. */
#ifndef MIXQ_BL_COMMON_H_
#define MIXQ_BL_COMMON_H_

#include <stdint.h>
#include <string.h>

#include "mixq_baselines.h"

#if !defined(__ARM_FEATURE_DSP)
#error "the baseline kernels need the Armv7E-M DSP extension (-mcpu=cortex-m4 or cortex-m7)"
#endif
#include <arm_acle.h>

#define MIXQ_BL_INLINE static inline __attribute__((always_inline))

/* gemmlowp SaturatingRoundingDoublingHighMul for a positive multiplier (no saturation case):
 * (a * m + 2^30) >> 31, as one SMLAL on a preset accumulator and a funnel shift. */
MIXQ_BL_INLINE int32_t mixq_bl_doubling_high_mul(int32_t a, int32_t m)
{
    uint32_t lo = 1u << 30;
    int32_t hi = 0;
    __asm__("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"(a), "r"(m));
    return (int32_t)(((uint32_t)hi << 1) | (lo >> 31));
}

/* gemmlowp RoundingDivideByPOT. */
MIXQ_BL_INLINE int32_t mixq_bl_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    int32_t result = x >> exponent;
    int32_t threshold = mask >> 1;
    if (result < 0) {
        threshold++;
    }
    if (remainder > threshold) {
        result++;
    }
    return result;
}

/* TFLite MultiplyByQuantizedMultiplier (double rounding). */
MIXQ_BL_INLINE int32_t mixq_bl_requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)acc << left);
    return mixq_bl_rounding_divide_by_pot(mixq_bl_doubling_high_mul(shifted, multiplier), right);
}

/* Per-channel requantization constants, computed once per output channel. */
typedef struct {
    int32_t bias, multiplier, left, right, mask, half;
} mixq_bl_channel;

MIXQ_BL_INLINE mixq_bl_channel mixq_bl_channel_params(const int32_t *bias, const int32_t *multiplier,
                                                      const int32_t *shift, int32_t c)
{
    mixq_bl_channel q;
    const int32_t s = shift[c];
    q.bias = bias != NULL ? bias[c] : 0;
    q.multiplier = multiplier[c];
    q.left = s > 0 ? s : 0;
    q.right = s > 0 ? 0 : -s;
    q.mask = (int32_t)(((uint32_t)1 << q.right) - 1u);
    q.half = q.mask >> 1;
    return q;
}

/* mixq_bl_requantize(acc + bias, multiplier, shift) with the constants of `q`: branch free. */
MIXQ_BL_INLINE int32_t mixq_bl_requantize_channel(int32_t acc, mixq_bl_channel q)
{
    const int32_t x = mixq_bl_doubling_high_mul((int32_t)((uint32_t)(acc + q.bias) << q.left), q.multiplier);
    const int32_t threshold = q.half + (int32_t)((uint32_t)x >> 31);
    return (x >> q.right) + ((x & q.mask) > threshold);
}

MIXQ_BL_INLINE int32_t mixq_bl_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

MIXQ_BL_INLINE uint32_t mixq_bl_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Element `index` of a packed tensor of `bits`-bit values: sign-extended when `is_signed`. */
MIXQ_BL_INLINE int32_t mixq_bl_get(const uint8_t *base, int32_t index, int32_t bits, int is_signed)
{
    if (bits == 8) {
        return is_signed ? (int32_t)(int8_t)base[index] : (int32_t)base[index];
    }
    const int32_t per_byte = 8 / bits;
    const uint32_t byte = base[index / per_byte];
    const int32_t pos = (index % per_byte) * bits;
    const uint32_t field = (byte >> pos) & ((1u << bits) - 1u);
    if (is_signed && (field & (1u << (bits - 1)))) {
        return (int32_t)field - (1 << bits);
    }
    return (int32_t)field;
}

/* Store element `index` of an unsigned (or int8 when bits == 8) packed tensor. */
MIXQ_BL_INLINE void mixq_bl_put(uint8_t *base, int32_t index, int32_t bits, int32_t value)
{
    if (bits == 8) {
        base[index] = (uint8_t)value;
        return;
    }
    const int32_t per_byte = 8 / bits;
    uint8_t *byte = &base[index / per_byte];
    const int32_t pos = (index % per_byte) * bits;
    const uint32_t mask = ((1u << bits) - 1u) << pos;
    *byte = (uint8_t)((*byte & ~mask) | (((uint32_t)value << pos) & mask));
}

/* ACLE SIMD operations on plain 32-bit words. */
MIXQ_BL_INLINE uint32_t mixq_bl_sxtb16(uint32_t x)
{
    return (uint32_t)__sxtb16((int16x2_t)x);
}

MIXQ_BL_INLINE uint32_t mixq_bl_sxtab16(uint32_t acc, uint32_t x)
{
    return (uint32_t)__sxtab16((int16x2_t)acc, (int8x4_t)x);
}

MIXQ_BL_INLINE uint32_t mixq_bl_uxtab16(uint32_t acc, uint32_t x)
{
    return (uint32_t)__uxtab16((uint16x2_t)acc, (uint8x4_t)x);
}

MIXQ_BL_INLINE int32_t mixq_bl_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlad((int16x2_t)x, (int16x2_t)y, acc);
}

MIXQ_BL_INLINE int32_t mixq_bl_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlabb((int32_t)x, (int32_t)y, acc);
}

MIXQ_BL_INLINE int32_t mixq_bl_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlatt((int32_t)x, (int32_t)y, acc);
}

/* Rotations folded into the extend instructions (GCC 12 has no __ror). */
MIXQ_BL_INLINE uint32_t mixq_bl_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

MIXQ_BL_INLINE uint32_t mixq_bl_sxtab16_ror8(uint32_t acc, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}

MIXQ_BL_INLINE uint32_t mixq_bl_uxtab16_ror8(uint32_t acc, uint32_t x)
{
    uint32_t r;
    __asm__("uxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}

MIXQ_BL_INLINE uint32_t mixq_bl_pair(int32_t offset)
{
    return ((uint32_t)offset & 0xFFFFu) | ((uint32_t)offset << 16);
}

#endif /* MIXQ_BL_COMMON_H_ */
