//! The cluster's REST API on OpenSearch's paths, for users' own calls:
//! OpenSearch answers, the user's roles as the only gate, system indices
//! refused, optimistic concurrency; and persistent OBO revocation.

mod support;

use reqwest::Method;
use serde_json::json;
use support::{Deployment, TestResult};

#[test]
fn users_reach_the_embedded_cluster_with_their_own_roles() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let info = server.get("/")?;
    assert_eq!(info.status, 200, "{info:?}");
    assert_eq!(info.json()["cluster_name"], "warden");
    assert_eq!(server.request(Method::PUT, "/logs", "")?.status, 200);
    let created = server.send(Method::PUT, "/logs/_doc/1", &json!({"level": "warn", "n": 1}))?;
    assert_eq!(created.status, 201, "{created:?}");
    let (seq, term) = (created.json()["_seq_no"].clone(), created.json()["_primary_term"].clone());
    let cas = format!("/logs/_doc/1?if_seq_no={seq}&if_primary_term={term}");
    assert_eq!(server.send(Method::PUT, &cas, &json!({"level": "error", "n": 2}))?.status, 200);
    let conflict = server.send(Method::PUT, &cas, &json!({"level": "info"}))?;
    assert_eq!(conflict.status, 409, "{conflict:?}");
    let bulk = "{\"index\":{\"_index\":\"logs\",\"_id\":\"2\"}}\n{\"level\":\"warn\",\"n\":5}\n";
    let reply = server.request(Method::POST, "/_bulk", bulk)?;
    assert_eq!(reply.json()["errors"], false, "{reply:?}");
    let search =
        server.send(Method::POST, "/logs/_search", &json!({"query": {"term": {"level": "warn"}}}))?;
    assert_eq!(search.json()["hits"]["total"]["value"], 1, "{search:?}");
    assert_eq!(server.get("/_cluster/health")?.json()["status"], "green");

    // System indices stay hidden from admins too.
    let system = server.get("/.warden-security/_search")?;
    assert_eq!(system.status, 403, "{system:?}");
    assert!(server.get("/.warden-tokens/_doc/keys")?.status == 403);
    assert_eq!(server.get("/_nodes/stats")?.status, 404);

    // A reader: searches, cannot write; the answer names action and index.
    let reader = json!({"index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, "/_plugins/_security/api/roles/log_reader", &reader)?.status, 201);
    let user = json!({"password": "Reader-Pass-1", "opendistro_security_roles": ["log_reader"]});
    assert_eq!(server.send(Method::PUT, "/_plugins/_security/api/internalusers/rita", &user)?.status, 201);
    let found = server.get_as("rita", "Reader-Pass-1", "/logs/_search")?;
    assert_eq!(found.json()["hits"]["total"]["value"], 2, "{found:?}");
    let write = server.send_as("rita", "Reader-Pass-1", Method::PUT, "/logs/_doc/3", &json!({}))?;
    assert_eq!(write.status, 403, "{write:?}");
    assert!(write.reason().contains("`indices:data/write/index` on index `logs`"), "{write:?}");
    Ok(())
}

#[test]
fn revocations_are_admin_only_and_survive_restarts() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let reply = server.send(Method::POST, "/_warden/tokens/_revoke", &json!({"user": "mallory"}))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let bad =
        server.send(Method::POST, "/_warden/tokens/_revoke", &json!({"user": "a", "extension": "b"}))?;
    assert_eq!(bad.status, 400);
    let user = json!({"password": "Plain-User-Pass-1"});
    assert_eq!(server.send(Method::PUT, "/_plugins/_security/api/internalusers/plain", &user)?.status, 201);
    let denied = server.send_as(
        "plain",
        "Plain-User-Pass-1",
        Method::POST,
        "/_warden/tokens/_revoke",
        &json!({"user": "x"}),
    )?;
    assert_eq!(denied.status, 403);
    drop(server);
    let server = deployment.start()?;
    let list = server.get("/_warden/tokens/_revocations")?.json();
    assert!(list["users_before"]["mallory"].is_u64(), "{list}");
    Ok(())
}
