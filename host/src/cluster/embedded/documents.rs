//! Single documents: index (create or replace), get, delete and partial
//! update. A document is stored as `{"v": <version>, "s": <source>}`; the
//! store's `seq_no`/`primary_term` are OpenSearch's, so `if_seq_no` and
//! `if_primary_term` become the store's compare-and-set ([`Expect`]).

use serde_json::{Value, json};

use super::indices::docs;
use super::{Embedded, json_body, not_an_object};
use crate::cluster::{Params, Reply};
use crate::store::{Expect, StoreError, Write};

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
        let id = match id {
            Some(id) => id.to_owned(),
            None => super::ids::generated_id(),
        };
        let expect = match (params.if_seq_no, params.if_primary_term, create_only) {
            (_, _, true) => Expect::Absent,
            (Some(seq_no), Some(primary_term), _) => Expect::Version { seq_no, primary_term },
            _ => Expect::Any,
        };
        self.index_doc(index, &id, source, expect)
    }

    /// Writes `source` as the next version of `index`/`id`, if `expect` holds.
    fn index_doc(&self, index: &str, id: &str, source: Value, expect: Expect) -> Result<Reply, StoreError> {
        self.ensure_indices(&[index])?;
        let store_index = docs(index);
        let previous = self.store.get(&store_index, id)?;
        let version = previous
            .as_ref()
            .and_then(|p| serde_json::from_slice::<Value>(&p.source).ok())
            .and_then(|v| v["v"].as_u64())
            .unwrap_or(0)
            + 1;
        let stored = json!({ "v": version, "s": source });
        let v = self
            .write(&[Write {
                index: &store_index,
                id,
                source: Some(stored.to_string().into_bytes()),
                expect,
            }])?
            .remove(0);
        let (status, result) = if previous.is_some() { (200, "updated") } else { (201, "created") };
        Ok(Reply::new(
            status,
            json!({ "_index": index, "_id": id, "_version": version, "result": result, "_shards": { "total": 1, "successful": 1, "failed": 0 }, "_seq_no": v.seq_no, "_primary_term": v.primary_term }),
        ))
    }

    /// `GET /<index>/_doc/<id>`.
    pub(super) fn get_doc(&self, index: &str, id: &str) -> Result<Reply, StoreError> {
        Ok(match self.store.get(&docs(index), id)? {
            Some(doc) => {
                let stored: Value = serde_json::from_slice(&doc.source).unwrap_or(Value::Null);
                Reply::new(
                    200,
                    json!({ "_index": index, "_id": id, "_version": stored["v"], "_seq_no": doc.seq_no, "_primary_term": doc.primary_term, "found": true, "_source": stored["s"] }),
                )
            }
            None => Reply::new(404, json!({ "_index": index, "_id": id, "found": false })),
        })
    }

    /// `DELETE /<index>/_doc/<id>`, compare-and-set when asked.
    pub(super) fn delete_doc(&self, index: &str, id: &str, params: &Params) -> Result<Reply, StoreError> {
        let expect = match (params.if_seq_no, params.if_primary_term) {
            (Some(seq_no), Some(primary_term)) => Expect::Version { seq_no, primary_term },
            _ => Expect::Any,
        };
        if self.store.get(&docs(index), id)?.is_none() {
            return Ok(Reply::new(404, json!({ "_index": index, "_id": id, "result": "not_found" })));
        }
        let v = self.write(&[Write { index: &docs(index), id, source: None, expect }])?.remove(0);
        Ok(Reply::new(
            200,
            json!({ "_index": index, "_id": id, "result": "deleted", "_seq_no": v.seq_no, "_primary_term": v.primary_term }),
        ))
    }

    /// `POST /<index>/_update/<id>` with a partial `doc`, merged into the
    /// current source and written only over the version it was read at.
    pub(super) fn update_doc(&self, index: &str, id: &str, body: Option<&[u8]>) -> Result<Reply, StoreError> {
        let update = match json_body(body) {
            Ok(v) => v,
            Err(r) => return Ok(r),
        };
        // Only partial documents: without `doc` there is nothing to
        // merge, and merging null would erase the document.
        if !update.get("doc").is_some_and(Value::is_object) {
            return Ok(Reply::error(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: an update needs `doc`, a JSON object (scripts are not supported);"
                    .into(),
            ));
        }
        let Some(current) = self.store.get(&docs(index), id)? else {
            return Ok(Reply::error(404, "document_missing_exception", format!("[{id}]: document missing")));
        };
        let stored: Value = serde_json::from_slice(&current.source).unwrap_or(Value::Null);
        let mut source = stored["s"].clone();
        merge(&mut source, &update["doc"]);
        let expect = Expect::Version { seq_no: current.seq_no, primary_term: current.primary_term };
        self.index_doc(index, id, source, expect)
    }
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
