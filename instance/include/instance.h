/*
 * instance.h - what C guest code can call while it runs inside an
 * `instance::Instance` (x86_64 Linux).
 *
 * The functions are implemented in Rust by the `instance` crate
 * (`#[unsafe(no_mangle)] extern "C"`), so a C guest links against the
 * program that embeds `instance`; there is no separate C library.
 *
 * Language: C99 or later, or C++ (the declarations are `extern "C"`).  It
 * is tested together with context_sys.h under
 * `-std=c11 -pedantic -Wall -Wextra -Werror` and the same with
 * `-std=c++17` (context-tests-c/tests/headers.rs).
 *
 * Finding it: the build script of a crate that depends on
 * stackful-instance reads this directory from DEP_STACKFUL_INSTANCE_INCLUDE, and
 * context_sys.h's from DEP_STACKFUL_INSTANCE_CONTEXT_SYS_INCLUDE.
 */
#ifndef INSTANCE_H
#define INSTANCE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of instance_yield (same values as the Rust constants
 * instance::INSTANCE_OK and instance::INSTANCE_E_*). */
#define INSTANCE_OK 0
/* The calling thread is not running a guest. */
#define INSTANCE_E_NOT_IN_GUEST (-1)
/* The run was started with Instance::run / run_closure, which cannot be
 * suspended (start it with Instance::start / start_closure). */
#define INSTANCE_E_NOT_RESUMABLE (-2)
/* Called inside a host region. */
#define INSTANCE_E_IN_HOST_REGION (-3)

/*
 * Yields `value` to the host, which sees Outcome::Yielded with a u64, and
 * waits until the host resumes the guest with a u64 (possibly on another
 * thread); stores that value in *resumed (if resumed is not NULL) and
 * returns INSTANCE_OK. Returns a negative INSTANCE_E_* code without
 * yielding if the guest may not yield.
 *
 * If the run is terminated, reset or dropped while suspended here, this
 * call never returns: the guest's frames are abandoned (C frames are not
 * unwound).
 */
int instance_yield(uint64_t value, uint64_t *resumed);

/* 1 if the calling thread is running a guest, 0 otherwise. */
int instance_in_guest(void);

/*
 * Brackets host work done by the guest (malloc, locks, I/O): faults inside
 * are the host's, and a termination waits until the region ends. Regions
 * nest; every enter needs one leave. When a termination waited for the
 * outermost region, instance_host_region_leave does not return: the run
 * ends there, with the region's side effects kept.
 */
void instance_host_region_enter(void);
void instance_host_region_leave(void);

#ifdef __cplusplus
}
#endif

#endif /* INSTANCE_H */
