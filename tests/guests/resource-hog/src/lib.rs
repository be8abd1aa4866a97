//! Hostile test guest for host memory outside the memory cap: each route
//! makes the host allocate on the guest's behalf and never gives it back
//! within the invocation.
//!
//! - `GET /handles?count=n&kind=pollable|duration|instant` keeps `n` WASI
//!   resource handles alive (pollables from `monotonic-clock`), answering
//!   `{"held": n}` if the host let it;
//! - `GET /log?count=n&size=bytes&level=warn` writes `n` log records of
//!   `size` bytes each through `warden:extension/log`, answering
//!   `{"written": n}`.

use warden_guest::http::{Request, Response};
use warden_guest::{Extension, export_extension};
use wasip2::clocks::monotonic_clock;

struct ResourceHog;

fn handles(kind: &str, count: u64) -> Response {
    let mut held = Vec::new();
    for _ in 0..count {
        // Each call is one resource constructor: a host table entry plus a
        // component handle, alive until `held` is dropped.
        let pollable = match kind {
            "instant" => monotonic_clock::subscribe_instant(monotonic_clock::now() + 3_600_000_000_000),
            _ => monotonic_clock::subscribe_duration(3_600_000_000_000),
        };
        held.push(pollable);
    }
    Response::json(200, &serde_json::json!({ "held": held.len() }))
}

fn log_flood(level: &str, count: u64, size: usize) -> Response {
    let message = "x".repeat(size);
    for _ in 0..count {
        match level {
            "error" => warden_guest::log::error(&message),
            "info" => warden_guest::log::info(&message),
            _ => warden_guest::log::warn(&message),
        }
    }
    Response::json(200, &serde_json::json!({ "written": count }))
}

impl Extension for ResourceHog {
    fn handle(request: Request) -> Response {
        let number = |name: &str| request.query(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let kind = request.query("kind").unwrap_or("duration").to_owned();
        match request.path_segments().as_slice() {
            ["handles"] => handles(&kind, number("count")),
            ["log"] => log_flood(
                request.query("level").unwrap_or("warn"),
                number("count"),
                usize::try_from(number("size")).unwrap_or(0),
            ),
            _ => Response::not_found(),
        }
    }
}

export_extension!(ResourceHog);
