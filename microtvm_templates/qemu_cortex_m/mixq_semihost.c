/* Semihosting console, files and exit for QEMU (see mixq_harness.h). */
#include <string.h>

#include "mixq_harness.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_FLEN 0x0C
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define MODE_RB 1 /* SYS_OPEN modes as fopen's: "rb" */
#define MODE_WB 5 /* "wb" */

static uint32_t semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void mixq_puts(const char *s)
{
    semihost_call(SYS_WRITE0, s);
}

void mixq_put_u64(uint64_t v)
{
    char buf[24];
    int i = (int)sizeof(buf) - 1;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u && i > 0);
    mixq_puts(&buf[i]);
}

void mixq_put_i64(int64_t v)
{
    if (v < 0) {
        mixq_puts("-");
        mixq_put_u64((uint64_t)0 - (uint64_t)v);
    } else {
        mixq_put_u64((uint64_t)v);
    }
}

void mixq_exit(int code)
{
    uint32_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)code;
    semihost_call(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

int32_t mixq_file_open(const char *name, int write)
{
    const uint32_t args[3] = {(uint32_t)(uintptr_t)name, write ? MODE_WB : MODE_RB, (uint32_t)strlen(name)};
    return (int32_t)semihost_call(SYS_OPEN, args);
}

int32_t mixq_file_length(int32_t fd)
{
    const uint32_t args[1] = {(uint32_t)fd};
    return (int32_t)semihost_call(SYS_FLEN, args);
}

/* SYS_READ and SYS_WRITE return the number of bytes not transferred. */
int mixq_file_read(int32_t fd, void *buf, uint32_t n)
{
    const uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, n};
    return semihost_call(SYS_READ, args) == 0u;
}

int mixq_file_write(int32_t fd, const void *buf, uint32_t n)
{
    const uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, n};
    return semihost_call(SYS_WRITE, args) == 0u;
}

void mixq_file_close(int32_t fd)
{
    const uint32_t args[1] = {(uint32_t)fd};
    (void)semihost_call(SYS_CLOSE, args);
}

void mixq_report_count(const char *name, uint64_t ticks)
{
    mixq_puts("@mixq count ");
    mixq_puts(name);
    mixq_puts(" ");
    mixq_put_u64(ticks);
    mixq_puts("\n");
}

int mixq_report_check(const char *name, int ok)
{
    mixq_puts("@mixq check ");
    mixq_puts(name);
    mixq_puts(ok ? " ok\n" : " FAIL\n");
    return ok ? 0 : 1;
}

void mixq_report_value(const char *name, int64_t v)
{
    mixq_puts("@mixq value ");
    mixq_puts(name);
    mixq_puts(" ");
    mixq_put_i64(v);
    mixq_puts("\n");
}

int mixq_buffers_equal(const char *name, const void *got, const void *expected, size_t n)
{
    const uint8_t *a = (const uint8_t *)got;
    const uint8_t *b = (const uint8_t *)expected;
    for (size_t i = 0; i < n; ++i) {
        if (a[i] != b[i]) {
            mixq_puts("@mixq value ");
            mixq_puts(name);
            mixq_puts(".first_diff ");
            mixq_put_u64(i);
            mixq_puts("\n");
            return 0;
        }
    }
    return 1;
}
