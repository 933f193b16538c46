/*
 * C11 guests of the downstream smoke crate (xtask/downstream/), compiled by
 * its build.rs against the headers the packaged crates export:
 * instance.h from DEP_STACKFUL_INSTANCE_INCLUDE and context_sys.h from
 * DEP_STACKFUL_INSTANCE_CONTEXT_SYS_INCLUDE. main.rs runs them.
 */
#include "context_sys.h"
#include "instance.h"

#include <stdint.h>

/* Yields `a`, then returns what it was resumed with plus `b`; 1000 + the
 * negated status if instance_yield refused. */
uint64_t downstream_c_guest(uint64_t a, uint64_t b) {
    uint64_t resumed = 0;
    int rc = instance_yield(a, &resumed);
    if (rc != INSTANCE_OK) {
        return 1000 + (uint64_t)(-rc);
    }
    return resumed + b;
}

/* instance_yield outside any guest: INSTANCE_E_NOT_IN_GUEST, no yield. */
int downstream_c_yield_outside(void) {
    return instance_yield(1, 0);
}

/* 1 if context_sys_get_current_stack_pointer (the packaged assembly,
 * declared by context_sys.h) returns a stack pointer just below this
 * frame's locals, and the register block is as big as the header says. */
int downstream_c_stack_pointer_ok(void) {
    volatile uint64_t local = 0;
    uint64_t here = (uint64_t)(uintptr_t)&local;
    uint64_t sp = context_sys_get_current_stack_pointer();
    return sp < here && here - sp < 4096 && sizeof(struct context_sys_regs) == CONTEXT_SYS_REGS_SIZE;
}
