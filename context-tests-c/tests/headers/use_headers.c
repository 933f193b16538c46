/*
 * use_headers.c - both public C headers, included together and used, as a
 * C11 user would.  tests/headers.rs compiles it with
 * -std=c11 -pedantic -Wall -Wextra -Werror and reads the object's symbols.
 */
#include "context_sys.h"
#include "instance.h"

_Static_assert(sizeof(struct context_sys_regs) == CONTEXT_SYS_REGS_SIZE, "register block size");
_Static_assert(_Alignof(struct context_sys_boot_frame) == CONTEXT_SYS_BOOT_ALIGN, "boot frame alignment");
_Static_assert(INSTANCE_OK == 0 && INSTANCE_E_NOT_IN_GUEST < 0, "instance status codes");

/* Addresses taken, so the object refers to each symbol by its C name. */
void (*const use_swap)(struct context_sys_regs *, const struct context_sys_regs *) = &context_sys_swap;
void (*const use_set)(const struct context_sys_regs *) = &context_sys_set;
void (*const use_start)(void) = &context_sys_start;
void (*const use_save_fp_control)(struct context_sys_regs *) = &context_sys_save_fp_control;
int (*const use_yield)(uint64_t, uint64_t *) = &instance_yield;
void (*const use_region_enter)(void) = &instance_host_region_enter;

size_t regs_size(void);
size_t regs_size(void) {
    struct context_sys_regs regs = {0};
    /* The saved stack pointer's field is named after the architecture's
     * register. */
#if defined(__x86_64__)
    regs.rsp = context_sys_get_current_stack_pointer();
    uint64_t sp = regs.rsp;
#else
    regs.sp = context_sys_get_current_stack_pointer();
    uint64_t sp = regs.sp;
#endif
    return sizeof regs + (size_t)(sp & 0);
}
