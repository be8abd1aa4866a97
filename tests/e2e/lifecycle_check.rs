//! The missing-permission report end to end (`GET
//! /_warden/extensions/{id}/_check`, `warden ext check <id>`, the real
//! binary): a route whose declared action the policy lacks is listed, for
//! a pending extension (against the roles approval would write) and an
//! approved one (against the policy role as it is now); the policy role is
//! the lifecycle's (neither the roles API nor an import of the security
//! files widens it), and an extension whose policy covers its routes has
//! nothing listed; a user
//! mapped to a role that grants a route but not its index access is named
//! until given that access; non-admins and unknown ids are refused.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::GUEST_HOST_CALLS;

use crate::support::{API, Deployment, Error, Server, TestResult};

const CARL: (&str, &str) = ("carl", "Carl-Password-1");
const EXTENSIONS: &str = "/_warden/extensions";

/// The probe: its policy reads `probe-*`; `/search` reads there, `/record`
/// writes there (the policy lacks the write).
const PROBE: &str = r#"id = "probe"
version = "1.0.0"
component = "c.wasm"
capabilities = ["cluster", "scheduler"]

[[policy.index_permissions]]
index_patterns = ["probe-*"]
allowed_actions = ["indices:data/read/search"]

[[routes]]
method = "GET"
path = "/search"
cluster_actions = ["indices:data/read/search"]
index_patterns = ["probe-*"]

[[routes]]
method = "POST"
path = "/record"
cluster_actions = ["indices:data/write/index"]
index_patterns = ["probe-*"]

[[roles]]
name = "probe_user"
extension_permissions = ["extension:probe/search"]
"#;

fn start(deployment: &Deployment) -> Result<Server, String> {
    Server::start(&deployment.extensions_dir(), &deployment.data_dir(), &[])
}

fn check(server: &Server, id: &str) -> Result<Value, Error> {
    let reply = server.get(&format!("{EXTENSIONS}/{id}/_check"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json())
}

fn route<'a>(answer: &'a Value, path: &str) -> &'a Value {
    answer["report"]["routes"]
        .as_array()
        .and_then(|routes| routes.iter().find(|r| r["path"] == path))
        .unwrap_or(&Value::Null)
}

/// `warden ext check <id>` as admin: (success, stdout, stderr).
fn ext_check(server: &Server, id: &str) -> Result<(bool, String, String), Error> {
    crate::lifecycle::ext(server, &["check", id])
}

#[test]
fn check_lists_what_the_policy_lacks_and_an_import_cannot_widen_it() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let component = std::fs::read(GUEST_HOST_CALLS)?;
    let body = json!({
        "manifest": PROBE,
        "component": base64::engine::general_purpose::STANDARD.encode(&component),
    });
    let reply = server.send(Method::POST, EXTENSIONS, &body)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    // The install answer already says what approval would leave denied.
    assert_eq!(reply.json()["check_clean"], false, "{reply:?}");
    let said = reply.json()["check_text"].as_str().unwrap_or_default().to_owned();
    assert!(said.contains("indices:data/write/index"), "{said}");

    // Pending: checked against the policy approval would write.
    let answer = check(&server, "probe")?;
    assert_eq!(answer["report"]["policy_source"], "on_approval", "{answer}");
    assert_eq!(answer["clean"], false, "{answer}");
    assert_eq!(
        route(&answer, "/record")["policy_lacks"],
        json!([{"actions": ["indices:data/write/index"], "index_pattern": "probe-*", "checked_on": "probe-x"}]),
        "{answer}"
    );
    assert_eq!(route(&answer, "/search")["policy_lacks"], json!([]), "{answer}");
    let text = answer["report_text"].as_str().unwrap_or_default();
    assert!(text.contains("the policy does not allow indices:data/write/index on `probe-*`"), "{text}");

    // Approved: against the policy role as it is now; the same gap.
    let reply = server.request(Method::POST, &format!("{EXTENSIONS}/probe/_approve"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let answer = check(&server, "probe")?;
    assert_eq!(answer["report"]["policy_source"], "granted", "{answer}");
    assert_eq!(route(&answer, "/record")["policy_lacks"][0]["actions"], json!(["indices:data/write/index"]));
    let (ok, out, err) = ext_check(&server, "probe")?;
    assert!(ok, "{err}");
    assert!(out.contains("the policy does not allow indices:data/write/index on `probe-*`"), "{out}");

    // The policy role is the lifecycle's: the roles API refuses to widen
    // it, and so does an import of the security files (as securityadmin
    // would write them); the report still lists the gap.
    let widened = json!({"index_permissions": [{
        "index_patterns": ["probe-*"],
        "allowed_actions": ["indices:data/read/search", "indices:data/write/index"],
    }]});
    let reply = server.send(Method::PUT, &format!("{API}/roles/extension:probe"), &widened)?;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(route(&check(&server, "probe")?, "/record")["policy_lacks"][0]["index_pattern"], "probe-*");
    let export = server.get("/_warden/security/_export")?;
    assert_eq!(export.status, 200, "{export:?}");
    let mut files: std::collections::BTreeMap<String, String> = serde_json::from_str(&export.body)?;
    let roles = files.get("roles.yml").ok_or("no roles.yml exported")?;
    let mut roles: serde_norway::Mapping = serde_norway::from_str(roles)?;
    let policy = roles
        .get_mut("extension:probe")
        .and_then(|r| r.get_mut("index_permissions"))
        .and_then(|p| p.get_mut(0))
        .and_then(|p| p.get_mut("allowed_actions"))
        .and_then(|a| a.as_sequence_mut())
        .ok_or("no policy role exported")?;
    policy.push("indices:data/write/index".into());
    files.insert("roles.yml".into(), serde_norway::to_string(&roles)?);
    let reply = server.send(Method::PUT, "/_warden/security/_import", &serde_json::to_value(&files)?)?;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.message().contains("`extension:probe`"), "{reply:?}");
    assert_eq!(route(&check(&server, "probe")?, "/record")["policy_lacks"][0]["index_pattern"], "probe-*");

    // An extension whose policy allows what its routes do: nothing listed.
    let complete = PROBE.replace("probe", "complete").replace(
        "allowed_actions = [\"indices:data/read/search\"]",
        "allowed_actions = [\"indices:data/read/search\", \"indices:data/write/index\"]",
    );
    let body = json!({
        "manifest": complete,
        "component": base64::engine::general_purpose::STANDARD.encode(&component),
    });
    assert_eq!(server.send(Method::POST, EXTENSIONS, &body)?.status, 201);
    let reply = server.request(Method::POST, &format!("{EXTENSIONS}/complete/_approve"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let answer = check(&server, "complete")?;
    assert_eq!(route(&answer, "/record")["policy_lacks"], json!([]), "{answer}");
    assert_eq!(answer["clean"], true, "{answer}");
    let (ok, out, err) = ext_check(&server, "complete")?;
    assert!(ok, "{err}");
    assert!(out.contains("Nothing the extension declares is missing."), "{out}");
    assert!(!out.contains("does not allow"), "{out}");
    Ok(())
}

#[test]
fn check_names_callers_who_may_call_a_route_but_lack_what_it_does() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let component = std::fs::read(GUEST_HOST_CALLS)?;
    let body = json!({
        "manifest": PROBE,
        "component": base64::engine::general_purpose::STANDARD.encode(&component),
    });
    assert_eq!(server.send(Method::POST, EXTENSIONS, &body)?.status, 201);
    assert_eq!(server.request(Method::POST, &format!("{EXTENSIONS}/probe/_approve"), "")?.status, 200);
    let reply =
        server.send(Method::PUT, &format!("{API}/internalusers/carl"), &json!({"password": CARL.1}))?;
    assert_eq!(reply.status, 201, "{reply:?}");

    // Nobody is mapped to the route's role yet: no caller lacks anything.
    assert_eq!(route(&check(&server, "probe")?, "/search")["callers_lacking"], json!([]));

    // carl may call /search (probe_user) but cannot read probe-*.
    let reply =
        server.send(Method::PUT, &format!("{API}/rolesmapping/probe_user"), &json!({"users": ["carl"]}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let answer = check(&server, "probe")?;
    assert_eq!(
        route(&answer, "/search")["callers_lacking"],
        json!([{
            "role": "probe_user",
            "via": {"kind": "user", "name": "carl"},
            "lacks": [{"actions": ["indices:data/read/search"], "index_pattern": "probe-*", "checked_on": "probe-x"}],
        }]),
        "{answer}"
    );
    let text = answer["report_text"].as_str().unwrap_or_default();
    assert!(
        text.contains("role `probe_user` (mapped to user `carl`) may call the route but lacks:"),
        "{text}"
    );

    // Given read on probe-* through another role, carl is no longer named.
    let reader = json!({"index_permissions": [{"index_patterns": ["probe-*"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/probe_reader"), &reader)?.status, 201);
    let reply =
        server.send(Method::PUT, &format!("{API}/rolesmapping/probe_reader"), &json!({"users": ["carl"]}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(route(&check(&server, "probe")?, "/search")["callers_lacking"], json!([]));

    // Misuse: a non-admin is refused the report, an unknown id is a 404.
    let path = format!("{EXTENSIONS}/probe/_check");
    let reply = server.get_as(CARL.0, CARL.1, &path)?;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.reason().contains("restapi:admin/extensions"), "{reply:?}");
    let reply = server.get(&format!("{EXTENSIONS}/nosuch/_check"))?;
    assert_eq!(reply.status, 404, "{reply:?}");
    let (ok, _, err) = ext_check(&server, "nosuch")?;
    assert!(!ok && err.contains("nosuch"), "{err}");
    Ok(())
}

/// A job of the extension whose owner (resolved as a run resolves them)
/// does not hold what the job type does is named, with its id, its owner
/// and the missing action, until the owner is given it.
#[test]
fn check_names_jobs_whose_owner_lacks_what_the_job_type_does() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let component = std::fs::read(GUEST_HOST_CALLS)?;
    let manifest = format!(
        "{PROBE}\n[[jobs]]\nname = \"sweep\"\ncluster_actions = [\"indices:data/read/search\"]\n\
         index_patterns = [\"probe-*\"]\n"
    );
    let body = json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(&component),
    });
    assert_eq!(server.send(Method::POST, EXTENSIONS, &body)?.status, 201);
    assert_eq!(server.request(Method::POST, &format!("{EXTENSIONS}/probe/_approve"), "")?.status, 200);
    // carl may use the extension and consents to its jobs, but reads nothing.
    let scheduler = json!({"extension_permissions": ["extension:probe/*", "schedule:probe"]});
    for (path, body) in [
        (format!("{API}/internalusers/carl"), json!({"password": CARL.1})),
        (format!("{API}/roles/probe_scheduler"), scheduler),
        (format!("{API}/rolesmapping/probe_scheduler"), json!({"users": ["carl"]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    let spec = json!({"name": "sweep-1", "schedule": {"interval": 3600}, "params": {}});
    let mut ids = Vec::new();
    for (user, password) in [CARL, ("admin", crate::support::ADMIN_PASSWORD)] {
        assert_eq!(server.consent(user, password, "probe")?.status, 201);
        let reply = server.send_as(user, password, Method::POST, "/_extensions/probe/schedule", &spec)?;
        assert_eq!(reply.status, 200, "{reply:?}");
        ids.push(reply.json()["id"].as_str().ok_or("no job id")?.to_owned());
    }

    // carl's job is named; the admin's (all_access) is not.
    let answer = check(&server, "probe")?;
    let sweep = &answer["report"]["jobs"][0];
    assert_eq!(sweep["name"], "sweep", "{answer}");
    assert_eq!(sweep["policy_lacks"], json!([]), "{answer}");
    assert_eq!(
        sweep["owners_lacking"],
        json!([{
            "job_id": ids[0],
            "job_name": "sweep-1",
            "owner": "carl",
            "lacks": [{"actions": ["indices:data/read/search"], "index_pattern": "probe-*", "checked_on": "probe-x"}],
        }]),
        "{answer}"
    );
    let text = answer["report_text"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("job `{}` (sweep-1) of user `carl` lacks:", ids[0])), "{text}");
    assert!(!text.contains(&ids[1]), "{text}");

    // Given read on probe-*, carl's job is no longer named.
    let reader = json!({"index_permissions": [{"index_patterns": ["probe-*"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/probe_reader"), &reader)?.status, 201);
    let reply =
        server.send(Method::PUT, &format!("{API}/rolesmapping/probe_reader"), &json!({"users": ["carl"]}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(check(&server, "probe")?["report"]["jobs"][0]["owners_lacking"], json!([]));
    Ok(())
}
