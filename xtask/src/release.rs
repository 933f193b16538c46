//! `cargo xtask release-check`: what must hold before `cargo publish`.
//!
//! 1. `cargo publish --workspace --dry-run` packages every publishable crate
//!    and builds each package on its own (with the unpublished ones it
//!    depends on served from the packages just made), in
//!    `<target>/release-check`.
//! 2. A downstream crate (template in `xtask/downstream/`) that depends on
//!    the published names only, `stackful-context` and `stackful-instance`,
//!    is built in `<target>/downstream` against the `.crate` files from
//!    step 1, unpacked, and run. Building from the packaged files rather
//!    than the workspace's catches a file left out of a package's
//!    `include`, a path dependency without a version, or a package name
//!    that code still spells the old way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use crate::util::{self, cargo, root};

pub const USAGE: &str = "\
usage: cargo xtask release-check

Runs `cargo publish --workspace --dry-run` (with --allow-dirty only when the
git tree has uncommitted changes, and says so), then builds and runs a
downstream crate against the packaged crates (<target>/release-check/package/),
unpacked into <target>/downstream/. See RELEASING.md.
";

/// The published packages, in the order they must be published (each
/// depends only on those before it).
pub const PUBLISH_ORDER: [&str; 3] = ["stackful-context-sys", "stackful-context", "stackful-instance"];

const TEMPLATE_MANIFEST: &str = include_str!("../downstream/Cargo.toml.in");
const TEMPLATE_MAIN: &str = include_str!("../downstream/main.rs");

/// The last line the downstream binary prints when every check held.
const SMOKE_OK: &str = "downstream smoke: ok";

pub fn run() -> Result<(), String> {
    let started = SystemTime::now();
    let version = util::workspace_package_field(&util::root_manifest()?, "version")
        .ok_or("the root Cargo.toml has no `version = \"...\"` in [workspace.package]")?;

    let t = Instant::now();
    let allow_dirty = match dirty_paths() {
        Ok(paths) if paths.is_empty() => {
            println!("git tree clean: packaging the committed files");
            false
        }
        Ok(paths) => {
            println!(
                "git tree dirty ({} path(s) changed or untracked, first: {}): passing --allow-dirty, \
                 so the packages hold the working tree's files, not a commit's",
                paths.len(),
                paths[0]
            );
            true
        }
        Err(e) => {
            println!("cannot tell whether the git tree is clean ({e}): passing --allow-dirty");
            true
        }
    };
    let dirty_flag: &[&str] = if allow_dirty { &["--allow-dirty"] } else { &[] };
    let build_dir = util::target_dir().join("release-check");
    forget_earlier_packages(&version, &build_dir)?;
    util::run(
        cargo().args(["publish", "--workspace", "--dry-run"]).args(dirty_flag).env("CARGO_TARGET_DIR", &build_dir),
    )?;
    println!("publish dry run: ok in {:.1} s", t.elapsed().as_secs_f64());

    // `publish --dry-run` keeps its archives in a scratch directory of its
    // own; `cargo package` writes the same archives (already verified just
    // above) where its documentation says: <target>/package/.
    let t = Instant::now();
    let mut package = cargo();
    package.args(["package", "--no-verify"]).args(dirty_flag).env("CARGO_TARGET_DIR", &build_dir);
    for name in PUBLISH_ORDER {
        package.args(["-p", name]);
    }
    util::run(&mut package)?;
    let package_dir = build_dir.join("package");
    let crates = PUBLISH_ORDER
        .iter()
        .map(|name| {
            let file = package_dir.join(format!("{name}-{version}.crate"));
            let fresh = std::fs::metadata(&file).and_then(|m| m.modified()).is_ok_and(|m| m >= started);
            if fresh { Ok((*name, file)) } else { Err(format!("the dry run wrote no fresh {}", file.display())) }
        })
        .collect::<Result<Vec<_>, String>>()?;
    downstream(&version, &crates)?;
    println!("downstream smoke test: ok in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Makes Cargo forget the packages of our crates that earlier dry runs of
/// the same version made.
///
/// To verify a package against an unpublished one, `cargo publish
/// --workspace` serves the latter from a scratch registry in
/// `<build_dir>/package/tmp-registry`. As for any registry, Cargo takes a
/// registry package's name and version to stand for its contents: it
/// unpacks it once into `$CARGO_HOME/registry/src/<that registry>/` and
/// never again, and takes its build in `<build_dir>` for up to date as long
/// as the version is the same. Between two dry runs of one version the
/// contents do change, so both are removed here: else a dependent would be
/// verified against the first run's files (seen here: a `links` key added
/// after the first run was missing from the second run's
/// `stackful-context`). Only our packages are touched, and not crates.io's
/// copies of them, which are the published files. The dry run builds in
/// `<build_dir>`, apart from the workspace's own builds, so that forgetting
/// our crates there costs those builds nothing.
fn forget_earlier_packages(version: &str, build_dir: &Path) -> Result<(), String> {
    let remove = |path: &Path| {
        std::fs::remove_dir_all(path).map_err(|e| format!("remove {}: {e}", path.display()))?;
        println!("forgot {} (made by an earlier dry run)", path.display());
        Ok::<(), String>(())
    };
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(Ok(registries)) = home.map(|h| std::fs::read_dir(h.join("registry").join("src"))) {
        for registry in registries.flatten() {
            if registry.file_name().to_string_lossy().starts_with("index.crates.io-") {
                continue;
            }
            for name in PUBLISH_ORDER {
                let unpacked = registry.path().join(format!("{name}-{version}"));
                if unpacked.exists() {
                    remove(&unpacked)?;
                }
            }
        }
    }
    // Fingerprints are `<package>-<hash>` directories; without one, Cargo
    // builds the unit again.
    let fingerprints = build_dir.join("debug").join(".fingerprint");
    if let Ok(entries) = std::fs::read_dir(&fingerprints) {
        let stale: Vec<_> =
            entries.flatten().filter(|e| is_our_fingerprint(&e.file_name().to_string_lossy())).collect();
        for entry in &stale {
            std::fs::remove_dir_all(entry.path()).map_err(|e| format!("remove {}: {e}", entry.path().display()))?;
        }
        if !stale.is_empty() {
            println!("forgot {} build(s) of our crates in {}", stale.len(), fingerprints.display());
        }
    }
    Ok(())
}

/// Whether a fingerprint directory's name is `<one of ours>-<hash>`.
fn is_our_fingerprint(name: &str) -> bool {
    PUBLISH_ORDER
        .iter()
        .any(|p| name.strip_prefix(p).and_then(|rest| rest.strip_prefix('-')).is_some_and(|hash| !hash.contains('-')))
}

/// Paths `git status` reports as changed or untracked.
fn dirty_paths() -> Result<Vec<String>, String> {
    let out = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("could not run git: {e}"))?;
    if !out.status.success() {
        return Err(format!("git status failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.get(3..).unwrap_or(l).to_string()).collect())
}

/// Builds and runs the downstream crate against `crates` (name, `.crate`
/// file), unpacked.
fn downstream(version: &str, crates: &[(&str, PathBuf)]) -> Result<(), String> {
    let dir = util::target_dir().join("downstream");
    let packages = dir.join("packages");
    // The build directory stays, so a second run rebuilds only our crates;
    // everything else is written afresh, and the lock file is dropped so the
    // dependencies resolve as they would for a new user.
    for stale in [packages.clone(), dir.join("src")] {
        if stale.exists() {
            std::fs::remove_dir_all(&stale).map_err(|e| format!("remove {}: {e}", stale.display()))?;
        }
    }
    let _ = std::fs::remove_file(dir.join("Cargo.lock"));
    mkdir(&packages)?;
    mkdir(&dir.join("src"))?;

    let mut unpacked = Vec::new();
    for (name, file) in crates {
        // `-m`: the files get the time of unpacking, not the fixed time
        // `cargo package` gives them, which is older than any earlier build
        // here and would make cargo take that build for up to date.
        util::run(Command::new("tar").arg("-xzmf").arg(file).arg("-C").arg(&packages))?;
        let path = packages.join(format!("{name}-{version}"));
        if !path.join("Cargo.toml").is_file() {
            return Err(format!("{} did not unpack into {}", file.display(), path.display()));
        }
        unpacked.push((*name, path));
    }
    write(&dir.join("Cargo.toml"), &downstream_manifest(TEMPLATE_MANIFEST, version, &unpacked))?;
    write(&dir.join("src").join("main.rs"), TEMPLATE_MAIN)?;
    println!("downstream crate in {}, on the packages unpacked in {}", dir.display(), packages.display());

    let manifest = dir.join("Cargo.toml");
    let build_dir = dir.join("target");
    let downstream_cargo = || {
        let mut cmd = cargo();
        cmd.current_dir(&dir).arg("--quiet").env("CARGO_TARGET_DIR", &build_dir);
        cmd
    };
    util::run(downstream_cargo().arg("build").arg("--manifest-path").arg(&manifest))?;

    // The graph must take every one of our crates from the unpacked
    // packages; a patch cargo did not use would leave it on another source.
    let tree = downstream_cargo()
        .args(["tree", "--prefix", "none", "--edges", "normal", "--manifest-path"])
        .arg(&manifest)
        .output()
        .map_err(|e| format!("could not run cargo tree: {e}"))?;
    let tree = String::from_utf8_lossy(&tree.stdout);
    for (name, path) in &unpacked {
        let line = format!("{name} v{version} ({})", path.display());
        if !tree.lines().any(|l| l.trim_end_matches(" (*)") == line) {
            return Err(format!("the downstream crate does not use the unpacked {name}; cargo tree printed:\n{tree}"));
        }
    }

    let exe = build_dir.join("debug").join("downstream-smoke");
    let out = Command::new(&exe).output().map_err(|e| format!("could not run {}: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() || stdout.lines().last() != Some(SMOKE_OK) {
        return Err(format!("the downstream crate ended with {} and did not print `{SMOKE_OK}` last", out.status));
    }
    Ok(())
}

/// The downstream manifest: the template with the version in place, the
/// packages patched in, and an empty `[workspace]` so cargo does not take
/// it for a member of a workspace above it.
fn downstream_manifest(template: &str, version: &str, unpacked: &[(&str, PathBuf)]) -> String {
    let mut m = template.replace("@VERSION@", version);
    m.push_str("\n# Written by `cargo xtask release-check`: the packaged crates, unpacked.\n[patch.crates-io]\n");
    for (name, path) in unpacked {
        m.push_str(&format!("{name} = {{ path = {} }}\n", toml_string(path)));
    }
    m.push_str("\n# Its own workspace, not one above it.\n[workspace]\n");
    m
}

/// `path` as a TOML basic string.
fn toml_string(path: &Path) -> String {
    let mut s = String::from('"');
    for c in path.display().to_string().chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))
}

fn write(file: &Path, text: &str) -> Result<(), String> {
    std::fs::write(file, text).map_err(|e| format!("write {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downstream_manifest_patches_every_package_and_is_its_own_workspace() {
        let unpacked: Vec<_> =
            PUBLISH_ORDER.iter().map(|n| (*n, PathBuf::from(format!("/t/packages/{n}-0.1.0")))).collect();
        let m = downstream_manifest(TEMPLATE_MANIFEST, "0.1.0", &unpacked);
        assert!(!m.contains("@VERSION@"));
        assert!(m.contains("context = { package = \"stackful-context\", version = \"0.1.0\" }"), "{m}");
        assert!(m.contains("instance = { package = \"stackful-instance\", version = \"0.1.0\" }"), "{m}");
        for n in PUBLISH_ORDER {
            assert!(m.contains(&format!("{n} = {{ path = \"/t/packages/{n}-0.1.0\" }}")), "{m}");
        }
        assert!(m.trim_end().ends_with("[workspace]"), "{m}");
        // Exactly one [workspace] table, and no path into the workspace.
        assert_eq!(m.lines().filter(|l| l.trim() == "[workspace]").count(), 1);
        assert!(!m.contains("path = \"..") && !m.contains("workspace = true"));
    }

    #[test]
    fn only_our_packages_fingerprints_are_forgotten() {
        assert!(is_our_fingerprint("stackful-context-0a1b2c3d4e5f6a7b"));
        assert!(is_our_fingerprint("stackful-context-sys-0a1b2c3d4e5f6a7b"));
        assert!(is_our_fingerprint("stackful-instance-0a1b2c3d4e5f6a7b"));
        assert!(!is_our_fingerprint("stackful-contextual-0a1b2c3d4e5f6a7b"));
        assert!(!is_our_fingerprint("nix-0a1b2c3d4e5f6a7b"));
        assert!(!is_our_fingerprint("stackful-context"));
    }

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        assert_eq!(toml_string(Path::new("/a/b")), "\"/a/b\"");
        assert_eq!(toml_string(Path::new("/a\"b\\c")), "\"/a\\\"b\\\\c\"");
    }

    #[test]
    fn publish_order_names_the_workspace_packages() {
        for (name, folder) in PUBLISH_ORDER.iter().zip(["context-sys", "context", "instance"]) {
            let manifest = std::fs::read_to_string(root().join(folder).join("Cargo.toml")).unwrap();
            assert!(manifest.contains(&format!("name = \"{name}\"")), "{folder}/Cargo.toml is not {name}");
        }
    }
}
