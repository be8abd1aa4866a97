//! `GET /_warden/metrics`: a scrape after known traffic shows the counters
//! that traffic must have moved, read as Prometheus reads them (parsed by a
//! text-format parser, not searched for strings); the scrape needs its own
//! permission, which an API token limited to it carries and nothing else.

use reqwest::Method;
use serde_json::json;
use warden_test_artifacts::{GUEST_TRAP, HELLO_WORLD};

use crate::support::{API, Deployment, Server, TestResult, api_key};

/// A parsed scrape.
pub(crate) struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    pub(crate) fn take(server: &Server, authorization: &str) -> Result<Scrape, Box<dyn std::error::Error>> {
        let reply = server.get_with_authorization("/_warden/metrics", Some(authorization))?;
        assert_eq!(reply.status, 200, "{reply:?}");
        let lines = reply.body.lines().map(|l| Ok(l.to_owned()));
        Ok(Scrape(prometheus_parse::Scrape::parse(lines)?))
    }

    /// The value of the counter, gauge or untyped sample `metric` whose
    /// labels include `labels`; 0 when there is none (a counter never
    /// incremented may be absent).
    pub(crate) fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    /// The `_count` of histogram `metric` with `labels`.
    pub(crate) fn histogram_count(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .filter_map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.iter().find(|b| b.less_than.is_infinite()).map(|b| b.count)
                }
                _ => None,
            })
            .sum()
    }
}

#[test]
fn a_scrape_after_known_traffic_shows_it() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "capabilities = []")?;
    deployment.install("trap", GUEST_TRAP, "")?;
    let server = deployment.start()?;
    let admin = crate::support::basic("admin", crate::support::ADMIN_PASSWORD);

    // A reader who may read `logs` only, and a scraper token made by the
    // admin that may scrape and nothing else.
    let reader = json!({"index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/roles/logs_reader"), &reader)?.status, 201);
    let ivy = json!({"password": "Ivy-Password-1"});
    assert_eq!(server.send(Method::PUT, &format!("{API}/internalusers/ivy"), &ivy)?.status, 201);
    let mapping = json!({"users": ["ivy"]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/rolesmapping/logs_reader"), &mapping)?.status, 201);
    let spec = json!({"name": "prometheus", "duration_seconds": 3600,
        "cluster_permissions": ["cluster:monitor/warden/metrics"]});
    let created = server.send(Method::POST, &format!("{API}/apitokens"), &spec)?;
    assert_eq!(created.status, 200, "{created:?}");
    let scraper = api_key(created.json()["token"].as_str().unwrap_or_default());

    // Who may not scrape: nobody unauthenticated, not a user without the
    // permission, and the scraper's token reaches nothing else.
    assert_eq!(server.get_with_authorization("/_warden/metrics", None)?.status, 401);
    assert_eq!(server.get_as("ivy", "Ivy-Password-1", "/_warden/metrics")?.status, 403);
    assert_eq!(server.get_with_authorization("/_warden/health", Some(&scraper))?.status, 403);
    assert_eq!(server.get_with_authorization("/logs/_search", Some(&scraper))?.status, 403);

    let before = Scrape::take(&server, &scraper)?;

    // Known traffic.
    for n in 0..3 {
        assert_eq!(server.get(&format!("/_extensions/hello/greet/m{n}"))?.status, 200);
    }
    assert_eq!(server.get("/_extensions/trap/boom")?.status, 500);
    for _ in 0..2 {
        assert_eq!(server.get_as("ivy", "wrong-password", "/logs/_search")?.status, 401);
    }
    assert_eq!(server.send(Method::PUT, "/logs/_doc/1", &json!({"n": 1}))?.status, 201);
    assert_eq!(server.get_as("ivy", "Ivy-Password-1", "/logs/_doc/1")?.status, 200);
    assert_eq!(server.get_as("ivy", "Ivy-Password-1", "/secrets/_doc/1")?.status, 403);
    let obo = server.send(
        Method::POST,
        crate::support::MINT,
        &json!({"description": "metrics test", "service": "hello"}),
    )?;
    assert_eq!(obo.status, 200, "{obo:?}");

    let after = Scrape::take(&server, &scraper)?;
    let delta =
        |metric: &str, labels: &[(&str, &str)]| after.value(metric, labels) - before.value(metric, labels);

    let hello_ok = [("extension", "hello"), ("kind", "http"), ("outcome", "ok")];
    assert_eq!(delta("warden_invocations_total", &hello_ok), 3.0);
    let trapped = [("extension", "trap"), ("kind", "http"), ("outcome", "trap")];
    assert_eq!(delta("warden_invocations_total", &trapped), 1.0);
    assert_eq!(delta("warden_invocations_total", &[("extension", "trap"), ("outcome", "ok")]), 0.0);
    let latency =
        |s: &Scrape| s.histogram_count("warden_invocation_duration_seconds", &[("extension", "hello")]);
    assert_eq!(latency(&after) - latency(&before), 3.0, "every answered invocation is timed");

    assert_eq!(delta("warden_authentications_total", &[("result", "failure")]), 2.0);
    assert!(delta("warden_authentications_total", &[("result", "success")]) >= 6.0);

    // The admin's write and ivy's read passed every gate; ivy's read of
    // `secrets` was refused by the user gate.
    assert!(delta("warden_gate_decisions_total", &[("gate", "all"), ("result", "allowed")]) >= 2.0);
    assert_eq!(delta("warden_gate_decisions_total", &[("gate", "user"), ("result", "denied")]), 1.0);

    assert_eq!(delta("warden_tokens_total", &[("kind", "obo"), ("event", "minted")]), 1.0);
    // This scrape verified the token before counting (the first one is in `before`).
    assert_eq!(delta("warden_tokens_total", &[("kind", "api_token"), ("event", "verified")]), 1.0);
    // The admin reads the same numbers.
    let as_admin = Scrape::take(&server, &admin)?;
    assert!(as_admin.value("warden_invocations_total", &hello_ok) >= 3.0);
    assert!(delta("warden_store_operations_total", &[("op", "write"), ("result", "ok")]) >= 1.0);
    assert!(after.value("process_resident_memory_bytes", &[]) > 1e6, "the process collector reports");
    assert!(after.value("process_open_fds", &[]) > 0.0);
    Ok(())
}
