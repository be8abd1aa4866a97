//! `cluster`: what security costs on an extension's cluster call, and the
//! embedded store's throughput.
//!
//! - `gateway/secured_get` vs `gateway/unsecured_get` in the same run: the
//!   same document read through the gateway (token verify + service gate +
//!   user gate + audit check) and straight on the backend. The difference is
//!   the security cost (goal ≤ 2 µs).
//! - `tokens/mint`, `tokens/verify`.
//! - `store/bulk_1000` (1,000 documents per `_bulk`) and `store/search_100k`
//!   (a term query over 100,000 documents; a scan: no inverted index yet).

use std::collections::BTreeSet;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_host::audit::{AuditLog, Category};
use warden_host::cluster::Backend;
use warden_host::cluster::actions::resolve;
use warden_host::cluster::embedded::{Embedded, Params};
use warden_host::cluster::gateway::{CallIdentity, ClusterGateway, GuestCall};
use warden_host::security::Security;
use warden_host::security::config::{IndexPermission, Role, SecurityConfig};
use warden_host::security::obo::{KeyRing, Revocations, TokenHolder, TokenService};
use warden_host::store::Store;

type R = Result<(), Box<dyn std::error::Error>>;

fn role(patterns: &[&str], actions: &[&str]) -> Role {
    Role {
        index_permissions: vec![IndexPermission {
            index_patterns: patterns.iter().map(|s| s.to_string()).collect(),
            allowed_actions: actions.iter().map(|s| s.to_string()).collect(),
            ..IndexPermission::default()
        }],
        ..Role::default()
    }
}

fn run(c: &mut Criterion) -> R {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(&dir.path().join("bench.redb"))?);
    let mut config = SecurityConfig::default();
    config.roles.insert("extension:bench".into(), role(&["data-*"], &["crud"]));
    config.roles.insert("reader".into(), role(&["data-1"], &["read"]));
    // The token's user must exist: the gateway re-checks it on every call.
    config.internal_users.insert("ana".into(), Default::default());
    let security = Arc::new(Security::new(config.with_static()?));
    // Audit of granted calls is off by default, as in production.
    let audit =
        Arc::new(AuditLog::open(&dir.path().join("audit"), BTreeSet::from([Category::GrantedPrivileges]))?);
    let tokens = Arc::new(TokenService::new("bench", KeyRing::generate()?, Revocations::default()));
    let gateway = ClusterGateway::new(
        Box::new(Embedded::new(store.clone(), "bench")?),
        tokens.clone(),
        security,
        audit,
    );

    let backend = Embedded::new(store.clone(), "bench")?;
    let put = resolve("PUT", "/data-1/_doc/1", None)?;
    backend.execute(&put, &["data-1".into()], &Params::default(), Some(br#"{"n":1}"#));
    let reader = ["reader".to_owned()];
    let attributes = std::collections::HashMap::new();
    let holder = TokenHolder {
        user: "ana",
        source: "internal",
        roles: &reader,
        backend_roles: &[],
        attributes: &attributes,
    };
    let token = tokens.mint(&holder, "bench", "request:bench", 300)?;
    let call = GuestCall {
        extension: "bench",
        request_id: "r",
        token: Some(&token),
        identity: CallIdentity::User,
        method: "GET",
        path: "/data-1/_doc/1",
        body: None,
    };
    if gateway.call(&call).map(|r| r.status).unwrap_or(0) != 200 {
        return Err("secured call did not answer 200".into());
    }
    let get = resolve("GET", "/data-1/_doc/1", None)?;
    let indices = vec!["data-1".to_owned()];

    let mut g = c.benchmark_group("gateway");
    g.bench_function("secured_get", |b| b.iter(|| gateway.call(&call).map(|r| r.status)));
    g.bench_function("unsecured_get", |b| {
        b.iter(|| {
            let request = resolve("GET", "/data-1/_doc/1", None).map(|r| r.action);
            (request, backend.execute(&get, &indices, &Params::default(), None).status)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("tokens");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mint", |b| b.iter(|| tokens.mint(&holder, "bench", "request:x", 300)));
    g.bench_function("verify", |b| b.iter(|| tokens.verify(&token, "bench").is_ok()));
    g.finish();

    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    let mut batch = 0u64;
    g.throughput(Throughput::Elements(1000));
    g.bench_function("bulk_1000", |b| {
        b.iter(|| {
            batch += 1;
            let mut body = String::new();
            for i in 0..1000 {
                body.push_str(&format!(
                    "{{\"index\":{{\"_index\":\"bulk\",\"_id\":\"{batch}-{i}\"}}}}\n{{\"n\":{i}}}\n"
                ));
            }
            let request = resolve("POST", "/_bulk", Some(body.as_bytes())).ok()?;
            Some(
                backend.execute(&request, &request.indices, &Params::default(), Some(body.as_bytes())).status,
            )
        })
    });
    // Log-like documents: a timestamp, low-cardinality keywords, a short
    // message — what an index usually holds (postings mostly append).
    let mut logs_batch = 0u64;
    g.bench_function("bulk_1000_logs", |b| {
        b.iter(|| {
            logs_batch += 1;
            let mut body = String::new();
            for i in 0..1000u64 {
                let at = logs_batch * 1000 + i;
                let level = ["info", "warn", "error"][(i % 3) as usize];
                body.push_str(&format!(
                    "{{\"index\":{{\"_index\":\"logs\"}}}}\n{{\"@timestamp\":\"2026-11-22T{:02}:{:02}:{:02}.{:03}Z\",\"level\":\"{level}\",\"user\":\"u{}\",\"status\":{},\"message\":\"GET /items took {} ms\"}}\n",
                    (at / 3_600_000) % 24, (at / 60_000) % 60, (at / 1000) % 60, at % 1000, i % 50, 200 + (i % 5), i % 200
                ));
            }
            let request = resolve("POST", "/_bulk", Some(body.as_bytes())).ok()?;
            Some(
                backend.execute(&request, &request.indices, &Params::default(), Some(body.as_bytes())).status,
            )
        })
    });
    // 100,000 documents to search.
    for chunk in 0..100 {
        let mut body = String::new();
        for i in 0..1000 {
            let n = chunk * 1000 + i;
            body.push_str(&format!(
                "{{\"index\":{{\"_index\":\"big\",\"_id\":\"{n}\"}}}}\n{{\"n\":{n},\"kind\":\"k{}\"}}\n",
                n % 100
            ));
        }
        let request = resolve("POST", "/_bulk", Some(body.as_bytes()))?;
        backend.execute(&request, &request.indices, &Params::default(), Some(body.as_bytes()));
    }
    // The same search three ways: through the postings (a term that 1% of
    // the documents hold; a range of 100 values) and, as the baseline in the
    // same run, a query the postings cannot narrow (a full scan).
    let search = resolve("POST", "/big/_search", None)?;
    let queries: [(&str, &[u8]); 5] = [
        ("search_100k_match_all_page", br#"{"size":10}"#),
        ("search_100k_sorted_top10", br#"{"sort":[{"n":"desc"}],"size":10}"#),
        ("search_100k_term_1pct", br#"{"query":{"term":{"kind":"k7"}},"size":10}"#),
        ("search_100k_range_100", br#"{"query":{"range":{"n":{"gte":5000,"lt":5100}}},"size":10}"#),
        ("search_100k_scan_baseline", br#"{"query":{"bool":{"must_not":{"term":{"kind":"k7"}}}},"size":10}"#),
    ];
    g.throughput(Throughput::Elements(1));
    for (name, query) in queries {
        g.bench_function(name, |b| {
            b.iter(|| {
                backend.execute(&search, &["big".into()], &Params::default(), Some(query)).body["hits"]["total"]
                    ["value"]
                    .clone()
            })
        });
    }
    g.finish();
    Ok(())
}

fn bench(c: &mut Criterion) {
    if let Err(e) = run(c) {
        eprintln!("cluster bench failed: {e}");
        std::process::exit(1);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
