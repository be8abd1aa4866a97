//! Single documents: index (create or replace), get, delete and partial
//! update. A document is stored as `{"v": <version>, "s": <source>}`; the
//! store's `seq_no`/`primary_term` are OpenSearch's, so `if_seq_no` and
//! `if_primary_term` become the store's compare-and-set ([`Expect`]).

use serde_json::{Value, json};

use super::indices::docs;
use super::{Embedded, json_body, not_an_object};
use crate::cluster::backend::{OpType, Refresh, VersionType};
use crate::cluster::{Params, Reply};
use crate::store::{Expect, StoreError, Versioned, Write};

/// `_shards` of a write on one node: no replica to wait for.
pub(super) fn shards(total: u64) -> Value {
    json!({ "total": total, "successful": total, "failed": 0 })
}

/// OpenSearch's 409.
pub(super) fn version_conflict(index: &str, id: &str, why: &str) -> Reply {
    Reply::error(409, "version_conflict_engine_exception", format!("[{id}]: version conflict, {why}"))
        .with_index(index)
}

/// OpenSearch's 400 for a request that contradicts itself.
pub(super) fn validation(reason: &str) -> Reply {
    Reply::error(400, "action_request_validation_exception", format!("Validation Failed: 1: {reason};"))
}

/// The conditions a write puts on the document it replaces, from its
/// options: create only, `if_seq_no`/`if_primary_term`, an external version.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Condition {
    pub create: bool,
    pub seq: Option<(u64, u64)>,
    pub version: Option<(u64, VersionType)>,
}

impl Condition {
    /// From a call's query string; an invalid combination is OpenSearch's 400.
    pub fn of(params: &Params, create: bool) -> Result<Condition, Reply> {
        let create = create || params.op_type == Some(OpType::Create);
        let seq = params.if_seq_no.zip(params.if_primary_term);
        let version = params.version.map(|v| (v, params.version_type));
        Condition::checked(create, seq, version)
    }

    pub fn checked(
        create: bool,
        seq: Option<(u64, u64)>,
        version: Option<(u64, VersionType)>,
    ) -> Result<Condition, Reply> {
        if create && seq.is_some() {
            return Err(validation("create operations do not support compare and set. use index instead"));
        }
        if let Some((_, kind)) = version {
            if kind == VersionType::Internal {
                return Err(validation(
                    "internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead",
                ));
            }
            if create {
                return Err(validation(
                    "create operations only support internal versioning. use index instead",
                ));
            }
            if seq.is_some() {
                return Err(validation("compare and write operations can not be used with versioning"));
            }
        }
        Ok(Condition { create, seq, version })
    }

    /// Whether the write may replace `current` (its version, seq_no and
    /// primary term); the reason of the 409 otherwise. Returns the version
    /// the write gets.
    pub fn check(&self, current: Option<(u64, &Versioned)>) -> Result<u64, String> {
        if self.create
            && let Some((v, _)) = current
        {
            return Err(format!("document already exists (current version [{v}])"));
        }
        if let Some((seq_no, term)) = self.seq {
            match current {
                None => {
                    return Err(format!(
                        "required seqNo [{seq_no}], primary term [{term}] but no document was found"
                    ));
                }
                Some((_, doc)) if doc.seq_no != seq_no || doc.primary_term != term => {
                    return Err(format!(
                        "required seqNo [{seq_no}], primary term [{term}]. current document has seqNo [{}] and primary term [{}]",
                        doc.seq_no, doc.primary_term
                    ));
                }
                Some(_) => {}
            }
        }
        match (self.version, current) {
            (Some((given, VersionType::External)), Some((v, _))) if given <= v => {
                Err(format!("current version [{v}] is higher or equal to the one provided [{given}]"))
            }
            (Some((given, VersionType::ExternalGte)), Some((v, _))) if given < v => {
                Err(format!("current version [{v}] is higher than the one provided [{given}]"))
            }
            (Some((given, _)), _) => Ok(given),
            (None, current) => Ok(current.map_or(0, |(v, _)| v) + 1),
        }
    }
}

/// A stored document: `{"v": version, "s": source}`.
pub(super) fn version_of(doc: &Versioned) -> u64 {
    serde_json::from_slice::<Value>(&doc.source).ok().and_then(|v| v["v"].as_u64()).unwrap_or(0)
}

pub(super) fn source_of(doc: &Versioned) -> Value {
    let mut stored: Value = serde_json::from_slice(&doc.source).unwrap_or(Value::Null);
    stored.get_mut("s").map(Value::take).unwrap_or(Value::Null)
}

/// Adds `forced_refresh` as OpenSearch reports a `refresh=true` write.
fn refreshed(mut reply: Reply, refresh: Refresh) -> Reply {
    if refresh == Refresh::True
        && reply.status < 300
        && let Some(body) = reply.body.as_object_mut()
    {
        body.insert("forced_refresh".into(), json!(true));
    }
    reply
}

impl Embedded {
    /// `PUT /<index>/_doc/<id>`, `POST /<index>/_doc`, `_create`: the body
    /// is the whole document; an id is generated when none is given.
    pub(super) fn put_doc(
        &self,
        index: &str,
        id: Option<&str>,
        create_only: bool,
        params: &Params,
        body: Option<&[u8]>,
    ) -> Result<Reply, StoreError> {
        let source = match json_body(body) {
            Ok(v) if v.is_object() => v,
            Ok(_) => return Ok(not_an_object("the document")),
            Err(r) => return Ok(r),
        };
        let condition = match Condition::of(params, create_only) {
            Ok(c) => c,
            Err(r) => return Ok(r),
        };
        let id = match id {
            Some(id) => id.to_owned(),
            None => super::ids::generated_id(),
        };
        Ok(refreshed(self.index_doc(index, &id, source, condition)?, params.refresh))
    }

    /// Writes `source` as the next version of `index`/`id`, if `condition`
    /// holds. The write is a compare-and-set over what was read, so no
    /// concurrent write slips between the check and the write.
    pub(super) fn index_doc(
        &self,
        index: &str,
        id: &str,
        source: Value,
        condition: Condition,
    ) -> Result<Reply, StoreError> {
        self.ensure_indices(&[index])?;
        let store_index = docs(index);
        let previous = self.store.get(&store_index, id)?;
        let version = match condition.check(previous.as_ref().map(|p| (version_of(p), p))) {
            Ok(v) => v,
            Err(why) => return Ok(version_conflict(index, id, &why)),
        };
        let expect = match &previous {
            Some(p) => Expect::Version { seq_no: p.seq_no, primary_term: p.primary_term },
            None => Expect::Absent,
        };
        let stored = json!({ "v": version, "s": source });
        let written = self.write(&[Write {
            index: &store_index,
            id,
            source: Some(stored.to_string().into_bytes()),
            expect,
        }]);
        let v = match written {
            Ok(mut v) => v.remove(0),
            Err(StoreError::Conflict { .. }) => {
                return Ok(version_conflict(index, id, "the document changed while it was written"));
            }
            Err(e) => return Err(e),
        };
        let (status, result) = if previous.is_some() { (200, "updated") } else { (201, "created") };
        Ok(Reply::new(
            status,
            json!({ "_index": index, "_id": id, "_version": version, "result": result, "_shards": shards(1), "_seq_no": v.seq_no, "_primary_term": v.primary_term }),
        ))
    }

    /// The stored document, or the reply for a missing index.
    fn current(&self, index: &str, id: &str) -> Result<Result<Option<Versioned>, Reply>, StoreError> {
        if let Some(missing) = self.first_missing(&[index.to_owned()])? {
            return Ok(Err(missing));
        }
        Ok(Ok(self.store.get(&docs(index), id)?))
    }

    /// `GET /<index>/_doc/<id>`: `version` (internal: must equal the
    /// stored one) and `_source` filtering honoured.
    pub(super) fn get_doc(&self, index: &str, id: &str, params: &Params) -> Result<Reply, StoreError> {
        let doc = match self.current(index, id)? {
            Ok(doc) => doc,
            Err(missing) => return Ok(missing),
        };
        Ok(match doc {
            Some(doc) => {
                let version = version_of(&doc);
                if let Some(given) = params.version
                    && given != version
                {
                    return Ok(version_conflict(
                        index,
                        id,
                        &format!("current version [{version}] is different than the one provided [{given}]"),
                    ));
                }
                let mut body = json!({ "_index": index, "_id": id, "_version": version, "_seq_no": doc.seq_no, "_primary_term": doc.primary_term, "found": true });
                let source = source_of(&doc);
                let shown = match &params.source {
                    Some(filter) => filter.apply(&source),
                    None => Some(source),
                };
                if let (Some(shown), Some(b)) = (shown, body.as_object_mut()) {
                    b.insert("_source".into(), shown);
                }
                Reply::new(200, body)
            }
            None => Reply::new(404, json!({ "_index": index, "_id": id, "found": false })),
        })
    }

    /// `GET /<index>/_source/<id>`: the source alone (filtered as asked).
    pub(super) fn get_source(&self, index: &str, id: &str, params: &Params) -> Result<Reply, StoreError> {
        let doc = match self.current(index, id)? {
            Ok(doc) => doc,
            Err(missing) => return Ok(missing),
        };
        let not_found = || {
            Reply::error(404, "resource_not_found_exception", format!("Document not found [{index}]/[{id}]"))
        };
        let Some(doc) = doc else { return Ok(not_found()) };
        let filter = params.source.clone().unwrap_or_default();
        if filter.disabled {
            return Ok(not_found());
        }
        Ok(Reply::new(200, filter.apply(&source_of(&doc)).unwrap_or(Value::Null)))
    }

    /// `DELETE /<index>/_doc/<id>`, compare-and-set (or externally
    /// versioned) when asked.
    pub(super) fn delete_doc(&self, index: &str, id: &str, params: &Params) -> Result<Reply, StoreError> {
        let condition = match Condition::of(params, false) {
            Ok(c) => c,
            Err(r) => return Ok(r),
        };
        let current = match self.current(index, id)? {
            Ok(current) => current,
            Err(missing) => return Ok(missing),
        };
        let version = match condition.check(current.as_ref().map(|p| (version_of(p), p))) {
            Ok(v) => v,
            Err(why) => return Ok(version_conflict(index, id, &why)),
        };
        let Some(current) = current else {
            return Ok(Reply::new(
                404,
                json!({ "_index": index, "_id": id, "_version": version, "result": "not_found", "_shards": shards(1) }),
            ));
        };
        let expect = Expect::Version { seq_no: current.seq_no, primary_term: current.primary_term };
        let v = match self.write(&[Write { index: &docs(index), id, source: None, expect }]) {
            Ok(mut v) => v.remove(0),
            Err(StoreError::Conflict { .. }) => {
                return Ok(version_conflict(index, id, "the document changed while it was deleted"));
            }
            Err(e) => return Err(e),
        };
        Ok(refreshed(
            Reply::new(
                200,
                json!({ "_index": index, "_id": id, "_version": version, "result": "deleted", "_shards": shards(1), "_seq_no": v.seq_no, "_primary_term": v.primary_term }),
            ),
            params.refresh,
        ))
    }

    /// `POST /<index>/_update/<id>`: a partial `doc` merged into the
    /// current source (`detect_noop`: an update that changes nothing
    /// writes nothing), or — the document missing — `upsert` or, with
    /// `doc_as_upsert`, the `doc` itself created. Written only over the
    /// version it was read at (and `if_seq_no`/`if_primary_term`).
    pub(super) fn update_doc(
        &self,
        index: &str,
        id: &str,
        params: &Params,
        body: Option<&[u8]>,
    ) -> Result<Reply, StoreError> {
        let update = match json_body(body) {
            Ok(v) if v.is_object() => v,
            Ok(_) => return Ok(not_an_object("the update")),
            Err(r) => return Ok(r),
        };
        if let Some(unknown) =
            update.as_object().and_then(|o| o.keys().find(|k| !UPDATE_FIELDS.contains(&k.as_str())))
        {
            let hint = UPDATE_FIELDS
                .iter()
                .find(|known| close(known, unknown))
                .map(|known| format!(" did you mean [{known}]?"))
                .unwrap_or_default();
            return Ok(Reply::error(
                400,
                "x_content_parse_exception",
                format!(
                    "[UpdateRequest] unknown field [{unknown}]{hint} (an update needs `doc`, a JSON object; scripts are not supported)"
                ),
            ));
        }
        if update.get("script").is_some() {
            return Ok(validation("scripts are not supported: an update needs `doc`, a JSON object"));
        }
        // Only partial documents: without `doc` there is nothing to
        // merge, and merging null would erase the document.
        let doc = match update.get("doc") {
            Some(doc) if doc.is_object() => doc,
            _ => {
                return Ok(validation(
                    "script or doc is missing (an update needs `doc`, a JSON object; scripts are not supported)",
                ));
            }
        };
        if params.version.is_some() {
            return Ok(validation(
                "internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead",
            ));
        }
        let upsert = match update.get("upsert") {
            None | Some(Value::Null) => None,
            Some(u) if u.is_object() => Some(u),
            Some(_) => return Ok(not_an_object("`upsert`")),
        };
        let doc_as_upsert = update.get("doc_as_upsert").and_then(Value::as_bool).unwrap_or(false);
        let detect_noop = update.get("detect_noop").and_then(Value::as_bool).unwrap_or(true);
        let source_filter = match (update.get("_source"), &params.source) {
            (Some(v), _) => SourceFilterChoice::Some(crate::cluster::backend::SourceFilter::from_json(v)),
            (None, Some(f)) => SourceFilterChoice::Some(Some(f.clone())),
            (None, None) => SourceFilterChoice::None,
        };
        let current = self.store.get(&docs(index), id)?;
        let Some(current) = current else {
            let created = match (upsert, doc_as_upsert) {
                (Some(upsert), _) => upsert.clone(),
                (None, true) => doc.clone(),
                (None, false) => {
                    return Ok(Reply::error(
                        404,
                        "document_missing_exception",
                        format!("[{id}]: document missing"),
                    )
                    .with_index(index));
                }
            };
            if params.if_seq_no.is_some() {
                return Ok(Reply::error(
                    404,
                    "document_missing_exception",
                    format!("[{id}]: document missing"),
                )
                .with_index(index));
            }
            let reply = self.index_doc(
                index,
                id,
                created.clone(),
                Condition { create: true, ..Condition::default() },
            )?;
            return Ok(refreshed(with_get(reply, &created, source_filter), params.refresh));
        };
        if let Some((seq_no, term)) = params.if_seq_no.zip(params.if_primary_term)
            && (current.seq_no != seq_no || current.primary_term != term)
        {
            return Ok(version_conflict(
                index,
                id,
                &format!(
                    "required seqNo [{seq_no}], primary term [{term}]. current document has seqNo [{}] and primary term [{}]",
                    current.seq_no, current.primary_term
                ),
            ));
        }
        let before = source_of(&current);
        let mut source = before.clone();
        merge(&mut source, doc);
        if detect_noop && source == before {
            let reply = Reply::new(
                200,
                json!({ "_index": index, "_id": id, "_version": version_of(&current), "result": "noop", "_shards": shards(0), "_seq_no": current.seq_no, "_primary_term": current.primary_term }),
            );
            return Ok(with_get(reply, &source, source_filter));
        }
        let condition =
            Condition { seq: Some((current.seq_no, current.primary_term)), ..Condition::default() };
        let reply = self.index_doc(index, id, source.clone(), condition)?;
        Ok(refreshed(with_get(reply, &source, source_filter), params.refresh))
    }
}

/// The fields an `_update` body may hold (OpenSearch's `UpdateRequest`).
const UPDATE_FIELDS: &[&str] = &[
    "doc",
    "upsert",
    "doc_as_upsert",
    "detect_noop",
    "_source",
    "script",
    "scripted_upsert",
    "if_seq_no",
    "if_primary_term",
];

/// Whether `a` and `b` are one edit apart (or two letters swapped): a
/// misspelling worth a "did you mean".
fn close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            row.push((previous[j] + cost).min(previous[j + 1] + 1).min(row[j] + 1));
        }
        previous = row;
    }
    previous[b.len()] <= 1
}

/// Whether an update asked for the document back (`_source`).
enum SourceFilterChoice {
    None,
    Some(Option<crate::cluster::backend::SourceFilter>),
}

/// An update's answer with `get` (the document as written) when asked.
fn with_get(mut reply: Reply, source: &Value, choice: SourceFilterChoice) -> Reply {
    let SourceFilterChoice::Some(filter) = choice else { return reply };
    if reply.status >= 300 {
        return reply;
    }
    let shown = match filter {
        Some(f) => f.apply(source),
        None => Some(source.clone()),
    };
    let mut get = json!({ "_seq_no": reply.body["_seq_no"], "_primary_term": reply.body["_primary_term"], "found": true });
    if let (Some(shown), Some(g)) = (shown, get.as_object_mut()) {
        g.insert("_source".into(), shown);
    }
    if let Some(body) = reply.body.as_object_mut() {
        body.insert("get".into(), get);
    }
    reply
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::testing::call;
    use super::*;
    use crate::cluster::Backend;
    use crate::cluster::actions::resolve;
    use crate::store::Store;

    #[test]
    fn documents_round_trip_with_versions_and_cas() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let e = Embedded::new(Arc::new(Store::open(&dir.path().join("s.redb"))?), "test")?;
        assert_eq!(call(&e, "PUT", "/logs", None).status, 200);
        assert_eq!(call(&e, "PUT", "/logs", None).status, 400, "exists");
        let created = call(&e, "PUT", "/logs/_doc/1", Some(json!({"msg": "hello world", "n": 5})));
        assert_eq!((created.status, created.body["result"].clone()), (201, json!("created")));
        let (seq, term) = (
            created.body["_seq_no"].as_u64().unwrap_or(0),
            created.body["_primary_term"].as_u64().unwrap_or(0),
        );
        let updated = call(
            &e,
            "PUT",
            &format!("/logs/_doc/1?if_seq_no={seq}&if_primary_term={term}"),
            Some(json!({"msg": "hi", "n": 7})),
        );
        assert_eq!((updated.status, updated.body["_version"].clone()), (200, json!(2)));
        let stale =
            call(&e, "PUT", &format!("/logs/_doc/1?if_seq_no={seq}&if_primary_term={term}"), Some(json!({})));
        assert_eq!(stale.status, 409, "{:?}", stale.body);
        let got = call(&e, "GET", "/logs/_doc/1", None);
        assert_eq!(got.body["_source"], json!({"msg": "hi", "n": 7}));
        assert_eq!(call(&e, "GET", "/logs/_doc/2", None).status, 404);
        let bulk = "{\"index\":{\"_index\":\"logs\",\"_id\":\"2\"}}\n{\"msg\":\"bulk\",\"n\":1}\n{\"delete\":{\"_index\":\"logs\",\"_id\":\"9\"}}\n";
        let request = resolve("POST", "/_bulk", Some(bulk.as_bytes()))?;
        let r = e.execute(&request, &request.indices, &Params::default(), Some(bulk.as_bytes()));
        assert_eq!(r.body["errors"], json!(true), "the delete of a missing doc fails alone");
        assert_eq!(r.body["items"][0]["index"]["status"], json!(201));
        let q = json!({"query": {"bool": {"filter": [{"range": {"n": {"gte": 2}}}], "must_not": [{"term": {"msg": "bulk"}}]}}});
        let found = call(&e, "POST", "/logs/_search", Some(q));
        assert_eq!(found.body["hits"]["total"]["value"], json!(1), "{:?}", found.body);
        assert_eq!(
            call(&e, "POST", "/logs/_count", Some(json!({"query": {"match_all": {}}}))).body["count"],
            json!(2)
        );
        assert_eq!(call(&e, "POST", "/logs/_search", Some(json!({"query": {"nope": {}}}))).status, 400);
        let sorted = call(
            &e,
            "POST",
            "/logs/_search",
            Some(json!({"sort": [{"n": {"order": "desc"}}], "aggs": {"top": {"max": {"field": "n"}}}})),
        );
        assert_eq!(sorted.body["hits"]["hits"][0]["_id"], json!("1"), "{:?}", sorted.body);
        assert_eq!(sorted.body["aggregations"]["top"]["value"], json!(7.0));
        assert_eq!(call(&e, "DELETE", "/logs/_doc/2", None).body["result"], json!("deleted"));
        assert_eq!(call(&e, "DELETE", "/logs", None).status, 200);
        assert_eq!(call(&e, "GET", "/logs", None).status, 404);
        Ok(())
    }
}
