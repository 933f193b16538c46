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
//! Each directory must hold its header: a package that left one out fails
//! here, by name, rather than in a dependent's C compiler.
//!
//! std only; nothing is compiled here.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let include = manifest.join("include");
    let header = include.join("instance.h");
    if !header.is_file() {
        fail(&format!(
            "{} does not exist: the C API header must ship with the crate (is `include/**` in the `include` \
             list of stackful-instance's Cargo.toml?)",
            header.display()
        ));
    }
    println!("cargo::rerun-if-changed={}", header.display());
    println!("cargo::metadata=include={}", include.display());

    // Set by cargo from stackful-context's build script (`links = "stackful_context"`).
    let Some(sys_include) = env::var_os("DEP_STACKFUL_CONTEXT_CONTEXT_SYS_INCLUDE").map(PathBuf::from) else {
        fail(
            "DEP_STACKFUL_CONTEXT_CONTEXT_SYS_INCLUDE is not set: stackful-context's build script passes on \
             stackful-context-sys's include directory (links = \"stackful_context\")",
        );
    };
    let sys_header = sys_include.join("context_sys.h");
    if !sys_header.is_file() {
        fail(&format!(
            "{} does not exist: stackful-context passed on DEP_STACKFUL_CONTEXT_CONTEXT_SYS_INCLUDE={} but that \
             directory holds no context_sys.h",
            sys_header.display(),
            sys_include.display()
        ));
    }
    println!("cargo::metadata=context_sys_include={}", sys_include.display());
}

/// Ends the build script with `message` on standard error, which cargo
/// shows when a build script fails.
fn fail(message: &str) -> ! {
    eprintln!("error: stackful-instance build script: {message}");
    std::process::exit(1);
}
