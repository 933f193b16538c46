// A C++17 guest of the downstream smoke crate (xtask/downstream/), compiled
// by its build.rs against the same two headers as guest.c; both must work
// from C++ (extern "C" declarations, static_assert).
#include "context_sys.h"
#include "instance.h"

#include <cstdint>

// C++17: static_assert without a message.
static_assert(sizeof(context_sys_regs) == CONTEXT_SYS_REGS_SIZE);
static_assert(alignof(context_sys_regs) == CONTEXT_SYS_REGS_ALIGN);

// Yields 2 * a, then returns what it was resumed with plus 100 if
// instance_in_guest says it runs in a guest; 1000 + the negated status if
// instance_yield refused.
extern "C" std::uint64_t downstream_cpp_guest(std::uint64_t a) {
    std::uint64_t resumed = 0;
    if (int rc = instance_yield(2 * a, &resumed); rc != INSTANCE_OK) {  // C++17: if with an initialiser
        return 1000 + static_cast<std::uint64_t>(-rc);
    }
    return resumed + (instance_in_guest() == 1 ? 100 : 0);
}
