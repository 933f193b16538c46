//! Guests that fault from real instructions, for the fault tests.
//!
//! Each `extern "C"` function is a raw entry point; the closures call the
//! same instruction sources.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::os::fd::AsFd;

use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap};

/// si_code values the kernel uses (see `siginfo.h`).
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const ILL_ILLOPN: i32 = 2;
pub const FPE_INTDIV: i32 = 1;
pub const BUS_ADRERR: i32 = 2;
pub const SI_KERNEL: i32 = 0x80;
pub const TRAP_BRKPT: i32 = 1;

/// An unmapped address: below the kernel's mmap_min_addr.
pub const UNMAPPED: usize = 0x10;

/// A page mapped PROT_NONE, unmapped on drop.
pub struct NoAccessPage(pub usize);

impl NoAccessPage {
    pub fn new() -> NoAccessPage {
        let len = NonZeroUsize::new(instance::page_size()).unwrap();
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let p = unsafe { mmap_anonymous(None, len, ProtFlags::PROT_NONE, MapFlags::MAP_PRIVATE) }.unwrap();
        NoAccessPage(p.as_ptr() as usize)
    }
}

impl Drop for NoAccessPage {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once.
        unsafe { munmap(std::ptr::NonNull::new(self.0 as *mut _).unwrap(), instance::page_size()) }.unwrap();
    }
}

/// A two-page shared mapping of a one-page file: touching the second page
/// raises SIGBUS. `addr` is the start of the second page.
pub struct TruncatedMapping {
    pub start: usize,
    pub addr: usize,
    _file: std::fs::File,
}

impl TruncatedMapping {
    pub fn new() -> TruncatedMapping {
        let page = instance::page_size();
        let path = std::env::temp_dir().join(format!(
            "instance-sigbus-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file.set_len(page as u64).unwrap();
        let len = NonZeroUsize::new(2 * page).unwrap();
        // SAFETY: a fresh shared mapping of our own file.
        let p = unsafe { mmap(None, len, ProtFlags::PROT_READ, MapFlags::MAP_SHARED, file.as_fd(), 0) }.unwrap();
        let start = p.as_ptr() as usize;
        TruncatedMapping { start, addr: start + page, _file: file }
    }
}

impl Drop for TruncatedMapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once.
        unsafe { munmap(std::ptr::NonNull::new(self.start as *mut _).unwrap(), 2 * instance::page_size()) }.unwrap();
    }
}

/// Writes to `addr`.
pub extern "C" fn write_to(addr: usize) -> u64 {
    // SAFETY: the point is to fault; the address is a test's PROT_NONE page.
    unsafe { (addr as *mut u64).write_volatile(1) };
    0
}

// `store_one(addr)`: its first instruction stores a non-zero word at
// `addr`, so a fault it raises has its pc exactly at the function's address,
// whatever the compiler does with Rust code (an `extern "C" fn` whose store
// goes through `write_volatile` faults inside core's `write_volatile` when
// that is not inlined, as in Rust 1.88's debug builds).
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl instance_test_store_one",
    ".type instance_test_store_one, @function",
    "instance_test_store_one:",
    ".cfi_startproc",
    "    mov qword ptr [rdi], 1", // the faulting store: pc == the symbol
    "    xor eax, eax",           // returns 0
    "    ret",
    ".cfi_endproc",
    ".size instance_test_store_one, . - instance_test_store_one",
);
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl instance_test_store_one",
    ".type instance_test_store_one, %function",
    "instance_test_store_one:",
    ".cfi_startproc",
    "    str x0, [x0]", // the faulting store (of the address): pc == the symbol
    "    mov x0, #0",   // returns 0
    "    ret",
    ".cfi_endproc",
    ".size instance_test_store_one, . - instance_test_store_one",
);

unsafe extern "C" {
    /// Stores at `addr` with the function's first instruction; returns 0.
    #[link_name = "instance_test_store_one"]
    fn store_one_entry(addr: usize) -> u64;
}

/// The address of `store_one`'s faulting store (its first instruction).
pub fn store_one() -> usize {
    store_one_entry as *const () as usize
}

/// Reads from `addr`.
pub extern "C" fn read_from(addr: usize) -> u64 {
    // SAFETY: the point is to fault; the address is unmapped or past a file.
    unsafe { (addr as *const u64).read_volatile() }
}

/// Executes an undefined instruction (`ud2` on x86_64, `udf #0` on
/// aarch64): SIGILL.
pub extern "C" fn illegal_instruction() -> u64 {
    // SAFETY: raises SIGILL, which the instance catches.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("ud2", options(nomem, nostack))
    };
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("udf #0", options(nomem, nostack))
    };
    0
}

/// The bytes of [`illegal_instruction`]'s instruction, as found at the
/// reported pc.
#[cfg(target_arch = "x86_64")]
pub const ILLEGAL_INSTRUCTION_BYTES: &[u8] = &[0x0f, 0x0b];
#[cfg(target_arch = "aarch64")]
pub const ILLEGAL_INSTRUCTION_BYTES: &[u8] = &[0, 0, 0, 0];

/// Executes a breakpoint instruction (`int3` on x86_64, `brk #0` on
/// aarch64): SIGTRAP.
pub extern "C" fn breakpoint() -> u64 {
    // SAFETY: raises SIGTRAP, which the instance catches.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("int3", options(nomem, nostack))
    };
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("brk #0", options(nomem, nostack))
    };
    0
}

/// Divides `n` by `d` with the `div` instruction (no Rust zero check).
#[cfg(target_arch = "x86_64")]
pub extern "C" fn divide(n: u64, d: u64) -> u64 {
    let q: u64;
    // SAFETY: `div` with d = 0 raises SIGFPE, which the instance catches.
    unsafe {
        core::arch::asm!("div {d}", d = in(reg) d, inout("rax") n => q, inout("rdx") 0u64 => _, options(nomem, nostack))
    };
    q
}

/// An arithmetic fault (SIGFPE, FPE_INTDIV): on x86_64 an integer division
/// by zero. aarch64 raises no SIGFPE for it (`udiv` by zero gives 0, and
/// qemu implements no FP trap), so there the guest queues the signal the
/// CPU would have raised to its own thread, with the same si_code:
/// `rt_tgsigqueueinfo` delivers it before the system call returns, while
/// the guest runs, as a fault would be.
pub extern "C" fn arithmetic_fault() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        divide(1, black_box(0))
    }
    #[cfg(target_arch = "aarch64")]
    {
        queue_to_self(libc::SIGFPE, FPE_INTDIV);
        0
    }
}

/// Queues `signal` with si_code `code` to the calling thread.
#[cfg(target_arch = "aarch64")]
pub fn queue_to_self(signal: i32, code: i32) {
    // SAFETY: a zeroed siginfo is a valid value; the fields set are the
    // ones rt_tgsigqueueinfo reads; the call only queues a signal to this
    // thread (a positive si_code is accepted for one's own thread).
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        info.si_signo = signal;
        info.si_code = code;
        let r = libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            libc::getpid(),
            libc::syscall(libc::SYS_gettid),
            signal,
            &mut info as *mut libc::siginfo_t,
        );
        assert_eq!(r, 0, "rt_tgsigqueueinfo: {}", std::io::Error::last_os_error());
    }
}

/// A C-style recursion with a 1 KiB frame and no end: overflows any stack.
#[inline(never)]
#[allow(unconditional_recursion)]
pub extern "C" fn c_recursion(n: u64) -> u64 {
    let frame = black_box([n; 128]);
    c_recursion(frame[5] + 1).wrapping_add(frame[9])
}

/// A Rust recursion with no end.
#[inline(never)]
#[allow(unconditional_recursion)]
pub fn rust_recursion(depth: u64) -> u64 {
    let mut v = black_box([depth; 32]);
    v[1] = rust_recursion(v[0] + 1);
    v.iter().sum()
}

/// A guest that returns `a + b`.
pub extern "C" fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Loads from address 0 with a plain `mov` (no Rust null check in the
/// way): a true null dereference.
pub extern "C" fn null_deref() -> u64 {
    let v: u64;
    // SAFETY: the point is to fault.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("mov {v}, qword ptr [{p}]", v = out(reg) v, p = in(reg) 0usize, options(nostack, readonly))
    };
    // SAFETY: the point is to fault.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("ldr {v}, [{p}]", v = out(reg) v, p = in(reg) 0usize, options(nostack, readonly))
    };
    v
}
