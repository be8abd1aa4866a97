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

/// The audit log tells a user's own actions from those of a token standing
/// in for them: an event of a request authenticated by an API token names
/// the token (its name and the start of its hash, never the secret) beside
/// its creator, one of an on-behalf-of token says so, one made with the
/// password names no token.
#[test]
fn the_audit_names_the_token_that_acted_beside_its_creator() -> TestResult {
    use sha2::Digest as _;
    let deployment = Deployment::new()?;
    let mut command = crate::support::warden();
    command.env("WARDEN_AUDIT_DISABLED_CATEGORIES", "");
    let server = crate::support::Server::start_command(
        command,
        &deployment.extensions_dir(),
        &deployment.data_dir(),
        &[],
    )?;
    assert_eq!(server.send(Method::PUT, "/logs/_doc/1", &json!({"n": 1}))?.status, 201);
    let reader = json!({"index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/log_reader"), &reader)?.status, 201);
    let eve = json!({"password": "Eve-Password-1"});
    assert_eq!(server.send(Method::PUT, &format!("{API}/internalusers/eve"), &eve)?.status, 201);
    let mapping = json!({"users": ["eve"]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/rolesmapping/log_reader"), &mapping)?.status, 201);
    let spec = json!({"name": "ci-reader", "duration_seconds": 3600,
        "index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    let created =
        server.send_as("eve", "Eve-Password-1", Method::POST, &format!("{API}/apitokens"), &spec)?;
    assert_eq!(created.status, 200, "{created:?}");
    let token = created.json()["token"].as_str().unwrap_or_default().to_owned();
    let id: String = hex::encode(sha2::Sha256::digest(token.as_bytes())).chars().take(16).collect();
    let key = format!("ApiKey {token}");

    // With the password: a read (granted) and a write (refused).
    assert_eq!(server.get_as("eve", "Eve-Password-1", "/logs/_doc/1")?.status, 200);
    let own = server.send_as("eve", "Eve-Password-1", Method::PUT, "/logs/_doc/own", &json!({}))?;
    assert_eq!(own.status, 403, "{own:?}");
    // With the token: the same, and a refused call of the security API.
    assert_eq!(server.get_with_authorization("/logs/_doc/1", Some(&key))?.status, 200);
    let by_token = server.send_with_authorization(Method::PUT, "/logs/_doc/tok", Some(&key), &json!({}))?;
    assert_eq!(by_token.status, 403, "{by_token:?}");
    let minting = json!({"service": "x", "durationSeconds": 60});
    let reply = server.send_with_authorization(Method::POST, crate::support::MINT, Some(&key), &minting)?;
    assert_eq!(reply.status, 403, "{reply:?}");

    let events = server.get("/_warden/audit?user=eve&size=1000")?;
    assert_eq!(events.status, 200, "{events:?}");
    assert!(
        !events.body.contains(&token) && !events.body.contains(&token[4..]),
        "the secret is never audited"
    );
    let events = events.json()["events"].as_array().cloned().unwrap_or_default();
    let of = |path: &str, category: &str| -> Vec<serde_json::Value> {
        events.iter().filter(|e| e["path"] == path && e["category"] == category).cloned().collect()
    };
    let named = json!({"kind": "api_token", "name": "ci-reader", "id": id});
    for (path, category) in [
        ("/logs/_doc/tok", "MISSING_PRIVILEGES"),
        (crate::support::MINT, "MISSING_PRIVILEGES"),
        (crate::support::MINT, "AUTHENTICATED"),
    ] {
        let found = of(path, category);
        assert!(!found.is_empty(), "{path} {category}: {events:?}");
        assert!(found.iter().all(|e| e["credential"] == named && e["user"] == "eve"), "{found:?}");
    }
    let read = of("/logs/_doc/1", "GRANTED_PRIVILEGES");
    assert_eq!(read.len(), 2, "{read:?}");
    assert_eq!(read.iter().filter(|e| e["credential"] == named).count(), 1, "{read:?}");
    let refused = of("/logs/_doc/own", "MISSING_PRIVILEGES");
    assert!(!refused.is_empty() && refused.iter().all(|e| e.get("credential").is_none()), "{refused:?}");

    // An on-behalf-of token of the admin: its events say so.
    let minted = server.send(Method::POST, crate::support::MINT, &minting)?;
    assert_eq!(minted.status, 200, "{minted:?}");
    let bearer = format!("Bearer {}", minted.json()["authenticationToken"].as_str().unwrap_or_default());
    let reply =
        server.send_with_authorization(Method::PUT, &format!("{API}/roles/x"), Some(&bearer), &json!({}))?;
    assert_eq!(reply.status, 403, "{reply:?}");
    let admin = server.get("/_warden/audit?user=admin&category=MISSING_PRIVILEGES&size=1000")?.json();
    let by_obo: Vec<&serde_json::Value> = admin["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["path"] == format!("{API}/roles/x"))
        .collect();
    assert!(!by_obo.is_empty(), "{admin}");
    assert!(by_obo.iter().all(|e| e["credential"] == json!({"kind": "obo_token"})), "{by_obo:?}");
    Ok(())
}
