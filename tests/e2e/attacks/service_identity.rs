//! Attacks of class `service_identity` (see mod.rs): an extension acting
//! `as service` must reach only its own namespace, `.ext-<id>` and
//! `.ext-<id>_<suffix>`. Two copies of the probe guest, `hc` and `hc-2`,
//! share a prefix up to a dash — the shape that let `hc` read and overwrite
//! `.ext-hc-2` when the namespace was `.ext-<id>-*`.
//!
//! The namespace is the extension's alone: `.ext-*` are system indices for
//! every user-identity call (REST users whatever their roles, extensions
//! calling as their user), so existence checks here go through the owning
//! extension's service identity or the cluster's index count, never a
//! user's read.

use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::GUEST_HOST_CALLS;

use crate::support::{ADMIN_PASSWORD, API, Deployment, Server, TestResult};

fn setup() -> Result<(Deployment, Server), Box<dyn std::error::Error>> {
    let deployment = Deployment::new()?;
    for id in ["hc", "hc-2"] {
        deployment.install(id, GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
    }
    let server = deployment.start()?;
    Ok((deployment, server))
}

/// One call made by extension `ext` as its service identity (for admin).
fn service(
    server: &Server,
    ext: &str,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value, Box<dyn std::error::Error>> {
    let spec = json!({"method": method, "path": path, "body": body, "identity": "service"});
    let reply = server.send(Method::POST, &format!("/_extensions/{ext}/call"), &spec)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json())
}

#[track_caller]
fn ok(outcome: &Value, status: u64) {
    assert_eq!(outcome["outcome"], "ok", "{outcome}");
    assert_eq!(outcome["status"], status, "{outcome}");
}

/// Refused by the service-account gate, naming the index it asked for.
#[track_caller]
fn confined(outcome: &Value, index: &str) {
    assert_eq!(outcome["kind"], "denied", "{outcome}");
    let message = outcome["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("service-account gate: "), "{message}");
    assert!(message.contains(&format!("not `{index}`")), "{index}: {message}");
}

/// OpenSearch's 400 for a name that cannot be one concrete index.
#[track_caller]
fn invalid_name(outcome: &Value, name: &str) {
    ok(outcome, 400);
    assert_eq!(outcome["body"]["error"]["type"], "invalid_index_name_exception", "{outcome}");
    let reason = outcome["body"]["error"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with(&format!("Invalid index name [{name}], ")), "{name}: {reason}");
}

/// How many indices exist (system ones of extensions included): the
/// cluster's shard count, which admin may read; the one way to see that no
/// index was created under a namespace nobody installed.
fn index_count(server: &Server) -> Result<Value, Box<dyn std::error::Error>> {
    let health = server.get("/_cluster/health")?;
    assert_eq!(health.status, 200, "{health:?}");
    Ok(health.json()["active_primary_shards"].clone())
}

/// `hc-2`'s document as `hc-2` reads it: (version, source).
fn state_of_hc2(server: &Server, index: &str) -> Result<(Value, Value), Box<dyn std::error::Error>> {
    let got = service(server, "hc-2", "GET", &format!("/{index}/_doc/1"), Value::Null)?;
    ok(&got, 200);
    Ok((got["body"]["_version"].clone(), got["body"]["_source"].clone()))
}

/// `hc` cannot read, overwrite, update, delete, recreate or bulk-write the
/// indices of `hc-2` (`.ext-hc-2`, `.ext-hc-2_cache`), nor indices in the
/// old dash form; its own `.ext-hc` and `.ext-hc_<suffix>` work.
#[test]
fn a_dash_in_an_id_does_not_open_another_extensions_namespace() -> TestResult {
    let (_deployment, server) = setup()?;
    // The legitimate paths: each extension writes its own indices.
    ok(&service(&server, "hc-2", "PUT", "/.ext-hc-2/_doc/1", json!({"owner": "hc-2"}))?, 201);
    ok(&service(&server, "hc-2", "PUT", "/.ext-hc-2_cache/_doc/1", json!({"owner": "hc-2"}))?, 201);
    ok(&service(&server, "hc", "PUT", "/.ext-hc/_doc/1", json!({"owner": "hc"}))?, 201);
    ok(&service(&server, "hc", "PUT", "/.ext-hc_state/_doc/1", json!({"owner": "hc"}))?, 201);
    let before = state_of_hc2(&server, ".ext-hc-2")?;
    let before_cache = state_of_hc2(&server, ".ext-hc-2_cache")?;
    let indices = index_count(&server)?;

    for index in [".ext-hc-2", ".ext-hc-2_cache"] {
        let doc = format!("/{index}/_doc/1");
        confined(&service(&server, "hc", "GET", &doc, Value::Null)?, index);
        confined(&service(&server, "hc", "PUT", &doc, json!({"owner": "hc"}))?, index);
        confined(&service(&server, "hc", "POST", &format!("/{index}/_doc"), json!({"owner": "hc"}))?, index);
        confined(&service(&server, "hc", "PUT", &format!("/{index}/_create/2"), json!({}))?, index);
        confined(
            &service(&server, "hc", "POST", &format!("/{index}/_update/1"), json!({"doc": {"owner": "hc"}}))?,
            index,
        );
        confined(&service(&server, "hc", "DELETE", &doc, Value::Null)?, index);
        confined(&service(&server, "hc", "DELETE", &format!("/{index}"), Value::Null)?, index);
        confined(&service(&server, "hc", "POST", &format!("/{index}/_search"), json!({}))?, index);
    }
    // The old namespace form `.ext-<id>-*` is not `hc`'s any more, nor is
    // an index that merely starts like its id.
    for index in [".ext-hc-cache", ".ext-hc2", ".ext-h", ".ext-hc_", "ext-hc", "logs"] {
        confined(&service(&server, "hc", "PUT", &format!("/{index}/_doc/1"), json!({}))?, index);
    }
    assert_eq!(state_of_hc2(&server, ".ext-hc-2")?, before, "unchanged");
    assert_eq!(state_of_hc2(&server, ".ext-hc-2_cache")?, before_cache, "unchanged");
    assert_eq!(server.get("/logs")?.status, 404, "logs was not created");
    assert_eq!(index_count(&server)?, indices, "no index was created");
    Ok(())
}

/// Wildcards: a single-document call refuses them outright; a search or
/// delete expands them only to the extension's own indices; one that
/// expands to nothing writes nothing (it used to write index "").
#[test]
fn wildcards_expand_only_into_the_own_namespace() -> TestResult {
    let (_deployment, server) = setup()?;
    ok(&service(&server, "hc-2", "PUT", "/.ext-hc-2/_doc/1", json!({"owner": "hc-2"}))?, 201);
    let before = state_of_hc2(&server, ".ext-hc-2")?;

    // `hc` has no index yet: every wildcard expands to nothing of its own.
    for expr in [".ext-hc*", ".ext-h*", ".ext-hc-*", "*", "zz*", ".ext-hc%2A", "_all", ".ext-hc-2,.ext-hc"] {
        for (method, path, body) in [
            ("GET", format!("/{expr}/_doc/1"), Value::Null),
            ("PUT", format!("/{expr}/_doc/1"), json!({"owner": "hc"})),
            ("POST", format!("/{expr}/_update/1"), json!({"doc": {"owner": "hc"}})),
            ("DELETE", format!("/{expr}/_doc/1"), Value::Null),
        ] {
            let outcome = service(&server, "hc", method, &path, body)?;
            let decoded = expr.replace("%2A", "*");
            invalid_name(&outcome, &decoded);
        }
    }
    invalid_name(&service(&server, "hc", "PUT", "/.ext-hc*", Value::Null)?, ".ext-hc*");
    invalid_name(&service(&server, "hc", "PUT", "/.ext-hc,.ext-hc-2", Value::Null)?, ".ext-hc,.ext-hc-2");
    // Searches see only its own (nothing yet), never `.ext-hc-2`.
    for expr in [".ext-hc*", ".ext-h*", "*", "_all", ".ext-*"] {
        let search = service(&server, "hc", "POST", &format!("/{expr}/_search"), json!({}))?;
        ok(&search, 200);
        assert_eq!(search["body"]["hits"]["total"]["value"], 0, "{expr}: {search}");
    }
    // A delete that expands to nothing is refused, not performed on "".
    for expr in [".ext-hc*", ".ext-h*", "*"] {
        let outcome = service(&server, "hc", "DELETE", &format!("/{expr}"), Value::Null)?;
        ok(&outcome, 404);
        assert_eq!(outcome["body"]["error"]["type"], "index_not_found_exception", "{outcome}");
    }
    assert_eq!(state_of_hc2(&server, ".ext-hc-2")?, before, "hc-2's index survives");

    // The legitimate path: with its own index, `hc`'s wildcards find it.
    ok(&service(&server, "hc", "PUT", "/.ext-hc_a/_doc/1?refresh=true", json!({"owner": "hc"}))?, 201);
    let search = service(&server, "hc", "POST", "/.ext-h*/_search", json!({}))?;
    assert_eq!(search["body"]["hits"]["total"]["value"], 1, "{search}");
    assert_eq!(search["body"]["hits"]["hits"][0]["_index"], ".ext-hc_a", "{search}");
    ok(&service(&server, "hc", "DELETE", "/.ext-h*", Value::Null)?, 200);
    ok(&service(&server, "hc", "GET", "/.ext-hc_a", Value::Null)?, 404);
    assert_eq!(state_of_hc2(&server, ".ext-hc-2")?, before, "hc-2's index survives");
    Ok(())
}

/// Every `_bulk` item must be one of the extension's own concrete indices:
/// an item aimed at another extension, a wildcard or an encoded name
/// refuses the whole call, and none of its items is written.
#[test]
fn bulk_items_stay_in_the_own_namespace() -> TestResult {
    let (_deployment, server) = setup()?;
    ok(&service(&server, "hc-2", "PUT", "/.ext-hc-2/_doc/1", json!({"owner": "hc-2"}))?, 201);
    let before = state_of_hc2(&server, ".ext-hc-2")?;
    let bulk = |items: &[(&str, &str)]| -> String {
        items
            .iter()
            .map(|(index, id)| {
                format!("{}\n{{\"owner\":\"hc\"}}\n", json!({"index": {"_index": index, "_id": id}}))
            })
            .collect()
    };
    // Another extension's index, alone or after an own item.
    for items in
        [vec![(".ext-hc-2", "1")], vec![(".ext-hc", "own"), (".ext-hc-2", "1")], vec![(".ext-hc-2_x", "9")]]
    {
        let outcome = service(&server, "hc", "POST", "/_bulk", Value::String(bulk(&items)))?;
        confined(&outcome, items.last().map(|(i, _)| *i).unwrap_or_default());
    }
    // Names that are no concrete index.
    for name in
        [".ext-hc_%3f", ".ext-hc_%3F", ".ext-hc_?", ".ext-hc*", ".ext-HC", "", ".ext-hc,.ext-hc-2", "_all"]
    {
        let outcome = service(
            &server,
            "hc",
            "POST",
            "/_bulk",
            Value::String(bulk(&[(".ext-hc", "own"), (name, "1")])),
        )?;
        invalid_name(&outcome, name);
    }
    // A path index of another extension is the default for items.
    let defaulted = "{\"index\":{\"_id\":\"1\"}}\n{\"owner\":\"hc\"}\n";
    confined(
        &service(&server, "hc", "POST", "/.ext-hc-2/_bulk", Value::String(defaulted.into()))?,
        ".ext-hc-2",
    );
    invalid_name(
        &service(&server, "hc", "POST", "/.ext-hc*/_bulk", Value::String(defaulted.into()))?,
        ".ext-hc*",
    );

    assert_eq!(state_of_hc2(&server, ".ext-hc-2")?, before, "hc-2's document untouched");
    let own = service(&server, "hc", "GET", "/.ext-hc/_doc/own", Value::Null)?;
    ok(&own, 404); // no item of a refused bulk was written
    ok(&service(&server, "hc-2", "GET", "/.ext-hc-2/_doc/9", Value::Null)?, 404);

    // The legitimate bulk: own concrete indices only.
    let good = service(
        &server,
        "hc",
        "POST",
        "/_bulk",
        Value::String(bulk(&[(".ext-hc", "own"), (".ext-hc_b", "2")])),
    )?;
    ok(&good, 200);
    assert_eq!(good["body"]["errors"], false, "{good}");
    ok(&service(&server, "hc", "GET", "/.ext-hc/_doc/own", Value::Null)?, 200);
    Ok(())
}

const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);
const READER: (&str, &str) = ("reader", "Reader-Pass-1");
const WRITER: (&str, &str) = ("writer", "Writer-Pass-1");

/// Any method and raw body as `who`, over REST; the path as written.
fn rest(
    server: &Server,
    who: (&str, &str),
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let reply = reqwest::blocking::Client::new()
        .request(Method::from_bytes(method.as_bytes())?, server.url(path))
        .basic_auth(who.0, Some(who.1))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()?;
    let status = reply.status().as_u16();
    Ok((status, serde_json::from_str(&reply.text()?).unwrap_or(Value::Null)))
}

/// Refused by the system-index gate over REST: 403 naming the index, and
/// nothing of the extension's data in the answer.
#[track_caller]
fn system_refusal(outcome: &(u16, Value), index: &str, what: &str) {
    let (status, body) = outcome;
    assert_eq!(*status, 403, "{what}: {body}");
    let reason = body["error"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("index `{index}` is a system index of an extension")),
        "{what}: {reason}"
    );
    assert!(!body.to_string().contains("hc-2-secret"), "{what}: {body}");
}

/// `.ext-*` are the extensions' own system indices: no user reaches them —
/// not `reader` (built-in `readall`), not `writer` (crud on `*`), not
/// admin (`all_access`) — named (plain, encoded, in a list, in a `_bulk`
/// item, as a `.ext-*` pattern) they are refused by the system-index gate
/// and audited; wildcards (`*`, `_all`, `.e*`, `.*`) leave them out of
/// searches, counts, index reads and deletes; no user pre-creates the
/// namespace of an extension not installed yet (`.ext-future`). The same
/// holds for an extension calling as its user — even for its own index.
/// The owning service identity still reads and writes them, unchanged.
#[test]
fn extension_indices_are_system_indices_for_every_user() -> TestResult {
    let (_deployment, server) = setup()?;
    let crud_all = json!({"index_permissions": [{"index_patterns": ["*"], "allowed_actions": ["crud", "create_index", "manage"]}]});
    let policy = json!({"index_permissions": [{"index_patterns": ["*"], "allowed_actions": ["*"]}]});
    for (path, body) in [
        (format!("{API}/roles/crud_all"), crud_all),
        (format!("{API}/roles/extension:hc"), policy),
        (
            format!("{API}/internalusers/reader"),
            json!({"password": READER.1, "opendistro_security_roles": ["readall"]}),
        ),
        (
            format!("{API}/internalusers/writer"),
            json!({"password": WRITER.1, "opendistro_security_roles": ["crud_all"]}),
        ),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    ok(&service(&server, "hc-2", "PUT", "/.ext-hc-2_s/_doc/1", json!({"secret": "hc-2-secret"}))?, 201);
    ok(&service(&server, "hc-2", "PUT", "/.ext-hc-2/_doc/1", json!({"secret": "hc-2-secret"}))?, 201);
    ok(&service(&server, "hc", "PUT", "/.ext-hc/_doc/1", json!({"owner": "hc"}))?, 201);
    assert_eq!(rest(&server, ADMIN, "PUT", "/logs/_doc/1", r#"{"x":1}"#)?.0, 201);
    let before = state_of_hc2(&server, ".ext-hc-2_s")?;
    let indices = index_count(&server)?;
    assert_eq!(indices, 4);

    let item = |index: &str| {
        format!("{}\n{{\"secret\":\"overwritten\"}}\n", json!({"index": {"_index": index, "_id": "1"}}))
    };
    for who in [READER, WRITER, ADMIN] {
        // Named: refused, whatever the operation.
        for (method, path, body, index) in [
            ("GET", "/.ext-hc-2_s/_doc/1".to_owned(), String::new(), ".ext-hc-2_s"),
            ("GET", "/.ext-hc-2_s".to_owned(), String::new(), ".ext-hc-2_s"),
            ("POST", "/.ext-hc-2_s/_search".to_owned(), "{}".to_owned(), ".ext-hc-2_s"),
            ("GET", "/.ext-hc-2/_count".to_owned(), String::new(), ".ext-hc-2"),
            ("POST", "/logs,.ext-hc-2_s/_search".to_owned(), "{}".to_owned(), ".ext-hc-2_s"),
            ("POST", "/%2Eext-hc-2_s/_search".to_owned(), "{}".to_owned(), ".ext-hc-2_s"),
            ("GET", "/%2eext-hc-2_s/_doc/1".to_owned(), String::new(), ".ext-hc-2_s"),
            ("POST", "/.ext-*/_search".to_owned(), "{}".to_owned(), ".ext-*"),
            ("POST", "/.ext-hc-2_s/_refresh".to_owned(), String::new(), ".ext-hc-2_s"),
            (
                "PUT",
                "/.ext-hc-2_s/_doc/1".to_owned(),
                r#"{"secret":"overwritten"}"#.to_owned(),
                ".ext-hc-2_s",
            ),
            ("POST", "/.ext-hc-2_s/_doc".to_owned(), r#"{"secret":"added"}"#.to_owned(), ".ext-hc-2_s"),
            ("PUT", "/.ext-hc-2_s/_create/2".to_owned(), "{}".to_owned(), ".ext-hc-2_s"),
            (
                "POST",
                "/.ext-hc-2_s/_update/1".to_owned(),
                r#"{"doc":{"secret":"x"}}"#.to_owned(),
                ".ext-hc-2_s",
            ),
            ("DELETE", "/.ext-hc-2_s/_doc/1".to_owned(), String::new(), ".ext-hc-2_s"),
            ("DELETE", "/.ext-hc-2_s".to_owned(), String::new(), ".ext-hc-2_s"),
            ("DELETE", "/.ext-*".to_owned(), String::new(), ".ext-*"),
            ("PUT", "/.ext-future".to_owned(), String::new(), ".ext-future"),
            ("PUT", "/.ext-future/_doc/1".to_owned(), "{}".to_owned(), ".ext-future"),
            ("PUT", "/.ext-hc/_doc/1".to_owned(), "{}".to_owned(), ".ext-hc"),
            ("POST", "/_bulk".to_owned(), format!("{}{}", item("logs"), item(".ext-hc-2_s")), ".ext-hc-2_s"),
            ("POST", "/_bulk".to_owned(), item(".ext-future"), ".ext-future"),
            ("POST", "/.ext-future/_bulk".to_owned(), "{\"index\":{}}\n{}\n".to_owned(), ".ext-future"),
        ] {
            let what = format!("{} {method} {path}", who.0);
            system_refusal(&rest(&server, who, method, &path, &body)?, index, &what);
        }
        // Wildcards: the extensions' indices are left out.
        for expr in [
            "_search",
            "*/_search",
            "_all/_search",
            ".e*/_search",
            ".*/_search",
            "*,.e*,_all/_search",
            "_count",
            ".e*/_count",
        ] {
            let (status, body) = rest(&server, who, "POST", &format!("/{expr}"), "{}")?;
            let what = format!("{} /{expr}", who.0);
            assert_eq!(status, 200, "{what}: {body}");
            let total =
                if expr.ends_with("_count") { &body["count"] } else { &body["hits"]["total"]["value"] };
            let logs = if expr.starts_with('.') { 0 } else { 1 };
            assert_eq!(total, logs, "{what}: {body}");
            assert!(!body.to_string().contains(".ext-"), "{what}: {body}");
        }
        let (status, listed) = rest(&server, who, "GET", "/*", "")?;
        assert!(
            status == 200 && !listed.to_string().contains(".ext-"),
            "{} GET /*: {status} {listed}",
            who.0
        );
        // A delete through a wildcard finds nothing of theirs to delete.
        for expr in [".e*", ".ext*", ".e*,.ext*"] {
            let (status, body) = rest(&server, who, "DELETE", &format!("/{expr}"), "")?;
            assert_eq!(status, 404, "{} DELETE /{expr}: {body}", who.0);
        }
    }
    // Admin's wildcard sees `logs` (the legitimate path next to the refusals).
    let (_, all) = rest(&server, ADMIN, "GET", "/*", "")?;
    assert_eq!(
        all.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["logs".to_owned()]),
        "{all}"
    );

    // An extension calling as its user: refused by the same gate, its own
    // index included; the user's ordinary call through it works.
    let as_user = |method: &str, path: &str, body: Value| -> Result<Value, Box<dyn std::error::Error>> {
        let spec = json!({"method": method, "path": path, "body": body, "identity": "user"});
        let reply = server.send(Method::POST, "/_extensions/hc/call", &spec)?;
        assert_eq!(reply.status, 200, "{reply:?}");
        Ok(reply.json())
    };
    for (method, path, body) in [
        ("GET", "/.ext-hc-2_s/_doc/1", Value::Null),
        ("GET", "/.ext-hc/_doc/1", Value::Null),
        ("PUT", "/.ext-hc-2_s/_doc/1", json!({"secret": "overwritten"})),
        ("PUT", "/.ext-future/_doc/1", json!({})),
        ("POST", "/.ext-*/_search", json!({})),
    ] {
        let refused = as_user(method, path, body)?;
        assert_eq!(refused["kind"], "denied", "{method} {path}: {refused}");
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("system-index gate: ") && message.contains("system index of an extension"),
            "{path}: {message}"
        );
    }
    let found = as_user("POST", "/*/_search", json!({}))?;
    ok(&found, 200);
    assert_eq!(found["body"]["hits"]["total"]["value"], 1, "only `logs`: {found}");
    ok(&as_user("GET", "/logs/_doc/1", Value::Null)?, 200);

    // Nothing changed; no index was created; the owners still reach theirs.
    assert_eq!(state_of_hc2(&server, ".ext-hc-2_s")?, before, "hc-2's private data untouched");
    assert_eq!(index_count(&server)?, indices, "no `.ext-future`, nothing deleted");
    let own = service(&server, "hc", "POST", "/*/_search", json!({}))?;
    ok(&own, 200);
    assert_eq!(own["body"]["hits"]["total"]["value"], 1, "hc's service sees its own only: {own}");
    assert_eq!(own["body"]["hits"]["hits"][0]["_index"], ".ext-hc", "{own}");
    // The refusals are audited as the system-index gate's, with the user.
    let audit = server.get("/_warden/audit?category=MISSING_PRIVILEGES&user=writer&size=1000")?.json();
    let events = audit["events"].as_array().cloned().unwrap_or_default();
    assert!(
        events.iter().any(|e| e["gate"] == "system-index"
            && e["reason"].as_str().is_some_and(|r| r.contains(".ext-hc-2_s"))),
        "{audit}"
    );
    Ok(())
}
