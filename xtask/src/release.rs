//! `cargo xtask release-check`: what must hold before `cargo publish`.
//!
//! 1. `cargo publish --workspace --dry-run` packages every publishable crate
//!    (`--workspace` skips those with `publish = false`) and builds each
//!    package on its own (with the unpublished ones it depends on served
//!    from the packages just made), in `<target>/release-check`, with a
//!    Cargo home of its own there (see [`dry_run_home`]).
//! 2. A downstream crate (template in `xtask/downstream/`) that depends on
//!    the published names only, `stackful-context` and `stackful-instance`,
//!    is built in `<target>/downstream` against the `.crate` files of the
//!    three packages (`cargo package -p ...`), unpacked, and run. Its build
//!    script compiles a C11 and a C++17 file against `instance.h` and
//!    `context_sys.h`, found through the `DEP_*` variables the packages
//!    export, and its `main` runs Rust, C and C++ guests (the C ones
//!    yielding through `instance_yield`). Building from the packaged files
//!    rather than the workspace's catches a file (a header among them) left
//!    out of a package's `include`, a path dependency without a version, or
//!    a package name that code still spells the old way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use crate::util::{self, cargo, root};

pub const USAGE: &str = "\
usage: cargo xtask release-check

Runs `cargo publish --workspace --dry-run` (with --allow-dirty only when the
git tree has uncommitted changes, and says so) in <target>/release-check/,
with its own Cargo home there (cargo-home/, sharing the downloads of yours),
then `cargo package -p` for the three published crates, and builds and runs
a downstream crate, C and C++ guests included, against those packages
(<target>/release-check/package/), unpacked into <target>/downstream/.
See RELEASING.md.
";

/// The published packages, in the order they must be published (each
/// depends only on those before it).
pub const PUBLISH_ORDER: [&str; 3] = ["stackful-context-sys", "stackful-context", "stackful-instance"];

const TEMPLATE_MANIFEST: &str = include_str!("../downstream/Cargo.toml.in");
const TEMPLATE_MAIN: &str = include_str!("../downstream/main.rs");
const TEMPLATE_BUILD: &str = include_str!("../downstream/build.rs");
/// The C and C++ guests `build.rs` compiles: (file name in `c/`, text).
const TEMPLATE_C: [(&str, &str); 2] =
    [("guest.c", include_str!("../downstream/c/guest.c")), ("guest.cpp", include_str!("../downstream/c/guest.cpp"))];

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
    let home = dry_run_home(&build_dir)?;
    forget_earlier_packages(&version, &home, &build_dir)?;
    // `--workspace`, not `-p` for each: publishing a workspace skips the
    // packages with `publish = false` (`cargo package --workspace` does
    // not, and context-tests-c does not package).
    util::run(with_home(
        cargo().args(["publish", "--workspace", "--dry-run"]).args(dirty_flag).env("CARGO_TARGET_DIR", &build_dir),
        &home,
    ))?;
    check_unpacked_in(&version, &home)?;
    println!("publish dry run: ok in {:.1} s", t.elapsed().as_secs_f64());

    // `publish --dry-run` keeps its archives in a scratch directory of its
    // own; `cargo package` writes the same archives (already verified just
    // above) where its documentation says: <target>/package/.
    let t = Instant::now();
    // `-p` for each published package: `cargo package --workspace` would
    // package context-tests-c too, `publish = false` notwithstanding, and
    // fail (its build script reads ../instance/include).
    let mut package = cargo();
    package.args(["package", "--no-verify"]).args(dirty_flag).env("CARGO_TARGET_DIR", &build_dir);
    for name in PUBLISH_ORDER {
        package.args(["-p", name]);
    }
    util::run(with_home(&mut package, &home))?;
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
/// `stackful-context`).
///
/// The unpacked copies are found through the dry run's own Cargo home
/// ([`dry_run_home`]): every registry source directory in it that is not a
/// link into the user's Cargo home was made by this build directory's dry
/// runs, so nothing another checkout (or another build directory of this
/// one) is building from is touched. The dry run builds in `<build_dir>`,
/// apart from the workspace's own builds, so that forgetting our crates
/// there costs those builds nothing.
fn forget_earlier_packages(version: &str, home: &Path, build_dir: &Path) -> Result<(), String> {
    for registry in private_registry_sources(home)? {
        for name in PUBLISH_ORDER {
            let unpacked = registry.join(format!("{name}-{version}"));
            if unpacked.symlink_metadata().is_ok() {
                std::fs::remove_dir_all(&unpacked).map_err(|e| format!("remove {}: {e}", unpacked.display()))?;
                println!("forgot {} (made by an earlier dry run)", unpacked.display());
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

/// The registry source directories of the dry run's Cargo home that are
/// its own (real directories, not links into the user's Cargo home): the
/// scratch registry's unpacked packages.
fn private_registry_sources(home: &Path) -> Result<Vec<PathBuf>, String> {
    let src = home.join("registry").join("src");
    let entries = match std::fs::read_dir(&src) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("read {}: {e}", src.display())),
    };
    Ok(entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink()))
        .map(|e| e.path())
        .collect())
}

/// The Cargo home the dry run runs with: `<build_dir>/cargo-home`, which
/// this build directory's runs alone use, and which shares everything but
/// the unpacked packages of local registries with the user's Cargo home.
///
/// Why a home of its own: the scratch registry's packages are unpacked
/// into `<home>/registry/src/-<hash>/`, a hash Cargo derives from the
/// scratch registry's path in a way it does not document. In the user's
/// home, those directories of every checkout sit side
/// by side, and none says which build directory it belongs to; here, every
/// such directory is this build directory's.
///
/// What is shared, as symbolic links into the user's home (made or
/// refreshed on every run): `config.toml` and `config` (if present), the
/// registry indexes (`registry/index`), the downloaded `.crate` files
/// (`registry/cache`), the unpacked packages of network registries
/// (`registry/src/<host>-<hash>`, crates.io's among them), git checkouts
/// (`git`), and the lock files `.package-cache` and
/// `.package-cache-mutate`, so this Cargo and any other using the user's
/// home take the same locks before they download or unpack into the
/// shared directories. Not shared: `.global-cache`, Cargo's record of
/// what was used when; its automatic cleaning is turned off for the dry
/// run (`CARGO_CACHE_AUTO_CLEAN_FREQUENCY=never`, in [`with_home`]),
/// since from a partial record it would delete shared files that other
/// builds still use.
fn dry_run_home(build_dir: &Path) -> Result<PathBuf, String> {
    let user = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set: cannot find the Cargo home")?;
    make_home(&user, &build_dir.join("cargo-home"))
}

/// Makes or refreshes `home`, sharing with the Cargo home `user` what
/// [`dry_run_home`] says.
fn make_home(user: &Path, home: &Path) -> Result<PathBuf, String> {
    let registry = home.join("registry");
    let src = registry.join("src");
    mkdir(&src)?;
    for dir in ["registry/index", "registry/cache", "registry/src", "git"] {
        mkdir(&user.join(dir))?;
    }
    for file in [".package-cache", ".package-cache-mutate"] {
        let path = user.join(file);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("create {}: {e}", path.display()))?;
    }
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for name in ["config.toml", "config"] {
        if user.join(name).is_file() {
            links.push((home.join(name), user.join(name)));
        }
    }
    for name in [".package-cache", ".package-cache-mutate", "git"] {
        links.push((home.join(name), user.join(name)));
    }
    for name in ["index", "cache"] {
        links.push((registry.join(name), user.join("registry").join(name)));
    }
    let user_src = user.join("registry").join("src");
    for entry in std::fs::read_dir(&user_src).map_err(|e| format!("read {}: {e}", user_src.display()))?.flatten() {
        let name = entry.file_name();
        // A network registry's directory is `<host>-<hash>`; local ones,
        // the scratch registries among them, have no host: `-<hash>`.
        if !name.to_string_lossy().starts_with('-') {
            links.push((src.join(&name), entry.path()));
        }
    }
    for (link, target) in &links {
        ensure_link(link, target)?;
    }
    // Links to directories the user's home no longer has.
    for entry in std::fs::read_dir(&src).map_err(|e| format!("read {}: {e}", src.display()))?.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_symlink()) && !path.exists() {
            std::fs::remove_file(&path).map_err(|e| format!("remove {}: {e}", path.display()))?;
        }
    }
    Ok(home.to_path_buf())
}

/// Makes `link` a symbolic link to `target`, unless it already is one, or
/// is a file or directory of its own (left as it is: Cargo made it there
/// because the user's home had nothing to share yet).
fn ensure_link(link: &Path, target: &Path) -> Result<(), String> {
    match link.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => {
            if std::fs::read_link(link).is_ok_and(|t| t == target) {
                return Ok(());
            }
            std::fs::remove_file(link).map_err(|e| format!("remove {}: {e}", link.display()))?;
        }
        Ok(_) => return Ok(()),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| format!("link {} to {}: {e}", link.display(), target.display()))
}

/// `cmd` with the dry run's Cargo home (see [`dry_run_home`]).
fn with_home<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    cmd.env("CARGO_HOME", home).env("CARGO_CACHE_AUTO_CLEAN_FREQUENCY", "never")
}

/// Fails unless the dry run unpacked the scratch registry's packages into
/// `home`, where [`forget_earlier_packages`] looks for them: verifying
/// stackful-context needs stackful-context-sys from the scratch registry.
/// Should Cargo ever unpack them elsewhere, the next run would verify
/// against stale copies; this says so instead.
fn check_unpacked_in(version: &str, home: &Path) -> Result<(), String> {
    let first = format!("{}-{version}", PUBLISH_ORDER[0]);
    if private_registry_sources(home)?.iter().any(|r| r.join(&first).join("Cargo.toml").is_file()) {
        Ok(())
    } else {
        Err(format!(
            "the dry run did not unpack {first} from its scratch registry into {}/registry/src/: \
             where did it go? Until this is understood, a later dry run may verify against stale copies",
            home.display()
        ))
    }
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
    for stale in [packages.clone(), dir.join("src"), dir.join("c")] {
        if stale.exists() {
            std::fs::remove_dir_all(&stale).map_err(|e| format!("remove {}: {e}", stale.display()))?;
        }
    }
    let _ = std::fs::remove_file(dir.join("Cargo.lock"));
    mkdir(&packages)?;
    mkdir(&dir.join("src"))?;
    mkdir(&dir.join("c"))?;

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
    write(&dir.join("build.rs"), TEMPLATE_BUILD)?;
    for (name, text) in TEMPLATE_C {
        write(&dir.join("c").join(name), text)?;
    }
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
    fn only_the_dry_run_homes_own_unpacked_packages_are_forgotten() {
        let scratch = util::target_dir().join(format!("xtask-test-release-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let user = scratch.join("user-home");
        let crates_io = user.join("registry/src/index.crates.io-0123456789abcdef");
        // Another checkout's scratch registry, in the user's home.
        let other = user.join("registry/src/-fedcba9876543210");
        for dir in [crates_io.join("stackful-context-0.1.0"), other.join("stackful-context-0.1.0")] {
            mkdir(&dir).unwrap();
        }
        write(&user.join("config.toml"), "").unwrap();
        let build_dir = scratch.join("release-check");
        let home = make_home(&user, &build_dir.join("cargo-home")).unwrap();
        // Shared: the config, the locks, the network registry's sources;
        // not shared: the other checkout's scratch registry.
        for name in
            ["config.toml", ".package-cache", ".package-cache-mutate", "git", "registry/index", "registry/cache"]
        {
            assert_eq!(std::fs::read_link(home.join(name)).unwrap(), user.join(name), "{name}");
        }
        let src = home.join("registry/src");
        assert_eq!(std::fs::read_link(src.join("index.crates.io-0123456789abcdef")).unwrap(), crates_io);
        assert!(src.join("-fedcba9876543210").symlink_metadata().is_err());
        // What this build directory's dry run unpacked.
        let ours = src.join("-0011223344556677");
        for name in PUBLISH_ORDER {
            mkdir(&ours.join(format!("{name}-0.1.0"))).unwrap();
            write(&ours.join(format!("{name}-0.1.0")).join("Cargo.toml"), "").unwrap();
        }
        assert!(check_unpacked_in("0.1.0", &home).is_ok());
        // A second run: links kept, our copies forgotten, nobody else's.
        let again = make_home(&user, &build_dir.join("cargo-home")).unwrap();
        forget_earlier_packages("0.1.0", &again, &build_dir).unwrap();
        for name in PUBLISH_ORDER {
            assert!(!ours.join(format!("{name}-0.1.0")).exists(), "{name}");
        }
        assert!(ours.is_dir());
        assert!(crates_io.join("stackful-context-0.1.0").is_dir());
        assert!(other.join("stackful-context-0.1.0").is_dir());
        assert!(check_unpacked_in("0.1.0", &home).is_err());
        std::fs::remove_dir_all(&scratch).unwrap();
    }

    #[test]
    fn the_downstream_build_script_compiles_every_c_file_with_cc() {
        for (name, _) in TEMPLATE_C {
            assert!(TEMPLATE_BUILD.contains(&format!("\"c/{name}\"")), "build.rs does not compile c/{name}");
        }
        assert!(TEMPLATE_MANIFEST.contains("[build-dependencies]\ncc = "), "{TEMPLATE_MANIFEST}");
        for var in [
            "DEP_STACKFUL_INSTANCE_INCLUDE",
            "DEP_STACKFUL_INSTANCE_CONTEXT_SYS_INCLUDE",
            "DEP_STACKFUL_CONTEXT_CONTEXT_SYS_INCLUDE",
        ] {
            assert!(TEMPLATE_BUILD.contains(var), "build.rs does not read {var}");
        }
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
