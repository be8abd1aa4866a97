//! Attacks of class `index_names` (see mod.rs): wildcards, comma lists and
//! percent-encodings must never become concrete index names or
//! unauthorised writes, and values substituted into index patterns
//! (`${user_name}`) must only ever match literally. Also the numbers a
//! search request brings (date_histogram intervals, dates, bucket counts,
//! from/size): they are refused with OpenSearch's errors, never a panic.
//!
//! Users: `nobody` (no role at all), `writer` (crud + create on `logs*`),
//! `admin` (all_access).

use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::GUEST_HOST_CALLS;

use crate::support::{ADMIN_PASSWORD, API, Deployment, Server, TestResult};

const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);
const NOBODY: (&str, &str) = ("nobody", "Nobody-Pass-1");
const WRITER: (&str, &str) = ("writer", "Writer-Pass-1");

type Outcome = Result<(u16, Value), Box<dyn std::error::Error>>;

fn setup() -> Result<(Deployment, Server), Box<dyn std::error::Error>> {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let writer = json!({"index_permissions": [{"index_patterns": ["logs*"], "allowed_actions": ["crud", "create_index", "manage"]}]});
    for (path, body) in [
        (format!("{API}/roles/log_writer"), writer),
        (format!("{API}/internalusers/nobody"), json!({"password": NOBODY.1})),
        (
            format!("{API}/internalusers/writer"),
            json!({"password": WRITER.1, "opendistro_security_roles": ["log_writer"]}),
        ),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    Ok((deployment, server))
}

/// Any method, any raw body, as `who`; the path is sent as written (the
/// client keeps `%XX` escapes and `*`, `,` as they are).
fn send(server: &Server, who: (&str, &str), method: &str, path: &str, body: &str) -> Outcome {
    let method = Method::from_bytes(method.as_bytes())?;
    let reply = reqwest::blocking::Client::new()
        .request(method, server.url(path))
        .basic_auth(who.0, Some(who.1))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()?;
    let status = reply.status().as_u16();
    let text = reply.text()?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// OpenSearch's 400 `invalid_index_name_exception` naming `name`.
#[track_caller]
fn invalid_name(outcome: &(u16, Value), name: &str, what: &str) {
    let (status, body) = outcome;
    assert_eq!(*status, 400, "{what}: {body}");
    if body.is_null() {
        return; // HEAD: no body
    }
    assert_eq!(body["error"]["type"], "invalid_index_name_exception", "{what}: {body}");
    let reason = body["error"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with(&format!("Invalid index name [{name}], ")), "{what}: {reason}");
}

/// Every index and document, as admin sees them: (index, id) pairs.
fn everything(server: &Server) -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let (status, body) = send(server, ADMIN, "POST", "/_search?size=1000", "{}")?;
    assert_eq!(status, 200, "{body}");
    let hits = body["hits"]["hits"].as_array().cloned().unwrap_or_default();
    Ok(hits
        .iter()
        .map(|h| {
            (h["_index"].as_str().unwrap_or("?").to_owned(), h["_id"].as_str().unwrap_or("?").to_owned())
        })
        .collect())
}

/// `/zz*/_doc/1` and its variants, with every single-document method and
/// index creation, for a user without roles and for admin: 400
/// `invalid_index_name_exception`, nothing written anywhere (it used to
/// write index ""), and the same calls on a concrete name work.
#[test]
fn single_document_calls_refuse_wildcards_and_lists() -> TestResult {
    let (_deployment, server) = setup()?;
    // (as written in the path, as OpenSearch names it after decoding once)
    let expressions = [
        ("zz*", "zz*"),
        ("*", "*"),
        ("a,b", "a,b"),
        ("%2A", "*"),
        ("zz%2a", "zz*"),
        ("%252A", "%2A"),
        ("a%2Cb", "a,b"),
        ("_all", "_all"),
        ("zz%3F", "zz?"),
        ("a%2Fb", "a/b"),
        ("Zz", "Zz"),
    ];
    for who in [NOBODY, ADMIN] {
        for (written, name) in expressions {
            for (method, path, body) in [
                ("PUT", format!("/{written}/_doc/1"), r#"{"x":1}"#),
                ("POST", format!("/{written}/_doc/1"), r#"{"x":1}"#),
                ("POST", format!("/{written}/_doc"), r#"{"x":1}"#),
                ("PUT", format!("/{written}/_create/1"), r#"{"x":1}"#),
                ("POST", format!("/{written}/_update/1"), r#"{"doc":{"x":2}}"#),
                ("GET", format!("/{written}/_doc/1"), ""),
                ("HEAD", format!("/{written}/_doc/1"), ""),
                ("DELETE", format!("/{written}/_doc/1"), ""),
            ] {
                let what = format!("{} {method} {path}", who.0);
                invalid_name(&send(&server, who, method, &path, body)?, name, &what);
            }
            if !written.starts_with('_') {
                let what = format!("{} PUT /{written}", who.0);
                invalid_name(&send(&server, who, "PUT", &format!("/{written}"), "")?, name, &what);
            }
        }
    }
    assert_eq!(everything(&server)?, Vec::<(String, String)>::new(), "nothing was written");
    let (status, indices) = send(&server, ADMIN, "GET", "/*", "")?;
    assert_eq!((status, indices), (200, json!({})), "no index was created");

    // The legitimate path: the same calls on a concrete name.
    assert_eq!(send(&server, ADMIN, "PUT", "/zz/_doc/1", r#"{"x":1}"#)?.0, 201);
    assert_eq!(send(&server, ADMIN, "POST", "/zz/_update/1", r#"{"doc":{"x":2}}"#)?.0, 200);
    assert_eq!(send(&server, ADMIN, "GET", "/zz/_doc/1", "")?.1["_source"], json!({"x": 2}));
    assert_eq!(send(&server, ADMIN, "PUT", "/zz2", "")?.0, 200);
    // An encoded legal character is that character, in every position.
    assert_eq!(send(&server, ADMIN, "PUT", "/z%7A/_doc/2", r#"{"x":3}"#)?.0, 201);
    assert_eq!(everything(&server)?, [("zz".to_owned(), "1".to_owned()), ("zz".to_owned(), "2".to_owned())]);
    assert_eq!(send(&server, ADMIN, "DELETE", "/zz/_doc/1", "")?.0, 200);
    // A user without roles still gets nothing on the concrete name.
    assert_eq!(send(&server, NOBODY, "GET", "/zz/_doc/2", "")?.0, 403);
    Ok(())
}

/// An expression that expands to nothing the caller may touch is never an
/// authorised write: a delete of `zz*`, `logs*` or `_all` by a user
/// without roles answers 404 and deletes nothing; reads answer empty; the
/// writer's own delete of `logs-*` works.
#[test]
fn expressions_that_expand_to_nothing_write_nothing() -> TestResult {
    let (_deployment, server) = setup()?;
    assert_eq!(send(&server, WRITER, "PUT", "/logs-1/_doc/1", r#"{"x":1}"#)?.0, 201);
    assert_eq!(send(&server, ADMIN, "PUT", "/other/_doc/1", r#"{"x":1}"#)?.0, 201);
    for expr in ["zz*", "logs*", "*", "_all", "logs-%2A", "zz*,logs*"] {
        let path = format!("/{expr}");
        let (status, body) = send(&server, NOBODY, "DELETE", &path, "")?;
        assert_eq!(status, 404, "DELETE {path}: {body}");
        // `DELETE /_all` is no API here at all; the rest expand to nothing.
        let kind = if expr == "_all" { "no_handler_found" } else { "index_not_found_exception" };
        assert_eq!(body["error"]["type"], kind, "{body}");
        let (status, body) = send(&server, NOBODY, "POST", &format!("/{expr}/_search"), "{}")?;
        assert_eq!((status, &body["hits"]["total"]["value"]), (200, &json!(0)), "search {path}: {body}");
    }
    // The writer may not delete `other` through a wildcard either.
    let (status, _) = send(&server, WRITER, "DELETE", "/oth*", "")?;
    assert_eq!(status, 404);
    let all = everything(&server)?;
    assert_eq!(all, [("logs-1".to_owned(), "1".to_owned()), ("other".to_owned(), "1".to_owned())]);
    // The legitimate path.
    assert_eq!(send(&server, WRITER, "DELETE", "/logs-*", "")?.0, 200);
    assert_eq!(send(&server, ADMIN, "GET", "/logs-1", "")?.0, 404);
    assert_eq!(everything(&server)?, [("other".to_owned(), "1".to_owned())]);
    Ok(())
}

/// `_bulk` items name concrete indices, judged as written (a body is never
/// percent-decoded): `logs-%3F`, `logs-?`, wildcards, lists, upper case,
/// empty, `_all` are refused — the whole call, before any item is
/// written — even for a writer whose `logs*` would match them; paths are
/// judged after decoding once (`logs-%3F` in a path is `logs-?`).
#[test]
fn percent_encoded_and_wildcard_names_never_become_indices() -> TestResult {
    let (_deployment, server) = setup()?;
    let item =
        |index: &str, id: &str| format!("{}\n{{\"x\":1}}\n", json!({"index": {"_index": index, "_id": id}}));
    for name in [
        "logs-%3F",
        "logs-%3f",
        "logs-?",
        "logs-*",
        "logs-a,logs-b",
        "Logs-a",
        "",
        "_all",
        "logs-%2A",
        "logs#1",
        "logs:1",
        "..",
    ] {
        let body = format!("{}{}", item("logs-ok", "first"), item(name, "1"));
        for who in [WRITER, ADMIN] {
            invalid_name(
                &send(&server, who, "POST", "/_bulk", &body)?,
                name,
                &format!("{} bulk {name:?}", who.0),
            );
        }
    }
    // The same names in a path, decoded once, and doubly encoded ones.
    for (written, name) in [
        ("logs-%3F", "logs-?"),
        ("logs-%253F", "logs-%3F"),
        ("logs-%2A", "logs-*"),
        ("logs-%252A", "logs-%2A"),
        ("logs-a%2Clogs-b", "logs-a,logs-b"),
        ("logs-%2Fx", "logs-/x"),
        ("logs-%20x", "logs- x"),
    ] {
        invalid_name(
            &send(&server, WRITER, "PUT", &format!("/{written}/_doc/1"), r#"{"x":1}"#)?,
            name,
            written,
        );
        invalid_name(
            &send(&server, WRITER, "POST", &format!("/{written}/_bulk"), &item("logs-ok", "2"))?,
            name,
            written,
        );
    }
    assert_eq!(everything(&server)?, Vec::<(String, String)>::new(), "no item of a refused bulk was written");
    let (_, indices) = send(&server, ADMIN, "GET", "/*", "")?;
    assert_eq!(indices, json!({}), "no index was created");

    // The legitimate path: concrete names, found by the writer's `logs-*`.
    let (status, body) =
        send(&server, WRITER, "POST", "/_bulk", &format!("{}{}", item("logs-a", "1"), item("logs-b", "2")))?;
    assert_eq!((status, &body["errors"]), (200, &json!(false)), "{body}");
    let (_, found) = send(&server, WRITER, "POST", "/logs-*/_search", "{}")?;
    assert_eq!(found["hits"]["total"]["value"], 2, "{found}");
    let (status, _) = send(&server, WRITER, "PUT", "/logs-%61/_doc/3", r#"{"x":1}"#)?;
    assert_eq!(status, 201, "`%61` is `a`: the index logs-a");
    assert_eq!(send(&server, WRITER, "GET", "/logs-a/_doc/3", "")?.0, 200);
    Ok(())
}

/// `${user_name}` in an index pattern (the static role `own_index`): a user
/// named `l*`, `l?gs`, `/.*/` or `${attr.internal.x}` gets only the index
/// spelled exactly like the name (none, since such names are no index),
/// never `logs`; `lana` gets `lana` and nothing else.
#[test]
fn substituted_user_names_match_only_literally() -> TestResult {
    let (_deployment, server) = setup()?;
    assert_eq!(send(&server, ADMIN, "PUT", "/logs/_doc/1", r#"{"x":1}"#)?.0, 201);
    let password = "Own-Index-Pass-1";
    for name in ["l*", "l?gs", "/.*/", "${attr.internal.x}", "lana"] {
        let user = json!({"password": password, "opendistro_security_roles": ["own_index"], "attributes": {"x": "logs"}});
        let encoded: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
        let reply = server.send(Method::PUT, &format!("{API}/internalusers/{encoded}"), &user)?;
        assert_eq!(reply.status, 201, "{name}: {reply:?}");
    }
    for name in ["l*", "l?gs", "/.*/", "${attr.internal.x}"] {
        for (method, path, body) in [
            ("GET", "/logs/_doc/1", ""),
            ("PUT", "/logs/_doc/1", r#"{"x":"owned"}"#),
            ("DELETE", "/logs/_doc/1", ""),
            ("POST", "/logs/_search", "{}"),
        ] {
            let (status, reply) = send(&server, (name, password), method, path, body)?;
            let refused = status == 403 || (method == "POST" && reply["hits"]["total"]["value"] == 0);
            assert!(refused, "{name} {method} {path}: {status} {reply}");
        }
    }
    assert_eq!(send(&server, ADMIN, "GET", "/logs/_doc/1", "")?.1["_source"], json!({"x": 1}), "unchanged");
    // The legitimate path.
    assert_eq!(send(&server, ("lana", password), "PUT", "/lana/_doc/1", r#"{"x":1}"#)?.0, 201);
    assert_eq!(send(&server, ("lana", password), "PUT", "/lanb/_doc/1", r#"{"x":1}"#)?.0, 403);
    Ok(())
}

/// On the extension path the user gate knows the caller's name, so
/// `${user_name}` means that user there too: `lana` reaches `lana` through
/// the extension, `bob` does not, and nobody reaches the literal index
/// `${user_name}` that every user used to share.
#[test]
fn the_extension_user_gate_substitutes_the_user_name() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install("probe", GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
    let server = deployment.start()?;
    let policy = json!({"index_permissions": [{"index_patterns": ["*"], "allowed_actions": ["crud", "create_index"]}]});
    let caller = json!({"extension_permissions": ["extension:probe/*"]});
    let password = "Own-Index-Pass-1";
    for (path, body) in [
        (format!("{API}/roles/extension:probe"), policy),
        (format!("{API}/roles/probe_caller"), caller),
        (
            format!("{API}/internalusers/lana"),
            json!({"password": password, "opendistro_security_roles": ["own_index", "probe_caller"]}),
        ),
        (
            format!("{API}/internalusers/bob"),
            json!({"password": password, "opendistro_security_roles": ["own_index", "probe_caller"]}),
        ),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    let call = |user: &str, path: &str| -> Result<Value, Box<dyn std::error::Error>> {
        let spec = json!({"method": "PUT", "path": path, "body": {"by": user}, "identity": "user"});
        let reply = server.send_as(user, password, Method::POST, "/_extensions/probe/call", &spec)?;
        assert_eq!(reply.status, 200, "{reply:?}");
        Ok(reply.json())
    };
    let own = call("lana", "/lana/_doc/1")?;
    assert_eq!((&own["outcome"], &own["status"]), (&json!("ok"), &json!(201)), "{own}");
    for (user, path) in [
        ("bob", "/lana/_doc/2"),
        ("lana", "/%24%7Buser_name%7D/_doc/1"),
        ("bob", "/%24%7Buser_name%7D/_doc/1"),
    ] {
        let refused = call(user, path)?;
        assert_eq!(refused["kind"], "denied", "{user} {path}: {refused}");
        assert!(refused["message"].as_str().is_some_and(|m| m.starts_with("user gate: ")), "{refused}");
    }
    assert_eq!(server.get("/lana/_doc/2")?.status, 404);
    assert_eq!(server.get("/%24%7Buser_name%7D")?.status, 404, "no shared index");

    // Attributes travel in the (sealed) token too: `${attr.internal.team}`
    // resolves on the extension path as on the REST path.
    let team = json!({"index_permissions": [{"index_patterns": ["team-${attr.internal.team}"], "allowed_actions": ["crud", "create_index"]}]});
    for (path, body) in [
        (format!("{API}/roles/own_team"), team),
        (
            format!("{API}/internalusers/tess"),
            json!({"password": password, "attributes": {"team": "red"}, "opendistro_security_roles": ["own_team", "probe_caller"]}),
        ),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    let own = call("tess", "/team-red/_doc/1")?;
    assert_eq!((&own["outcome"], &own["status"]), (&json!("ok"), &json!(201)), "{own}");
    let other = call("tess", "/team-blue/_doc/1")?;
    assert_eq!(other["kind"], "denied", "{other}");
    assert_eq!(server.get("/team-blue/_doc/1")?.status, 404);
    Ok(())
}

/// A `date_histogram` interval or a date that overflows, more buckets than
/// `search.max_buckets`, or a result window past 10,000: each is a 400 with
/// OpenSearch's error type, the server keeps answering, and the ordinary
/// histogram next to them works.
#[test]
fn search_numbers_are_refused_not_overflowed() -> TestResult {
    let (_deployment, server) = setup()?;
    let mut bulk = String::new();
    for i in 0..70_000i64 {
        bulk.push_str(&format!("{{\"index\":{{\"_index\":\"logs-h\"}}}}\n{{\"t\":{}}}\n", i * 1000));
    }
    for edge in [i64::MIN, i64::MAX, -1] {
        bulk.push_str(&format!("{{\"index\":{{\"_index\":\"logs-h\"}}}}\n{{\"t\":{edge}}}\n"));
    }
    let (status, body) = send(&server, WRITER, "POST", "/_bulk", &bulk)?;
    assert_eq!((status, &body["errors"]), (200, &json!(false)));
    let histogram = |interval: Value| json!({"size": 0, "aggs": {"h": {"date_histogram": {"field": "t", "fixed_interval": interval}}}});
    for interval in ["9223372036854775807d", "106751991168d", "99999999999999999999h", "0s"] {
        let (status, body) =
            send(&server, WRITER, "POST", "/logs-h/_search", &histogram(json!(interval)).to_string())?;
        assert_eq!(
            (status, &body["error"]["type"]),
            (400, &json!("parsing_exception")),
            "{interval}: {body}"
        );
        assert!(body["error"]["reason"].as_str().is_some_and(|r| r.contains("fixed_interval")), "{body}");
    }
    let range = json!({"query": {"range": {"t": {"gte": "now-9223372036854775807y", "lte": "now+9223372036854775807M/M"}}}});
    let (status, _) = send(&server, WRITER, "POST", "/logs-h/_search", &range.to_string())?;
    assert!(status == 200 || status == 400, "a bound out of range is no date, not a panic: {status}");

    let (status, body) =
        send(&server, WRITER, "POST", "/logs-h/_search", &histogram(json!("1s")).to_string())?;
    assert_eq!((status, &body["error"]["type"]), (400, &json!("too_many_buckets_exception")), "{body}");
    assert_eq!(body["error"]["max_buckets"], 65_535);
    let window = json!({"from": 9_000, "size": 1_001});
    let (status, body) = send(&server, WRITER, "POST", "/logs-h/_search", &window.to_string())?;
    assert_eq!((status, &body["error"]["type"]), (400, &json!("illegal_argument_exception")), "{body}");

    // The legitimate path: per-hour buckets over the same documents; the
    // edge dates are no dates, -1 falls in the hour before the epoch.
    let (status, body) =
        send(&server, WRITER, "POST", "/logs-h/_search", &histogram(json!("1h")).to_string())?;
    assert_eq!(status, 200, "{body}");
    let buckets = body["aggregations"]["h"]["buckets"].as_array().cloned().unwrap_or_default();
    assert_eq!(buckets.len(), 21, "{body}");
    assert_eq!(buckets[0]["key"], -3_600_000);
    let (status, body) =
        send(&server, WRITER, "POST", "/logs-h/_search", &json!({"from": 9_990, "size": 10}).to_string())?;
    assert_eq!((status, body["hits"]["hits"].as_array().map(Vec::len)), (200, Some(10)));
    Ok(())
}

/// `hits.total`, the aggregation's buckets and the hits of one search as
/// `who`.
fn search_of(server: &Server, who: (&str, &str), expr: &str, body: &Value) -> Outcome {
    let (status, reply) = send(server, who, "POST", &format!("/{expr}/_search"), &body.to_string())?;
    assert_eq!(status, 200, "{expr}: {reply}");
    Ok((status, reply))
}

/// An expression is a set of indices, as OpenSearch resolves it: naming an
/// index again (`big,big,big`, an encoded repeat, `_all` next to `*`) or
/// matching it by several patterns (`big,b*,*`) searches, counts and
/// aggregates it once — the totals, buckets and hits equal those of the
/// index named once, and no hit appears twice. Repeating a name used to
/// multiply the work and memory (3,000 repeats: 600,000 hits for 200
/// documents, 1.5 GB).
#[test]
fn repeated_and_overlapping_names_are_resolved_once() -> TestResult {
    let (_deployment, server) = setup()?;
    let mut bulk = String::new();
    for i in 0..200 {
        let item = json!({"index": {"_index": "logs-big", "_id": format!("{i:03}")}});
        bulk.push_str(&format!("{item}\n{}\n", json!({"n": i, "kind": format!("k{}", i % 3)})));
    }
    for i in 0..5 {
        bulk.push_str(&format!(
            "{}\n{{\"n\":{i},\"kind\":\"k0\"}}\n",
            json!({"index": {"_index": "logs-small"}})
        ));
    }
    let (status, body) = send(&server, WRITER, "POST", "/_bulk", &bulk)?;
    assert_eq!((status, &body["errors"]), (200, &json!(false)), "{body}");
    assert_eq!(send(&server, ADMIN, "PUT", "/other/_doc/1", r#"{"n":1,"kind":"k0"}"#)?.0, 201);

    let query = json!({"size": 1000, "aggs": {"kinds": {"terms": {"field": "kind"}, "aggs": {"sum": {"sum": {"field": "n"}}}}, "count": {"value_count": {"field": "n"}}}});
    let view = |reply: &Value| {
        let mut hits: Vec<(String, String)> = reply["hits"]["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                (h["_index"].as_str().unwrap_or("?").to_owned(), h["_id"].as_str().unwrap_or("?").to_owned())
            })
            .collect();
        hits.sort();
        (
            reply["hits"]["total"]["value"].clone(),
            reply["aggregations"].clone(),
            reply["_shards"]["total"].clone(),
            hits,
        )
    };
    // (who, expression, the same set named once)
    let cases = [
        (WRITER, "logs-big,logs-big,logs-big", "logs-big"),
        (WRITER, "logs-big,logs-%62ig", "logs-big"),
        (WRITER, &vec!["logs-big"; 1_000].join(","), "logs-big"),
        (WRITER, "logs-big,logs-b*,logs-*", "logs-*"),
        (WRITER, "logs-*,logs-b*,logs-big,logs-small,*,_all", "logs-*"),
        (ADMIN, "logs-big,l*,*,_all,other,o*", "*"),
        (ADMIN, "_all,_all", "_all"),
    ];
    for (who, expr, once) in cases {
        let (_, named_once) = search_of(&server, who, once, &query)?;
        let (_, repeated) = search_of(&server, who, expr, &query)?;
        let what = format!("{} {}…", who.0, expr.chars().take(60).collect::<String>());
        let (once, again) = (view(&named_once), view(&repeated));
        // Totals and shard counts first: a short message when they differ.
        assert_eq!((&again.0, &again.2), (&once.0, &once.2), "{what}: hits.total, _shards.total");
        assert_eq!(again, once, "{what}");
        let (total, _, _, hits) = again;
        let distinct: std::collections::BTreeSet<&(String, String)> = hits.iter().collect();
        assert_eq!(distinct.len(), hits.len(), "{what}: a hit appears twice");
        assert_eq!(total, hits.len(), "{what}");
        let (status, counted) = send(&server, who, "POST", &format!("/{expr}/_count"), "{}")?;
        assert_eq!((status, &counted["count"]), (200, &total), "{what}: {counted}");
    }
    // The figures themselves, so the comparison cannot pass on two wrong answers.
    let (_, big) = search_of(&server, WRITER, "logs-big,logs-big,logs-big", &query)?;
    assert_eq!(big["hits"]["total"]["value"], 200, "{big}");
    assert_eq!(big["aggregations"]["count"]["value"], 200, "{big}");
    assert_eq!(big["_shards"]["total"], 1, "{big}");
    let (_, writers) = search_of(&server, WRITER, "logs-big,logs-b*,logs-*,*", &query)?;
    assert_eq!(writers["hits"]["total"]["value"], 205, "`other` is not the writer's: {writers}");
    let (_, everything) = search_of(&server, ADMIN, "logs-big,l*,*,_all,other,o*", &query)?;
    assert_eq!(everything["hits"]["total"]["value"], 206, "{everything}");

    // A repeated index in a delete is deleted once (no 404 for its second
    // mention), and the legitimate delete next to it works.
    let (status, body) = send(&server, WRITER, "DELETE", "/logs-small,logs-small,logs-s*", "")?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(send(&server, ADMIN, "GET", "/logs-small", "")?.0, 404);
    let (_, left) = search_of(&server, WRITER, "logs-*,logs-*", &query)?;
    assert_eq!(left["hits"]["total"]["value"], 200, "{left}");
    Ok(())
}

/// More than 1,000 comma-separated parts in one expression (the same name
/// repeated, or distinct names, or patterns) is a 400 naming the limit,
/// for searches, counts, refreshes, index reads and deletes, for admin
/// too, and changes nothing; 1,000 parts are still served.
#[test]
fn too_many_expressions_are_refused_naming_the_limit() -> TestResult {
    let (_deployment, server) = setup()?;
    assert_eq!(send(&server, WRITER, "PUT", "/logs-a/_doc/1", r#"{"x":1}"#)?.0, 201);
    let repeated = vec!["logs-a"; 1_001].join(",");
    let distinct: String = (0..1_001).map(|i| format!("logs-{i}")).collect::<Vec<_>>().join(",");
    let patterns: String = (0..5_000).map(|i| format!("l*{i}*")).collect::<Vec<_>>().join(",");
    for expr in [&repeated, &distinct, &patterns] {
        for who in [WRITER, ADMIN] {
            for (method, path) in [
                ("POST", format!("/{expr}/_search")),
                ("GET", format!("/{expr}/_count")),
                ("POST", format!("/{expr}/_refresh")),
                ("GET", format!("/{expr}")),
                ("DELETE", format!("/{expr}")),
            ] {
                let (status, body) = send(&server, who, method, &path, "")?;
                let what = format!("{} {method} {}…", who.0, &path[..40]);
                assert_eq!(status, 400, "{what}: {body}");
                let reason = body["error"]["reason"].as_str().unwrap_or_default();
                assert!(reason.contains("at most 1000"), "{what}: {reason}");
            }
        }
    }
    assert_eq!(send(&server, ADMIN, "GET", "/logs-a/_doc/1", "")?.0, 200, "the delete was refused");
    // The legitimate path: at the limit, served (and resolved once).
    let at_limit = vec!["logs-a"; 1_000].join(",");
    let (status, body) = send(&server, WRITER, "POST", &format!("/{at_limit}/_search"), "{}")?;
    assert_eq!((status, &body["hits"]["total"]["value"]), (200, &json!(1)), "{body}");
    Ok(())
}
