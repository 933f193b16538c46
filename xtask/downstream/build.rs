//! Build script of the downstream smoke crate: compiles `c/guest.c` (C11)
//! and `c/guest.cpp` (C++17) against the C headers as a user's build script
//! finds them, from the `DEP_*` variables of the packaged crates:
//!
//! * `DEP_STACKFUL_INSTANCE_INCLUDE`: `instance.h`;
//! * `DEP_STACKFUL_INSTANCE_CONTEXT_SYS_INCLUDE` and
//!   `DEP_STACKFUL_CONTEXT_CONTEXT_SYS_INCLUDE`: `context_sys.h`, passed on
//!   by either crate (this crate does not depend on stackful-context-sys);
//!   both must name the same directory.
//!
//! A header left out of a package, or one that no longer compiles as C or
//! C++ under `-pedantic -Wall -Wextra -Werror`, fails here.

use std::env;
use std::path::PathBuf;

/// The directory in `var`, which must hold `header`.
fn include_dir(var: &str, header: &str) -> PathBuf {
    let Some(dir) = env::var_os(var).map(PathBuf::from) else {
        panic!("{var} is not set: the packaged crates' build scripts do not export it");
    };
    let file = dir.join(header);
    assert!(file.is_file(), "{var}={} holds no {header}: the header is missing from the package", dir.display());
    println!("cargo::rerun-if-changed={}", file.display());
    dir
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=c");
    let instance = include_dir("DEP_STACKFUL_INSTANCE_INCLUDE", "instance.h");
    let sys = include_dir("DEP_STACKFUL_INSTANCE_CONTEXT_SYS_INCLUDE", "context_sys.h");
    let sys_via_context = include_dir("DEP_STACKFUL_CONTEXT_CONTEXT_SYS_INCLUDE", "context_sys.h");
    assert_eq!(
        sys.canonicalize().ok(),
        sys_via_context.canonicalize().ok(),
        "stackful-instance and stackful-context pass on different context_sys include directories: {} and {}",
        sys.display(),
        sys_via_context.display()
    );

    let strict = |build: &mut cc::Build| {
        build.include(&instance).include(&sys).flag("-pedantic").flag("-Wall").flag("-Wextra").flag("-Werror");
    };
    let mut c = cc::Build::new();
    strict(c.file("c/guest.c").std("c11"));
    c.compile("downstream_c");
    let mut cpp = cc::Build::new();
    strict(cpp.cpp(true).file("c/guest.cpp").std("c++17"));
    cpp.compile("downstream_cpp");
}
