/*
 * fault_baseline.c - the plain C way to get back from a fault: sigsetjmp
 * before the risky code, siglongjmp out of the SIGSEGV handler.
 *
 * This is the baseline the benchmarks put beside a faulting instance: the
 * least a process can do to survive a fault and continue in the code that
 * started the risky work.  sigsetjmp(env, 1) saves the signal mask (one
 * rt_sigprocmask call), the fault enters the kernel, the kernel delivers
 * SIGSEGV on the alternate signal stack, and siglongjmp restores the mask
 * (another rt_sigprocmask) instead of returning through rt_sigreturn.
 *
 * Single-threaded by design: one jump buffer, used only by the thread that
 * called context_tests_c_bench_fault_install.  The benchmark builds this file
 * with the `cc` crate at start-up and loads it with dlopen (see
 * benches/ops/c_baseline.rs for why).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <string.h>

static sigjmp_buf context_tests_c_bench_env;
static struct sigaction context_tests_c_bench_previous;

static void context_tests_c_bench_handler(int sig, siginfo_t *info, void *uc)
{
    (void)sig;
    (void)info;
    (void)uc;
    siglongjmp(context_tests_c_bench_env, 1);
}

/* Installs the SIGSEGV handler (SA_SIGINFO | SA_ONSTACK, like a sandbox's),
 * keeping the previous one.  Returns sigaction's result. */
int context_tests_c_bench_fault_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = context_tests_c_bench_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSEGV, &sa, &context_tests_c_bench_previous);
}

/* Puts back the handler that was there before install.  Returns sigaction's
 * result. */
int context_tests_c_bench_fault_uninstall(void)
{
    return sigaction(SIGSEGV, &context_tests_c_bench_previous, NULL);
}

/* Reads *addr, which must fault, and comes back through the handler.
 * Returns 1 when it came back from the fault, 0 if the read did not fault. */
int context_tests_c_bench_fault_once(const volatile int *addr)
{
    if (sigsetjmp(context_tests_c_bench_env, 1) == 0) {
        (void)*addr;
        return 0;
    }
    return 1;
}
