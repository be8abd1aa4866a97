//! Crash safety: `kill -9` the server while clients write — with `_bulk`,
//! with single-document PUTs, and a security-config write (a new user)
//! acknowledged just before the kill; after a restart every acknowledged
//! write is there. And the other faults of issue #17 item 3, each test
//! stating the invariant it checks: corrupted or foreign compile-cache
//! entries, a torn audit log tail, `kill -9` during security writes and
//! extension installs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::json;

use crate::support::{Deployment, Server, TestResult};

/// How many of `ids` exist in `index` after the restart: an `ids` query
/// over all of them (each id counts once, whatever else survived).
fn found(server: &Server, index: &str, ids: &[String]) -> Result<u64, Box<dyn std::error::Error>> {
    let reply = server.send(
        Method::POST,
        &format!("/{index}/_count"),
        &json!({"query": {"ids": {"values": ids}}}),
    )?;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["count"].as_u64().ok_or_else(|| format!("no count: {reply:?}").into())
}

#[test]
fn acknowledged_writes_survive_kill_9() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let bulk_acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let put_acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut user_acked = false;
    std::thread::scope(|scope| -> TestResult {
        for writer in 0..2 {
            let (server, acknowledged, stop) = (&server, bulk_acked.clone(), stop.clone());
            scope.spawn(move || {
                let mut batch = 0;
                while !stop.load(Ordering::Relaxed) {
                    batch += 1;
                    let ids: Vec<String> = (0..50).map(|i| format!("w{writer}-b{batch}-{i}")).collect();
                    let body: String = ids
                        .iter()
                        .map(|id| {
                            format!("{{\"index\":{{\"_index\":\"crash\",\"_id\":\"{id}\"}}}}\n{{\"v\":1}}\n")
                        })
                        .collect();
                    match server.request(Method::POST, "/_bulk", &body) {
                        Ok(reply) if reply.status == 200 && reply.json()["errors"] == false => {
                            if let Ok(mut acked) = acknowledged.lock() {
                                acked.extend(ids);
                            }
                        }
                        _ => break, // the server is gone: stop writing
                    }
                }
            });
        }
        let (writer, acknowledged, stop_puts) = (&server, put_acked.clone(), stop.clone());
        scope.spawn(move || {
            let mut n = 0;
            while !stop_puts.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("p{n}");
                match writer.send(Method::PUT, &format!("/crash-single/_doc/{id}"), &json!({"n": n})) {
                    Ok(reply) if reply.status == 200 || reply.status == 201 => {
                        if let Ok(mut acked) = acknowledged.lock() {
                            acked.push(id);
                        }
                    }
                    _ => break,
                }
            }
        });
        // Let the writers get going, then create a user and kill the
        // server the moment the creation is acknowledged.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while bulk_acked.lock().map(|a| a.len()).unwrap_or(0) < 500
            || put_acked.lock().map(|a| a.len()).unwrap_or(0) < 20
        {
            assert!(std::time::Instant::now() < deadline, "the writers got too few acknowledgements");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let created = server.send(
            Method::PUT,
            "/_plugins/_security/api/internalusers/durable",
            &json!({"password": "Durable-Password-1"}),
        );
        server.kill_hard();
        stop.store(true, Ordering::Relaxed);
        let created = created?;
        assert_eq!(created.status, 201, "{created:?}");
        user_acked = true;
        Ok(())
    })?;
    let bulk = bulk_acked.lock().map(|a| a.clone()).unwrap_or_default();
    let puts = put_acked.lock().map(|a| a.clone()).unwrap_or_default();
    assert!(bulk.len() >= 500 && puts.len() >= 20 && user_acked);

    let restarted = deployment.start()?;
    assert_eq!(found(&restarted, "crash", &bulk)?, bulk.len() as u64, "acknowledged bulk documents lost");
    assert_eq!(found(&restarted, "crash-single", &puts)?, puts.len() as u64, "acknowledged PUTs lost");
    // The control: an id that was never written is not counted.
    assert_eq!(found(&restarted, "crash", &["never-written".to_owned()])?, 0);
    // The user acknowledged last is there, and can log in.
    let user = restarted.get("/_plugins/_security/api/internalusers/durable")?;
    assert_eq!(user.status, 200, "{user:?}");
    let login = restarted.get_as("durable", "Durable-Password-1", "/_plugins/_security/api/account")?;
    assert_eq!(login.status, 200, "the acknowledged user logs in after the crash: {login:?}");
    Ok(())
}

/// The line that says how extension `id` was loaded at the last start.
fn load_line(logs: &str, id: &str) -> String {
    logs.lines()
        .filter(|l| l.contains("extension loaded (") && l.contains(&format!("extension=\"{id}\"")))
        .chain(
            logs.lines()
                .filter(|l| l.contains("extension loaded (") && l.contains(&format!("extension={id}"))),
        )
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// The compile cache entry of the component at `wasm` in `deployment`.
fn cache_entry(
    deployment: &Deployment,
    wasm: &str,
) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(wasm)?));
    for entry in std::fs::read_dir(deployment.data_dir().join("cache"))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with(&digest) && name.ends_with(".cwasm") {
            return Ok(path);
        }
    }
    Err(format!("no cache entry for {wasm}").into())
}

/// Fault: a compile-cache entry that is not what this installation wrote
/// for this component. Invariant: the entry is never loaded — the
/// extension is recompiled, serves its own behaviour, and the bad entry is
/// replaced by a good one (loaded from the cache at the next start).
/// Rounds (one start each): garbage, one flipped byte, a truncation, the
/// entry of another component renamed over it (it would serve that
/// component's code under this one's id), and the entry another
/// installation (another data directory, another key) wrote for the very
/// same component.
#[test]
fn corrupted_or_foreign_compile_cache_entries_are_recompiled() -> TestResult {
    use warden_test_artifacts::{GUEST_SLEEPER, HELLO_WORLD};
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    deployment.install("sleeper", GUEST_SLEEPER, "")?;
    let first = deployment.start()?;
    assert_eq!(first.get("/_extensions/hello/greet/one")?.status, 200);
    drop(first.stop());
    let hello = cache_entry(&deployment, HELLO_WORLD)?;
    let sleeper = cache_entry(&deployment, GUEST_SLEEPER)?;
    let good = std::fs::read(&hello)?;

    // Another installation compiles the same component with its own key.
    let other = Deployment::new()?;
    other.install("hello", HELLO_WORLD, "")?;
    drop(other.start()?.stop());
    let foreign = std::fs::read(cache_entry(&other, HELLO_WORLD)?)?;
    assert_ne!(foreign, good, "two installations seal the same code differently");

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let rounds: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x7fELF this is not a cache entry".repeat(100)),
        ("flipped byte", flipped),
        ("truncated", good[..good.len() - 100].to_vec()),
        ("another component's entry", std::fs::read(&sleeper)?),
        ("another installation's entry", foreign),
    ];
    for (round, bad) in rounds {
        std::fs::write(&hello, &bad)?;
        let server = deployment.start()?;
        let reply = server.get("/_extensions/hello/greet/fault")?;
        assert_eq!(
            reply.json()["greeting"],
            "Hello, fault!",
            "{round}: hello serves its own code: {reply:?}"
        );
        let logs = server.stop();
        let line = load_line(&logs, "hello");
        assert!(
            line.contains("extension loaded (compiled)"),
            "{round}: recompiled, not loaded: {line}\n{logs}"
        );
        assert!(logs.contains("ignoring unusable compile cache entry"), "{round}: {logs}");
        assert_ne!(std::fs::read(&hello)?, bad, "{round}: the bad entry was replaced");
    }
    // The replacement is a good entry: the next start loads it.
    let server = deployment.start()?;
    assert_eq!(server.get("/_extensions/hello/greet/again")?.json()["greeting"], "Hello, again!");
    let logs = server.stop();
    let line = load_line(&logs, "hello");
    assert!(line.contains("extension loaded (loaded from compile cache)"), "{line}\n{logs}");
    Ok(())
}

/// Fault: the audit log's last line cut in the middle (a crash mid-append).
/// Invariant: the server starts, every event recorded afterwards is a whole
/// line (not glued to the fragment), `GET /_warden/audit` answers with the
/// events before and after the tear, and only the torn line is unreadable.
#[test]
fn a_torn_audit_log_tail_is_ended_and_appending_goes_on() -> TestResult {
    use crate::support::{API, basic};
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    for user in ["before-1", "before-2", "torn"] {
        let reply = server.get_with_authorization(&format!("{API}/account"), Some(&basic(user, "wrong")))?;
        assert_eq!(reply.status, 401, "{reply:?}");
    }
    let audit = deployment.data_dir().join("audit").join("audit.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&audit)?.contains("\"torn\"") {
        assert!(std::time::Instant::now() < deadline, "the last failure was not audited");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.kill_hard();
    drop(server);
    // Cut the last line in the middle.
    let text = std::fs::read_to_string(&audit)?;
    let last_start = text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
    let last_len = text.len() - last_start;
    std::fs::write(&audit, &text.as_bytes()[..last_start + last_len / 2])?;

    let server = deployment.start()?;
    for user in ["after-1", "after-2"] {
        let reply = server.get_with_authorization(&format!("{API}/account"), Some(&basic(user, "wrong")))?;
        assert_eq!(reply.status, 401, "{reply:?}");
    }
    let reply = server.get("/_warden/audit?category=FAILED_LOGIN")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let users: Vec<String> = reply.json()["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["user"].as_str().map(str::to_owned))
        .collect();
    for user in ["before-1", "before-2", "after-1", "after-2"] {
        assert!(users.iter().any(|u| u == user), "{user} is in the audit answer: {users:?}");
    }
    assert!(!users.iter().any(|u| u == "torn"), "the torn event is skipped: {users:?}");
    drop(server.stop());
    // Every line but the torn one is a whole JSON event.
    let text = std::fs::read_to_string(&audit)?;
    assert!(text.ends_with('\n'), "{text}");
    let broken: Vec<&str> =
        text.lines().filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err()).collect();
    assert_eq!(broken.len(), 1, "only the torn line is unreadable: {broken:?}");
    Ok(())
}
