//! The sandbox demonstration: guests that return, fault every way, overflow
//! their stack, panic, yield sequences of values, and run past their
//! timeout, each run many times on one instance that is reset after every
//! failure. Prints one table row per case and exits 0 when
//! every case ended the way it should (1 otherwise).
//!
//! ```text
//! cargo run --release -p instance --example sandbox
//! ```

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use context::{EntryPoint, UntypedRetVal, Val};
use instance::{Error, FaultKind, Instance, Outcome, ThreadSignalMode};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous};

const RUNS: u32 = 1000;
/// Runs of the cases that end by a timeout (each takes the timeout).
const KILL_RUNS: u32 = 20;
const TIMEOUT: Duration = Duration::from_millis(2);
const STACK: usize = 64 * 1024;

// ---- guests -------------------------------------------------------------

extern "C" fn add(a: u64, b: u64) -> u64 {
    a + b
}

extern "C" fn write_to(addr: usize) -> u64 {
    // SAFETY: faults on purpose; the address is a PROT_NONE page.
    unsafe { (addr as *mut u64).write_volatile(1) };
    0
}

extern "C" fn read_from(addr: usize) -> u64 {
    // SAFETY: faults on purpose; the address is unmapped or past a file.
    unsafe { (addr as *const u64).read_volatile() }
}

/// The undefined instruction and the breakpoint of this architecture, as
/// the table names them.
#[cfg(target_arch = "x86_64")]
const ILLEGAL: &str = "ud2";
#[cfg(target_arch = "aarch64")]
const ILLEGAL: &str = "udf #0";
#[cfg(target_arch = "x86_64")]
const BREAKPOINT: &str = "int3";
#[cfg(target_arch = "aarch64")]
const BREAKPOINT: &str = "brk #0";

extern "C" fn illegal_instruction() -> u64 {
    // SAFETY: raises SIGILL on purpose.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("ud2", options(nomem, nostack))
    };
    // SAFETY: raises SIGILL on purpose.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("udf #0", options(nomem, nostack))
    };
    0
}

extern "C" fn breakpoint() -> u64 {
    // SAFETY: raises SIGTRAP on purpose.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("int3", options(nomem, nostack))
    };
    // SAFETY: raises SIGTRAP on purpose.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("brk #0", options(nomem, nostack))
    };
    0
}

/// `n / d` by the CPU's own unsigned division instruction: on x86_64 `div`
/// by zero raises SIGFPE; on aarch64 `udiv` by zero gives 0 and raises
/// nothing.
extern "C" fn divide(n: u64, d: u64) -> u64 {
    let q: u64;
    // SAFETY: `div` by zero raises SIGFPE on purpose.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("div {d}", d = in(reg) d, inout("rax") n => q, inout("rdx") 0u64 => _, options(nomem, nostack))
    };
    // SAFETY: `udiv` only computes.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("udiv {q}, {n}, {d}", q = out(reg) q, n = in(reg) n, d = in(reg) d, options(nomem, nostack))
    };
    q
}

/// What integer division by zero ends in on this architecture.
#[cfg(target_arch = "x86_64")]
const DIVISION_BY_ZERO: Expect = Expect::Fault(FaultKind::Arithmetic);
#[cfg(target_arch = "aarch64")]
const DIVISION_BY_ZERO: Expect = Expect::Value(0);

#[inline(never)]
#[allow(unconditional_recursion)]
extern "C" fn c_recursion(n: u64) -> u64 {
    let frame = black_box([n; 128]);
    c_recursion(frame[5] + 1).wrapping_add(frame[9])
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn rust_recursion(depth: u64) -> u64 {
    let mut v = black_box([depth; 32]);
    v[1] = rust_recursion(v[0] + 1);
    v.iter().sum()
}

/// Yields 0, 1, ... n-1 and returns the sum of the values it is resumed
/// with.
extern "C" fn yield_sum(n: u64) -> u64 {
    (0..n).map(|i| instance::yield_u64(i).unwrap_or(0)).sum()
}

extern "C" fn spin() -> u64 {
    loop {
        std::hint::spin_loop();
    }
}

// ---- cases --------------------------------------------------------------

/// What a case should end in.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    Value(u64),
    Fault(FaultKind),
    Panic,
    Terminated,
}

/// Runs one guest on the instance and gives its result as a number.
type Runner = Box<dyn FnMut(&mut Instance) -> Result<u64, Error>>;

struct Case {
    name: &'static str,
    expect: Expect,
    run: Runner,
}

fn raw(entry: impl Into<EntryPoint>, args: Vec<Val>) -> Runner {
    let entry = entry.into();
    // SAFETY: every entry below is an extern "C" fn whose parameters match
    // its arguments and which does not unwind.
    Box::new(move |inst| unsafe { inst.run(entry, &args) }.map(|r| r.as_u64()))
}

fn closure(f: fn() -> u64) -> Runner {
    Box::new(move |inst| inst.run_closure(f))
}

/// A closure that yields "1", "2", ... "5" (strings) and is resumed each time
/// with the number times ten; returns the sum of what it got.
fn yield_sequence() -> Runner {
    Box::new(|inst| {
        let mut out = inst.start_closure(|| {
            (1..=5u64).map(|i| instance::yield_value::<String, u64>(i.to_string()).unwrap_or(0)).sum::<u64>()
        })?;
        loop {
            match out {
                Outcome::Yielded(y) => {
                    let n: u64 = y.downcast::<String>().map_err(|_| Error::Terminated)?.parse().unwrap_or(0);
                    out = inst.resume::<u64, u64>(n * 10)?;
                }
                Outcome::Returned(sum) => return Ok(sum),
                _ => unreachable!("`Outcome` is non-exhaustive; a run ends by returning or yielding today"),
            }
        }
    })
}

/// The raw entry `yield_sum(4)`, resumed with 100 each time.
fn raw_yields() -> Runner {
    Box::new(|inst| {
        // SAFETY: yield_sum is extern "C" fn(u64) -> u64 and does not unwind.
        let mut out = unsafe { inst.start(yield_sum as extern "C" fn(_) -> _, &[Val::U64(4)]) }?;
        loop {
            match out {
                Outcome::Yielded(_) => out = inst.resume::<UntypedRetVal, u64>(100)?,
                Outcome::Returned(r) => return Ok(r.as_u64()),
                _ => unreachable!("`Outcome` is non-exhaustive; a run ends by returning or yielding today"),
            }
        }
    })
}

/// Runs `runner` with the timeout set.
fn with_timeout(mut runner: Runner) -> Runner {
    Box::new(move |inst| {
        inst.set_timeout(Some(TIMEOUT));
        let r = runner(inst);
        inst.set_timeout(None);
        r
    })
}

// Clippy 1.88 calls `|| illegal_instruction()` a redundant closure, but an `extern "C" fn`
// item is not `FnOnce` (the suggested `illegal_instruction` does not compile on
// 1.95).
#[allow(clippy::redundant_closure)]
fn main() {
    let page = instance::page_size();
    // SAFETY: fresh mappings that alias nothing; they live until exit.
    let no_access =
        unsafe { mmap_anonymous(None, NonZeroUsize::new(page).unwrap(), ProtFlags::PROT_NONE, MapFlags::MAP_PRIVATE) }
            .expect("mmap")
            .as_ptr() as usize;
    let file = tempfile_of_one_page(page);
    // SAFETY: as above; two pages of a one-page file.
    let truncated = unsafe {
        mmap(None, NonZeroUsize::new(2 * page).unwrap(), ProtFlags::PROT_READ, MapFlags::MAP_SHARED, file.as_fd(), 0)
    }
    .expect("mmap of the file")
    .as_ptr() as usize
        + page;

    let mut cases = vec![
        Case {
            name: "return (raw entry, 2 args)",
            expect: Expect::Value(42),
            run: raw(add as extern "C" fn(_, _) -> _, vec![Val::U64(40), Val::U64(2)]),
        },
        Case { name: "return (closure)", expect: Expect::Value(55), run: closure(|| (1..=10).sum()) },
        Case {
            name: "write to PROT_NONE page",
            expect: Expect::Fault(FaultKind::MemoryFault),
            run: raw(write_to as extern "C" fn(_) -> _, vec![Val::USize(no_access)]),
        },
        Case {
            name: "read of unmapped address",
            expect: Expect::Fault(FaultKind::MemoryFault),
            run: raw(read_from as extern "C" fn(_) -> _, vec![Val::USize(0x10)]),
        },
        Case {
            name: ILLEGAL,
            expect: Expect::Fault(FaultKind::IllegalInstruction),
            run: raw(illegal_instruction as extern "C" fn() -> _, vec![]),
        },
        Case {
            name: "integer division by zero",
            expect: DIVISION_BY_ZERO,
            run: raw(divide as extern "C" fn(_, _) -> _, vec![Val::U64(7), Val::U64(0)]),
        },
        Case {
            name: BREAKPOINT,
            expect: Expect::Fault(FaultKind::Breakpoint),
            run: raw(breakpoint as extern "C" fn() -> _, vec![]),
        },
        Case {
            name: "C-style recursion",
            expect: Expect::Fault(FaultKind::StackOverflow),
            run: raw(c_recursion as extern "C" fn(_) -> _, vec![Val::U64(0)]),
        },
        Case {
            name: "Rust recursion (closure)",
            expect: Expect::Fault(FaultKind::StackOverflow),
            run: closure(|| rust_recursion(0)),
        },
        Case {
            name: "read past end of file mapping",
            expect: Expect::Fault(FaultKind::BusError),
            run: raw(read_from as extern "C" fn(_) -> _, vec![Val::USize(truncated)]),
        },
        Case { name: "panic (closure)", expect: Expect::Panic, run: closure(|| panic!("guest gave up")) },
        Case {
            name: "nested instance faults inside",
            expect: Expect::Value(1),
            run: closure(|| {
                let mut inner = Instance::new(STACK).unwrap();
                u64::from(inner.run_closure(|| illegal_instruction()).is_err_and(|e| e.fault().is_some()))
            }),
        },
        Case {
            name: "host region inside a guest",
            expect: Expect::Value(3),
            run: closure(|| instance::host_region(|| vec![1, 2, 3].len() as u64)),
        },
        Case { name: "yield 5 strings (closure)", expect: Expect::Value(150), run: yield_sequence() },
        Case { name: "yield 4 u64s (raw entry)", expect: Expect::Value(400), run: raw_yields() },
        Case {
            name: "spin past 2 ms timeout (raw)",
            expect: Expect::Terminated,
            run: with_timeout(raw(spin as extern "C" fn() -> _, vec![])),
        },
        Case {
            name: "spin past 2 ms timeout (closure)",
            expect: Expect::Terminated,
            run: with_timeout(closure(|| instance::terminable(|| spin()))),
        },
    ];

    // The same short runs with the thread in ThreadSignalMode::Keep: our
    // alternate signal stack stays installed between runs and the mask is
    // not read, so a run makes no system call.
    let mut keep_cases = [
        Case {
            name: "return (raw entry), Keep mode",
            expect: Expect::Value(42),
            run: raw(add as extern "C" fn(_, _) -> _, vec![Val::U64(40), Val::U64(2)]),
        },
        Case { name: "return (closure), Keep mode", expect: Expect::Value(55), run: closure(|| (1..=10).sum()) },
        Case {
            name: "PROT_NONE write, Keep mode",
            expect: Expect::Fault(FaultKind::MemoryFault),
            run: raw(write_to as extern "C" fn(_) -> _, vec![Val::USize(no_access)]),
        },
    ];

    // Guest panics are expected here; keep the table readable.
    std::panic::set_hook(Box::new(|_| {}));

    let mut inst = Instance::new(STACK).expect("an instance");
    println!(
        "{} runs per case ({} for timeouts), {} KiB guest stacks, one instance reset after each failure\n",
        RUNS,
        KILL_RUNS,
        STACK / 1024
    );
    println!("{:<32} {:<26} {:<20} {:<16} {:>10}", "case", "outcome", "kind", "address", "time/run");
    println!("{}", "-".repeat(108));
    let mut all_ok = true;
    let all = cases.iter_mut().map(|c| (c, ThreadSignalMode::Restore));
    for (case, mode) in all.chain(keep_cases.iter_mut().map(|c| (c, ThreadSignalMode::Keep))) {
        instance::set_thread_signal_mode(mode).expect("not inside a run");
        let mut last = None;
        let mut ok = true;
        let runs = if case.expect == Expect::Terminated { KILL_RUNS } else { RUNS };
        let start = Instant::now();
        for _ in 0..runs {
            let r = (case.run)(&mut inst);
            let got = match &r {
                Ok(v) => Expect::Value(*v),
                Err(Error::Fault(f)) => Expect::Fault(f.kind),
                Err(Error::Panic(_)) => Expect::Panic,
                Err(Error::Terminated) => Expect::Terminated,
                Err(_) => {
                    ok = false;
                    Expect::Panic
                }
            };
            ok &= got == case.expect;
            if r.is_err() {
                inst.reset().expect("reset");
            }
            last = Some(r);
        }
        let per_run = start.elapsed() / runs;
        all_ok &= ok;
        let (outcome, kind, addr) = match last.expect("at least one run") {
            Ok(v) => (format!("returned {v}"), "-".to_string(), "-".to_string()),
            Err(Error::Fault(f)) => {
                (format!("faulted ({} {})", f.signal.as_str(), f.code), f.kind.to_string(), format!("{:#x}", f.addr))
            }
            Err(Error::Panic(p)) => (format!("panicked: {}", p.message().unwrap_or("?")), "-".into(), "-".into()),
            Err(Error::Terminated) => ("terminated (timeout)".to_string(), "-".into(), "-".into()),
            Err(e) => (format!("error: {e}"), "-".into(), "-".into()),
        };
        let mark = if ok { "" } else { "  <-- unexpected" };
        println!("{:<32} {:<26} {:<20} {:<16} {:>10.2?}{mark}", case.name, outcome, kind, addr, per_run);
    }
    let _ = std::panic::take_hook();
    if !all_ok {
        eprintln!("\nsome cases did not end as expected");
        std::process::exit(1);
    }
    println!("\nevery case ended as expected; the host is still here.");
    // A closure guest's frames abandoned by a fault may still be in use (a
    // scoped thread borrowing a local): its stack is left mapped for good
    // and the instance gets a fresh one (`Instance::set_reuse_abandoned_stack`
    // is the unsafe opt-out for guests that lend nothing).
    println!(
        "stacks quarantined after closure faults: {} (left mapped for good; see instance::quarantined_stacks)",
        instance::quarantined_stacks()
    );
}

/// An unlinked temporary file of one page.
fn tempfile_of_one_page(page: usize) -> std::fs::File {
    let path = std::env::temp_dir().join(format!("instance-sandbox-{}", std::process::id()));
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("temp file");
    let _ = std::fs::remove_file(&path);
    file.set_len(page as u64).expect("set_len");
    file
}
