//! Paths of every guest component in this repository, built from source by
//! `build.rs`, in two buckets: the hostile and probing test guests of
//! `tests/guests/` and the example extensions of `examples/`.
//!
//! Each guest gets a constant holding the absolute path of its `.wasm`
//! component, named after its crate (`HELLO_WORLD`, `GUEST_TRAP`, ...), and
//! each bucket a macro that calls a macro once per guest in it
//! ([`foreach_hostile!`], [`foreach_example!`]) so a test suite can demand a
//! test for every guest, the way wasmtime's test-programs do. `build.rs`
//! refuses a guest that fits neither bucket.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
