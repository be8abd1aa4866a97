//! `_bulk`: consecutive index/create items are written in one store
//! transaction (one fsync), which is what makes bulk fast; update and
//! delete items, and items with `if_seq_no`, run one by one, in order, as
//! single-document calls. The items come parsed from the action layer;
//! only their source lines and conditions are judged here, each failing
//! its own item only (`errors: true`), never the whole request.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::Embedded;
use super::documents::{Condition, shards, version_of};
use super::indices::docs;
use crate::cluster::actions::{
    ActionRequest, BulkConditions, BulkItem, BulkKind, InvalidIndexName, Op, validate_index_name,
};
use crate::cluster::backend::{Refresh, VersionType};
use crate::cluster::{Backend, Params, Reply};
use crate::store::{Expect, StoreError, Write};

/// An index/create item waiting for the batch write.
struct PendingWrite {
    kind: BulkKind,
    index: String,
    id: String,
    source: Value,
    condition: Condition,
    /// Its position in the response's `items`.
    slot: usize,
}

/// An item's conditions as a [`Condition`], or its 400.
fn condition_of(kind: BulkKind, c: &BulkConditions) -> Result<Condition, (&'static str, String)> {
    let number = |name: &str, v: &Option<Value>| -> Result<Option<u64>, (&'static str, String)> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or((
                "illegal_argument_exception",
                format!("[{name}] must be a non-negative integer, not {v}"),
            )),
        }
    };
    let seq_no = number("if_seq_no", &c.if_seq_no)?;
    let term = number("if_primary_term", &c.if_primary_term)?;
    let version = number("version", &c.version)?;
    let version_type = match c.version_type.as_ref().and_then(Value::as_str) {
        None | Some("internal") => VersionType::Internal,
        Some("external") => VersionType::External,
        Some("external_gte") => VersionType::ExternalGte,
        Some(other) => {
            return Err(("illegal_argument_exception", format!("No version type match [{other}]")));
        }
    };
    let seq = match (seq_no, term) {
        (Some(s), Some(t)) => Some((s, t)),
        (None, None) => None,
        _ => {
            return Err((
                "action_request_validation_exception",
                "Validation Failed: 1: if_seq_no and if_primary_term must be given together;".into(),
            ));
        }
    };
    Condition::checked(kind == BulkKind::Create, seq, version.map(|v| (v, version_type))).map_err(|r| {
        (
            "action_request_validation_exception",
            r.body["error"]["reason"].as_str().unwrap_or_default().to_owned(),
        )
    })
}

impl Embedded {
    /// Runs `items` (their source lines are ranges of `body`); one item's
    /// failure is reported in its slot and fails no other.
    pub(super) fn bulk(&self, items: &[BulkItem], body: &[u8], params: &Params) -> Result<Reply, StoreError> {
        let mut results: Vec<Value> = Vec::with_capacity(items.len());
        let mut pending: Vec<PendingWrite> = Vec::new();
        let mut errors = false;
        for item in items {
            let kind = item.kind.name();
            let failed = |status: u16, error_type: &str, reason: String| json!({ kind: { "_index": item.index, "_id": item.id, "status": status, "error": { "type": error_type, "reason": reason } } });
            if let Err(bad) = validate_index_name(&item.index) {
                errors = true;
                results.push(failed(400, InvalidIndexName::TYPE, bad.to_string()));
                continue;
            }
            if item.id.as_deref() == Some("") {
                errors = true;
                results.push(failed(
                    400,
                    "illegal_argument_exception",
                    "if _id is specified it must not be empty".into(),
                ));
                continue;
            }
            let source = match &item.source {
                None => Value::Null,
                Some(range) => match body.get(range.clone()).map(serde_json::from_slice::<Value>) {
                    Some(Ok(source)) if source.is_object() => source,
                    _ => {
                        errors = true;
                        results.push(failed(
                            400,
                            "mapper_parsing_exception",
                            "the source line is not a JSON object".into(),
                        ));
                        continue;
                    }
                },
            };
            let condition = match condition_of(item.kind, &item.conditions) {
                Ok(c) => c,
                Err((error_type, reason)) => {
                    errors = true;
                    results.push(failed(400, error_type, reason));
                    continue;
                }
            };
            if matches!(item.kind, BulkKind::Index | BulkKind::Create) && condition.seq.is_none() {
                pending.push(PendingWrite {
                    kind: item.kind,
                    index: item.index.clone(),
                    id: item.id.clone().unwrap_or_else(super::ids::generated_id),
                    source,
                    condition,
                    slot: results.len(),
                });
                results.push(Value::Null);
                continue;
            }
            errors |= self.flush(&mut pending, &mut results, params.refresh)?;
            let id = item.id.clone().unwrap_or_default();
            let mut item_params = Params { refresh: params.refresh, ..Params::default() };
            if let Some((seq_no, term)) = condition.seq {
                item_params.if_seq_no = Some(seq_no);
                item_params.if_primary_term = Some(term);
            }
            if let Some((version, version_type)) = condition.version {
                item_params.version = Some(version);
                item_params.version_type = version_type;
            }
            let op = match item.kind {
                BulkKind::Update => Op::UpdateDoc { id },
                BulkKind::Delete => Op::DeleteDoc { id },
                BulkKind::Index | BulkKind::Create => {
                    Op::IndexDoc { id: Some(id), create_only: item.kind == BulkKind::Create }
                }
            };
            let request = ActionRequest {
                action: item.action,
                op,
                indices: vec![item.index.clone()],
                items: Vec::new(),
            };
            let item_body = serde_json::to_vec(&source).unwrap_or_default();
            let r = self.execute(&request, &request.indices, &item_params, Some(&item_body));
            errors |= r.status >= 300;
            let mut result = r.body;
            if let Some(obj) = result.as_object_mut() {
                // An item's error is `{type, reason}` beside `_index`/`_id`,
                // not OpenSearch's whole error envelope.
                if obj.contains_key("error") {
                    obj.remove("status");
                    obj.insert("_index".into(), json!(item.index));
                    obj.insert("_id".into(), json!(item.id));
                }
                obj.insert("status".into(), json!(r.status));
            }
            results.push(json!({ kind: result }));
        }
        errors |= self.flush(&mut pending, &mut results, params.refresh)?;
        Ok(Reply::new(200, json!({ "took": 0, "errors": errors, "items": results })))
    }

    /// Writes the pending index/create items in one transaction; fills
    /// their result slots. Returns whether any item failed. Each item's
    /// conditions are checked against what is stored, or what an earlier
    /// item of the batch wrote; the write is a compare-and-set over what
    /// was read, and if anything changed meanwhile the items are written
    /// one by one instead, each judged alone.
    fn flush(
        &self,
        pending: &mut Vec<PendingWrite>,
        results: &mut [Value],
        refresh: Refresh,
    ) -> Result<bool, StoreError> {
        if pending.is_empty() {
            return Ok(false);
        }
        let mut errors = false;
        let mut indices: Vec<&str> = pending.iter().map(|p| p.index.as_str()).collect();
        indices.sort_unstable();
        indices.dedup();
        self.ensure_indices(&indices)?;
        // Versions: what is stored (and how to expect it), then what
        // earlier items of this batch wrote.
        let mut versions: HashMap<(String, String), Option<u64>> = HashMap::new();
        let mut writes = Vec::new();
        let mut accepted = Vec::new();
        let store_indices: Vec<String> = pending.iter().map(|p| docs(&p.index)).collect();
        for (p, store_index) in pending.iter().zip(&store_indices) {
            let key = (p.index.clone(), p.id.clone());
            let (previous, expect) = match versions.get(&key) {
                Some(v) => (*v, Expect::Any),
                None => match self.store.get(store_index, &p.id)? {
                    Some(doc) => (
                        Some(version_of(&doc)),
                        Expect::Version { seq_no: doc.seq_no, primary_term: doc.primary_term },
                    ),
                    None => (None, Expect::Absent),
                },
            };
            // The check needs a stored document only for `if_seq_no`,
            // which never reaches the batch.
            let placeholder = crate::store::Versioned { seq_no: 0, primary_term: 0, source: Vec::new() };
            let version = match p.condition.check(previous.map(|v| (v, &placeholder))) {
                Ok(v) => v,
                Err(why) => {
                    errors = true;
                    results[p.slot] = json!({ p.kind.name(): { "_index": p.index, "_id": p.id, "status": 409, "error": { "type": "version_conflict_engine_exception", "reason": format!("[{}]: version conflict, {why}", p.id), "index": p.index, "shard": "0" } } });
                    continue;
                }
            };
            versions.insert(key, Some(version));
            let stored = json!({ "v": version, "s": p.source });
            writes.push(Write {
                index: store_index,
                id: &p.id,
                source: Some(stored.to_string().into_bytes()),
                expect,
            });
            accepted.push((p, version, previous.is_some()));
        }
        let written = match self.write(&writes) {
            Ok(written) => written,
            Err(StoreError::Conflict { .. }) => {
                // Someone wrote one of these documents meanwhile: each
                // item alone, judged on what is there now.
                for (p, _, _) in accepted {
                    let r = self.index_doc(&p.index, &p.id, p.source.clone(), p.condition)?;
                    errors |= r.status >= 300;
                    results[p.slot] = item_result(p.kind, &p.index, &p.id, r, refresh);
                }
                pending.clear();
                return Ok(errors);
            }
            Err(e) => return Err(e),
        };
        for ((p, version, existed), v) in accepted.into_iter().zip(written) {
            let (status, result) = if existed { (200, "updated") } else { (201, "created") };
            let mut answer = json!({ "_index": p.index, "_id": p.id, "_version": version, "result": result, "_shards": shards(1), "_seq_no": v.seq_no, "_primary_term": v.primary_term, "status": status });
            if refresh == Refresh::True {
                answer["forced_refresh"] = json!(true);
            }
            results[p.slot] = json!({ p.kind.name(): answer });
        }
        pending.clear();
        Ok(errors)
    }
}

/// A single-document answer as a bulk item's.
fn item_result(kind: BulkKind, index: &str, id: &str, reply: Reply, refresh: Refresh) -> Value {
    let mut result = reply.body;
    if let Some(obj) = result.as_object_mut() {
        if obj.contains_key("error") {
            obj.remove("status");
            obj.insert("_index".into(), json!(index));
            obj.insert("_id".into(), json!(id));
        } else if refresh == Refresh::True {
            obj.insert("forced_refresh".into(), json!(true));
        }
        obj.insert("status".into(), json!(reply.status));
    }
    json!({ kind.name(): result })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::testing::call;
    use super::*;
    use crate::cluster::actions::resolve;
    use crate::store::Store;

    /// `POST /<index>/_bulk`: items without `_index` go to `<index>`,
    /// the one the call was authorised for.
    #[test]
    fn bulk_items_default_to_the_index_in_the_path() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let e = Embedded::new(Arc::new(Store::open(&dir.path().join("s.redb"))?), "test")?;
        let body = concat!(
            "{\"index\":{\"_id\":\"1\"}}\n{\"n\":1}\n",
            "{\"index\":{\"_id\":\"2\"}}\nnot json\n",
            "{\"create\":{\"_id\":\"3\"}}\n{\"n\":3}\n"
        );
        let r = call(&e, "POST", "/c/_bulk", None);
        assert_eq!(r.status, 400, "no body: {:?}", r.body);
        let request = resolve("POST", "/c/_bulk", Some(body.as_bytes()))?;
        let r = e.execute(&request, &request.indices, &Params::default(), Some(body.as_bytes()));
        assert_eq!(r.body["items"][0]["index"]["_index"], "c", "{:?}", r.body);
        assert_eq!(call(&e, "GET", "/c/_doc/1", None).status, 200);
        // A source that is not JSON fails its item only, with a reason.
        assert_eq!(r.body["errors"], json!(true));
        assert_eq!(r.body["items"][1]["index"]["status"], 400, "{:?}", r.body);
        assert_eq!(r.body["items"][1]["index"]["error"]["type"], "mapper_parsing_exception");
        assert_eq!(r.body["items"][2]["create"]["status"], 201, "{:?}", r.body);
        assert_eq!(call(&e, "GET", "/c/_doc/2", None).status, 404);
        assert_eq!(e.indices()?, ["c"], "nothing written elsewhere");
        Ok(())
    }
}
