//! Hostile test guest: unbounded recursion. The host must catch the stack
//! overflow as a trap and keep serving.

use warden_guest::http::{Request, Response};
use warden_guest::{Extension, export_extension};

struct Deep;

// Recursion without a base case is the point of this guest.
#[allow(unconditional_recursion)]
#[inline(never)]
fn descend(depth: u64, frame: [u64; 16]) -> u64 {
    let mut next = frame;
    next[(depth % 16) as usize] = depth;
    std::hint::black_box(descend(depth + 1, std::hint::black_box(next))) + next[0]
}

impl Extension for Deep {
    fn handle(_request: Request) -> Response {
        let depth = descend(0, [0; 16]);
        Response::text(200, &depth.to_string())
    }
}

export_extension!(Deep);
