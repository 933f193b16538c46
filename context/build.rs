//! Passes on where `stackful-context-sys` keeps its C header, so that the
//! build scripts of crates depending on this one (which see only their
//! direct dependencies' metadata) can find it: with `links = "stackful_context"` in
//! the manifest, they read it as `DEP_STACKFUL_CONTEXT_CONTEXT_SYS_INCLUDE`.
//!
//! The directory must hold `context_sys.h`: a package that left the header
//! out fails here, by name, rather than in a dependent's C compiler.
//!
//! std only; nothing is compiled here.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // Set by cargo from the `cargo::metadata=include=...` line of
    // stackful-context-sys's build script (it declares `links = "context_sys"`).
    let Some(sys_include) = env::var_os("DEP_CONTEXT_SYS_INCLUDE").map(PathBuf::from) else {
        fail(
            "DEP_CONTEXT_SYS_INCLUDE is not set: stackful-context-sys's build script exports its include \
             directory (`cargo::metadata=include=...`, links = \"context_sys\"), and cargo passes it on",
        );
    };
    let header = sys_include.join("context_sys.h");
    if !header.is_file() {
        fail(&format!(
            "{} does not exist: stackful-context-sys exported DEP_CONTEXT_SYS_INCLUDE={} but that directory \
             holds no context_sys.h",
            header.display(),
            sys_include.display()
        ));
    }
    println!("cargo::rerun-if-changed={}", header.display());
    println!("cargo::metadata=context_sys_include={}", sys_include.display());
}

/// Ends the build script with `message` on standard error, which cargo
/// shows when a build script fails.
fn fail(message: &str) -> ! {
    eprintln!("error: stackful-context build script: {message}");
    std::process::exit(1);
}
