//! Test guest: a well-formed component with no Warden exports (no WIT world
//! at all). The host must refuse it at load, saying what it lacks.

/// Not reachable from outside: without a WIT world nothing is exported.
pub fn answer() -> u32 {
    42
}
