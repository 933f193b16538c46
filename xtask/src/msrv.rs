//! `cargo xtask msrv`: clippy and the debug tests on the toolchain named by
//! `rust-version` in the root `Cargo.toml`'s `[workspace.package]`, so the
//! declared minimum is a tested one.
//!
//! It builds in `<target>/msrv`, apart from the stable build, so switching
//! toolchains does not make either rebuild everything. Without that
//! toolchain it prints SKIPPED, or under CI fails (`.ci/run` installs it).

use std::process::{Command, Stdio};

use crate::util::{self, root};

pub const USAGE: &str = "\
usage: cargo xtask msrv

Runs `cargo clippy --workspace --all-targets -- -D warnings` and
`cargo test --workspace` with the toolchain named by `rust-version` in the
root Cargo.toml, in <target>/msrv. Without that toolchain: SKIPPED, or an
error when CI is set (install it with the command the message gives).
";

pub fn run() -> Result<(), String> {
    let manifest = util::root_manifest()?;
    let version = util::workspace_package_field(&manifest, "rust-version")
        .ok_or("the root Cargo.toml has no `rust-version = \"...\"` in [workspace.package]")?;
    let install = format!("rustup toolchain install {version} --profile minimal --component clippy");
    if !runs(&version, &["--version"]) {
        if util::under_ci() {
            return Err(format!(
                "the MSRV toolchain {version} is not installed and CI is set; install it: `{install}`"
            ));
        }
        println!("{}", "*".repeat(78));
        println!("SKIPPED: toolchain {version} (the MSRV) is not installed, so nothing was checked on it; `{install}`");
        println!("{}", "*".repeat(78));
        return Ok(());
    }
    if !runs(&version, &["clippy", "--version"]) {
        return Err(format!(
            "toolchain {version} has no clippy; `rustup component add clippy --toolchain {version}` (or `{install}`)"
        ));
    }
    let target = util::target_dir().join("msrv");
    println!("MSRV {version}, building in {}", target.display());
    util::run(msrv_cargo(&version).args(["--version"]))?;
    util::run(
        msrv_cargo(&version)
            .args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
            .env("CARGO_TARGET_DIR", &target),
    )?;
    util::run(msrv_cargo(&version).args(["test", "--workspace"]).env("CARGO_TARGET_DIR", &target))
}

/// `cargo` of toolchain `version`, run from the workspace root.
fn msrv_cargo(version: &str) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", version, "cargo"]).current_dir(root());
    // Paths to the stable tools, where Cargo or the caller set them, would
    // win over the toolchain's own; and never let rustup install a
    // toolchain behind our back.
    for var in ["CARGO", "RUSTC", "RUSTDOC"] {
        cmd.env_remove(var);
    }
    cmd.env("RUSTUP_AUTO_INSTALL", "0");
    cmd
}

/// Whether `cargo <args>` of toolchain `version` runs and succeeds.
fn runs(version: &str, args: &[&str]) -> bool {
    msrv_cargo(version).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}
