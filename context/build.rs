//! Passes on where `stackful-context-sys` keeps its C header, so that the
//! build scripts of crates depending on this one (which see only their
//! direct dependencies' metadata) can find it: with `links = "stackful_context"` in
//! the manifest, they read it as `DEP_STACKFUL_CONTEXT_CONTEXT_SYS_INCLUDE`.
//!
//! std only; nothing is compiled here.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // Set by cargo from the `cargo::metadata=include=...` line of
    // stackful-context-sys's build script (it declares `links = "context_sys"`).
    let sys_include =
        env::var_os("DEP_CONTEXT_SYS_INCLUDE").expect("stackful-context-sys exports its include directory");
    println!("cargo::metadata=context_sys_include={}", PathBuf::from(sys_include).display());
}
