//! The extension lifecycle end to end (`/_warden/extensions`, the real
//! binary): install → pending (runs nothing, its routes 404 naming the
//! pending state) → approve → serving without a restart; a restart keeps
//! it; removal 404s its routes at once and suspends its jobs; refused
//! installs (undeclared import, bad manifest, not a component, bad base64,
//! an id already installed) leave no record, no account, no route; a
//! request under way when its extension is removed finishes on it; a
//! non-admin is refused every endpoint.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::{GUEST_HOST_CALLS, GUEST_SLEEPER, HELLO_WORLD, REPORTER};

use crate::support::{self, API, Deployment, Error, Server, TestResult};

const CARL: (&str, &str) = ("carl", "Carl-Password-1");
pub(crate) const EXTENSIONS: &str = "/_warden/extensions";

pub(crate) fn start(deployment: &Deployment) -> Result<Server, String> {
    let mut command = support::warden();
    command.env("WARDEN_SCHEDULER_TICK_MS", "100");
    Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])
}

fn manifest(id: &str, capabilities: &str) -> String {
    format!("id = \"{id}\"\nversion = \"1.0.0\"\ncomponent = \"c.wasm\"\ncapabilities = [{capabilities}]\n")
}

pub(crate) fn install_body(manifest: &str, component: &[u8]) -> Value {
    json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(component),
    })
}

pub(crate) fn install(server: &Server, manifest: &str, component: &[u8]) -> Result<support::Reply, Error> {
    Ok(server.send(Method::POST, EXTENSIONS, &install_body(manifest, component))?)
}

fn installed_ids(server: &Server) -> Result<Vec<String>, Error> {
    let reply = server.get(EXTENSIONS)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json()["extensions"]
        .as_array()
        .ok_or("no list")?
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect())
}

pub(crate) fn audit(server: &Server, category: &str) -> Result<Vec<Value>, Error> {
    let reply = server.get(&format!("/_warden/audit?category={category}"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json()["events"].as_array().cloned().unwrap_or_default())
}

#[test]
fn install_approve_restart_and_remove() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let component = std::fs::read(GUEST_HOST_CALLS)?;

    // Installed: pending, nothing runs, its routes say so.
    let reply = install(&server, &manifest("probe", "\"cluster\", \"scheduler\""), &component)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let record = reply.json();
    assert_eq!(record["state"], "pending", "{record}");
    assert_eq!(record["serving"], false, "{record}");
    assert_eq!(record["capabilities"], json!(["cluster", "scheduler"]), "{record}");
    assert_eq!(record["component_bytes"], component.len());
    assert_eq!(record["component_sha256"].as_str().map(str::len), Some(64), "{record}");
    let reply = server.get("/_extensions/probe/jobs")?;
    assert_eq!(reply.status, 404, "{reply:?}");
    assert!(reply.reason().contains("pending"), "{reply:?}");
    // No service account before approval.
    assert_eq!(server.get(&format!("{API}/internalusers/service:probe"))?.status, 404);

    // The same id again: refused, the pending one untouched.
    let reply = install(&server, &manifest("probe", "\"cluster\", \"scheduler\""), &component)?;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.reason().contains("already installed"), "{reply:?}");

    // Approved: serving from the next request, no restart.
    let reply = server.request(Method::POST, &format!("{EXTENSIONS}/probe/_approve"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["state"], "approved");
    assert_eq!(reply.json()["approved_by"], "admin");
    assert_eq!(server.get("/_extensions/probe/jobs")?.status, 200);
    assert_eq!(server.get(&format!("{API}/internalusers/service:probe"))?.status, 200);
    // The store of installed extensions is a system index: not even the
    // admin reads or writes it through the cluster API.
    for index in [".warden-extensions", ".warden-extension-components"] {
        let reply = server.get(&format!("/{index}/_search"))?;
        assert_eq!(reply.status, 403, "{index}: {reply:?}");
        let reply =
            server.send(Method::PUT, &format!("/{index}/_doc/probe"), &json!({"state": "approved"}))?;
        assert_eq!(reply.status, 403, "{index}: {reply:?}");
    }
    // Approving twice: refused, naming the state.
    let reply = server.request(Method::POST, &format!("{EXTENSIONS}/probe/_approve"), "")?;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.reason().contains("approved and no upgrade of it waits"), "{reply:?}");

    // A job of it, registered by the admin through the guest.
    assert_eq!(server.consent("admin", support::ADMIN_PASSWORD, "probe")?.status, 201);
    let spec = json!({"name": "nightly", "schedule": {"interval": 3600}, "params": {}});
    let reply = server.send(Method::POST, "/_extensions/probe/schedule", &spec)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let job = reply.json()["id"].as_str().ok_or_else(|| format!("no job id: {reply:?}"))?.to_owned();

    // A restart on the same data directory keeps it serving.
    drop(server.stop());
    let server = start(&deployment)?;
    // Loaded from the store before listening, compiled code from the cache
    // (keyed by the component's hash: approval compiled it already).
    let logs = server.logs();
    assert!(logs.contains("installed extension loaded") && logs.contains("cache=Hit"), "{logs}");
    assert_eq!(server.get("/_extensions/probe/jobs")?.status, 200);
    let reply = server.get(&format!("{EXTENSIONS}/probe"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["state"], "approved");
    assert_eq!(reply.json()["serving"], true);
    assert_eq!(installed_ids(&server)?, ["probe"]);

    // Removed: routes 404 at once, the job suspended with the reason
    // (kept), the service account gone.
    let reply = server.request(Method::DELETE, &format!("{EXTENSIONS}/probe"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["suspended_jobs"], json!([job]), "{reply:?}");
    let reply = server.get("/_extensions/probe/jobs")?;
    assert_eq!(reply.status, 404, "{reply:?}");
    assert!(reply.reason().contains("no extension"), "{reply:?}");
    let view = server.get(&format!("/_warden/jobs/{job}"))?;
    assert_eq!(view.status, 200, "{view:?}");
    let suspended = view.json()["suspended"].as_str().unwrap_or_default().to_owned();
    assert!(suspended.contains("extension `probe` was removed by `admin`"), "{view:?}");
    assert_eq!(server.get(&format!("{API}/internalusers/service:probe"))?.status, 404);
    assert_eq!(server.get(&format!("{EXTENSIONS}/probe"))?.status, 404);
    assert!(installed_ids(&server)?.is_empty());
    // Removing again: not found.
    assert_eq!(server.request(Method::DELETE, &format!("{EXTENSIONS}/probe"), "")?.status, 404);

    // Audited, with the actor.
    for category in ["EXTENSION_INSTALL", "EXTENSION_APPROVE", "EXTENSION_REMOVE"] {
        let events = audit(&server, category)?;
        assert!(
            events.iter().any(|e| e["user"] == "admin" && e["extension"] == "probe"),
            "{category}: {events:?}"
        );
    }
    // Gone for good: a restart does not bring it back.
    drop(server.stop());
    let server = start(&deployment)?;
    assert_eq!(server.get("/_extensions/probe/jobs")?.status, 404);
    assert!(installed_ids(&server)?.is_empty());
    Ok(())
}

/// A directory extension given an installed extension's id after the fact
/// does not take it (it would act under the installed one's approved
/// policy, unreviewed): the installed one serves, the copy is refused in
/// health, naming why.
#[test]
fn a_directory_extension_cannot_take_an_installed_id() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let sleeper = std::fs::read(GUEST_SLEEPER)?;
    assert_eq!(
        install(&server, "id = \"nap\"\nversion = \"1\"\ncomponent = \"c.wasm\"\n", &sleeper)?.status,
        201
    );
    let reply = server.request(Method::POST, &format!("{EXTENSIONS}/nap/_approve"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    drop(server.stop());

    let copy = deployment.extensions_dir().join("nap");
    std::fs::create_dir_all(&copy)?;
    std::fs::copy(HELLO_WORLD, copy.join("c.wasm"))?;
    std::fs::write(copy.join("extension.toml"), manifest("nap", ""))?;
    let server = start(&deployment)?;
    let reply = server.get("/_extensions/nap/sleep?ms=1")?;
    assert_eq!((reply.status, reply.body.as_str()), (200, "slept 1 ms"));
    let health = server.get("/_warden/health")?.json();
    let failed = health["failed"].to_string();
    assert!(failed.contains("belongs to an installed extension"), "{health}");
    let shown = server.get(&format!("{EXTENSIONS}/nap"))?.json();
    assert_eq!((shown["serving"].as_bool(), shown["last_error"].as_str()), (Some(true), None), "{shown}");
    Ok(())
}

#[test]
fn refused_installs_leave_nothing() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    let server = start(&deployment)?;
    let component = std::fs::read(GUEST_HOST_CALLS)?;
    let nothing_left = |server: &Server| -> TestResult {
        assert!(installed_ids(server)?.is_empty());
        let reply = server.get("/_extensions/probe/jobs")?;
        assert_eq!(reply.status, 404, "{reply:?}");
        assert!(reply.reason().contains("no extension `probe`"), "{reply:?}");
        assert_eq!(server.get(&format!("{API}/internalusers/service:probe"))?.status, 404);
        let health = server.get("/_warden/health")?.json();
        assert_eq!(health["failed"], json!([]), "{health}");
        Ok(())
    };

    // The component imports the cluster and scheduler interfaces; the
    // manifest asks for neither: refused, each interface named.
    let reply = install(&server, &manifest("probe", ""), &component)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reason = reply.reason();
    assert!(reason.contains("warden:extension/cluster"), "{reason}");
    assert!(reason.contains("needs the `cluster` capability"), "{reason}");
    assert!(reason.contains("warden:extension/scheduler"), "{reason}");
    nothing_left(&server)?;
    // Asking for one of the two is not enough either.
    let reply = install(&server, &manifest("probe", "\"cluster\""), &component)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(reply.reason().contains("needs the `scheduler` capability"), "{reply:?}");
    nothing_left(&server)?;

    for (manifest, component, expected) in [
        ("id = \"probe\"\nversion = ", component.clone(), "not a valid manifest"),
        ("id = \"Bad Id\"\nversion = \"1\"\ncomponent = \"c.wasm\"\n", component.clone(), "invalid id"),
        (
            manifest("probe", "\"cluster\", \"scheduler\"").as_str(),
            b"not wasm".to_vec(),
            "not a WebAssembly file",
        ),
        (
            manifest("probe", "\"cluster\", \"scheduler\"").as_str(),
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module",
        ),
    ] {
        let reply = install(&server, manifest, &component)?;
        assert_eq!(reply.status, 400, "{expected}: {reply:?}");
        assert!(reply.reason().contains(expected), "{expected}: {reply:?}");
        nothing_left(&server)?;
    }
    // Bodies past the general 10 MiB limit reach this route's checks (a
    // 12 MiB component that is not wasm); past its own limit: 413.
    let reply = install(&server, &manifest("probe", ""), &vec![b'x'; 12 << 20])?;
    assert_eq!(reply.status, 400, "{}", reply.status);
    assert!(reply.reason().contains("not a WebAssembly file"), "{}", reply.reason());
    let reply = install(&server, &manifest("probe", ""), &vec![b'x'; 50 << 20])?;
    assert_eq!(reply.status, 413, "{}", reply.status);
    nothing_left(&server)?;
    // Not base64; not the body's shape.
    let body = json!({"manifest": manifest("probe", ""), "component": "!!not base64!!"});
    let reply = server.send(Method::POST, EXTENSIONS, &body)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(reply.reason().contains("base64"), "{reply:?}");
    let reply = server.send(Method::POST, EXTENSIONS, &json!({"manifest": manifest("probe", "")}))?;
    assert_eq!(reply.status, 400, "{reply:?}");
    nothing_left(&server)?;

    // An id the extensions directory serves is not the lifecycle's.
    let hello = std::fs::read(HELLO_WORLD)?;
    let reply = install(&server, &manifest("hello", ""), &hello)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(reply.reason().contains("extensions directory"), "{reply:?}");
    let reply = server.request(Method::DELETE, &format!("{EXTENSIONS}/hello"), "")?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(server.get("/_extensions/hello/greet/ana")?.status, 200);
    // Approving what is not installed, removing it: not found.
    assert_eq!(server.request(Method::POST, &format!("{EXTENSIONS}/probe/_approve"), "")?.status, 404);
    assert_eq!(server.request(Method::DELETE, &format!("{EXTENSIONS}/probe"), "")?.status, 404);
    // The refusals are audited too.
    let events = audit(&server, "EXTENSION_INSTALL")?;
    assert!(
        events
            .iter()
            .any(|e| e["reason"].as_str().is_some_and(|r| r.contains("capability"))
                && e["extension"] == "probe"),
        "a refused install is audited under the id its manifest names: {events:?}"
    );
    Ok(())
}

#[test]
fn only_extension_admins_manage_extensions() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let reply =
        server.send(Method::PUT, &format!("{API}/internalusers/carl"), &json!({"password": CARL.1}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let hello = std::fs::read(HELLO_WORLD)?;
    // One pending extension for carl to try to approve, show and remove.
    assert_eq!(install(&server, &manifest("greeter", ""), &hello)?.status, 201);

    let body = install_body(&manifest("other", ""), &hello);
    for (method, path, body) in [
        (Method::POST, EXTENSIONS.to_owned(), body),
        (Method::GET, EXTENSIONS.to_owned(), Value::Null),
        (Method::GET, format!("{EXTENSIONS}/greeter"), Value::Null),
        (Method::POST, format!("{EXTENSIONS}/greeter/_approve"), Value::Null),
        (Method::DELETE, format!("{EXTENSIONS}/greeter"), Value::Null),
    ] {
        let reply = server.send_as(CARL.0, CARL.1, method.clone(), &path, &body)?;
        assert_eq!(reply.status, 403, "{method} {path}: {reply:?}");
        assert!(reply.reason().contains("restapi:admin/extensions"), "{method} {path}: {reply:?}");
    }
    // Each refusal is audited, with who and which permission.
    let refusals: Vec<Value> = audit(&server, "MISSING_PRIVILEGES")?
        .into_iter()
        .filter(|e| e["user"] == "carl" && e["action"] == "restapi:admin/extensions")
        .collect();
    assert_eq!(refusals.len(), 5, "{refusals:?}");
    // Nothing happened.
    let reply = server.get(&format!("{EXTENSIONS}/greeter"))?;
    assert_eq!(reply.json()["state"], "pending", "{reply:?}");
    assert_eq!(server.get("/_warden/health")?.json()["pending"], json!(["greeter"]));
    assert_eq!(installed_ids(&server)?, ["greeter"]);
    Ok(())
}

/// `warden ext <args>` logged in as admin against `server`, stdin not a
/// terminal; (success, stdout, stderr).
pub(crate) fn ext(server: &Server, args: &[&str]) -> Result<(bool, String, String), Error> {
    let args: Vec<&str> = std::iter::once("ext").chain(args.iter().copied()).collect();
    Ok(support::cli_as(server, ("admin", support::ADMIN_PASSWORD), &args)?)
}

#[test]
fn the_cli_installs_approves_lists_shows_and_removes() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let source = tempfile::tempdir()?;
    std::fs::copy(HELLO_WORLD, source.path().join("c.wasm"))?;
    std::fs::write(source.path().join("extension.toml"), manifest("greeter", ""))?;
    let dir = source.path().to_str().ok_or("path")?;

    // Not at a terminal and without --yes: left pending.
    let (ok, out, err) = ext(&server, &["install", dir])?;
    assert!(ok, "{out}{err}");
    assert!(out.contains("extension `greeter` version 1.0.0: pending"), "{out}");
    assert!(out.contains("warden ext approve greeter"), "{out}");
    assert_eq!(server.get("/_extensions/greeter/greet/ana")?.status, 404);
    let (ok, out, err) = ext(&server, &["ls"])?;
    assert!(ok && out.contains("greeter\t1.0.0\tpending\tnot serving"), "{out}{err}");
    let (ok, out, err) = ext(&server, &["approve", "greeter"])?;
    assert!(ok && out.contains("approved"), "{out}{err}");
    assert_eq!(server.get("/_extensions/greeter/greet/ana")?.status, 200);
    let (ok, out, err) = ext(&server, &["show", "greeter"])?;
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out)?;
    assert_eq!(shown["state"], "approved");
    assert_eq!(shown["serving"], true);
    // Installing it again: refused, the message passed on.
    let (ok, _, err) = ext(&server, &["install", dir, "--yes"])?;
    assert!(!ok && err.contains("already installed"), "{err}");
    let (ok, out, err) = ext(&server, &["rm", "greeter"])?;
    assert!(ok && out.contains("\"removed\": true"), "{out}{err}");
    assert_eq!(server.get("/_extensions/greeter/greet/ana")?.status, 404);
    // --yes approves at once.
    let (ok, out, err) = ext(&server, &["install", dir, "--yes"])?;
    assert!(ok && out.contains("approved"), "{out}{err}");
    assert_eq!(server.get("/_extensions/greeter/greet/ana")?.status, 200);
    Ok(())
}

#[test]
fn a_request_under_way_finishes_when_its_extension_is_removed() -> TestResult {
    let deployment = Deployment::new()?;
    let server = std::sync::Arc::new(start(&deployment)?);
    let sleeper = std::fs::read(GUEST_SLEEPER)?;
    let manifest = "id = \"nap\"\nversion = \"1\"\ncomponent = \"c.wasm\"\n[limits]\ntimeout_ms = 10000\n";
    assert_eq!(install(&server, manifest, &sleeper)?.status, 201);
    let reply = server.request(Method::POST, &format!("{EXTENSIONS}/nap/_approve"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");

    // A request sleeping in the guest, removal meanwhile: it finishes on
    // the extension it started with; the next one finds nothing.
    let slow = {
        let server = server.clone();
        std::thread::spawn(move || server.get("/_extensions/nap/sleep?ms=1500").map(|r| (r.status, r.body)))
    };
    std::thread::sleep(std::time::Duration::from_millis(400));
    let reply = server.request(Method::DELETE, &format!("{EXTENSIONS}/nap"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(server.get("/_extensions/nap/sleep?ms=1")?.status, 404);
    let (status, body) = slow.join().map_err(|_| "the slow request panicked")??;
    assert_eq!((status, body.as_str()), (200, "slept 1500 ms"));
    Ok(())
}

/// A manifest for hello-world as `greeter`: its route and a predefined role
/// granting it.
const GREETER: &str = r#"id = "greeter"
version = "1.0.0"
component = "c.wasm"
capabilities = []

[[routes]]
method = "GET"
path = "/greet/{name}"

[[roles]]
name = "greeter_user"
extension_permissions = ["extension:greeter/greet"]
"#;

#[test]
fn approval_writes_the_roles_the_manifest_brings_and_removal_takes_them() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    let reply =
        server.send(Method::PUT, &format!("{API}/internalusers/carl"), &json!({"password": CARL.1}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    // Installed: the review names the role it brings; no role exists yet.
    let reply = install(&server, GREETER, &hello)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let review = reply.json()["review_text"].as_str().unwrap_or_default().to_owned();
    assert!(review.contains("greeter_user"), "{review}");
    assert!(review.contains("/greet/{name}"), "{review}");
    assert_eq!(server.get(&format!("{API}/roles/greeter_user"))?.status, 404);
    assert_eq!(server.get(&format!("{API}/roles/extension:greeter"))?.status, 404);

    // Approved: the policy role and the predefined role exist, reserved,
    // and carl (mapped to the predefined role) calls the route with no
    // hand-written role.
    let reply = server.send(Method::POST, &format!("{EXTENSIONS}/greeter/_approve"), &Value::Null)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let role = server.get(&format!("{API}/roles/greeter_user"))?;
    assert_eq!(role.status, 200, "{role:?}");
    assert_eq!(role.json()["greeter_user"]["reserved"], true, "{role:?}");
    assert_eq!(server.get(&format!("{API}/roles/extension:greeter"))?.status, 200);
    let mapping = json!({"users": ["carl"]});
    let reply = server.send(Method::PUT, &format!("{API}/rolesmapping/greeter_user"), &mapping)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let reply =
        server.send_as(CARL.0, CARL.1, Method::GET, "/_extensions/greeter/greet/carl", &Value::Null)?;
    assert_eq!(reply.status, 200, "{reply:?}");

    // A services_mappings entry for the extension, on another role's mapping.
    let other = json!({"cluster_permissions": ["cluster:monitor/health"]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/helpers"), &other)?.status, 201);
    let widening = json!({"users": ["carl"], "services_mappings": {"greeter": {"users": ["carl"]}}});
    let reply = server.send(Method::PUT, &format!("{API}/rolesmapping/helpers"), &widening)?;
    assert_eq!(reply.status, 201, "{reply:?}");

    // Removed: the roles go, and the mapping of the predefined role with
    // them (a mapping names an existing role), reported.
    let reply = server.send(Method::DELETE, &format!("{EXTENSIONS}/greeter"), &Value::Null)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let removal = reply.json();
    assert_eq!(removal["roles_removed"], json!(["extension:greeter", "greeter_user"]), "{removal}");
    assert_eq!(removal["mappings_removed"], json!(["greeter_user"]), "{removal}");
    assert_eq!(server.get(&format!("{API}/rolesmapping/greeter_user"))?.status, 404);
    // The services_mappings entry went with it (a later `greeter` must not
    // inherit it); the rest of that mapping stays.
    let helpers = server.get(&format!("{API}/rolesmapping/helpers"))?.json();
    assert_eq!(helpers["helpers"]["users"], json!(["carl"]), "{helpers}");
    assert!(helpers["helpers"]["services_mappings"].get("greeter").is_none(), "{helpers}");
    assert_eq!(server.get(&format!("{API}/roles/greeter_user"))?.status, 404);
    assert_eq!(server.get(&format!("{API}/roles/extension:greeter"))?.status, 404);
    let reply =
        server.send_as(CARL.0, CARL.1, Method::GET, "/_extensions/greeter/greet/carl", &Value::Null)?;
    assert_eq!(reply.status, 403, "{reply:?}");
    Ok(())
}

#[test]
fn a_role_name_taken_by_someone_else_refuses_the_install() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    let theirs = json!({"cluster_permissions": ["cluster:monitor/health"]});
    let reply = server.send(Method::PUT, &format!("{API}/roles/greeter_user"), &theirs)?;
    assert_eq!(reply.status, 201, "{reply:?}");

    let reply = install(&server, GREETER, &hello)?;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.reason().contains("greeter_user"), "{reply:?}");
    // Nothing installed, and the operator's role is untouched.
    assert!(installed_ids(&server)?.is_empty());
    let role = server.get(&format!("{API}/roles/greeter_user"))?.json();
    assert_eq!(role["greeter_user"]["cluster_permissions"], json!(["cluster:monitor/health"]), "{role}");
    assert_eq!(server.get(&format!("{API}/roles/extension:greeter"))?.status, 404);
    Ok(())
}

/// `--dev-extensions`: the example reporter, as shipped (its manifest
/// brings its policy), is installed and approved at start and works with
/// no hand-written role; a restart leaves it as it was.
#[test]
fn dev_extensions_install_the_reporter_with_its_own_policy() -> TestResult {
    let deployment = Deployment::new()?;
    let dev = deployment.data_dir().with_file_name("dev");
    std::fs::create_dir_all(dev.join("reporter"))?;
    std::fs::copy(REPORTER, dev.join("reporter").join("reporter.wasm"))?;
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/reporter/extension.toml");
    std::fs::copy(manifest, dev.join("reporter").join("extension.toml"))?;
    let dev_arg = dev.to_string_lossy().into_owned();
    let start = || {
        let mut command = support::warden();
        command.env("WARDEN_SCHEDULER_TICK_MS", "100");
        Server::start_command(
            command,
            &deployment.extensions_dir(),
            &deployment.data_dir(),
            &["--dev-extensions", &dev_arg],
        )
    };
    let server = start()?;
    assert!(server.logs().contains("DEVELOPMENT MODE"), "{}", server.logs());
    let installs = audit(&server, "EXTENSION_APPROVE")?;
    assert!(
        installs.iter().any(|e| e["user"] == "dev-extensions" && e["extension"] == "reporter"),
        "{installs:?}"
    );
    let record = server.get(&format!("{EXTENSIONS}/reporter"))?.json();
    assert_eq!((&record["state"], &record["approved_by"]), (&json!("approved"), &json!("dev-extensions")));
    assert_eq!(server.get(&format!("{API}/roles/extension:reporter"))?.status, 200);

    // The demo's flow, with no role written by hand.
    let now = support::now_ms();
    let doc = json!({"level": "error", "@timestamp": now});
    assert_eq!(server.send(Method::POST, "/logs-app/_doc?refresh=true", &doc)?.status, 201);
    let spec = json!({"source": "logs-*", "field": "level", "window": "1d", "every_secs": 1});
    let path = "/_extensions/reporter/summaries/app";
    // The demo's consent: reading `logs-*`, writing `reports`, nothing more.
    let scopes = json!({"index_permissions": [
        {"index_patterns": ["logs-*"], "allowed_actions": ["read"]},
        {"index_patterns": ["reports"], "allowed_actions": ["crud", "create_index"]},
    ]});
    let reply = server.send(
        Method::POST,
        "/_warden/consents",
        &json!({"extension": "reporter", "scopes": scopes}),
    )?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let reply = server.send(Method::PUT, path, &spec)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let report = loop {
        let reports = server.get(&format!("{path}/reports"))?.json();
        if let Some(first) = reports["reports"].get(0) {
            break first.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no report: {reports}\n{}", server.logs());
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(report["counts"], json!({"error": 1}), "{report}");

    // Restarted with the same directory: the same installation, not a new one.
    drop(server);
    let server = start()?;
    let again = server.get(&format!("{EXTENSIONS}/reporter"))?.json();
    assert_eq!(again["installed_at"], record["installed_at"], "{again}");
    assert_eq!(again["state"], "approved", "{again}");
    assert_eq!(server.get(&format!("{path}/reports"))?.status, 200);
    Ok(())
}

/// The probe guest with a policy that lets it read the cluster's health.
const PROBE_WITH_POLICY: &str = r#"id = "probe"
version = "1.0.0"
component = "c.wasm"
capabilities = ["cluster", "scheduler"]

[policy]
cluster_permissions = ["cluster:monitor/health"]
"#;

/// The probe's cluster call (`GET /_cluster/health` as the caller):
/// (outcome, kind, message).
fn probe_cluster_call(server: &Server) -> Result<(String, String, String), Error> {
    let reply = server.get("/_extensions/probe/cluster")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    Ok((field("outcome"), field("kind"), field("message")))
}

#[test]
fn grants_narrow_and_widen_back_for_the_next_call_and_never_beyond_the_request() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let component = std::fs::read(GUEST_HOST_CALLS)?;
    assert_eq!(install(&server, PROBE_WITH_POLICY, &component)?.status, 201);
    let reply = server.send(Method::POST, &format!("{EXTENSIONS}/probe/_approve"), &Value::Null)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["granted"], reply.json()["requested"], "{reply:?}");
    assert_eq!(probe_cluster_call(&server)?.0, "ok");
    let grants = format!("{EXTENSIONS}/probe/grants");

    // The policy narrowed: the service gate refuses the next call.
    let narrowed = json!({"capabilities": ["cluster", "scheduler"], "policy": {}});
    let reply = server.send(Method::PUT, &grants, &narrowed)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["granted"]["policy"]["cluster_permissions"], json!([]), "{reply:?}");
    let (outcome, kind, message) = probe_cluster_call(&server)?;
    assert_eq!((outcome.as_str(), kind.as_str()), ("error", "denied"), "{message}");
    assert!(message.contains("service gate"), "{message}");

    // The capability narrowed: the host call itself is refused.
    let no_cluster =
        json!({"capabilities": ["scheduler"], "policy": {"cluster_permissions": ["cluster:monitor/health"]}});
    assert_eq!(server.send(Method::PUT, &grants, &no_cluster)?.status, 200);
    let (outcome, kind, message) = probe_cluster_call(&server)?;
    assert_eq!((outcome.as_str(), kind.as_str()), ("error", "denied"), "{message}");
    assert!(message.contains("`cluster` capability is not granted"), "{message}");

    // Beyond the request: refused, naming it, and nothing changed.
    for (beyond, expected) in [
        (
            json!({"capabilities": ["scheduler", "files"], "policy": {}}),
            "`files` capability is not requested",
        ),
        (
            json!({"capabilities": ["scheduler"], "policy": {"cluster_permissions": ["cluster_all"]}}),
            "beyond",
        ),
    ] {
        let reply = server.send(Method::PUT, &grants, &beyond)?;
        assert_eq!(reply.status, 400, "{beyond}: {reply:?}");
        assert!(reply.reason().contains(expected), "{beyond}: {reply:?}");
    }
    let record = server.get(&format!("{EXTENSIONS}/probe"))?.json();
    assert_eq!(record["granted"]["capabilities"], json!(["scheduler"]), "{record}");

    // A restart keeps the grants.
    drop(server);
    let server = start(&deployment)?;
    assert_eq!(probe_cluster_call(&server)?.1, "denied");

    // Widened back to the request: the call works again, no reload.
    let requested = json!({"capabilities": ["cluster", "scheduler"], "policy": {"cluster_permissions": ["cluster:monitor/health"]}});
    assert_eq!(server.send(Method::PUT, &grants, &requested)?.status, 200);
    assert_eq!(probe_cluster_call(&server)?.0, "ok");
    let granted = audit(&server, "EXTENSION_GRANT")?;
    assert!(granted.iter().any(|e| e["extension"] == "probe" && e["user"] == "admin"), "{granted:?}");
    // Each grant says what was granted.
    assert!(
        granted.iter().any(|e| e["reason"].as_str().is_some_and(|r| r.contains("granted capabilities")
            && r.contains("\"scheduler\"")
            && !r.contains("\"cluster\""))),
        "{granted:?}"
    );
    Ok(())
}

/// The install route's larger body is only for those who may install: any
/// other signed-in user is held to the usual 10 MiB before the 403.
#[test]
fn only_installers_may_send_install_sized_bodies() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let reply =
        server.send(Method::PUT, &format!("{API}/internalusers/carl"), &json!({"password": CARL.1}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    // 12 MiB of base64: over the usual limit, under the install route's.
    let big = json!({"manifest": manifest("big", ""), "component": "A".repeat(12 << 20)});
    match server.send_as(CARL.0, CARL.1, Method::POST, EXTENSIONS, &big) {
        Ok(reply) => assert_eq!(reply.status, 413, "{reply:?}"),
        // The server answers 413 as soon as the limit is passed and closes
        // the connection: a client still sending may see the close first.
        // Refused all the same (nothing is installed, checked below).
        Err(e) if e.is_request() || e.is_body() => {}
        Err(e) => return Err(e.into()),
    }
    // The admin's same body is read, and refused for what it is.
    let reply = server.send(Method::POST, EXTENSIONS, &big)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(installed_ids(&server)?.is_empty());
    Ok(())
}

/// `DELETE ...?purge=true` deletes the extension's own indices (`.ext-<id>`
/// and `.ext-<id>_*`) and nothing else: the users' indices stay.
#[test]
fn purge_deletes_only_the_extensions_own_indices() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let component = std::fs::read(GUEST_HOST_CALLS)?;
    let write = |index: &str| -> TestResult {
        let spec = json!({"method": "PUT", "path": format!("/{index}/_doc/1?refresh=true"),
            "body": {"n": 1}, "identity": "service"});
        let reply = server.send(Method::POST, "/_extensions/probe/call", &spec)?;
        assert_eq!((reply.status, &reply.json()["outcome"]), (200, &json!("ok")), "{index}: {reply:?}");
        assert_eq!(reply.json()["status"], 201, "{index}: {reply:?}");
        Ok(())
    };
    assert_eq!(install(&server, &manifest("probe", "\"cluster\", \"scheduler\""), &component)?.status, 201);
    assert_eq!(server.request(Method::POST, &format!("{EXTENSIONS}/probe/_approve"), "")?.status, 200);
    write(".ext-probe")?;
    write(".ext-probe_cache")?;
    // A user's index: theirs, it stays.
    assert_eq!(server.send(Method::PUT, "/probe-results/_doc/1?refresh=true", &json!({"n": 1}))?.status, 201);

    let reply = server.request(Method::DELETE, &format!("{EXTENSIONS}/probe?purge=true"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["indices_deleted"], json!([".ext-probe", ".ext-probe_cache"]), "{reply:?}");
    assert_eq!(reply.json()["data_indices_kept"], false, "{reply:?}");
    assert_eq!(server.get("/probe-results/_doc/1")?.status, 200, "a user's index stays");
    // Installed again, the namespace is empty.
    assert_eq!(install(&server, &manifest("probe", "\"cluster\", \"scheduler\""), &component)?.status, 201);
    assert_eq!(server.request(Method::POST, &format!("{EXTENSIONS}/probe/_approve"), "")?.status, 200);
    for index in [".ext-probe", ".ext-probe_cache"] {
        let spec = json!({"method": "GET", "path": format!("/{index}/_doc/1"), "identity": "service"});
        let reply = server.send(Method::POST, "/_extensions/probe/call", &spec)?;
        assert_eq!(reply.json()["status"], 404, "{index}: {reply:?}");
    }
    Ok(())
}

/// Removing an extension that was never approved takes no role: a role of
/// a predefined role's name is someone else's (the operator's, here).
#[test]
fn removing_a_pending_extension_takes_no_role() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    assert_eq!(install(&server, GREETER, &hello)?.status, 201);
    // The operator then creates a role of that name, and maps it.
    let theirs = json!({"cluster_permissions": ["cluster:monitor/health"]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/greeter_user"), &theirs)?.status, 201);
    let mapping = json!({"users": ["bob"]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/rolesmapping/greeter_user"), &mapping)?.status, 201);
    // Approval now clashes, and is refused.
    let reply = server.send(Method::POST, &format!("{EXTENSIONS}/greeter/_approve"), &Value::Null)?;
    assert_eq!(reply.status, 409, "{reply:?}");

    let reply = server.send(Method::DELETE, &format!("{EXTENSIONS}/greeter"), &Value::Null)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["roles_removed"], json!([]), "{reply:?}");
    assert_eq!(reply.json()["mappings_removed"], json!([]), "{reply:?}");
    assert_eq!(server.get(&format!("{API}/roles/greeter_user"))?.status, 200);
    assert_eq!(server.get(&format!("{API}/rolesmapping/greeter_user"))?.status, 200);
    Ok(())
}

/// A manifest's roles reach cluster and index actions only: a pattern that
/// happens to match a known group (`re*` matches `read`) or a regex would,
/// at run time, reach the security API, other extensions' routes and
/// consents. Refused at install, naming it; nothing installed.
#[test]
fn a_manifest_role_cannot_reach_beyond_actions() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    for (permission, expected) in [
        ("re*", "inside `cluster:` or `indices:`"),
        ("*", "inside `cluster:` or `indices:`"),
        ("/(cluster_monitor|extension:.*|schedule:.*)/", "regular expressions are not accepted"),
        ("restapi:admin/*", "inside `cluster:` or `indices:`"),
    ] {
        let manifest = format!("{GREETER}cluster_permissions = [{}]\n", serde_json::to_string(permission)?);
        let reply = install(&server, &manifest, &hello)?;
        assert_eq!(reply.status, 400, "{permission}: {reply:?}");
        assert!(reply.reason().contains(expected), "{permission}: {reply:?}");
        assert!(installed_ids(&server)?.is_empty(), "{permission}");
    }
    Ok(())
}
