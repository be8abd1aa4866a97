//! Hostile test guest: allocates and touches memory without bound. The host
//! must stop it at its memory cap and keep serving.

use warden_guest::http::{Request, Response};
use warden_guest::{Extension, export_extension};

struct Bomb;

impl Extension for Bomb {
    fn handle(_request: Request) -> Response {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // 1 MiB at a time, written so the pages are really used.
            hoard.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export_extension!(Bomb);
