//! Tells the build scripts of crates depending on this one where the C
//! headers are (`links = "stackful_instance"` in the manifest makes these
//! `DEP_STACKFUL_INSTANCE_*` for them):
//!
//! * `DEP_STACKFUL_INSTANCE_INCLUDE`: this crate's `include/`, holding `instance.h`,
//!   the C API a C guest calls;
//! * `DEP_STACKFUL_INSTANCE_CONTEXT_SYS_INCLUDE`: stackful-context-sys's `include/`,
//!   holding `context_sys.h`, passed on from stackful-context (this crate
//!   does not depend on stackful-context-sys directly, so cargo would not
//!   tell it).
//!
//! std only; nothing is compiled here.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo::metadata=include={}", manifest.join("include").display());
    // Set by cargo from stackful-context's build script (`links = "stackful_context"`).
    let sys_include = env::var_os("DEP_STACKFUL_CONTEXT_CONTEXT_SYS_INCLUDE")
        .expect("stackful-context passes on stackful-context-sys's include directory");
    println!("cargo::metadata=context_sys_include={}", PathBuf::from(sys_include).display());
}
