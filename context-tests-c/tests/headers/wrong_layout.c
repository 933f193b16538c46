/*
 * wrong_layout.c - the negative control of tests/headers.rs: includes the
 * header and asserts something false about it, so compiling must fail with
 * the message below.  A test that sees this compile succeed is not running
 * the compiler it believes it runs.
 */
#include "context_sys.h"

_Static_assert(sizeof(struct context_sys_regs) == CONTEXT_SYS_REGS_SIZE + 1, "negative control: wrong_layout.c");
