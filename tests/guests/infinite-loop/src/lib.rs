//! Hostile test guest: its handler spins forever. The host must stop it at
//! its CPU deadline and keep serving.

use warden_guest::http::{Request, Response};
use warden_guest::{Extension, export_extension};

struct Spin;

impl Extension for Spin {
    fn handle(request: Request) -> Response {
        let mut n: u64 = request.body.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

export_extension!(Spin);
