//! Paths of every guest component in this repository, built from source by
//! `build.rs` (examples and hostile test guests alike).
//!
//! Each guest gets a constant holding the absolute path of its `.wasm`
//! component, named after its crate (`HELLO_WORLD`, `GUEST_TRAP`, ...), and
//! [`foreach_guest!`] calls a macro once per guest so a test suite can
//! demand a test for every guest, the way wasmtime's test-programs do.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
