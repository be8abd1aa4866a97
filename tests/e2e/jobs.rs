//! Scheduled jobs end to end, through a real guest and the real binary: an
//! extension registers a job during a user's request (with the user's
//! consent); the host keeps who it runs as, and at every run resolves that
//! user again and mints a fresh token — changed roles apply, a disabled or
//! deleted user suspends the job, an administrator can give it to someone
//! else. Failures are retried, guest traps and loops are contained, and
//! jobs survive a restart.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::{Deployment, Server, TestResult};
use warden_test_artifacts::GUEST_HOST_CALLS;

const API: &str = "/_plugins/_security/api";
const ANA: (&str, &str) = ("ana", "Ana-Password-1");
const BOB: (&str, &str) = ("bob", "Bob-Password-1");
const CARL: (&str, &str) = ("carl", "Carl-Password-1");

type Error = Box<dyn std::error::Error>;

fn start(deployment: &Deployment) -> Result<Server, String> {
    let mut command = support::warden();
    command
        .env("WARDEN_SCHEDULER_TICK_MS", "100")
        .env("WARDEN_JOB_RETRY_DELAY_MS", "200")
        // Short run tokens: a run longer than a second renews its token.
        .env("WARDEN_JOB_TOKEN_SECS", "2");
    Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])
}

/// `probe` may write `job-*`; ana and bob may use it, consent to its jobs
/// and write `job-*` themselves; carl may use it but never consented.
fn setup() -> Result<(Deployment, Server), Error> {
    let deployment = Deployment::new()?;
    deployment.install(
        "probe",
        GUEST_HOST_CALLS,
        "capabilities = [\"cluster\", \"scheduler\"]\n[limits]\ncpu_ms = 300\ntimeout_ms = 10000",
    )?;
    let server = start(&deployment)?;
    let writer = json!([{"index_patterns": ["job-*"], "allowed_actions": ["crud", "create_index"]}]);
    for (path, body) in [
        (format!("{API}/roles/extension:probe"), json!({"index_permissions": writer})),
        (
            format!("{API}/roles/scheduling"),
            json!({"extension_permissions": ["extension:probe/*", "schedule:probe"], "index_permissions": writer}),
        ),
        (format!("{API}/roles/probing"), json!({"extension_permissions": ["extension:probe/*"]})),
        (format!("{API}/internalusers/ana"), json!({"password": ANA.1})),
        (format!("{API}/internalusers/bob"), json!({"password": BOB.1})),
        (format!("{API}/internalusers/carl"), json!({"password": CARL.1})),
        (format!("{API}/rolesmapping/scheduling"), json!({"users": ["ana", "bob"]})),
        (format!("{API}/rolesmapping/probing"), json!({"users": ["carl"]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    Ok((deployment, server))
}

/// Registers a job through the guest, as `who`; the guest's JSON answer.
fn register(
    server: &Server,
    who: (&str, &str),
    name: &str,
    schedule: Value,
    params: Value,
) -> Result<Value, Error> {
    let spec = json!({"name": name, "schedule": schedule, "params": params});
    let reply = server.send_as(who.0, who.1, Method::POST, "/_extensions/probe/schedule", &spec)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json())
}

fn registered(
    server: &Server,
    who: (&str, &str),
    name: &str,
    schedule: Value,
    params: Value,
) -> Result<String, Error> {
    let answer = register(server, who, name, schedule, params)?;
    assert_eq!(answer["outcome"], "ok", "{answer}");
    Ok(answer["id"].as_str().ok_or("no id")?.to_owned())
}

/// The job as its owner (or an admin) sees it over REST.
fn job(server: &Server, who: (&str, &str), id: &str) -> Result<Value, Error> {
    let reply = server.get_as(who.0, who.1, &format!("/_warden/jobs/{id}"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json())
}

fn admin_job(server: &Server, id: &str) -> Result<Value, Error> {
    job(server, ("admin", support::ADMIN_PASSWORD), id)
}

/// Polls the job (as admin) until `done` holds; the last view otherwise.
fn wait_for(server: &Server, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Result<Value, Error> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = admin_job(server, id)?;
        if done(&view) {
            return Ok(view);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}: {view}\n{}", server.logs()).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls until the run under way has written its first document to `index`.
fn wait_for_first_write(server: &Server, index: &str) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.send(Method::POST, &format!("/{index}/_count"), &json!({}))?.json()["count"] != 1 {
        assert!(Instant::now() < deadline, "the first write to {index} never came");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn runs(view: &Value) -> u64 {
    view["runs"].as_u64().unwrap_or(0)
}

fn audit(server: &Server, query: &str) -> Result<Vec<Value>, Error> {
    let reply = server.get(&format!("/_warden/audit?{query}"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json()["events"].as_array().cloned().unwrap_or_default())
}

fn patch_user(server: &Server, user: &str, op: Value) -> TestResult {
    let reply = server.send(Method::PATCH, &format!("{API}/internalusers/{user}"), &json!([op]))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(())
}

#[test]
fn a_job_runs_as_its_owner_resolved_again_at_every_run() -> TestResult {
    let (_deployment, server) = setup()?;
    let id = registered(
        &server,
        ANA,
        "every-second",
        json!({"interval": 1}),
        json!({"index": "job-first", "doc": {"n": 1}}),
    )?;
    // Registering the same name again is the same job.
    assert_eq!(
        registered(
            &server,
            ANA,
            "every-second",
            json!({"interval": 1}),
            json!({"index": "job-first", "doc": {"n": 1}})
        )?,
        id
    );

    let view = wait_for(&server, &id, "two successful runs", |v| runs(v) >= 2)?;
    assert_eq!(view["last_run"]["status"], "success", "{view}");
    assert_eq!(
        (&view["user"], &view["extension"], &view["auth_source"]),
        (&json!("ana"), &json!("probe"), &json!("internal"))
    );
    // The runs wrote as ana, through both gates, with the run's context.
    let found =
        server.send(Method::POST, "/job-first/_search", &json!({"query": {"term": {"job_id": id}}}))?.json();
    assert!(found["hits"]["total"]["value"].as_u64().unwrap_or(0) >= 2, "{found}");
    assert_eq!(found["hits"]["hits"][0]["_source"]["n"], 1);

    // Users see their own jobs; admins see all; others get 404.
    let mine = server.get_as(ANA.0, ANA.1, "/_warden/jobs")?.json();
    assert_eq!(mine["total"], 1, "{mine}");
    assert_eq!(server.get_as(BOB.0, BOB.1, "/_warden/jobs")?.json()["total"], 0);
    assert_eq!(server.get_as(BOB.0, BOB.1, &format!("/_warden/jobs/{id}"))?.status, 404);
    assert_eq!(server.get("/_warden/jobs?user=ana")?.json()["total"], 1);
    // The extension sees its job, but never who runs it.
    let seen = server.get_as(ANA.0, ANA.1, &format!("/_extensions/probe/jobs/{id}"))?.json();
    assert_eq!(seen["outcome"], "ok", "{seen}");
    assert!(!seen["message"].as_str().unwrap_or_default().contains("ana"), "{seen}");
    let theirs = server.get_as(BOB.0, BOB.1, &format!("/_extensions/probe/jobs/{id}"))?.json();
    assert_eq!(theirs["kind"], "not-found", "another user's job: {theirs}");

    // Roles change: the next run has the new ones (the user gate refuses).
    let reply = server.send(
        Method::PUT,
        &format!("{API}/roles/scheduling"),
        &json!({"extension_permissions": ["extension:probe/*", "schedule:probe"]}),
    )?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let before = runs(&admin_job(&server, &id)?);
    let view = wait_for(&server, &id, "a run with the new roles", |v| runs(v) > before + 1)?;
    assert_eq!(view["last_run"]["status"], "failure", "{view}");
    let message = view["last_run"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("user gate") && message.contains("job-first"), "{message}");

    // Disabled owner: suspended and audited; cannot be re-enabled until she is.
    patch_user(&server, "ana", json!({"op": "add", "path": "/disabled", "value": true}))?;
    let view = wait_for(&server, &id, "suspension", |v| v["suspended"].is_string())?;
    assert_eq!(view["suspended"], "user `ana` is disabled", "{view}");
    let suspended_at = runs(&view);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&admin_job(&server, &id)?), suspended_at, "a suspended job does not run");
    let events = audit(&server, "category=JOB_WRITE&user=ana")?;
    assert!(
        events.iter().any(|e| e["job"] == json!(id) && e["reason"] == "suspended: user `ana` is disabled"),
        "{events:?}"
    );
    let refused = server.request(Method::POST, &format!("/_warden/jobs/{id}/_enable"), "")?;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(refused.reason().contains("user `ana` is disabled"), "{refused:?}");
    patch_user(&server, "ana", json!({"op": "remove", "path": "/disabled"}))?;
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{id}/_enable"), "")?.status, 200);
    wait_for(&server, &id, "runs after re-enabling", |v| runs(v) > suspended_at)?;

    // Deleted owner: suspended; only an admin may give the job to bob.
    assert_eq!(server.request(Method::DELETE, &format!("{API}/internalusers/ana"), "")?.status, 200);
    let view = wait_for(&server, &id, "suspension", |v| v["suspended"].is_string())?;
    assert_eq!(view["suspended"], "user `ana` no longer exists", "{view}");
    let by_bob = server.send_as(
        BOB.0,
        BOB.1,
        Method::PUT,
        &format!("/_warden/jobs/{id}/_owner"),
        &json!({"user": "bob"}),
    )?;
    assert_eq!(by_bob.status, 403, "{by_bob:?}");
    let to_carl =
        server.send(Method::PUT, &format!("/_warden/jobs/{id}/_owner"), &json!({"user": "carl"}))?;
    assert_eq!(to_carl.status, 400, "carl never consented: {to_carl:?}");
    assert!(to_carl.reason().contains("schedule:probe"), "{to_carl:?}");
    let to_bob = server.send(Method::PUT, &format!("/_warden/jobs/{id}/_owner"), &json!({"user": "bob"}))?;
    assert_eq!(to_bob.status, 200, "{to_bob:?}");
    assert_eq!((&to_bob.json()["user"], &to_bob.json()["suspended"]), (&json!("bob"), &Value::Null));
    let reassigned = runs(&to_bob.json());
    wait_for(&server, &id, "a run as bob", |v| runs(v) > reassigned)?;
    let events = audit(&server, "category=JOB_WRITE&user=admin")?;
    assert!(
        events.iter().any(|e| e["reason"] == "owner of `every-second` changed from `ana` to `bob`"),
        "{events:?}"
    );
    let events = audit(&server, "category=JOB_RUN&user=bob")?;
    assert!(events.iter().any(|e| e["job"] == json!(id)), "runs as bob are audited as bob: {events:?}");
    assert_eq!(server.get_as(BOB.0, BOB.1, "/_warden/jobs")?.json()["total"], 1);

    // Bob, its owner now, removes it.
    let removed = server.send_as(BOB.0, BOB.1, Method::DELETE, &format!("/_warden/jobs/{id}"), &json!({}))?;
    assert_eq!(removed.status, 200, "{removed:?}");
    assert_eq!(server.get(&format!("/_warden/jobs/{id}"))?.status, 404);
    Ok(())
}

#[test]
fn consent_limits_and_hostile_runners() -> TestResult {
    let (_deployment, server) = setup()?;
    // No consent: denied, audited, nothing stored.
    let answer = register(&server, CARL, "sneaky", json!({"interval": 1}), json!({}))?;
    assert_eq!(answer["kind"], "denied", "{answer}");
    assert!(answer["message"].as_str().unwrap_or_default().contains("schedule:probe"), "{answer}");
    let events = audit(&server, "category=MISSING_PRIVILEGES&user=carl")?;
    assert!(events.iter().any(|e| e["gate"] == "consent" && e["action"] == "schedule:probe"), "{events:?}");
    assert_eq!(server.get("/_warden/jobs")?.json()["total"], 0);
    // Bad specs name the problem.
    for (schedule, says) in [
        (json!({"cron": "61 * * * *"}), "minute field `61`"),
        (json!({"interval": 0}), "interval must be between 1"),
        (json!({"cron": "0 0 30 2 *"}), "matches no date"),
    ] {
        let answer = register(&server, ANA, "bad", schedule, json!({}))?;
        assert_eq!(answer["kind"], "invalid", "{answer}");
        assert!(answer["message"].as_str().unwrap_or_default().contains(says), "{says}: {answer}");
    }
    let answer = register(&server, ANA, "bad name!", json!({"interval": 5}), json!({}))?;
    assert_eq!(answer["kind"], "invalid", "{answer}");

    // A run that fails is retried (attempts 1, 2, 3), then waits for its next slot.
    let failing =
        registered(&server, ANA, "failing", json!({"interval": 3600}), json!({"fail": "no data yet"}))?;
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{failing}/_run"), "")?.status, 200);
    let view = wait_for(&server, &failing, "three attempts", |v| v["failures"] == 3)?;
    assert_eq!(view["last_run"]["attempt"], 3, "{view}");
    assert_eq!(view["last_run"]["message"], "no data yet");
    assert_eq!(view["attempt"], 1, "back to the first attempt of the next slot: {view}");
    let next = view["next_run"].as_u64().unwrap_or(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    assert!(next > now + 3_000_000, "the next slot, an hour on: {view}");

    // A panic, an endless loop: recorded as errors; the host serves on.
    let panicking = registered(&server, ANA, "panicking", json!({"once": 0}), json!({"panic": "kaboom"}))?;
    let spinning = registered(&server, ANA, "spinning", json!({"once": 0}), json!({"spin": true}))?;
    let view = wait_for(&server, &panicking, "the panic", |v| v["last_run"]["status"] == "error")?;
    assert!(view["last_run"]["message"].as_str().unwrap_or_default().contains("kaboom"), "{view}");
    let view = wait_for(&server, &spinning, "the loop", |v| v["last_run"]["status"] == "error")?;
    assert!(view["last_run"]["message"].as_str().unwrap_or_default().contains("CPU"), "{view}");
    assert_eq!(server.get("/_warden/health")?.status, 200);

    // Jobs registered by a job run for the same owner.
    let nested = registered(&server, ANA, "nesting", json!({"once": 0}), json!({"register": "child"}))?;
    let view =
        wait_for(&server, &nested, "the nested registration", |v| v["last_run"]["status"] == "success")?;
    assert!(view["last_run"]["message"].as_str().unwrap_or_default().starts_with("registered "), "{view}");
    let all = server.get("/_warden/jobs?user=ana")?.json();
    let child = all["jobs"].as_array().into_iter().flatten().find(|j| j["name"] == "child");
    assert!(child.is_some_and(|c| c["user"] == "ana"), "{all}");

    // Disabling stops it; run-now on a disabled job is refused.
    let disabled = server.request(Method::POST, &format!("/_warden/jobs/{failing}/_disable"), "")?;
    assert_eq!((disabled.status, &disabled.json()["enabled"]), (200, &json!(false)));
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{failing}/_run"), "")?.status, 400);

    // The job indices are system indices: not even admin reaches them.
    for index in [".warden-jobs", ".warden-job-identities", ".warden-job-locks"] {
        let reply = server.send(Method::POST, &format!("/{index}/_search"), &json!({}))?;
        assert_eq!(reply.status, 403, "{index}: {reply:?}");
        let call =
            json!({"method": "POST", "path": format!("/{index}/_search"), "body": {}, "identity": "service"});
        let from_guest = server.send(Method::POST, "/_extensions/probe/call", &call)?.json();
        assert_eq!(from_guest["kind"], "denied", "{index}: {from_guest}");
    }
    Ok(())
}

#[test]
fn jobs_survive_a_restart() -> TestResult {
    let (deployment, server) = setup()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    // Due while the host is down: runs once when it is back.
    let id = registered(
        &server,
        ANA,
        "later",
        json!({"once": now + 3000}),
        json!({"index": "job-later", "doc": {}}),
    )?;
    server.kill_hard();
    drop(server);
    std::thread::sleep(Duration::from_millis(3500));
    let server = start(&deployment)?;
    let view = wait_for(&server, &id, "the run after restart", |v| v["last_run"]["status"] == "success")?;
    assert_eq!((runs(&view), &view["next_run"]), (1, &Value::Null), "once means once: {view}");
    assert_eq!(view["user"], "ana");
    let found = server.send(Method::POST, "/job-later/_count", &json!({}))?.json();
    assert_eq!(found["count"], 1, "{found}");
    let runs_of_later = audit(&server, &format!("category=JOB_RUN&job={id}"))?;
    assert_eq!(runs_of_later.len(), 1, "{runs_of_later:?}");

    // The extension is replaced by a version without the `scheduler` grant:
    // its jobs stop (suspended, named) instead of running ungranted.
    let every = registered(&server, ANA, "every", json!({"interval": 1}), json!({}))?;
    drop(server);
    deployment.install("probe", warden_test_artifacts::HELLO_WORLD, "capabilities = []")?;
    let server = start(&deployment)?;
    let view = wait_for(&server, &every, "suspension", |v| v["suspended"].is_string())?;
    assert_eq!(view["suspended"], "extension `probe` is no longer granted `scheduler`", "{view}");
    Ok(())
}

#[test]
fn a_long_run_renews_its_token_and_loses_it_with_its_owner() -> TestResult {
    let (_deployment, server) = setup()?;
    // Three writes 2 s apart, with 2 s tokens: the host renews the token
    // before the second and third writes, checking the owner each time.
    let params = json!({"index": "job-long", "doc": {}, "calls": 3, "pause_ms": 2000});
    let id = registered(&server, ANA, "long", json!({"once": 0}), params)?;
    let view = wait_for(&server, &id, "the long run", |v| v["last_run"].is_object())?;
    assert_eq!(view["last_run"]["status"], "success", "{view}");
    assert_eq!(server.send(Method::POST, "/job-long/_count", &json!({}))?.json()["count"], 3);
    assert!(server.wait_for_log("job token renewed for a long run"), "{}", server.logs());

    // Disabled while the run is under way: the next renewal is refused, so
    // the run loses her authority although its last token has not expired.
    let params = json!({"index": "job-cut", "doc": {}, "calls": 3, "pause_ms": 2000});
    let id = registered(&server, ANA, "long-2", json!({"once": 0}), params)?;
    wait_for_first_write(&server, "job-cut")?;
    patch_user(&server, "ana", json!({"op": "add", "path": "/disabled", "value": true}))?;
    let view = wait_for(&server, &id, "the cut run", |v| v["last_run"].is_object())?;
    assert_eq!(view["last_run"]["status"], "failure", "{view}");
    let message = view["last_run"]["message"].as_str().unwrap_or_default();
    let expected = "call 2: denied: token gate: the job's token was not renewed: user `ana` is disabled";
    assert!(message.starts_with(expected), "{message}");
    assert_eq!(server.send(Method::POST, "/job-cut/_count", &json!({}))?.json()["count"], 1);
    let events = audit(&server, "category=MISSING_PRIVILEGES&user=ana")?;
    assert!(events.iter().any(|e| e["job"] == json!(id) && e["gate"] == "token"), "{events:?}");
    Ok(())
}

#[test]
fn a_run_cut_short_by_a_crash_runs_again_at_restart() -> TestResult {
    let (deployment, server) = setup()?;
    let params = json!({"index": "job-crash", "doc": {}, "calls": 3, "pause_ms": 2000});
    let id = registered(&server, ANA, "cut", json!({"once": 0}), params)?;
    wait_for_first_write(&server, "job-crash")?;
    server.kill_hard();
    drop(server);
    // Its lease (10 s timeout + 30 s) would hold the job back; the new
    // process releases what the dead one left and runs it again at once.
    let server = start(&deployment)?;
    let view = wait_for(&server, &id, "the run again", |v| v["last_run"]["status"] == "success")?;
    assert_eq!(runs(&view), 1, "{view}");
    assert!(server.wait_for_log("released job leases left by the previous process"), "{}", server.logs());
    // At least once: the cut run's first write, then the whole run.
    assert_eq!(server.send(Method::POST, "/job-crash/_count", &json!({}))?.json()["count"], 4);
    Ok(())
}
