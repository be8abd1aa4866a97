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

    // Every token expires: without `duration_seconds`, after the longest
    // a token may live (90 days), as OpenSearch 3.7 does.
    let before = crate::support::now_ms();
    let default = eve(Method::POST, &format!("{API}/apitokens"), &json!({"name": "longest"}))?;
    assert_eq!(default.status, 200, "{default:?}");
    let expires = default.json()["expires_at"].as_u64().unwrap_or_default();
    let ninety_days = 90 * 86_400 * 1000;
    assert!(
        expires >= before + ninety_days - 2000 && expires <= crate::support::now_ms() + ninety_days,
        "{default:?}"
    );
    let id = default.json()["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(eve(Method::DELETE, &format!("{API}/apitokens/{id}"), &json!(null))?.status, 200);
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
    assert!(writes.iter().all(|(category, _)| category == "API_TOKEN_WRITE"), "{writes:?}");
    assert_eq!(writes.len(), 5, "{audit}");
    for what in [
        "created API token longest",
        "deleted API token longest of eve",
        "created API token reader",
        "deleted API token reader of eve",
        "created API token short",
    ] {
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

/// OpenSearch 3.7's own documented requests are accepted as they are
/// written (`index_pattern`, no duration, `{id, token}` back, revoke by id),
/// and the misuses are refused with nothing done: a key wider than its
/// creator, a revocation of another user's key by its id, a duration over
/// the maximum, a malformed body — each in the security plugin's
/// `{"status","message"}` shape.
#[test]
fn api_keys_take_opensearch_documented_requests_and_refuse_misuse() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    assert_eq!(server.send(Method::PUT, "/logs-1/_doc/1", &json!({"n": 1}))?.status, 201);
    let tokens = format!("{API}/apitokens");

    // The Create API Key page's example, verbatim.
    let example = json!({"name": "test-token", "duration_seconds": 86400,
        "cluster_permissions": ["cluster_monitor"],
        "index_permissions": [{"index_pattern": ["logs*"], "allowed_actions": ["read"]}]});
    let created = server.send(Method::POST, &tokens, &example)?;
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.json()["id"].as_str().unwrap_or_default().to_owned();
    let token = created.json()["token"].as_str().unwrap_or_default().to_owned();
    assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{created:?}");
    let key = crate::support::api_key(&token);
    assert_eq!(server.get_with_authorization("/_cluster/health", Some(&key))?.status, 200);
    assert_eq!(server.get_with_authorization("/logs-1/_doc/1", Some(&key))?.status, 200);
    let write = server.send_with_authorization(Method::PUT, "/logs-1/_doc/2", Some(&key), &json!({}))?;
    assert_eq!(write.status, 403, "a read key wrote: {write:?}");
    // The API keys page's example (bulk as a cluster permission, a 30-day
    // duration), and `index_pattern` given as a string.
    let pipeline = json!({"name": "my-pipeline-key",
        "cluster_permissions": ["cluster_monitor", "indices:data/write/bulk"],
        "index_permissions": [{"index_pattern": ["logs-*"], "allowed_actions": ["indices_all"]}],
        "duration_seconds": 2_592_000});
    assert_eq!(server.send(Method::POST, &tokens, &pipeline)?.status, 200);
    let single = json!({"name": "single", "index_permissions": [{"index_pattern": "logs-1", "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::POST, &tokens, &single)?.status, 200);

    // The list, in OpenSearch's fields.
    let listed = server.get(&tokens)?;
    assert_eq!(listed.status, 200, "{listed:?}");
    let entry = listed
        .json()
        .as_array()
        .and_then(|all| all.iter().find(|t| t["name"] == "test-token").cloned())
        .unwrap_or_default();
    assert_eq!(entry["id"], id.as_str(), "{listed:?}");
    assert_eq!(entry["created_by"], "admin");
    assert_eq!(
        entry["index_permissions"],
        json!([{"index_pattern": ["logs*"], "allowed_actions": ["read"]}])
    );
    assert_eq!(entry["cluster_permissions"], json!(["cluster_monitor"]));
    let (iat, expires) =
        (entry["iat"].as_u64().unwrap_or_default(), entry["expires_at"].as_u64().unwrap_or_default());
    assert_eq!(expires - iat, 86_400_000, "epoch milliseconds: {entry}");
    assert!(!listed.body.contains(&token), "no secret in the list");

    // Misuse: each refused in the plugin's shape, nothing created.
    let refused = |body: serde_json::Value, status: u16, label: &str, says: &str| -> TestResult {
        let reply = server.send(Method::POST, &tokens, &body)?;
        assert_eq!(reply.status, status, "{body}: {reply:?}");
        assert_eq!(reply.json()["status"], label, "{reply:?}");
        assert!(reply.json()["message"].as_str().unwrap_or_default().contains(says), "{says}: {reply:?}");
        Ok(())
    };
    refused(
        json!({"name": "long", "duration_seconds": 90 * 86_400 + 1}),
        400,
        "BAD_REQUEST",
        "duration_seconds",
    )?;
    refused(json!({"name": "zero", "duration_seconds": 0}), 400, "BAD_REQUEST", "duration_seconds")?;
    refused(json!({"name": "bad name"}), 400, "BAD_REQUEST", "[a-zA-Z0-9_-]+")?;
    refused(json!({"name": "x", "expiration": 1}), 400, "BAD_REQUEST", "expiration")?;
    refused(
        json!({"name": "x", "index_permissions": [{"allowed_actions": ["read"]}]}),
        400,
        "BAD_REQUEST",
        "index_pattern",
    )?;
    refused(
        json!({"name": "x", "index_permissions": [{"index_pattern": ["a"]}]}),
        400,
        "BAD_REQUEST",
        "allowed_actions",
    )?;

    // A user who may read `logs-1` only.
    let reader = json!({"cluster_permissions": ["cluster_monitor"], "index_permissions": [{"index_patterns": ["logs-1"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/logs_reader"), &reader)?.status, 201);
    assert_eq!(
        server
            .send(Method::PUT, &format!("{API}/internalusers/eve"), &json!({"password": "Eve-Password-1"}))?
            .status,
        201
    );
    assert_eq!(
        server
            .send(Method::PUT, &format!("{API}/rolesmapping/logs_reader"), &json!({"users": ["eve"]}))?
            .status,
        201
    );
    let eve = |method, path: &str, body: &serde_json::Value| {
        server.send_as("eve", "Eve-Password-1", method, path, body)
    };
    for (wider, names) in [
        (
            json!({"name": "w1", "index_permissions": [{"index_pattern": ["logs-1"], "allowed_actions": ["write"]}]}),
            "on `logs-1`",
        ),
        (
            json!({"name": "w2", "index_permissions": [{"index_pattern": ["logs-*"], "allowed_actions": ["read"]}]}),
            "on `logs-*`",
        ),
        (
            json!({"name": "w3", "index_permissions": [{"index_pattern": "*", "allowed_actions": ["indices:data/read/get"]}]}),
            "on `*`",
        ),
        (json!({"name": "w4", "cluster_permissions": ["cluster_all"]}), "cluster permission `cluster:*`"),
        (
            json!({"name": "w5", "cluster_permissions": ["restapi:admin/apitokens"]}),
            "restapi:admin/apitokens",
        ),
    ] {
        let reply = eve(Method::POST, &tokens, &wider)?;
        assert_eq!(reply.status, 403, "{wider}: {reply:?}");
        assert_eq!(reply.json()["status"], "FORBIDDEN", "{reply:?}");
        assert!(reply.json()["message"].as_str().unwrap_or_default().contains(names), "{names}: {reply:?}");
    }
    // Within her roles: granted.
    let own = json!({"name": "mine", "index_permissions": [{"index_pattern": ["logs-1"], "allowed_actions": ["indices:data/read/get"]}]});
    let mine = eve(Method::POST, &tokens, &own)?;
    assert_eq!(mine.status, 200, "{mine:?}");
    let mine_id = mine.json()["id"].as_str().unwrap_or_default().to_owned();
    let mine_key = crate::support::api_key(mine.json()["token"].as_str().unwrap_or_default());
    let listed = eve(Method::GET, &tokens, &json!(null))?.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "nothing wider was created: {listed}");

    // Eve cannot revoke the admin's key by its id; it still works.
    let other = eve(Method::DELETE, &format!("{tokens}/{id}"), &json!(null))?;
    assert_eq!(other.status, 403, "{other:?}");
    assert_eq!(other.json()["status"], "FORBIDDEN", "{other:?}");
    assert_eq!(server.get_with_authorization("/logs-1/_doc/1", Some(&key))?.status, 200);
    // Nor by its name (hers has none of that name).
    assert_eq!(eve(Method::DELETE, &format!("{tokens}/test-token"), &json!(null))?.status, 404);
    assert_eq!(server.get_with_authorization("/logs-1/_doc/1", Some(&key))?.status, 200);
    // Unknown ids: 404 in the plugin's shape.
    let unknown = server.send(Method::DELETE, &format!("{tokens}/0123456789abcdef"), &json!(null))?;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(unknown.json()["status"], "NOT_FOUND", "{unknown:?}");

    // Her own key, by id: revoked, as OpenSearch answers it.
    assert_eq!(server.get_with_authorization("/logs-1/_doc/1", Some(&mine_key))?.status, 200);
    let revoked = eve(Method::DELETE, &format!("{tokens}/{mine_id}"), &json!(null))?;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    assert_eq!(revoked.json()["message"], format!("Token {mine_id} revoked successfully."));
    assert_eq!(server.get_with_authorization("/logs-1/_doc/1", Some(&mine_key))?.status, 401);
    // A security manager revokes anyone's by id.
    let again = eve(Method::POST, &tokens, &own)?;
    let again_id = again.json()["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(server.send(Method::DELETE, &format!("{tokens}/{again_id}"), &json!(null))?.status, 200);
    assert_eq!(eve(Method::GET, &tokens, &json!(null))?.json(), json!([]));
    // The admin's own, by id.
    assert_eq!(server.send(Method::DELETE, &format!("{tokens}/{id}"), &json!(null))?.status, 200);
    assert_eq!(server.get_with_authorization("/logs-1/_doc/1", Some(&key))?.status, 401);

    let refusals = server.get("/_warden/audit?category=MISSING_PRIVILEGES&size=1000")?.body;
    assert!(refusals.contains("an API token cannot hold what its creator does not"), "{refusals}");
    assert!(refusals.contains("is not yours"), "{refusals}");
    Ok(())
}
