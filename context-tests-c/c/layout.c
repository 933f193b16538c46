/*
 * layout.c - prints the layout of every struct shared with the assembly as
 * the C compiler lays it out, for `cargo xtask layout` to compare with the
 * header's constants, Rust's offset_of! and the assembly itself.
 *
 * Output, one item per line:
 *     struct <name> <size> <align>
 *     field <struct> <field> <offset> <size>
 */
#include <stddef.h>
#include <stdio.h>

/* The header's own _Static_asserts stop compilation at the first
 * disagreement with its constants.  This program exists to report every
 * disagreement by name instead, so it turns them into no-ops (a macro is not
 * expanded inside its own expansion, so this stays a valid assertion). */
#define _Static_assert(cond, msg) _Static_assert(1, msg)
#include "context_sys.h"

#define STRUCT(s) printf("struct %s %zu %zu\n", #s, sizeof(struct s), _Alignof(struct s))
#define FIELD(s, f) printf("field %s %s %zu %zu\n", #s, #f, offsetof(struct s, f), sizeof(((struct s *)0)->f))

int main(void) {
    STRUCT(context_sys_regs);
    FIELD(context_sys_regs, rsp);
    FIELD(context_sys_regs, rbx);
    FIELD(context_sys_regs, rbp);
    FIELD(context_sys_regs, r12);
    FIELD(context_sys_regs, r13);
    FIELD(context_sys_regs, r14);
    FIELD(context_sys_regs, r15);
    FIELD(context_sys_regs, mxcsr);
    FIELD(context_sys_regs, fpucw);
    FIELD(context_sys_regs, pad);
    FIELD(context_sys_regs, ret_rax);
    FIELD(context_sys_regs, ret_rdx);
    FIELD(context_sys_regs, ret_xmm0);

    STRUCT(context_sys_boot_frame);
    FIELD(context_sys_boot_frame, xmm[0]);
    FIELD(context_sys_boot_frame, xmm[1]);
    FIELD(context_sys_boot_frame, xmm[2]);
    FIELD(context_sys_boot_frame, xmm[3]);
    FIELD(context_sys_boot_frame, xmm[4]);
    FIELD(context_sys_boot_frame, xmm[5]);
    FIELD(context_sys_boot_frame, xmm[6]);
    FIELD(context_sys_boot_frame, xmm[7]);
    FIELD(context_sys_boot_frame, gp[0]);
    FIELD(context_sys_boot_frame, gp[1]);
    FIELD(context_sys_boot_frame, gp[2]);
    FIELD(context_sys_boot_frame, gp[3]);
    FIELD(context_sys_boot_frame, gp[4]);
    FIELD(context_sys_boot_frame, gp[5]);
    FIELD(context_sys_boot_frame, entry);
    FIELD(context_sys_boot_frame, pad);
    return 0;
}
