//! The C `sigsetjmp`/`siglongjmp` fault-recovery baseline
//! (`bench-c/fault_baseline.c`).
//!
//! # Why it is compiled at start-up and loaded with `dlopen`
//!
//! A package has one build script, and `context-tests-c`'s belongs to the C
//! ABI oracle; the other crates must not gain a C build for a benchmark's
//! sake (`context-sys` is assembly only, `context` and `instance` have no
//! `cc`). So the benchmark uses the `cc` crate (a dev-dependency here) as a
//! library: it finds the same C compiler a build script would, compiles the
//! file into a shared object in a private temporary directory, and `dlopen`s
//! it. `libc` is used for `dlopen`/`dlsym` because nix does not wrap them.

use std::ffi::{CString, c_int, c_void};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::OnceLock;

use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};

use super::Op;

type FaultOnce = unsafe extern "C" fn(*const c_int) -> c_int;
type Install = unsafe extern "C" fn() -> c_int;

/// The baseline's entry points, resolved from the loaded shared object.
#[derive(Clone, Copy)]
pub struct Baseline {
    pub install: Install,
    pub uninstall: Install,
    pub fault_once: FaultOnce,
}

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench-c/fault_baseline.c");
/// The target the baseline is compiled for: the one this bench runs on
/// (cc-rs then finds its compiler as cargo's cross set-up names it, e.g.
/// `CC_aarch64_unknown_linux_gnu` under qemu-user).
#[cfg(target_arch = "x86_64")]
const TARGET: &str = "x86_64-unknown-linux-gnu";
#[cfg(target_arch = "aarch64")]
const TARGET: &str = "aarch64-unknown-linux-gnu";

fn compile(dir: &Path) -> Result<PathBuf, String> {
    let so = dir.join("libcontext_tests_c_fault_baseline.so");
    let compiler = cc::Build::new()
        .target(TARGET)
        .host(TARGET)
        .opt_level(2)
        .debug(false)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .emit_rerun_if_env_changed(false)
        .try_get_compiler()
        .map_err(|e| format!("no C compiler for the baseline: {e}"))?;
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(SOURCE)
        .status()
        .map_err(|e| format!("could not run the C compiler: {e}"))?;
    if !status.success() {
        return Err(format!("compiling {SOURCE} failed: {status}"));
    }
    Ok(so)
}

fn sym(lib: *mut c_void, name: &str) -> Result<*mut c_void, String> {
    let cname = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: `lib` is a live handle from dlopen and `cname` a C string.
    let p = unsafe { libc::dlsym(lib, cname.as_ptr()) };
    if p.is_null() { Err(format!("{name} not found in the baseline")) } else { Ok(p) }
}

fn load() -> Result<Baseline, String> {
    let dir = std::env::temp_dir().join(format!("context-tests-c-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let so = compile(&dir);
    let loaded = so.and_then(|so| {
        let path = CString::new(so.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: a path to a shared object we just built; it has no
        // constructors.
        let lib = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if lib.is_null() {
            return Err(format!("dlopen {} failed", so.display()));
        }
        let (install, uninstall, fault_once) = (
            sym(lib, "context_tests_c_bench_fault_install")?,
            sym(lib, "context_tests_c_bench_fault_uninstall")?,
            sym(lib, "context_tests_c_bench_fault_once")?,
        );
        // SAFETY: each symbol is the C function of that name in
        // bench-c/fault_baseline.c, with exactly these signatures; the
        // library is never closed, so the pointers stay valid.
        unsafe {
            Ok(Baseline {
                install: std::mem::transmute::<*mut c_void, Install>(install),
                uninstall: std::mem::transmute::<*mut c_void, Install>(uninstall),
                fault_once: std::mem::transmute::<*mut c_void, FaultOnce>(fault_once),
            })
        }
    });
    // The mapping stays after the file goes; leave nothing in /tmp.
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

/// The baseline, compiled and loaded once per process.
pub fn baseline() -> Baseline {
    static LOADED: OnceLock<Result<Baseline, String>> = OnceLock::new();
    match LOADED.get_or_init(load) {
        Ok(b) => *b,
        Err(e) => panic!("C baseline unavailable: {e}"),
    }
}

/// One page mapped `PROT_NONE`: reading it faults with SEGV_ACCERR.
pub struct NoAccessPage {
    addr: NonNull<c_void>,
    len: usize,
}

impl NoAccessPage {
    pub fn new() -> NoAccessPage {
        let len = super::stack_ops::page_size();
        let nz = NonZeroUsize::new(len).expect("page size is not zero");
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let addr = unsafe { mmap_anonymous(None, nz, ProtFlags::PROT_NONE, MapFlags::MAP_PRIVATE) }
            .expect("mmap a PROT_NONE page");
        NoAccessPage { addr, len }
    }

    /// The page's address, as the pointer a faulting read uses.
    pub fn ptr(&self) -> *const c_int {
        self.addr.as_ptr().cast_const().cast()
    }
}

impl Drop for NoAccessPage {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`.
        let r = unsafe { munmap(self.addr, self.len) };
        debug_assert!(r.is_ok(), "munmap of our own page failed: {r:?}");
    }
}

/// C: `sigsetjmp`, read a `PROT_NONE` page, `siglongjmp` out of the handler.
///
/// The C handler is installed for as long as this value lives (the previous
/// SIGSEGV disposition is put back on drop).
pub struct CFault {
    c: Baseline,
    page: NoAccessPage,
}

impl CFault {
    pub fn new() -> CFault {
        let c = baseline();
        // SAFETY: the baseline's install only calls sigaction.
        let r = unsafe { (c.install)() };
        assert_eq!(r, 0, "sigaction for the C baseline failed");
        CFault { c, page: NoAccessPage::new() }
    }
}

impl Op for CFault {
    #[inline]
    fn run(&mut self) {
        // SAFETY: the handler is installed (by `new`) and the page is
        // mapped PROT_NONE, so the read faults and the handler jumps back
        // into `fault_once`'s still-live frame.
        let came_back = unsafe { (self.c.fault_once)(self.page.ptr()) };
        assert_eq!(came_back, 1, "the read of a PROT_NONE page did not fault");
    }
}

impl Drop for CFault {
    fn drop(&mut self) {
        // SAFETY: puts back the disposition saved by `install`.
        let r = unsafe { (self.c.uninstall)() };
        debug_assert_eq!(r, 0, "sigaction restoring SIGSEGV failed");
    }
}
