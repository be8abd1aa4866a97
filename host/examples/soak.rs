//! The soak driver behind `scripts/soak.sh` (issue #17 item 2): drives a
//! mixed load against a running `warden serve` over loopback for a bounded
//! time and reports, every few seconds, requests/s, p50/p99 per kind of
//! request, 5xx answers (backpressure's 429/503 counted apart), answers that
//! contradict what the API promised (a revoked token accepted, a write
//! refused), and the server's RSS, open file descriptors, audit log size and
//! data directory size, read from `/proc/<pid>` and the disk. The samples go
//! to a CSV; the end prints a summary with growth rates per minute.
//!
//! It is an example, not a test: `cargo run --release --example soak --
//! <base> <pid> <data-dir> <seconds> <csv> [sample-secs]`, after the
//! script has started the server with the extensions this driver calls
//! (`hello`, `probe` = tests/guests/host-calls, and the hostile `spin`,
//! `bomb`, `trap`, `deep`, `hog`). Plain threads with the blocking reqwest
//! client: the server, not the driver, is what is measured, and the
//! machine has two cores.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

const ADMIN: (&str, &str) = ("admin", "Soak-Admin-Pass-1");
const SAM: (&str, &str) = ("sam", "Sam-Soak-Password-1");
/// OBO users, revoked in turn.
const OBO_USERS: usize = 8;
const OBO_PASSWORD: &str = "Obo-Soak-Password-1";
/// Distinct document ids the bulk writers cycle through: the live data set
/// is bounded, so a store that keeps growing is garbage, not data.
const BULK_IDS: u64 = 20_000;
const GUEST_IDS: u64 = 5_000;
/// Names the security writer cycles through (users, roles, mappings).
const SECURITY_NAMES: u64 = 40;
/// Job names: each registration replaces the job of that name.
const JOB_NAMES: u64 = 20;

/// What a request is, for the per-kind figures.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Hello,
    GuestWrite,
    GuestRead,
    Bulk,
    Search,
    Security,
    Import,
    ApiToken,
    Obo,
    Revoke,
    Jobs,
    Hostile,
}

impl Kind {
    const ALL: [Kind; 12] = [
        Kind::Hello,
        Kind::GuestWrite,
        Kind::GuestRead,
        Kind::Bulk,
        Kind::Search,
        Kind::Security,
        Kind::Import,
        Kind::ApiToken,
        Kind::Obo,
        Kind::Revoke,
        Kind::Jobs,
        Kind::Hostile,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Hello => "hello",
            Kind::GuestWrite => "guest_write",
            Kind::GuestRead => "guest_read",
            Kind::Bulk => "bulk",
            Kind::Search => "search",
            Kind::Security => "security",
            Kind::Import => "import",
            Kind::ApiToken => "apitoken",
            Kind::Obo => "obo",
            Kind::Revoke => "revoke",
            Kind::Jobs => "jobs",
            Kind::Hostile => "hostile",
        }
    }
}

/// Counts since the last sample, and for the whole run.
#[derive(Default)]
struct Tally {
    latencies: BTreeMap<Kind, Vec<u32>>,
    requests: u64,
    server_errors: u64,
    backpressure: u64,
    unexpected: u64,
    transport: u64,
}

impl Tally {
    fn absorb(&mut self, other: &Tally) {
        for (kind, values) in &other.latencies {
            self.latencies.entry(*kind).or_default().extend_from_slice(values);
        }
        self.requests += other.requests;
        self.server_errors += other.server_errors;
        self.backpressure += other.backpressure;
        self.unexpected += other.unexpected;
        self.transport += other.transport;
    }
}

/// The shared recorder: every request goes through [`Soak::call`].
struct Soak {
    base: String,
    client: Client,
    window: Mutex<Tally>,
    /// Samples of what went wrong, printed as they happen (the first 50).
    reported: AtomicU64,
    stop: AtomicBool,
    counter: AtomicU64,
}

/// An answer, read whole.
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl Soak {
    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).timeout(Duration::from_secs(60))
    }

    fn note(&self, what: String) {
        if self.reported.fetch_add(1, Ordering::Relaxed) < 50 {
            eprintln!("soak: {what}");
        }
    }

    /// Sends `request`, times it under `kind`, classifies the answer: a
    /// status in `expect` is fine; 429 and 503 are backpressure; another
    /// 5xx is a server error (except from a hostile guest, whose 500/504
    /// is the point, and which is checked against `expect`); anything else
    /// contradicts the API.
    fn call(&self, kind: Kind, what: &str, request: RequestBuilder, expect: &[u16]) -> Option<Reply> {
        let started = Instant::now();
        let sent = request.send().and_then(|r| {
            let status = r.status().as_u16();
            r.text().map(|body| Reply { status, body })
        });
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        let mut tally = match self.window.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        tally.requests += 1;
        tally.latencies.entry(kind).or_default().push(micros);
        let reply = match sent {
            Ok(reply) => reply,
            Err(e) => {
                tally.transport += 1;
                drop(tally);
                if !self.stop.load(Ordering::Relaxed) {
                    self.note(format!("{} {what}: no answer: {e}", kind.name()));
                }
                return None;
            }
        };
        if expect.contains(&reply.status) {
            return Some(reply);
        }
        if reply.status == 429 || reply.status == 503 {
            tally.backpressure += 1;
        } else if reply.status >= 500 && kind != Kind::Hostile {
            tally.server_errors += 1;
            drop(tally);
            self.note(format!("{} {what}: {} {}", kind.name(), reply.status, clip(&reply.body)));
        } else {
            tally.unexpected += 1;
            drop(tally);
            self.note(format!("{} {what}: unexpected {} {}", kind.name(), reply.status, clip(&reply.body)));
        }
        Some(reply)
    }

    /// A finding that is not a status (a body saying the write failed).
    fn contradiction(&self, kind: Kind, what: String) {
        if let Ok(mut t) = self.window.lock() {
            t.unexpected += 1;
        }
        self.note(format!("{} {what}", kind.name()));
    }

    fn sleep(&self, duration: Duration) {
        let until = Instant::now() + duration;
        while !self.stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
    }
}

fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

fn as_user(builder: RequestBuilder, who: (&str, &str)) -> RequestBuilder {
    builder.basic_auth(who.0, Some(who.1))
}

fn with_json(builder: RequestBuilder, body: &Value) -> RequestBuilder {
    builder.header("content-type", "application/json").body(body.to_string())
}

/// Users, roles, the probe's policy role and sam's consent, before the load.
fn setup(soak: &Soak) -> Result<(), Error> {
    let api = "/_plugins/_security/api";
    let data = json!([{"index_patterns": ["soak-*", "job-*"],
        "allowed_actions": ["crud", "create_index", "read"]}]);
    let mut steps = vec![
        (format!("{api}/roles/extension:probe"), json!({"index_permissions": data})),
        (
            format!("{api}/roles/soak_user"),
            json!({"extension_permissions": ["extension:hello/*", "extension:probe/*", "schedule:probe"],
                "index_permissions": data}),
        ),
        (format!("{api}/internalusers/{}", SAM.0), json!({"password": SAM.1})),
        (format!("{api}/rolesmapping/soak_user"), json!({"users": [SAM.0]})),
    ];
    for n in 0..OBO_USERS {
        steps.push((format!("{api}/internalusers/obo{n}"), json!({"password": OBO_PASSWORD})));
    }
    for (path, body) in steps {
        let reply = soak
            .call(
                Kind::Security,
                &path,
                with_json(as_user(soak.request(Method::PUT, &path), ADMIN), &body),
                &[200, 201],
            )
            .ok_or("setup: no answer")?;
        if reply.status >= 300 {
            return Err(format!("setup {path}: {} {}", reply.status, reply.body).into());
        }
    }
    let consent = json!({"extension": "probe", "scopes": "all"});
    let request = with_json(as_user(soak.request(Method::POST, "/_warden/consents"), SAM), &consent);
    let reply = soak.call(Kind::Jobs, "consent", request, &[200, 201]).ok_or("consent: no answer")?;
    if reply.status >= 300 {
        return Err(format!("consent: {} {}", reply.status, reply.body).into());
    }
    // The first bulk, so searches and token reads find documents.
    bulk(soak, 0);
    Ok(())
}

fn hello(soak: &Soak, n: u64) {
    let path = format!("/_extensions/hello/greet/soak{n}");
    soak.call(Kind::Hello, "greet", as_user(soak.request(Method::GET, &path), SAM), &[200]);
}

/// The probe guest's raw cluster call as sam; checks the guest's own answer.
fn guest(soak: &Soak, kind: Kind, spec: &Value) {
    let request = with_json(as_user(soak.request(Method::POST, "/_extensions/probe/call"), SAM), spec);
    if let Some(reply) = soak.call(kind, "probe/call", request, &[200])
        && reply.status == 200
    {
        let answer = reply.json();
        let status = answer["status"].as_u64().unwrap_or(0);
        if answer["outcome"] != "ok" || !(200..300).contains(&status) {
            soak.contradiction(kind, format!("guest call {spec}: {}", clip(&reply.body)));
        }
    }
}

fn guest_write(soak: &Soak, n: u64) {
    let spec = json!({"method": "PUT", "path": format!("/soak-guest/_doc/g{}", n % GUEST_IDS),
        "body": {"n": n, "user": format!("u{}", n % 50), "message": "written by the probe guest"}});
    guest(soak, Kind::GuestWrite, &spec);
}

fn guest_read(soak: &Soak, n: u64) {
    let spec = json!({"method": "POST", "path": "/soak-logs/_search",
        "body": {"query": {"term": {"user": format!("u{}", n % 50)}}, "size": 5}});
    guest(soak, Kind::GuestRead, &spec);
}

fn bulk(soak: &Soak, n: u64) {
    let mut body = String::new();
    for i in 0..50 {
        let id = (n * 50 + i) % BULK_IDS;
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"soak-logs\",\"_id\":\"{id}\"}}}}\n\
             {{\"n\":{id},\"user\":\"u{}\",\"level\":\"{}\",\"message\":\"request {n} served\"}}\n",
            id % 50,
            ["info", "warn", "error"][usize::try_from(id % 3).unwrap_or(0)]
        ));
    }
    let request = as_user(soak.request(Method::POST, "/_bulk"), ADMIN)
        .header("content-type", "application/x-ndjson")
        .body(body);
    if let Some(reply) = soak.call(Kind::Bulk, "_bulk", request, &[200])
        && reply.status == 200
        && reply.json()["errors"] != false
    {
        soak.contradiction(Kind::Bulk, format!("_bulk errors: {}", clip(&reply.body)));
    }
}

fn search(soak: &Soak, n: u64) {
    let body = if n.is_multiple_of(2) {
        json!({"query": {"term": {"user": format!("u{}", n % 50)}}, "size": 10})
    } else {
        json!({"query": {"bool": {"filter": [{"range": {"n": {"gte": n % BULK_IDS}}}]}}, "size": 5,
            "aggs": {"levels": {"terms": {"field": "level"}}}})
    };
    let request = with_json(as_user(soak.request(Method::POST, "/soak-logs/_search"), SAM), &body);
    soak.call(Kind::Search, "_search", request, &[200]);
}

/// Security configuration writes as admin: roles, users (a new password
/// hashes with bcrypt), mappings, a deletion now and then.
fn security(soak: &Soak, n: u64) {
    let api = "/_plugins/_security/api";
    // Roles are written for k ≡ 0, 1 (mod 5), users for k ≡ 2; the
    // mapping (k ≡ 3) and the deletion (k ≡ 4) name those.
    let k = n % SECURITY_NAMES;
    let (role, user) = (k - k % 5, k - k % 5 + 2);
    let (method, path, body, expect): (Method, String, Value, &[u16]) = match n % 5 {
        0 | 1 => (
            Method::PUT,
            format!("{api}/roles/soak-role-{k}"),
            json!({"cluster_permissions": ["cluster:monitor/health"],
                "index_permissions": [{"index_patterns": [format!("soak-{k}-*")], "allowed_actions": ["read"]}]}),
            &[200, 201],
        ),
        2 => (
            Method::PUT,
            format!("{api}/internalusers/soak-u{k}"),
            json!({"password": format!("Soak-User-{k}-Password"), "backend_roles": [format!("b{k}")]}),
            &[200, 201],
        ),
        3 => (
            Method::PUT,
            format!("{api}/rolesmapping/soak-role-{role}"),
            json!({"users": [format!("soak-u{user}")], "backend_roles": [format!("b{user}")]}),
            // The first time round the role may not exist yet.
            &[200, 201, 400],
        ),
        _ => (Method::DELETE, format!("{api}/internalusers/soak-u{user}"), Value::Null, &[200, 404]),
    };
    let mut request = as_user(soak.request(method.clone(), &path), ADMIN);
    if !body.is_null() {
        request = with_json(request, &body);
    }
    soak.call(Kind::Security, &format!("{method} {path}"), request, expect);
}

/// The whole configuration exported and imported back (unchanged but for
/// one role), the warden way: `GET _export`, `PUT _import`.
fn import(soak: &Soak, n: u64) {
    let request = as_user(soak.request(Method::GET, "/_warden/security/_export"), ADMIN);
    let Some(reply) = soak.call(Kind::Import, "_export", request, &[200]) else {
        return;
    };
    if reply.status != 200 {
        return;
    }
    let files = reply.json();
    let request = with_json(as_user(soak.request(Method::PUT, "/_warden/security/_import"), ADMIN), &files);
    let _ = n;
    soak.call(Kind::Import, "_import", request, &[200]);
}

/// An API token of sam's: created, used, revoked, refused after.
fn api_token(soak: &Soak, n: u64) {
    let path = "/_plugins/_security/api/apitokens";
    let name = format!("soak-t{n}");
    let spec = json!({"name": name, "duration_seconds": 600,
        "index_permissions": [{"index_patterns": ["soak-logs"], "allowed_actions": ["read"]}]});
    let request = with_json(as_user(soak.request(Method::POST, path), SAM), &spec);
    let Some(reply) = soak.call(Kind::ApiToken, "create", request, &[200]) else {
        return;
    };
    let Some(token) = reply.json()["token"].as_str().map(str::to_owned) else {
        return;
    };
    let key = format!("ApiKey {token}");
    let read = soak.request(Method::GET, "/soak-logs/_doc/1").header("authorization", &key);
    soak.call(Kind::ApiToken, "read with token", read, &[200]);
    let request = as_user(soak.request(Method::DELETE, &format!("{path}/{name}")), SAM);
    if soak.call(Kind::ApiToken, "revoke", request, &[200]).is_some_and(|r| r.status == 200) {
        let read = soak.request(Method::GET, "/soak-logs/_doc/1").header("authorization", &key);
        soak.call(Kind::ApiToken, "read with a revoked token", read, &[401]);
    }
}

/// An OBO token: minted, used, revoked (by user, by jti or by extension
/// in turn), refused after when the revocation covers it.
fn obo(soak: &Soak, n: u64) {
    let user = format!("obo{}", n % OBO_USERS as u64);
    let mint = "/_plugins/_security/api/generateonbehalfoftoken";
    let body = json!({"service": "soak", "durationSeconds": 300});
    let request = with_json(as_user(soak.request(Method::POST, mint), (&user, OBO_PASSWORD)), &body);
    let Some(reply) = soak.call(Kind::Obo, "mint", request, &[200]) else {
        return;
    };
    let Some(token) = reply.json()["authenticationToken"].as_str().map(str::to_owned) else {
        return;
    };
    let bearer = format!("Bearer {token}");
    let authinfo = "/_plugins/_security/authinfo";
    let check = soak.request(Method::GET, authinfo).header("authorization", &bearer);
    soak.call(Kind::Obo, "authinfo", check, &[200]);
    let revoke = match n % 3 {
        0 => json!({"user": user}),
        1 => match jti(&token) {
            Some((jti, exp)) => json!({"jti": jti, "expires_at": exp}),
            None => json!({"user": user}),
        },
        // Tokens minted for `hello` (it calls nothing): the table entry,
        // not its effect, is what this exercises; the token above is not
        // covered.
        _ => json!({"extension": "hello"}),
    };
    let request = with_json(as_user(soak.request(Method::POST, "/_warden/tokens/_revoke"), ADMIN), &revoke);
    if soak.call(Kind::Revoke, "revoke", request, &[200]).is_some_and(|r| r.status == 200) {
        let expect: &[u16] = if n % 3 == 2 { &[200] } else { &[401] };
        let check = soak.request(Method::GET, authinfo).header("authorization", &bearer);
        soak.call(Kind::Obo, "authinfo after revocation", check, expect);
    }
}

/// The `jti` and `exp` claims of an OBO token (a JWT: the middle part).
fn jti(token: &str) -> Option<(String, u64)> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some((claims["jti"].as_str()?.to_owned(), claims["exp"].as_u64()?))
}

/// Job registrations through the probe guest as sam (most do nothing, a
/// few write, a few fail on purpose), runs on demand, a deletion now and
/// then, and the runs history read back.
fn jobs(soak: &Soak, n: u64) {
    let k = n % JOB_NAMES;
    match n % 6 {
        0..=2 => {
            let params = match k {
                0 | 1 => json!({"index": "job-soak", "doc": {"n": n}}),
                2 => json!({"fail": "failing on purpose"}),
                _ => json!({}),
            };
            let schedule =
                if k % 4 == 3 { json!({"once": now_ms() + 500}) } else { json!({"interval": 2 + k % 4}) };
            let spec = json!({"name": format!("soak-job-{k}"), "schedule": schedule, "params": params});
            let request =
                with_json(as_user(soak.request(Method::POST, "/_extensions/probe/schedule"), SAM), &spec);
            if let Some(reply) = soak.call(Kind::Jobs, "register", request, &[200])
                && reply.status == 200
                && reply.json()["outcome"] != "ok"
            {
                soak.contradiction(Kind::Jobs, format!("register refused: {}", clip(&reply.body)));
            }
        }
        choice => {
            let request = as_user(soak.request(Method::GET, "/_warden/jobs?user=sam"), SAM);
            let Some(reply) = soak.call(Kind::Jobs, "list", request, &[200]) else {
                return;
            };
            let listed = reply.json();
            let ids: Vec<String> = listed["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|j| j["id"].as_str().map(str::to_owned))
                .collect();
            let Some(id) = ids.get(usize::try_from(n).unwrap_or(0) % ids.len().max(1)) else {
                return;
            };
            let (method, path, expect): (Method, String, &[u16]) = match choice {
                // 400: suspended (the failing job, after five failures in a row).
                3 => (Method::POST, format!("/_warden/jobs/{id}/_run"), &[200, 400, 404]),
                4 => (Method::GET, format!("/_warden/jobs/{id}/runs"), &[200, 404]),
                _ if n % 4 == 1 => (Method::DELETE, format!("/_warden/jobs/{id}"), &[200, 404]),
                _ => (Method::GET, format!("/_warden/jobs/{id}"), &[200, 404]),
            };
            soak.call(
                Kind::Jobs,
                &format!("{method} {path}"),
                as_user(soak.request(method, &path), SAM),
                expect,
            );
        }
    }
}

/// A hostile guest: each answers with its own refusal, never a 200.
fn hostile(soak: &Soak, n: u64) {
    let (path, expect): (&str, &[u16]) = match n % 5 {
        0 => ("/_extensions/spin/", &[504]),
        1 => ("/_extensions/bomb/", &[500]),
        2 => ("/_extensions/trap/boom", &[500]),
        3 => ("/_extensions/deep/", &[500]),
        _ => ("/_extensions/hog/handles?count=100000&kind=instant", &[500]),
    };
    soak.call(Kind::Hostile, path, as_user(soak.request(Method::GET, path), ADMIN), expect);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Bytes under `dir`, recursively (files only).
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0)
}

/// One row of the CSV.
struct Sample {
    t: f64,
    rss_kib: u64,
    fds: u64,
    audit: u64,
    store: u64,
    p99_all: f64,
}

/// Least-squares slope of `y` over `t` (per second), from the samples
/// after the first fifth (warm-up: caches, pools, the first data).
fn slope(samples: &[Sample], y: impl Fn(&Sample) -> f64) -> f64 {
    let skip = samples.len() / 5;
    let points: Vec<(f64, f64)> = samples[skip..].iter().map(|s| (s.t, y(s))).collect();
    let count = points.len() as f64;
    if count < 2.0 {
        return 0.0;
    }
    let (mt, my) =
        (points.iter().map(|p| p.0).sum::<f64>() / count, points.iter().map(|p| p.1).sum::<f64>() / count);
    let num: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if den == 0.0 { 0.0 } else { num / den }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        return Err("usage: soak <base-url> <pid> <data-dir> <seconds> <csv> [sample-secs]".into());
    }
    let base = args[1].clone();
    let pid: u32 = args[2].parse()?;
    let data_dir = PathBuf::from(&args[3]);
    let seconds: u64 = args[4].parse()?;
    let csv_path = PathBuf::from(&args[5]);
    let sample_secs: u64 = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(10);

    let soak = Arc::new(Soak {
        base,
        client: Client::builder().pool_max_idle_per_host(64).build()?,
        window: Mutex::default(),
        reported: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        counter: AtomicU64::new(1),
    });
    setup(&soak)?;
    if let Ok(mut w) = soak.window.lock() {
        *w = Tally::default();
    }

    // Workers: the data path flat out; the administrative paths paced (a
    // password is a bcrypt hash; an operator does not change roles
    // hundreds of times a second); a hostile guest every two seconds.
    type Op = fn(&Soak, u64);
    let data: &[Op] = &[hello, hello, guest_write, guest_read, bulk, search, search];
    let mut workers: Vec<(Vec<Op>, Duration)> = (0..6).map(|_| (data.to_vec(), Duration::ZERO)).collect();
    workers.push((vec![security], Duration::from_millis(250)));
    workers.push((vec![api_token], Duration::from_millis(200)));
    workers.push((vec![obo], Duration::from_millis(200)));
    workers.push((vec![jobs], Duration::from_millis(300)));
    workers.push((vec![import], Duration::from_secs(15)));
    workers.push((vec![hostile], Duration::from_secs(2)));
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let handles: Vec<_> = workers
        .into_iter()
        .map(|(ops, pause)| {
            let soak = soak.clone();
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !soak.stop.load(Ordering::Relaxed) {
                    let n = soak.next();
                    ops[i % ops.len()](&soak, n);
                    i = i.wrapping_add(1);
                    if !pause.is_zero() {
                        soak.sleep(pause);
                    }
                }
            })
        })
        .collect();

    let mut csv = std::fs::File::create(&csv_path)?;
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .flat_map(|k| [format!("{}_p50_ms", k.name()), format!("{}_p99_ms", k.name())])
        .collect();
    writeln!(
        csv,
        "t_s,requests_per_s,p50_ms,p99_ms,server_5xx,backpressure,unexpected,no_answer,rss_kib,fds,\
         audit_bytes,store_bytes,revocations,{}",
        kinds.join(",")
    )?;
    let audit_dir = data_dir.join("audit");
    let mut total = Tally::default();
    let mut samples: Vec<Sample> = Vec::new();
    let mut last = Instant::now();
    let start_rss = rss_kib(pid);
    let start_fds = open_fds(pid);
    println!("t_s  req/s  p50_ms  p99_ms  5xx  429/503  unexpected  rss_MiB  fds  audit_KiB  store_KiB");
    while Instant::now() < end {
        std::thread::sleep(
            Duration::from_secs(sample_secs).min(end.saturating_duration_since(Instant::now())),
        );
        let window = match soak.window.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => break,
        };
        let elapsed = last.elapsed().as_secs_f64();
        last = Instant::now();
        let mut all: Vec<u32> = window.latencies.values().flatten().copied().collect();
        all.sort_unstable();
        let per_kind: Vec<String> = Kind::ALL
            .iter()
            .flat_map(|k| {
                let mut v = window.latencies.get(k).cloned().unwrap_or_default();
                v.sort_unstable();
                [format!("{:.2}", percentile(&v, 0.5)), format!("{:.2}", percentile(&v, 0.99))]
            })
            .collect();
        let audit = bytes_under(&audit_dir);
        let store = bytes_under(&data_dir).saturating_sub(audit);
        let revocations = revocation_entries(&soak);
        let sample = Sample {
            t: started.elapsed().as_secs_f64(),
            rss_kib: rss_kib(pid),
            fds: open_fds(pid),
            audit,
            store,
            p99_all: percentile(&all, 0.99),
        };
        let rate = window.requests as f64 / elapsed.max(0.001);
        writeln!(
            csv,
            "{:.0},{rate:.1},{:.2},{:.2},{},{},{},{},{},{},{},{},{revocations},{}",
            sample.t,
            percentile(&all, 0.5),
            sample.p99_all,
            window.server_errors,
            window.backpressure,
            window.unexpected,
            window.transport,
            sample.rss_kib,
            sample.fds,
            sample.audit,
            sample.store,
            per_kind.join(",")
        )?;
        csv.flush()?;
        println!(
            "{:>5.0} {rate:>6.1} {:>7.2} {:>7.2} {:>4} {:>8} {:>11} {:>8.1} {:>4} {:>10} {:>10}",
            sample.t,
            percentile(&all, 0.5),
            sample.p99_all,
            window.server_errors,
            window.backpressure,
            window.unexpected,
            sample.rss_kib as f64 / 1024.0,
            sample.fds,
            sample.audit / 1024,
            sample.store / 1024
        );
        total.absorb(&window);
        samples.push(sample);
        if rss_kib(pid) == 0 {
            eprintln!("soak: the server (pid {pid}) is gone");
            break;
        }
    }
    soak.stop.store(true, Ordering::Relaxed);
    for handle in handles {
        let _ = handle.join();
    }
    let tail = match soak.window.lock() {
        Ok(mut w) => std::mem::take(&mut *w),
        Err(_) => Tally::default(),
    };
    total.absorb(&tail);

    // The summary.
    let run = started.elapsed().as_secs_f64();
    let last_sample = samples.last();
    println!("\n== soak summary: {:.1} minutes, {} requests, {:.1} req/s", run / 60.0, total.requests, {
        total.requests as f64 / run
    });
    println!("kind           requests     p50_ms     p99_ms");
    for kind in Kind::ALL {
        let mut v = total.latencies.get(&kind).cloned().unwrap_or_default();
        v.sort_unstable();
        println!(
            "{:<12} {:>10} {:>10.2} {:>10.2}",
            kind.name(),
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99)
        );
    }
    println!(
        "5xx (not backpressure): {}   backpressure 429/503: {}   unexpected answers: {}   no answer: {}",
        total.server_errors, total.backpressure, total.unexpected, total.transport
    );
    if let Some(end) = last_sample {
        println!(
            "RSS: {:.1} MiB at start, {:.1} MiB at end (max {:.1}), {:+.3} MiB/min after warm-up",
            start_rss as f64 / 1024.0,
            end.rss_kib as f64 / 1024.0,
            samples.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            slope(&samples, |s| s.rss_kib as f64) * 60.0 / 1024.0
        );
        println!(
            "open fds: {start_fds} at start, {} at end (max {}), {:+.3}/min after warm-up",
            end.fds,
            samples.iter().map(|s| s.fds).max().unwrap_or(0),
            slope(&samples, |s| s.fds as f64) * 60.0
        );
        println!(
            "audit log: {:.1} MiB at end, {:+.1} KiB/min;  store (data dir without audit): {:.1} MiB at end, {:+.1} KiB/min",
            end.audit as f64 / 1048576.0,
            slope(&samples, |s| s.audit as f64) * 60.0 / 1024.0,
            end.store as f64 / 1048576.0,
            slope(&samples, |s| s.store as f64) * 60.0 / 1024.0
        );
        println!(
            "p99 (all kinds) per sample: first {:.2} ms, last {:.2} ms, {:+.3} ms/min after warm-up",
            samples.first().map_or(0.0, |s| s.p99_all),
            end.p99_all,
            slope(&samples, |s| s.p99_all) * 60.0
        );
    }
    println!("revocation table entries at end: {}", revocation_entries(&soak));
    if total.server_errors > 0 || total.unexpected > 0 || total.transport > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Entries in the OBO revocation table (jtis, users, extensions, deleted
/// users): it must not grow with the load, only with distinct names.
fn revocation_entries(soak: &Soak) -> u64 {
    let request = as_user(soak.request(Method::GET, "/_warden/tokens/_revocations"), ADMIN);
    let Ok(reply) = request.send().and_then(|r| r.json::<Value>()) else {
        return 0;
    };
    ["jtis", "users_before", "extensions_before", "users_deleted"]
        .iter()
        .map(|k| reply[*k].as_object().map_or(0, |o| o.len() as u64))
        .sum()
}
