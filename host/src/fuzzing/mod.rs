//! Property checks for fuzzing: one `check_<target>(data: &[u8])` per
//! parser of untrusted input, which panics when a property fails. They are
//! plain functions so that two engines drive the same code: libFuzzer
//! (`fuzz/`, cargo-fuzz on nightly, `scripts/fuzz.sh`) searches the input
//! space, and the lib test [`replay`] runs every committed corpus and
//! regression input through them on stable, so a crash once found stays
//! fixed.
//!
//! Compiled for the lib tests and behind the `fuzzing` feature (which the
//! fuzz crate enables), never into the server: the checks build fixed keys,
//! scratch stores and panicking assertions that have no place there.
//!
//! | target | what it parses | properties beyond "no panic" |
//! |---|---|---|
//! | `tokens` | OBO tokens, external JWTs, `ApiKey` and `Basic` headers | a minted or signed token's claims round-trip; a token altered anywhere never verifies |
//! | `manifest` | `extension.toml` | what parses re-serialises and reparses equal; it grants nothing it does not declare |
//! | `component` | component bytes + granted capabilities | nothing loads that imports outside the known, granted set; classification is stable |
//! | `actions` | method, path, body → action and indices | every index a request names is in the set the gates see; decoding twice changes nothing |
//! | `query` | the query DSL and aggregations | a valid query never panics; the postings never miss a match; aggregations over projections equal those over sources |
//! | `dates` | dates and date math | parsing never panics; `now` math is monotone in `now`; rounding down never passes rounding up |
//! | `schedule` | cron expressions and schedules | the next run is strictly after now; a schedule's JSON reparses equal |
//! | `security_config` | OpenSearch security YAML | what passes validation exports and reimports equal |
//! | `bulk` | `_bulk` NDJSON | the item count is the action lines'; an accepted bulk writes no system index |

use std::path::PathBuf;

mod actions;
mod bulk;
mod component;
mod dates;
mod manifest;
mod query;
mod schedule;
mod security_config;
mod tokens;

pub use self::actions::check_actions;
pub use self::bulk::check_bulk;
pub use self::component::check_component;
pub use self::dates::check_dates;
pub use self::manifest::check_manifest;
pub use self::query::check_query;
pub use self::schedule::check_schedule;
pub use self::security_config::check_security_config;
pub use self::tokens::check_tokens;

/// A property check: panics when a property fails.
pub type Check = fn(&[u8]);

/// Every target, by the name its corpus directory and fuzz target carry.
pub const TARGETS: &[(&str, Check)] = &[
    ("tokens", check_tokens),
    ("manifest", check_manifest),
    ("component", check_component),
    ("actions", check_actions),
    ("query", check_query),
    ("dates", check_dates),
    ("schedule", check_schedule),
    ("security_config", check_security_config),
    ("bulk", check_bulk),
];

/// A private scratch directory for this process: under
/// `$WARDEN_FUZZ_SCRATCH` (scripts/fuzz.sh sets it, and removes it after
/// each run), else on tmpfs when there is one (the stores some checks
/// write fsync on every write).
fn scratch_dir(name: &str) -> PathBuf {
    let base = if let Some(dir) = std::env::var_os("WARDEN_FUZZ_SCRATCH") {
        PathBuf::from(dir)
    } else if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("warden-fuzz-{}-{name}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create the scratch directory {}: {e}", dir.display());
    }
    dir
}

/// Removes this process's scratch directories (the replay's, once done;
/// a fuzzing process leaves its own until it exits, like libFuzzer's).
#[cfg(test)]
fn remove_scratch() {
    let prefix = format!("warden-fuzz-{}-", std::process::id());
    for base in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
        let Ok(entries) = std::fs::read_dir(&base) else { continue };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod replay;
