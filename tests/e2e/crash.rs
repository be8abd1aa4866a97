//! Crash safety: `kill -9` the server while clients write — with `_bulk`,
//! with single-document PUTs, and a security-config write (a new user)
//! acknowledged just before the kill; after a restart every acknowledged
//! write is there. And the other faults of issue #17 item 3, each test
//! stating the invariant it checks: corrupted or foreign compile-cache
//! entries, a torn audit log tail, `kill -9` during security writes and
//! extension installs; `kill -9` during OBO revocations, whole-config writes
//! (PATCH of a collection, the warden import) and job outcome writes.

use std::collections::{BTreeMap, BTreeSet};
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

/// Fault: `kill -9` at a random moment while one client writes security
/// configuration (a user, then a role naming the user's index) and another
/// creates API tokens. Invariant: after a restart the stored configuration
/// loads (the server starts), every write acknowledged with a 2xx is there
/// whole (the user with her password, the role with its index patterns, the
/// token authenticating with its permissions), and nothing half-applied
/// shows; a token revocation acknowledged holds (the token is refused).
/// Rounds: 4 kills in the same data directory, at pseudo-random delays
/// between 200 and 1200 ms after the first acknowledged user.
#[test]
fn security_writes_and_token_creation_survive_kill_9_at_random_moments() -> TestResult {
    use crate::support::{API, api_key, now_ms};
    let deployment = Deployment::new()?;
    let setup = deployment.start()?;
    assert_eq!(setup.send(Method::PUT, "/logs/_doc/1", &json!({"n": 1}))?.status, 201);
    drop(setup.stop());
    let mut seed = now_ms();
    let (mut users_acked, mut tokens_acked, mut revoked_acked) =
        (Vec::<String>::new(), Vec::new(), Vec::new());
    for round in 0..4 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = std::time::Duration::from_millis(200 + (seed >> 33) % 1000);
        let server = deployment.start()?;
        let users: Arc<Mutex<Vec<String>>> = Arc::default();
        let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
        let revoked: Arc<Mutex<Vec<String>>> = Arc::default();
        let first_user = users.clone();
        std::thread::scope(|scope| {
            let (server, users) = (&server, users.clone());
            scope.spawn(move || {
                for n in 0.. {
                    let name = format!("r{round}-u{n}");
                    let user = server.send(
                        Method::PUT,
                        &format!("{API}/internalusers/{name}"),
                        &json!({"password": format!("Pw-{name}-long-enough")}),
                    );
                    if !matches!(user, Ok(ref r) if r.status == 201) {
                        break;
                    }
                    let role = server.send(
                        Method::PUT,
                        &format!("{API}/roles/{name}"),
                        &json!({"index_permissions": [{"index_patterns": [format!("idx-{name}")],
                            "allowed_actions": ["read"]}]}),
                    );
                    if !matches!(role, Ok(ref r) if r.status == 201) {
                        break;
                    }
                    if let Ok(mut acked) = users.lock() {
                        acked.push(name);
                    }
                }
            });
            let (tokens, revoked) = (tokens.clone(), revoked.clone());
            scope.spawn(move || {
                // At most 20 kept a round (a user holds 100 at most); the
                // others are revoked at once, and a revocation acknowledged
                // must hold too.
                let mut kept = 0;
                for n in 0.. {
                    let name = format!("r{round}-t{n}");
                    let spec = json!({"name": name, "duration_seconds": 3600,
                        "index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
                    let token = match server.send(Method::POST, &format!("{API}/apitokens"), &spec) {
                        Ok(reply) if reply.status == 200 => {
                            reply.json()["token"].as_str().unwrap_or_default().to_owned()
                        }
                        _ => break,
                    };
                    if n % 5 == 0 && kept < 20 {
                        kept += 1;
                        if let Ok(mut acked) = tokens.lock() {
                            acked.push(token);
                        }
                        continue;
                    }
                    match server.send(Method::DELETE, &format!("{API}/apitokens/{name}"), &json!(null)) {
                        Ok(reply) if reply.status == 200 => {
                            if let Ok(mut acked) = revoked.lock() {
                                acked.push(token);
                            }
                        }
                        // Created, and the revocation maybe done: neither is asserted.
                        _ => break,
                    }
                }
            });
            wait_until("a write is acknowledged", || first_user.lock().is_ok_and(|u| !u.is_empty()));
            std::thread::sleep(delay);
            server.kill_hard();
        });
        drop(server);
        users_acked.extend(users.lock().map(|u| u.clone()).unwrap_or_default());
        tokens_acked.extend(tokens.lock().map(|t| t.clone()).unwrap_or_default());
        revoked_acked.extend(revoked.lock().map(|t| t.clone()).unwrap_or_default());
    }
    assert!(!users_acked.is_empty() && !tokens_acked.is_empty(), "the writers got acknowledgements");

    let server = deployment.start()?;
    for name in &users_acked {
        let user = server.get(&format!("{API}/internalusers/{name}"))?;
        assert_eq!(user.status, 200, "acknowledged user {name} lost: {user:?}");
        let role = server.get(&format!("{API}/roles/{name}"))?;
        assert_eq!(role.status, 200, "acknowledged role {name} lost: {role:?}");
        assert_eq!(
            role.json()[name]["index_permissions"][0]["index_patterns"],
            json!([format!("idx-{name}")]),
            "{role:?}"
        );
    }
    // The last acknowledged user of the last round logs in with her password.
    if let Some(name) = users_acked.last() {
        let login = server.get_as(name, &format!("Pw-{name}-long-enough"), &format!("{API}/account"))?;
        assert_eq!(login.status, 200, "{login:?}");
    }
    for token in &tokens_acked {
        let key = api_key(token);
        let read = server.get_with_authorization("/logs/_doc/1", Some(&key))?;
        assert_eq!(read.status, 200, "an acknowledged token authenticates and reads: {read:?}");
        let write =
            server.send_with_authorization(Method::PUT, "/logs/_doc/2", Some(&key), &json!({"n": 2}))?;
        assert_eq!(write.status, 403, "with its permissions, no more: {write:?}");
    }
    for token in &revoked_acked {
        let read = server.get_with_authorization("/logs/_doc/1", Some(&api_key(token)))?;
        assert_eq!(read.status, 401, "an acknowledged revocation holds: {read:?}");
    }
    // Whatever was stored loads whole: every user listed has a record.
    let all = server.get(&format!("{API}/internalusers"))?;
    assert_eq!(all.status, 200, "{all:?}");
    eprintln!(
        "{} users+roles, {} tokens and {} revocations acknowledged over 4 kills",
        users_acked.len(),
        tokens_acked.len(),
        revoked_acked.len()
    );
    Ok(())
}

/// An extension manifest for the lifecycle crash test: v1 (and v3) ask for
/// the cluster, a policy and a predefined role; v2 drops them all (it only
/// narrows, so it applies at once); v3 widens again, so it waits for
/// approval. One instance each, so hundreds fit in the instance pool.
fn crash_manifest(id: &str, version: &str) -> String {
    let extra = if version != "2.0.0" {
        format!(
            "capabilities = [\"cluster\"]\n[policy]\ncluster_permissions = [\"cluster:monitor/health\"]\n\
             [[roles]]\nname = \"{id}_user\"\nextension_permissions = [\"extension:{id}/greet\"]\n"
        )
    } else {
        "capabilities = []\n".to_owned()
    };
    format!(
        "id = \"{id}\"\nversion = \"{version}\"\ncomponent = \"c.wasm\"\n{extra}\
         [[routes]]\nmethod = \"GET\"\npath = \"/greet/{{name}}\"\n\
         [limits]\nmax_concurrency = 1\n"
    )
}

/// Which lifecycle step extension `id` is at, as the API shows it
/// (0 none, 1 pending, 2 approved v1, 3 upgraded to v2, 4 v3 waiting for
/// approval while v2 serves, 5 v3 approved), after checking
/// that everything else agrees with that step: its roles, its service
/// account, whether it serves.
fn lifecycle_step(server: &Server, id: &str) -> Result<u8, Box<dyn std::error::Error>> {
    use crate::lifecycle::EXTENSIONS;
    use crate::support::API;
    let status = |path: &str| server.get(path).map(|r| r.status);
    let record = server.get(&format!("{EXTENSIONS}/{id}"))?;
    let route = server.get(&format!("/_extensions/{id}/greet/x"))?;
    let policy = server.get(&format!("{API}/roles/extension:{id}"))?;
    let user_role = status(&format!("{API}/roles/{id}_user"))?;
    let account = status(&format!("{API}/internalusers/service:{id}"))?;
    let json = record.json();
    let step = match (record.status, json["state"].as_str(), json["version"].as_str()) {
        (404, ..) => 0,
        (200, Some("pending"), _) => 1,
        (200, Some("approved"), Some("1.0.0")) => 2,
        (200, Some("approved"), Some("2.0.0")) if json["upgrade"].is_null() => 3,
        (200, Some("approved"), Some("2.0.0")) if json["upgrade"]["version"] == "3.0.0" => 4,
        (200, Some("approved"), Some("3.0.0")) if json["upgrade"].is_null() => 5,
        _ => return Err(format!("{id}: unexpected record {record:?}").into()),
    };
    let what =
        format!("{id} at step {step}: {json} / route {route:?} / policy {policy:?} / {user_role} {account}");
    match step {
        0 | 1 => {
            assert_eq!((route.status, policy.status, user_role, account), (404, 404, 404, 404), "{what}");
        }
        2 | 5 => {
            assert_eq!(json["serving"], true, "{what}");
            assert_eq!(route.status, 200, "{what}");
            assert_eq!(
                policy.json()[format!("extension:{id}")]["cluster_permissions"],
                json!(["cluster:monitor/health"]),
                "{what}"
            );
            assert_eq!((user_role, account), (200, 200), "{what}");
        }
        _ => {
            assert_eq!(json["serving"], true, "{what}");
            assert_eq!(route.status, 200, "{what}");
            assert_eq!(policy.json()[format!("extension:{id}")]["cluster_permissions"], json!([]), "{what}");
            assert_eq!((user_role, account), (404, 404), "{what}");
        }
    }
    Ok(step)
}

/// Fault: `kill -9` at a random moment while a client installs, approves
/// and upgrades extension after extension (a narrowing upgrade, then a
/// widening one and its approval: the swap). Invariant: after a restart each
/// extension is at the step the API last acknowledged or the one after it
/// (the one in flight), never in between: no record without its component
/// (an approved one serves), no roles or service account without an
/// approved record, no v1 roles left once v2 is acknowledged, v2's narrow
/// roles while v3 waits, v3's once its approval is acknowledged. Rounds: 4
/// kills in the same data directory at pseudo-random delays between 100 and
/// 1600 ms after the first acknowledged install; every extension of every
/// round is checked after the last restart.
#[test]
fn extension_install_approve_upgrade_survive_kill_9() -> TestResult {
    use crate::lifecycle::{EXTENSIONS, install};
    use crate::support::now_ms;
    let component = std::fs::read(warden_test_artifacts::HELLO_WORLD)?;
    let deployment = Deployment::new()?;
    let mut seed = now_ms();
    let mut acked: Vec<(String, u8)> = Vec::new();
    for round in 0..4 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = std::time::Duration::from_millis(100 + (seed >> 33) % 1500);
        let server = deployment.start()?;
        let progress: Arc<Mutex<Vec<(String, u8)>>> = Arc::default();
        let first_step = progress.clone();
        std::thread::scope(|scope| {
            let (server, progress, component) = (&server, progress.clone(), &component);
            scope.spawn(move || {
                let set = |id: &str, step: u8| {
                    if let Ok(mut p) = progress.lock() {
                        match p.iter_mut().find(|(i, _)| i == id) {
                            Some(entry) => entry.1 = step,
                            None => p.push((id.to_owned(), step)),
                        }
                    }
                };
                for k in 0.. {
                    let id = format!("r{round}e{k}");
                    set(&id, 0);
                    match install(server, &crash_manifest(&id, "1.0.0"), component) {
                        Ok(r) if r.status == 201 => set(&id, 1),
                        _ => break,
                    }
                    match server.request(Method::POST, &format!("{EXTENSIONS}/{id}/_approve"), "") {
                        Ok(r) if r.status == 200 => set(&id, 2),
                        _ => break,
                    }
                    match install(server, &crash_manifest(&id, "2.0.0"), component) {
                        Ok(r) if r.status == 200 => set(&id, 3),
                        _ => break,
                    }
                    match install(server, &crash_manifest(&id, "3.0.0"), component) {
                        Ok(r) if r.status == 202 => set(&id, 4),
                        _ => break,
                    }
                    match server.request(Method::POST, &format!("{EXTENSIONS}/{id}/_approve"), "") {
                        Ok(r) if r.status == 200 => set(&id, 5),
                        _ => break,
                    }
                }
            });
            wait_until("an install is acknowledged", || {
                first_step.lock().is_ok_and(|p| p.iter().any(|e| e.1 > 0))
            });
            std::thread::sleep(delay);
            server.kill_hard();
        });
        drop(server);
        acked.extend(progress.lock().map(|p| p.clone()).unwrap_or_default());
    }
    let server = deployment.start()?;
    let mut in_flight = 0;
    for (id, step) in &acked {
        let seen = lifecycle_step(&server, id)?;
        assert!(seen == *step || seen == step + 1, "{id}: acknowledged step {step}, found {seen}");
        in_flight += usize::from(seen != *step);
    }
    assert!(acked.iter().any(|(_, step)| *step >= 2), "some extensions got approved: {acked:?}");
    eprintln!(
        "{} extensions over 4 kills; {in_flight} found one step past their last acknowledgement",
        acked.len()
    );
    Ok(())
}

/// Starts the server in a new user and mount namespace whose data directory
/// is a `size`-limited tmpfs (no root needed); `None` when this machine does
/// not allow unprivileged user namespaces. The tmpfs lives as long as the
/// server: this scenario cannot restart.
fn start_on_small_disk(
    deployment: &Deployment,
    size: &str,
) -> Result<Option<Server>, Box<dyn std::error::Error>> {
    use crate::support::ADMIN_PASSWORD;
    let probe = std::process::Command::new("unshare")
        .args([
            "-Urm",
            "sh",
            "-c",
            "mount -t tmpfs -o size=1m tmpfs /mnt || mount -t tmpfs -o size=1m tmpfs /tmp",
        ])
        .stderr(std::process::Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return Ok(None);
    }
    std::fs::create_dir_all(deployment.data_dir())?;
    let mut command = std::process::Command::new("unshare");
    command
        .env_remove("RUST_BACKTRACE")
        .env("WARDEN_LOG", "info")
        .env("WARDEN_INITIAL_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .args(["-Urm", "sh", "-c", &format!("mount -t tmpfs -o size={size} tmpfs \"$0\" && exec \"$@\"")])
        .arg(deployment.data_dir())
        .arg(env!("CARGO_BIN_EXE_warden"));
    Ok(Some(Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])?))
}

/// Fault: the data directory's disk fills up (a size-limited tmpfs in a user
/// namespace; the test fills it with ballast through the server's
/// `/proc/<pid>/root`). Invariant: writes fail with a clear error (no 2xx,
/// no crash), the server keeps answering reads, and once space returns the
/// writes succeed again, everything acknowledged before is there, and a
/// write refused while full is absent (not half-applied).
#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers() -> TestResult {
    use crate::support::API;
    use std::io::Write;
    let deployment = Deployment::new()?;
    let Some(server) = start_on_small_disk(&deployment, "64m")? else {
        eprintln!("SKIPPED: no unprivileged user namespaces here");
        return Ok(());
    };
    assert_eq!(server.send(Method::PUT, "/full/_doc/before", &json!({"n": 0}))?.status, 201);
    let user = json!({"password": "Before-Password-1"});
    assert_eq!(server.send(Method::PUT, &format!("{API}/internalusers/before"), &user)?.status, 201);

    // Fill the disk.
    let ballast = std::path::PathBuf::from(format!("/proc/{}/root", server.pid()))
        .join(deployment.data_dir().strip_prefix("/")?)
        .join("ballast");
    let mut file = std::fs::File::create(&ballast)?;
    let chunk = vec![0u8; 1 << 20];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.write_all(&chunk[..4096]);
    let _ = file.write_all(&chunk[..1]);
    drop(file);

    // Writes fail clearly; the server answers reads.
    let mut refused = Vec::new();
    for n in 0..20 {
        let id = format!("full-{n}");
        let reply = server.send(
            Method::PUT,
            &format!("/full/_doc/{id}"),
            &json!({"n": n, "pad": "x".repeat(4096)}),
        )?;

        if reply.status >= 300 {
            assert!(reply.status >= 500 && !reply.reason().is_empty(), "a clear error: {reply:?}");
            refused.push(id);
        }
    }
    let reply = server.send(
        Method::PUT,
        &format!("{API}/internalusers/during"),
        &json!({"password": "During-Password-1"}),
    )?;
    eprintln!("user while full: {} {}", reply.status, reply.body);
    let user_refused = reply.status >= 300;
    assert!(!refused.is_empty() || user_refused, "nothing was refused while the disk was full");
    assert_eq!(server.get("/full/_doc/before")?.status, 200, "reads go on");
    assert_eq!(server.get(&format!("{API}/internalusers/before"))?.status, 200, "reads go on");
    assert_eq!(server.get("/_warden/health")?.status, 200);

    // Space returns: writes succeed, nothing acknowledged is lost, nothing
    // refused is there.
    std::fs::remove_file(&ballast)?;
    let reply = server.send(Method::PUT, "/full/_doc/after", &json!({"n": 1}))?;
    assert_eq!(reply.status, 201, "writes work again: {reply:?}");
    let reply = server.send(
        Method::PUT,
        &format!("{API}/internalusers/after"),
        &json!({"password": "After-Password-1"}),
    )?;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(server.get("/full/_doc/before")?.status, 200);
    for id in &refused {
        assert_eq!(server.get(&format!("/full/_doc/{id}"))?.status, 404, "a refused write is absent: {id}");
    }
    if user_refused {
        assert_eq!(server.get(&format!("{API}/internalusers/during"))?.status, 404);
    }
    let login = server.get_as("after", "After-Password-1", &format!("{API}/account"))?;
    assert_eq!(login.status, 200, "{login:?}");
    Ok(())
}

/// Waits (at most a minute) until `done`: the random delay before a kill
/// counts from the first acknowledgement, not from the start, since the
/// first login of each user after a restart pays a bcrypt hash, slow in a
/// debug build on a busy machine.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The OBO token's `jti` and `exp` claims (a JWT: the middle part).
fn obo_claims(token: &str) -> Result<(String, u64), Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).ok_or("not a JWT")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    let jti = claims["jti"].as_str().ok_or("no jti")?.to_owned();
    Ok((jti, claims["exp"].as_u64().ok_or("no exp")?))
}

/// Mints an OBO token for `who` with audience `service`; the token, or
/// what the server answered instead.
fn mint_for(server: &Server, who: (&str, &str), service: &str) -> Result<String, String> {
    let body = json!({"service": service, "durationSeconds": 600});
    match server.send_as(who.0, who.1, Method::POST, crate::support::MINT, &body) {
        Ok(reply) if reply.status == 200 => {
            reply.json()["authenticationToken"].as_str().map(str::to_owned).ok_or(reply.body)
        }
        Ok(reply) => Err(format!("{} {}", reply.status, reply.body)),
        Err(e) => Err(e.to_string()),
    }
}

fn authinfo_status(server: &Server, token: &str) -> Option<u16> {
    let bearer = crate::support::bearer(token);
    server.get_with_authorization("/_plugins/_security/authinfo", Some(&bearer)).ok().map(|r| r.status)
}

/// Fault: `kill -9` at a random moment while an administrator revokes OBO
/// tokens — by token (`jti`), by user and by extension (audience), in turn,
/// as fast as the server answers — and users mint new ones between the
/// revocations. Invariant: after a restart every revocation acknowledged
/// with a 200 holds (the token it covered is refused), a token never
/// revoked still works (the signing keys survived), and every token works
/// when it is minted — also right after a burst of revocations of its user
/// (revocation times move ahead of the clock then; the token must not be
/// "not valid yet"). Rounds: 4 kills in the same data directory at
/// pseudo-random delays between 300 and 1500 ms.
#[test]
fn obo_revocations_survive_kill_9_at_random_moments() -> TestResult {
    use crate::support::{API, now_ms};
    const USERS: [(&str, &str); 2] = [("ana", "Ana-Password-1"), ("bob", "Bob-Password-1")];
    const CARL: (&str, &str) = ("carl", "Carl-Password-1");
    let deployment = Deployment::new()?;
    let setup = deployment.start()?;
    for (name, password) in USERS.iter().chain([&CARL]) {
        let reply = setup.send(
            Method::PUT,
            &format!("{API}/internalusers/{name}"),
            &json!({"password": password}),
        )?;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    drop(setup.stop());
    let mut seed = now_ms();
    let (mut revoked_acked, mut kept, mut refused_fresh) = (Vec::new(), Vec::new(), Vec::new());
    let mut counts = [0usize; 3];
    for round in 0..4 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = std::time::Duration::from_millis(300 + (seed >> 33) % 1200);
        let server = deployment.start()?;
        let revoked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let unrevoked: Arc<Mutex<Vec<String>>> = Arc::default();
        let refused: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let acked_so_far = revoked.clone();
        std::thread::scope(|scope| {
            let (server, revoked, unrevoked, refused, halt) =
                (&server, revoked.clone(), unrevoked.clone(), refused.clone(), stop.clone());
            scope.spawn(move || {
                for k in 0usize.. {
                    if halt.load(Ordering::Relaxed) {
                        break;
                    }
                    let who = USERS[k % 2];
                    let service = format!("svc-{round}-{k}");
                    let Ok(token) = mint_for(server, who, &service) else { break };
                    // Usable at once, whatever was revoked just before.
                    match authinfo_status(server, &token) {
                        Some(200) => {}
                        Some(status) => {
                            if let Ok(mut r) = refused.lock() {
                                r.push(format!("{} minted after revocations: {status}", who.0));
                            }
                        }
                        None => break,
                    }
                    if k % 10 == 0
                        && let Ok(carl) = mint_for(server, CARL, "keep")
                        && let Ok(mut kept) = unrevoked.lock()
                    {
                        kept.push(carl);
                    }
                    let (how, body) = match k % 3 {
                        0 => match obo_claims(&token) {
                            Ok((jti, exp)) => ("jti", json!({"jti": jti, "expires_at": exp})),
                            Err(_) => break,
                        },
                        1 => ("user", json!({"user": who.0})),
                        _ => ("extension", json!({"extension": service})),
                    };
                    match server.send(Method::POST, "/_warden/tokens/_revoke", &body) {
                        Ok(reply) if reply.status == 200 => {
                            if let Ok(mut r) = revoked.lock() {
                                r.push((how.to_owned(), token));
                            }
                        }
                        // Maybe applied, maybe not: not asserted.
                        _ => break,
                    }
                }
            });
            // One of each kind first (the first logins pay bcrypt).
            wait_until("a revocation of each kind", || acked_so_far.lock().is_ok_and(|r| r.len() >= 3));
            std::thread::sleep(delay);
            server.kill_hard();
            stop.store(true, Ordering::Relaxed);
        });
        drop(server);
        revoked_acked.extend(revoked.lock().map(|r| r.clone()).unwrap_or_default());
        kept.extend(unrevoked.lock().map(|r| r.clone()).unwrap_or_default());
        refused_fresh.extend(refused.lock().map(|r| r.clone()).unwrap_or_default());
    }
    assert!(
        refused_fresh.is_empty(),
        "{} fresh tokens refused, the first: {:?}",
        refused_fresh.len(),
        refused_fresh.first()
    );
    assert!(!revoked_acked.is_empty() && !kept.is_empty(), "the revoker got acknowledgements");

    let server = deployment.start()?;
    for (how, token) in &revoked_acked {
        counts[match how.as_str() {
            "jti" => 0,
            "user" => 1,
            _ => 2,
        }] += 1;
        assert_eq!(authinfo_status(&server, token), Some(401), "an acknowledged revocation by {how} holds");
    }
    for token in &kept {
        assert_eq!(authinfo_status(&server, token), Some(200), "a token never revoked still works");
    }
    // And minting goes on, for the users revoked most.
    for who in USERS {
        let token = mint_for(&server, who, "after")?;
        assert_eq!(authinfo_status(&server, &token), Some(200), "{} mints a working token", who.0);
    }
    assert!(counts.iter().all(|n| *n > 0), "every kind of revocation was acknowledged: {counts:?}");
    eprintln!(
        "OBO revocations acknowledged over 4 kills: {} by jti, {} by user, {} by extension; {} kept tokens",
        counts[0],
        counts[1],
        counts[2],
        kept.len()
    );
    Ok(())
}

/// Roles by (name, description).
type RoleSet = BTreeSet<(String, String)>;

/// The extra roles (`cw-*`) of the configuration, with their descriptions.
fn config_write_roles(server: &Server) -> Result<RoleSet, Box<dyn std::error::Error>> {
    let reply = server.get(&format!("{}/roles", crate::support::API))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply
        .json()
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.starts_with("cw-"))
        .map(|(name, role)| (name.clone(), role["description"].as_str().unwrap_or_default().to_owned()))
        .collect())
}

/// A role of the whole-config writes test.
fn cw_role(description: &str) -> serde_json::Value {
    json!({"description": description, "cluster_permissions": ["cluster:monitor/health"]})
}

/// Fault: `kill -9` at a random moment while an administrator writes the
/// configuration wholesale: a PATCH of the roles collection (two roles in
/// one request, OpenSearch's bulk edit) and `PUT /_warden/security/_import`
/// of the whole configuration (it drops the previous import's transient
/// role, adds a new one, and keeps everything else), in turn. Invariant:
/// after a restart the configuration is exactly what the last acknowledged
/// write left, or what the write in flight would have left — never a mix
/// (half a PATCH, an import half applied), never an older state; and the
/// users the import carried still log in. Rounds: 4 kills in the same data
/// directory at pseudo-random delays between 300 and 1500 ms, the state
/// checked after each restart.
#[test]
fn whole_config_writes_survive_kill_9_at_random_moments() -> TestResult {
    use crate::support::{API, now_ms};
    let deployment = Deployment::new()?;
    let setup = deployment.start()?;
    let user = json!({"password": "Kept-Password-1"});
    assert_eq!(setup.send(Method::PUT, &format!("{API}/internalusers/kept"), &user)?.status, 201);
    drop(setup.stop());
    let mut seed = now_ms();
    let mut model = BTreeSet::new();
    let (mut patches, mut imports, mut in_flight_applied) = (0, 0, 0);
    for round in 0..5 {
        let server = deployment.start()?;
        let login = server.get_as("kept", "Kept-Password-1", &format!("{API}/account"))?;
        assert_eq!(login.status, 200, "round {round}: {login:?}");
        if round == 4 {
            break;
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = std::time::Duration::from_millis(300 + (seed >> 33) % 1200);
        // The acknowledged state, and the one the write in flight would make.
        let states: Arc<Mutex<(RoleSet, Option<RoleSet>)>> = Arc::new(Mutex::new((model.clone(), None)));
        let counts: Arc<Mutex<(usize, usize)>> = Arc::default();
        std::thread::scope(|scope| {
            let (server, states, tally) = (&server, states.clone(), counts.clone());
            scope.spawn(move || {
                let Ok(export) = server.get("/_warden/security/_export") else { return };
                let files = export.json();
                let Some(roles_yml) = files["roles.yml"].as_str() else { return };
                let Ok(base_roles) = serde_norway::from_str::<serde_json::Value>(roles_yml) else { return };
                for k in 0.. {
                    let Ok(mut guard) = states.lock() else { return };
                    let mut next = guard.0.clone();
                    let request = if k % 2 == 0 {
                        let ops: Vec<serde_json::Value> = ["a", "b"]
                            .iter()
                            .map(|x| {
                                let name = format!("cw-p{round}-{k}{x}");
                                let description = format!("patch {round}-{k}");
                                next.insert((name.clone(), description.clone()));
                                json!({"op": "add", "path": format!("/{name}"), "value": cw_role(&description)})
                            })
                            .collect();
                        (Method::PATCH, format!("{API}/roles"), json!(ops))
                    } else {
                        next.retain(|(name, _)| !name.starts_with("cw-t"));
                        next.insert((format!("cw-t{round}-{k}"), "transient".to_owned()));
                        next.insert((format!("cw-i{round}-{k}"), format!("import {round}-{k}")));
                        let mut roles = base_roles.clone();
                        if let Some(map) = roles.as_object_mut() {
                            map.retain(|name, _| !name.starts_with("cw-"));
                            for (name, description) in &next {
                                map.insert(name.clone(), cw_role(description));
                            }
                        }
                        let mut whole = files.clone();
                        whole["roles.yml"] = json!(roles.to_string());
                        (Method::PUT, "/_warden/security/_import".to_owned(), whole)
                    };
                    guard.1 = Some(next.clone());
                    drop(guard);
                    match server.send(request.0.clone(), &request.1, &request.2) {
                        Ok(reply) if reply.status == 200 => {
                            if let Ok(mut guard) = states.lock() {
                                *guard = (next, None);
                            }
                            if let Ok(mut c) = tally.lock() {
                                if request.0 == Method::PATCH { c.0 += 1 } else { c.1 += 1 }
                            }
                        }
                        Ok(reply) if reply.status < 500 => {
                            panic!("round {round}: write {k} refused: {reply:?}")
                        }
                        _ => return,
                    }
                }
            });
            wait_until("a write is acknowledged", || counts.lock().is_ok_and(|c| c.0 + c.1 > 0));
            std::thread::sleep(delay);
            server.kill_hard();
        });
        drop(server);
        let (acked, in_flight) = states.lock().map(|s| s.clone()).map_err(|_| "poisoned")?;
        let (p, i) = counts.lock().map(|c| *c).map_err(|_| "poisoned")?;
        patches += p;
        imports += i;
        // The restart of the next round (or the last check) shows the state.
        let check = deployment.start()?;
        let found = config_write_roles(&check)?;
        drop(check.stop());
        if Some(&found) == in_flight.as_ref() {
            in_flight_applied += 1;
        } else {
            assert_eq!(
                found, acked,
                "round {round}: the last acknowledged state, or the one in flight {in_flight:?}"
            );
        }
        model = found;
    }
    assert!(patches > 0 && imports > 0, "both kinds of write were acknowledged: {patches} {imports}");
    eprintln!(
        "{patches} PATCHes and {imports} imports acknowledged over 4 kills; the write in flight had landed {in_flight_applied} times"
    );
    Ok(())
}

/// A server for the job crash test: a fast dispatcher, quick retries, and a
/// history long enough to hold every run of the test.
fn start_jobs(deployment: &Deployment) -> Result<Server, String> {
    let mut command = crate::support::warden();
    command
        .env("WARDEN_SCHEDULER_TICK_MS", "50")
        .env("WARDEN_JOB_RETRY_DELAY_MS", "100")
        .env("WARDEN_JOB_HISTORY", "1000")
        .env("WARDEN_JOB_MAX_FAILURES", "1000000");
    Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])
}

/// What a job looks like after the restart must agree with its run history:
/// returns (runs, successes).
fn job_agrees_with_history(server: &Server, id: &str) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let job = server.get(&format!("/_warden/jobs/{id}"))?.json();
    let history = server.get(&format!("/_warden/jobs/{id}/runs"))?.json();
    let entries = history["runs"].as_array().cloned().unwrap_or_default();
    let what = format!("{id}: {job}\nhistory: {history}");
    // Whole entries, numbered 1..=n without a gap (newest first).
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let n = entries.len() as u64;
    assert_eq!(seqs, (1..=n).rev().collect::<Vec<_>>(), "a gapless history: {what}");
    let count = |outcomes: &[&str]| {
        entries.iter().filter(|e| outcomes.iter().any(|o| e["outcome"] == *o)).count() as u64
    };
    let runs = job["runs"].as_u64().ok_or("no runs")?;
    assert_eq!(runs, count(&["success", "failure", "error"]), "runs counted = runs recorded: {what}");
    assert_eq!(job["failures"].as_u64(), Some(count(&["failure", "error"])), "failures: {what}");
    // The job's last run is the newest entry that was a run.
    let newest = entries.iter().find(|e| e["outcome"] != "missed");
    match (newest, job["last_run"].is_null()) {
        (None, true) => {}
        (Some(entry), false) => {
            let last = &job["last_run"];
            assert_eq!(
                (&last["started_at"], &last["attempt"], &last["status"], &last["message"]),
                (&entry["started_at"], &entry["attempt"], &entry["outcome"], &entry["message"]),
                "the last run is the newest entry: {what}"
            );
        }
        _ => panic!("a last run without its entry, or the reverse: {what}"),
    }
    Ok((runs, count(&["success"])))
}

/// Fault: `kill -9` at a random moment while jobs run and their outcomes
/// are written (every 50 ms a dispatcher tick; jobs that succeed, write
/// several documents, fail and retry, trap, or run for a while; and "run
/// now" requested over and over). Invariant: after a restart each job's
/// record and its run history agree — the history is gapless, the job's
/// run and failure counts are those of its history, its last run is the
/// newest entry — so no outcome is half-written; no run seen before the
/// kill is lost (the run count never goes back); and every success
/// recorded of the writing job has its documents in the index (a run's
/// writes land before its outcome). Rounds: 5 kills in the same data
/// directory at pseudo-random delays between 500 and 2500 ms; the jobs
/// are checked after the last restart with the dispatcher stopped (every
/// job disabled and no run under way).
#[test]
fn job_outcome_writes_survive_kill_9_at_random_moments() -> TestResult {
    use crate::jobs::ANA;
    use crate::support::{API, now_ms};
    use warden_test_artifacts::GUEST_HOST_CALLS;
    let deployment = Deployment::new()?;
    deployment.install(
        "probe",
        GUEST_HOST_CALLS,
        "capabilities = [\"cluster\", \"scheduler\"]\n[limits]\ncpu_ms = 300\ntimeout_ms = 10000\n\
         [[jobs]]\nname = \"write\"\ncluster_actions = [\"indices:data/write/index\"]\nindex_patterns = [\"job-*\"]",
    )?;
    let server = start_jobs(&deployment)?;
    let writer = json!([{"index_patterns": ["job-*"], "allowed_actions": ["crud", "create_index"]}]);
    for (path, body) in [
        (format!("{API}/roles/extension:probe"), json!({"index_permissions": writer})),
        (
            format!("{API}/roles/scheduling"),
            json!({"extension_permissions": ["extension:probe/*", "schedule:probe"], "index_permissions": writer}),
        ),
        (format!("{API}/internalusers/ana"), json!({"password": ANA.1})),
        (format!("{API}/rolesmapping/scheduling"), json!({"users": ["ana"]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    assert_eq!(server.consent(ANA.0, ANA.1, "probe")?.status, 201);
    let kinds = [
        ("ok", json!({})),
        ("writes", json!({"index": "job-crash", "doc": {"w": 1}, "calls": 3})),
        ("slow", json!({"index": "job-slow", "doc": {"w": 1}, "calls": 4, "pause_ms": 150})),
        ("fails", json!({"fail": "on purpose"})),
        ("traps", json!({"panic": "on purpose"})),
    ];
    let mut ids = Vec::new();
    for (name, params) in &kinds {
        let spec = json!({"name": name, "schedule": {"interval": 1}, "params": params});
        let reply = server.send_as(ANA.0, ANA.1, Method::POST, "/_extensions/probe/schedule", &spec)?;
        assert_eq!((reply.status, &reply.json()["outcome"]), (200, &json!("ok")), "{reply:?}");
        ids.push(reply.json()["id"].as_str().ok_or("no id")?.to_owned());
    }
    drop(server.stop());

    let mut seed = now_ms();
    let mut seen_runs: BTreeMap<String, u64> = BTreeMap::new();
    for _round in 0..5 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = std::time::Duration::from_millis(500 + (seed >> 33) % 2000);
        let server = start_jobs(&deployment)?;
        let seen: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        std::thread::scope(|scope| {
            let (server, reader, halt, ids) = (&server, seen.clone(), stop.clone(), &ids);
            scope.spawn(move || {
                while !halt.load(Ordering::Relaxed) {
                    for id in ids {
                        // Run now, and note the runs a reader saw committed.
                        let _ = server.request(Method::POST, &format!("/_warden/jobs/{id}/_run"), "");
                        let Ok(view) = server.get(&format!("/_warden/jobs/{id}")) else { return };
                        if let (200, Some(runs), Ok(mut seen)) =
                            (view.status, view.json()["runs"].as_u64(), reader.lock())
                        {
                            let entry = seen.entry(id.clone()).or_default();
                            *entry = (*entry).max(runs);
                        }
                    }
                }
            });
            wait_until("a run is seen", || seen.lock().is_ok_and(|s| s.values().any(|r| *r > 0)));
            std::thread::sleep(delay);
            server.kill_hard();
            stop.store(true, Ordering::Relaxed);
        });
        drop(server);
        for (id, runs) in seen.lock().map(|s| s.clone()).unwrap_or_default() {
            let entry = seen_runs.entry(id).or_default();
            *entry = (*entry).max(runs);
        }
    }

    let server = start_jobs(&deployment)?;
    for id in &ids {
        let reply = server.request(Method::POST, &format!("/_warden/jobs/{id}/_disable"), "")?;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.scheduler_health()?["runs_in_progress"] != 0 {
        assert!(std::time::Instant::now() < deadline, "runs still under way");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut total = 0;
    for ((name, params), id) in kinds.iter().zip(&ids) {
        let (runs, successes) = job_agrees_with_history(&server, id)?;
        let before = seen_runs.get(id).copied().unwrap_or(0);
        assert!(runs >= before, "{name}: {before} runs seen before a kill, {runs} after");
        if let Some(index) = params["index"].as_str() {
            let calls = params["calls"].as_u64().unwrap_or(1);
            // One job writes each index.
            let docs = server.send(Method::POST, &format!("/{index}/_count"), &json!({}))?.json()["count"]
                .as_u64()
                .unwrap_or(0);
            assert!(
                docs >= successes * calls,
                "{name}: {successes} successes of {calls} writes, {docs} documents"
            );
        }
        total += runs;
    }
    assert!(total > 0, "some runs were recorded");
    eprintln!("{total} runs recorded over 5 kills: {seen_runs:?}");
    Ok(())
}

/// Fault: `kill -9` after administrators revoked tokens by `jti` from four
/// clients at once. Invariant: every revocation acknowledged is in the
/// revocation list after the restart. (The list is one stored document:
/// two revocations at once each wrote their own snapshot of it, and the
/// older could land last, losing the other's, acknowledged, on disk.)
/// Rounds: 3 kills, four clients each time, every revocation checked.
#[test]
fn concurrent_revocations_all_survive_kill_9() -> TestResult {
    let deployment = Deployment::new()?;
    let mut acked = Vec::new();
    for round in 0..3 {
        let server = deployment.start()?;
        let done: Arc<Mutex<Vec<String>>> = Arc::default();
        std::thread::scope(|scope| {
            for client in 0..4 {
                let (server, done) = (&server, done.clone());
                scope.spawn(move || {
                    for n in 0..150 {
                        let jti = format!("r{round}-c{client}-{n}");
                        let body = json!({"jti": jti, "expires_at": crate::support::now_secs() + 600});
                        match server.send(Method::POST, "/_warden/tokens/_revoke", &body) {
                            Ok(reply) if reply.status == 200 => {
                                if let Ok(mut done) = done.lock() {
                                    done.push(jti);
                                }
                            }
                            _ => break,
                        }
                    }
                });
            }
        });
        server.kill_hard();
        drop(server);
        acked.extend(done.lock().map(|d| d.clone()).unwrap_or_default());
    }
    let server = deployment.start()?;
    let list = server.get("/_warden/tokens/_revocations")?.json();
    let lost: Vec<&String> = acked.iter().filter(|jti| list["jtis"].get(jti.as_str()).is_none()).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged revocations lost: {:?}",
        lost.len(),
        acked.len(),
        lost.first()
    );
    assert_eq!(acked.len(), 3 * 4 * 150);
    Ok(())
}
