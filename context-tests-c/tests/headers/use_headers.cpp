/*
 * use_headers.cpp - both public C headers, included together and used, as a
 * C++17 user would.  tests/headers.rs compiles it with
 * -std=c++17 -pedantic -Wall -Wextra -Werror and reads the object's
 * symbols: every function must appear under its C name (extern "C").
 */
#include <cstddef>
#include <type_traits>

#include "context_sys.h"
#include "instance.h"

static_assert(sizeof(context_sys_regs) == CONTEXT_SYS_REGS_SIZE, "register block size");
static_assert(alignof(context_sys_boot_frame) == CONTEXT_SYS_BOOT_ALIGN, "boot frame alignment");
static_assert(std::is_standard_layout<context_sys_regs>::value, "offsetof needs standard layout");
static_assert(std::is_standard_layout<context_sys_boot_frame>::value, "offsetof needs standard layout");
static_assert(INSTANCE_OK == 0 && INSTANCE_E_NOT_IN_GUEST < 0, "instance status codes");

// Addresses taken, so the object refers to each symbol by its linkage name.
void (*const use_swap)(context_sys_regs *, const context_sys_regs *) = &context_sys_swap;
void (*const use_set)(const context_sys_regs *) = &context_sys_set;
void (*const use_start)() = &context_sys_start;
void (*const use_save_fp_control)(context_sys_regs *) = &context_sys_save_fp_control;
int (*const use_yield)(uint64_t, uint64_t *) = &instance_yield;
void (*const use_region_enter)() = &instance_host_region_enter;

std::size_t regs_size() {
    context_sys_regs regs{};
    /* The saved stack pointer's field is named after the architecture's
     * register. */
#if defined(__x86_64__)
    regs.rsp = context_sys_get_current_stack_pointer();
    uint64_t sp = regs.rsp;
#else
    regs.sp = context_sys_get_current_stack_pointer();
    uint64_t sp = regs.sp;
#endif
    return sizeof regs + static_cast<std::size_t>(sp & 0);
}
