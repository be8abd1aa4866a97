//! Test guest for per-request isolation (issue #18): `GET /state?look=L&mark=M`
//! first reports what this instance sees of earlier requests — a static
//! counter and string, a thread-local, the environment, the open file
//! descriptors, and whether linear memory holds the pattern mark `L`
//! planted — then plants mark `M` in every one of those places and reports
//! that it can see its own plant (so a clean report is not a blind probe).
//! A host that reused an instance, or reset its memory incompletely, would
//! show the earlier request's mark here.
//!
//! Also spends what the limits bound, on request: `/burn?ms=` spins the
//! CPU, `/alloc?mib=` allocates and touches memory, `/sleep?ms=` waits.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use warden_guest::http::{Request, Response};
use warden_guest::{Extension, export_extension};

struct IsolationProbe;

/// Incremented by every plant: a fresh instance sees 0.
static COUNTER: AtomicU64 = AtomicU64::new(0);
/// The last mark planted: a fresh instance sees "".
static LAST_MARK: Mutex<String> = Mutex::new(String::new());

thread_local! {
    static LOCAL_MARK: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The environment variable a plant sets.
const ENV_NAME: &str = "WARDEN_PROBE_MARK";
/// Words of the planted memory pattern (64 KiB).
const PATTERN_WORDS: usize = 8192;
/// Consecutive pattern words that count as a sighting (2 KiB): the probe's
/// own copy of the word (one) and the request text never match.
const RUN: usize = 256;

// wasi-libc's fcntl(2): the only way to ask "is this descriptor open?"
// from a stable Rust guest without taking ownership of it.
#[allow(unsafe_code)]
unsafe extern "C" {
    fn fcntl(fd: std::ffi::c_int, cmd: std::ffi::c_int, ...) -> std::ffi::c_int;
}
/// wasi-libc's `F_GETFL`: asks the host for the descriptor's flags, so it
/// fails for a descriptor that is not open (`F_GETFD` always succeeds).
const F_GETFL: std::ffi::c_int = 3;

/// The descriptors below 64 that are open now.
#[allow(unsafe_code)]
fn open_fds() -> Vec<i32> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor table.
    (0..64).filter(|&fd| unsafe { fcntl(fd, F_GETFL) } >= 0).collect()
}

/// The 64-bit word a mark is planted as: FNV-1a of its bytes, so the word
/// never appears as text in the request that names the mark.
fn word(mark: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in mark.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash | 1
}

/// The linear memory's size in 64 KiB pages. Zero when built for the host
/// (the workspace's clippy and tests build every member for it): there is
/// no linear memory to scan, and the guest is never run there.
fn memory_pages() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Where in linear memory a run of [`RUN`] words equal to `word` starts.
#[allow(unsafe_code)]
fn sightings(word: u64) -> Vec<usize> {
    let end = memory_pages() * 65536;
    let mut found = Vec::new();
    let mut run = 0;
    // From 8: address 0 is the null pointer.
    let mut address = 8;
    while address + 8 <= end {
        // SAFETY: every address below memory_size is in bounds of linear
        // memory; a volatile read of a plain word is defined there.
        let value = unsafe { core::ptr::read_volatile(address as *const u64) };
        if value == word {
            run += 1;
            if run == RUN {
                found.push(address - (RUN - 1) * 8);
            }
        } else {
            run = 0;
        }
        address += 8;
    }
    found
}

/// What this instance sees: statics, thread-local, environment, open
/// descriptors, and memory holding `look`'s pattern.
fn seen(look: Option<&str>) -> Value {
    json!({
        "counter": COUNTER.load(Ordering::SeqCst),
        "last_mark": LAST_MARK.lock().map(|m| m.clone()).unwrap_or_else(|e| e.into_inner().clone()),
        "local_mark": LOCAL_MARK.with(|m| m.borrow().clone()),
        "env": std::env::vars().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "fds": open_fds(),
        "memory": look.map(|l| sightings(word(l))).unwrap_or_default(),
    })
}

/// Plants `mark` everywhere [`seen`] looks; the file descriptor only when
/// the extension has its files directory.
#[allow(unsafe_code)]
fn plant(mark: &str) -> Value {
    COUNTER.fetch_add(1, Ordering::SeqCst);
    match LAST_MARK.lock() {
        Ok(mut last) => *last = mark.to_owned(),
        Err(e) => *e.into_inner() = mark.to_owned(),
    }
    LOCAL_MARK.with(|m| *m.borrow_mut() = mark.to_owned());
    // SAFETY: the guest is single-threaded; nothing reads the environment
    // concurrently.
    unsafe { std::env::set_var(ENV_NAME, mark) };
    let pattern = vec![word(mark); PATTERN_WORDS].leak();
    let fd = std::fs::File::create("/data/isolation-probe").ok().map(|file| {
        use std::os::fd::IntoRawFd;
        // Left open on purpose: the next request must not see it.
        file.into_raw_fd()
    });
    json!({ "pattern_at": pattern.as_ptr() as usize, "fd": fd })
}

fn state(request: &Request) -> Response {
    let look = request.query("look");
    let before = seen(look);
    let mut body = json!({ "user": request.user, "seen": before });
    if let Some(mark) = request.query("mark") {
        let planted = plant(mark);
        body["planted"] = planted;
        body["after"] = seen(Some(mark));
    }
    Response::json(200, &body)
}

fn number(request: &Request, name: &str) -> u64 {
    request.query(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl Extension for IsolationProbe {
    fn handle(request: Request) -> Response {
        match request.path_segments().as_slice() {
            ["state"] => state(&request),
            ["burn"] => {
                let ms = number(&request, "ms");
                let started = std::time::Instant::now();
                let mut n: u64 = 1;
                while started.elapsed() < std::time::Duration::from_millis(ms) {
                    for _ in 0..10_000 {
                        n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                }
                Response::json(200, &json!({ "burned_ms": ms }))
            }
            ["alloc"] => {
                let mib = usize::try_from(number(&request, "mib")).unwrap_or(0);
                let mut hoard: Vec<Vec<u8>> = Vec::with_capacity(mib);
                for _ in 0..mib {
                    hoard.push(vec![0x5A; 1 << 20]);
                }
                std::hint::black_box(&hoard);
                let pages = memory_pages();
                Response::json(200, &json!({ "allocated_mib": mib, "memory_pages": pages }))
            }
            ["sleep"] => {
                let ms = number(&request, "ms");
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Response::json(200, &json!({ "slept_ms": ms }))
            }
            _ => Response::not_found(),
        }
    }
}

export_extension!(IsolationProbe);
