//! Attacks of class `service_identity` (see main.rs): an extension acting
//! `as service` must reach only its own namespace, `.ext-<id>` and
//! `.ext-<id>_<suffix>`. Two copies of the probe guest, `hc` and `hc-2`,
//! share a prefix up to a dash — the shape that let `hc` read and overwrite
//! `.ext-hc-2` when the namespace was `.ext-<id>-*`.

use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::GUEST_HOST_CALLS;

use crate::support::{Deployment, Server, TestResult};

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
    for index in [".ext-hc-cache", ".ext-hc2", ".ext-h", "logs"] {
        assert_eq!(server.get(&format!("/{index}"))?.status, 404, "{index} was not created");
    }
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
    assert_eq!(server.get("/.ext-hc_a")?.status, 404, "its own index deleted");
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
    assert_eq!(server.get("/.ext-hc/_doc/own")?.status, 404, "no item of a refused bulk was written");
    assert_eq!(server.get("/.ext-hc-2/_doc/9")?.status, 404);

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
    assert_eq!(server.get("/.ext-hc/_doc/own")?.status, 200);
    Ok(())
}
