/* Float I/O ops of the generated-model runtime (see mixq_rt.h). Built without fast-math so that
 * the division and rounding are IEEE's whatever flags the firmware uses (-Ofast included). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-fast-math")
#endif
#include "mixq_rt.h"

/* interpreter._prepare_quantize, float input: float32 division, round half away from zero */
void mixq_rt_quantize_f32(int32_t count, float scale, int32_t zp, int32_t act_min, int32_t act_max, const float *in,
                          int8_t *out)
{
    for (int32_t i = 0; i < count; i++) {
        const float s = in[i] / scale;
        const double d = (double)s;
        int64_t r;
        if (d != d) {
            r = 0;
        } else {
            const double a = (d < 0.0 ? -d : d) + 0.5;
            const int64_t m = a >= 2147483648.0 ? (int64_t)2147483648 : (int64_t)a;
            r = d < 0.0 ? -m : m;
            if (r > 2147483647) {
                r = 2147483647;
            }
        }
        r += zp;
        out[i] = (int8_t)(r < act_min ? act_min : (r > act_max ? act_max : r));
    }
}

/* interpreter._prepare_dequantize: float64(scale) * (q - zp), rounded once to float32 */
void mixq_rt_dequantize_f32(int32_t count, float scale, int32_t zp, const int8_t *in, float *out)
{
    for (int32_t i = 0; i < count; i++) {
        out[i] = (float)((double)scale * (double)((int32_t)in[i] - zp));
    }
}
