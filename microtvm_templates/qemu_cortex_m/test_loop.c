/* Harness self-test firmware: a loop of known instruction count, an optional failing check.
 * MIXQ_LOOP_ITERATIONS: iterations of a 2-instruction loop (subs + bne).
 * MIXQ_FORCE_FAIL: when 1, the check reports a mismatch and main returns 1. */
#include "mixq_harness.h"

#ifndef MIXQ_LOOP_ITERATIONS
#define MIXQ_LOOP_ITERATIONS 100000
#endif
#ifndef MIXQ_FORCE_FAIL
#define MIXQ_FORCE_FAIL 0
#endif

static void spin(uint32_t n)
{
    __asm__ volatile("1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

int main(void)
{
    static const uint8_t expected[4] = {1, 2, 3, 4};
    uint8_t got[4] = {1, 2, 3, (uint8_t)(MIXQ_FORCE_FAIL ? 5 : 4)};
    mixq_puts("hello from the firmware\n");
    mixq_counter_start();
    uint64_t t0 = mixq_counter_ticks();
    spin(MIXQ_LOOP_ITERATIONS);
    uint64_t t1 = mixq_counter_ticks();
    mixq_report_count("loop", t1 - t0);
    mixq_report_value("iterations", MIXQ_LOOP_ITERATIONS);
    return mixq_report_check("buffer", mixq_buffers_equal("buffer", got, expected, sizeof(got)));
}
