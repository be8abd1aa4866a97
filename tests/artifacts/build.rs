//! Compiles every guest crate (examples/* and tests/guests/*) for
//! `wasm32-wasip2`, which makes components directly, then writes
//! `guests.rs` with one path constant per guest and a `foreach_guest!` macro.
//!
//! The guests are built by a nested `cargo` into a target directory of their
//! own (`target/guests`): sharing the outer one would deadlock on its lock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const TARGET: &str = "wasm32-wasip2";

struct Guest {
    /// Cargo package name, e.g. `guest-trap`.
    package: String,
    dir: PathBuf,
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
    let guests = discover(&root)?;
    for dir in ["wit", "guest-sdk/src", "guest-sdk/Cargo.toml", "examples", "tests/guests"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }

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
    let mut names = Vec::new();
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
        let constant = guest.package.to_uppercase().replace('-', "_");
        generated.push_str(&format!(
            "/// The `{}` component, built from `{}`.\npub const {constant}: &str = {:?};\n",
            guest.package,
            guest.dir.strip_prefix(&root).unwrap_or(&guest.dir).display(),
            file.display().to_string(),
        ));
        names.push(constant.to_lowercase());
    }
    generated.push_str(&format!(
        "\n/// Calls `$mac!(name)` once per guest (lower-case constant names).\n\
         #[macro_export]\nmacro_rules! foreach_guest {{\n    ($mac:ident) => {{\n{}    }};\n}}\n",
        names.iter().map(|n| format!("        $mac!({n});\n")).collect::<String>()
    ));
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?).join("guests.rs");
    fs::write(&out, generated).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(())
}

/// Every guest crate: `examples/*` and `tests/guests/*` holding a Cargo.toml.
fn discover(root: &Path) -> Result<Vec<Guest>, String> {
    let mut guests = Vec::new();
    for parent in ["examples", "tests/guests"] {
        let entries = fs::read_dir(root.join(parent)).map_err(|e| format!("cannot list {parent}: {e}"))?;
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for dir in dirs {
            let manifest = dir.join("Cargo.toml");
            let Ok(text) = fs::read_to_string(&manifest) else { continue };
            let package = text
                .lines()
                .find_map(|line| line.trim().strip_prefix("name = "))
                .map(|name| name.trim_matches('"').to_owned())
                .ok_or_else(|| format!("{} has no package name", manifest.display()))?;
            guests.push(Guest { package, dir });
        }
    }
    Ok(guests)
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
