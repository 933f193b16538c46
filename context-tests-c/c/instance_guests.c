/*
 * instance_guests.c - C guests for the `instance` crate: yield and resume
 * through instance.h, and code a kill must stop (a for(;;), a nanosleep,
 * malloc inside host regions).
 *
 * They are entries of `instance::Instance::start` / `run`; the yield and
 * host-region calls resolve to the Rust functions of the `instance` crate
 * linked into the test binary.
 *
 * The large-frame guest is built like every file here, with the compiler's
 * default flags: gcc (Debian 12) does not enable -fstack-clash-protection,
 * so its frame is made with one `sub rsp` and no probes, as much C code in
 * the wild is.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "instance.h"

uint64_t ctc_inst_yield_sum(uint64_t n);
int64_t ctc_inst_yield_status(void);
uint64_t ctc_inst_yield_mixed(uint64_t n, double scale);
uint64_t ctc_inst_spin(volatile uint64_t *progress);
uint64_t ctc_inst_sleep(volatile uint64_t *progress);
uint64_t ctc_inst_alloc_forever(volatile uint64_t *progress, uint64_t seed);
uint64_t ctc_inst_frame_60k(void);

/* Size of ctc_inst_frame_60k's local array (instance_guard_c.rs has it as FRAME_BYTES). */
#define CTC_INST_FRAME_BYTES (60 * 1024)

/* Yields 0, 1, ..., n-1, adds up the values it is resumed with, and returns
 * the sum (UINT64_MAX if a yield was refused). */
uint64_t ctc_inst_yield_sum(uint64_t n) {
    uint64_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t resumed = 0;
        if (instance_yield(i, &resumed) != INSTANCE_OK) {
            return UINT64_MAX;
        }
        acc += resumed;
    }
    return acc;
}

/* The status of a yield, for runs that may not yield. */
int64_t ctc_inst_yield_status(void) {
    uint64_t resumed = 0;
    return instance_yield(1, &resumed);
}

/* Floating-point work across yields: each step yields the bits of a running
 * double and folds in the resumed value; live values sit in callee-saved
 * registers and on the stack across the switches. */
uint64_t ctc_inst_yield_mixed(uint64_t n, double scale) {
    double x = scale;
    uint64_t acc = 0x9e3779b97f4a7c15u;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        uint64_t resumed = 0;
        if (instance_yield(bits ^ acc, &resumed) != INSTANCE_OK) {
            return 0;
        }
        acc = acc * 6364136223846793005u + resumed;
        x = x * 1.5 + (double)(resumed & 0xff);
    }
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits ^ acc;
}

/* for(;;): only a kill ends it. */
uint64_t ctc_inst_spin(volatile uint64_t *progress) {
    *progress = 1;
    for (;;) {
        *progress += 1;
    }
}

/* Blocks in nanosleep for 100 s. */
uint64_t ctc_inst_sleep(volatile uint64_t *progress) {
    *progress = 1;
    struct timespec ts = {100, 0};
    nanosleep(&ts, NULL);
    *progress = 2;
    return 0;
}

/* Allocates and frees forever, the allocator inside host regions. */
uint64_t ctc_inst_alloc_forever(volatile uint64_t *progress, uint64_t seed) {
    for (;;) {
        instance_host_region_enter();
        size_t n = 1 + (size_t)(seed % 4096);
        unsigned char *p = malloc(n);
        if (p != NULL) {
            memset(p, (int)(seed & 0xff), n);
            free(p);
        }
        instance_host_region_leave();
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        *progress += 1;
    }
}

/* One 60 KiB local whose lowest byte is written first: with no stack probes
 * the first touch of the frame is 60 KiB below the caller's stack pointer,
 * skipping any smaller guard. Returns 3 when the frame fits. */
uint64_t ctc_inst_frame_60k(void) {
    volatile unsigned char buf[CTC_INST_FRAME_BYTES];
    buf[0] = 1;
    buf[sizeof buf - 1] = 2;
    return (uint64_t)buf[0] + buf[sizeof buf - 1];
}
