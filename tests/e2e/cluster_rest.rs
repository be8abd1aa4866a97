//! The cluster's REST API on OpenSearch's paths, for users' own calls:
//! OpenSearch answers, the user's roles as the only gate, system indices
//! refused, optimistic concurrency; and persistent OBO revocation.

use reqwest::Method;
use serde_json::json;

use crate::support::{Deployment, MINT, Server, TestResult};

#[test]
fn users_reach_the_embedded_cluster_with_their_own_roles() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let info = server.get("/")?;
    assert_eq!(info.status, 200, "{info:?}");
    assert_eq!(info.json()["cluster_name"], "warden");
    assert_eq!(server.request(Method::PUT, "/logs", "")?.status, 200);
    let created = server.send(Method::PUT, "/logs/_doc/1", &json!({"level": "warn", "n": 1}))?;
    assert_eq!(created.status, 201, "{created:?}");
    let (seq, term) = (created.json()["_seq_no"].clone(), created.json()["_primary_term"].clone());
    let cas = format!("/logs/_doc/1?if_seq_no={seq}&if_primary_term={term}");
    assert_eq!(server.send(Method::PUT, &cas, &json!({"level": "error", "n": 2}))?.status, 200);
    let conflict = server.send(Method::PUT, &cas, &json!({"level": "info"}))?;
    assert_eq!(conflict.status, 409, "{conflict:?}");
    let bulk = "{\"index\":{\"_index\":\"logs\",\"_id\":\"2\"}}\n{\"level\":\"warn\",\"n\":5}\n";
    let reply = server.request(Method::POST, "/_bulk", bulk)?;
    assert_eq!(reply.json()["errors"], false, "{reply:?}");
    let search =
        server.send(Method::POST, "/logs/_search", &json!({"query": {"term": {"level": "warn"}}}))?;
    assert_eq!(search.json()["hits"]["total"]["value"], 1, "{search:?}");
    assert_eq!(server.get("/_cluster/health")?.json()["status"], "green");

    // System indices stay hidden from admins too.
    let system = server.get("/.warden-security/_search")?;
    assert_eq!(system.status, 403, "{system:?}");
    assert!(server.get("/.warden-tokens/_doc/keys")?.status == 403);
    assert_eq!(server.get("/_nodes/stats")?.status, 404);

    // A reader: searches, cannot write; the answer names action and index.
    let reader = json!({"index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, "/_plugins/_security/api/roles/log_reader", &reader)?.status, 201);
    let user = json!({"password": "Reader-Pass-1", "opendistro_security_roles": ["log_reader"]});
    assert_eq!(server.send(Method::PUT, "/_plugins/_security/api/internalusers/rita", &user)?.status, 201);
    let found = server.get_as("rita", "Reader-Pass-1", "/logs/_search")?;
    assert_eq!(found.json()["hits"]["total"]["value"], 2, "{found:?}");
    let write = server.send_as("rita", "Reader-Pass-1", Method::PUT, "/logs/_doc/3", &json!({}))?;
    assert_eq!(write.status, 403, "{write:?}");
    assert!(write.reason().contains("`indices:data/write/index` on index `logs`"), "{write:?}");
    assert_eq!(server.get("/logs/_doc/3")?.status, 404, "the refused write wrote nothing");
    Ok(())
}

/// An on-behalf-of token `user` mints for `service`.
fn mint(
    server: &Server,
    user: &str,
    password: &str,
    service: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let minted = server.send_as(user, password, Method::POST, MINT, &json!({"service": service}))?;
    assert_eq!(minted.status, 200, "{minted:?}");
    Ok(minted.json()["authenticationToken"].as_str().ok_or("no token")?.to_owned())
}

/// The token's (unencrypted) claims.
fn claims(token: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).ok_or("not a JWT")?;
    Ok(serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?)
}

fn status_with(server: &Server, token: &str) -> Result<u16, reqwest::Error> {
    Ok(server
        .get_with_authorization("/_plugins/_security/authinfo", Some(&format!("Bearer {token}")))?
        .status)
}

/// FAILED_LOGIN reasons in the audit log.
fn failed_logins(server: &Server) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let audit = server.get("/_warden/audit?category=FAILED_LOGIN&size=1000")?.json();
    Ok(audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect())
}

/// Revocations by user, by token id and by extension (audience) stop the
/// tokens at once, and still do after a restart; a token nobody revoked
/// keeps working across the same restart.
#[test]
fn revocations_are_admin_only_and_survive_restarts() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    for (name, password) in [("tess", "Tess-Password-1"), ("uma", "Uma-Password-12")] {
        let user = json!({"password": password});
        let path = format!("/_plugins/_security/api/internalusers/{name}");
        assert_eq!(server.send(Method::PUT, &path, &user)?.status, 201);
    }
    let by_user = mint(&server, "tess", "Tess-Password-1", "svc-a")?;
    let by_jti = mint(&server, "uma", "Uma-Password-12", "svc-b")?;
    let by_extension = mint(&server, "uma", "Uma-Password-12", "svc-c")?;
    let kept = mint(&server, "uma", "Uma-Password-12", "svc-d")?;
    for token in [&by_user, &by_jti, &by_extension, &kept] {
        assert_eq!(status_with(&server, token)?, 200);
    }
    let jti = claims(&by_jti)?;
    let revoke = |body: serde_json::Value| server.send(Method::POST, "/_warden/tokens/_revoke", &body);
    assert_eq!(revoke(json!({"user": "tess"}))?.status, 200);
    let reply = revoke(json!({"jti": jti["jti"], "expires_at": jti["exp"]}))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(revoke(json!({"extension": "svc-c"}))?.status, 200);
    for token in [&by_user, &by_jti, &by_extension] {
        assert_eq!(status_with(&server, token)?, 401);
    }
    assert_eq!(status_with(&server, &kept)?, 200, "only what was revoked");

    let bad = revoke(json!({"user": "a", "extension": "b"}))?;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("give exactly one of `jti`, `user`, `extension`"), "{bad:?}");
    let user = json!({"password": "Plain-User-Pass-1"});
    assert_eq!(server.send(Method::PUT, "/_plugins/_security/api/internalusers/plain", &user)?.status, 201);
    let denied = server.send_as(
        "plain",
        "Plain-User-Pass-1",
        Method::POST,
        "/_warden/tokens/_revoke",
        &json!({"user": "x"}),
    )?;
    assert_eq!(denied.status, 403);
    let list = server.get("/_warden/tokens/_revocations")?.json();
    assert!(list["users_before"]["tess"].is_u64(), "{list}");
    assert!(list["users_before"].get("x").is_none(), "the refused revocation was not recorded: {list}");
    drop(server);

    let server = deployment.start()?;
    let before = failed_logins(&server)?.len();
    for token in [&by_user, &by_jti, &by_extension] {
        assert_eq!(status_with(&server, token)?, 401);
    }
    assert_eq!(status_with(&server, &kept)?, 200, "the keys survived the restart too");
    let reasons = failed_logins(&server)?;
    let after_restart = &reasons[..reasons.len() - before];
    for revoked in [
        "for user `tess` is revoked",
        &format!("token `{}` is revoked", jti["jti"].as_str().unwrap_or("?")),
        "for extension `svc-c` is revoked",
    ] {
        assert!(after_restart.iter().any(|r| r.contains(revoked)), "{revoked}: {after_restart:?}");
    }
    let list = server.get("/_warden/tokens/_revocations")?.json();
    assert!(list["users_before"].get("x").is_none(), "{list}");
    Ok(())
}

/// `status` and `error.type` of an OpenSearch error answer.
fn failure(reply: &crate::support::Reply) -> (u16, String) {
    (reply.status, reply.json()["error"]["type"].as_str().unwrap_or_default().to_owned())
}

/// Creating never overwrites: `op_type=create`, `_create` (PUT and POST)
/// and bulk `create` items answer 409 `version_conflict_engine_exception`
/// on an existing id and leave the document as it was; the rest of the
/// bulk is applied.
#[test]
fn creating_an_existing_document_is_a_conflict_and_changes_nothing() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let first = server.send(Method::PUT, "/docs/_doc/1", &json!({"v": "first"}))?;
    assert_eq!((first.status, first.json()["result"].clone()), (201, json!("created")), "{first:?}");
    let fields = first.json();
    for field in ["_index", "_id", "_version", "result", "_shards", "_seq_no", "_primary_term"] {
        assert!(fields.get(field).is_some(), "{field} missing: {fields}");
    }
    assert_eq!(fields["_shards"], json!({"total": 1, "successful": 1, "failed": 0}));
    for (method, path) in [
        (Method::PUT, "/docs/_doc/1?op_type=create"),
        (Method::POST, "/docs/_doc/1?op_type=create"),
        (Method::PUT, "/docs/_create/1"),
        (Method::POST, "/docs/_create/1"),
    ] {
        let again = server.send(method.clone(), path, &json!({"v": "overwritten"}))?;
        assert_eq!(
            failure(&again),
            (409, "version_conflict_engine_exception".into()),
            "{method} {path}: {again:?}"
        );
        assert!(again.reason().contains("document already exists"), "{again:?}");
    }
    let kept = server.get("/docs/_doc/1")?.json();
    assert_eq!(
        (kept["_source"].clone(), kept["_version"].clone()),
        (json!({"v": "first"}), json!(1)),
        "{kept}"
    );
    let created = server.send(Method::PUT, "/docs/_create/2", &json!({"v": "two"}))?;
    assert_eq!((created.status, created.json()["result"].clone()), (201, json!("created")));
    let created = server.send(Method::PUT, "/docs/_doc/3?op_type=create", &json!({"v": "three"}))?;
    assert_eq!(created.status, 201, "{created:?}");
    let bad = server.send(Method::PUT, "/docs/_doc/4?op_type=upsert", &json!({}))?;
    assert_eq!(failure(&bad), (400, "illegal_argument_exception".into()), "{bad:?}");

    let bulk = concat!(
        "{\"create\":{\"_index\":\"docs\",\"_id\":\"1\"}}\n{\"v\":\"bulk overwrite\"}\n",
        "{\"create\":{\"_index\":\"docs\",\"_id\":\"5\"}}\n{\"v\":\"five\"}\n",
        "{\"index\":{\"_index\":\"docs\",\"_id\":\"6\"}}\nnot json\n",
        "{\"index\":{\"_index\":\"docs\",\"_id\":\"7\"}}\n{\"v\":\"seven\"}\n",
        "{\"create\":{\"_index\":\"docs\",\"_id\":\"7\"}}\n{\"v\":\"seven again\"}\n",
    );
    let reply = server.request(Method::POST, "/_bulk", bulk)?.json();
    assert_eq!(reply["errors"], true, "{reply}");
    let item = |n: usize, kind: &str| reply["items"][n][kind].clone();
    assert_eq!(item(0, "create")["status"], 409, "{reply}");
    assert_eq!(item(0, "create")["error"]["type"], "version_conflict_engine_exception");
    assert_eq!(item(1, "create")["status"], 201);
    assert_eq!(item(2, "index")["status"], 400);
    assert_eq!(item(2, "index")["error"]["type"], "mapper_parsing_exception");
    assert_eq!(item(3, "index")["status"], 201);
    assert_eq!(item(4, "create")["status"], 409, "an earlier item of the same bulk counts: {reply}");
    assert_eq!(server.get("/docs/_doc/1")?.json()["_source"], json!({"v": "first"}));
    assert_eq!(server.get("/docs/_doc/5")?.json()["_source"], json!({"v": "five"}));
    assert_eq!(server.get("/docs/_doc/6")?.status, 404);
    assert_eq!(server.get("/docs/_doc/7")?.json()["_source"], json!({"v": "seven"}));
    Ok(())
}

/// `if_seq_no`/`if_primary_term` on index, delete, `_update` and bulk
/// items; `version` with `version_type=external|external_gte`; internal
/// versions refused for writes, as OpenSearch refuses them.
#[test]
fn writes_honour_sequence_numbers_and_external_versions() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let created = server.send(Method::PUT, "/cas/_doc/1", &json!({"n": 1}))?.json();
    let (seq, term) =
        (created["_seq_no"].as_u64().unwrap_or(0), created["_primary_term"].as_u64().unwrap_or(0));
    let stale = format!("if_seq_no={}&if_primary_term={term}", seq + 100);
    let fresh = format!("if_seq_no={seq}&if_primary_term={term}");
    let conflict = (409, "version_conflict_engine_exception".to_owned());
    assert_eq!(
        failure(&server.send(Method::PUT, &format!("/cas/_doc/1?{stale}"), &json!({"n": 9}))?),
        conflict
    );
    assert_eq!(failure(&server.request(Method::DELETE, &format!("/cas/_doc/1?{stale}"), "")?), conflict);
    let update = server.send(Method::POST, &format!("/cas/_update/1?{stale}"), &json!({"doc": {"n": 9}}))?;
    assert_eq!(failure(&update), conflict, "{update:?}");
    let bulk = format!(
        "{}\n{{\"n\":9}}\n{}\n{{\"n\":3}}\n",
        json!({"index": {"_index": "cas", "_id": "1", "if_seq_no": seq + 100, "if_primary_term": term}}),
        json!({"index": {"_index": "cas", "_id": "2"}})
    );
    let reply = server.request(Method::POST, "/_bulk", &bulk)?.json();
    assert_eq!(reply["items"][0]["index"]["status"], 409, "{reply}");
    assert_eq!(reply["items"][1]["index"]["status"], 201, "{reply}");
    assert_eq!(server.get("/cas/_doc/1")?.json()["_source"], json!({"n": 1}), "nothing was written over it");
    let updated = server.send(Method::POST, &format!("/cas/_update/1?{fresh}"), &json!({"doc": {"n": 2}}))?;
    assert_eq!((updated.status, updated.json()["result"].clone()), (200, json!("updated")), "{updated:?}");
    let now = updated.json();
    let bulk = format!(
        "{}\n{{\"n\":4}}\n",
        json!({"index": {"_index": "cas", "_id": "1", "if_seq_no": now["_seq_no"], "if_primary_term": now["_primary_term"]}})
    );
    let reply = server.request(Method::POST, "/_bulk", &bulk)?.json();
    assert_eq!(reply["items"][0]["index"]["status"], 200, "{reply}");

    // External versions: the caller's numbers; only a higher (or, gte, an
    // equal) one replaces the document.
    let put = |path: &str, n: u64| server.send(Method::PUT, path, &json!({"n": n}));
    let v5 = put("/ext/_doc/1?version=5&version_type=external", 5)?;
    assert_eq!((v5.status, v5.json()["_version"].clone()), (201, json!(5)), "{v5:?}");
    assert_eq!(failure(&put("/ext/_doc/1?version=5&version_type=external", 6)?), conflict);
    assert_eq!(failure(&put("/ext/_doc/1?version=4&version_type=external_gte", 6)?), conflict);
    assert_eq!(put("/ext/_doc/1?version=5&version_type=external_gte", 7)?.status, 200);
    let v9 = put("/ext/_doc/1?version=9&version_type=external", 9)?;
    assert_eq!((v9.status, v9.json()["_version"].clone()), (200, json!(9)));
    assert_eq!(server.get("/ext/_doc/1")?.json()["_source"], json!({"n": 9}));
    assert_eq!(failure(&server.get("/ext/_doc/1?version=3")?), conflict, "a read of another version");
    let internal = put("/ext/_doc/1?version=10", 10)?;
    assert_eq!(failure(&internal), (400, "action_request_validation_exception".into()), "{internal:?}");
    let bad = put("/ext/_doc/1?version=10&version_type=sideways", 10)?;
    assert_eq!(failure(&bad), (400, "illegal_argument_exception".into()));
    let deleted = server.request(Method::DELETE, "/ext/_doc/1?version=12&version_type=external", "")?;
    assert_eq!((deleted.status, deleted.json()["_version"].clone()), (200, json!(12)), "{deleted:?}");
    assert_eq!(server.get("/ext/_doc/1")?.status, 404);
    Ok(())
}

/// `_update` as OpenSearch has it: `doc` merged, `upsert` and
/// `doc_as_upsert` create, `detect_noop` answers `noop` without writing,
/// a missing document without upsert is 404 `document_missing_exception`;
/// `refresh` is accepted everywhere and `true` reported as
/// `forced_refresh`.
#[test]
fn updates_upserts_noops_and_refresh() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let missing = server.send(Method::POST, "/up/_update/1", &json!({"doc": {"a": 1}}))?;
    assert_eq!(failure(&missing), (404, "document_missing_exception".into()), "{missing:?}");
    let upserted =
        server.send(Method::POST, "/up/_update/1", &json!({"doc": {"a": 1}, "upsert": {"a": 0}}))?;
    assert_eq!((upserted.status, upserted.json()["result"].clone()), (201, json!("created")), "{upserted:?}");
    assert_eq!(server.get("/up/_doc/1")?.json()["_source"], json!({"a": 0}), "upsert, not doc");
    let as_upsert =
        server.send(Method::POST, "/up/_update/2", &json!({"doc": {"b": 2}, "doc_as_upsert": true}))?;
    assert_eq!(as_upsert.status, 201, "{as_upsert:?}");
    assert_eq!(server.get("/up/_doc/2")?.json()["_source"], json!({"b": 2}));
    let merged = server.send(Method::POST, "/up/_update/1", &json!({"doc": {"c": 3}, "upsert": {"x": 1}}))?;
    assert_eq!(
        (merged.json()["result"].clone(), merged.json()["_version"].clone()),
        (json!("updated"), json!(2))
    );
    assert_eq!(server.get("/up/_doc/1")?.json()["_source"], json!({"a": 0, "c": 3}));
    let noop = server.send(Method::POST, "/up/_update/1", &json!({"doc": {"c": 3}}))?.json();
    assert_eq!((noop["result"].clone(), noop["_version"].clone()), (json!("noop"), json!(2)), "{noop}");
    let forced =
        server.send(Method::POST, "/up/_update/1", &json!({"doc": {"c": 3}, "detect_noop": false}))?;
    assert_eq!(
        (forced.json()["result"].clone(), forced.json()["_version"].clone()),
        (json!("updated"), json!(3))
    );
    let scripted = server.send(Method::POST, "/up/_update/1", &json!({"script": "ctx._source.c++"}))?;
    assert_eq!(failure(&scripted), (400, "action_request_validation_exception".into()));

    for refresh in ["true", "", "wait_for", "false"] {
        let r = server.send(Method::PUT, &format!("/up/_doc/r?refresh={refresh}"), &json!({"r": refresh}))?;
        assert!(r.status == 200 || r.status == 201, "{refresh}: {r:?}");
        let forced = r.json().get("forced_refresh").cloned();
        let expected = (refresh == "true" || refresh.is_empty()).then_some(json!(true));
        assert_eq!(forced, expected, "refresh={refresh}: {r:?}");
        let found = server.send(Method::POST, "/up/_search", &json!({"query": {"term": {"r": refresh}}}))?;
        assert_eq!(found.json()["hits"]["total"]["value"], 1, "seen by the next search: {found:?}");
    }
    let u = server.send(Method::POST, "/up/_update/2?refresh=true", &json!({"doc": {"b": 3}}))?;
    assert_eq!(u.json()["forced_refresh"], true, "{u:?}");
    let d = server.request(Method::DELETE, "/up/_doc/2?refresh=wait_for", "")?;
    assert_eq!((d.status, d.json().get("forced_refresh").cloned()), (200, None), "{d:?}");
    let b = server.request(
        Method::POST,
        "/_bulk?refresh=true",
        "{\"index\":{\"_index\":\"up\",\"_id\":\"9\"}}\n{}\n",
    )?;
    assert_eq!(b.json()["items"][0]["index"]["forced_refresh"], true, "{b:?}");
    let bad = server.send(Method::PUT, "/up/_doc/3?refresh=later", &json!({}))?;
    assert_eq!(failure(&bad), (400, "illegal_argument_exception".into()));
    assert_eq!(server.get("/up/_doc/3")?.status, 404, "the refused write wrote nothing");
    Ok(())
}

/// `GET|HEAD /{index}/_source/{id}`, `_source` filtering on GET, `_mget`
/// (`docs` and `ids`, per-document `found` and errors) and `_msearch`
/// (NDJSON, one answer or error per search).
#[test]
fn source_mget_and_msearch() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let bulk = concat!(
        "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"user\":\"ana\",\"meta\":{\"x\":1,\"y\":2}}\n",
        "{\"index\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"user\":\"bob\"}\n",
        "{\"index\":{\"_index\":\"b\",\"_id\":\"1\"}}\n{\"user\":\"cy\"}\n",
    );
    assert_eq!(server.request(Method::POST, "/_bulk?refresh=true", bulk)?.json()["errors"], false);
    let source = server.get("/a/_source/1")?;
    assert_eq!((source.status, source.json()), (200, json!({"user": "ana", "meta": {"x": 1, "y": 2}})));
    assert_eq!(server.get("/a/_source/1?_source_includes=meta.x")?.json(), json!({"meta": {"x": 1}}));
    assert_eq!(server.get("/a/_source/1?_source_excludes=meta")?.json(), json!({"user": "ana"}));
    assert_eq!(failure(&server.get("/a/_source/9")?), (404, "resource_not_found_exception".into()));
    assert_eq!(failure(&server.get("/zz/_source/1")?), (404, "index_not_found_exception".into()));
    assert_eq!(server.request(Method::HEAD, "/a/_source/1", "")?.status, 200);
    assert_eq!(server.request(Method::HEAD, "/a/_source/9", "")?.status, 404);
    let filtered = server.get("/a/_doc/1?_source=user")?.json();
    assert_eq!(filtered["_source"], json!({"user": "ana"}), "{filtered}");
    assert!(server.get("/a/_doc/1?_source=false")?.json().get("_source").is_none());

    let docs = json!({"docs": [
        {"_index": "a", "_id": "1", "_source": ["meta.y"]},
        {"_index": "b", "_id": "1"},
        {"_index": "a", "_id": "404"},
        {"_index": "nope", "_id": "1"}
    ]});
    let got = server.send(Method::POST, "/_mget", &docs)?;
    assert_eq!(got.status, 200, "{got:?}");
    let got = got.json();
    assert_eq!(got["docs"][0]["_source"], json!({"meta": {"y": 2}}), "{got}");
    assert_eq!(
        (got["docs"][1]["found"].clone(), got["docs"][1]["_source"]["user"].clone()),
        (json!(true), json!("cy"))
    );
    assert_eq!(
        (got["docs"][2]["found"].clone(), got["docs"][2]["_id"].clone()),
        (json!(false), json!("404"))
    );
    assert_eq!(got["docs"][3]["error"]["type"], "index_not_found_exception", "{got}");
    let ids = server.send(Method::GET, "/a/_mget", &json!({"ids": ["2", "1", "3"]}))?.json();
    let found: Vec<bool> =
        ids["docs"].as_array().into_iter().flatten().filter_map(|d| d["found"].as_bool()).collect();
    assert_eq!(found, [true, true, false], "{ids}");
    let no_index = server.send(Method::POST, "/_mget", &json!({"docs": [{"_id": "1"}]}))?;
    assert_eq!(failure(&no_index), (400, "action_request_validation_exception".into()), "{no_index:?}");
    assert_eq!(failure(&server.send(Method::POST, "/_mget", &json!({"ids": ["1"]}))?).0, 400);
    assert_eq!(failure(&server.send(Method::POST, "/_mget", &json!({"docs": []}))?).0, 400);

    let msearch = concat!(
        "{\"index\":\"a\"}\n{\"query\":{\"term\":{\"user\":\"bob\"}}}\n",
        "{}\n{\"query\":{\"match_all\":{}}}\n",
        "{\"index\":\"nope\"}\n{}\n",
        "{\"index\":[\"a\",\"b\"]}\n{\"query\":{\"bogus\":{}}}\n",
    );
    let answer = server.request(Method::POST, "/_msearch", msearch)?;
    assert_eq!(answer.status, 200, "{answer:?}");
    let responses = answer.json()["responses"].clone();
    assert_eq!(responses[0]["hits"]["total"]["value"], 1, "{responses}");
    assert_eq!(responses[0]["status"], 200);
    assert_eq!(responses[1]["hits"]["total"]["value"], 3, "{responses}");
    assert_eq!(
        (responses[2]["status"].clone(), responses[2]["error"]["type"].clone()),
        (json!(404), json!("index_not_found_exception"))
    );
    assert_eq!(responses[3]["status"], 400, "{responses}");
    let scoped = server.request(Method::POST, "/b/_msearch", "{}\n{}\n")?.json();
    assert_eq!(scoped["responses"][0]["hits"]["total"]["value"], 1, "the path's index: {scoped}");
    assert_eq!(
        server.request(Method::POST, "/_msearch", "{\"index\":\"a\"}\n")?.status,
        400,
        "a header without a body"
    );
    Ok(())
}

/// `_mget` and `_msearch` are authorised per item, as OpenSearch's
/// security plugin does: an item on an index the user may not read is an
/// error in its slot (`security_exception`) and never shows the document;
/// nothing readable at all is a 403; a system index anywhere refuses the
/// whole call; every refusal is audited.
#[test]
fn mget_and_msearch_are_authorised_per_item() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let bulk = concat!(
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"1\"}}\n{\"msg\":\"public\"}\n",
        "{\"index\":{\"_index\":\"secret\",\"_id\":\"1\"}}\n{\"msg\":\"TOP-SECRET\"}\n",
    );
    assert_eq!(server.request(Method::POST, "/_bulk", bulk)?.json()["errors"], false);
    let reader = json!({"index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, "/_plugins/_security/api/roles/log_reader", &reader)?.status, 201);
    let user = json!({"password": "Reader-Pass-1", "opendistro_security_roles": ["log_reader"]});
    assert_eq!(server.send(Method::PUT, "/_plugins/_security/api/internalusers/rita", &user)?.status, 201);
    let as_rita = |method: Method, path: &str, body: &str| -> Result<crate::support::Reply, reqwest::Error> {
        let client = reqwest::blocking::Client::new();
        let response = client
            .request(method, server.url(path))
            .basic_auth("rita", Some("Reader-Pass-1"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Ok(crate::support::Reply { status, headers, body: response.text()? })
    };

    let mixed =
        json!({"docs": [{"_index": "logs", "_id": "1"}, {"_index": "secret", "_id": "1"}]}).to_string();
    let got = as_rita(Method::POST, "/_mget", &mixed)?;
    assert_eq!(got.status, 200, "{got:?}");
    assert!(!got.body.contains("TOP-SECRET"), "the refused document leaked: {got:?}");
    let docs = got.json()["docs"].clone();
    assert_eq!(docs[0]["_source"]["msg"], "public", "{docs}");
    assert_eq!(docs[1]["error"]["type"], "security_exception", "{docs}");
    assert!(docs[1]["error"]["reason"].as_str().unwrap_or_default().contains("secret"), "{docs}");
    let only_secret = json!({"docs": [{"_index": "secret", "_id": "1"}]}).to_string();
    let refused = as_rita(Method::POST, "/_mget", &only_secret)?;
    assert_eq!(failure(&refused), (403, "security_exception".into()), "{refused:?}");
    assert!(!refused.body.contains("TOP-SECRET"));
    let refused = as_rita(Method::POST, "/secret/_mget", "{\"ids\":[\"1\"]}")?;
    assert_eq!(refused.status, 403, "{refused:?}");

    // System indices: the whole call is refused, for admins too.
    for who in ["rita", "admin"] {
        let system = json!({"docs": [{"_index": "logs", "_id": "1"}, {"_index": ".warden-security", "_id": "internal_users.yml"}]});
        let reply = if who == "admin" {
            server.send(Method::POST, "/_mget", &system)?
        } else {
            as_rita(Method::POST, "/_mget", &system.to_string())?
        };
        assert_eq!(failure(&reply), (403, "security_exception".into()), "{who}: {reply:?}");
        assert!(!reply.body.contains("public") && !reply.body.contains("hash"), "{who}: {reply:?}");
        let msearch = "{\"index\":\"logs\"}\n{}\n{\"index\":\".warden-security\"}\n{}\n";
        let reply = if who == "admin" {
            server.request(Method::POST, "/_msearch", msearch)?
        } else {
            as_rita(Method::POST, "/_msearch", msearch)?
        };
        assert_eq!(failure(&reply), (403, "security_exception".into()), "{who}: {reply:?}");
        let reply =
            server.request(Method::POST, "/.warden-security/_mget", "{\"ids\":[\"internal_users.yml\"]}")?;
        assert_eq!(reply.status, 403, "{reply:?}");
    }
    // Every other form of the new paths keeps the system indices shut.
    for (method, path, body) in [
        (Method::GET, "/.warden-security/_source/internal_users.yml", ""),
        (Method::HEAD, "/.warden-security/_source/internal_users.yml", ""),
        (Method::POST, "/.warden*/_msearch", "{}\n{}\n"),
        (Method::POST, "/_msearch", "{\"index\":[\"logs\",\".warden-tokens\"]}\n{}\n"),
        (Method::POST, "/_msearch", "{\"index\":\".ext-any\"}\n{}\n"),
        (Method::POST, "/_mget", "{\"docs\":[{\"_index\":\".ext-any_state\",\"_id\":\"1\"}]}"),
        (Method::POST, "/.warden-tokens/_update/keys", "{\"doc\":{},\"doc_as_upsert\":true}"),
    ] {
        let reply = server.request(method.clone(), path, body)?;
        assert_eq!(reply.status, 403, "{method} {path}: {reply:?}");
        assert!(
            !reply.body.contains("hash") && !reply.body.contains("\"keys\""),
            "{method} {path}: {reply:?}"
        );
    }

    let msearch = "{\"index\":\"logs\"}\n{}\n{\"index\":\"secret\"}\n{}\n{\"index\":\"*\"}\n{}\n";
    let answer = as_rita(Method::POST, "/_msearch", msearch)?;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(!answer.body.contains("TOP-SECRET"), "{answer:?}");
    let responses = answer.json()["responses"].clone();
    assert_eq!(responses[0]["hits"]["total"]["value"], 1, "{responses}");
    assert_eq!(
        (responses[1]["status"].clone(), responses[1]["error"]["type"].clone()),
        (json!(403), json!("security_exception"))
    );
    assert_eq!(
        responses[2]["hits"]["total"]["value"], 1,
        "a wildcard expands to what she may read: {responses}"
    );
    let refused = as_rita(Method::POST, "/_msearch", "{\"index\":\"secret\"}\n{}\n")?;
    assert_eq!(refused.status, 403, "{refused:?}");

    let audit = server.get("/_warden/audit?category=MISSING_PRIVILEGES&size=100")?.json();
    let refusals: Vec<String> = audit["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["user"] == "rita")
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(refusals.iter().any(|a| a == "indices:data/read/mget"), "{refusals:?}");
    assert!(refusals.iter().any(|a| a == "indices:data/read/msearch"), "{refusals:?}");
    Ok(())
}

/// Scroll and point-in-time contexts: `helpers.scan`'s calls page through
/// every hit exactly once; a context belongs to the caller that opened it
/// (another user's use of its id is refused, their clear frees nothing);
/// every page is authorised again (a revoked role stops the scroll); a
/// forged id is a 400/404, never a 500; contexts are capped per caller.
#[test]
fn scroll_and_pit_contexts_belong_to_their_caller_and_are_authorised_at_every_page() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let mut bulk = String::new();
    for n in 0..25 {
        bulk.push_str(&format!("{{\"index\":{{\"_index\":\"logs\",\"_id\":\"d{n:02}\"}}}}\n{{\"n\":{n}}}\n"));
    }
    bulk.push_str("{\"index\":{\"_index\":\"secret\",\"_id\":\"s\"}}\n{\"n\":0}\n");
    assert_eq!(server.request(Method::POST, "/_bulk?refresh=true", &bulk)?.json()["errors"], false);
    let api = crate::support::API;
    let reader = json!({"index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, &format!("{api}/roles/logs_reader"), &reader)?.status, 201);
    for user in ["ana", "bob"] {
        let password = json!({"password": format!("{user}-Password-1")});
        assert_eq!(server.send(Method::PUT, &format!("{api}/internalusers/{user}"), &password)?.status, 201);
    }
    let mapping = json!({"users": ["ana", "bob"]});
    assert_eq!(server.send(Method::PUT, &format!("{api}/rolesmapping/logs_reader"), &mapping)?.status, 201);
    let as_user = |user: &str, method: Method, path: &str, body: serde_json::Value| {
        server.send_as(user, &format!("{user}-Password-1"), method, path, &body)
    };
    let ids = |reply: &crate::support::Reply| -> Vec<String> {
        reply.json()["hits"]["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["_id"].as_str().map(str::to_owned))
            .collect()
    };

    // Ana scans `logs` as opensearch-py's helpers.scan does.
    let first = as_user(
        "ana",
        Method::POST,
        "/logs/_search?scroll=1m&size=10",
        json!({"query": {"match_all": {}}, "sort": ["_doc"]}),
    )?;
    assert_eq!(first.status, 200, "{first:?}");
    let scroll_id = first.json()["_scroll_id"].as_str().unwrap_or_default().to_owned();
    assert!(!scroll_id.is_empty(), "{first:?}");
    let mut seen = ids(&first);
    assert_eq!(seen.len(), 10);

    // Bob cannot use it, nor free it; nothing of it moves.
    let stolen =
        as_user("bob", Method::POST, "/_search/scroll", json!({"scroll_id": scroll_id, "scroll": "1m"}))?;
    assert_eq!(stolen.status, 403, "{stolen:?}");
    assert_eq!(stolen.json()["error"]["type"], "security_exception", "{stolen:?}");
    let freed = as_user("bob", Method::DELETE, "/_search/scroll", json!({"scroll_id": [scroll_id]}))?;
    assert_eq!((freed.status, freed.json()["num_freed"].clone()), (404, json!(0)), "{freed:?}");
    let freed = as_user("bob", Method::DELETE, "/_search/scroll/_all", json!(null))?;
    assert_eq!(freed.json()["num_freed"], 0, "{freed:?}");
    // Ana goes on where she was: the body form, the URL form.
    let page =
        as_user("ana", Method::POST, "/_search/scroll", json!({"scroll_id": scroll_id, "scroll": "1m"}))?;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.json()["hits"]["total"]["value"], 25);
    seen.extend(ids(&page));
    let page = as_user(
        "ana",
        Method::GET,
        &format!("/_search/scroll?scroll=1m&scroll_id={scroll_id}"),
        json!(null),
    )?;
    seen.extend(ids(&page));
    let last = as_user("ana", Method::POST, "/_search/scroll", json!({"scroll_id": scroll_id}))?;
    assert_eq!(ids(&last), Vec::<String>::new(), "{last:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((seen.len(), sorted.len()), (25, 25), "every hit exactly once: {seen:?}");
    let cleared = as_user("ana", Method::DELETE, "/_search/scroll", json!({"scroll_id": scroll_id}))?;
    assert_eq!((cleared.status, cleared.json()["num_freed"].clone()), (200, json!(1)), "{cleared:?}");
    let gone = as_user("ana", Method::POST, "/_search/scroll", json!({"scroll_id": scroll_id}))?;
    assert_eq!(gone.status, 404, "{gone:?}");
    assert_eq!(gone.json()["error"]["type"], "search_context_missing_exception");

    // Forged and tampered ids: a clear 4xx.
    for forged in
        ["garbage", "", &scroll_id[..scroll_id.len() - 1], &format!("{}A", &scroll_id[..scroll_id.len() - 1])]
    {
        let reply = as_user("ana", Method::POST, "/_search/scroll", json!({"scroll_id": forged}))?;
        assert!(matches!(reply.status, 400 | 404), "{forged}: {reply:?}");
    }
    let missing = as_user("ana", Method::POST, "/_search/scroll", json!({}))?;
    assert_eq!(missing.status, 400, "{missing:?}");

    // No scroll on an index one may not search; no keep-alive past a day.
    assert_eq!(as_user("ana", Method::POST, "/secret/_search?scroll=1m", json!({}))?.status, 403);
    assert_eq!(as_user("ana", Method::POST, "/logs/_search?scroll=2d", json!({}))?.status, 400);
    assert_eq!(as_user("ana", Method::POST, "/logs/_search?scroll=1m", json!({"size": 0}))?.status, 400);

    // A revoked role stops a scroll at its next page.
    let open = as_user("ana", Method::POST, "/logs/_search?scroll=1m&size=5", json!({}))?;
    let open_id = open.json()["_scroll_id"].as_str().unwrap_or_default().to_owned();
    let bobs = as_user("bob", Method::POST, "/logs/_search?scroll=1m&size=5", json!({}))?;
    let bobs_id = bobs.json()["_scroll_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        server
            .send(Method::PUT, &format!("{api}/rolesmapping/logs_reader"), &json!({"users": ["bob"]}))?
            .status,
        200
    );
    let revoked = as_user("ana", Method::POST, "/_search/scroll", json!({"scroll_id": open_id}))?;
    assert_eq!(revoked.status, 403, "{revoked:?}");
    // Ana's `_all` frees only her own: Bob's goes on.
    assert_eq!(as_user("ana", Method::DELETE, "/_search/scroll/_all", json!(null))?.json()["num_freed"], 1);
    assert_eq!(
        ids(&as_user("bob", Method::POST, "/_search/scroll", json!({"scroll_id": bobs_id}))?).len(),
        5
    );

    // Point in time: Bob pages with search_after; Ana cannot use his PIT.
    let pit = as_user("bob", Method::POST, "/logs/_search/point_in_time?keep_alive=1m", json!(null))?;
    assert_eq!(pit.status, 200, "{pit:?}");
    let pit_id = pit.json()["pit_id"].as_str().unwrap_or_default().to_owned();
    assert!(pit.json()["creation_time"].is_u64(), "{pit:?}");
    let mut after = serde_json::Value::Null;
    let mut paged = Vec::new();
    loop {
        let mut body =
            json!({"size": 10, "pit": {"id": pit_id, "keep_alive": "1m"}, "sort": [{"n": "desc"}]});
        if !after.is_null() {
            body["search_after"] = after.clone();
        }
        let page = as_user("bob", Method::POST, "/_search", body)?;
        assert_eq!(page.status, 200, "{page:?}");
        assert_eq!(page.json()["pit_id"], pit_id.as_str());
        let hits = page.json()["hits"]["hits"].as_array().cloned().unwrap_or_default();
        let Some(last) = hits.last() else { break };
        after = last["sort"].clone();
        paged.extend(ids(&page));
        assert!(paged.len() <= 25, "{paged:?}");
    }
    let want: Vec<String> = (0..25).rev().map(|n| format!("d{n:02}")).collect();
    assert_eq!(paged, want);
    let body = json!({"pit": {"id": pit_id}});
    assert_eq!(as_user("ana", Method::POST, "/_search", body.clone())?.status, 403);
    assert_eq!(as_user("bob", Method::POST, "/logs/_search", body.clone())?.status, 400);
    let listed = as_user("bob", Method::GET, "/_search/point_in_time/_all", json!(null))?;
    assert_eq!(listed.json()["pits"].as_array().map(Vec::len), Some(1), "{listed:?}");
    assert_eq!(
        as_user("ana", Method::GET, "/_search/point_in_time/_all", json!(null))?.json()["pits"],
        json!([])
    );
    let theirs = as_user("ana", Method::DELETE, "/_search/point_in_time", json!({"pit_id": [pit_id]}))?;
    assert_eq!(theirs.status, 404, "{theirs:?}");
    let mine = as_user("bob", Method::DELETE, "/_search/point_in_time", json!({"pit_id": [pit_id]}))?;
    assert_eq!(mine.json()["pits"], json!([{"pit_id": pit_id, "successful": true}]), "{mine:?}");
    assert_eq!(as_user("bob", Method::POST, "/_search", body)?.status, 404);

    // A context over an expression that comes to no index pages nothing;
    // aggregations come with the first page only.
    let none = as_user("bob", Method::POST, "/nomatch*/_search?scroll=1m", json!({}))?;
    assert_eq!(none.status, 200, "{none:?}");
    let none_id = none.json()["_scroll_id"].as_str().unwrap_or_default().to_owned();
    let empty = as_user("bob", Method::POST, "/_search/scroll", json!({"scroll_id": none_id}))?;
    assert_eq!((empty.status, ids(&empty).len()), (200, 0), "{empty:?}");
    let pit = as_user("bob", Method::POST, "/nomatch*/_search/point_in_time?keep_alive=1m", json!(null))?;
    let empty_pit = json!({"pit": {"id": pit.json()["pit_id"]}});
    let empty = as_user("bob", Method::POST, "/_search", empty_pit)?;
    assert_eq!((empty.status, ids(&empty).len()), (200, 0), "{empty:?}");
    let aggs = json!({"size": 10, "aggs": {"top": {"max": {"field": "n"}}}});
    let first = as_user("bob", Method::POST, "/logs/_search?scroll=1m", aggs)?;
    assert_eq!(first.json()["aggregations"]["top"]["value"], 24.0, "{first:?}");
    let next = json!({"scroll_id": first.json()["_scroll_id"]});
    let second = as_user("bob", Method::POST, "/_search/scroll", next)?;
    assert!(second.json().get("aggregations").is_none() && ids(&second).len() == 10, "{second:?}");
    for done in [none_id.as_str(), first.json()["_scroll_id"].as_str().unwrap_or_default()] {
        assert_eq!(
            as_user("bob", Method::DELETE, &format!("/_search/scroll/{done}"), json!(null))?.status,
            200
        );
    }
    let pit_id = pit.json()["pit_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        as_user("bob", Method::DELETE, "/_search/point_in_time", json!({"pit_id": pit_id}))?.status,
        200
    );

    // At most 100 open contexts per caller.
    for n in 0..99 {
        let reply = as_user("bob", Method::POST, "/logs/_search?scroll=1m&size=1", json!({}))?;
        assert_eq!(reply.status, 200, "scroll {n}: {reply:?}");
    }
    let over = as_user("bob", Method::POST, "/logs/_search?scroll=1m&size=1", json!({}))?;
    assert_eq!(over.status, 429, "{over:?}");
    assert_eq!(as_user("bob", Method::DELETE, "/_search/scroll/_all", json!(null))?.json()["num_freed"], 100);
    assert_eq!(as_user("bob", Method::POST, "/logs/_search?scroll=1m&size=1", json!({}))?.status, 200);
    Ok(())
}

/// Index expressions as OpenSearch resolves them — `_all`, `*`, comma
/// lists, `-exclusions` after a wildcard, `expand_wildcards`,
/// `ignore_unavailable`, `allow_no_indices` — and their authorization, as
/// a table: who, what request, the status, and which indices the hits come
/// from. The system-index refusal holds for every form, admins included.
#[test]
fn index_expressions_resolve_and_authorise_as_opensearch_does() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let bulk = ["logs-a", "logs-b", "other"]
        .iter()
        .map(|i| format!("{{\"index\":{{\"_index\":\"{i}\",\"_id\":\"1\"}}}}\n{{\"n\":1}}\n"))
        .collect::<String>();
    assert_eq!(server.request(Method::POST, "/_bulk?refresh=true", &bulk)?.json()["errors"], false);
    let api = crate::support::API;
    let reader = json!({"index_permissions": [{"index_patterns": ["logs-*"], "allowed_actions": ["read"]}]});
    assert_eq!(server.send(Method::PUT, &format!("{api}/roles/logs_reader"), &reader)?.status, 201);
    assert_eq!(
        server
            .send(Method::PUT, &format!("{api}/internalusers/ana"), &json!({"password": "Ana-Password-1"}))?
            .status,
        201
    );
    assert_eq!(
        server
            .send(Method::PUT, &format!("{api}/rolesmapping/logs_reader"), &json!({"users": ["ana"]}))?
            .status,
        201
    );

    type Row = (&'static str, &'static str, u16, &'static [&'static str]);
    let everything: &[&str] = &["logs-a", "logs-b", "other"];
    let logs: &[&str] = &["logs-a", "logs-b"];
    let rows: &[Row] = &[
        ("admin", "/_all/_search", 200, everything),
        ("admin", "/*/_search", 200, everything),
        ("admin", "/_search", 200, everything),
        ("admin", "/logs-a,other/_search", 200, &["logs-a", "other"]),
        ("admin", "/*,-logs-a/_search", 200, &["logs-b", "other"]),
        ("admin", "/*,-logs-*/_search", 200, &["other"]),
        ("admin", "/_all,-other/_search", 200, logs),
        ("admin", "/*,-logs-*,logs-b/_search", 200, &["logs-b", "other"]),
        ("admin", "/-logs-a/_search", 400, &[]),
        ("admin", "/*/_search?expand_wildcards=none", 200, &[]),
        ("admin", "/*/_search?expand_wildcards=closed", 200, &[]),
        ("admin", "/*/_search?expand_wildcards=open,hidden", 200, everything),
        ("admin", "/*/_search?expand_wildcards=all", 200, everything),
        ("admin", "/*/_search?expand_wildcards=bogus", 400, &[]),
        ("admin", "/*/_search?expand_wildcards=none&allow_no_indices=false", 404, &[]),
        ("admin", "/nomatch*/_search", 200, &[]),
        ("admin", "/nomatch*/_search?allow_no_indices=false", 404, &[]),
        ("admin", "/logs-a,missing/_search", 404, &[]),
        ("admin", "/logs-a,missing/_search?ignore_unavailable=true", 200, &["logs-a"]),
        ("ana", "/logs-*/_search", 200, logs),
        ("ana", "/*/_search", 200, logs),
        ("ana", "/_all/_search", 200, logs),
        ("ana", "/*,-logs-b/_search", 200, &["logs-a"]),
        ("ana", "/other/_search", 403, &[]),
        ("ana", "/logs-a,other/_search", 403, &[]),
        ("ana", "/*,-logs-*/_search", 200, &[]),
        ("ana", "/*,-logs-*/_search?allow_no_indices=false", 404, &[]),
        ("ana", "/other/_search?ignore_unavailable=true", 403, &[]),
        // System indices, every form, for admins too.
        ("admin", "/.warden-security/_search", 403, &[]),
        ("admin", "/%2Ewarden-security/_search", 403, &[]),
        ("admin", "/.warden*/_search", 403, &[]),
        ("admin", "/logs-a,.warden-security/_search", 403, &[]),
        ("admin", "/*,-logs-*,.warden-security/_search", 403, &[]),
        ("admin", "/.warden-security/_search?ignore_unavailable=true", 403, &[]),
        ("admin", "/.w*/_search?expand_wildcards=all", 200, &[]),
        ("admin", "/*/_search?expand_wildcards=hidden", 200, everything),
        ("admin", "/_all/_count", 200, &[]),
        ("admin", "/.ext-probe/_search", 403, &[]),
        ("admin", "/.e*/_search", 200, &[]),
        ("admin", "/.warden-security/_search/point_in_time?keep_alive=1m", 403, &[]),
        ("admin", "/.warden*/_search?scroll=1m", 403, &[]),
        ("ana", "/.warden-security/_search", 403, &[]),
        ("ana", "/*,.warden-security/_search", 403, &[]),
    ];
    for (user, path, status, visible) in rows {
        let reply = match *user {
            "admin" => server.send(Method::POST, path, &json!({}))?,
            other => server.send_as(other, "Ana-Password-1", Method::POST, path, &json!({}))?,
        };
        assert_eq!(reply.status, *status, "{user} {path}: {reply:?}");
        if reply.status == 200 && reply.json()["hits"].is_object() {
            let mut seen: Vec<String> = reply.json()["hits"]["hits"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h["_index"].as_str().map(str::to_owned))
                .collect();
            seen.sort();
            seen.dedup();
            assert_eq!(seen, *visible, "{user} {path}: {reply:?}");
        }
        if path.ends_with("_count") {
            assert_eq!(reply.json()["count"], 3, "{path}: system documents are never counted: {reply:?}");
        }
    }
    Ok(())
}

/// A scroll opened by an extension for a user is the extension's and that
/// user's: the same user over REST, another extension acting for the same
/// user, and the extension's service identity are all refused its id; the
/// extension itself goes on, and a system index never enters a scroll.
#[test]
fn an_extensions_scroll_is_refused_to_the_user_and_to_other_extensions() -> TestResult {
    use warden_test_artifacts::GUEST_HOST_CALLS;
    let deployment = Deployment::new()?;
    for id in ["probe", "other"] {
        deployment.install(id, GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
    }
    let server = deployment.start()?;
    let mut bulk = String::new();
    for n in 0..6 {
        bulk.push_str(&format!("{{\"index\":{{\"_index\":\"shared\",\"_id\":\"d{n}\"}}}}\n{{\"n\":{n}}}\n"));
    }
    assert_eq!(server.request(Method::POST, "/_bulk?refresh=true", &bulk)?.json()["errors"], false);
    let api = crate::support::API;
    let policy = json!({"index_permissions": [{"index_patterns": ["shared"], "allowed_actions": ["read"]}]});
    for id in ["probe", "other"] {
        assert_eq!(server.send(Method::PUT, &format!("{api}/roles/extension:{id}"), &policy)?.status, 201);
    }
    let call =
        |extension: &str, spec: serde_json::Value| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
            let reply = server.send(Method::POST, &format!("/_extensions/{extension}/call"), &spec)?;
            assert_eq!(reply.status, 200, "{reply:?}");
            Ok(reply.json())
        };
    let user = |method: &str, path: &str, body: serde_json::Value| json!({"method": method, "path": path, "body": body, "identity": "user"});
    let opened = call("probe", user("POST", "/shared/_search?scroll=1m&size=2", json!({})))?;
    assert_eq!(opened["status"], 200, "{opened}");
    let id = opened["body"]["_scroll_id"].as_str().unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "{opened}");
    let next = json!({"scroll_id": id});
    // The same user, over REST: refused.
    assert_eq!(server.send(Method::POST, "/_search/scroll", &next)?.status, 403);
    // Another extension acting for the same user: refused.
    let stolen = call("other", user("POST", "/_search/scroll", next.clone()))?;
    assert_eq!(stolen["kind"], "denied", "{stolen}");
    // The extension's service identity: refused.
    let service = call(
        "probe",
        json!({"method": "POST", "path": "/_search/scroll", "body": next, "identity": "service"}),
    )?;
    assert_eq!(service["kind"], "denied", "{service}");
    // Nor can they free it; the extension itself goes on from where it was.
    let freed = call("other", user("DELETE", "/_search/scroll/_all", serde_json::Value::Null))?;
    assert_eq!(freed["body"]["num_freed"], 0, "{freed}");
    let page = call("probe", user("POST", "/_search/scroll", json!({"scroll_id": id})))?;
    assert_eq!(page["status"], 200, "{page}");
    let ids: Vec<&str> = page["body"]["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["_id"].as_str())
        .collect();
    assert_eq!(ids, ["d2", "d3"], "{page}");
    // A system index never enters one.
    let system = call("probe", user("POST", "/.warden-security/_search?scroll=1m", json!({})))?;
    assert_eq!(system["kind"], "denied", "{system}");
    Ok(())
}
