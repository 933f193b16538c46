/*
 * wrong_layout.cpp - the negative control of tests/headers.rs in C++: see
 * wrong_layout.c.
 */
#include "context_sys.h"

static_assert(sizeof(context_sys_regs) == CONTEXT_SYS_REGS_SIZE + 1, "negative control: wrong_layout.cpp");
