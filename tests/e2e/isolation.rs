//! A fresh instance per request, proven from outside (issue #18): whatever
//! one request plants in its instance — a static, a thread-local, an
//! environment variable, an open file descriptor, a pattern in linear
//! memory — the next request does not see, whether it comes from the same
//! user or another; and the memory, CPU and wall-time limits bound each
//! request on its own, not a running total. The guest is
//! tests/guests/isolation-probe; `serve::guest_isolation_probe` runs the
//! planting case. These hold whatever the host does to make instantiation
//! cheaper (pooled memories kept resident, reset by their dirty pages).

use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::GUEST_ISOLATION_PROBE;

use crate::support::{API, Deployment, Server, TestResult};

/// A second user, allowed to call the probe.
const IVY: (&str, &str) = ("ivy", "Ivy-Password-1");

fn probe_server(manifest_tail: &str) -> Result<(Deployment, Server), Box<dyn std::error::Error>> {
    let deployment = Deployment::new()?;
    deployment.install("probe", GUEST_ISOLATION_PROBE, manifest_tail)?;
    let server = deployment.start()?;
    for (path, body) in [
        (format!("{API}/roles/probe_caller"), json!({"extension_permissions": ["extension:probe/*"]})),
        (format!("{API}/internalusers/{}", IVY.0), json!({"password": IVY.1})),
        (format!("{API}/rolesmapping/probe_caller"), json!({"users": [IVY.0]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    Ok((deployment, server))
}

/// `GET /state?look=<look>&mark=<mark>` as `who`: what the instance saw
/// before planting, and the whole answer.
fn state(
    server: &Server,
    who: (&str, &str),
    look: &str,
    mark: &str,
) -> Result<Value, Box<dyn std::error::Error>> {
    let reply = server.get_as(who.0, who.1, &format!("/_extensions/probe/state?look={look}&mark={mark}"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["user"], who.0, "{body}");
    Ok(body)
}

/// Six requests, alternating users, each planting its own mark and looking
/// for the one before it: each sees a fresh instance, and each sees its own
/// plant (the probe is not blind).
pub(crate) fn state_planted_by_one_request_is_not_seen_by_the_next() -> TestResult {
    // With `files`, the plant also leaves a file of /data open.
    let (_deployment, server) = probe_server(r#"capabilities = ["files"]"#)?;
    let admin = ("admin", crate::support::ADMIN_PASSWORD);
    let who = [admin, admin, IVY, IVY, admin, IVY];
    let mut fresh_fds: Option<Value> = None;
    let mut previous = "none".to_owned();
    for (n, user) in who.into_iter().enumerate() {
        let mark = format!("mark{n}x{}", user.0);
        let body = state(&server, user, &previous, &mark)?;
        let seen = &body["seen"];
        assert_eq!(seen["counter"], 0, "request {n} saw a static written before: {body}");
        assert_eq!(seen["last_mark"], "", "request {n} saw a static string: {body}");
        assert_eq!(seen["local_mark"], "", "request {n} saw a thread-local: {body}");
        assert_eq!(seen["env"], json!([]), "request {n} saw an environment: {body}");
        assert_eq!(seen["memory"], json!([]), "request {n} found `{previous}`'s memory pattern: {body}");
        // The descriptors of a fresh instance, the same every time.
        let fds = fresh_fds.get_or_insert_with(|| seen["fds"].clone());
        assert_eq!(&seen["fds"], fds, "request {n} saw other descriptors than the first: {body}");

        // Its own plant is visible to itself.
        let after = &body["after"];
        let planted_fd = &body["planted"]["fd"];
        assert!(planted_fd.is_i64(), "the plant opened no file: {body}");
        assert!(!fds.as_array().is_some_and(|f| f.contains(planted_fd)), "{body}");
        assert!(after["fds"].as_array().is_some_and(|f| f.contains(planted_fd)), "{body}");
        assert_eq!(after["counter"], 1, "{body}");
        assert_eq!(after["last_mark"], mark.as_str(), "{body}");
        assert_eq!(after["local_mark"], mark.as_str(), "{body}");
        assert_eq!(after["env"], json!([format!("WARDEN_PROBE_MARK={mark}")]), "{body}");
        assert_eq!(after["memory"], json!([body["planted"]["pattern_at"]]), "{body}");
        previous = mark;
    }
    Ok(())
}

/// Each request gets the whole of every limit, and one request that
/// breaks a limit leaves the next one unharmed: memory is not a running
/// total across requests, nor CPU, nor wall time.
#[test]
fn limits_hold_for_every_request_alone() -> TestResult {
    let (_deployment, server) =
        probe_server("capabilities = []\n[limits]\nmemory_mib = 24\ncpu_ms = 400\ntimeout_ms = 1500")?;
    let get = |path: &str| server.get(&format!("/_extensions/probe/{path}"));
    for round in 0..3 {
        // 16 MiB of 24 fits each time; three together would not.
        let reply = get("alloc?mib=16")?;
        assert_eq!(reply.status, 200, "round {round}: {reply:?}");
        // 200 ms of 400 ms CPU each time; three together would not.
        let reply = get("burn?ms=200")?;
        assert_eq!(reply.status, 200, "round {round}: {reply:?}");
        // 800 ms of 1500 ms wall time each time (asleep: no CPU).
        let reply = get("sleep?ms=800")?;
        assert_eq!(reply.status, 200, "round {round}: {reply:?}");
    }
    // Over each limit: stopped, named, and the next request is whole again.
    let reply = get("alloc?mib=40")?;
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(reply.reason().contains("exceeded its memory limit of 24 MiB"), "{reply:?}");
    assert_eq!(get("alloc?mib=16")?.status, 200);
    let reply = get("burn?ms=5000")?;
    assert_eq!(reply.status, 504, "{reply:?}");
    assert!(reply.reason().contains("used more than its 400ms of CPU"), "{reply:?}");
    assert_eq!(get("burn?ms=200")?.status, 200);
    let reply = get("sleep?ms=5000")?;
    assert_eq!(reply.status, 504, "{reply:?}");
    assert!(reply.reason().contains("did not finish within 1500ms"), "{reply:?}");
    assert_eq!(get("sleep?ms=800")?.status, 200);
    // And a request after all that still starts from a fresh instance.
    let body = state(&server, IVY, "none", "last")?;
    assert_eq!(body["seen"]["counter"], 0, "{body}");
    Ok(())
}
