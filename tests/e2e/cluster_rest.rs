//! The cluster's REST API on OpenSearch's paths, for users' own calls:
//! OpenSearch answers, the user's roles as the only gate, system indices
//! refused, optimistic concurrency; and persistent OBO revocation.

use reqwest::Method;
use serde_json::json;

use crate::support::{Deployment, MINT, Server, TestResult};

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
    assert_eq!(server.get("/logs/_doc/3")?.status, 404, "the refused write wrote nothing");
    Ok(())
}

/// An on-behalf-of token `user` mints for `service`.
fn mint(
    server: &Server,
    user: &str,
    password: &str,
    service: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let minted = server.send_as(user, password, Method::POST, MINT, &json!({"service": service}))?;
    assert_eq!(minted.status, 200, "{minted:?}");
    Ok(minted.json()["authenticationToken"].as_str().ok_or("no token")?.to_owned())
}

/// The token's (unencrypted) claims.
fn claims(token: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).ok_or("not a JWT")?;
    Ok(serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?)
}

fn status_with(server: &Server, token: &str) -> Result<u16, reqwest::Error> {
    Ok(server
        .get_with_authorization("/_plugins/_security/authinfo", Some(&format!("Bearer {token}")))?
        .status)
}

/// FAILED_LOGIN reasons in the audit log.
fn failed_logins(server: &Server) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let audit = server.get("/_warden/audit?category=FAILED_LOGIN&size=1000")?.json();
    Ok(audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect())
}

/// Revocations by user, by token id and by extension (audience) stop the
/// tokens at once, and still do after a restart; a token nobody revoked
/// keeps working across the same restart.
#[test]
fn revocations_are_admin_only_and_survive_restarts() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    for (name, password) in [("tess", "Tess-Password-1"), ("uma", "Uma-Password-12")] {
        let user = json!({"password": password});
        let path = format!("/_plugins/_security/api/internalusers/{name}");
        assert_eq!(server.send(Method::PUT, &path, &user)?.status, 201);
    }
    let by_user = mint(&server, "tess", "Tess-Password-1", "svc-a")?;
    let by_jti = mint(&server, "uma", "Uma-Password-12", "svc-b")?;
    let by_extension = mint(&server, "uma", "Uma-Password-12", "svc-c")?;
    let kept = mint(&server, "uma", "Uma-Password-12", "svc-d")?;
    for token in [&by_user, &by_jti, &by_extension, &kept] {
        assert_eq!(status_with(&server, token)?, 200);
    }
    let jti = claims(&by_jti)?;
    let revoke = |body: serde_json::Value| server.send(Method::POST, "/_warden/tokens/_revoke", &body);
    assert_eq!(revoke(json!({"user": "tess"}))?.status, 200);
    let reply = revoke(json!({"jti": jti["jti"], "expires_at": jti["exp"]}))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(revoke(json!({"extension": "svc-c"}))?.status, 200);
    for token in [&by_user, &by_jti, &by_extension] {
        assert_eq!(status_with(&server, token)?, 401);
    }
    assert_eq!(status_with(&server, &kept)?, 200, "only what was revoked");

    let bad = revoke(json!({"user": "a", "extension": "b"}))?;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("give exactly one of `jti`, `user`, `extension`"), "{bad:?}");
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
    let list = server.get("/_warden/tokens/_revocations")?.json();
    assert!(list["users_before"]["tess"].is_u64(), "{list}");
    assert!(list["users_before"].get("x").is_none(), "the refused revocation was not recorded: {list}");
    drop(server);

    let server = deployment.start()?;
    let before = failed_logins(&server)?.len();
    for token in [&by_user, &by_jti, &by_extension] {
        assert_eq!(status_with(&server, token)?, 401);
    }
    assert_eq!(status_with(&server, &kept)?, 200, "the keys survived the restart too");
    let reasons = failed_logins(&server)?;
    let after_restart = &reasons[..reasons.len() - before];
    for revoked in [
        "for user `tess` is revoked",
        &format!("token `{}` is revoked", jti["jti"].as_str().unwrap_or("?")),
        "for extension `svc-c` is revoked",
    ] {
        assert!(after_restart.iter().any(|r| r.contains(revoked)), "{revoked}: {after_restart:?}");
    }
    let list = server.get("/_warden/tokens/_revocations")?.json();
    assert!(list["users_before"].get("x").is_none(), "{list}");
    Ok(())
}
