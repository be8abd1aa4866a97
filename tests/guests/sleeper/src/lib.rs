//! Test guest: sleeps (without spinning) for `?ms=` milliseconds, then
//! answers 200. Used to hold concurrency slots and to hit wall-clock limits.

use warden_guest::http::{Request, Response};
use warden_guest::{Extension, export_extension};

struct Sleeper;

impl Extension for Sleeper {
    fn handle(request: Request) -> Response {
        let ms = request.query("ms").and_then(|v| v.parse::<u64>().ok()).unwrap_or(100);
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Response::text(200, &format!("slept {ms} ms"))
    }
}

export_extension!(Sleeper);
