//! `actions`: the action layer, which turns a REST call (a user's, or an
//! extension's `cluster.call`) into the action and indices the gates judge.
//!
//! Properties of every accepted call: every index it names — a bulk
//! item's, an `_mget` document's, an `_msearch` search's — is in
//! `indices`, the set the system-index gate and the privilege gates see
//! (so a `.warden*` or `.ext-*` name is never named past them); every
//! name is a fixed point of percent-decoding (a second decoder downstream
//! reads what was judged) and passes the name rules (a pattern once its
//! wildcards are letters); a single-index operation names exactly one
//! concrete index. The method's case and the query string change nothing,
//! and the query string's options parse or are refused without a panic.

use crate::cluster::Params;
use crate::cluster::actions::{ActionRequest, Op, percent_decode, resolve, validate_index_name};

/// The input is text: `<METHOD> <path>`, then, after a newline, the body
/// (none without one).
pub fn check_actions(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (line, body) = match text.split_once('\n') {
        Some((line, body)) => (line, Some(body.as_bytes())),
        None => (text, None),
    };
    let (method, path) = line.split_once(' ').unwrap_or((line, "/"));
    check_call(method, path, body);
}

/// The properties of one call; shared with `bulk`.
pub(super) fn check_call(method: &str, path: &str, body: Option<&[u8]>) -> Option<ActionRequest> {
    let _ = Params::parse(path);
    let answer = resolve(method, path, body);
    let lower = resolve(&method.to_ascii_lowercase(), path, body);
    assert_eq!(answer, lower, "the method's case changed the answer");
    if !path.contains('?') {
        assert_eq!(resolve(method, &format!("{path}?x=%2F&y"), body), answer, "a query string changed it");
    }
    let request = answer.ok()?;
    let gated: std::collections::HashSet<&str> = request.indices.iter().map(String::as_str).collect();
    let mut named: Vec<&str> = request.items.iter().map(|i| i.index.as_str()).collect();
    match &request.op {
        Op::Mget { docs } => named.extend(docs.iter().map(|d| d.index.as_str())),
        Op::Msearch { searches } => {
            named.extend(searches.iter().flat_map(|s| s.indices.iter().map(String::as_str)))
        }
        _ => {}
    }
    for part in request.parts() {
        for index in &part.indices {
            assert!(gated.contains(index.as_str()), "part names `{index}`, which the gates do not see");
        }
    }
    for index in &named {
        assert!(gated.contains(index), "`{index}` is named but not among the indices the gates see");
    }
    for index in request.indices.iter().map(String::as_str).chain(named) {
        assert_eq!(percent_decode(index), index, "`{index}` changes when decoded again");
        let as_name: String = index.chars().map(|c| if c == '*' || c == '?' { 'x' } else { c }).collect();
        if let Err(e) = validate_index_name(&as_name) {
            panic!("`{index}` passed, but breaks the name rules: {e}");
        }
    }
    for item in &request.items {
        assert!(!item.index.contains(['*', '?']), "a bulk item names a pattern: `{}`", item.index);
    }
    if request.op.single_index() {
        assert!(
            matches!(request.indices.as_slice(), [one] if !one.contains(['*', '?'])),
            "a single-index operation on {:?}",
            request.indices
        );
    }
    if request.op.writes() && request.op != Op::Bulk {
        assert!(!request.indices.is_empty(), "a write naming no index");
    }
    Some(request)
}
