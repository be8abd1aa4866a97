//! Hostile test guest for the `files` capability: each route tries one
//! filesystem operation under `/data` and reports the outcome as JSON
//! (`{"outcome": "ok"|"error", "error": <io error>, ...}`), so tests see
//! exactly what the host allowed: links planted, quota filled, reads.

use std::io::{Seek, SeekFrom, Write};

use warden_guest::http::{Request, Response};
use warden_guest::{Extension, export_extension};

struct FilesProbe;

fn ok(extra: serde_json::Value) -> Response {
    let mut body = serde_json::json!({ "outcome": "ok" });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    Response::json(200, &body)
}

fn failed(error: &std::io::Error, extra: serde_json::Value) -> Response {
    let mut body = serde_json::json!({
        "outcome": "error",
        "error": error.to_string(),
        "errno": error.raw_os_error(),
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    Response::json(200, &body)
}

fn report<T: std::fmt::Debug>(result: std::io::Result<T>) -> Response {
    match result {
        Ok(value) => ok(serde_json::json!({ "value": format!("{value:?}") })),
        Err(e) => failed(&e, serde_json::json!({})),
    }
}

fn path(name: &str) -> String {
    format!("/data/{name}")
}

// The only way to reach symlinkat from a stable Rust guest on WASI; a test
// guest that must try what a hostile one would.
#[allow(unsafe_code)]
unsafe extern "C" {
    /// wasi-libc's `symlink(2)`: std has no stable way to make one on WASI.
    fn symlink(target: *const std::ffi::c_char, linkpath: *const std::ffi::c_char) -> std::ffi::c_int;
    /// wasi-libc's `pwrite(2)`: a positioned write without moving the
    /// cursor (std's `FileExt::write_at` is unstable on WASI).
    fn pwrite(fd: std::ffi::c_int, buf: *const std::ffi::c_void, count: usize, offset: i64) -> isize;
}

/// Writes `bytes` at `offset` of `/data/<name>` with `pwrite(2)`.
#[allow(unsafe_code)]
fn write_at(name: &str, bytes: &[u8], offset: u64) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path(name))?;
    let offset = i64::try_from(offset).map_err(std::io::Error::other)?;
    // SAFETY: `bytes` is valid for `bytes.len()` bytes; the fd is open for the call.
    let n = unsafe { pwrite(file.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), offset) };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

#[allow(unsafe_code)]
fn make_symlink(target: &str, link: &str) -> std::io::Result<()> {
    let target = std::ffi::CString::new(target).map_err(std::io::Error::other)?;
    let link = std::ffi::CString::new(path(link)).map_err(std::io::Error::other)?;
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    match unsafe { symlink(target.as_ptr(), link.as_ptr()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Writes `chunk`-byte pieces to `name` until `total` bytes or an error.
fn fill(name: &str, chunk: usize, total: u64) -> Response {
    let mut file = match std::fs::File::create(path(name)) {
        Ok(file) => file,
        Err(e) => return failed(&e, serde_json::json!({ "written": 0 })),
    };
    let piece = vec![0x5Au8; chunk.max(1)];
    let mut written = 0u64;
    while written < total {
        let n = piece.len().min(usize::try_from(total - written).unwrap_or(usize::MAX));
        if let Err(e) = file.write_all(&piece[..n]).and_then(|()| file.flush()) {
            return failed(&e, serde_json::json!({ "written": written }));
        }
        written += n as u64;
    }
    ok(serde_json::json!({ "written": written }))
}

impl Extension for FilesProbe {
    fn handle(request: Request) -> Response {
        let query = |name: &str| request.query(name).unwrap_or_default().to_owned();
        let number = |name: &str| request.query(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match request.path_segments().as_slice() {
            // ?target=..&link=.. : plant a symbolic link at /data/<link>.
            ["symlink"] => report(make_symlink(&query("target"), &query("link"))),
            ["hardlink"] => report(std::fs::hard_link(path(&query("from")), path(&query("to")))),
            ["read", name] => match std::fs::read(path(name)) {
                Ok(bytes) => ok(serde_json::json!({
                    "len": bytes.len(),
                    "text": String::from_utf8_lossy(&bytes[..bytes.len().min(256)]),
                })),
                Err(e) => failed(&e, serde_json::json!({})),
            },
            ["readlink", name] => report(std::fs::read_link(path(name))),
            // The body becomes the file.
            ["write", name] => report(std::fs::write(path(name), &request.body)),
            ["fill", name] => fill(name, number("chunk") as usize, number("bytes")),
            ["remove", name] => report(std::fs::remove_file(path(name))),
            // Grow a file without writing: set_len (sparse).
            ["extend", name] => report(
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(path(name))
                    .and_then(|f| f.set_len(number("size"))),
            ),
            // One byte at `offset` (a sparse file with one block used).
            ["poke", name] => report(
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(path(name))
                    .and_then(|mut f| {
                        f.seek(SeekFrom::Start(number("offset"))).and_then(|_| f.write_all(b"x"))
                    }),
            ),
            // One byte at `offset` with pwrite (the descriptor's positioned write).
            ["pwrite", name] => report(write_at(name, b"x", number("offset"))),
            // `count` empty files named <prefix>-<n>, until an error.
            ["touch", prefix] => {
                for n in 0..number("count") {
                    if let Err(e) = std::fs::File::create(path(&format!("{prefix}-{n}"))) {
                        return failed(&e, serde_json::json!({ "created": n }));
                    }
                }
                ok(serde_json::json!({ "created": number("count") }))
            }
            ["list"] => match std::fs::read_dir("/data") {
                Ok(entries) => {
                    let mut names: Vec<String> = entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    names.sort();
                    ok(serde_json::json!({ "names": names }))
                }
                Err(e) => failed(&e, serde_json::json!({})),
            },
            _ => Response::not_found(),
        }
    }
}

export_extension!(FilesProbe);
