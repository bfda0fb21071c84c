/* Vector table, reset handler, SysTick instruction counter and fault handlers for the MPS2
 * boards (see mixq_harness.h). */
#include "mixq_harness.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t systick_overflows;

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
#if defined(__ARM_FP)
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    mixq_exit(main());
}

void Default_Handler(void)
{
    mixq_puts("@mixq value fault 1\nunexpected exception\n");
    mixq_exit(MIXQ_EXIT_FAULT);
}

void HardFault_Handler(void)
{
    mixq_puts("@mixq value fault 1\nhard fault\n");
    mixq_exit(MIXQ_EXIT_FAULT);
}

void SysTick_Handler(void)
{
    systick_overflows = systick_overflows + 1u;
}

void mixq_counter_start(void)
{
    SYST_CSR = 0u;
    systick_overflows = 0u;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0u;
    /* CLKSOURCE = CPU, TICKINT, ENABLE */
    SYST_CSR = 7u;
    /* The counter reads 0 until its first tick reloads it: start from a reloaded counter so
     * that ticks = overflows * 2^24 + (RELOAD - VAL) holds from here on. */
    while (SYST_CVR == 0u) {
    }
}

uint64_t mixq_counter_ticks(void)
{
    uint32_t before;
    uint32_t value;
    uint32_t after;
    do {
        before = systick_overflows;
        value = SYST_CVR;
        after = systick_overflows;
    } while (before != after);
    return (uint64_t)before * (uint64_t)(SYST_RELOAD + 1u) + (uint64_t)(SYST_RELOAD - value);
}

typedef void (*mixq_vector_t)(void);

__attribute__((section(".isr_vector"), used)) const mixq_vector_t mixq_vector_table[16] = {
    (mixq_vector_t)(uintptr_t)&_estack,
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler, /* HardFault */
    Default_Handler,   /* MemManage */
    Default_Handler,   /* BusFault */
    Default_Handler,   /* UsageFault */
    0,
    0,
    0,
    0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
};
