//! The `files` grant: a private directory per extension, preopened as `/data`
//! (`<data-dir>/files/<extension-id>`). Without the grant the filesystem
//! interfaces are linked (see [`super::wasi`]) but no directory is opened,
//! so every path lookup fails.

use std::path::{Path, PathBuf};

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Where the guest sees its directory.
pub const GUEST_PATH: &str = "/data";

/// The host directory backing an extension's `/data`.
pub fn host_dir(data_dir: &Path, extension_id: &str) -> PathBuf {
    data_dir.join("files").join(extension_id)
}

/// Creates the directory (at load, so a failure is a load error).
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Opens `dir` as `/data` for one invocation.
pub fn preopen(builder: &mut WasiCtxBuilder, dir: &Path) -> wasmtime::Result<()> {
    builder.preopened_dir(dir, GUEST_PATH, FsPerms::ReadWrite)?;
    Ok(())
}
