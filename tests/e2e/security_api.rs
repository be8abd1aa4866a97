//! The security REST API and the audit log through the real binary:
//! OpenSearch's paths and answers, reserved entries, field-naming 400s,
//! changes taking effect at once (credential cache included), atomic
//! updates under concurrent requests, and audited failures.

use reqwest::Method;
use serde_json::json;
use warden_test_artifacts::HELLO_WORLD;

use crate::support::{self, ADMIN_PASSWORD, API, Deployment, Server, TestResult};

fn start() -> Result<(Deployment, Server), Box<dyn std::error::Error>> {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    let server = deployment.start()?;
    Ok((deployment, server))
}

#[test]
fn users_roles_and_mappings_change_access_at_once() -> TestResult {
    let (_deployment, server) = start()?;
    // Weak password: 400 naming the rule.
    let weak = server.send(Method::PUT, &format!("{API}/internalusers/ana"), &json!({"password": "ana"}))?;
    assert_eq!(weak.status, 400, "{weak:?}");
    assert!(weak.message().contains("password is too weak"), "{weak:?}");
    let created = server.send(
        Method::PUT,
        &format!("{API}/internalusers/ana"),
        &json!({"password": "Ana-Password-1", "backend_roles": ["analyst"]}),
    )?;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json(), json!({"status": "CREATED", "message": "'ana' created."}));
    let shown = server.get(&format!("{API}/internalusers/ana"))?.json();
    assert_eq!(shown["ana"]["hash"], "", "hashes are never shown");
    assert_eq!(shown["ana"]["backend_roles"], json!(["analyst"]));

    // Ana authenticates but holds no extension permission yet.
    assert_eq!(server.get_as("ana", "Ana-Password-1", "/_extensions/hello/greet/x")?.status, 403);
    // A bad role document: 400 naming the field.
    let bad =
        server.send(Method::PUT, &format!("{API}/roles/greeter"), &json!({"extension_permision": []}))?;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.message().contains("unknown field `extension_permision`"), "{bad:?}");
    let role = json!({"extension_permissions": ["extension:hello/greet"]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/greeter"), &role)?.status, 201);
    let mapping = json!({"backend_roles": ["analyst"]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/rolesmapping/greeter"), &mapping)?.status, 201);
    assert_eq!(server.get_as("ana", "Ana-Password-1", "/_extensions/hello/greet/x")?.status, 200);

    // PATCH (JSON Patch) on one entry, then on the collection.
    let patch = json!([{"op": "add", "path": "/extension_permissions/-", "value": "extension:hello/other"}]);
    let patched = server.send(Method::PATCH, &format!("{API}/roles/greeter"), &patch)?;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(
        server.get_as("ana", "Ana-Password-1", "/_extensions/hello/other")?.status,
        404,
        "allowed; the guest 404s"
    );
    let patch = json!([{"op": "remove", "path": "/greeter"}]);
    assert_eq!(server.send(Method::PATCH, &format!("{API}/rolesmapping"), &patch)?.status, 200);
    assert_eq!(server.get_as("ana", "Ana-Password-1", "/_extensions/hello/greet/x")?.status, 403);

    // Disabling her: the same 401 as a wrong password; the audit log knows.
    let patch = json!([{"op": "add", "path": "/disabled", "value": true}]);
    assert_eq!(server.send(Method::PATCH, &format!("{API}/internalusers/ana"), &patch)?.status, 200);
    let disabled = server.get_as("ana", "Ana-Password-1", "/_plugins/_security/authinfo")?;
    let wrong = server.get_as("ana", "Wrong-Password-1", "/_plugins/_security/authinfo")?;
    assert_eq!((disabled.status, &disabled.body), (401, &wrong.body));
    let audit = server.get("/_warden/audit?category=FAILED_LOGIN&user=ana")?.json();
    let reasons: Vec<&str> =
        audit["events"].as_array().into_iter().flatten().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.contains(&"user `ana` is disabled"), "{audit}");
    assert!(reasons.contains(&"wrong password for user `ana`"), "{audit}");
    let patch = json!([{"op": "remove", "path": "/disabled"}]);
    assert_eq!(server.send(Method::PATCH, &format!("{API}/internalusers/ana"), &patch)?.status, 200);
    assert_eq!(server.get_as("ana", "Ana-Password-1", "/_plugins/_security/authinfo")?.status, 200);

    // Deleting the user locks her out on the next request (no stale cache).
    assert_eq!(server.request(Method::DELETE, &format!("{API}/internalusers/ana"), "")?.status, 200);
    assert_eq!(server.get_as("ana", "Ana-Password-1", "/_plugins/_security/authinfo")?.status, 401);
    assert_eq!(server.get(&format!("{API}/internalusers/ana"))?.status, 404);
    Ok(())
}

#[test]
fn reserved_and_static_entries_cannot_change() -> TestResult {
    let (_deployment, server) = start()?;
    let entries = ["internalusers/admin", "roles/all_access", "actiongroups/read", "rolesmapping/all_access"];
    let read_all = || -> Result<Vec<String>, reqwest::Error> {
        entries.iter().map(|entry| Ok(server.get(&format!("{API}/{entry}"))?.body)).collect()
    };
    let before = read_all()?;
    let reserved =
        server.send(Method::PUT, &format!("{API}/internalusers/admin"), &json!({"backend_roles": ["x"]}))?;
    assert_eq!(reserved.status, 403, "{reserved:?}");
    assert_eq!(reserved.message(), "Resource 'admin' is reserved.");
    assert_eq!(server.request(Method::DELETE, &format!("{API}/internalusers/admin"), "")?.status, 403);
    assert_eq!(server.request(Method::DELETE, &format!("{API}/roles/all_access"), "")?.status, 403);
    let grow = json!({"cluster_permissions": ["*"], "index_permissions": []});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/all_access"), &grow)?.status, 403);
    assert_eq!(server.request(Method::DELETE, &format!("{API}/actiongroups/read"), "")?.status, 403);
    let group = json!({"allowed_actions": ["indices:data/write/*"]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/actiongroups/read"), &group)?.status, 403);
    let policy_mapping =
        server.send(Method::PUT, &format!("{API}/rolesmapping/extension:hello"), &json!({"users": ["x"]}))?;
    assert_eq!(policy_mapping.status, 400, "{policy_mapping:?}");
    assert_eq!(policy_mapping.message(), "extension policies cannot be mapped to users");
    // Nothing changed: each entry reads the same, admin still holds all_access.
    assert_eq!(read_all()?, before);
    let mapped = server.get(&format!("{API}/rolesmapping/extension:hello"))?;
    assert_eq!(mapped.status, 404, "{mapped:?}");
    let info = server.get("/_plugins/_security/authinfo")?;
    assert_eq!(info.status, 200, "{info:?}");
    assert!(info.json()["roles"].as_array().is_some_and(|r| r.contains(&json!("all_access"))), "{info:?}");
    // The static action groups are listed.
    let groups = server.get(&format!("{API}/actiongroups"))?.json();
    assert!(groups["cluster_monitor"]["allowed_actions"].is_array(), "{groups}");
    Ok(())
}

#[test]
fn account_password_change_invalidates_the_old_password() -> TestResult {
    let (_deployment, server) = start()?;
    let user = json!({"password": "Bob-Password-1"});
    assert_eq!(server.send(Method::PUT, &format!("{API}/internalusers/bob"), &user)?.status, 201);
    assert_eq!(server.get_as("bob", "Bob-Password-1", &format!("{API}/account"))?.status, 200);
    let wrong = json!({"current_password": "nope", "password": "Bob-Password-2"});
    let reply = server.send_as("bob", "Bob-Password-1", Method::PUT, &format!("{API}/account"), &wrong)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    let change = json!({"current_password": "Bob-Password-1", "password": "Bob-Password-2"});
    let reply = server.send_as("bob", "Bob-Password-1", Method::PUT, &format!("{API}/account"), &change)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(server.get_as("bob", "Bob-Password-1", &format!("{API}/account"))?.status, 401);
    assert_eq!(server.get_as("bob", "Bob-Password-2", &format!("{API}/account"))?.status, 200);
    // Bob is not a security manager.
    let denied = server.get_as("bob", "Bob-Password-2", &format!("{API}/internalusers"))?;
    assert_eq!(denied.status, 403, "{denied:?}");
    Ok(())
}

#[test]
fn audit_log_records_failures_and_writes_without_secrets() -> TestResult {
    let (deployment, server) = start()?;
    assert_eq!(server.get_as("admin", "Not-The-Password-9", "/_warden/health")?.status, 401);
    assert_eq!(server.get_as("mallory", "whatever", "/_warden/health")?.status, 401);
    let user = json!({"password": "Carol-Password-1"});
    assert_eq!(server.send(Method::PUT, &format!("{API}/internalusers/carol"), &user)?.status, 201);
    assert_eq!(server.get_as("carol", "Carol-Password-1", "/_extensions/hello/greet/x")?.status, 403);

    let failed = server.get("/_warden/audit?category=FAILED_LOGIN")?.json();
    let reasons: Vec<&str> =
        failed["events"].as_array().into_iter().flatten().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.contains(&"wrong password for user `admin`"), "{failed}");
    assert!(reasons.contains(&"unknown user `mallory`"), "{failed}");
    let missing = server.get("/_warden/audit?category=MISSING_PRIVILEGES&user=carol")?.json();
    let event = &missing["events"][0];
    assert_eq!(event["extension"], "hello", "{missing}");
    assert_eq!(event["gate"], "route");
    assert_eq!(event["action"], "extension:hello/greet");
    assert!(event["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(event["remote_address"].as_str().is_some_and(|a| a == "127.0.0.1"));
    let writes = server.get("/_warden/audit?category=SECURITY_CONFIG_WRITE")?.json();
    assert!(
        writes["events"][0]["reason"].as_str().is_some_and(|r| r.contains("internalusers/carol")),
        "{writes}"
    );
    assert_eq!(server.get_as("carol", "Carol-Password-1", "/_warden/audit")?.status, 403);

    let raw = std::fs::read_to_string(deployment.data_dir().join("audit/audit.log"))?;
    for secret in [ADMIN_PASSWORD, "Not-The-Password-9", "Carol-Password-1", "$2b$", "$2a$", "Basic "] {
        assert!(!raw.contains(secret), "audit log contains {secret}");
    }
    Ok(())
}

/// Every category on, and every kind of secret passing through: a user
/// written with a `hash`, a password set by JSON Patch and by the account
/// API, on-behalf-of and API tokens minted and used. Neither the audit log
/// nor the server's log holds any of them.
#[test]
fn audit_and_server_logs_never_hold_secrets_with_every_category_on() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    let mut command = support::warden();
    command.env("WARDEN_AUDIT_DISABLED_CATEGORIES", "");
    let server =
        support::Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])?;
    let hashed_password = "Hashed-Password-1";
    let hash = warden_host::security::password::hash(hashed_password)?;
    let hashed = server.send(Method::PUT, &format!("{API}/internalusers/hashy"), &json!({"hash": hash}))?;
    assert_eq!(hashed.status, 201, "{hashed:?}");
    assert_eq!(server.get_as("hashy", hashed_password, "/_plugins/_security/authinfo")?.status, 200);
    // carol: created, password patched, then changed by herself.
    let user = json!({"password": "Carol-Password-1"});
    assert_eq!(server.send(Method::PUT, &format!("{API}/internalusers/carol"), &user)?.status, 201);
    let patch = json!([{"op": "add", "path": "/password", "value": "Patched-Password-2"}]);
    assert_eq!(server.send(Method::PATCH, &format!("{API}/internalusers/carol"), &patch)?.status, 200);
    let change = json!({"current_password": "Patched-Password-2", "password": "Account-Password-3"});
    let changed =
        server.send_as("carol", "Patched-Password-2", Method::PUT, &format!("{API}/account"), &change)?;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(server.get_as("carol", "Account-Password-3", "/_plugins/_security/authinfo")?.status, 200);
    assert_eq!(server.get_as("carol", "Wrong-Password-4", "/_plugins/_security/authinfo")?.status, 401);
    // Tokens: minted, used, one of each tampered.
    let minted = server.send(
        Method::POST,
        &format!("{API}/generateonbehalfoftoken"),
        &json!({"service": "reporting"}),
    )?;
    let obo = minted.json()["authenticationToken"].as_str().ok_or("no OBO token")?.to_owned();
    let bearer = format!("Bearer {obo}");
    assert_eq!(server.get_with_authorization("/_cluster/health", Some(&bearer))?.status, 200);
    assert_eq!(server.get_with_authorization("/_cluster/health", Some(&format!("{bearer}x")))?.status, 401);
    let spec = json!({"name": "reader", "duration_seconds": 600, "cluster_permissions": ["cluster_monitor"]});
    let created = server.send(Method::POST, &format!("{API}/apitokens"), &spec)?;
    assert_eq!(created.status, 200, "{created:?}");
    let api_token = created.json()["token"].as_str().ok_or("no API token")?.to_owned();
    let key = format!("ApiKey {api_token}");
    assert_eq!(server.get_with_authorization("/_cluster/health", Some(&key))?.status, 200);
    assert_eq!(server.get_with_authorization("/_cluster/health", Some(&format!("{key}x")))?.status, 401);
    assert!(server.wait_for_log("unknown or deleted API token"), "{}", server.logs());

    // The positive control: with every category on, the log has those
    // requests — token users authenticated, privileges granted, writes.
    let audit_path = deployment.data_dir().join("audit/audit.log");
    let raw = std::fs::read_to_string(&audit_path)?;
    for category in
        ["AUTHENTICATED", "GRANTED_PRIVILEGES", "FAILED_LOGIN", "SECURITY_CONFIG_WRITE", "API_TOKEN_WRITE"]
    {
        assert!(raw.contains(&format!("\"{category}\"")), "no {category} event: {raw}");
    }
    for name in ["hashy", "carol", "internalusers/carol", "reader"] {
        assert!(raw.contains(name), "{name} is not in the audit log");
    }
    let stderr = server.stop();
    assert!(stderr.contains("wrong password for user `carol`"), "the server log is read: {stderr}");
    let secrets = [
        ADMIN_PASSWORD,
        hashed_password,
        hash.as_str(),
        "Carol-Password-1",
        "Patched-Password-2",
        "Account-Password-3",
        "Wrong-Password-4",
        obo.as_str(),
        api_token.as_str(),
        "$2a$",
        "$2b$",
        "$2y$",
        "eyJ",
        "wdn_",
        "ApiKey",
        "Bearer",
        "Basic ",
    ];
    for (what, text) in [("audit.log", &raw), ("stderr", &stderr)] {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} contains {secret}");
        }
    }
    Ok(())
}

#[test]
fn concurrent_requests_never_see_half_a_change() -> TestResult {
    let (_deployment, server) = start()?;
    for role in ["r1", "r2"] {
        assert_eq!(server.send(Method::PUT, &format!("{API}/roles/{role}"), &json!({}))?.status, 201);
    }
    let user = json!({"password": "Dave-Password-1"});
    assert_eq!(server.send(Method::PUT, &format!("{API}/internalusers/dave"), &user)?.status, 201);
    // dave's first login pays bcrypt (off the executor, so it no longer slows
    // the writers down): pay it before the race starts.
    assert_eq!(server.get_as("dave", "Dave-Password-1", "/_plugins/_security/authinfo")?.status, 200);
    // Each PATCH maps dave to both roles or to neither, in one change.
    let map_both = json!([
        {"op": "add", "path": "/r1", "value": {"users": ["dave"]}},
        {"op": "add", "path": "/r2", "value": {"users": ["dave"]}}
    ]);
    let unmap_both = json!([{"op": "remove", "path": "/r1"}, {"op": "remove", "path": "/r2"}]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let observed = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let mut seen = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // A failed request or a non-200 answer is recorded as
                        // such, never as the "neither" state.
                        let roles = server
                            .get_as("dave", "Dave-Password-1", "/_plugins/_security/authinfo")
                            .map_err(|e| e.to_string())
                            .and_then(|reply| {
                                if reply.status != 200 {
                                    return Err(format!("{reply:?}"));
                                }
                                let mut roles: Vec<String> =
                                    serde_json::from_value(reply.json()["roles"].clone())
                                        .map_err(|e| format!("{e}: {reply:?}"))?;
                                roles.sort();
                                Ok(roles)
                            });
                        seen.push(roles);
                    }
                    seen
                })
            })
            .collect();
        for _ in 0..15 {
            for patch in [&map_both, &unmap_both] {
                let reply = server.send(Method::PATCH, &format!("{API}/rolesmapping"), patch);
                assert!(reply.is_ok_and(|r| r.status == 200));
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        readers
            .into_iter()
            .map(|r| r.join().map_err(|_| "a reader panicked"))
            .collect::<Result<Vec<_>, _>>()
            .map(|all| all.into_iter().flatten().collect::<Vec<_>>())
    })?;
    assert!(observed.len() > 10, "readers made requests");
    let mut states = std::collections::BTreeSet::new();
    for roles in &observed {
        let roles = roles.as_ref().map_err(|e| format!("a reader was not answered 200: {e}"))?;
        assert!(roles.is_empty() || roles == &["r1", "r2"], "half a change seen: {roles:?}");
        states.insert(roles.clone());
    }
    assert_eq!(states.len(), 2, "both the mapped and the unmapped state were seen: {states:?}");
    Ok(())
}

/// An installed extension's policy (reads `owned-*`) and one predefined role.
const OWNED: &str = r#"id = "owned"
version = "1.0.0"
component = "c.wasm"
capabilities = ["cluster", "scheduler"]

[[policy.index_permissions]]
index_patterns = ["owned-*"]
allowed_actions = ["indices:data/read/get"]

[[routes]]
method = "POST"
path = "/call"

[[roles]]
name = "owned_caller"
extension_permissions = ["extension:owned/call"]
"#;

fn install_over_rest(server: &Server, manifest: &str) -> Result<(), Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let component = std::fs::read(warden_test_artifacts::GUEST_HOST_CALLS)?;
    let body = json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(&component),
    });
    let reply = server.send(Method::POST, "/_warden/extensions", &body)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    Ok(())
}

/// The roles the extension lifecycle wrote (an installed extension's policy
/// role and predefined roles) come through a whole-configuration import
/// unchanged: imported back as exported is fine, left out they stay,
/// redefined (widened) or defined for a pending extension is refused naming
/// the role and the lifecycle — the service gate never sees a policy the
/// operator did not grant. The policy role stays unmappable on every path.
#[test]
fn an_import_cannot_rewrite_or_drop_an_installed_extensions_roles() -> TestResult {
    use std::collections::BTreeMap;
    const IMPORT: &str = "/_warden/security/_import";
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    install_over_rest(&server, OWNED)?;
    assert_eq!(server.request(Method::POST, "/_warden/extensions/owned/_approve", "")?.status, 200);
    install_over_rest(&server, &OWNED.replace("owned", "waiting"))?;
    let write = support::probe::as_user("PUT", "/owned-1/_doc/1", json!({"n": 1}));
    let write_through_the_extension = || -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let reply = server.send(Method::POST, "/_extensions/owned/call", &write)?;
        assert_eq!(reply.status, 200, "{reply:?}");
        Ok(reply.json())
    };
    support::probe::denied(&write_through_the_extension()?, "service", "owned-1");
    let roles_now = || -> Result<[String; 2], reqwest::Error> {
        Ok([
            server.get(&format!("{API}/roles/extension:owned"))?.body,
            server.get(&format!("{API}/roles/owned_caller"))?.body,
        ])
    };
    let before = roles_now()?;
    assert!(before[0].contains("owned-*") && before[1].contains("extension:owned/call"), "{before:?}");

    let export = server.get("/_warden/security/_export")?;
    assert_eq!(export.status, 200, "{export:?}");
    let files: BTreeMap<String, String> = serde_json::from_str(&export.body)?;
    let roles: serde_norway::Mapping = serde_norway::from_str(files.get("roles.yml").ok_or("no roles.yml")?)?;
    let import_roles = |roles: &serde_norway::Mapping| -> Result<support::Reply, Box<dyn std::error::Error>> {
        let mut files = files.clone();
        files.insert("roles.yml".into(), serde_norway::to_string(roles)?);
        Ok(server.send(Method::PUT, IMPORT, &serde_json::to_value(&files)?)?)
    };

    // Imported back as exported: accepted, nothing changes.
    let reply = import_roles(&roles)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(roles_now()?, before);

    // Widened policy, widened predefined role, a pending extension's policy
    // defined ahead of its approval: each refused naming the role.
    let mut widened = roles.clone();
    let policy = widened
        .get_mut("extension:owned")
        .and_then(|r| r.get_mut("index_permissions"))
        .and_then(|p| p.get_mut(0))
        .and_then(|p| p.get_mut("allowed_actions"))
        .and_then(|a| a.as_sequence_mut())
        .ok_or("no policy role exported")?;
    policy.push("indices:data/write/index".into());
    let mut caller_widened = roles.clone();
    let permissions = caller_widened
        .get_mut("owned_caller")
        .and_then(|r| r.get_mut("extension_permissions"))
        .and_then(|p| p.as_sequence_mut())
        .ok_or("no predefined role exported")?;
    permissions.push("extension:other/*".into());
    let mut ahead = roles.clone();
    let everything: serde_norway::Value = serde_norway::from_str(
        "cluster_permissions: [\"*\"]\nindex_permissions: [{index_patterns: [\"*\"], allowed_actions: [\"*\"]}]",
    )?;
    ahead.insert("extension:waiting".into(), everything);
    for (changed, role, extension) in [
        (widened, "extension:owned", "owned"),
        (caller_widened, "owned_caller", "owned"),
        (ahead, "extension:waiting", "waiting"),
    ] {
        let reply = import_roles(&changed)?;
        assert_eq!(reply.status, 403, "{role}: {reply:?}");
        let message = reply.message();
        assert!(message.contains(&format!("role `{role}`")), "{message}");
        assert!(message.contains("lifecycle owns it"), "{message}");
        assert!(message.contains(&format!("PUT /_warden/extensions/{extension}/grants")), "{message}");
    }
    assert_eq!(roles_now()?, before, "nothing of a refused import applied");
    assert_eq!(server.get(&format!("{API}/roles/extension:waiting"))?.status, 404);
    support::probe::denied(&write_through_the_extension()?, "service", "owned-1");

    // Left out (an import of OpenSearch's own files): they stay as they are.
    let mut without = roles.clone();
    without.remove("extension:owned");
    without.remove("owned_caller");
    let reply = import_roles(&without)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(roles_now()?, before);

    // The policy role is mapped to nobody, whatever path writes the mapping.
    let mut files_mapped = files.clone();
    let mapping = files_mapped.get("roles_mapping.yml").cloned().unwrap_or_default();
    files_mapped
        .insert("roles_mapping.yml".into(), format!("{mapping}\nextension:owned:\n  users: [admin]\n"));
    let reply = server.send(Method::PUT, IMPORT, &serde_json::to_value(&files_mapped)?)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(reply.message().contains("extension policies cannot be mapped"), "{reply:?}");
    let patch = json!([{"op": "add", "path": "/extension:owned", "value": {"users": ["admin"]}}]);
    let reply = server.send(Method::PATCH, &format!("{API}/rolesmapping"), &patch)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    let services = json!({"services_mappings": {"owned": {"users": ["*"]}}});
    let reply = server.send(Method::PUT, &format!("{API}/rolesmapping/extension:owned"), &services)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    let direct = json!({"password": "Dora-Password-1", "opendistro_security_roles": ["extension:owned"]});
    let reply = server.send(Method::PUT, &format!("{API}/internalusers/dora"), &direct)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(reply.message().contains("extension policies cannot be given to users"), "{reply:?}");
    assert_eq!(server.get(&format!("{API}/rolesmapping/extension:owned"))?.status, 404);
    support::probe::denied(&write_through_the_extension()?, "service", "owned-1");
    Ok(())
}
