/*
 * Firmware support for running code on QEMU's MPS2 boards (mps2-an386: Cortex-M4,
 * mps2-an500: Cortex-M7): semihosting console, files and exit code, and deterministic
 * instruction counting.
 *
 * Exit code: the value returned by main() becomes QEMU's exit status through the
 * semihosting call SYS_EXIT_EXTENDED. By convention 0 means every check passed and 1 means a
 * mismatch; a fault handler exits with MIXQ_EXIT_FAULT.
 *
 * Instruction counting: QEMU run with `-icount shift=0` advances its virtual clock by 1 ns per
 * executed instruction. SysTick with CLKSOURCE=CPU runs at the board's 25 MHz system clock, so
 * one SysTick tick is 40 ns = 40 instructions (MIXQ_INSTRUCTIONS_PER_TICK, checked by
 * tests/test_emu_harness.py with a loop of known length). The counter is SysTick loaded with its
 * full 24-bit reload plus an overflow count kept by the SysTick interrupt, so a region is
 * measured with a resolution of 40 instructions and the figures are identical on every run.
 *
 * Output lines parsed by tvm_mixq.emu (one per line, fields separated by one space):
 *   @mixq count <name> <ticks>      instruction count of a region, in SysTick ticks
 *   @mixq check <name> <ok|FAIL>    result of an in-firmware comparison
 *   @mixq value <name> <integer>    any other figure
 */
#ifndef MIXQ_HARNESS_H_
#define MIXQ_HARNESS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIXQ_INSTRUCTIONS_PER_TICK 40u
#define MIXQ_EXIT_FAULT 3

/* Console (semihosting SYS_WRITE0). */
void mixq_puts(const char *s);
void mixq_put_u64(uint64_t v);
void mixq_put_i64(int64_t v);

/* Terminate QEMU with this exit code (semihosting SYS_EXIT_EXTENDED). */
void mixq_exit(int code) __attribute__((noreturn));

/* Instruction counter: ticks of SysTick since mixq_counter_start(); deterministic under
 * -icount shift=0. */
void mixq_counter_start(void);
uint64_t mixq_counter_ticks(void);

/* "@mixq count <name> <ticks>" */
void mixq_report_count(const char *name, uint64_t ticks);
/* "@mixq check <name> ok|FAIL"; returns 0 when ok, 1 otherwise. */
int mixq_report_check(const char *name, int ok);
/* "@mixq value <name> <v>" */
void mixq_report_value(const char *name, int64_t v);

/* Files of the host through semihosting (SYS_OPEN, SYS_FLEN, SYS_READ, SYS_WRITE, SYS_CLOSE),
 * relative to QEMU's working directory. mixq_file_open opens for binary reading (write = 0) or
 * creates for binary writing (write != 0) and returns a handle, negative on failure;
 * mixq_file_length returns the size in bytes, negative on failure; mixq_file_read and
 * mixq_file_write return 1 when all n bytes were transferred, 0 otherwise. */
int32_t mixq_file_open(const char *name, int write);
int32_t mixq_file_length(int32_t fd);
int mixq_file_read(int32_t fd, void *buf, uint32_t n);
int mixq_file_write(int32_t fd, const void *buf, uint32_t n);
void mixq_file_close(int32_t fd);

/* Byte comparison of two buffers: returns 1 when equal. On a mismatch prints the first
 * differing offset as "@mixq value <name>.first_diff <offset>". */
int mixq_buffers_equal(const char *name, const void *got, const void *expected, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* MIXQ_HARNESS_H_ */
