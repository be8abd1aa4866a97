//! API tokens: created with their own permissions, shown once, sent as
//! `ApiKey`; limited by their creator's current roles; deleted or expired
//! tokens fail on the next request; writes are audited.

use reqwest::Method;
use serde_json::json;

use crate::support::{API, Deployment, TestResult};

#[test]
fn api_tokens_are_limited_by_their_creator() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    // Data, and a creator (eve) who can read and write `logs`.
    assert_eq!(server.send(Method::PUT, "/logs/_doc/1", &json!({"n": 1}))?.status, 201);
    let writer = json!({"index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["crud"]}]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/log_writer"), &writer)?.status, 201);
    assert_eq!(
        server
            .send(Method::PUT, &format!("{API}/internalusers/eve"), &json!({"password": "Eve-Password-1"}))?
            .status,
        201
    );
    assert_eq!(
        server
            .send(Method::PUT, &format!("{API}/rolesmapping/log_writer"), &json!({"users": ["eve"]}))?
            .status,
        201
    );
    let eve = |method, path: &str, body: &serde_json::Value| {
        server.send_as("eve", "Eve-Password-1", method, path, body)
    };

    // Expiry is required.
    assert_eq!(eve(Method::POST, &format!("{API}/apitokens"), &json!({"name": "forever"}))?.status, 400);
    // A read-only token.
    let spec = json!({"name": "reader", "duration_seconds": 3600,
        "index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    let created = eve(Method::POST, &format!("{API}/apitokens"), &spec)?;
    assert_eq!(created.status, 200, "{created:?}");
    let token = created.json()["token"].as_str().unwrap_or_default().to_owned();
    assert!(token.starts_with("wdn_"));
    let key = format!("ApiKey {token}");
    let with_key = |method: Method, path: &str, body: serde_json::Value| -> Result<u16, reqwest::Error> {
        Ok(reqwest::blocking::Client::new()
            .request(method, server.url(path))
            .header("authorization", &key)
            .json(&body)
            .send()?
            .status()
            .as_u16())
    };
    assert_eq!(with_key(Method::GET, "/logs/_doc/1", json!(null))?, 200);
    assert_eq!(with_key(Method::PUT, "/logs/_doc/2", json!({"n": 2}))?, 403, "the token is read-only");
    assert_eq!(server.get("/logs/_doc/2")?.status, 404, "the refused write wrote nothing");
    assert_eq!(with_key(Method::GET, "/other/_search", json!(null))?, 403);
    // Tokens cannot make tokens or reach the security API.
    assert_eq!(with_key(Method::POST, &format!("{API}/apitokens"), spec.clone())?, 403);
    assert_eq!(with_key(Method::GET, &format!("{API}/internalusers"), json!(null))?, 403);
    assert_eq!(
        with_key(Method::PUT, &format!("{API}/internalusers/mole"), json!({"password": "Mole-Password-1"}))?,
        403
    );
    assert_eq!(with_key(Method::PUT, &format!("{API}/roles/evil"), json!({}))?, 403);
    let change = json!({"current_password": "Eve-Password-1", "password": "Eve-Password-2"});
    assert_eq!(with_key(Method::PUT, &format!("{API}/account"), change)?, 403);
    assert_eq!(with_key(Method::POST, "/_warden/tokens/_revoke", json!({"user": "admin"}))?, 403);
    // Nothing of it happened: no user, no role, the password and the tokens unchanged.
    assert_eq!(server.get(&format!("{API}/internalusers/mole"))?.status, 404);
    assert_eq!(server.get(&format!("{API}/roles/evil"))?.status, 404);
    assert_eq!(server.get_as("eve", "Eve-Password-1", &format!("{API}/account"))?.status, 200);
    let revocations = server.get("/_warden/tokens/_revocations")?.json();
    assert!(revocations["users_before"].get("admin").is_none(), "{revocations}");
    // Only the hash is kept: the listing has no secret, and holds one token.
    let listed = eve(Method::GET, &format!("{API}/apitokens"), &json!(null))?;
    assert!(listed.body.contains("\"reader\"") && !listed.body.contains(&token), "{listed:?}");
    let names: Vec<String> = listed
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["reader"], "{listed:?}");
    let raw = std::fs::read(deployment.data_dir().join("store/warden.redb"))?;
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("reader"), "the scan reads the token records");
    assert!(!raw.contains(&token), "the secret is not stored");

    // The creator loses the role: so does the token, at once.
    assert_eq!(server.request(Method::DELETE, &format!("{API}/rolesmapping/log_writer"), "")?.status, 200);
    assert_eq!(with_key(Method::GET, "/logs/_doc/1", json!(null))?, 403);
    assert_eq!(
        server
            .send(Method::PUT, &format!("{API}/rolesmapping/log_writer"), &json!({"users": ["eve"]}))?
            .status,
        201
    );
    assert_eq!(with_key(Method::GET, "/logs/_doc/1", json!(null))?, 200);

    // Deleted: fails on the next request.
    assert_eq!(eve(Method::DELETE, &format!("{API}/apitokens/reader"), &json!(null))?.status, 200);
    assert_eq!(with_key(Method::GET, "/logs/_doc/1", json!(null))?, 401);

    // Expired: fails too.
    let short = json!({"name": "short", "duration_seconds": 1, "index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    let token = eve(Method::POST, &format!("{API}/apitokens"), &short)?.json()["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let short_key = format!("ApiKey {token}");
    assert_eq!(server.get_with_authorization("/logs/_doc/1", Some(&short_key))?.status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = server.get_with_authorization("/logs/_doc/1", Some(&short_key))?;
        if reply.status == 401 {
            break;
        }
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(std::time::Instant::now() < deadline, "the 1-s token still works after 10 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(server.wait_for_log("API token `short` has expired"), "{}", server.logs());

    let audit = server.get("/_warden/audit?category=API_TOKEN_WRITE")?.json();
    let writes: Vec<(String, String)> = audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (e["category"].as_str().unwrap_or("?").to_owned(), e["reason"].as_str().unwrap_or("?").to_owned())
        })
        .collect();
    assert_eq!(writes.len(), 3, "{audit}");
    assert!(writes.iter().all(|(category, _)| category == "API_TOKEN_WRITE"), "{writes:?}");
    for what in ["created API token reader", "deleted API token reader of eve", "created API token short"] {
        assert!(writes.iter().any(|(_, reason)| reason.contains(what)), "{what}: {writes:?}");
    }
    let bogus = server.get("/_warden/audit?category=BOGUS")?;
    assert_eq!(bogus.status, 400, "{bogus:?}");
    assert!(bogus.body.contains("unknown audit category `BOGUS`"), "{bogus:?}");
    // Refusals are audited with their reasons.
    let reasons = |category: &str| -> Result<String, Box<dyn std::error::Error>> {
        Ok(server.get(&format!("/_warden/audit?category={category}&size=1000"))?.body)
    };
    let refused = reasons("MISSING_PRIVILEGES")?;
    assert!(refused.contains("an API token cannot manage API tokens"), "{refused}");
    // The read-only token writing: its own gate said no.
    assert!(
        refused.contains("grants `indices:data/write/index` on index `logs` (user gate: allowed)"),
        "{refused}"
    );
    // The creator without the role: the user gate said no though the token allows it.
    assert!(
        refused.contains(
            "no role of `eve` grants `indices:data/read/get` on index `logs` (api-token gate: allowed)"
        ),
        "{refused}"
    );
    let failed = reasons("FAILED_LOGIN")?;
    assert!(failed.contains("API token `short` has expired"), "{failed}");
    assert!(failed.contains("unknown or deleted API token"), "{failed}");
    Ok(())
}
