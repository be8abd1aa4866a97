//! Compiles every guest crate for `wasm32-wasip2`, which makes components
//! directly, then writes `guests.rs` with one path constant per guest and
//! one `foreach_<bucket>!` macro per bucket of guests:
//!
//! | bucket | where | package | macro |
//! |---|---|---|---|
//! | hostile | `tests/guests/<name>` | `guest-<name>` | `foreach_hostile!` |
//! | example | `examples/<name>` | `<name>` | `foreach_example!` |
//!
//! A guest that fits no bucket stops the build with a message naming it and
//! saying where it belongs, as wasmtime's
//! crates/test-programs/artifacts/build.rs does for a test program of no
//! known kind: a guest outside the macros would have no test, and the
//! e2e suite's "every guest has a test" check would not see it.
//!
//! The guests are built by a nested `cargo` into a target directory of their
//! own (`target/guests`): sharing the outer one would deadlock on its lock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const TARGET: &str = "wasm32-wasip2";

/// What a guest is for; each bucket gets its own `foreach_*!` macro.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bucket {
    /// Hostile and probing test guests (loops, bombs, traps, host-call probes).
    Hostile,
    /// The example extensions users start from.
    Example,
}

impl Bucket {
    const ALL: [Bucket; 2] = [Bucket::Hostile, Bucket::Example];

    /// The workspace directory holding this bucket's guests, one crate each.
    fn dir(self) -> &'static str {
        match self {
            Bucket::Hostile => "tests/guests",
            Bucket::Example => "examples",
        }
    }

    fn macro_name(self) -> &'static str {
        match self {
            Bucket::Hostile => "foreach_hostile",
            Bucket::Example => "foreach_example",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Bucket::Hostile => "hostile or probing test guest",
            Bucket::Example => "example extension",
        }
    }

    /// The package name a guest in `<dir>/<name>` must have: hostile guests
    /// carry the `guest-` prefix (so their constants read `GUEST_*`),
    /// examples never do.
    fn package_for(self, name: &str) -> Option<String> {
        match self {
            Bucket::Hostile => Some(format!("guest-{name}")),
            Bucket::Example if name.starts_with("guest-") => None,
            Bucket::Example => Some(name.to_owned()),
        }
    }
}

/// Where a guest belongs, said once for every refusal.
const WHERE_GUESTS_GO: &str = "a hostile or probing test guest goes in tests/guests/<name> as package \
     `guest-<name>`, an example extension in examples/<name> as package `<name>` (not `guest-*`); \
     then give it a #[test] named after it (lower case, `-` as `_`) in tests/e2e/serve.rs";

struct Guest {
    /// Cargo package name, e.g. `guest-trap`.
    package: String,
    dir: PathBuf,
    bucket: Bucket,
}

fn main() {
    if let Err(message) = run() {
        // A build script reports failure by panicking; say what to do.
        panic!("building the wasm guests failed: {message}");
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("tests/artifacts is not inside the workspace")?
        .to_path_buf();
    for dir in ["Cargo.toml", "wit", "guest-sdk/src", "guest-sdk/Cargo.toml", "examples", "tests/guests"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let guests = discover(&root)?;
    refuse_unbucketed_members(&root)?;

    check_target_installed()?;

    let target_dir = root.join("target").join("guests");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for guest in &guests {
        command.args(["-p", &guest.package]);
    }
    // Settings meant for the outer (native) build must not leak into this one.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo build --target {TARGET}` for the guests exited with {status}"));
    }

    let mut generated = String::new();
    for guest in &guests {
        let file =
            target_dir.join(TARGET).join("release").join(format!("{}.wasm", guest.package.replace('-', "_")));
        let header = fs::read(&file).map_err(|e| {
            format!("guest {} built but {} is unreadable: {e}", guest.package, file.display())
        })?;
        // A component's preamble is `\0asm` + version 0x0d + layer 1.
        if header.get(..8) != Some(b"\0asm\x0d\x00\x01\x00".as_slice()) {
            return Err(format!("{} is not a component", file.display()));
        }
        println!("cargo:rerun-if-changed={}", file.display());
        generated.push_str(&format!(
            "/// The `{}` component ({}), built from `{}`.\npub const {}: &str = {:?};\n",
            guest.package,
            guest.bucket.what(),
            guest.dir.strip_prefix(&root).unwrap_or(&guest.dir).display(),
            constant(&guest.package),
            file.display().to_string(),
        ));
    }
    for bucket in Bucket::ALL {
        let calls: String = guests
            .iter()
            .filter(|guest| guest.bucket == bucket)
            .map(|guest| format!("        $mac!({});\n", constant(&guest.package).to_lowercase()))
            .collect();
        generated.push_str(&format!(
            "\n/// Calls `$mac!(name)` once per {} in `{}/` (lower-case constant names).\n\
             #[macro_export]\nmacro_rules! {} {{\n    ($mac:ident) => {{\n{calls}    }};\n}}\n",
            bucket.what(),
            bucket.dir(),
            bucket.macro_name(),
        ));
    }
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?).join("guests.rs");
    fs::write(&out, generated).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(())
}

/// `guest-trap` → `GUEST_TRAP`.
fn constant(package: &str) -> String {
    package.to_uppercase().replace('-', "_")
}

/// Every guest crate: each directory of a bucket's directory holding a
/// Cargo.toml, bucketed by where it is; one whose package name breaks its
/// bucket's rule is refused.
fn discover(root: &Path) -> Result<Vec<Guest>, String> {
    let mut guests = Vec::new();
    for bucket in Bucket::ALL {
        let parent = bucket.dir();
        let entries = fs::read_dir(root.join(parent)).map_err(|e| format!("cannot list {parent}: {e}"))?;
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for dir in dirs {
            let Some(package) = package_name(&dir)? else { continue };
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if bucket.package_for(&name).as_deref() != Some(package.as_str()) {
                return Err(format!(
                    "cannot bucket the guest `{package}` in {parent}/{name}: as a {} it would be package `{}`. \
                     Rename or move it: {WHERE_GUESTS_GO}",
                    bucket.what(),
                    bucket
                        .package_for(&name)
                        .unwrap_or_else(|| "(none: examples are not named guest-*)".to_owned()),
                ));
            }
            guests.push(Guest { package, dir, bucket });
        }
    }
    Ok(guests)
}

/// The package name in `dir/Cargo.toml`; `None` when there is no Cargo.toml.
fn package_name(dir: &Path) -> Result<Option<String>, String> {
    let manifest = dir.join("Cargo.toml");
    let text = match fs::read_to_string(&manifest) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", manifest.display())),
    };
    text.lines()
        .find_map(|line| line.trim().strip_prefix("name = "))
        .map(|name| Some(name.trim_matches('"').to_owned()))
        .ok_or_else(|| format!("{} has no package name", manifest.display()))
}

/// A wasm guest (a `cdylib` member of the workspace) outside every
/// bucket's directory would never be built or tested here: refused.
fn refuse_unbucketed_members(root: &Path) -> Result<(), String> {
    let manifest = root.join("Cargo.toml");
    let text =
        fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    for member in workspace_members(&text).ok_or("the workspace Cargo.toml has no `members = [...]` list")? {
        let dirs = match member.strip_suffix("/*") {
            Some(parent) => {
                let entries =
                    fs::read_dir(root.join(parent)).map_err(|e| format!("cannot list {parent}: {e}"))?;
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect()
            }
            None => vec![root.join(&member)],
        };
        for dir in dirs {
            let in_a_bucket = Bucket::ALL.iter().any(|bucket| dir.parent() == Some(&root.join(bucket.dir())));
            let cargo_toml = fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
            if !in_a_bucket && cargo_toml.contains("cdylib") {
                let package = package_name(&dir)?.unwrap_or_default();
                return Err(format!(
                    "cannot bucket the guest `{package}` in {}: a wasm guest crate outside examples/ and \
                     tests/guests/. Move it: {WHERE_GUESTS_GO}",
                    dir.strip_prefix(root).unwrap_or(&dir).display(),
                ));
            }
        }
    }
    Ok(())
}

/// The strings of the workspace's `members = [...]` array (one per line or
/// all on one).
fn workspace_members(cargo_toml: &str) -> Option<Vec<String>> {
    // Comments out, so that neither a `members` nor a `]` in one counts.
    let text: String = cargo_toml
        .lines()
        .map(|line| line.split_once('#').map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let at = text.lines().position(|line| line.trim_start().starts_with("members"))?;
    let after: String = text.lines().skip(at).collect::<Vec<_>>().join("\n");
    let list = after.split_once('[')?.1.split_once(']')?.0;
    Some(
        list.split(',')
            .map(|item| item.trim().trim_matches('"').to_owned())
            .filter(|item| !item.is_empty())
            .collect(),
    )
}

/// The guests need rustup's `wasm32-wasip2` standard library.
fn check_target_installed() -> Result<(), String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() || !libdir.is_dir() {
        return Err(format!(
            "the {TARGET} target is not installed; run scripts/setup.sh (it runs `rustup target add {TARGET}`)"
        ));
    }
    Ok(())
}
