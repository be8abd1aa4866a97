//! `bulk`: a `_bulk` NDJSON body (the first byte picks the path: `/_bulk`
//! or `/<index>/_bulk`, some of them system indices, some encoded), parsed
//! by the action layer and run on the embedded backend as the gateway
//! would run it.
//!
//! Properties: nothing panics; an accepted body has exactly one item per
//! action line (each but `delete` followed by its source line), each
//! naming one valid concrete index the gates see (the `actions`
//! properties); a bulk the gateway lets through (no system index among
//! its items) creates no index other than its items' and writes no
//! system index.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::cluster::embedded::Embedded;
use crate::cluster::gateway::{EXTENSION_PREFIX, SYSTEM_PREFIX};
use crate::cluster::{Backend, Params};
use crate::store::Store;

const PATHS: [&str; 8] = [
    "/_bulk",
    "/logs/_bulk",
    "/.warden-security/_bulk",
    "/%2Ewarden-tokens/_bulk",
    "/.ext-hc/_bulk",
    "/Logs/_bulk",
    "/a%2Cb/_bulk",
    "/logs/_bulk?refresh=true",
];

/// Warden's own tables in the store: a bulk must never write them (the
/// index catalogue, `.warden-indices`, is the backend's to keep).
const SYSTEM_TABLES: [&str; 10] = [
    ".warden-security",
    ".warden-tokens",
    ".warden-api-tokens",
    ".warden-api-token-names",
    ".warden-consents",
    ".warden-extensions",
    ".warden-jobs",
    ".warden-job-runs",
    ".warden-ext-hc",
    ".ext-hc",
];

/// Runs on one store before it is replaced by a fresh one (the store only
/// grows).
const RUNS_PER_STORE: u32 = 500;

struct Scratch {
    store: Arc<Store>,
    embedded: Embedded,
    dir: PathBuf,
    runs: u32,
}

fn fresh(generation: u64) -> Scratch {
    let dir = super::scratch_dir(&format!("bulk-{generation}"));
    let store = match Store::open(&dir.join("warden.redb")) {
        Ok(store) => Arc::new(store),
        Err(e) => panic!("cannot open the scratch store: {e}"),
    };
    match Embedded::new(store.clone(), "fuzz") {
        Ok(embedded) => Scratch { store, embedded, dir, runs: 0 },
        Err(e) => panic!("cannot start the embedded backend: {e}"),
    }
}

fn backend() -> &'static Mutex<(u64, Scratch)> {
    static BACKEND: std::sync::OnceLock<Mutex<(u64, Scratch)>> = std::sync::OnceLock::new();
    BACKEND.get_or_init(|| Mutex::new((0, fresh(0))))
}

/// The items an NDJSON body holds, counted apart from the action layer:
/// every non-blank line is an action line, its source line follows unless
/// it is a `delete`. `None` if an action line is not a JSON object.
fn items_in(text: &str) -> Option<usize> {
    let mut lines =
        text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).filter(|l| !l.trim().is_empty());
    let mut count = 0;
    while let Some(line) = lines.next() {
        let action: Value = serde_json::from_str(line).ok()?;
        let (kind, _) = action.as_object()?.iter().next()?;
        if kind != "delete" {
            lines.next()?;
        }
        count += 1;
    }
    Some(count)
}

fn is_system(index: &str) -> bool {
    index.starts_with(SYSTEM_PREFIX) || index.starts_with(EXTENSION_PREFIX)
}

pub fn check_bulk(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else { return };
    let path = PATHS[usize::from(which) % PATHS.len()];
    let Some(request) = super::actions::check_call("POST", path, Some(body)) else { return };
    let text = std::str::from_utf8(body).unwrap_or_default();
    assert_eq!(Some(request.items.len()), items_in(text), "items of an accepted bulk");
    for item in &request.items {
        if let Some(range) = &item.source {
            let line = text.get(range.clone()).unwrap_or_default();
            assert!(!line.contains('\n'), "a source range spans lines: {range:?}");
        }
    }
    // The gateway refuses a bulk naming a system index; this one it lets through.
    if request.indices.iter().any(|i| is_system(i)) {
        return;
    }
    let Ok(mut guard) = backend().lock() else { panic!("a previous check panicked holding the store") };
    let (generation, b) = &mut *guard;
    if b.runs >= RUNS_PER_STORE {
        let old = std::mem::replace(b, fresh(*generation + 1));
        *generation += 1;
        drop(old.embedded);
        drop(old.store);
        let _ = std::fs::remove_dir_all(&old.dir);
    }
    b.runs += 1;
    let before = b.embedded.indices().unwrap_or_default();
    let params = Params::parse(path).unwrap_or_default();
    let reply = b.embedded.execute(&request, &request.indices, &params, Some(body));
    assert!(reply.status < 500, "bulk answered {}: {}", reply.status, reply.body);
    for index in b.embedded.indices().unwrap_or_default() {
        assert!(
            before.contains(&index) || request.items.iter().any(|i| i.index == index),
            "the bulk created `{index}`, which no item names"
        );
        assert!(!is_system(&index), "the bulk created the system index `{index}`");
    }
    for table in SYSTEM_TABLES {
        assert!(b.store.list(table).is_ok_and(|docs| docs.is_empty()), "the bulk wrote `{table}`");
    }
}
