//! The host-calls guest's `/call` route (one raw cluster call, as the user
//! or as the extension's service account) and what its answers must say.

use serde_json::{Value, json};

/// A cluster call made as the calling user.
pub fn as_user(method: &str, path: &str, body: Value) -> Value {
    json!({"method": method, "path": path, "body": body, "identity": "user"})
}

/// A cluster call made as the extension's service account.
pub fn as_service(method: &str, path: &str, body: Value) -> Value {
    json!({"method": method, "path": path, "body": body, "identity": "service"})
}

/// The call went through and the cluster answered `status`.
#[track_caller]
pub fn ok(outcome: &Value, status: u64) {
    assert_eq!(outcome["outcome"], "ok", "{outcome}");
    assert_eq!(outcome["status"], status, "{outcome}");
}

/// The call was refused by `gate`, with a reason that mentions `mentions`.
#[track_caller]
pub fn denied(outcome: &Value, gate: &str, mentions: &str) {
    assert_eq!(outcome["kind"], "denied", "{outcome}");
    let message = outcome["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("{gate} gate:")), "{gate}: {message}");
    assert!(message.contains(mentions), "{mentions}: {message}");
}
