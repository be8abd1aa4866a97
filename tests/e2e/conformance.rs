//! OpenSearch's own YAML REST tests as Warden's conformance suite.
//!
//! `tests/conformance/<api>/*.yml` are copied unchanged from OpenSearch
//! (`rest-api-spec/src/main/resources/rest-api-spec/test/`, Apache-2.0:
//! `tests/conformance/LICENSE`, `NOTICE`). This runner speaks their
//! language — `setup`/`teardown`, `do` (with `catch`, `headers`,
//! `ignore`), `match`, `is_true`/`is_false`, `length`, `lt`/`gt`/`lte`/
//! `gte`, `set` and `$stash`, `skip` (`version`, `features`) — against a
//! real `warden` per file, as admin, and deletes every index between tests.
//!
//! `tests/conformance/known_failures.txt` lists the tests that do not pass
//! yet, each with its reason. The test fails when a test off the list
//! fails, and when a listed one passes (the list must stay true), and
//! prints `conformance: N passed, M known failures`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::support::{ADMIN_PASSWORD, Deployment, Server, TestResult};

/// The OpenSearch version the suite is run as (for `skip: version`), as
/// [`version_of`] orders it.
const VERSION: (u64, u64, u64, u64) = (1, 2, 19, 0);

/// `skip: features` the runner supports.
const FEATURES: &[&str] = &["headers", "allowed_warnings", "warnings", "default_shards"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

/// One YAML file: its tests in order, `setup` and `teardown` apart.
struct Suite {
    setup: Vec<Value>,
    teardown: Vec<Value>,
    tests: Vec<(String, Vec<Value>)>,
}

fn load(path: &Path, file: String) -> Result<Suite, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let mut suite = Suite { setup: Vec::new(), teardown: Vec::new(), tests: Vec::new() };
    for document in serde_norway::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).map_err(|e| format!("{file}: {e}"))?;
        let Value::Object(sections) = value else { continue };
        for (name, steps) in sections {
            let steps = match steps {
                Value::Array(steps) => steps,
                other => return Err(format!("{file}: section `{name}` is not a list: {other}")),
            };
            match name.as_str() {
                "setup" => suite.setup = steps,
                "teardown" => suite.teardown = steps,
                _ => suite.tests.push((name, steps)),
            }
        }
    }
    Ok(suite)
}

/// One response, as the steps after it see it.
#[derive(Default)]
struct Response {
    status: u16,
    text: String,
    body: Value,
}

/// The state of one test: the last response and the stash.
struct Run<'a> {
    server: &'a Server,
    client: reqwest::blocking::Client,
    last: Response,
    stash: HashMap<String, Value>,
}

/// Why a test did not pass, or that it was skipped.
enum Outcome {
    Skipped(String),
    Failed(String),
}

fn fail<T>(why: impl Into<String>) -> Result<T, Outcome> {
    Err(Outcome::Failed(why.into()))
}

/// A version as OpenSearch orders them: Elasticsearch's (5.x to 7.x, the
/// "legacy" versions OpenSearch forked from) before every OpenSearch one.
fn version_of(text: &str) -> Option<(u64, u64, u64, u64)> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let (minor, patch) = (parts.next().flatten().unwrap_or(0), parts.next().flatten().unwrap_or(0));
    Some((u64::from(major < 5), major, minor, patch))
}

/// Whether a `skip` step skips this run.
fn skip_reason(skip: &Value) -> Option<String> {
    let reason = skip["reason"].as_str().unwrap_or("skipped").to_owned();
    if let Some(range) = skip["version"].as_str() {
        let range = range.trim();
        if range == "all" {
            return Some(reason);
        }
        for part in range.split(',') {
            let (low, high) = part.split_once('-').unwrap_or((part, part));
            let low = version_of(low).unwrap_or((0, 0, 0, 0));
            let high = version_of(high).unwrap_or((u64::MAX, 0, 0, 0));
            if low <= VERSION && VERSION <= high {
                return Some(reason);
            }
        }
    }
    let features: Vec<&str> = match &skip["features"] {
        Value::String(f) => vec![f.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    features.into_iter().find(|f| !FEATURES.contains(f)).map(|f| format!("needs the runner feature `{f}`"))
}

/// A path segment or query value, percent-encoded.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~*,".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(list) => list.iter().map(scalar).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

impl Run<'_> {
    /// `$name` (a whole string) as its stashed value, everywhere in `value`.
    fn unstash(&self, value: &Value) -> Value {
        match value {
            Value::String(s) if s.starts_with('$') => {
                let name = s.trim_start_matches('$').trim_start_matches('{').trim_end_matches('}');
                self.stash.get(name).cloned().unwrap_or_else(|| value.clone())
            }
            Value::Array(list) => Value::Array(list.iter().map(|v| self.unstash(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.unstash(v))).collect())
            }
            other => other.clone(),
        }
    }

    fn step(&mut self, step: &Value) -> Result<(), Outcome> {
        let Some((kind, args)) = step.as_object().and_then(|o| o.iter().next()) else {
            return fail(format!("a step that is not a one-key map: {step}"));
        };
        match kind.as_str() {
            "skip" => match skip_reason(args) {
                Some(reason) => Err(Outcome::Skipped(reason)),
                None => Ok(()),
            },
            "do" => self.call(args),
            "match" => self.each(args, |run, path, expected| run.matches(path, expected)),
            "is_true" | "is_false" => {
                let path = args.as_str().unwrap_or_default();
                let actual = self.lookup(path);
                let falsy = match &actual {
                    None | Some(Value::Null) => true,
                    Some(Value::Bool(b)) => !b,
                    Some(Value::String(s)) => s.is_empty() || s == "false",
                    Some(Value::Number(n)) => n.as_f64() == Some(0.0),
                    _ => false,
                };
                if falsy == (kind == "is_false") {
                    Ok(())
                } else {
                    fail(format!(
                        "{kind} `{path}`: it is {}",
                        actual.map_or("missing".into(), |v| v.to_string())
                    ))
                }
            }
            "length" => self.each(args, |run, path, expected| {
                let actual = run.lookup(path);
                let length = match &actual {
                    Some(Value::Array(a)) => a.len(),
                    Some(Value::Object(o)) => o.len(),
                    Some(Value::String(s)) => s.chars().count(),
                    _ => {
                        return fail(format!(
                            "length of `{path}`: it is {actual:?} (status {})",
                            run.last.status
                        ));
                    }
                };
                if expected.as_u64() == Some(length as u64) {
                    Ok(())
                } else {
                    fail(format!("length of `{path}` is {length}, not {expected}"))
                }
            }),
            "lt" | "gt" | "lte" | "gte" => self.each(args, |run, path, expected| {
                let actual = run.lookup(path).and_then(|v| v.as_f64());
                let (Some(a), Some(e)) = (actual, expected.as_f64()) else {
                    return fail(format!("{kind} `{path}`: {actual:?} against {expected}"));
                };
                let holds = match kind.as_str() {
                    "lt" => a < e,
                    "gt" => a > e,
                    "lte" => a <= e,
                    _ => a >= e,
                };
                if holds { Ok(()) } else { fail(format!("{kind} `{path}`: {a} against {e}")) }
            }),
            "set" => self.each(args, |run, path, name| {
                let value = run.lookup(path).ok_or_else(|| Outcome::Failed(format!("set: no `{path}`")))?;
                run.stash.insert(scalar(name), value);
                Ok(())
            }),
            other => fail(format!("the runner does not know the step `{other}`")),
        }
    }

    fn each(
        &mut self,
        args: &Value,
        mut check: impl FnMut(&mut Self, &str, &Value) -> Result<(), Outcome>,
    ) -> Result<(), Outcome> {
        let Some(map) = args.as_object() else { return fail(format!("not a map: {args}")) };
        for (path, expected) in map {
            let expected = self.unstash(expected);
            check(self, path, &expected)?;
        }
        Ok(())
    }

    /// A dotted path into the last response (`\.` a literal dot; `''`
    /// and `$body` the whole; numbers index arrays).
    fn lookup(&self, path: &str) -> Option<Value> {
        if path.is_empty() || path == "$body" {
            return Some(self.last.body.clone());
        }
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut chars = path.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'.') => {
                    current.push('.');
                    chars.next();
                }
                '.' => parts.push(std::mem::take(&mut current)),
                c => current.push(c),
            }
        }
        parts.push(current);
        let mut value = &self.last.body;
        for part in parts {
            let part = match part.strip_prefix('$') {
                Some(name) => self.stash.get(name).map(scalar).unwrap_or(part.clone()),
                None => part,
            };
            value = match value {
                Value::Array(list) => list.get(part.parse::<usize>().ok()?)?,
                Value::Object(map) => map.get(&part)?,
                _ => return None,
            };
        }
        Some(value.clone())
    }

    fn matches(&self, path: &str, expected: &Value) -> Result<(), Outcome> {
        let actual = self.lookup(path);
        if let Value::String(pattern) = expected
            && pattern.len() > 1
            && pattern.starts_with('/')
            && pattern.trim_end().ends_with('/')
        {
            let pattern = pattern.trim_end();
            let regex = regex::Regex::new(&format!("(?x){}", &pattern[1..pattern.len() - 1]))
                .map_err(|e| Outcome::Failed(format!("bad regex {pattern}: {e}")))?;
            let text = actual.as_ref().map(scalar).unwrap_or_default();
            return if regex.is_match(&text) {
                Ok(())
            } else {
                fail(format!("match `{path}`: {text:?} does not match {pattern}"))
            };
        }
        match &actual {
            Some(a) if same(a, expected) => Ok(()),
            _ => fail(format!(
                "match `{path}`: expected {expected}, got {}",
                actual.map_or("nothing".into(), |v| v.to_string())
            )),
        }
    }

    /// `do`: the API call, its `catch` and `ignore`.
    fn call(&mut self, args: &Value) -> Result<(), Outcome> {
        let Some(map) = args.as_object() else { return fail("`do` is not a map") };
        let catch = map.get("catch").and_then(Value::as_str).map(str::to_owned);
        let headers = map.get("headers").and_then(Value::as_object).cloned().unwrap_or_default();
        let Some((api, params)) = map.iter().find(|(k, _)| {
            !["catch", "headers", "warnings", "allowed_warnings", "node_selector"].contains(&k.as_str())
        }) else {
            return fail("`do` names no API");
        };
        let params = self.unstash(params);
        let mut params = params.as_object().cloned().unwrap_or_default();
        let body = params.remove("body");
        let ignore: Vec<u64> = match params.remove("ignore") {
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_u64).collect(),
            Some(v) => v.as_u64().into_iter().collect(),
            None => Vec::new(),
        };
        let (method, path, ndjson) = route(api, &mut params)?;
        let query: Vec<String> =
            params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(&scalar(v)))).collect();
        let url = if query.is_empty() { path } else { format!("{path}?{}", query.join("&")) };
        let mut request = self
            .client
            .request(method.clone(), self.server.url(&url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .timeout(std::time::Duration::from_secs(60));
        for (name, value) in &headers {
            request = request.header(name.as_str(), scalar(value));
        }
        if let Some(body) = body {
            let text = match (&body, ndjson) {
                (Value::String(s), _) => s.clone(),
                (Value::Array(lines), true) => lines
                    .iter()
                    .map(|l| {
                        format!(
                            "{}\n",
                            match l {
                                Value::String(s) => s.clone(),
                                o => o.to_string(),
                            }
                        )
                    })
                    .collect(),
                (other, _) => other.to_string(),
            };
            let content_type = if ndjson { "application/x-ndjson" } else { "application/json" };
            if !headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
                request = request.header("content-type", content_type);
            }
            request = request.body(text);
        }
        let response = request.send().map_err(|e| Outcome::Failed(format!("{api}: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        let body = if method == reqwest::Method::HEAD {
            Value::Bool(status == 200)
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
        };
        self.last = Response { status, text, body };
        let failed = status >= 400;
        match catch.as_deref() {
            None if failed && !ignore.contains(&u64::from(status)) && method != reqwest::Method::HEAD => {
                fail(format!("{api} {url}: {status} {}", self.last.text))
            }
            None => Ok(()),
            Some(expected) => {
                let caught = match expected {
                    "missing" => status == 404,
                    "conflict" => status == 409,
                    "bad_request" => status == 400,
                    "unauthorized" => status == 401,
                    "forbidden" => status == 403,
                    "request_timeout" => status == 408,
                    "unavailable" => status == 503,
                    "request" => failed,
                    pattern if pattern.starts_with('/') => {
                        let inner = pattern.trim_start_matches('/').trim_end_matches('/');
                        let regex = regex::Regex::new(inner)
                            .map_err(|e| Outcome::Failed(format!("bad catch {pattern}: {e}")))?;
                        // OpenSearch's runner matches the `error` as its
                        // parser read it, fields in OpenSearch's order
                        // (`type` before `reason`); Warden's JSON sorts
                        // its keys, so the error is rendered in that order.
                        let error = ordered(&self.last.body["error"]);
                        failed && (regex.is_match(&error) || regex.is_match(&self.last.text))
                    }
                    other => return fail(format!("the runner does not know `catch: {other}`")),
                };
                if caught {
                    Ok(())
                } else {
                    fail(format!("{api} {url}: expected `{expected}`, got {status} {}", self.last.text))
                }
            }
        }
    }
}

/// `value` as text with OpenSearch's field order in error objects:
/// `root_cause`, `type`, `reason`, then the rest.
fn ordered(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let first = ["root_cause", "type", "reason"];
            let keys = first
                .iter()
                .copied()
                .filter(|k| map.contains_key(*k))
                .chain(map.keys().map(String::as_str).filter(|k| !first.contains(k)));
            let fields: Vec<String> = keys.map(|k| format!("{k}={}", ordered(&map[k]))).collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(ordered).collect::<Vec<_>>().join(", ")),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// JSON equality with numbers compared as numbers (YAML `1` and `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::Number(y)) | (Value::Number(y), Value::String(x)) => x == &y.to_string(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The method and path of an API (OpenSearch's REST spec, for the APIs
/// the suite uses); the parameters it consumes are taken out of `params`,
/// the rest go to the query string. Whether the body is NDJSON.
fn route(
    api: &str,
    params: &mut serde_json::Map<String, Value>,
) -> Result<(reqwest::Method, String, bool), Outcome> {
    use reqwest::Method;
    let mut take = |name: &str| params.remove(name).map(|v| encode(&scalar(&v)));
    let index = take("index");
    let id = take("id");
    let need = |part: &Option<String>, name: &str| {
        part.clone().ok_or_else(|| Outcome::Failed(format!("`{api}` without `{name}`")))
    };
    let under = |index: &Option<String>, tail: &str| match index {
        Some(i) => format!("/{i}/{tail}"),
        None => format!("/{tail}"),
    };
    Ok(match api {
        "index" => match &id {
            Some(id) => (Method::PUT, format!("/{}/_doc/{id}", need(&index, "index")?), false),
            None => (Method::POST, format!("/{}/_doc", need(&index, "index")?), false),
        },
        "create" => (Method::PUT, format!("/{}/_create/{}", need(&index, "index")?, need(&id, "id")?), false),
        "get" => (Method::GET, format!("/{}/_doc/{}", need(&index, "index")?, need(&id, "id")?), false),
        "exists" => (Method::HEAD, format!("/{}/_doc/{}", need(&index, "index")?, need(&id, "id")?), false),
        "get_source" => {
            (Method::GET, format!("/{}/_source/{}", need(&index, "index")?, need(&id, "id")?), false)
        }
        "exists_source" => {
            (Method::HEAD, format!("/{}/_source/{}", need(&index, "index")?, need(&id, "id")?), false)
        }
        "delete" => (Method::DELETE, format!("/{}/_doc/{}", need(&index, "index")?, need(&id, "id")?), false),
        "update" => {
            (Method::POST, format!("/{}/_update/{}", need(&index, "index")?, need(&id, "id")?), false)
        }
        "bulk" => (Method::POST, under(&index, "_bulk"), true),
        "mget" => (Method::POST, under(&index, "_mget"), false),
        "msearch" => (Method::POST, under(&index, "_msearch"), true),
        "search" => (Method::POST, under(&index, "_search"), false),
        "count" => (Method::POST, under(&index, "_count"), false),
        "indices.create" => (Method::PUT, format!("/{}", need(&index, "index")?), false),
        "indices.delete" => (Method::DELETE, format!("/{}", need(&index, "index")?), false),
        "indices.get" => (Method::GET, format!("/{}", need(&index, "index")?), false),
        "indices.exists" => (Method::HEAD, format!("/{}", need(&index, "index")?), false),
        "indices.refresh" => (Method::POST, under(&index, "_refresh"), false),
        "info" => (Method::GET, "/".to_owned(), false),
        "cluster.health" => (Method::GET, "/_cluster/health".to_owned(), false),
        "scroll" => (Method::POST, "/_search/scroll".to_owned(), false),
        "clear_scroll" => match take("scroll_id") {
            Some(ids) => (Method::DELETE, format!("/_search/scroll/{ids}"), false),
            None => (Method::DELETE, "/_search/scroll".to_owned(), false),
        },
        "create_pit" => (Method::POST, format!("/{}/_search/point_in_time", need(&index, "index")?), false),
        "delete_pit" => (Method::DELETE, "/_search/point_in_time".to_owned(), false),
        "delete_all_pits" => (Method::DELETE, "/_search/point_in_time/_all".to_owned(), false),
        "get_all_pits" => (Method::GET, "/_search/point_in_time/_all".to_owned(), false),
        other => {
            return fail(format!("the API `{other}` is not offered by Warden (or not known to the runner)"));
        }
    })
}

/// `known_failures.txt`: `<api>/<file> :: <test> — <reason>` per line.
fn known_failures() -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(root().join("known_failures.txt")).map_err(|e| e.to_string())?;
    let mut known = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (test, reason) = line.split_once(" — ").ok_or_else(|| format!("no ` — <reason>` in `{line}`"))?;
        if reason.trim().is_empty() {
            return Err(format!("no reason given for `{test}`"));
        }
        known.insert(test.trim().to_owned(), reason.trim().to_owned());
    }
    Ok(known)
}

fn run_test(server: &Server, suite: &Suite, steps: &[Value]) -> Result<(), Outcome> {
    let mut run = Run {
        server,
        client: reqwest::blocking::Client::new(),
        last: Response::default(),
        stash: HashMap::new(),
    };
    let outcome = suite.setup.iter().chain(steps).try_for_each(|step| run.step(step));
    for step in &suite.teardown {
        let _ = run.step(step);
    }
    // Every index goes, so the next test starts from an empty cluster.
    let _ = run.client.delete(server.url("/*")).basic_auth("admin", Some(ADMIN_PASSWORD)).send();
    outcome
}

#[test]
fn opensearch_yaml_rest_tests() -> TestResult {
    let known = known_failures()?;
    let mut files = Vec::new();
    for api in std::fs::read_dir(root())? {
        let api = api?.path();
        if !api.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&api)? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "yml") {
                files.push(file);
            }
        }
    }
    files.sort();
    let (mut passed, mut known_failed, mut skipped) = (0usize, 0usize, 0usize);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for path in files {
        let name = path.strip_prefix(root()).map(|p| p.display().to_string()).unwrap_or_default();
        let suite = load(&path, name.clone())?;
        let deployment = Deployment::new()?;
        let server = deployment.start()?;
        for (test, steps) in &suite.tests {
            let key = format!("{name} :: {test}");
            seen.insert(key.clone());
            match (run_test(&server, &suite, steps), known.get(&key)) {
                (Ok(()), None) => passed += 1,
                (Ok(()), Some(_)) => {
                    problems.push(format!("{key}: passes now; take it off known_failures.txt"));
                }
                (Err(Outcome::Skipped(why)), _) => {
                    skipped += 1;
                    println!("conformance: skipped {key}: {why}");
                }
                (Err(Outcome::Failed(_)), Some(_)) => known_failed += 1,
                (Err(Outcome::Failed(why)), None) => problems.push(format!("{key}: {why}")),
            }
        }
    }
    for stale in known.keys().filter(|k| !seen.contains(*k)) {
        problems.push(format!("{stale}: on known_failures.txt but no such test"));
    }
    println!("conformance: {passed} passed, {known_failed} known failures, {skipped} skipped");
    assert!(problems.is_empty(), "conformance:\n{}", problems.join("\n"));
    Ok(())
}
