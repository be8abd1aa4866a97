//! Hostile test guest: panics, which in wasm is a trap. The host must answer
//! 500 with a message and keep serving.

use warden_guest::http::{Request, Response};
use warden_guest::{Extension, export_extension};

struct Trap;

impl Extension for Trap {
    fn handle(request: Request) -> Response {
        panic!("test guest panicked on purpose while handling {}", request.path);
    }
}

export_extension!(Trap);
