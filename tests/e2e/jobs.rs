//! Scheduled jobs end to end, through a real guest and the real binary: an
//! extension registers a job during a user's request (with the user's
//! consent); the host keeps who it runs as, and at every run resolves that
//! user again and mints a fresh token — changed roles apply, a disabled or
//! deleted user suspends the job, an administrator can give it to someone
//! else. Failures are retried, guest traps and loops are contained, and
//! jobs survive a restart.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::GUEST_HOST_CALLS;

use crate::support::{self, API, Deployment, Error, Server, TestResult, now_ms};

pub(crate) const ANA: (&str, &str) = ("ana", "Ana-Password-1");
pub(crate) const BOB: (&str, &str) = ("bob", "Bob-Password-1");
pub(crate) const CARL: (&str, &str) = ("carl", "Carl-Password-1");

fn start(deployment: &Deployment, extra_env: &[(&str, &str)]) -> Result<Server, String> {
    let mut command = support::warden();
    command
        .env("WARDEN_SCHEDULER_TICK_MS", "100")
        .env("WARDEN_JOB_RETRY_DELAY_MS", "200")
        // Short run tokens: a run longer than a second renews its token.
        .env("WARDEN_JOB_TOKEN_SECS", "2")
        .envs(extra_env.iter().copied());
    Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])
}

/// `probe` may write `job-*`; ana and bob may use it, consent to its jobs
/// and write `job-*` themselves; carl may use it but never consented.
pub(crate) fn setup() -> Result<(Deployment, Server), Error> {
    setup_with(&[])
}

/// [`setup`] with more environment for the server.
pub(crate) fn setup_with(extra_env: &[(&str, &str)]) -> Result<(Deployment, Server), Error> {
    let deployment = Deployment::new()?;
    deployment.install(
        "probe",
        GUEST_HOST_CALLS,
        "capabilities = [\"cluster\", \"scheduler\"]\n[limits]\ncpu_ms = 300\ntimeout_ms = 10000\n\
         [[jobs]]\nname = \"write\"\ncluster_actions = [\"indices:data/write/index\"]\nindex_patterns = [\"job-*\"]",
    )?;
    let server = start(&deployment, extra_env)?;
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
    // Consent first (refused for a user who may not consent: the
    // registration then says why).
    server.consent(who.0, who.1, "probe")?;
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

pub(crate) fn admin_job(server: &Server, id: &str) -> Result<Value, Error> {
    job(server, ("admin", support::ADMIN_PASSWORD), id)
}

/// Polls the job (as admin) until `done` holds; the last view otherwise.
pub(crate) fn wait_for(
    server: &Server,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, Error> {
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

/// Waits until the dispatcher has looked for due jobs often enough to
/// cover `span` (from `scheduler.tick_ms`, counted in `scheduler.ticks`).
fn wait_ticks_for(server: &Server, span: Duration) -> TestResult {
    let tick_ms = server.scheduler_health()?["tick_ms"].as_u64().ok_or("no tick_ms")?;
    let ticks = u64::try_from(span.as_millis())? / tick_ms.max(1) + 1;
    Ok(server.wait_for_ticks(ticks)?)
}

/// Waits until no run is under way on the server.
fn wait_idle(server: &Server) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.scheduler_health()?["runs_in_progress"] != 0 {
        assert!(Instant::now() < deadline, "runs still under way: {}", server.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn count(server: &Server, index: &str) -> Result<Value, Error> {
    Ok(server.send(Method::POST, &format!("/{index}/_count"), &json!({}))?.json()["count"].clone())
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
        json!({"interval": 3600}),
        json!({"index": "job-first", "doc": {"n": 0}}),
    )?;
    let hourly = admin_job(&server, &id)?;
    let registered_at = now_ms();
    // Registering the same name again is the same job, with the new
    // schedule and params, planned anew.
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
    let view = admin_job(&server, &id)?;
    assert_eq!(view["schedule"], json!({"interval": 1}), "{view}");
    let params: Value = serde_json::from_str(view["params"].as_str().ok_or("no params")?)?;
    assert_eq!(params, json!({"index": "job-first", "doc": {"n": 1}}), "{view}");
    let next = view["next_run"].as_u64().ok_or("no next_run")?;
    assert!(next < hourly["next_run"].as_u64().ok_or("no next_run")?, "{hourly} then {view}");
    assert!(next <= now_ms() + 1000 && next >= registered_at, "a second on: {view}");
    assert_eq!(server.get_as(ANA.0, ANA.1, "/_warden/jobs")?.json()["total"], 1, "one job");

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
    let written: Vec<&Value> =
        found["hits"]["hits"].as_array().into_iter().flatten().map(|h| &h["_source"]["n"]).collect();
    assert!(written.iter().all(|n| **n == 1), "every run used the new params: {found}");
    // The runs are audited as ana's, and each wrote through both gates.
    let events = audit(&server, "category=JOB_RUN&user=ana")?;
    let successes = events
        .iter()
        .filter(|e| e["job"] == json!(id) && e["extension"] == "probe")
        .filter(|e| e["reason"].as_str().is_some_and(|r| r.ends_with("Success: indexed 1 into job-first")))
        .count();
    assert!(successes >= 2, "{events:?}");

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
    wait_ticks_for(&server, Duration::from_millis(2500))?;
    assert_eq!(runs(&admin_job(&server, &id)?), suspended_at, "a suspended job does not run");
    let events = audit(&server, "category=JOB_WRITE&user=ana")?;
    assert!(
        events.iter().any(|e| e["job"] == json!(id) && e["reason"] == "suspended: user `ana` is disabled"),
        "{events:?}"
    );
    // The runs so far, as the metrics count them: successes, the failure
    // the user gate caused, the suspension, each run's lateness.
    let scrape = crate::metrics::Scrape::take(&server, &support::basic("admin", support::ADMIN_PASSWORD))?;
    let runs_of = |outcome: &str| scrape.value("warden_job_runs_total", &[("outcome", outcome)]);
    assert!(runs_of("success") >= 2.0 && runs_of("failure") >= 1.0 && runs_of("suspended") >= 1.0);
    let job_ok = [("extension", "probe"), ("kind", "job"), ("outcome", "ok")];
    assert!(scrape.value("warden_invocations_total", &job_ok) >= 3.0);
    assert!(scrape.histogram_count("warden_job_lateness_seconds", &[]) >= 3.0);
    assert!(scrape.value("warden_gate_decisions_total", &[("gate", "user"), ("result", "denied")]) >= 1.0);
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
    // Bob consented: the job runs on his consent from now on.
    assert_eq!(server.consent(BOB.0, BOB.1, "probe")?.status, 201);
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
    let now = now_ms();
    assert!(next > now + 3_000_000, "the next slot, an hour on: {view}");
    // Retried after WARDEN_JOB_RETRY_DELAY_MS (200) × attempt: the runs,
    // as audited when each ended, are at least 200 then 400 ms apart.
    let mut ends: Vec<u64> = audit(&server, &format!("category=JOB_RUN&job={failing}"))?
        .iter()
        .filter_map(|e| e["time_ms"].as_u64())
        .collect();
    ends.sort_unstable();
    assert_eq!(ends.len(), 3, "{ends:?}");
    let gaps = [ends[1] - ends[0], ends[2] - ends[1]];
    assert!(gaps[0] >= 190 && gaps[1] >= 390, "retry delays 200 × attempt: {gaps:?}");
    assert!(gaps[0] < 10_000 && gaps[1] < 10_000, "retried soon: {gaps:?}");

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

    // Disabling stops it: a job due every second runs no more.
    let ticking = registered(&server, ANA, "ticking", json!({"interval": 1}), json!({}))?;
    wait_for(&server, &ticking, "a first run", |v| runs(v) >= 1)?;
    let disabled = server.request(Method::POST, &format!("/_warden/jobs/{ticking}/_disable"), "")?;
    assert_eq!((disabled.status, &disabled.json()["enabled"]), (200, &json!(false)));
    wait_idle(&server)?;
    let stopped = admin_job(&server, &ticking)?;
    wait_ticks_for(&server, Duration::from_millis(3000))?;
    let later = admin_job(&server, &ticking)?;
    assert_eq!((runs(&later), &later["last_run"]), (runs(&stopped), &stopped["last_run"]), "{later}");
    // Run-now on a disabled job is refused, and runs nothing.
    let disabled = server.request(Method::POST, &format!("/_warden/jobs/{failing}/_disable"), "")?;
    assert_eq!(disabled.status, 200, "{disabled:?}");
    let before = admin_job(&server, &failing)?;
    let run_now = server.request(Method::POST, &format!("/_warden/jobs/{failing}/_run"), "")?;
    assert_eq!(run_now.status, 400, "{run_now:?}");
    wait_ticks_for(&server, Duration::from_millis(1000))?;
    let after = admin_job(&server, &failing)?;
    for field in ["runs", "failures", "last_run", "next_run", "enabled"] {
        assert_eq!(after[field], before[field], "{field}: {before} then {after}");
    }
    // The control: enabled again, it runs on.
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{ticking}/_enable"), "")?.status, 200);
    wait_for(&server, &ticking, "a run after re-enabling", |v| runs(v) > runs(&later))?;

    // The job indices are system indices: not even admin reaches them.
    for index in [
        ".warden-jobs",
        ".warden-job-identities",
        ".warden-job-locks",
        ".warden-job-names",
        ".warden-job-due",
    ] {
        let reply = server.send(Method::POST, &format!("/{index}/_search"), &json!({}))?;
        assert_eq!(reply.status, 403, "{index}: {reply:?}");
        let call =
            json!({"method": "POST", "path": format!("/{index}/_search"), "body": {}, "identity": "service"});
        let from_guest = server.send(Method::POST, "/_extensions/probe/call", &call)?.json();
        assert_eq!(from_guest["kind"], "denied", "{index}: {from_guest}");
        let message = from_guest["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("system-index gate:") && message.contains(index), "{index}: {message}");
        let call =
            json!({"method": "POST", "path": format!("/{index}/_search"), "body": {}, "identity": "user"});
        let as_admin = server.send(Method::POST, "/_extensions/probe/call", &call)?.json();
        let message = as_admin["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("system-index gate:"), "{index} as the user admin: {as_admin}");
    }
    // The control: the same call reaches an ordinary index.
    let call = json!({"method": "POST", "path": "/job-x/_search", "body": {}, "identity": "service"});
    let from_guest = server.send(Method::POST, "/_extensions/probe/call", &call)?.json();
    assert!(!from_guest["message"].as_str().unwrap_or_default().starts_with("system-index"), "{from_guest}");
    Ok(())
}

#[test]
fn jobs_survive_a_restart() -> TestResult {
    let (deployment, server) = setup()?;
    let now = now_ms();
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
    let server = start(&deployment, &[])?;
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
    let server = start(&deployment, &[])?;
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
    wait_for_first_write(&server, "job-long")?;
    // Health while it runs: one run under way, nothing left waiting.
    let health = server.scheduler_health()?;
    assert_eq!((&health["runs_in_progress"], &health["jobs_waiting"]), (&json!(1), &json!(0)), "{health}");
    let view = wait_for(&server, &id, "the long run", |v| v["last_run"].is_object())?;
    wait_idle(&server)?;
    let health = server.scheduler_health()?;
    assert_eq!((&health["runs_in_progress"], &health["jobs_waiting"]), (&json!(0), &json!(0)), "{health}");
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
    let server = start(&deployment, &[])?;
    let view = wait_for(&server, &id, "the run again", |v| v["last_run"]["status"] == "success")?;
    assert_eq!(runs(&view), 1, "{view}");
    assert!(server.wait_for_log("released job leases left by the previous process"), "{}", server.logs());
    // At least once: the cut run's first write, then the whole run.
    assert_eq!(server.send(Method::POST, "/job-crash/_count", &json!({}))?.json()["count"], 4);
    Ok(())
}

#[test]
fn a_long_run_loses_its_token_with_its_lease() -> TestResult {
    let (_deployment, server) = setup()?;
    // Removed while a run is under way: the job's lease goes with it, so
    // the next renewal is refused although the owner is still fine.
    let params = json!({"index": "job-removed", "doc": {}, "calls": 3, "pause_ms": 2000});
    let id = registered(&server, ANA, "removed", json!({"once": 0}), params)?;
    wait_for_first_write(&server, "job-removed")?;
    let removed = server.send_as(ANA.0, ANA.1, Method::DELETE, &format!("/_warden/jobs/{id}"), &json!({}))?;
    assert_eq!(removed.status, 200, "{removed:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let refusal = loop {
        let events = audit(&server, "category=MISSING_PRIVILEGES&user=ana")?;
        if let Some(event) = events.into_iter().find(|e| e["job"] == json!(id) && e["gate"] == "token") {
            break event;
        }
        assert!(Instant::now() < deadline, "no refused renewal: {}", server.logs());
        std::thread::sleep(Duration::from_millis(50));
    };
    let reason = refusal["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("this run no longer holds the job"), "{refusal}");
    wait_idle(&server)?;
    assert_eq!(count(&server, "job-removed")?, 1, "no write after the renewal was refused");
    Ok(())
}

#[test]
fn withdrawn_consent_suspends_the_job() -> TestResult {
    let (_deployment, server) = setup()?;
    let id = registered(&server, BOB, "bobs", json!({"interval": 1}), json!({}))?;
    wait_for(&server, &id, "a run with consent", |v| runs(v) >= 1)?;
    // Bob no longer holds `schedule:probe` (still a user, still enabled).
    let reply =
        server.send(Method::PUT, &format!("{API}/rolesmapping/scheduling"), &json!({"users": ["ana"]}))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let view = wait_for(&server, &id, "suspension", |v| v["suspended"].is_string())?;
    let reason = "user `bob` does not consent to extension `probe` scheduling work (needs `schedule:probe`)";
    assert_eq!(view["suspended"], reason, "{view}");
    let events = audit(&server, "category=JOB_WRITE&user=bob")?;
    assert!(
        events.iter().any(|e| e["job"] == json!(id) && e["reason"] == format!("suspended: {reason}")),
        "{events:?}"
    );
    let suspended_at = runs(&view);
    wait_ticks_for(&server, Duration::from_millis(2500))?;
    assert_eq!(runs(&admin_job(&server, &id)?), suspended_at, "a suspended job does not run");
    let refused = server.request(Method::POST, &format!("/_warden/jobs/{id}/_enable"), "")?;
    assert_eq!(refused.status, 409, "{refused:?}");
    // Consent given again: enabled, it runs on.
    let reply = server.send(
        Method::PUT,
        &format!("{API}/rolesmapping/scheduling"),
        &json!({"users": ["ana", "bob"]}),
    )?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{id}/_enable"), "")?.status, 200);
    wait_for(&server, &id, "a run with consent again", |v| runs(v) > suspended_at)?;
    Ok(())
}

#[test]
fn runs_under_way_finish_at_shutdown() -> TestResult {
    let (deployment, server) = setup()?;
    let params = json!({"index": "job-grace", "doc": {}, "calls": 3, "pause_ms": 1000});
    let id = registered(&server, ANA, "grace", json!({"once": 0}), params)?;
    wait_for_first_write(&server, "job-grace")?;
    let terminated_at = now_ms();
    let (status, logs) = server.terminate(Duration::from_secs(20))?;
    assert!(status.success(), "{status}: {logs}");
    assert!(logs.contains("warden stopped"), "{logs}");
    assert!(!logs.contains("unfinished"), "{logs}");

    // The run finished and recorded its outcome before the process exited:
    // nothing runs again after the restart (a cut run would, adding writes).
    let server = start(&deployment, &[])?;
    assert_eq!(count(&server, "job-grace")?, 3, "the run under way finished");
    let view = admin_job(&server, &id)?;
    assert_eq!((runs(&view), &view["last_run"]["status"]), (1, &json!("success")), "{view}");
    let finished = view["last_run"]["finished_at"].as_u64().unwrap_or(0);
    assert!(finished > terminated_at, "finished after SIGTERM: {view}");
    wait_ticks_for(&server, Duration::from_millis(1000))?;
    assert_eq!(count(&server, "job-grace")?, 3, "and is not run again");
    Ok(())
}

#[test]
fn missed_runs_are_not_replayed() -> TestResult {
    let (deployment, server) = setup()?;
    let params = json!({"index": "job-missed", "doc": {}});
    let id = registered(&server, ANA, "missed", json!({"interval": 1}), params)?;
    wait_for(&server, &id, "a first run", |v| runs(v) >= 1)?;
    let (status, logs) = server.terminate(Duration::from_secs(20))?;
    assert!(status.success(), "{status}: {logs}");
    let stopped_at = now_ms();
    // Down for five intervals.
    std::thread::sleep(Duration::from_millis(5000));
    let restarted_at = now_ms();
    let server = start(&deployment, &[])?;
    let resumed = wait_for(&server, &id, "runs after the restart", |v| {
        v["last_run"]["started_at"].as_u64().is_some_and(|t| t > restarted_at + 1500)
    })?;
    // Of the slots due while it was down, one ran (at once); the job then
    // carried on at its next slots after the restart.
    let missed = json!({"query": {"range": {"scheduled_at": {"gte": stopped_at, "lt": restarted_at}}}});
    let slots = server.send(Method::POST, "/job-missed/_count", &missed)?.json();
    assert!(slots["count"].as_u64().is_some_and(|n| n <= 1), "missed slots replayed: {slots} {resumed}");
    let after = json!({"query": {"range": {"scheduled_at": {"gte": restarted_at}}}});
    let carried_on = server.send(Method::POST, "/job-missed/_count", &after)?.json();
    assert!(carried_on["count"].as_u64().is_some_and(|n| n >= 1), "{carried_on}");
    Ok(())
}

/// An extension removed and another installed under the same id: the jobs
/// the old one registered (with their owner's consent to the old code) stay
/// suspended for good. Neither their owner nor an admin can resume them or
/// give them away, over REST or the CLI; the new extension does not see
/// them; they can be listed and deleted, and the new extension registers
/// its own (a registration of the same name makes a new job).
#[test]
fn a_removed_extensions_jobs_never_resume_under_a_reinstalled_id() -> TestResult {
    use base64::Engine as _;
    let deployment = Deployment::new()?;
    let server = start(&deployment, &[])?;
    let component = std::fs::read(GUEST_HOST_CALLS)?;
    let manifest = "id = \"probe\"\nversion = \"1.0.0\"\ncomponent = \"c.wasm\"\n\
                    capabilities = [\"cluster\", \"scheduler\"]\n";
    let body = json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(&component),
    });
    let install_and_approve = || -> TestResult {
        let reply = server.send(Method::POST, "/_warden/extensions", &body)?;
        assert_eq!(reply.status, 201, "{reply:?}");
        let reply = server.request(Method::POST, "/_warden/extensions/probe/_approve", "")?;
        assert_eq!(reply.status, 200, "{reply:?}");
        Ok(())
    };
    install_and_approve()?;
    // ana uses the extension and consents to its jobs (an operator's role,
    // not the extension's); carl could be given jobs.
    let consenting = json!({"extension_permissions": ["extension:probe/*", "schedule:probe"]});
    for (path, body) in [
        (format!("{API}/roles/scheduling"), consenting),
        (format!("{API}/internalusers/ana"), json!({"password": ANA.1})),
        (format!("{API}/internalusers/carl"), json!({"password": CARL.1})),
        (format!("{API}/rolesmapping/scheduling"), json!({"users": ["ana", "carl"]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    let hourly = json!({"interval": 3600});
    let nightly = registered(&server, ANA, "nightly", hourly.clone(), json!({}))?;
    let weekly = registered(&server, ANA, "weekly", hourly.clone(), json!({}))?;

    // Removed: both suspended; then a (new) extension under the same id.
    let reply = server.request(Method::DELETE, "/_warden/extensions/probe", "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut suspended = reply.json()["suspended_jobs"].as_array().cloned().unwrap_or_default();
    suspended.sort_by_key(|id| id.as_str().map(str::to_owned));
    let mut expected = vec![json!(nightly), json!(weekly)];
    expected.sort_by_key(|id| id.as_str().map(str::to_owned));
    assert_eq!(suspended, expected);
    install_and_approve()?;

    // Resuming is refused, to the owner and to an admin, saying why and
    // what to do; so is giving the job away, and running it now.
    let enable = format!("/_warden/jobs/{nightly}/_enable");
    for (user, password) in [ANA, ("admin", support::ADMIN_PASSWORD)] {
        let reply = server.send_as(user, password, Method::POST, &enable, &Value::Null)?;
        assert_eq!(reply.status, 409, "{user}: {reply:?}");
        let reason = reply.reason();
        assert!(reason.contains("extension `probe` was removed on"), "{reason}");
        assert!(reason.contains("delete it"), "{reason}");
    }
    let reply =
        server.send(Method::PUT, &format!("/_warden/jobs/{nightly}/_owner"), &json!({"user": "carl"}))?;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.reason().contains("was removed on"), "{reply:?}");
    let reply = server.request(Method::POST, &format!("/_warden/jobs/{nightly}/_run"), "")?;
    assert_eq!(reply.status, 400, "{reply:?}");
    let (ok, _, said) = cli(&server, &["enable", &nightly])?;
    assert!(!ok && said.contains("was removed on"), "{said}");
    // Nothing changed: still suspended, still ana's, never run.
    let view = admin_job(&server, &nightly)?;
    assert!(view["suspended"].as_str().is_some_and(|s| s.contains("was removed")), "{view}");
    assert!(view["extension_removed_at"].is_string(), "{view}");
    assert_eq!((&view["user"], runs(&view)), (&json!("ana"), 0), "{view}");

    // The new extension does not see the old one's jobs.
    let listed = server.get_as(ANA.0, ANA.1, "/_extensions/probe/jobs")?;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(!listed.body.contains(&nightly) && !listed.body.contains(&weekly), "{listed:?}");
    let reply = server.get_as(ANA.0, ANA.1, &format!("/_extensions/probe/jobs/{nightly}"))?;
    assert!(!reply.body.contains("\"outcome\":\"ok\""), "{reply:?}");

    // Registered again through the new extension: a new job, the old gone.
    let renewed = registered(&server, ANA, "weekly", hourly, json!({}))?;
    assert_ne!(renewed, weekly);
    assert_eq!(server.get(&format!("/_warden/jobs/{weekly}"))?.status, 404);
    let fresh = admin_job(&server, &renewed)?;
    assert!(fresh["suspended"].is_null() && fresh["extension_removed_at"].is_null(), "{fresh}");

    // Deleting the old one works.
    let reply = server.request(Method::DELETE, &format!("/_warden/jobs/{nightly}"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(server.get(&format!("/_warden/jobs/{nightly}"))?.status, 404);
    Ok(())
}

/// `GET /_warden/jobs/{id}/runs` as `who`; the answer.
fn history(server: &Server, who: (&str, &str), id: &str) -> Result<Value, Error> {
    let reply = server.get_as(who.0, who.1, &format!("/_warden/jobs/{id}/runs"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json())
}

/// `warden jobs <args>` as admin against `server`: (success, stdout, stderr).
fn cli(server: &Server, args: &[&str]) -> Result<(bool, String, String), Error> {
    let args: Vec<&str> = std::iter::once("jobs").chain(args.iter().copied()).collect();
    Ok(support::cli_as(server, ("admin", support::ADMIN_PASSWORD), &args)?)
}

/// Polls the audit log (as admin) until an event matches.
fn wait_for_event(server: &Server, query: &str, matches: impl Fn(&Value) -> bool) -> Result<Value, Error> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(event) = audit(server, query)?.into_iter().find(&matches) {
            return Ok(event);
        }
        if Instant::now() > deadline {
            return Err(format!("no audit event for {query}: {}", server.logs()).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_history_shows_retries_and_five_failures_in_a_row_suspend() -> TestResult {
    let (_deployment, server) = setup()?;
    let failing = json!({"fail": "no data yet"});
    let id = registered(&server, ANA, "flaky", json!({"interval": 3600}), failing.clone())?;
    assert_eq!(history(&server, ANA, &id)?["runs"], json!([]), "no runs yet");

    // Three failed attempts (a run and its two retries), then a success:
    // the count of failures in a row starts again.
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{id}/_run"), "")?.status, 200);
    let view = wait_for(&server, &id, "three attempts", |v| v["failures"] == 3)?;
    assert_eq!((&view["consecutive_failures"], &view["suspended"]), (&json!(3), &Value::Null), "{view}");
    registered(&server, ANA, "flaky", json!({"interval": 3600}), json!({}))?;
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{id}/_run"), "")?.status, 200);
    let view = wait_for(&server, &id, "a success", |v| v["last_run"]["status"] == "success")?;
    assert_eq!(view["consecutive_failures"], 0, "a success resets the count: {view}");

    // Five failures in a row: three attempts of one slot, two of the next.
    registered(&server, ANA, "flaky", json!({"interval": 3600}), failing)?;
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{id}/_run"), "")?.status, 200);
    wait_for(&server, &id, "three more attempts", |v| v["failures"] == 6)?;
    let view = admin_job(&server, &id)?;
    assert_eq!((&view["consecutive_failures"], &view["suspended"]), (&json!(3), &Value::Null), "{view}");
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{id}/_run"), "")?.status, 200);
    let view = wait_for(&server, &id, "the suspension", |v| v["suspended"].is_string())?;
    let reason = "5 consecutive failed runs; the last (Failure): no data yet";
    assert_eq!(view["suspended"], reason, "{view}");
    assert_eq!((&view["failures"], &view["runs"]), (&json!(8), &json!(9)), "{view}");
    // Audited as every suspension is, under the owner.
    let event = wait_for_event(&server, "category=JOB_WRITE&user=ana", |e| {
        e["job"] == json!(id) && e["reason"] == format!("suspended: {reason}")
    })?;
    assert_eq!(event["extension"], "probe", "{event}");
    // Suspended, it runs no more, and cannot be asked to.
    wait_idle(&server)?;
    let run_now = server.request(Method::POST, &format!("/_warden/jobs/{id}/_run"), "")?;
    assert_eq!(run_now.status, 400, "{run_now:?}");

    // The history, newest first: each attempt with its slot, start,
    // duration, outcome and message.
    let answer = history(&server, ANA, &id)?;
    assert_eq!((&answer["id"], &answer["name"], &answer["kept"]), (&json!(id), &json!("flaky"), &json!(20)));
    let runs = answer["runs"].as_array().ok_or("no runs")?;
    let seen: Vec<(u64, &str)> = runs
        .iter()
        .map(|r| (r["attempt"].as_u64().unwrap_or(0), r["outcome"].as_str().unwrap_or("")))
        .collect();
    let expected = [
        (2, "failure"),
        (1, "failure"),
        (3, "failure"),
        (2, "failure"),
        (1, "failure"),
        (1, "success"),
        (3, "failure"),
        (2, "failure"),
        (1, "failure"),
    ];
    assert_eq!(seen, expected, "{answer}");
    let seqs: Vec<u64> = runs.iter().filter_map(|r| r["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=9).rev().collect::<Vec<_>>(), "{answer}");
    for run in runs {
        let (scheduled, started) = (run["scheduled_at"].as_u64(), run["started_at"].as_u64());
        assert!(scheduled.is_some_and(|s| started.is_some_and(|t| t >= s)), "{run}");
        assert!(run["duration_ms"].is_u64() && run["lateness_ms"].is_u64(), "{run}");
        assert!(run["started_at_iso"].as_str().is_some_and(|t| t.ends_with('Z')), "{run}");
    }
    assert_eq!(runs[0]["message"], "no data yet");
    // A retry belongs to its slot: attempts 2 and 3 carry attempt 1's slot.
    assert_eq!(runs[2]["scheduled_at"], runs[4]["scheduled_at"], "{answer}");
    assert!(runs[2]["planned_at"].as_u64() > runs[4]["planned_at"].as_u64(), "{answer}");

    // Whom the job is hidden from, its history is too; admins see it.
    assert_eq!(server.get_as(BOB.0, BOB.1, &format!("/_warden/jobs/{id}/runs"))?.status, 404);
    assert_eq!(server.get(&format!("/_warden/jobs/{id}/runs"))?.json()["total"], 9);
    assert_eq!(server.get("/_warden/jobs/0123456789abcdef/runs")?.status, 404);
    let anonymous = server.get_with_authorization(&format!("/_warden/jobs/{id}/runs"), None)?;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");

    // The CLI shows the same, one line per run.
    let (ok, out, err) = cli(&server, &["runs", &id])?;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "a header and nine runs: {out}");
    assert!(lines[0].contains("scheduled") && lines[0].contains("outcome"), "{out}");
    assert!(lines[1].contains("failure") && lines[1].ends_with("no data yet"), "{out}");
    let (ok, out, err) = cli(&server, &["runs", &id, "--json"])?;
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out)?["total"], 9, "{out}");
    let (ok, _, err) = cli(&server, &["runs", "../_enable"])?;
    assert!(!ok && err.contains("is not a job id"), "{err}");

    // Resumed, it counts afresh: one more failure does not suspend it again.
    registered(&server, ANA, "flaky", json!({"interval": 3600}), json!({"fail": "still"}))?;
    let enabled = server.request(Method::POST, &format!("/_warden/jobs/{id}/_enable"), "")?;
    assert_eq!((enabled.status, &enabled.json()["consecutive_failures"]), (200, &json!(0)), "{enabled:?}");
    assert_eq!(server.request(Method::POST, &format!("/_warden/jobs/{id}/_run"), "")?.status, 200);
    let view = wait_for(&server, &id, "three attempts after resuming", |v| v["failures"] == 11)?;
    assert_eq!((&view["consecutive_failures"], &view["suspended"]), (&json!(3), &Value::Null), "{view}");

    // Health reports how late this node started its runs, and how late
    // the oldest job waiting is (none waits now).
    wait_idle(&server)?;
    let health = server.scheduler_health()?;
    let lateness = &health["lateness_ms"];
    assert!(lateness["samples"].as_u64().is_some_and(|n| n >= 12), "{health}");
    let (p50, p99, max) = (lateness["p50"].as_u64(), lateness["p99"].as_u64(), lateness["max"].as_u64());
    assert!(p50.is_some() && p50 <= p99 && p99 <= max, "{health}");
    assert!(max.is_some_and(|max| max < 10_000), "a 100 ms tick starts runs soon: {health}");
    assert_eq!(
        (&health["jobs_waiting"], &health["oldest_waiting_ms"]),
        (&json!(0), &Value::Null),
        "{health}"
    );

    // The history index is a system index: not even admin reads it directly.
    let direct = server.send(Method::POST, "/.warden-job-runs/_search", &json!({}))?;
    assert_eq!(direct.status, 403, "{direct:?}");
    let call =
        json!({"method": "POST", "path": "/.warden-job-runs/_search", "body": {}, "identity": "service"});
    let from_guest = server.send(Method::POST, "/_extensions/probe/call", &call)?.json();
    assert!(
        from_guest["message"].as_str().unwrap_or_default().starts_with("system-index gate:"),
        "{from_guest}"
    );

    // Removed, its history goes with it.
    assert_eq!(server.request(Method::DELETE, &format!("/_warden/jobs/{id}"), "")?.status, 200);
    assert_eq!(server.get(&format!("/_warden/jobs/{id}/runs"))?.status, 404);
    Ok(())
}

#[test]
fn zones_jitter_and_catch_up_are_asked_for_by_the_guest() -> TestResult {
    let (deployment, server) = setup()?;
    assert_eq!(server.consent(ANA.0, ANA.1, "probe")?.status, 201);
    // Bad asks are refused by name, and nothing is stored.
    for (schedule, options, says) in [
        (json!({"cron": "CRON_TZ=Mars/Olympus 0 3 * * *"}), None, "unknown time zone `Mars/Olympus`"),
        (
            json!({"cron": "CRON_TZ=Europe/Berlin 0 0 30 2 *"}),
            None,
            "matches no date that exists in `Europe/Berlin`",
        ),
        (json!({"interval": 60}), Some(json!({"jitter": 0.96})), "between 0 and 0.95"),
        (json!({"interval": 60}), Some(json!({"jitter": -0.1})), "between 0 and 0.95"),
    ] {
        let mut spec = json!({"name": "bad", "schedule": schedule, "params": {}});
        if let Some(options) = options {
            spec["options"] = options;
        }
        let reply = server.send_as(ANA.0, ANA.1, Method::POST, "/_extensions/probe/schedule", &spec)?;
        let answer = reply.json();
        assert_eq!(answer["kind"], "invalid", "{says}: {answer}");
        assert!(answer["message"].as_str().unwrap_or_default().contains(says), "{says}: {answer}");
    }
    assert_eq!(server.get("/_warden/jobs")?.json()["total"], 0, "nothing half-registered");

    // A cron in Berlin: shown with its zone; its next run is 03:00 there
    // (02:00 or 01:00 UTC, as daylight saving time stands), within a day.
    let nightly =
        registered(&server, ANA, "nightly", json!({"cron": "CRON_TZ=Europe/Berlin 0 3 * * *"}), json!({}))?;
    let view = admin_job(&server, &nightly)?;
    assert_eq!(view["schedule"], json!({"cron": "0 3 * * *", "timezone": "Europe/Berlin"}), "{view}");
    let next = view["next_run_at"].as_str().unwrap_or_default();
    assert!(next.ends_with("T02:00:00.000Z") || next.ends_with("T01:00:00.000Z"), "{view}");
    let in_ms = view["next_run"].as_u64().unwrap_or(0).saturating_sub(now_ms());
    assert!(in_ms <= 25 * 3_600_000, "{view}");
    // The extension gets it back as it gave it.
    let seen = server.get_as(ANA.0, ANA.1, &format!("/_extensions/probe/jobs/{nightly}"))?.json();
    assert!(
        seen["message"].as_str().unwrap_or_default().contains("CRON_TZ=Europe/Berlin 0 3 * * *"),
        "{seen}"
    );

    // Jitter: every run starts within 0.9 of its one-second interval after its slot.
    let spread = json!({"jitter": 0.9, "catch_up": "skip"});
    let mut spec = json!({"name": "spread", "schedule": {"interval": 1}, "params": {}});
    spec["options"] = spread;
    let reply = server.send_as(ANA.0, ANA.1, Method::POST, "/_extensions/probe/schedule", &spec)?;
    let spread_id = reply.json()["id"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(admin_job(&server, &spread_id)?["jitter"], 0.9);
    wait_for(&server, &spread_id, "three runs", |v| runs(v) >= 3)?;
    for run in history(&server, ANA, &spread_id)?["runs"].as_array().ok_or("no runs")? {
        let (slot, planned) = (run["scheduled_at"].as_u64(), run["planned_at"].as_u64());
        let delay = planned.zip(slot).map(|(p, s)| p.saturating_sub(s));
        assert!(delay.is_some_and(|d| d < 900), "{run}");
        assert!(planned <= run["started_at"].as_u64(), "{run}");
    }
    assert_eq!(server.request(Method::DELETE, &format!("/_warden/jobs/{spread_id}"), "")?.status, 200);

    // Catch-up: two every-second jobs, one skipping missed runs (the
    // default), one catching up once; the host is down for three seconds.
    let skipping = registered(
        &server,
        ANA,
        "skipping",
        json!({"interval": 1}),
        json!({"index": "job-skip", "doc": {}}),
    )?;
    let mut spec = json!({"name": "catching-up", "schedule": {"interval": 1}, "params": {"index": "job-once", "doc": {}}});
    spec["options"] = json!({"jitter": 0.0, "catch_up": "once"});
    let reply = server.send_as(ANA.0, ANA.1, Method::POST, "/_extensions/probe/schedule", &spec)?;
    let catching_up = reply.json()["id"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(admin_job(&server, &catching_up)?["catch_up"], "once");
    wait_for(&server, &skipping, "a first run", |v| runs(v) >= 1)?;
    wait_for(&server, &catching_up, "a first run", |v| runs(v) >= 1)?;
    let (status, logs) = server.terminate(Duration::from_secs(20))?;
    assert!(status.success(), "{status}: {logs}");
    let stopped_at = now_ms();
    std::thread::sleep(Duration::from_millis(3000));
    let restarted_at = now_ms();
    let server = start(&deployment, &[])?;
    for id in [&skipping, &catching_up] {
        wait_for(&server, id, "runs after the restart", |v| {
            v["last_run"]["started_at"].as_u64().is_some_and(|t| t > restarted_at + 1500)
        })?;
    }
    // What each did, after the restart, for slots due before it.
    let late = |id: &str| -> Result<Vec<Value>, Error> {
        let answer = history(&server, ANA, id)?;
        Ok(answer["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["started_at"].as_u64().is_some_and(|t| t >= restarted_at))
            .filter(|r| r["scheduled_at"].as_u64().is_some_and(|t| t < restarted_at))
            .cloned()
            .collect())
    };
    let skipped = late(&skipping)?;
    assert_eq!(skipped.len(), 1, "skip: one entry, nothing run: {skipped:?}");
    assert_eq!(skipped[0]["outcome"], "missed", "{skipped:?}");
    assert!(skipped[0]["scheduled_at"].as_u64().is_some_and(|t| t >= stopped_at - 1500), "{skipped:?}");
    let message = skipped[0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("missed while no node was up; skipped to the next slot"), "{message}");
    let caught_up = late(&catching_up)?;
    assert_eq!(caught_up.len(), 1, "once: one catch-up run for all the missed slots: {caught_up:?}");
    assert_eq!(caught_up[0]["outcome"], "success", "{caught_up:?}");
    let once = history(&server, ANA, &catching_up)?;
    assert!(once["runs"].as_array().into_iter().flatten().all(|r| r["outcome"] != "missed"), "{once}");
    Ok(())
}
