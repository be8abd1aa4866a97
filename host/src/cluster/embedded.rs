//! The embedded backend: OpenSearch-style indices of JSON documents on the
//! [`Store`], answering with OpenSearch's response shapes. Document versions
//! and `if_seq_no`/`if_primary_term` map onto the store's compare-and-set.
//!
//! Documents are posted under their terms in the same transaction that
//! writes them ([`query::terms_of`]); a search reads only the candidates
//! its query's postings allow and scans the index only for queries they
//! cannot narrow (match_all, exists, a lone must_not).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Backend;
use super::actions::{ActionRequest, BulkItem, BulkKind, InvalidIndexName, Op, validate_index_name};
use super::query::{self, Postings};
use crate::store::{Expect, Store, StoreError, Write};

/// Where index names are listed.
const INDICES: &str = ".warden-indices";

/// A backend answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply { status, body }
}

fn error(status: u16, kind: &str, reason: String) -> Reply {
    reply(status, json!({ "error": { "type": kind, "reason": reason }, "status": status }))
}

/// OpenSearch's 404 for an index (or expression) that names no index.
pub fn index_not_found(index: &str) -> Reply {
    error(404, "index_not_found_exception", format!("no such index [{index}]"))
}

/// OpenSearch's answer to a name that cannot be an index.
pub fn invalid_index_name(e: &InvalidIndexName) -> Reply {
    let cause = json!({ "type": InvalidIndexName::TYPE, "reason": e.to_string(), "index": e.name, "index_uuid": "_na_" });
    reply(
        400,
        json!({ "error": { "root_cause": [cause], "type": InvalidIndexName::TYPE, "reason": e.to_string(), "index": e.name, "index_uuid": "_na_" }, "status": 400 }),
    )
}

/// Query-string options that matter to the backend.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub if_seq_no: Option<u64>,
    pub if_primary_term: Option<u64>,
    /// `_search?size=…&from=…` (clients send them so); they win over the body's.
    pub size: Option<u64>,
    pub from: Option<u64>,
}

impl Params {
    /// The options in `path`'s query string. A CAS option that does not
    /// parse, or one without the other, is refused: ignoring it would turn
    /// a conditional write into an unconditional one.
    pub fn parse(path: &str) -> Result<Params, String> {
        let mut p = Params::default();
        if let Some((_, query)) = path.split_once('?') {
            for pair in query.split('&') {
                let number = |name: &str, v: &str| {
                    v.parse::<u64>()
                        .map_err(|_| format!("[{name}] must be a non-negative integer, not `{v}`"))
                };
                match pair.split_once('=') {
                    Some(("if_seq_no", v)) => p.if_seq_no = Some(number("if_seq_no", v)?),
                    Some(("if_primary_term", v)) => p.if_primary_term = Some(number("if_primary_term", v)?),
                    Some(("size", v)) => p.size = Some(number("size", v)?),
                    Some(("from", v)) => p.from = Some(number("from", v)?),
                    // Answering a Lucene query string with everything would be
                    // worse than refusing it.
                    Some(("q", _)) => {
                        return Err("[q] (query string search) is not supported; send a query body".into());
                    }
                    _ => {}
                }
            }
        }
        match (p.if_seq_no, p.if_primary_term) {
            (Some(_), None) => Err("[if_seq_no] needs [if_primary_term]".into()),
            (None, Some(_)) => Err("[if_primary_term] needs [if_seq_no]".into()),
            _ => Ok(p),
        }
    }
}

#[derive(Debug)]
pub struct Embedded {
    store: Arc<Store>,
    cluster_name: String,
}

/// Store indices holding an index's documents are `i/<index>`.
const DOCS_PREFIX: &str = "i/";

fn docs(index: &str) -> String {
    format!("{DOCS_PREFIX}{index}")
}

fn store_error(e: StoreError) -> Reply {
    match e {
        StoreError::Conflict { index, id, message } => error(
            409,
            "version_conflict_engine_exception",
            format!("[{}/{id}]: version conflict, {message}", index.trim_start_matches(DOCS_PREFIX)),
        ),
        other => error(500, "store_exception", other.to_string()),
    }
}

impl Backend for Embedded {
    fn indices(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.store.list(INDICES)?.into_iter().map(|(name, _)| name).collect())
    }

    fn execute(
        &self,
        request: &ActionRequest,
        indices: &[String],
        params: &Params,
        body: Option<&[u8]>,
    ) -> Reply {
        match self.run(request, indices, params, body) {
            Ok(r) => r,
            Err(e) => store_error(e),
        }
    }
}

impl Embedded {
    /// The backend on `store`; builds the postings of documents written
    /// before this version of the terms (once, at start).
    pub fn new(store: Arc<Store>, cluster_name: &str) -> Result<Embedded, StoreError> {
        store.ensure_postings(query::TERMS_VERSION, &index_terms)?;
        Ok(Embedded { store, cluster_name: cluster_name.to_owned() })
    }

    /// A write of documents, postings kept in step.
    fn write(&self, writes: &[Write<'_>]) -> Result<Vec<crate::store::Versioned>, StoreError> {
        self.store.write_indexed(writes, Some(&index_terms))
    }

    fn exists(&self, index: &str) -> Result<bool, StoreError> {
        Ok(self.store.get(INDICES, index)?.is_some())
    }

    /// OpenSearch's 404 for the first of `indices` that does not exist.
    fn first_missing(&self, indices: &[String]) -> Result<Option<Reply>, StoreError> {
        for index in indices {
            if !self.exists(index)? {
                return Ok(Some(error(404, "index_not_found_exception", format!("no such index [{index}]"))));
            }
        }
        Ok(None)
    }

    /// Creates those of `names` that do not exist yet: OpenSearch creates an
    /// index on its first write.
    fn ensure_indices(&self, names: &[&str]) -> Result<(), StoreError> {
        let mut creates = Vec::new();
        for name in names {
            if !self.exists(name)? {
                creates.push(Write {
                    index: INDICES,
                    id: name,
                    source: Some(b"{}".to_vec()),
                    expect: Expect::Any,
                });
            }
        }
        if !creates.is_empty() {
            self.store.write(&creates)?;
        }
        Ok(())
    }

    fn run(
        &self,
        request: &ActionRequest,
        indices: &[String],
        params: &Params,
        body: Option<&[u8]>,
    ) -> Result<Reply, StoreError> {
        // The gateway resolves expressions to a set; whoever calls, an
        // index listed twice is still worked on (searched, counted) once.
        let indices = super::actions::distinct(indices.iter().map(String::as_str));
        let indices: Vec<String> = indices.into_iter().map(str::to_owned).collect();
        let indices = indices.as_slice();
        // Never an index named "": a single-index operation gets exactly
        // one valid name, a write at least one; anything else is the
        // caller's bug, refused here whatever the caller checked.
        let first = match indices {
            [one] => one.clone(),
            _ if request.op.single_index() => {
                return Ok(error(
                    500,
                    "illegal_state_exception",
                    format!("`{}` needs exactly one concrete index, got {}", request.action, indices.len()),
                ));
            }
            [] if request.op.writes() && request.op != Op::Bulk => return Ok(index_not_found("")),
            _ => String::new(),
        };
        if let Some(bad) = indices.iter().find_map(|i| validate_index_name(i).err()) {
            return Ok(invalid_index_name(&bad));
        }
        let json_body = || -> Result<Value, Reply> {
            match body {
                None | Some([]) => Ok(json!({})),
                Some(b) => serde_json::from_slice(b)
                    .map_err(|e| error(400, "parse_exception", format!("request body is not JSON: {e}"))),
            }
        };
        Ok(match &request.op {
            Op::Main => reply(
                200,
                json!({ "name": "warden", "cluster_name": self.cluster_name, "version": { "distribution": "warden", "number": env!("CARGO_PKG_VERSION") }, "tagline": "The OpenSearch Project: https://opensearch.org/" }),
            ),
            Op::ClusterHealth => reply(
                200,
                json!({ "cluster_name": self.cluster_name, "status": "green", "timed_out": false, "number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": self.indices()?.len(), "active_shards": self.indices()?.len(), "unassigned_shards": 0 }),
            ),
            Op::CreateIndex => {
                match self.store.write(&[Write {
                    index: INDICES,
                    id: &first,
                    source: Some(b"{}".to_vec()),
                    expect: Expect::Absent,
                }]) {
                    Ok(_) => reply(
                        200,
                        json!({ "acknowledged": true, "shards_acknowledged": true, "index": first }),
                    ),
                    Err(StoreError::Conflict { .. }) => error(
                        400,
                        "resource_already_exists_exception",
                        format!("index [{first}] already exists"),
                    ),
                    Err(e) => return Err(e),
                }
            }
            Op::DeleteIndex => {
                if let Some(missing) = self.first_missing(indices)? {
                    return Ok(missing);
                }
                for index in indices {
                    let ids: Vec<String> =
                        self.store.list(&docs(index))?.into_iter().map(|(id, _)| id).collect();
                    let store_index = docs(index);
                    let mut writes: Vec<Write<'_>> = ids
                        .iter()
                        .map(|id| Write { index: &store_index, id, source: None, expect: Expect::Any })
                        .collect();
                    writes.push(Write { index: INDICES, id: index, source: None, expect: Expect::Any });
                    self.write(&writes)?;
                }
                reply(200, json!({ "acknowledged": true }))
            }
            Op::GetIndex => {
                if let Some(missing) = self.first_missing(indices)? {
                    return Ok(missing);
                }
                let mut out = Map::new();
                for index in indices {
                    out.insert(index.clone(), json!({ "aliases": {}, "mappings": {}, "settings": {} }));
                }
                reply(200, Value::Object(out))
            }
            Op::Refresh => reply(200, json!({ "_shards": { "total": 1, "successful": 1, "failed": 0 } })),
            Op::IndexDoc { id, create_only } => {
                let source = match json_body() {
                    Ok(v) if v.is_object() => v,
                    Ok(_) => return Ok(not_an_object("the document")),
                    Err(r) => return Ok(r),
                };
                let id = match id {
                    Some(id) => id.clone(),
                    None => generated_id(),
                };
                let expect = match (params.if_seq_no, params.if_primary_term, create_only) {
                    (_, _, true) => Expect::Absent,
                    (Some(seq_no), Some(primary_term), _) => Expect::Version { seq_no, primary_term },
                    _ => Expect::Any,
                };
                self.index_doc(&first, &id, source, expect)?
            }
            Op::GetDoc { id } => match self.store.get(&docs(&first), id)? {
                Some(doc) => {
                    let stored: Value = serde_json::from_slice(&doc.source).unwrap_or(Value::Null);
                    reply(
                        200,
                        json!({ "_index": first, "_id": id, "_version": stored["v"], "_seq_no": doc.seq_no, "_primary_term": doc.primary_term, "found": true, "_source": stored["s"] }),
                    )
                }
                None => reply(404, json!({ "_index": first, "_id": id, "found": false })),
            },
            Op::DeleteDoc { id } => {
                let expect = match (params.if_seq_no, params.if_primary_term) {
                    (Some(seq_no), Some(primary_term)) => Expect::Version { seq_no, primary_term },
                    _ => Expect::Any,
                };
                if self.store.get(&docs(&first), id)?.is_none() {
                    return Ok(reply(404, json!({ "_index": first, "_id": id, "result": "not_found" })));
                }
                let v = self.write(&[Write { index: &docs(&first), id, source: None, expect }])?.remove(0);
                reply(
                    200,
                    json!({ "_index": first, "_id": id, "result": "deleted", "_seq_no": v.seq_no, "_primary_term": v.primary_term }),
                )
            }
            Op::UpdateDoc { id } => {
                let update = match json_body() {
                    Ok(v) => v,
                    Err(r) => return Ok(r),
                };
                // Only partial documents: without `doc` there is nothing to
                // merge, and merging null would erase the document.
                if !update.get("doc").is_some_and(Value::is_object) {
                    return Ok(error(
                        400,
                        "action_request_validation_exception",
                        "Validation Failed: 1: an update needs `doc`, a JSON object (scripts are not supported);".into(),
                    ));
                }
                let Some(current) = self.store.get(&docs(&first), id)? else {
                    return Ok(error(404, "document_missing_exception", format!("[{id}]: document missing")));
                };
                let stored: Value = serde_json::from_slice(&current.source).unwrap_or(Value::Null);
                let mut source = stored["s"].clone();
                merge(&mut source, &update["doc"]);
                let expect = Expect::Version { seq_no: current.seq_no, primary_term: current.primary_term };
                self.index_doc(&first, id, source, expect)?
            }
            Op::Search | Op::Count => {
                // Wildcards arrive expanded to existing indices; a named one
                // that does not exist is OpenSearch's 404.
                if let Some(missing) = self.first_missing(indices)? {
                    return Ok(missing);
                }
                let query = match json_body() {
                    Ok(v) if v.is_object() => v,
                    Ok(_) => return Ok(not_an_object("the search body")),
                    Err(r) => return Ok(r),
                };
                self.search(indices, &query, params, request.op == Op::Count)?
            }
            Op::Bulk => match body {
                Some(b) if !request.items.is_empty() => self.bulk(&request.items, b)?,
                _ => error(400, "parse_exception", "empty _bulk body".into()),
            },
        })
    }

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
        Ok(reply(
            status,
            json!({ "_index": index, "_id": id, "_version": version, "result": result, "_shards": { "total": 1, "successful": 1, "failed": 0 }, "_seq_no": v.seq_no, "_primary_term": v.primary_term }),
        ))
    }

    fn search(
        &self,
        indices: &[String],
        body: &Value,
        params: &Params,
        count_only: bool,
    ) -> Result<Reply, StoreError> {
        let query = body.get("query").cloned().unwrap_or(json!({ "match_all": {} }));
        if let Err(reason) = query::validate_query(&query) {
            return Ok(error(400, "parsing_exception", reason));
        }
        let aggs = body.get("aggs").or_else(|| body.get("aggregations"));
        if query.get("match_all").is_some() && aggs.is_none() && body["sort"].is_null() {
            return self.match_all_page(indices, body, params, count_only);
        }
        let (from, size) = match window(body, params) {
            Ok(window) => window,
            Err(reason) => return Ok(error(400, "illegal_argument_exception", reason)),
        };
        if let Err(reason) = sort_hits(&mut Vec::new(), &body["sort"], 0) {
            return Ok(error(400, "parsing_exception", reason));
        }
        // What is kept while reading: the first from+size in document
        // order, or — sorted — at most twice that, cut back to the best
        // from+size whenever it fills (ties keep document order, since the
        // kept ones precede every later match). Aggregations see every
        // match, but only the fields they read: each match gives them a
        // projection of its source (a few values), never a copy of it.
        let keep = from.saturating_add(size);
        let sorted = !body["sort"].is_null();
        let agg_fields = aggs.map(super::aggregations::fields);
        let mut projected: Vec<Value> = Vec::new();
        let mut total = 0usize;
        let mut hits: Vec<Hit> = Vec::new();
        for (index_pos, index) in indices.iter().enumerate() {
            let store_index = docs(index);
            let postings = StorePostings { store: &self.store, index: &store_index };
            let documents = match query::candidates(&query, &postings)? {
                Some(ids) => self.store.get_many(&store_index, &ids.into_iter().collect::<Vec<_>>())?,
                None => self.store.list(&store_index)?,
            };
            for (id, doc) in documents {
                let mut stored: Value = serde_json::from_slice(&doc.source).unwrap_or(Value::Null);
                let source = stored.get_mut("s").map(Value::take).unwrap_or(Value::Null);
                if !query::matches(&query, &id, &source) {
                    continue;
                }
                total += 1;
                if let Some(fields) = &agg_fields
                    && !count_only
                {
                    projected.push(super::aggregations::project(&source, fields));
                }
                if count_only || (!sorted && total > keep) {
                    continue;
                }
                hits.push(Hit { index: index_pos, id, source });
                if sorted
                    && hits.len() >= keep.saturating_mul(2).max(64)
                    && let Err(reason) = sort_hits(&mut hits, &body["sort"], keep)
                {
                    return Ok(error(400, "parsing_exception", reason));
                }
            }
        }
        if count_only {
            return Ok(search_reply(indices.len(), total, true, Vec::new(), None));
        }
        let aggregations = match aggs {
            Some(aggs) => {
                let sources: Vec<&Value> = projected.iter().collect();
                match super::aggregations::evaluate(aggs, &sources) {
                    Ok(result) => Some(result),
                    Err(e) => {
                        let mut reply = error(400, e.kind(), e.to_string());
                        if let super::aggregations::AggError::TooManyBuckets(_) = e {
                            reply.body["error"]["max_buckets"] = json!(super::aggregations::MAX_BUCKETS);
                        }
                        return Ok(reply);
                    }
                }
            }
            None => None,
        };
        // Only the first from+size need to be in order.
        if let Err(reason) = sort_hits(&mut hits, &body["sort"], from.saturating_add(size)) {
            return Ok(error(400, "parsing_exception", reason));
        }
        // Only the page becomes JSON hits.
        let page: Vec<Value> = hits
            .into_iter()
            .skip(from)
            .take(size)
            .map(|h| json!({ "_index": indices.get(h.index), "_id": h.id, "_score": 1.0, "_source": h.source }))
            .collect();
        Ok(search_reply(indices.len(), total, false, page, aggregations))
    }

    /// `match_all` without sort or aggregations: the total is a count and
    /// only the page's documents are read.
    fn match_all_page(
        &self,
        indices: &[String],
        body: &Value,
        params: &Params,
        count_only: bool,
    ) -> Result<Reply, StoreError> {
        let (from, size) = match window(body, params) {
            Ok(window) => window,
            Err(reason) => return Ok(error(400, "illegal_argument_exception", reason)),
        };
        let (mut total, mut skip, mut page) = (0, from, Vec::new());
        for index in indices {
            let wanted = if count_only { 0 } else { size - page.len() };
            let (count, documents) = self.store.page(&docs(index), skip, wanted)?;
            total += count;
            skip = skip.saturating_sub(count);
            for (id, doc) in documents {
                let mut stored: Value = serde_json::from_slice(&doc.source).unwrap_or(Value::Null);
                let source = stored.get_mut("s").map(Value::take).unwrap_or(Value::Null);
                page.push(json!({ "_index": index, "_id": id, "_score": 1.0, "_source": source }));
            }
        }
        Ok(search_reply(indices.len(), total, count_only, page, None))
    }

    /// `_bulk`: consecutive index/create items are written in one store
    /// transaction (one fsync), which is what makes bulk fast; update and
    /// delete items run one by one, in order. The items come parsed from
    /// the action layer; only their source lines are parsed here.
    fn bulk(&self, items: &[BulkItem], body: &[u8]) -> Result<Reply, StoreError> {
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
                    id: item.id.clone().unwrap_or_else(generated_id),
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
        Ok(reply(200, json!({ "took": 0, "errors": errors, "items": results })))
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
        let mut versions: std::collections::HashMap<(String, String), u64> = std::collections::HashMap::new();
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

/// The [`crate::store::Indexer`] of this backend: a document is found by
/// the terms of its source; index names and system records by none.
fn index_terms(index: &str, stored: &[u8]) -> Vec<String> {
    if !index.starts_with(DOCS_PREFIX) {
        return Vec::new();
    }
    match serde_json::from_slice::<Value>(stored) {
        Ok(stored) => query::terms_of(&stored["s"]),
        Err(_) => Vec::new(),
    }
}

/// One index's postings in the store.
struct StorePostings<'a> {
    store: &'a Store,
    index: &'a str,
}

impl Postings for StorePostings<'_> {
    type Error = StoreError;
    fn ids(&self, from: &str, to: &str) -> Result<std::collections::BTreeSet<String>, StoreError> {
        Ok(self.store.postings(self.index, from, to)?.into_iter().collect())
    }
}

/// An index/create item waiting for the batch write.
struct PendingWrite {
    kind: BulkKind,
    index: String,
    id: String,
    source: Value,
    /// Its position in the response's `items`.
    slot: usize,
}

/// OpenSearch's default `index.max_result_window`: `from + size` of one
/// search, which bounds what a search keeps in memory for its page.
pub const MAX_RESULT_WINDOW: u64 = 10_000;

/// `from` and `size` of a search: the query string's, else the body's;
/// their sum at most [`MAX_RESULT_WINDOW`].
fn window(body: &Value, params: &Params) -> Result<(usize, usize), String> {
    let one = |name: &str, in_path: Option<u64>, default: u64| match (in_path, body.get(name)) {
        (Some(n), _) => Ok(n),
        (None, None | Some(Value::Null)) => Ok(default),
        (None, Some(v)) => v.as_u64().ok_or(format!("[{name}] must be a non-negative integer, not {v}")),
    };
    let (from, size) = (one("from", params.from, 0)?, one("size", params.size, 10)?);
    let window = from.saturating_add(size);
    if window > MAX_RESULT_WINDOW {
        return Err(format!(
            "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{window}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting."
        ));
    }
    // Both fit: their sum is at most MAX_RESULT_WINDOW.
    Ok((from as usize, size as usize))
}

/// OpenSearch's `_search` (or `_count`) answer.
fn search_reply(
    shards: usize,
    total: usize,
    count_only: bool,
    hits: Vec<Value>,
    aggregations: Option<Value>,
) -> Reply {
    let shards_info = json!({ "total": shards, "successful": shards, "skipped": 0, "failed": 0 });
    if count_only {
        return reply(200, json!({ "count": total, "_shards": shards_info }));
    }
    let mut out = json!({ "took": 0, "timed_out": false, "_shards": shards_info, "hits": { "total": { "value": total, "relation": "eq" }, "max_score": if total > 0 { json!(1.0) } else { Value::Null }, "hits": hits } });
    if let (Some(aggregations), Some(obj)) = (aggregations, out.as_object_mut()) {
        obj.insert("aggregations".into(), aggregations);
    }
    reply(200, out)
}

/// A matching document, before it becomes a JSON hit.
struct Hit {
    /// Position of its index in the searched indices.
    index: usize,
    id: String,
    source: Value,
}

/// `sort`: `["field", {"field": {"order": "desc"}}, {"field": "asc"}]`;
/// numbers before strings, missing values last.
/// A sort key of one hit: numbers before text, missing values last.
#[derive(Debug, Clone, PartialEq)]
enum SortValue {
    Number(f64),
    Text(String),
    Missing,
}

impl SortValue {
    fn of(value: Option<&Value>) -> SortValue {
        match value {
            None | Some(Value::Null) => SortValue::Missing,
            Some(Value::Number(n)) => n.as_f64().map_or(SortValue::Missing, SortValue::Number),
            Some(Value::String(s)) => SortValue::Text(s.clone()),
            Some(other) => SortValue::Text(other.to_string()),
        }
    }

    /// Missing values sort last in either direction, as OpenSearch's do.
    fn compare(&self, other: &SortValue, descending: bool) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let ord = match (self, other) {
            (SortValue::Missing, SortValue::Missing) => return Ordering::Equal,
            (SortValue::Missing, _) => return Ordering::Greater,
            (_, SortValue::Missing) => return Ordering::Less,
            (SortValue::Number(x), SortValue::Number(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
            (SortValue::Number(_), SortValue::Text(_)) => Ordering::Less,
            (SortValue::Text(_), SortValue::Number(_)) => Ordering::Greater,
            (SortValue::Text(x), SortValue::Text(y)) => x.cmp(y),
        };
        if descending { ord.reverse() } else { ord }
    }
}

/// Orders `hits` by `sort` and keeps the first `keep`: each hit's keys are
/// read once, and only the kept ones are fully sorted (a selection finds
/// them first), so "the latest 10 of 100,000" does not sort 100,000. Ties
/// keep the documents' order.
fn sort_hits(hits: &mut Vec<Hit>, sort: &Value, keep: usize) -> Result<(), String> {
    let keys: Vec<(String, bool)> = match sort {
        Value::Null => return Ok(()),
        Value::Array(items) => items.iter().map(sort_key).collect::<Result<_, _>>()?,
        other => vec![sort_key(other)?],
    };
    if keys.is_empty() {
        return Ok(());
    }
    let mut keyed: Vec<(Vec<SortValue>, usize, Hit)> = std::mem::take(hits)
        .into_iter()
        .enumerate()
        .map(|(position, hit)| {
            let values = keys
                .iter()
                .map(|(field, _)| SortValue::of(field.split('.').try_fold(&hit.source, |v, k| v.get(k))))
                .collect();
            (values, position, hit)
        })
        .collect();
    let order = |a: &(Vec<SortValue>, usize, Hit), b: &(Vec<SortValue>, usize, Hit)| {
        a.0.iter()
            .zip(&b.0)
            .zip(&keys)
            .map(|((x, y), (_, descending))| x.compare(y, *descending))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.1.cmp(&b.1))
    };
    if keep < keyed.len() {
        if keep == 0 {
            keyed.clear();
        } else {
            keyed.select_nth_unstable_by(keep - 1, order);
            keyed.truncate(keep);
        }
    }
    keyed.sort_unstable_by(order);
    *hits = keyed.into_iter().map(|(_, _, hit)| hit).collect();
    Ok(())
}

/// One sort clause: `"field"`, `{"field": "desc"}` or `{"field": {"order": "desc"}}`.
fn sort_key(item: &Value) -> Result<(String, bool), String> {
    let (field, order) = match item {
        Value::String(field) => (field.clone(), "asc"),
        Value::Object(o) if o.len() == 1 => {
            let Some((field, spec)) = o.iter().next() else { return Err("empty sort clause".into()) };
            let order = match spec {
                Value::String(order) => order.as_str(),
                Value::Object(options) => options.get("order").and_then(Value::as_str).unwrap_or("asc"),
                other => {
                    return Err(format!(
                        "sort on [{field}]: expected \"asc\", \"desc\" or an object, not {other}"
                    ));
                }
            };
            (field.clone(), order)
        }
        other => {
            return Err(format!(
                "a sort clause is a field name or {{\"field\": {{\"order\": …}}}}, not {other}"
            ));
        }
    };
    match order.to_ascii_lowercase().as_str() {
        "asc" => Ok((field, false)),
        "desc" => Ok((field, true)),
        other => Err(format!("sort on [{field}]: unknown order [{other}] (asc or desc)")),
    }
}

fn not_an_object(what: &str) -> Reply {
    error(400, "mapper_parsing_exception", format!("{what} must be a JSON object"))
}

fn generated_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 15];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..9].copy_from_slice(&count.to_be_bytes()[1..]);
    let _ = getrandom::fill(&mut bytes[9..]);
    sortable_base64(&bytes)
}

/// Base64 with an alphabet in ASCII order, so the text sorts like the bytes.
fn sortable_base64(bytes: &[u8; 15]) -> String {
    const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(20);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
        }
    }
    out
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
    use super::*;
    use crate::cluster::actions::resolve;

    fn call(e: &Embedded, method: &str, path: &str, body: Option<Value>) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let request = match resolve(method, path, bytes.as_deref()) {
            Ok(r) => r,
            Err(err) => return error(400, "bad", err.to_string()),
        };
        let indices = match request.indices.as_slice() {
            [one] if one.contains('*') => e.indices().unwrap_or_default(),
            other => other.to_vec(),
        };
        match Params::parse(path) {
            Ok(params) => e.execute(&request, &indices, &params, bytes.as_deref()),
            Err(reason) => error(400, "illegal_argument_exception", reason),
        }
    }

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

    fn ids(reply: &Reply) -> Vec<String> {
        let hits = reply.body["hits"]["hits"].as_array().cloned().unwrap_or_default();
        hits.iter().filter_map(|h| h["_id"].as_str().map(str::to_owned)).collect()
    }

    /// Updates, deletes, bulk items and index deletion keep the postings
    /// in step: a search never finds a stale value nor misses a new one.
    #[test]
    fn postings_follow_every_kind_of_write() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let e = Embedded::new(Arc::new(Store::open(&dir.path().join("s.redb"))?), "test")?;
        let by_user = |user: &str| json!({"query": {"term": {"user": user}}});
        call(&e, "PUT", "/logs/_doc/1", Some(json!({"user": "ana", "n": 1})));
        call(&e, "PUT", "/logs/_doc/2", Some(json!({"user": "bob", "n": 2})));
        assert_eq!(ids(&call(&e, "POST", "/logs/_search", Some(by_user("ana")))), ["1"]);
        // Reindexing a document moves it from its old terms to its new ones.
        call(&e, "PUT", "/logs/_doc/1", Some(json!({"user": "cy", "n": 1})));
        assert!(ids(&call(&e, "POST", "/logs/_search", Some(by_user("ana")))).is_empty());
        assert_eq!(ids(&call(&e, "POST", "/logs/_search", Some(by_user("cy")))), ["1"]);
        // Partial update.
        call(&e, "POST", "/logs/_update/2", Some(json!({"doc": {"user": "dee"}})));
        assert_eq!(ids(&call(&e, "POST", "/logs/_search", Some(by_user("dee")))), ["2"]);
        // Bulk: index, update, delete in one body.
        let bulk = concat!(
            "{\"index\":{\"_index\":\"logs\",\"_id\":\"3\"}}\n{\"user\":\"ana\",\"n\":3}\n",
            "{\"update\":{\"_index\":\"logs\",\"_id\":\"1\"}}\n{\"doc\":{\"user\":\"ana\"}}\n",
            "{\"delete\":{\"_index\":\"logs\",\"_id\":\"2\"}}\n"
        );
        let request = resolve("POST", "/_bulk", Some(bulk.as_bytes()))?;
        let r = e.execute(&request, &request.indices, &Params::default(), Some(bulk.as_bytes()));
        assert_eq!(r.body["errors"], json!(false), "{:?}", r.body);
        assert_eq!(ids(&call(&e, "POST", "/logs/_search", Some(by_user("ana")))), ["1", "3"]);
        // `size`/`from` in the query string win over the body's.
        let mut paged = by_user("ana");
        paged["size"] = json!(5);
        assert_eq!(ids(&call(&e, "POST", "/logs/_search?from=1&size=1", Some(paged))), ["3"]);
        assert!(ids(&call(&e, "POST", "/logs/_search", Some(by_user("dee")))).is_empty());
        let range = json!({"query": {"range": {"n": {"gte": 2}}}});
        assert_eq!(ids(&call(&e, "POST", "/logs/_search", Some(range.clone()))), ["3"]);
        // Delete and recreate the index: nothing of the old documents is found.
        assert_eq!(call(&e, "DELETE", "/logs", None).status, 200);
        call(&e, "PUT", "/logs/_doc/9", Some(json!({"user": "zed", "n": 9})));
        assert!(ids(&call(&e, "POST", "/logs/_search", Some(by_user("ana")))).is_empty());
        assert_eq!(ids(&call(&e, "POST", "/logs/_search", Some(range))), ["9"]);
        Ok(())
    }

    /// A store written before postings existed is indexed on the first start.
    #[test]
    fn documents_written_without_postings_are_indexed_at_start() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("s.redb"))?);
        let stored = json!({"v": 1, "s": {"user": "ana"}}).to_string().into_bytes();
        store.write(&[
            Write { index: INDICES, id: "old", source: Some(b"{}".to_vec()), expect: Expect::Any },
            Write { index: "i/old", id: "1", source: Some(stored), expect: Expect::Any },
        ])?;
        let e = Embedded::new(store, "test")?;
        let found = call(&e, "POST", "/old/_search", Some(json!({"query": {"term": {"user": "ana"}}})));
        assert_eq!(ids(&found), ["1"]);
        Ok(())
    }

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

    #[test]
    fn generated_ids_are_unique_and_sort_in_creation_order() {
        let ids: Vec<String> = (0..2000).map(|_| generated_id()).collect();
        assert!(ids.iter().all(|id| id.len() == 20 && !id.contains(['/', '+', '='])), "{ids:?}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "not in creation order");
    }

    /// Malformed requests get a 400 that names the problem, and change nothing.
    #[test]
    fn bad_requests_are_refused_and_lose_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let e = Embedded::new(Arc::new(Store::open(&dir.path().join("s.redb"))?), "test")?;
        let original = json!({"a": 1, "msg": "kept"});
        assert_eq!(call(&e, "PUT", "/logs/_doc/1", Some(original.clone())).status, 201);
        let cases: Vec<(&str, &str, Option<Value>, &str)> = vec![
            ("PUT", "/logs/_doc/2", Some(json!([1, 2])), "must be a JSON object"),
            ("PUT", "/logs/_doc/3", Some(json!("text")), "must be a JSON object"),
            ("POST", "/logs/_update/1", Some(json!({"dock": {"a": 2}})), "needs `doc`"),
            ("POST", "/logs/_update/1", Some(json!({"doc": 5})), "needs `doc`"),
            ("PUT", "/logs/_doc/1?if_seq_no=abc&if_primary_term=1", Some(json!({})), "[if_seq_no]"),
            ("PUT", "/logs/_doc/1?if_seq_no=1", Some(json!({})), "needs [if_primary_term]"),
            ("DELETE", "/logs/_doc/1?if_primary_term=1", None, "needs [if_seq_no]"),
            ("POST", "/logs/_search", Some(json!([1, 2])), "must be a JSON object"),
            ("POST", "/logs/_search", Some(json!({"size": -5})), "[size]"),
            ("POST", "/logs/_search", Some(json!({"from": "x"})), "[from]"),
            ("POST", "/logs/_search", Some(json!({"sort": [{"a": {"order": "sideways"}}]})), "unknown order"),
            ("POST", "/logs/_search", Some(json!({"sort": [5]})), "sort clause"),
            ("GET", "/logs/_search?q=a:1", None, "[q]"),
            ("GET", "/logs/_search?size=-1", None, "[size]"),
        ];
        for (method, path, body, fragment) in cases {
            let r = call(&e, method, path, body.clone());
            assert_eq!(r.status, 400, "{method} {path} {body:?}: {:?}", r.body);
            let reason = r.body["error"]["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(fragment), "{method} {path}: {reason}");
        }
        let kept = call(&e, "GET", "/logs/_doc/1", None);
        assert_eq!((kept.body["_source"].clone(), kept.body["_version"].clone()), (original, json!(1)));
        assert_eq!(call(&e, "GET", "/logs/_doc/2", None).status, 404);
        Ok(())
    }

    /// Sorting: ties keep document order, missing values come last in
    /// either direction, and paging through a partial selection agrees with
    /// a full sort.
    #[test]
    fn sorted_pages_agree_with_a_full_sort() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let e = Embedded::new(Arc::new(Store::open(&dir.path().join("s.redb"))?), "test")?;
        for (id, doc) in [
            ("a", json!({"n": 3})),
            ("b", json!({})),
            ("c", json!({"n": 1})),
            ("d", json!({"n": 3})),
            ("e", json!({"n": 2.5})),
        ] {
            assert_eq!(call(&e, "PUT", &format!("/s/_doc/{id}"), Some(doc)).status, 201);
        }
        let page = |sort: Value, from: u64, size: u64| {
            ids(&call(&e, "POST", "/s/_search", Some(json!({"sort": sort, "from": from, "size": size}))))
        };
        let desc = json!([{"n": {"order": "desc"}}]);
        assert_eq!(page(desc.clone(), 0, 10), ["a", "d", "e", "c", "b"]);
        assert_eq!(page(desc.clone(), 1, 3), ["d", "e", "c"]);
        assert_eq!(page(desc, 4, 3), ["b"]);
        assert_eq!(page(json!("n"), 0, 2), ["c", "e"]);
        assert_eq!(page(json!(["n"]), 0, 10), ["c", "e", "a", "d", "b"]);
        // Unsorted match_all pages through the indices in id order, reading
        // only the page; the total counts everything.
        for id in ["x", "y"] {
            call(&e, "PUT", &format!("/s2/_doc/{id}"), Some(json!({})));
        }
        let across = call(&e, "GET", "/s,s2/_search?from=4&size=2", None);
        assert_eq!(ids(&across), ["e", "x"]);
        assert_eq!(across.body["hits"]["total"]["value"], 7);
        assert_eq!(call(&e, "GET", "/s,s2/_count", None).body["count"], 7);
        Ok(())
    }

    /// A sorted search keeps only about twice from+size while reading (cut
    /// back as it fills): pages over many documents, with ties, agree with
    /// a full sort done here; from+size past 10,000 is refused.
    #[test]
    fn bounded_sorted_search_agrees_with_a_full_sort() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let e = Embedded::new(Arc::new(Store::open(&dir.path().join("s.redb"))?), "test")?;
        let mut bulk = String::new();
        let mut expected: Vec<(i64, String)> = Vec::new();
        for i in 0..500i64 {
            let id = format!("{i:04}");
            let n = (i * 37) % 101; // many ties
            bulk.push_str(&format!(
                "{{\"index\":{{\"_index\":\"s\",\"_id\":\"{id}\"}}}}\n{{\"n\":{n},\"k\":\"a\"}}\n"
            ));
            expected.push((n, id));
        }
        let request = resolve("POST", "/_bulk", Some(bulk.as_bytes()))?;
        let r = e.execute(&request, &request.indices, &Params::default(), Some(bulk.as_bytes()));
        assert_eq!(r.body["errors"], json!(false));
        // Descending n; ties in document (id) order.
        expected.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let query = json!({"term": {"k": "a"}});
        for (from, size) in [(0, 10), (5, 10), (100, 40), (490, 20), (0, 500)] {
            let body = json!({"query": query, "sort": [{"n": "desc"}], "from": from, "size": size});
            let page = call(&e, "POST", "/s/_search", Some(body));
            assert_eq!(page.body["hits"]["total"]["value"], 500);
            let want: Vec<String> = expected.iter().skip(from).take(size).map(|(_, id)| id.clone()).collect();
            assert_eq!(ids(&page), want, "from {from} size {size}");
        }
        // Unsorted: the first from+size matches in document order.
        let page = call(&e, "POST", "/s/_search", Some(json!({"query": query, "from": 7, "size": 3})));
        assert_eq!(ids(&page), ["0007", "0008", "0009"]);
        assert_eq!(page.body["hits"]["total"]["value"], 500);
        let big = call(&e, "POST", "/s/_search", Some(json!({"query": query, "from": 9_995, "size": 6})));
        assert_eq!(big.status, 400);
        assert!(
            big.body["error"]["reason"].as_str().is_some_and(|r| r.contains("Result window is too large"))
        );
        Ok(())
    }
}
