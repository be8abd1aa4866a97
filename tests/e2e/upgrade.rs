//! Upgrading an installed extension end to end (the real binary):
//! installing a new version of an approved id shows the permission delta
//! against what is *granted* now; a version that only narrows applies at
//! once, one that widens waits (stored, surviving a restart) while the old
//! version serves, and applies on approval; the swap needs no restart and
//! an invocation under way finishes on the old version; a refused upgrade
//! changes nothing; `_diff` and `warden ext diff` preview without writing.

use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::{GUEST_HOST_CALLS, GUEST_SLEEPER, HELLO_WORLD};

use crate::lifecycle::{EXTENSIONS, audit, ext, install, install_body, start};
use crate::support::{API, Deployment, Server, TestResult};

const CARL: (&str, &str) = ("carl", "Carl-Password-1");

/// hello-world as `greeter` at `version`, with `body` appended (capabilities,
/// policy, more roles), its route and a predefined role granting it.
fn greeter(version: &str, capabilities: &str, body: &str) -> String {
    format!(
        r#"id = "greeter"
version = "{version}"
component = "c.wasm"
capabilities = [{capabilities}]
{body}
[[routes]]
method = "GET"
path = "/greet/{{name}}"
"#
    )
}

const GREETER_ROLE: &str = r#"
[[roles]]
name = "greeter_user"
extension_permissions = ["extension:greeter/greet"]
"#;

const HEALTH_POLICY: &str = r#"
[policy]
cluster_permissions = ["cluster:monitor/health"]
"#;

fn show(server: &Server, id: &str) -> Result<Value, crate::support::Error> {
    let reply = server.get(&format!("{EXTENSIONS}/{id}"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json())
}

fn approve(server: &Server, id: &str) -> Result<crate::support::Reply, crate::support::Error> {
    Ok(server.request(Method::POST, &format!("{EXTENSIONS}/{id}/_approve"), "")?)
}

fn carl_greets(server: &Server) -> Result<u16, crate::support::Error> {
    Ok(server.send_as(CARL.0, CARL.1, Method::GET, "/_extensions/greeter/greet/carl", &Value::Null)?.status)
}

/// Installs and approves greeter v1 (its predefined role mapped to carl).
fn greeter_v1(server: &Server, manifest: &str) -> TestResult {
    let hello = std::fs::read(HELLO_WORLD)?;
    let reply =
        server.send(Method::PUT, &format!("{API}/internalusers/carl"), &json!({"password": CARL.1}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(install(server, manifest, &hello)?.status, 201);
    assert_eq!(approve(server, "greeter")?.status, 200);
    let reply =
        server.send(Method::PUT, &format!("{API}/rolesmapping/greeter_user"), &json!({"users": ["carl"]}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(carl_greets(server)?, 200);
    Ok(())
}

#[test]
fn a_widening_upgrade_waits_while_v1_serves_and_a_narrowing_one_applies_at_once() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    greeter_v1(&server, &greeter("1.0.0", "", GREETER_ROLE))?;

    // v2 asks for the cluster and a policy: a preview first, writing nothing.
    let v2 = greeter("2.0.0", "\"cluster\"", &format!("{HEALTH_POLICY}{GREETER_ROLE}"));
    let reply = server.send(Method::POST, &format!("{EXTENSIONS}/_diff"), &install_body(&v2, &hello))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let preview = reply.json();
    assert_eq!(preview["installed_version"], "1.0.0", "{preview}");
    assert_eq!(preview["applies_at_once"], false, "{preview}");
    let text = preview["delta_text"].as_str().unwrap_or_default();
    assert!(text.contains("+ cluster") && text.contains("cluster:monitor/health"), "{text}");
    assert!(show(&server, "greeter")?["upgrade"].is_null());

    // Installed: it waits; v1 serves, with v1's roles and no account.
    let reply = install(&server, &v2, &hello)?;
    assert_eq!(reply.status, 202, "{reply:?}");
    let record = show(&server, "greeter")?;
    assert_eq!((record["version"].as_str(), record["serving"].as_bool()), (Some("1.0.0"), Some(true)));
    assert_eq!(record["upgrade"]["version"], "2.0.0", "{record}");
    let waiting = record["upgrade"]["delta_text"].as_str().unwrap_or_default();
    assert!(waiting.contains("+ cluster"), "{record}");
    assert_eq!(carl_greets(&server)?, 200);
    let policy = server.get(&format!("{API}/roles/extension:greeter"))?.json();
    assert_eq!(policy["extension:greeter"]["cluster_permissions"], json!([]), "{policy}");
    assert_eq!(server.get(&format!("{API}/internalusers/service:greeter"))?.status, 404);
    let events = audit(&server, "EXTENSION_UPGRADE")?;
    assert!(
        events.iter().any(|e| e["user"] == "admin"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("waits for approval") && r.contains("+cluster"))),
        "{events:?}"
    );

    // A restart keeps both: v1 serving, v2 waiting.
    drop(server.stop());
    let server = start(&deployment)?;
    let record = show(&server, "greeter")?;
    assert_eq!(
        (record["version"].as_str(), record["upgrade"]["version"].as_str()),
        (Some("1.0.0"), Some("2.0.0"))
    );
    assert_eq!(carl_greets(&server)?, 200);

    // Approved: v2 serves with v2's policy and an account; carl's mapping
    // of the role v2 still brings is kept.
    let reply = approve(&server, "greeter")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let record = reply.json();
    assert_eq!(record["version"], "2.0.0", "{record}");
    assert_eq!(record["previous_version"], "1.0.0", "{record}");
    assert!(record["upgrade"].is_null(), "{record}");
    let policy = server.get(&format!("{API}/roles/extension:greeter"))?.json();
    assert_eq!(
        policy["extension:greeter"]["cluster_permissions"],
        json!(["cluster:monitor/health"]),
        "{policy}"
    );
    assert_eq!(server.get(&format!("{API}/internalusers/service:greeter"))?.status, 200);
    assert_eq!(carl_greets(&server)?, 200);
    let events = audit(&server, "EXTENSION_UPGRADE")?;
    assert!(
        events.iter().any(|e| e["reason"].as_str().is_some_and(|r| r.contains("applied on approval"))),
        "{events:?}"
    );
    // Nothing waits now: approving again is refused, discarding too.
    assert_eq!(approve(&server, "greeter")?.status, 409);
    let reply = server.request(Method::DELETE, &format!("{EXTENSIONS}/greeter/upgrade"), "")?;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.reason().contains("no upgrade waiting"), "{reply:?}");

    // v3 drops the cluster, the policy and the role: it only narrows, so it
    // applies at once; the role and its mapping go, and the account.
    let reply = install(&server, &greeter("3.0.0", "", ""), &hello)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let record = reply.json();
    assert_eq!(
        (record["version"].as_str(), record["upgraded"]["from"].as_str()),
        (Some("3.0.0"), Some("2.0.0"))
    );
    let delta = record["upgraded"]["delta_text"].as_str().unwrap_or_default();
    assert!(delta.contains("- cluster") && delta.contains("- greeter_user"), "{delta}");
    assert_eq!(server.get(&format!("{API}/roles/greeter_user"))?.status, 404);
    assert_eq!(server.get(&format!("{API}/rolesmapping/greeter_user"))?.status, 404);
    assert_eq!(server.get(&format!("{API}/internalusers/service:greeter"))?.status, 404);
    let policy = server.get(&format!("{API}/roles/extension:greeter"))?.json();
    assert_eq!(policy["extension:greeter"]["cluster_permissions"], json!([]), "{policy}");
    assert_eq!(carl_greets(&server)?, 403);
    assert_eq!(server.get("/_extensions/greeter/greet/ana")?.status, 200);
    Ok(())
}

/// The delta is against what the operator *granted*, not what the old
/// manifest asked: a capability the operator took away counts as added.
#[test]
fn the_delta_is_against_the_grants_not_the_old_manifest() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    greeter_v1(&server, &greeter("1.0.0", "\"cluster\"", &format!("{HEALTH_POLICY}{GREETER_ROLE}")))?;
    let narrowed = json!({"capabilities": [], "policy": {}});
    let reply = server.send(Method::PUT, &format!("{EXTENSIONS}/greeter/grants"), &narrowed)?;
    assert_eq!(reply.status, 200, "{reply:?}");

    // The same request under a new version number: it would give back what
    // the operator took, so it waits.
    let same = greeter("1.0.1", "\"cluster\"", &format!("{HEALTH_POLICY}{GREETER_ROLE}"));
    let reply = install(&server, &same, &hello)?;
    assert_eq!(reply.status, 202, "{reply:?}");
    let delta = reply.json()["upgrade"]["delta_text"].as_str().unwrap_or_default().to_owned();
    assert!(delta.contains("+ cluster") && delta.contains("+ cluster:monitor/health"), "{delta}");
    let record = show(&server, "greeter")?;
    assert_eq!(record["granted"]["capabilities"], json!([]), "{record}");
    assert_eq!(record["version"], "1.0.0");
    Ok(())
}

/// A request sleeping in v1 when v2 is swapped in finishes on v1; the next
/// request gets v2.
#[test]
fn an_invocation_under_way_finishes_on_the_old_version() -> TestResult {
    let deployment = Deployment::new()?;
    let server = std::sync::Arc::new(start(&deployment)?);
    let sleeper = std::fs::read(GUEST_SLEEPER)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    let manifest = |v: &str| {
        format!("id = \"nap\"\nversion = \"{v}\"\ncomponent = \"c.wasm\"\n[limits]\ntimeout_ms = 10000\n")
    };
    assert_eq!(install(&server, &manifest("1"), &sleeper)?.status, 201);
    assert_eq!(approve(&server, "nap")?.status, 200);

    let slow = {
        let server = server.clone();
        std::thread::spawn(move || server.get("/_extensions/nap/sleep?ms=1500").map(|r| (r.status, r.body)))
    };
    std::thread::sleep(std::time::Duration::from_millis(400));
    // v2 (another component, asking nothing more): applied at once.
    let reply = install(&server, &manifest("2"), &hello)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = server.get("/_extensions/nap/greet/ana")?;
    assert_eq!((reply.status, reply.body.as_str()), (200, r#"{"greeting":"Hello, ana!"}"#));
    assert_eq!(server.get("/_extensions/nap/sleep?ms=1")?.status, 404);
    let (status, body) = slow.join().map_err(|_| "the slow request panicked")??;
    assert_eq!((status, body.as_str()), (200, "slept 1500 ms"));
    Ok(())
}

/// A refused upgrade — an import its manifest does not request, a role
/// name someone else holds, the same thing again, a caller without the
/// permission — leaves v1 serving and the record, roles and audit as
/// they say.
#[test]
fn a_refused_upgrade_changes_nothing() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    let v1 = greeter("1.0.0", "", GREETER_ROLE);
    greeter_v1(&server, &v1)?;
    let before = show(&server, "greeter")?;

    // A component importing the cluster and the scheduler, not requested.
    let probe = std::fs::read(GUEST_HOST_CALLS)?;
    let reply = install(&server, &greeter("2.0.0", "", GREETER_ROLE), &probe)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(reply.reason().contains("warden:extension/cluster"), "{reply:?}");
    let events = audit(&server, "EXTENSION_UPGRADE")?;
    assert!(
        events.iter().any(|e| e["reason"].as_str().is_some_and(|r| r.contains("warden:extension/cluster"))),
        "{events:?}"
    );
    // A predefined role named like an operator's role.
    let theirs = json!({"cluster_permissions": ["cluster:monitor/health"]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/greeter_ops"), &theirs)?.status, 201);
    let clash = greeter(
        "2.0.0",
        "",
        &format!("{GREETER_ROLE}\n[[roles]]\nname = \"greeter_ops\"\nextension_permissions = []\n"),
    );
    let reply = install(&server, &clash, &hello)?;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.reason().contains("greeter_ops"), "{reply:?}");
    // The same manifest and component again.
    let reply = install(&server, &v1, &hello)?;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.reason().contains("nothing to upgrade"), "{reply:?}");
    // Someone who may not manage extensions: neither upgrade nor preview.
    for path in [EXTENSIONS.to_owned(), format!("{EXTENSIONS}/_diff")] {
        let reply = server.send_as(CARL.0, CARL.1, Method::POST, &path, &install_body(&v1, &hello))?;
        assert_eq!(reply.status, 403, "{path}: {reply:?}");
    }

    let after = show(&server, "greeter")?;
    assert_eq!(after, before);
    let role = server.get(&format!("{API}/roles/greeter_ops"))?.json();
    assert_eq!(role["greeter_ops"]["cluster_permissions"], json!(["cluster:monitor/health"]), "{role}");
    assert_eq!(carl_greets(&server)?, 200);
    Ok(())
}

#[test]
fn the_cli_previews_and_upgrades() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let source = tempfile::tempdir()?;
    std::fs::copy(HELLO_WORLD, source.path().join("c.wasm"))?;
    let dir = source.path().to_str().ok_or("path")?;
    std::fs::write(source.path().join("extension.toml"), greeter("1.0.0", "", ""))?;
    let (ok, out, err) = ext(&server, &["install", dir, "--yes"])?;
    assert!(ok && out.contains("approved"), "{out}{err}");

    std::fs::write(source.path().join("extension.toml"), greeter("2.0.0", "\"cluster\"", HEALTH_POLICY))?;
    let (ok, out, err) = ext(&server, &["diff", dir])?;
    assert!(ok, "{err}");
    assert!(out.contains("installed version 1.0.0, new version 2.0.0"), "{out}");
    assert!(out.contains("needs approval") && out.contains("+ cluster:monitor/health"), "{out}");
    assert_eq!(show(&server, "greeter")?["version"], "1.0.0");

    // Not at a terminal, without --yes: it waits, the delta shown.
    let (ok, out, err) = ext(&server, &["install", dir])?;
    assert!(ok, "{err}");
    assert!(out.contains("+ cluster") && out.contains("warden ext approve greeter"), "{out}");
    assert_eq!(show(&server, "greeter")?["version"], "1.0.0");
    let (ok, out, err) = ext(&server, &["approve", "greeter"])?;
    assert!(ok && out.contains("version 2.0.0"), "{out}{err}");
    assert_eq!(show(&server, "greeter")?["version"], "2.0.0");

    // A waiting upgrade the operator refuses: discarded, the serving one stays.
    std::fs::write(
        source.path().join("extension.toml"),
        greeter("2.1.0", "\"cluster\", \"scheduler\"", HEALTH_POLICY),
    )?;
    let (ok, out, err) = ext(&server, &["install", dir])?;
    assert!(ok && out.contains("+ scheduler"), "{out}{err}");
    let (ok, out, err) = ext(&server, &["discard", "greeter"])?;
    assert!(ok && out.contains("discarded version 2.1.0; version 2.0.0 serves"), "{out}{err}");
    let record = show(&server, "greeter")?;
    assert!(record["upgrade"].is_null() && record["version"] == "2.0.0", "{record}");
    let events = audit(&server, "EXTENSION_UPGRADE")?;
    assert!(events.iter().any(|e| e["reason"] == "version 2.1.0: discarded, not applied"), "{events:?}");

    // Narrowing back applies without asking.
    std::fs::write(source.path().join("extension.toml"), greeter("3.0.0", "", ""))?;
    let (ok, out, err) = ext(&server, &["install", dir])?;
    assert!(ok && out.contains("upgraded from version 2.0.0 to 3.0.0"), "{out}{err}");
    Ok(())
}

/// Raising a resource limit is a widening: it waits for approval, while
/// lowering one applies at once.
#[test]
fn raising_a_limit_waits_for_approval() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    let with_limits =
        |version: &str, limits: &str| format!("{}\n[limits]\n{limits}\n", greeter(version, "", ""));
    assert_eq!(install(&server, &with_limits("1.0.0", "max_concurrency = 4"), &hello)?.status, 201);
    assert_eq!(approve(&server, "greeter")?.status, 200);
    let raised = with_limits("1.1.0", "max_concurrency = 90\nmemory_mib = 512");
    let reply = install(&server, &raised, &hello)?;
    assert_eq!(reply.status, 202, "{reply:?}");
    let delta = reply.json()["upgrade"]["delta_text"].as_str().unwrap_or_default().to_owned();
    assert!(
        delta.contains("+ max_concurrency: 4 -> 90") && delta.contains("+ memory_mib: host default -> 512"),
        "{delta}"
    );
    let health = server.get("/_warden/health")?.json().to_string();
    assert!(health.contains("\"max_concurrency\":4"), "{health}");
    assert_eq!(server.request(Method::DELETE, &format!("{EXTENSIONS}/greeter/upgrade"), "")?.status, 200);
    let lowered = with_limits("1.2.0", "max_concurrency = 2");
    let reply = install(&server, &lowered, &hello)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let delta = reply.json()["upgraded"]["delta_text"].as_str().unwrap_or_default().to_owned();
    assert!(delta.contains("- max_concurrency: 4 -> 2"), "{delta}");
    Ok(())
}

/// Approval approves what was reviewed: with the review digest the
/// operator saw, an upgrade replaced meanwhile is not approved.
#[test]
fn approval_names_what_was_reviewed() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    greeter_v1(&server, &greeter("1.0.0", "", GREETER_ROLE))?;
    let reviewed = greeter("2.0.0", "\"cluster\"", &format!("{HEALTH_POLICY}{GREETER_ROLE}"));
    assert_eq!(install(&server, &reviewed, &hello)?.status, 202);
    let digest = show(&server, "greeter")?["review_digest"].as_str().ok_or("no digest")?.to_owned();
    // Someone replaces the waiting upgrade with a wider one.
    let swapped = format!(
        "{}\n[[roles]]\nname = \"greeter_all\"\ncluster_permissions = [\"cluster:*\"]\n",
        greeter("2.0.0", "\"cluster\"", &format!("{HEALTH_POLICY}{GREETER_ROLE}"))
    );
    assert_eq!(install(&server, &swapped, &hello)?.status, 202);
    let reply =
        server.request(Method::POST, &format!("{EXTENSIONS}/greeter/_approve?digest={digest}"), "")?;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.reason().contains("changed since it was reviewed"), "{reply:?}");
    assert_eq!(show(&server, "greeter")?["version"], "1.0.0");
    assert_eq!(server.get(&format!("{API}/roles/greeter_all"))?.status, 404);
    // The digest of what waits now approves it.
    let now = show(&server, "greeter")?["review_digest"].as_str().ok_or("no digest")?.to_owned();
    assert_ne!(now, digest);
    let (ok, out, err) = ext(&server, &["approve", "greeter", "--digest", &now])?;
    assert!(ok && out.contains("version 2.0.0"), "{out}{err}");
    Ok(())
}
