//! Attacks of class `sandbox` (see mod.rs): a hostile guest tries to hold
//! more memory, tables or instances than its caps by spreading them over
//! many memories, modules and instances (issue #10, holes 7 and 8); to
//! starve its neighbours of pooled slots; to plant links out of its files
//! directory or fill the disk (the `files` weaknesses, including a write
//! far past the end of a file); and to make the host spend memory or log
//! space outside its caps (resource handles, log records).
//!
//! The many-memories attackers are real guests (hello-world) with extra core
//! modules appended to the component: a component may define a module and
//! instantiate it anywhere, so a few raw sections make one instance hold any
//! number of memories or tables, which is what the pool and the limiter must
//! refuse.

use std::time::Duration;

use reqwest::Method;
use warden_test_artifacts::{GUEST_FILES_PROBE, GUEST_RESOURCE_HOG, GUEST_SLEEPER, HELLO_WORLD};

use crate::support::{Deployment, Reply, Server, TestResult};

// --- component surgery ------------------------------------------------------

fn leb(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb(bytes: &[u8]) -> Result<(u64, usize), String> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err("bad LEB128".into())
}

fn section(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    out.extend(leb(payload.len() as u64));
    out.extend(payload);
    out
}

/// Core modules the component itself defines (top-level section id 1): the
/// index the next one gets.
fn core_module_count(component: &[u8]) -> Result<u64, String> {
    let mut at = 8;
    let mut count = 0;
    while at < component.len() {
        let id = component[at];
        let (size, used) = read_leb(&component[at + 1..])?;
        at += 1 + used + size as usize;
        count += u64::from(id == 1);
    }
    Ok(count)
}

/// A core module defining `memories` memories of `pages` 64 KiB pages each.
fn memory_module(memories: u32, pages: u32) -> Vec<u8> {
    let mut payload = leb(u64::from(memories));
    for _ in 0..memories {
        payload.push(0x00); // limits: min only
        payload.extend(leb(u64::from(pages)));
    }
    [b"\0asm\x01\0\0\0".as_slice(), &section(5, &payload)].concat()
}

/// A core module defining one funcref table of `elements`.
fn table_module(elements: u32) -> Vec<u8> {
    let payload = [&[1u8, 0x70, 0x00][..], &leb(u64::from(elements))].concat();
    [b"\0asm\x01\0\0\0".as_slice(), &section(4, &payload)].concat()
}

/// `component` plus `module`, instantiated `instances` times (no imports).
fn with_instances(
    component: &str,
    module: &[u8],
    instances: u32,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut bytes = std::fs::read(component)?;
    let index = core_module_count(&bytes)?;
    let mut entries = leb(u64::from(instances));
    for _ in 0..instances {
        entries.push(0x00); // instantiate
        entries.extend(leb(index));
        entries.push(0x00); // no arguments
    }
    bytes.extend(section(1, module));
    bytes.extend(section(2, &entries));
    Ok(bytes)
}

/// Installs `bytes` as extension `id`.
fn install_bytes(d: &Deployment, id: &str, bytes: &[u8], manifest_tail: &str) -> std::io::Result<()> {
    let manifest =
        format!("id = \"{id}\"\nversion = \"0.1.0\"\ncomponent = \"component.wasm\"\n{manifest_tail}\n");
    d.install_raw(id, &[("component.wasm", bytes), ("extension.toml", manifest.as_bytes())]).map(drop)
}

// --- helpers ---------------------------------------------------------------

/// The load error recorded for `id` (from `/_warden/health`).
fn load_failure(server: &Server, id: &str) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let health = server.get("/_warden/health")?.json();
    let failed = health["failed"].as_array().cloned().unwrap_or_default();
    Ok(failed.iter().find(|f| f["id"] == id).and_then(|f| f["error"].as_str()).map(str::to_owned))
}

fn assert_hello_answers(server: &Server) -> TestResult {
    let reply = server.get("/_extensions/hello/greet/sandbox")?;
    assert_eq!(reply.status, 200, "hello-world beside the attacker: {reply:?}");
    assert_eq!(reply.json()["greeting"], "Hello, sandbox!");
    Ok(())
}

// --- hole 7: the memory cap counts every memory; per-component maxima --------

/// Components holding more memories, tables or core instances than one
/// component may are refused at load, with the limit named; hello-world
/// beside them serves.
#[test]
fn many_memories_tables_or_instances_are_refused_at_load() -> TestResult {
    // (id, component, what the error must name)
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // The review's attack: 17 memories of 62.5 MiB under memory_mib = 64.
        ("seventeen", with_instances(HELLO_WORLD, &memory_module(1, 1000), 17)?, "core module instances"),
        // Under the instance maximum but over the memories one.
        ("three-memories", with_instances(HELLO_WORLD, &memory_module(1, 1), 3)?, "linear memories"),
        // One module, many memories (the multi-memory proposal).
        ("multi-memory", with_instances(HELLO_WORLD, &memory_module(17, 1), 1)?, "memor"),
        // Tables instead of memories.
        ("tables", with_instances(HELLO_WORLD, &table_module(10), 4)?, "tables"),
    ];
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "capabilities = []")?;
    for (id, bytes, _) in &cases {
        install_bytes(&deployment, id, bytes, "[limits]\nmemory_mib = 64")?;
    }
    let server = deployment.start()?;
    for (id, _, names) in &cases {
        let error = load_failure(&server, id)?.ok_or_else(|| format!("`{id}` loaded:\n{}", server.logs()))?;
        assert!(
            error.contains("refused, it needs more than this host allows one component"),
            "{id}: {error}"
        );
        assert!(error.contains("exceeds"), "{id}: {error}");
        assert!(error.to_lowercase().contains(names), "{id}: the error names the limit ({names}): {error}");
        let reply = server.get(&format!("/_extensions/{id}/"))?;
        assert_ne!(reply.status, 200, "{id} must not serve: {reply:?}");
    }
    assert_hello_answers(&server)
}

/// Two memories are allowed per component, but the cap is on their SUM:
/// 63 MiB beside the guest's own memory does not fit 64 MiB (each alone
/// would), and fits 128 MiB.
#[test]
fn the_memory_cap_counts_the_sum_of_all_memories() -> TestResult {
    let bytes = with_instances(HELLO_WORLD, &memory_module(1, 1008), 1)?;
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "capabilities = []")?;
    install_bytes(&deployment, "tight", &bytes, "[limits]\nmemory_mib = 64")?;
    install_bytes(&deployment, "roomy", &bytes, "[limits]\nmemory_mib = 128")?;
    let server = deployment.start()?;
    for _ in 0..3 {
        let reply = server.get("/_extensions/tight/greet/x")?;
        assert_eq!(reply.status, 500, "{reply:?}");
        assert_eq!(reply.json()["error"]["type"], "memory_limit_exceeded", "{reply:?}");
        assert!(reply.reason().contains("exceeded its memory limit of 64 MiB"), "{reply:?}");
        let reply = server.get("/_extensions/roomy/greet/x")?;
        assert_eq!(reply.status, 200, "the same component under a cap that fits its sum: {reply:?}");
        assert_hello_answers(&server)?;
    }
    Ok(())
}

// --- hole 8: one extension cannot starve another ------------------------------

/// An extension whose `max_concurrency` × per-instance slots do not fit in
/// what the pool has left is refused at load with the numbers; the ones
/// that fit keep serving.
#[test]
fn an_extension_that_would_not_fit_the_pool_is_refused_at_load() -> TestResult {
    let deployment = Deployment::new()?;
    // Loaded in name order: `a-half` takes 600 of the 1,000 instance slots.
    deployment.install("a-half", HELLO_WORLD, "[limits]\nmax_concurrency = 600")?;
    deployment.install("b-half", HELLO_WORLD, "[limits]\nmax_concurrency = 600")?;
    deployment.install("c-greedy", HELLO_WORLD, "[limits]\nmax_concurrency = 5000")?;
    deployment.install("hello", HELLO_WORLD, "capabilities = []")?;
    let server = deployment.start()?;

    let error = load_failure(&server, "b-half")?.ok_or("b-half loaded")?;
    assert!(error.contains("extension `b-half` needs 600 pooled component instances"), "{error}");
    assert!(error.contains("only 400 of the pool's 1000 are free (600 reserved"), "{error}");
    assert!(error.contains("limits.max_concurrency"), "{error}");
    let error = load_failure(&server, "c-greedy")?.ok_or("c-greedy loaded")?;
    assert!(error.contains("needs 5000 pooled component instances"), "{error}");

    assert_eq!(server.get("/_extensions/a-half/greet/a")?.status, 200);
    assert_hello_answers(&server)?;
    assert!(error.contains("--max-instances"), "the operator is told how to grow the pool: {error}");

    // The operator's way out: a bigger pool, and both halves load.
    drop(server);
    let server = deployment.start_with(&["--max-instances", "1300"])?;
    assert!(load_failure(&server, "b-half")?.is_none(), "b-half still refused with a bigger pool");
    assert_eq!(server.get("/_extensions/b-half/greet/b")?.status, 200);
    assert_hello_answers(&server)
}

/// A hostile extension holding two memories per instance saturates every
/// one of its concurrency slots; its neighbour still answers 200 every
/// time, and the attacker itself only ever sees 200 or 503 (busy), never a
/// pool failure.
#[test]
fn a_saturated_neighbour_cannot_starve_hello() -> TestResult {
    let hog = with_instances(GUEST_SLEEPER, &memory_module(1, 16), 1)?;
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "capabilities = []")?;
    install_bytes(&deployment, "hog", &hog, "[limits]\nmax_concurrency = 24\nqueue_timeout_ms = 50")?;
    let server = deployment.start()?;

    let (hog_replies, hello_replies) = std::thread::scope(|scope| {
        let attackers: Vec<_> =
            (0..48).map(|_| scope.spawn(|| server.get("/_extensions/hog/?ms=600"))).collect();
        std::thread::sleep(Duration::from_millis(150));
        let hello: Vec<_> = (0..10).map(|_| server.get("/_extensions/hello/greet/sandbox")).collect();
        (attackers.into_iter().map(|h| h.join()).collect::<Vec<_>>(), hello)
    });
    for reply in hello_replies {
        let reply = reply?;
        assert_eq!(reply.status, 200, "hello while the hog is saturated: {reply:?}");
    }
    let mut served = 0;
    for reply in hog_replies {
        let reply: Reply = reply.map_err(|_| "client thread panicked")??;
        assert!(matches!(reply.status, 200 | 503), "the hog sees its own limits only: {reply:?}");
        served += usize::from(reply.status == 200);
    }
    assert!(served >= 24, "every slot of the hog was used: {served}");
    assert!(!server.logs().contains("maximum concurrent limit"), "no pool exhaustion:\n{}", server.logs());
    assert_hello_answers(&server)
}

/// The review's starving attack: an extension whose instances hold 20
/// memories each and which may run 150 at once takes every memory of the
/// pool (2,000 before the fix: 100 instances) and every other extension
/// answered 500 while it ran (this test fails so against the binary of
/// e780668). It is refused at load now, and hello-world answers 200
/// throughout the attack.
#[test]
fn the_pool_starving_attack_is_refused_and_hello_serves_throughout() -> TestResult {
    let wide = with_instances(GUEST_SLEEPER, &memory_module(1, 1), 19)?;
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "capabilities = []")?;
    install_bytes(&deployment, "hog-wide", &wide, "[limits]\nmax_concurrency = 150\nqueue_timeout_ms = 50")?;
    let server = deployment.start()?;

    let hello_replies = std::thread::scope(|scope| {
        let attackers: Vec<_> =
            (0..130).map(|_| scope.spawn(|| server.get("/_extensions/hog-wide/?ms=1500"))).collect();
        std::thread::sleep(Duration::from_millis(400));
        let hello: Vec<_> = (0..10).map(|_| server.get("/_extensions/hello/greet/sandbox")).collect();
        for attacker in attackers {
            let _ = attacker.join();
        }
        hello
    });
    for reply in hello_replies {
        let reply = reply?;
        assert_eq!(reply.status, 200, "hello during the attack: {reply:?}");
    }
    assert!(!server.logs().contains("maximum concurrent limit"), "no pool exhaustion:\n{}", server.logs());
    let error = load_failure(&server, "hog-wide")?.ok_or("hog-wide loaded")?;
    assert!(error.contains("exceeds the configured maximum"), "{error}");
    assert_hello_answers(&server)
}

// --- files: no links, a quota for the whole directory ------------------------

fn probe(server: &Server, path: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let reply = server.get(&format!("/_extensions/files/{path}"))?;
    assert_eq!(reply.status, 200, "{path}: {reply:?}");
    Ok(reply.json())
}

fn probe_body(
    server: &Server,
    path: &str,
    body: &str,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let reply = server.request(Method::POST, &format!("/_extensions/files/{path}"), body)?;
    assert_eq!(reply.status, 200, "{path}: {reply:?}");
    Ok(reply.json())
}

fn files_deployment(limits: &str) -> Result<Deployment, Box<dyn std::error::Error>> {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "capabilities = []")?;
    deployment.install("files", GUEST_FILES_PROBE, &format!("capabilities = [\"files\"]\n{limits}"))?;
    Ok(deployment)
}

/// Symbolic and hard links are refused whatever they point at; nothing is
/// left on disk; a plain write and read still work.
#[test]
fn planting_links_is_refused() -> TestResult {
    let deployment = files_deployment("")?;
    let server = deployment.start()?;
    let dir = deployment.data_dir().join("files").join("files");

    assert_eq!(probe_body(&server, "write/note", "kept")?["outcome"], "ok");
    for (target, link) in [("/etc/passwd", "abs"), ("../../store/warden.redb", "up"), ("note", "inside")] {
        let answer = probe(&server, &format!("symlink?target={target}&link={link}"))?;
        assert_eq!(answer["outcome"], "error", "symlink to {target}: {answer}");
        assert!(dir.join(link).symlink_metadata().is_err(), "no link `{link}` on disk");
    }
    let answer = probe(&server, "hardlink?from=note&to=twin")?;
    assert_eq!(answer["outcome"], "error", "hard link: {answer}");
    assert!(dir.join("twin").symlink_metadata().is_err());
    assert!(server.wait_for_log("the files capability allows no links"), "{}", server.logs());

    let answer = probe(&server, "read/note")?;
    assert_eq!((answer["outcome"].as_str(), answer["text"].as_str()), (Some("ok"), Some("kept")), "{answer}");
    assert_hello_answers(&server)
}

/// A link that got into the directory anyway (planted before the fix, or
/// by something else on the host) is never followed while running, and a
/// directory holding one is refused at load, naming it.
#[cfg(unix)]
#[test]
fn existing_links_are_not_followed_and_refused_at_load() -> TestResult {
    let deployment = files_deployment("")?;
    let dir = deployment.data_dir().join("files").join("files");
    std::fs::create_dir_all(deployment.data_dir())?;
    let secret = deployment.data_dir().join("secret.txt");
    std::fs::write(&secret, "host secret")?;
    let server = deployment.start()?;
    std::os::unix::fs::symlink(&secret, dir.join("planted"))?;
    let answer = probe(&server, "read/planted")?;
    assert_eq!(answer["outcome"], "error", "followed a planted link: {answer}");
    assert!(!answer.to_string().contains("host secret"));
    drop(server);

    let server = deployment.start()?;
    let error = load_failure(&server, "files")?.ok_or("loaded with a symlink in its directory")?;
    assert!(error.contains("holds symbolic links") && error.contains("planted"), "{error}");
    assert_hello_answers(&server)?;
    drop(server);

    std::fs::remove_file(dir.join("planted"))?;
    let server = deployment.start()?;
    assert_eq!(probe_body(&server, "write/again", "fine")?["outcome"], "ok");
    Ok(())
}

/// Bytes on disk under `dir`, every entry and file length (what the quota counts).
fn disk_usage(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        total += 4096 + if meta.is_file() { meta.len() } else { 0 };
    }
    Ok(total)
}

/// `files_mib = 1`: one big write, many small files, a sparse extension and
/// parallel writers to different files all stop at the quota of the WHOLE
/// directory with ENOSPC; the host logs the quota; after a delete a normal
/// write works again.
#[test]
fn the_files_quota_holds_for_the_whole_directory() -> TestResult {
    let deployment = files_deployment("[limits]\nfiles_mib = 1")?;
    let server = deployment.start()?;
    let dir = deployment.data_dir().join("files").join("files");
    let quota = 1u64 << 20;

    // One file, written in 64 KiB pieces, 4 MiB wanted.
    // (wasi-libc reports a failed stream write as EIO without asking the
    // host for the error code; the host log names the quota.)
    let answer = probe(&server, "fill/big?chunk=65536&bytes=4194304")?;
    assert_eq!(answer["outcome"], "error", "{answer}");
    let written = answer["written"].as_u64().unwrap_or(u64::MAX);
    assert!(written > quota / 2 && written <= quota, "stopped near the quota: {written}");
    assert!(disk_usage(&dir)? <= quota, "{}", disk_usage(&dir)?);
    assert!(server.wait_for_log("files quota of 1 MiB reached"), "{}", server.logs());

    // Full: a new small file is refused too (counted per directory, not per file).
    assert_eq!(probe_body(&server, "write/small", "hello")?["outcome"], "error");
    // Freed: a normal write works again and reads back.
    assert_eq!(probe(&server, "remove/big")?["outcome"], "ok");
    assert_eq!(probe_body(&server, "write/small", "hello")?["outcome"], "ok");
    assert_eq!(probe(&server, "read/small")?["text"], "hello");

    // Parallel writers on different files share the quota.
    let answers: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let server = &server;
                scope.spawn(move || {
                    probe(server, &format!("fill/part{i}?chunk=16384&bytes=524288"))
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut refused = 0;
    for answer in answers {
        let answer = answer.map_err(|_| "client thread panicked")??;
        refused += usize::from(answer["outcome"] == "error");
    }
    assert!(refused >= 2, "4 × 512 KiB cannot all fit 1 MiB: {refused} refused");
    assert!(disk_usage(&dir)? <= quota, "{}", disk_usage(&dir)?);
    for i in 0..4 {
        probe(&server, &format!("remove/part{i}"))?;
    }

    // Growing a file without writing it (sparse) counts its length.
    assert_eq!(probe(&server, "extend/hole?size=1073741824")?["outcome"], "error");
    // Empty files are not free.
    let answer = probe(&server, "touch/empty?count=1000")?;
    assert_eq!(answer["outcome"], "error", "{answer}");
    // A refused create is a descriptor call: the guest gets ENOSPC itself.
    assert!(answer["error"].as_str().unwrap_or_default().contains("No space left on device"), "{answer}");
    assert!(answer["created"].as_u64().unwrap_or(u64::MAX) < 256, "{answer}");
    assert!(disk_usage(&dir)? <= quota, "{}", disk_usage(&dir)?);
    assert_hello_answers(&server)
}

// --- host memory and disk the guest makes the host spend ---------------------

/// What `/_extensions/hog/<path>` answered.
fn hog(server: &Server, path: &str) -> Result<Reply, Box<dyn std::error::Error>> {
    Ok(server.get(&format!("/_extensions/hog/{path}"))?)
}

fn hog_deployment() -> Result<Deployment, Box<dyn std::error::Error>> {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "capabilities = []")?;
    deployment.install("hog", GUEST_RESOURCE_HOG, "capabilities = []\n[limits]\nmemory_mib = 4")?;
    Ok(deployment)
}

/// Resource handles are host memory outside the memory cap: a guest that
/// keeps creating them (two constructors, many concurrent invocations) is
/// stopped at the per-invocation limit with an error naming it, instead of
/// holding ~100,000 each; a guest holding a reasonable number still works.
#[test]
fn resource_handles_are_capped_per_invocation() -> TestResult {
    let deployment = hog_deployment()?;
    let server = deployment.start()?;
    for kind in ["duration", "instant"] {
        let reply = hog(&server, &format!("handles?count=100000&kind={kind}"))?;
        assert_eq!(reply.status, 500, "{kind}: {reply:?}");
        assert!(reply.reason().contains("too many resources at once: at most 4096"), "{kind}: {reply:?}");
        assert!(!reply.body.contains("\"held\""), "{kind}: {reply:?}");
        // A pollable is two host entries: 2,000 fit.
        let reply = hog(&server, &format!("handles?count=2000&kind={kind}"))?;
        assert_eq!((reply.status, &reply.json()["held"]), (200, &serde_json::json!(2000)), "{reply:?}");
    }
    // Many at once: each is refused alone, the host keeps serving.
    let replies: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let server = &server;
                scope.spawn(move || {
                    hog(server, "handles?count=99000").map(|r| r.status).map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    for reply in replies {
        assert_eq!(reply.map_err(|_| "client thread panicked")??, 500);
    }
    assert_hello_answers(&server)
}

/// Server-log bytes written while `f` ran, once the `summaries` drop
/// summaries it causes are logged (they come after the response).
fn log_growth(
    server: &Server,
    summaries: usize,
    f: impl FnOnce() -> TestResult,
) -> Result<usize, Box<dyn std::error::Error>> {
    let count = || server.logs().matches("log records (").count();
    let (before, seen) = (server.logs().len(), count());
    f()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count() < seen + summaries && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(count() >= seen + summaries, "no drop summary: {}", server.logs());
    Ok(server.logs().len().saturating_sub(before))
}

/// One request writing 2,000 records of 16 KiB (32 MiB) adds at most its
/// budget (1 MiB) to the server log, and one line counts what was dropped;
/// tiny records are capped by number; long messages are cut; back-to-back
/// floods are held to the extension's rate; a modest log still gets through.
#[test]
fn a_guest_cannot_flood_the_server_log() -> TestResult {
    let deployment = hog_deployment()?;
    let server = deployment.start()?;
    let budget = 1usize << 20;

    let grew = log_growth(&server, 1, || {
        let reply = hog(&server, "log?count=2000&size=16384")?;
        assert_eq!(reply.status, 200, "the guest is not stopped, its records are dropped: {reply:?}");
        Ok(())
    })?;
    assert!(grew <= budget + budget / 8, "one request grew the log by {grew} bytes");
    let logs = server.logs();
    let summary = logs.lines().find(|l| l.contains("dropped ") && l.contains("from extension hog"));
    assert!(summary.is_some(), "{}", &logs[logs.len().saturating_sub(2000)..]);
    // Kept messages were cut at 8 KiB.
    let longest = logs.lines().filter(|l| l.contains("xxxx")).map(str::len).max().unwrap_or(0);
    assert!(longest > 8 * 1024 && longest < 9 * 1024, "longest guest line: {longest}");

    // Back to back, tiny records too: the extension's rate (2 MiB burst,
    // 256 KiB/s) holds, whatever each invocation's own budget.
    let started = std::time::Instant::now();
    let grew = log_growth(&server, 3, || {
        for path in ["log?count=100000&size=0", "log?count=2000&size=16384", "log?count=2000&size=16384"] {
            assert_eq!(hog(&server, path)?.status, 200);
        }
        Ok(())
    })?;
    let allowed = 2 * budget + (started.elapsed().as_secs_f64() * 256.0 * 1024.0) as usize + budget / 4;
    assert!(grew <= allowed, "three floods grew the log by {grew} bytes (allowed {allowed})");
    assert_hello_answers(&server)
}

/// A write past the end of a file makes its length (what the quota counts)
/// reach the offset: one byte at 1 TiB, by stream and by `pwrite`, or just
/// past the quota, is refused like the hole it makes; a sparse write
/// inside the quota works; afterwards normal writes still fit.
#[test]
fn writes_past_the_end_are_charged_for_their_hole() -> TestResult {
    let deployment = files_deployment("[limits]\nfiles_mib = 1")?;
    let server = deployment.start()?;
    let dir = deployment.data_dir().join("files").join("files");
    let quota = 1u64 << 20;

    for (route, offset) in
        [("poke", 1u64 << 40), ("pwrite", 1 << 40), ("poke", 2 * quota), ("pwrite", quota + (quota >> 1))]
    {
        let answer = probe(&server, &format!("{route}/sparse?offset={offset}"))?;
        assert_eq!(answer["outcome"], "error", "{route} at {offset}: {answer}");
        let len = std::fs::metadata(dir.join("sparse")).map(|m| m.len()).unwrap_or(0);
        assert!(len < quota, "{route} at {offset} left a file of {len} bytes");
        assert!(disk_usage(&dir)? <= quota, "{}", disk_usage(&dir)?);
    }
    assert!(server.wait_for_log("files quota of 1 MiB reached"), "{}", server.logs());

    // Sparse inside the quota: fine, and counted.
    for (route, name) in [("poke", "hole-a"), ("pwrite", "hole-b")] {
        assert_eq!(probe(&server, &format!("{route}/{name}?offset=200000"))?["outcome"], "ok");
        assert_eq!(std::fs::metadata(dir.join(name))?.len(), 200_001);
    }
    // The attacks left no phantom usage: ordinary writes still fit.
    assert_eq!(probe_body(&server, "write/small", "hello")?["outcome"], "ok");
    assert_eq!(probe(&server, "read/small")?["text"], "hello");
    assert_eq!(probe(&server, "fill/more?chunk=65536&bytes=262144")?["outcome"], "ok");
    assert!(disk_usage(&dir)? <= quota, "{}", disk_usage(&dir)?);
    assert_hello_answers(&server)
}
