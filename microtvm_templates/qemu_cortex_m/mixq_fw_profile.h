/* Per-layer profiling hooks of generated models for the QEMU firmware, given to the compiler
 * with -include: when mixq_fw_profiling is set, each layer's SysTick ticks (40 instructions per
 * tick under -icount shift=0) are added to mixq_fw_layer_ticks[index]. */
#ifndef MIXQ_FW_PROFILE_H
#define MIXQ_FW_PROFILE_H

#include <stdint.h>

extern volatile int mixq_fw_profiling;
extern uint64_t mixq_fw_layer_start;
extern uint64_t mixq_fw_layer_ticks[];
uint64_t mixq_counter_ticks(void);

#if defined(MIXQ_FW_TRACE) /* print each layer's name as it starts (locating faults) */
void mixq_puts(const char *s);
#define MIXQ_FW_TRACE_LAYER(name) (mixq_puts(name), mixq_puts("\n"))
#else
#define MIXQ_FW_TRACE_LAYER(name) ((void)(name))
#endif

#define MIXQ_PROFILE_LAYER_BEGIN(index, name)                                                   \
    do {                                                                                        \
        MIXQ_FW_TRACE_LAYER(name);                                                              \
        if (mixq_fw_profiling) {                                                                \
            mixq_fw_layer_start = mixq_counter_ticks();                                         \
        }                                                                                       \
    } while (0)
#define MIXQ_PROFILE_LAYER_END(index, name)                                                     \
    do {                                                                                        \
        (void)(name);                                                                           \
        if (mixq_fw_profiling) {                                                                \
            mixq_fw_layer_ticks[(index)] += mixq_counter_ticks() - mixq_fw_layer_start;         \
        }                                                                                       \
    } while (0)

#endif /* MIXQ_FW_PROFILE_H */
