//! Extension cluster calls through real guests: the host injects the
//! invocation's OBO token, and both gates — the extension's policy (service
//! gate) and the user's roles (user gate) — must allow; system indices are
//! refused to everyone; the service identity is confined to `.ext-<id>` and
//! `.ext-<id>_*`.

use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::GUEST_HOST_CALLS;

use crate::support::probe::{as_service as service, as_user as req, denied, ok};
use crate::support::{API, Deployment, Server, TestResult};

const ANA: (&str, &str) = ("ana", "Ana-Password-1");

fn setup() -> Result<(Deployment, Server), Box<dyn std::error::Error>> {
    let deployment = Deployment::new()?;
    deployment.install("probe", GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
    let server = deployment.start()?;
    let policy = json!({
        "cluster_permissions": ["cluster:monitor/health"],
        "index_permissions": [{"index_patterns": ["shared-*", "reports"], "allowed_actions": ["crud", "create_index"]}]
    });
    let analyst = json!({
        "extension_permissions": ["extension:probe/*"],
        "index_permissions": [{"index_patterns": ["shared-a", "shared-b", "private"], "allowed_actions": ["crud", "create_index"]}]
    });
    for (path, body) in [
        (format!("{API}/roles/extension:probe"), policy),
        (format!("{API}/roles/analyst"), analyst),
        (format!("{API}/internalusers/ana"), json!({"password": ANA.1})),
        (format!("{API}/rolesmapping/analyst"), json!({"users": ["ana"]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    Ok((deployment, server))
}

/// One cluster call made by the guest for `who` (None: admin).
fn call(
    server: &Server,
    who: Option<(&str, &str)>,
    spec: Value,
) -> Result<Value, Box<dyn std::error::Error>> {
    let reply = match who {
        Some((user, password)) => {
            server.send_as(user, password, Method::POST, "/_extensions/probe/call", &spec)?
        }
        None => server.send(Method::POST, "/_extensions/probe/call", &spec)?,
    };
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json())
}

#[test]
fn both_gates_must_allow() -> TestResult {
    let (_deployment, server) = setup()?;
    let doc = json!({"title": "q3", "n": 3});
    // Both allow.
    ok(&call(&server, Some(ANA), req("PUT", "/shared-a", Value::Null))?, 200);
    ok(&call(&server, Some(ANA), req("PUT", "/shared-a/_doc/1", doc.clone()))?, 201);
    let got = call(&server, Some(ANA), req("GET", "/shared-a/_doc/1", Value::Null))?;
    ok(&got, 200);
    assert_eq!(got["body"]["_source"], doc);
    // User gate denies what the extension could do.
    denied(&call(&server, Some(ANA), req("PUT", "/shared-c/_doc/1", doc.clone()))?, "user", "shared-c");
    // Service gate denies what the user could do.
    denied(&call(&server, Some(ANA), req("PUT", "/private/_doc/1", doc.clone()))?, "service", "private");
    denied(
        &call(&server, Some(ANA), req("GET", "/_cluster/health", Value::Null))?,
        "user",
        "cluster:monitor/health",
    );
    // all_access does not lift the extension's limits.
    ok(&call(&server, None, req("GET", "/_cluster/health", Value::Null))?, 200);
    denied(&call(&server, None, req("PUT", "/private/_doc/1", doc.clone()))?, "service", "private");
    ok(&call(&server, None, req("PUT", "/shared-c/_doc/1", json!({"title": "secret"})))?, 201);
    // System indices: nobody, whatever their roles.
    denied(
        &call(&server, None, req("GET", "/.warden-security/_doc/internal_users.yml", Value::Null))?,
        "system-index",
        ".warden-security",
    );
    denied(&call(&server, None, req("POST", "/.warden*/_search", json!({})))?, "system-index", ".warden");
    // Wildcards expand only to indices both gates allow.
    let found =
        call(&server, Some(ANA), req("POST", "/shared-*/_search", json!({"query": {"match_all": {}}})))?;
    ok(&found, 200);
    let indices: Vec<&str> = found["body"]["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["_index"].as_str())
        .collect();
    assert_eq!(indices, ["shared-a"], "{found}");
    let admin_found = call(&server, None, req("POST", "/shared-*/_search", json!({})))?;
    assert_eq!(admin_found["body"]["hits"]["total"]["value"], 2, "{admin_found}");
    // Bulk with one forbidden item is refused whole; nothing is written.
    let bulk = "{\"index\":{\"_index\":\"shared-a\",\"_id\":\"2\"}}\n{\"n\":2}\n{\"index\":{\"_index\":\"shared-c\",\"_id\":\"2\"}}\n{\"n\":2}\n";
    denied(&call(&server, Some(ANA), req("POST", "/_bulk", json!(bulk)))?, "user", "shared-c");
    assert_eq!(call(&server, Some(ANA), req("GET", "/shared-a/_doc/2", Value::Null))?["status"], 404);
    let bulk = "{\"index\":{\"_index\":\"shared-a\",\"_id\":\"2\"}}\n{\"n\":2}\n{\"delete\":{\"_index\":\"shared-a\",\"_id\":\"1\"}}\n";
    let done = call(&server, Some(ANA), req("POST", "/_bulk", json!(bulk)))?;
    ok(&done, 200);
    assert_eq!(done["body"]["errors"], false, "{done}");
    // Malformed calls are `invalid`, not denied.
    let bad = call(&server, Some(ANA), req("GET", "/_nodes/hot_threads", Value::Null))?;
    assert_eq!(bad["kind"], "invalid", "{bad}");
    Ok(())
}

#[test]
fn service_identity_reaches_only_its_own_indices() -> TestResult {
    let (_deployment, server) = setup()?;
    ok(&call(&server, Some(ANA), service("PUT", "/.ext-probe/_doc/state", json!({"cursor": 7})))?, 201);
    ok(&call(&server, Some(ANA), service("PUT", "/.ext-probe_cache/_doc/1", json!({})))?, 201);
    let got = call(&server, Some(ANA), service("GET", "/.ext-probe/_doc/state", Value::Null))?;
    assert_eq!(got["body"]["_source"]["cursor"], 7);
    denied(
        &call(&server, Some(ANA), service("PUT", "/shared-a/_doc/9", json!({})))?,
        "service-account",
        "shared-a",
    );
    denied(
        &call(&server, None, service("PUT", "/.ext-probe2/_doc/1", json!({})))?,
        "service-account",
        ".ext-probe2",
    );
    denied(
        &call(&server, None, service("GET", "/.warden-tokens/_doc/keys", Value::Null))?,
        "system-index",
        ".warden-tokens",
    );
    ok(&call(&server, None, service("GET", "/_cluster/health", Value::Null))?, 200);
    let search = call(&server, None, service("POST", "/.ext-*/_search", json!({})))?;
    assert_eq!(search["body"]["hits"]["total"]["value"], 2, "only its own: {search}");
    // No user reaches the extension's private index, not even through the
    // extension: `.ext-*` are system indices for user-identity calls.
    denied(
        &call(&server, Some(ANA), req("GET", "/.ext-probe/_doc/state", Value::Null))?,
        "system-index",
        ".ext-probe",
    );
    Ok(())
}

#[test]
fn decisions_are_audited_with_the_gate() -> TestResult {
    let (_deployment, server) = setup()?;
    denied(&call(&server, Some(ANA), req("PUT", "/private/_doc/1", json!({})))?, "service", "private");
    denied(&call(&server, Some(ANA), req("PUT", "/shared-z/_doc/1", json!({})))?, "user", "shared-z");
    let audit = server.get("/_warden/audit?category=MISSING_PRIVILEGES&extension=probe")?.json();
    let events = audit["events"].as_array().cloned().unwrap_or_default();
    let gates: Vec<(&str, &str)> =
        events.iter().filter_map(|e| Some((e["gate"].as_str()?, e["user"].as_str()?))).collect();
    assert!(gates.contains(&("service", "ana")) && gates.contains(&("user", "ana")), "{audit}");
    // Both gates' decisions are recorded, not only the one that refused.
    let service_denial = events.iter().find(|e| e["gate"] == "service").cloned().unwrap_or_default();
    let reason = service_denial["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("`private`") && reason.contains("user gate: allowed"), "{service_denial}");
    let user_denial = events.iter().find(|e| e["gate"] == "user").cloned().unwrap_or_default();
    assert_eq!(user_denial["action"], "indices:data/write/index");
    assert_eq!(user_denial["indices"], json!(["shared-z"]));
    Ok(())
}

/// Each extension granted `cluster` has a service account, created at load
/// and managed like the other users — except that nobody logs in as it and
/// the API cannot create one or give it a password. Disabling it stops the
/// extension's calls `as service` at once, and survives a restart.
#[test]
fn service_accounts_exist_per_extension_and_can_be_disabled() -> TestResult {
    let (deployment, server) = setup()?;
    let account = format!("{API}/internalusers/service:probe");
    let shown = server.get(&account)?;
    assert_eq!(shown.status, 200, "{shown:?}");
    let mut record = shown.json()["service:probe"].clone();
    assert_eq!(record["attributes"]["service"], "true", "{record}");
    assert_eq!(record["attributes"]["extension"], "probe", "{record}");
    assert!(server.wait_for_log("service account created"), "{}", server.logs());
    // The policy role did not exist at start: the operator was told.
    assert!(server.wait_for_log("has no policy role `extension:probe`"), "{}", server.logs());
    // No password, and none can be set. (No Basic header can even name the
    // account: the first `:` ends the user name, so `service:probe:` is user
    // `service` — host/src/security/authn.rs tests `NoPassword` directly.)
    assert_eq!(server.get_as("service:probe", "", "/_plugins/_security/authinfo")?.status, 401);
    assert!(server.wait_for_log("unknown user `service`"), "{}", server.logs());
    let failed = server.get("/_warden/audit?category=FAILED_LOGIN&size=1000")?.json();
    let users: Vec<&str> =
        failed["events"].as_array().into_iter().flatten().filter_map(|e| e["user"].as_str()).collect();
    assert!(users.contains(&"service") && !users.contains(&"service:probe"), "{failed}");
    assert_eq!(record["hash"], "", "{record}");
    let with_password = json!({"password": "Some-Password-123", "attributes": record["attributes"]});
    let refused = server.send(Method::PUT, &account, &with_password)?;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.message().contains("a service account has no password"), "{refused:?}");
    let hashed = json!({"hash": "$2y$12$abcdefghijklmnopqrstuu5Vv1lM1qGvjZzDn8Yb9ZaaOT7bg3e1a", "attributes": record["attributes"]});
    let refused = server.send(Method::PUT, &account, &hashed)?;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.message().contains("no password"), "{refused:?}");
    let forged = server.send(Method::PUT, &format!("{API}/internalusers/service:ghost"), &json!({}))?;
    assert_eq!(forged.status, 400, "{forged:?}");
    assert!(forged.message().contains("created by Warden"), "{forged:?}");

    let write_state = || service("PUT", "/.ext-probe/_doc/state", json!({"cursor": 1}));
    ok(&call(&server, Some(ANA), write_state())?, 201);
    record["disabled"] = json!(true);
    assert_eq!(server.send(Method::PUT, &account, &record)?.status, 200);
    denied(&call(&server, Some(ANA), write_state())?, "service-account", "`service:probe` is disabled");
    // Calls as the user are not affected.
    ok(&call(&server, Some(ANA), req("PUT", "/shared-a/_doc/1", json!({})))?, 201);

    // A restart keeps the operator's decision; re-enabling restores the calls.
    drop(server);
    let server = deployment.start()?;
    denied(&call(&server, Some(ANA), write_state())?, "service-account", "is disabled");
    record["disabled"] = json!(false);
    assert_eq!(server.send(Method::PUT, &account, &record)?.status, 200);
    ok(&call(&server, Some(ANA), write_state())?, 200);
    Ok(())
}

/// A JWT domain (HMAC) whose tokens name their user in `preferred_username`.
fn jwt_security_config(dir: &std::path::Path, secret: &[u8]) -> std::io::Result<()> {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode(secret);
    std::fs::write(
        dir.join("config.yml"),
        format!(
            "_meta:\n  type: config\n  config_version: 2\nconfig:\n  dynamic:\n    authc:\n      basic:\n        http_enabled: true\n        order: 1\n        http_authenticator:\n          type: basic\n          challenge: true\n        authentication_backend:\n          type: intern\n      jwt:\n        http_enabled: true\n        order: 0\n        http_authenticator:\n          type: jwt\n          challenge: false\n          config:\n            signing_key: \"{key}\"\n            subject_key: preferred_username\n            roles_key: roles\n        authentication_backend:\n          type: noop\n"
        ),
    )?;
    std::fs::write(
        dir.join("roles.yml"),
        "_meta:\n  type: roles\n  config_version: 2\nprobe_users:\n  extension_permissions: [\"extension:probe/*\"]\n",
    )?;
    std::fs::write(
        dir.join("roles_mapping.yml"),
        "_meta:\n  type: rolesmapping\n  config_version: 2\nprobe_users:\n  backend_roles: [\"analysts\"]\nall_access:\n  users: [\"admin\"]\n",
    )?;
    std::fs::write(
        dir.join("internal_users.yml"),
        "_meta:\n  type: internalusers\n  config_version: 2\nadmin:\n  reserved: true\n",
    )
}

/// A token naming the service account gets none of its privileges: the
/// account's reach (`.ext-probe`) belongs to the extension's service
/// identity, never to a user of that name.
#[test]
fn a_jwt_naming_the_service_account_gets_no_service_privileges() -> TestResult {
    let secret = b"0123456789abcdef0123456789abcdef-gates-secret";
    let deployment = Deployment::new()?;
    deployment.install("probe", GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
    let config = tempfile::tempdir()?;
    jwt_security_config(config.path(), secret)?;
    let config_arg = config.path().display().to_string();
    let server = deployment.start_with(&["--security-config", &config_arg])?;
    assert_eq!(server.get(&format!("{API}/internalusers/service:probe"))?.status, 200);
    // The service identity itself reaches its index (the positive control).
    ok(&call(&server, None, service("PUT", "/.ext-probe/_doc/state", json!({"cursor": 7})))?, 201);
    ok(&call(&server, None, service("GET", "/.ext-probe/_doc/state", Value::Null))?, 200);

    let exp = crate::support::now_secs() + 300;
    let claims = json!({"preferred_username": "service:probe", "roles": ["analysts"], "exp": exp});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )?;
    let bearer = format!("Bearer {token}");
    let info = server.get_with_authorization("/_plugins/_security/authinfo", Some(&bearer))?;
    assert_eq!(info.status, 200, "{info:?}");
    assert_eq!(info.json()["user_name"], "service:probe");
    assert_eq!(info.json()["roles"], json!(["probe_users"]), "{info:?}");
    // Straight to the index: refused, and the document is not shown.
    let read = server.get_with_authorization("/.ext-probe/_doc/state", Some(&bearer))?;
    assert_eq!(read.status, 403, "{read:?}");
    assert!(!read.body.contains("cursor"), "{read:?}");
    let write = server.send_with_authorization(
        Method::PUT,
        "/.ext-probe/_doc/state",
        Some(&bearer),
        &json!({"cursor": 666}),
    )?;
    assert_eq!(write.status, 403, "{write:?}");
    // Through the extension as a user: the user gate has nothing for it.
    let spec = req("GET", "/.ext-probe/_doc/state", Value::Null);
    let through =
        server.send_with_authorization(Method::POST, "/_extensions/probe/call", Some(&bearer), &spec)?;
    assert_eq!(through.status, 200, "{through:?}");
    assert_eq!(through.json()["kind"], "denied", "{through:?}");
    // Nothing was changed by the refused write.
    let state = call(&server, None, service("GET", "/.ext-probe/_doc/state", Value::Null))?;
    assert_eq!(state["body"]["_source"], json!({"cursor": 7}), "{state}");
    Ok(())
}
