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

/* LAYOUT_FIELDS: LAYOUT_STRUCT(s) for each shared struct, then
 * LAYOUT_FIELD(s, f) for each field a CONTEXT_SYS_OFF_* or
 * CONTEXT_SYS_BOOT_* define of the header names.  `cargo xtask layout`
 * writes it from the header's defines (which field each names:
 * context-tests-c/build/layout_fields.rs), so this program prints the
 * header's own list of fields; a define naming a member the struct lacks
 * fails to compile here. */
#include "layout_fields.h"
#define LAYOUT_STRUCT(s) STRUCT(s);
#define LAYOUT_FIELD(s, f) FIELD(s, f);

int main(void) {
    LAYOUT_FIELDS
    return 0;
}
