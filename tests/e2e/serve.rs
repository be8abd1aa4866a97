//! `warden serve` end to end: the examples, every hostile guest contained,
//! backpressure, deadlines, the compile cache across a restart. Each test
//! runs its own server on a free loopback port.

use std::time::Duration;

use warden_test_artifacts::*;

use crate::support::{Deployment, Server, TestResult};

// Every guest in the repository, hostile or example, must have a test here
// named after it: an item of that name must exist (checked when this file
// compiles)...
macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_hostile!(assert_test_exists);
foreach_example!(assert_test_exists);

/// ...and it must be a `#[test]`: the test harness's own list of this
/// binary's tests holds `serve::<guest>: test` for every guest.
#[test]
fn every_guest_has_a_test() -> TestResult {
    let (mut hostile, mut examples): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    macro_rules! collect_hostile {
        ($name:ident) => {
            hostile.push(stringify!($name));
        };
    }
    macro_rules! collect_example {
        ($name:ident) => {
            examples.push(stringify!($name));
        };
    }
    foreach_hostile!(collect_hostile);
    foreach_example!(collect_example);
    // Test names are module paths without the crate: `serve::guest_trap`.
    let module = module_path!().split_once("::").map_or("", |(_, module)| module);
    let listing = std::process::Command::new(std::env::current_exe()?)
        .args(["--list", "--format", "terse"])
        .env_remove("RUST_TEST_THREADS")
        .output()?;
    let listing = String::from_utf8(listing.stdout)?;
    let tests: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.strip_suffix(": test")?.strip_prefix(module)?.strip_prefix("::"))
        .collect();
    assert!(tests.contains(&"every_guest_has_a_test"), "the listing is the harness's: {listing}");
    assert!(!hostile.is_empty() && !examples.is_empty(), "{hostile:?} {examples:?}");
    let guests: Vec<&str> = hostile.into_iter().chain(examples).collect();
    assert!(guests.len() >= 10, "{guests:?}");
    let missing: Vec<&&str> = guests.iter().filter(|guest| !tests.contains(guest)).collect();
    assert!(missing.is_empty(), "guests without a #[test] of their name in {module}: {missing:?}\n{listing}");
    Ok(())
}

/// A deployment with hello-world plus whatever `setup` installs, started.
fn serve_with(
    setup: impl FnOnce(&Deployment) -> std::io::Result<()>,
) -> Result<(Deployment, Server), Box<dyn std::error::Error>> {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "capabilities = []")?;
    setup(&deployment)?;
    let server = deployment.start()?;
    Ok((deployment, server))
}

/// The check after every hostile request: the host still serves.
fn assert_hello_still_answers(server: &Server) -> TestResult {
    let reply = server.get("/_extensions/hello/greet/again")?;
    assert_eq!(reply.status, 200, "hello-world after a hostile request: {reply:?}");
    assert_eq!(reply.json()["greeting"], "Hello, again!");
    Ok(())
}

/// examples/reporter: a summary registered over REST runs on its schedule
/// as the user who asked and writes its report; only the window, and only
/// the indices she may read, count.
#[test]
fn reporter() -> TestResult {
    use reqwest::Method;
    use serde_json::json;
    const RITA: (&str, &str) = ("rita", "Rita-Password-1");
    let (_deployment, server) = serve_with(|d| {
        d.install("reporter", REPORTER, r#"capabilities = ["cluster", "scheduler"]"#).map(drop)
    })?;
    let api = "/_plugins/_security/api";
    // The extension may read every `logs-*`; rita only `logs-app`.
    let policy = json!({"index_permissions": [
        {"index_patterns": ["logs-*"], "allowed_actions": ["read"]},
        {"index_patterns": ["reports"], "allowed_actions": ["crud", "create_index"]},
    ]});
    let rita_role = json!({
        "extension_permissions": ["extension:reporter/*", "schedule:reporter"],
        "index_permissions": [
            {"index_patterns": ["logs-app"], "allowed_actions": ["read"]},
            {"index_patterns": ["reports"], "allowed_actions": ["crud", "create_index"]},
        ],
    });
    for (path, body) in [
        (format!("{api}/roles/extension:reporter"), policy),
        (format!("{api}/roles/app_reader"), rita_role),
        (format!("{api}/internalusers/rita"), json!({"password": RITA.1})),
        (format!("{api}/rolesmapping/app_reader"), json!({"users": ["rita"]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    let now = crate::support::now_ms();
    let mut bulk = String::new();
    for (index, level, at) in [
        ("logs-app", "error", now),
        ("logs-app", "info", now),
        ("logs-app", "info", now - 1000),
        ("logs-app", "error", 1_600_000_000_000),
        // In the window, but rita cannot read this index.
        ("logs-other", "error", now),
        ("logs-other", "debug", now),
    ] {
        bulk.push_str(&json!({"index": {"_index": index}}).to_string());
        bulk.push('\n');
        bulk.push_str(&json!({"level": level, "@timestamp": at}).to_string());
        bulk.push('\n');
    }
    let reply = server.request(Method::POST, "/_bulk?refresh=true", &bulk)?;
    assert_eq!((reply.status, &reply.json()["errors"]), (200, &json!(false)), "{reply:?}");

    let spec = json!({"source": "logs-*", "field": "level", "window": "1d", "every_secs": 1});
    let path = "/_extensions/reporter/summaries/app-daily";
    assert_eq!(server.consent(RITA.0, RITA.1, "reporter")?.status, 201);
    let reply = server.send_as(RITA.0, RITA.1, Method::PUT, path, &spec)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let report = loop {
        let reports = server.get_as(RITA.0, RITA.1, &format!("{path}/reports"))?.json();
        if let Some(first) = reports["reports"].get(0) {
            break first.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no report: {reports}\n{}", server.logs());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(report["total"], 3, "neither the 2020 event nor logs-other counts: {report}");
    assert_eq!(report["counts"], json!({"error": 1, "info": 2}), "{report}");
    assert_eq!(report["summary"], "app-daily");
    // The run was rita's.
    let events = server.get("/_warden/audit?category=JOB_RUN")?.json();
    let runs: Vec<&serde_json::Value> = events["events"].as_array().into_iter().flatten().collect();
    assert!(
        !runs.is_empty() && runs.iter().all(|e| e["user"] == "rita" && e["extension"] == "reporter"),
        "{events}"
    );
    let jobs = server.get("/_warden/jobs?user=rita")?.json();
    assert_eq!(jobs["total"], 1, "{jobs}");
    // (runs_in_progress and jobs_waiting during a run: tests/e2e/jobs.rs.)
    let health = server.get("/_warden/health")?.json();
    assert_eq!(health["scheduler"]["tick_ms"], 500, "{health}");
    let listed = server.get_as(RITA.0, RITA.1, "/_extensions/reporter/summaries")?.json();
    assert_eq!(listed["summaries"][0]["params"]["source"], "logs-*", "{listed}");
    let reply = server.send_as(RITA.0, RITA.1, Method::DELETE, path, &json!({}))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        server.get_as(RITA.0, RITA.1, "/_extensions/reporter/summaries")?.json()["summaries"],
        json!([])
    );
    assert_eq!(server.get("/_warden/jobs?user=rita")?.json()["total"], 0);
    Ok(())
}

#[test]
fn hello_world() -> TestResult {
    let (_deployment, server) = serve_with(|_| Ok(()))?;
    let reply = server.get("/_extensions/hello/greet/ana")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, r#"{"greeting":"Hello, ana!"}"#);
    assert_eq!(reply.headers.get("content-type").map(|v| v.as_bytes()), Some(b"application/json".as_slice()));
    assert!(
        server.wait_for_log("greeting ana"),
        "the guest's log line reaches the host log:\n{}",
        server.logs()
    );
    assert!(server.logs().lines().any(|l| l.contains("greeting ana") && l.contains("extension=\"hello\"")));

    // The guest's own routing and errors come through untouched.
    let reply = server.request(reqwest::Method::POST, "/_extensions/hello/greet/ana", "")?;
    assert_eq!(reply.status, 405);
    assert_eq!(server.get("/_extensions/hello/nowhere")?.status, 404);
    // Unknown extensions and routes are the host's 404s.
    let reply = server.get("/_extensions/nobody/greet/ana")?;
    assert_eq!(reply.status, 404);
    assert!(reply.reason().contains("no extension `nobody`"), "{reply:?}");

    let health = server.get("/_warden/health")?.json();
    assert_eq!(health["status"], "green");
    assert_eq!(health["extensions"][0]["id"], "hello");
    assert_eq!(health["extensions"][0]["serves_http"], true);
    Ok(())
}

#[test]
fn hello_world_from_concurrent_clients() -> TestResult {
    let (_deployment, server) = serve_with(|_| Ok(()))?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let server = &server;
                scope.spawn(move || -> Result<(), String> {
                    for j in 0..10 {
                        let name = format!("c{i}r{j}");
                        let reply = server
                            .get(&format!("/_extensions/hello/greet/{name}"))
                            .map_err(|e| e.to_string())?;
                        if reply.status != 200 || reply.json()["greeting"] != format!("Hello, {name}!") {
                            return Err(format!("{reply:?}"));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(result) => result?,
                Err(_) => return Err("client thread panicked".to_owned()),
            }
        }
        Ok::<(), String>(())
    })?;
    Ok(())
}

#[test]
fn guest_infinite_loop() -> TestResult {
    let (_deployment, server) =
        serve_with(|d| d.install("spin", GUEST_INFINITE_LOOP, "[limits]\ncpu_ms = 200").map(drop))?;
    let started = std::time::Instant::now();
    let reply = server.get("/_extensions/spin/")?;
    assert_eq!(reply.status, 504, "{reply:?}");
    assert!(reply.reason().contains("used more than its 200ms of CPU"), "{reply:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped near its deadline, took {:?}",
        started.elapsed()
    );
    assert_hello_still_answers(&server)?;
    // And again: a stopped guest leaves nothing behind that breaks the next one.
    assert_eq!(server.get("/_extensions/spin/")?.status, 504);
    assert_hello_still_answers(&server)
}

#[test]
fn guest_memory_bomb() -> TestResult {
    let (_deployment, server) =
        serve_with(|d| d.install("bomb", GUEST_MEMORY_BOMB, "[limits]\nmemory_mib = 16").map(drop))?;
    let reply = server.get("/_extensions/bomb/")?;
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(reply.reason().contains("exceeded its memory limit of 16 MiB"), "{reply:?}");
    assert_hello_still_answers(&server)
}

#[test]
fn guest_trap() -> TestResult {
    let (_deployment, server) = serve_with(|d| d.install("trap", GUEST_TRAP, "").map(drop))?;
    let reply = server.get("/_extensions/trap/boom")?;
    assert_eq!(reply.status, 500, "{reply:?}");
    let reason = reply.reason();
    assert!(reason.contains("extension `trap` trapped"), "{reason}");
    assert!(
        reason.contains("test guest panicked on purpose while handling /boom"),
        "the panic message is reported: {reason}"
    );
    assert!(server.wait_for_log("panicked"), "guest stderr reaches the log:\n{}", server.logs());
    let logs = server.logs();
    assert!(
        logs.lines().any(|l| l.contains("panicked") && l.contains("extension=\"trap\"")),
        "guest stderr is tagged with the extension id:\n{logs}"
    );
    assert_hello_still_answers(&server)
}

#[test]
fn guest_stack_overflow() -> TestResult {
    let (_deployment, server) = serve_with(|d| d.install("deep", GUEST_STACK_OVERFLOW, "").map(drop))?;
    let reply = server.get("/_extensions/deep/")?;
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(reply.reason().contains("stack overflow"), "{reply:?}");
    assert_hello_still_answers(&server)
}

#[test]
fn guest_host_calls() -> TestResult {
    let (_deployment, server) = serve_with(|d| {
        d.install("granted", GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
        d.install("ungranted", GUEST_HOST_CALLS, "capabilities = []").map(drop)
    })?;
    // Granted: linked; admin's `*` lets them consent (`schedule:granted`)
    // but is no consent: registering is refused until they give one.
    let refused = server.get("/_extensions/granted/schedule")?;
    assert_eq!(refused.json()["outcome"], "error", "{refused:?}");
    assert!(
        refused.json()["message"].as_str().is_some_and(|m| m.contains("has not consented")),
        "{refused:?}"
    );
    assert_eq!(server.consent("admin", crate::support::ADMIN_PASSWORD, "granted")?.status, 201);
    // The job registered is the one listed.
    let registered = server.get("/_extensions/granted/schedule")?;
    assert_eq!(registered.json()["outcome"], "ok", "{registered:?}");
    let listed = server.get("/_extensions/granted/jobs")?;
    assert_eq!(listed.json()["outcome"], "ok", "{listed:?}");
    assert!(listed.json()["message"].as_str().is_some_and(|m| m.contains("name: \"probe\"")), "{listed:?}");
    // The cluster is there, but this extension has no policy: the service gate says no.
    let reply = server.get("/_extensions/granted/cluster")?;
    assert_eq!(reply.json()["kind"], "denied", "{reply:?}");
    assert!(reply.json()["message"].as_str().is_some_and(|m| m.starts_with("service gate:")), "{reply:?}");
    // Not granted: refused at load, naming every offending interface.
    let reply = server.get("/_extensions/ungranted/cluster")?;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(!reply.body.contains("component.wasm"), "a caller is not shown server paths: {reply:?}");
    let reason = load_failure(&server, "ungranted")?;
    assert!(reason.contains("`warden:extension/cluster@0.1.0` needs the `cluster` capability"), "{reason}");
    assert!(
        reason.contains("`warden:extension/scheduler@0.1.0` needs the `scheduler` capability"),
        "{reason}"
    );
    assert!(reason.contains("component.wasm"), "names the file: {reason}");
    let health = server.get("/_warden/health")?.json();
    assert_eq!(health["status"], "yellow");
    assert_eq!(health["failed"][0]["id"], "ungranted");

    // The guest's answer goes out as it asked when it is valid HTTP...
    let answer =
        |spec: serde_json::Value| server.send(reqwest::Method::POST, "/_extensions/granted/answer", &spec);
    let reply = answer(serde_json::json!({"status": 201, "headers": [["x-answer", "yes"]]}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.headers.get("x-answer").map(|v| v.as_bytes()), Some(b"yes".as_slice()));
    // ...and is a 502 naming what is wrong when it is not.
    for (spec, says) in [
        (serde_json::json!({"status": 42}), "an invalid HTTP status 42"),
        (serde_json::json!({"status": 101}), "an invalid HTTP status 101"),
        (serde_json::json!({"status": 200, "headers": [["bad name", "x"]]}), "an invalid header name"),
        (
            serde_json::json!({"status": 200, "headers": [["x-ok", "line\nbreak"]]}),
            "an invalid value for header",
        ),
    ] {
        let reply = answer(spec.clone())?;
        assert_eq!(reply.status, 502, "{spec}: {reply:?}");
        assert!(
            reply.reason().contains(&format!("extension `granted` answered {says}")),
            "{spec}: {reply:?}"
        );
    }
    assert_hello_still_answers(&server)
}

/// tests/guests/isolation-probe: the planting case; the limits case is in
/// `isolation`.
#[test]
fn guest_isolation_probe() -> TestResult {
    crate::isolation::state_planted_by_one_request_is_not_seen_by_the_next()
}

#[test]
fn guest_sleeper() -> TestResult {
    let (_deployment, server) = serve_with(|d| {
        d.install("nap", GUEST_SLEEPER, "[limits]\ncpu_ms = 50\ntimeout_ms = 400")?;
        d.install("queue", GUEST_SLEEPER, "[limits]\nmax_concurrency = 1\nqueue_timeout_ms = 50").map(drop)
    })?;
    // Waiting in a host call is not CPU time: 300 ms asleep fits a 50 ms CPU budget.
    let reply = server.get("/_extensions/nap/?ms=300")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    // But the wall clock does run out.
    let reply = server.get("/_extensions/nap/?ms=3000")?;
    assert_eq!(reply.status, 504, "{reply:?}");
    assert!(reply.reason().contains("did not finish within 400ms"), "{reply:?}");

    // Beyond the concurrency cap: 503 with Retry-After, never a crash. All
    // six start together; the cap of 1 lets exactly one be served (its
    // 1.5 s sleep outlasts every other's 50 ms queue wait).
    let barrier = std::sync::Barrier::new(6);
    let replies: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    server.get("/_extensions/queue/?ms=1500")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut ok = 0;
    let mut busy = 0;
    for reply in replies {
        let reply = reply.map_err(|_| "client thread panicked")??;
        match reply.status {
            200 => ok += 1,
            503 => {
                assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
                assert!(reply.reason().contains("is busy"), "{reply:?}");
                busy += 1;
            }
            other => panic!("unexpected status {other}: {reply:?}"),
        }
    }
    assert_eq!((ok, busy), (1, 5), "{ok} served, {busy} refused");
    assert_eq!(server.get("/_extensions/queue/?ms=1")?.status, 200, "serves again once the slot frees");
    assert_hello_still_answers(&server)
}

#[test]
fn malformed_extensions_are_refused_and_others_serve() -> TestResult {
    let (_deployment, server) = serve_with(|d| {
        d.install_raw(
            "junk",
            &[
                ("extension.toml", b"id = \"junk\"\nversion = \"1\"\ncomponent = \"junk.wasm\"\n"),
                ("junk.wasm", b"#!/bin/sh\necho hi\n"),
            ],
        )?;
        d.install_raw(
            "core",
            &[
                ("extension.toml", b"id = \"core\"\nversion = \"1\"\ncomponent = \"core.wasm\"\n"),
                ("core.wasm", b"\0asm\x01\0\0\0"),
            ],
        )?;
        d.install_raw("broken", &[("extension.toml", b"id = [1, 2\n")])?;
        d.install_raw(
            "absent",
            &[("extension.toml", b"id = \"absent\"\nversion = \"1\"\ncomponent = \"missing.wasm\"\n")],
        )?;
        d.install_raw("empty", &[])?;
        d.install("twin", HELLO_WORLD, "")?;
        d.install_raw(
            "twin-copy",
            &[("extension.toml", b"id = \"twin\"\nversion = \"2\"\ncomponent = \"c.wasm\"\n")],
        )?;
        std::fs::copy(HELLO_WORLD, d.extensions_dir().join("twin-copy").join("c.wasm")).map(drop)
    })?;
    let health = server.get("/_warden/health")?.json();
    let failed = health["failed"].as_array().cloned().unwrap_or_default();
    let error_of = |dir: &str| {
        failed
            .iter()
            .find(|f| f["dir"].as_str().is_some_and(|d| d.ends_with(dir)))
            .and_then(|f| f["error"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let expectations = [
        ("junk", "junk.wasm: not a WebAssembly file"),
        ("core", "core.wasm: a core WebAssembly module, not a component"),
        ("broken", "broken/extension.toml: not a valid manifest"),
        ("absent", "missing.wasm: cannot read"),
        ("empty", "empty/extension.toml: cannot read"),
        ("twin-copy", "id `twin` is already used"),
    ];
    for (dir, expected) in expectations {
        let error = error_of(dir);
        assert!(error.contains(expected), "{dir}: expected {expected:?} in {error:?}\n{health:#}");
    }
    assert_eq!(failed.len(), expectations.len(), "{health:#}");
    assert_eq!(server.get("/_extensions/twin/greet/x")?.status, 200);
    assert_hello_still_answers(&server)
}

/// Why extension `id` failed to load, as operators see it in `/_warden/health`.
fn load_failure(server: &Server, id: &str) -> Result<String, Box<dyn std::error::Error>> {
    let health = server.get("/_warden/health")?.json();
    let failed = health["failed"].as_array().cloned().unwrap_or_default();
    let failure = failed.iter().find(|f| f["id"] == id).ok_or_else(|| format!("{id} not in {health}"))?;
    Ok(failure["error"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn guest_no_exports() -> TestResult {
    let (_deployment, server) = serve_with(|d| d.install("mute", GUEST_NO_EXPORTS, "").map(drop))?;
    let reply = server.get("/_extensions/mute/")?;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.reason().contains("/_warden/health"), "{reply:?}");
    let reason = load_failure(&server, "mute")?;
    assert!(reason.contains("component.wasm: exports nothing Warden can call"), "{reason}");
    assert_hello_still_answers(&server)
}

/// The compiled entries in the data directory's compile cache.
fn cache_entries(deployment: &Deployment) -> std::io::Result<Vec<std::path::PathBuf>> {
    fn walk(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, found)?;
            } else if path.extension().is_some_and(|e| e == "cwasm") {
                found.push(path);
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    walk(&deployment.data_dir(), &mut found)?;
    Ok(found)
}

#[test]
fn restart_reuses_the_compile_cache() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    let first = deployment.start()?;
    assert_eq!(first.get("/_extensions/hello/greet/one")?.status, 200);
    let logs = first.stop();
    assert!(logs.contains("extension loaded (compiled)"), "{logs}");
    assert_eq!(cache_entries(&deployment)?.len(), 1, "one entry cached");

    let second = deployment.start()?;
    assert_eq!(second.get("/_extensions/hello/greet/two")?.status, 200);
    let logs = second.stop();
    assert!(logs.contains("extension loaded (loaded from compile cache)"), "{logs}");
    assert!(!logs.contains("extension loaded (compiled)"), "no recompilation on restart:\n{logs}");

    // A truncated entry is not used: compiled again, and served.
    for entry in cache_entries(&deployment)? {
        let bytes = std::fs::read(&entry)?;
        std::fs::write(&entry, &bytes[..bytes.len() / 2])?;
    }
    let third = deployment.start()?;
    let reply = third.get("/_extensions/hello/greet/three")?;
    assert_eq!(reply.json()["greeting"], "Hello, three!", "{reply:?}");
    let logs = third.stop();
    assert!(logs.contains("ignoring unusable compile cache entry"), "{logs}");
    assert!(logs.contains("extension loaded (compiled)"), "{logs}");

    // A changed component under the same id is compiled, and its own
    // behaviour is what is served.
    deployment.install("hello", GUEST_SLEEPER, "")?;
    let fourth = deployment.start()?;
    let reply = fourth.get("/_extensions/hello/?ms=1")?;
    assert_eq!((reply.status, reply.body.as_str()), (200, "slept 1 ms"), "{reply:?}");
    let logs = fourth.stop();
    assert!(logs.contains("extension loaded (compiled)"), "{logs}");
    assert!(!logs.contains("loaded from compile cache"), "{logs}");
    assert_eq!(cache_entries(&deployment)?.len(), 2, "both compilations cached");
    Ok(())
}

/// tests/guests/files-probe: with `files` the guest writes, lists and reads
/// back its own `/data`; without the grant no directory is open. (The
/// hostile uses — links, the quota — are in attacks/sandbox.rs.)
#[test]
fn guest_files_probe() -> TestResult {
    let (_deployment, server) = serve_with(|d| {
        d.install("files", GUEST_FILES_PROBE, r#"capabilities = ["files"]"#)?;
        d.install("nofiles", GUEST_FILES_PROBE, "capabilities = []").map(drop)
    })?;
    let reply = server.request(reqwest::Method::POST, "/_extensions/files/write/note.txt", "kept")?;
    assert_eq!(reply.json()["outcome"], "ok", "{reply:?}");
    let reply = server.get("/_extensions/files/read/note.txt")?;
    assert_eq!(reply.json()["text"], "kept", "{reply:?}");
    let reply = server.get("/_extensions/files/list")?;
    assert_eq!(reply.json()["names"], serde_json::json!(["note.txt"]), "{reply:?}");
    let reply = server.request(reqwest::Method::POST, "/_extensions/nofiles/write/note.txt", "lost")?;
    assert_eq!(reply.json()["outcome"], "error", "no `/data` without the grant: {reply:?}");
    assert_hello_still_answers(&server)
}

/// tests/guests/resource-hog: used within its limits, the guest holds a few
/// WASI handles and its log records reach the host log. (The floods are in
/// attacks/sandbox.rs.)
#[test]
fn guest_resource_hog() -> TestResult {
    let (_deployment, server) =
        serve_with(|d| d.install("hog", GUEST_RESOURCE_HOG, "capabilities = []").map(drop))?;
    let reply = server.get("/_extensions/hog/handles?count=100&kind=instant")?;
    assert_eq!((reply.status, &reply.json()["held"]), (200, &serde_json::json!(100)), "{reply:?}");
    let reply = server.get("/_extensions/hog/log?count=3&size=12&level=info")?;
    assert_eq!((reply.status, &reply.json()["written"]), (200, &serde_json::json!(3)), "{reply:?}");
    assert!(server.wait_for_log("xxxxxxxxxxxx"), "{}", server.logs());
    assert!(!server.logs().contains("dropped"), "{}", server.logs());
    assert_hello_still_answers(&server)
}
