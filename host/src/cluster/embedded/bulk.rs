//! `_bulk`: consecutive index/create items are written in one store
//! transaction (one fsync), which is what makes bulk fast; update and
//! delete items run one by one, in order, as single-document calls. The
//! items come parsed from the action layer; only their source lines are
//! parsed here.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::Embedded;
use super::indices::docs;
use crate::cluster::actions::{ActionRequest, BulkItem, BulkKind, InvalidIndexName, Op, validate_index_name};
use crate::cluster::{Backend, Params, Reply};
use crate::store::{Expect, StoreError, Write};

/// An index/create item waiting for the batch write.
struct PendingWrite {
    kind: BulkKind,
    index: String,
    id: String,
    source: Value,
    /// Its position in the response's `items`.
    slot: usize,
}

impl Embedded {
    /// Runs `items` (their source lines are ranges of `body`); one item's
    /// failure is reported in its slot and fails no other.
    pub(super) fn bulk(&self, items: &[BulkItem], body: &[u8]) -> Result<Reply, StoreError> {
        let mut results: Vec<Value> = Vec::with_capacity(items.len());
        let mut pending: Vec<PendingWrite> = Vec::new();
        let mut errors = false;
        for item in items {
            let kind = item.kind.name();
            if let Err(bad) = validate_index_name(&item.index) {
                errors = true;
                results.push(json!({ kind: { "_index": item.index, "_id": item.id, "status": 400, "error": { "type": InvalidIndexName::TYPE, "reason": bad.to_string() } } }));
                continue;
            }
            let source = match &item.source {
                None => Value::Null,
                Some(range) => match body.get(range.clone()).map(serde_json::from_slice::<Value>) {
                    Some(Ok(source)) if source.is_object() => source,
                    _ => {
                        errors = true;
                        results.push(json!({ kind: { "_index": item.index, "_id": item.id, "status": 400, "error": { "type": "mapper_parsing_exception", "reason": "the source line is not a JSON object" } } }));
                        continue;
                    }
                },
            };
            if matches!(item.kind, BulkKind::Index | BulkKind::Create) {
                pending.push(PendingWrite {
                    kind: item.kind,
                    index: item.index.clone(),
                    id: item.id.clone().unwrap_or_else(super::ids::generated_id),
                    source,
                    slot: results.len(),
                });
                results.push(Value::Null);
                continue;
            }
            errors |= self.flush(&mut pending, &mut results)?;
            let id = item.id.clone().unwrap_or_default();
            let op = if item.kind == BulkKind::Update { Op::UpdateDoc { id } } else { Op::DeleteDoc { id } };
            let request = ActionRequest {
                action: item.action,
                op,
                indices: vec![item.index.clone()],
                items: Vec::new(),
            };
            let item_body = serde_json::to_vec(&source).unwrap_or_default();
            let r = self.execute(&request, &request.indices, &Params::default(), Some(&item_body));
            errors |= r.status >= 300;
            let mut result = r.body;
            if let Some(obj) = result.as_object_mut() {
                obj.insert("status".into(), json!(r.status));
            }
            results.push(json!({ kind: result }));
        }
        errors |= self.flush(&mut pending, &mut results)?;
        Ok(Reply::new(200, json!({ "took": 0, "errors": errors, "items": results })))
    }

    /// Writes the pending index/create items in one transaction; fills
    /// their result slots. Returns whether any item failed.
    fn flush(&self, pending: &mut Vec<PendingWrite>, results: &mut [Value]) -> Result<bool, StoreError> {
        if pending.is_empty() {
            return Ok(false);
        }
        let mut errors = false;
        let mut indices: Vec<&str> = pending.iter().map(|p| p.index.as_str()).collect();
        indices.sort_unstable();
        indices.dedup();
        self.ensure_indices(&indices)?;
        // Versions: what is stored, then what earlier items of this batch wrote.
        let mut versions: HashMap<(String, String), u64> = HashMap::new();
        let mut writes = Vec::new();
        let mut accepted = Vec::new();
        let store_indices: Vec<String> = pending.iter().map(|p| docs(&p.index)).collect();
        for (p, store_index) in pending.iter().zip(&store_indices) {
            let key = (p.index.clone(), p.id.clone());
            let previous = match versions.get(&key) {
                Some(v) => Some(*v),
                None => self
                    .store
                    .get(store_index, &p.id)?
                    .and_then(|d| serde_json::from_slice::<Value>(&d.source).ok())
                    .and_then(|v| v["v"].as_u64()),
            };
            if p.kind == BulkKind::Create && previous.is_some() {
                errors = true;
                results[p.slot] = json!({ "create": { "_index": p.index, "_id": p.id, "status": 409, "error": { "type": "version_conflict_engine_exception", "reason": format!("[{}]: version conflict, document already exists", p.id) } } });
                continue;
            }
            let version = previous.unwrap_or(0) + 1;
            versions.insert(key, version);
            let stored = json!({ "v": version, "s": p.source });
            writes.push(Write {
                index: store_index,
                id: &p.id,
                source: Some(stored.to_string().into_bytes()),
                expect: Expect::Any,
            });
            accepted.push((p, version, previous.is_some()));
        }
        let written = self.write(&writes)?;
        for ((p, version, existed), v) in accepted.into_iter().zip(written) {
            let (status, result) = if existed { (200, "updated") } else { (201, "created") };
            results[p.slot] = json!({ p.kind.name(): { "_index": p.index, "_id": p.id, "_version": version, "result": result, "_seq_no": v.seq_no, "_primary_term": v.primary_term, "status": status } });
        }
        pending.clear();
        Ok(errors)
    }
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
