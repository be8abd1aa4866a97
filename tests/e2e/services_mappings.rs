//! `services_mappings` (seed 003) through the real binary: a role mapping
//! that maps extension `probe` + some users to a role widens `probe`'s
//! policy at the service gate for those users only — never the users' own
//! roles (the user gate), never `probe`'s calls `as service`, never another
//! extension. The audit names the policy each decision was made with; the
//! REST API, PATCH and the whole-config export/import carry the mappings;
//! bad input is refused with the problem named and nothing changed.

use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::GUEST_HOST_CALLS;

use crate::support::probe::{as_service, as_user, denied, ok};
use crate::support::{self, API, Deployment, Server, TestResult};

type Who = (&'static str, &'static str);
const ANA: Who = ("ana", "Ana-Password-1");
const BOB: Who = ("bob", "Bob-Password-1");
/// Mapped by backend role (`auditors-eu` matches `auditors-*`).
const CAROL: Who = ("carol", "Carol-Password-1");

const EXPORT: &str = "/_warden/security/_export";
const IMPORT: &str = "/_warden/security/_import";

/// `probe` and `other` (the same cluster-calling guest), each with a
/// policy on `shared-*`; `reports_writer` (on `reports-*` and `secret-*`)
/// is mapped to `probe` for ana and backend roles `auditors-*`; every user
/// may call both extensions and holds `reports-*` themselves, not `secret-*`.
/// Every category is audited, granted calls included.
fn setup() -> Result<(Deployment, Server), Box<dyn std::error::Error>> {
    let deployment = Deployment::new()?;
    deployment.install("probe", GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
    deployment.install("other", GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
    let mut command = support::warden();
    command.env("WARDEN_AUDIT_DISABLED_CATEGORIES", "");
    let server = Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])?;
    let policy = json!({
        "index_permissions": [{"index_patterns": ["shared-*"], "allowed_actions": ["crud", "create_index"]}]
    });
    let writer = json!({
        "index_permissions": [{"index_patterns": ["reports-*", "secret-*"], "allowed_actions": ["crud", "create_index"]}]
    });
    let analyst = json!({
        "extension_permissions": ["extension:probe/*", "extension:other/*"],
        "index_permissions": [{"index_patterns": ["shared-*", "reports-*"], "allowed_actions": ["crud", "create_index"]}]
    });
    for (path, body) in [
        (format!("{API}/roles/extension:probe"), policy.clone()),
        (format!("{API}/roles/extension:other"), policy),
        (format!("{API}/roles/reports_writer"), writer),
        (format!("{API}/roles/analyst"), analyst),
        (format!("{API}/internalusers/ana"), json!({"password": ANA.1})),
        (format!("{API}/internalusers/bob"), json!({"password": BOB.1})),
        (
            format!("{API}/internalusers/carol"),
            json!({"password": CAROL.1, "backend_roles": ["auditors-eu"]}),
        ),
        (format!("{API}/rolesmapping/analyst"), json!({"users": ["ana", "bob", "carol"]})),
        (
            format!("{API}/rolesmapping/reports_writer"),
            json!({"services_mappings": {"probe": {"users": ["ana"], "backend_roles": ["auditors-*"]}}}),
        ),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    Ok((deployment, server))
}

/// One cluster call made by extension `extension` for `who`.
fn call(
    server: &Server,
    extension: &str,
    who: Who,
    spec: Value,
) -> Result<Value, Box<dyn std::error::Error>> {
    let path = format!("/_extensions/{extension}/call");
    let reply = server.send_as(who.0, who.1, Method::POST, &path, &spec)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json())
}

fn audit(server: &Server, query: &str) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let reply = server.get(&format!("/_warden/audit?{query}"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json()["events"].as_array().cloned().unwrap_or_default())
}

/// The mapped users' calls pass the service gate, the others' are refused
/// there (and audited so); the user gate, `as service` and the other
/// extension are untouched.
#[test]
fn a_mapping_lets_one_users_calls_through_the_service_gate() -> TestResult {
    let (_deployment, server) = setup()?;
    let write = |n: u64| as_user("PUT", &format!("/reports-q3/_doc/{n}"), json!({"n": n}));

    // Mapped by name and by backend role pattern: through both gates.
    ok(&call(&server, "probe", ANA, write(1))?, 201);
    ok(&call(&server, "probe", CAROL, write(2))?, 201);
    // Not mapped: the service gate says no, whatever bob's own roles allow.
    denied(&call(&server, "probe", BOB, write(3))?, "service", "reports-q3");
    // The policy itself still holds for everyone.
    ok(&call(&server, "probe", BOB, as_user("PUT", "/shared-1/_doc/1", json!({})))?, 201);
    // Another extension is not widened by probe's mapping.
    denied(&call(&server, "other", ANA, write(4))?, "service", "reports-q3");
    // Calls as the service identity are not widened either.
    denied(
        &call(&server, "probe", ANA, as_service("PUT", "/reports-q3/_doc/5", json!({})))?,
        "service-account",
        "reports-q3",
    );
    // Nothing of the refused calls was written.
    for n in [3, 4, 5] {
        let got = call(&server, "probe", ANA, as_user("GET", &format!("/reports-q3/_doc/{n}"), Value::Null))?;
        ok(&got, 404);
    }

    // The user gate is not widened: the mapped role reaches `secret-*`,
    // ana does not — through the extension (the service gate allows, the
    // user gate refuses) nor on her own.
    let secret = call(&server, "probe", ANA, as_user("PUT", "/secret-1/_doc/1", json!({})))?;
    denied(&secret, "user", "secret-1");
    assert!(secret["message"].as_str().unwrap_or_default().contains("service gate: allowed"), "{secret}");
    let own = server.send_as(ANA.0, ANA.1, Method::PUT, "/secret-1/_doc/1", &json!({}))?;
    assert_eq!(own.status, 403, "{own:?}");
    let info = server.get_as(ANA.0, ANA.1, "/_plugins/_security/authinfo")?.json();
    assert_eq!(info["roles"], json!(["analyst"]), "{info}");

    // The audit names the policy the service gate decided with.
    let bob_denied = audit(&server, "category=MISSING_PRIVILEGES&extension=probe&user=bob")?;
    let event = bob_denied.first().ok_or("bob's denial is not audited")?;
    assert_eq!(event["gate"], "service", "{event}");
    assert_eq!(event["policy"], "extension:probe", "{event}");
    assert_eq!(event["indices"], json!(["reports-q3"]), "{event}");
    let ana_granted = audit(&server, "category=GRANTED_PRIVILEGES&extension=probe&user=ana")?;
    assert!(
        ana_granted.iter().any(|e| e["policy"] == "extension:probe + reports_writer"
            && e["action"] == "indices:data/write/index"
            && e["indices"] == json!(["reports-q3"])),
        "{ana_granted:?}"
    );
    let carol_granted = audit(&server, "category=GRANTED_PRIVILEGES&extension=probe&user=carol")?;
    assert!(
        carol_granted.iter().any(|e| e["policy"] == "extension:probe + reports_writer"),
        "{carol_granted:?}"
    );
    let ana_refused = audit(&server, "category=MISSING_PRIVILEGES&extension=probe&user=ana")?;
    let by_gate = |gate: &str| ana_refused.iter().find(|e| e["gate"] == gate).cloned().unwrap_or_default();
    assert_eq!(by_gate("user")["policy"], "extension:probe + reports_writer", "{ana_refused:?}");
    // As service: the service account's gate, no policy.
    assert!(by_gate("service-account")["policy"].is_null(), "{ana_refused:?}");
    let other = audit(&server, "category=MISSING_PRIVILEGES&extension=other&user=ana")?;
    assert_eq!(other.first().map(|e| e["policy"].clone()), Some(json!("extension:other")), "{other:?}");
    Ok(())
}

/// The REST resource shows and patches the mappings; export → import
/// keeps them and their effect; every bad input is refused naming the
/// problem, and nothing changes (re-read).
#[test]
fn mappings_round_trip_and_bad_input_changes_nothing() -> TestResult {
    let (_deployment, server) = setup()?;
    let mapping_path = format!("{API}/rolesmapping/reports_writer");
    let shown = server.get(&mapping_path)?.json();
    assert_eq!(
        shown["reports_writer"]["services_mappings"],
        json!({"probe": {"users": ["ana"], "backend_roles": ["auditors-*"]}}),
        "{shown}"
    );

    // Export → import → export: the same files, the same effect.
    let exported = server.get(EXPORT)?;
    assert_eq!(exported.status, 200, "{exported:?}");
    let files = exported.json();
    let mapping_file = files["roles_mapping.yml"].as_str().unwrap_or_default();
    assert!(
        mapping_file.contains("services_mappings:") && mapping_file.contains("auditors-*"),
        "{mapping_file}"
    );
    let imported = server.send(Method::PUT, IMPORT, &files)?;
    assert_eq!(imported.status, 200, "{imported:?}");
    assert_eq!(server.get(EXPORT)?.json(), files, "the import changed nothing");
    let write = |n: u64| as_user("PUT", &format!("/reports-q4/_doc/{n}"), json!({"n": n}));
    ok(&call(&server, "probe", ANA, write(1))?, 201);
    denied(&call(&server, "probe", BOB, write(2))?, "service", "reports-q4");

    // Bad input: refused, the problem named, nothing changed.
    let mappings_before = server.get(&format!("{API}/rolesmapping"))?.json();
    let unchanged = |what: &str| -> TestResult {
        assert_eq!(server.get(&format!("{API}/rolesmapping"))?.json(), mappings_before, "{what}");
        assert_eq!(server.get(EXPORT)?.json(), files, "{what}");
        Ok(())
    };
    let with_entry = |entry: Value| json!({"services_mappings": {"probe": entry}});
    let cases: Vec<(&str, Method, String, Value, &str)> = vec![
        (
            "a mapping of a role that does not exist",
            Method::PUT,
            format!("{API}/rolesmapping/ghost"),
            with_entry(json!({"users": ["bob"]})),
            "role `ghost` does not exist",
        ),
        (
            "a pattern that does not parse",
            Method::PUT,
            mapping_path.clone(),
            with_entry(json!({"users": ["/[/"]})),
            "services_mappings.probe.users",
        ),
        (
            "an unknown key in an entry",
            Method::PUT,
            mapping_path.clone(),
            with_entry(json!({"users": ["bob"], "hosts": ["*"]})),
            "unknown field `hosts`",
        ),
        (
            "an unknown key beside it",
            Method::PUT,
            mapping_path.clone(),
            json!({"service_mappings": {"probe": {"users": ["bob"]}}}),
            "unknown field `service_mappings`",
        ),
        (
            "a key that is no extension id",
            Method::PUT,
            mapping_path.clone(),
            json!({"services_mappings": {"Probe!": {"users": ["bob"]}}}),
            "is not an extension id",
        ),
        (
            "another extension's policy as the mapped role",
            Method::PUT,
            format!("{API}/rolesmapping/extension:other"),
            with_entry(json!({"users": ["*"]})),
            "extension policies cannot be mapped",
        ),
        (
            "a patch to a bad pattern",
            Method::PATCH,
            mapping_path.clone(),
            json!([{"op": "add", "path": "/services_mappings/probe/backend_roles/-", "value": "/(/"}]),
            "services_mappings.probe.backend_roles",
        ),
        (
            "deleting the role a services mapping names",
            Method::DELETE,
            format!("{API}/roles/reports_writer"),
            Value::Null,
            "role `reports_writer`, which does not exist",
        ),
    ];
    for (what, method, path, body, mentions) in cases {
        let reply = server.send(method, &path, &body)?;
        assert_eq!(reply.status, 400, "{what}: {reply:?}");
        assert!(reply.message().contains(mentions), "{what}: {mentions}: {reply:?}");
        unchanged(what)?;
    }
    // The same through the whole-config import: an unknown role, an unknown key.
    for (what, yaml, mentions) in [
        (
            "import: unknown role",
            "ghost:\n  services_mappings:\n    probe:\n      users: [bob]\n",
            "role `ghost`, which does not exist",
        ),
        (
            "import: unknown key",
            "readall:\n  services_mappings:\n    probe:\n      roles: [x]\n",
            "unknown field `roles`",
        ),
    ] {
        let mut bad = files.clone();
        let text = format!("{mapping_file}{yaml}");
        bad["roles_mapping.yml"] = json!(text);
        let reply = server.send(Method::PUT, IMPORT, &bad)?;
        assert_eq!(reply.status, 400, "{what}: {reply:?}");
        assert!(reply.message().contains(mentions), "{what}: {mentions}: {reply:?}");
        unchanged(what)?;
    }
    denied(&call(&server, "probe", BOB, write(3))?, "service", "reports-q4");

    // A good patch applies at once: bob is mapped now.
    let patch = json!([{"op": "add", "path": "/services_mappings/probe/users/-", "value": "bob"}]);
    let patched = server.send(Method::PATCH, &mapping_path, &patch)?;
    assert_eq!(patched.status, 200, "{patched:?}");
    ok(&call(&server, "probe", BOB, write(4))?, 201);
    Ok(())
}
