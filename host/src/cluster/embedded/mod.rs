//! The embedded backend: OpenSearch-style indices of JSON documents on the
//! [`Store`], answering with OpenSearch's response shapes. Document versions
//! and `if_seq_no`/`if_primary_term` map onto the store's compare-and-set.
//!
//! Documents are posted under their terms in the same transaction that
//! writes them ([`query::terms_of`]); a search reads only the candidates
//! its query's postings allow and scans the index only for queries they
//! cannot narrow (match_all, exists, a lone must_not).
//!
//! This file is the [`Embedded`] type and its [`Backend`] dispatch (one
//! action → one method); each part does one job:
//!
//! | module | what |
//! |---|---|
//! | [`indices`] | the index catalogue (`.warden-indices`), create/delete/get index |
//! | [`documents`] | single documents: index, get, delete, partial update; versions and compare-and-set |
//! | [`search`] | `_search`/`_count`: candidates from the postings, the page window, aggregations |
//! | [`sort`] | sort clauses and the bounded selection of the best hits |
//! | [`bulk`] | `_bulk`: index/create items batched into one transaction |
//! | [`ids`] | generated ids that sort by creation time |

mod bulk;
mod documents;
mod ids;
mod indices;
mod search;
mod sort;

pub use self::search::MAX_RESULT_WINDOW;

use std::sync::Arc;

use serde_json::{Value, json};

use self::indices::DOCS_PREFIX;
use super::actions::{self, ActionRequest, Op, validate_index_name};
use super::query;
use super::{Backend, BackendError, Params, Reply};
use crate::store::{Store, StoreError, Versioned, Write};

#[derive(Debug)]
pub struct Embedded {
    store: Arc<Store>,
    cluster_name: String,
}

/// A store failure as OpenSearch would answer it: a lost compare-and-set
/// is its 409, anything else a 500.
fn store_error(e: StoreError) -> Reply {
    match e {
        StoreError::Conflict { index, id, message } => Reply::error(
            409,
            "version_conflict_engine_exception",
            format!("[{}/{id}]: version conflict, {message}", index.trim_start_matches(DOCS_PREFIX)),
        ),
        other => Reply::error(500, "store_exception", other.to_string()),
    }
}

impl Backend for Embedded {
    fn indices(&self) -> Result<Vec<String>, BackendError> {
        Ok(self.index_names()?)
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
    fn write(&self, writes: &[Write<'_>]) -> Result<Vec<Versioned>, StoreError> {
        self.store.write_indexed(writes, &index_terms)
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
        let indices = actions::distinct(indices.iter().map(String::as_str));
        let indices: Vec<String> = indices.into_iter().map(str::to_owned).collect();
        let indices = indices.as_slice();
        // Never an index named "": a single-index operation gets exactly
        // one valid name, a write at least one; anything else is the
        // caller's bug, refused here whatever the caller checked.
        let first = match indices {
            [one] => one.clone(),
            _ if request.op.single_index() => {
                return Ok(Reply::error(
                    500,
                    "illegal_state_exception",
                    format!("`{}` needs exactly one concrete index, got {}", request.action, indices.len()),
                ));
            }
            [] if request.op.writes() && request.op != Op::Bulk => return Ok(Reply::index_not_found("")),
            _ => String::new(),
        };
        if let Some(bad) = indices.iter().find_map(|i| validate_index_name(i).err()) {
            return Ok(Reply::invalid_index_name(&bad));
        }
        Ok(match &request.op {
            Op::Main => Reply::new(
                200,
                json!({ "name": "warden", "cluster_name": self.cluster_name, "version": { "distribution": "warden", "number": env!("CARGO_PKG_VERSION") }, "tagline": "The OpenSearch Project: https://opensearch.org/" }),
            ),
            Op::ClusterHealth => Reply::new(
                200,
                json!({ "cluster_name": self.cluster_name, "status": "green", "timed_out": false, "number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": self.index_names()?.len(), "active_shards": self.index_names()?.len(), "unassigned_shards": 0 }),
            ),
            Op::CreateIndex => self.create_index(&first)?,
            Op::DeleteIndex => self.delete_indices(indices)?,
            Op::GetIndex => self.get_indices(indices)?,
            Op::Refresh => match self.first_missing(indices)? {
                Some(missing) => missing,
                None => Reply::new(
                    200,
                    json!({ "_shards": { "total": indices.len(), "successful": indices.len(), "failed": 0 } }),
                ),
            },
            Op::IndexDoc { id, create_only } => {
                self.put_doc(&first, id.as_deref(), *create_only, params, body)?
            }
            Op::GetDoc { id } => self.get_doc(&first, id, params)?,
            Op::GetSource { id } => self.get_source(&first, id, params)?,
            Op::DeleteDoc { id } => self.delete_doc(&first, id, params)?,
            Op::UpdateDoc { id } => self.update_doc(&first, id, params, body)?,
            // The gateway splits these into their items (each authorised
            // on its own); a backend never sees them whole.
            Op::Mget { .. } | Op::Msearch { .. } => Reply::error(
                500,
                "illegal_state_exception",
                format!("`{}` reaches a backend only as its items", request.action),
            ),
            // A point in time is opened on indices that exist: the gateway
            // keeps the context, the backend only answers for the indices.
            Op::CreatePit => match self.first_missing(indices)? {
                Some(missing) => missing,
                None => Reply::new(200, json!({})),
            },
            // Contexts are the gateway's: it answers these itself.
            Op::Scroll { .. } | Op::ClearScroll { .. } | Op::DeletePit { .. } | Op::ListPits => Reply::error(
                500,
                "illegal_state_exception",
                format!("`{}` is answered by the gateway, never a backend", request.action),
            ),
            Op::Search | Op::Count => self.search_request(indices, params, body, request.op == Op::Count)?,
            Op::Bulk => match body {
                Some(b) if !request.items.is_empty() => self.bulk(&request.items, b, params)?,
                _ => Reply::error(400, "parse_exception", "empty _bulk body".into()),
            },
        })
    }
}

/// A request body as JSON (none is `{}`), or OpenSearch's 400.
fn json_body(body: Option<&[u8]>) -> Result<Value, Reply> {
    match body {
        None | Some([]) => Ok(json!({})),
        Some(b) => serde_json::from_slice(b)
            .map_err(|e| Reply::error(400, "parse_exception", format!("request body is not JSON: {e}"))),
    }
}

fn not_an_object(what: &str) -> Reply {
    Reply::error(400, "mapper_parsing_exception", format!("{what} must be a JSON object"))
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

/// What the tests of every part share: one REST call straight on the
/// backend, as the gateway would make it.
#[cfg(test)]
mod testing {
    use serde_json::Value;

    use super::Embedded;
    use crate::cluster::actions::resolve;
    use crate::cluster::{Backend, Params, Reply};

    pub fn call(e: &Embedded, method: &str, path: &str, body: Option<Value>) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let request = match resolve(method, path, bytes.as_deref()) {
            Ok(r) => r,
            Err(err) => return Reply::error(400, "bad", err.to_string()),
        };
        let indices = match request.indices.as_slice() {
            [one] if one.contains('*') => e.indices().unwrap_or_default(),
            other => other.to_vec(),
        };
        match Params::parse(path) {
            Ok(params) => e.execute(&request, &indices, &params, bytes.as_deref()),
            Err(reason) => Reply::error(400, "illegal_argument_exception", reason.to_string()),
        }
    }

    /// The ids of a search's hits, in order.
    pub fn ids(reply: &Reply) -> Vec<String> {
        let hits = reply.body["hits"]["hits"].as_array().cloned().unwrap_or_default();
        hits.iter().filter_map(|h| h["_id"].as_str().map(str::to_owned)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{call, ids};
    use super::*;
    use crate::store::Expect;

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
        let request = actions::resolve("POST", "/_bulk", Some(bulk.as_bytes()))?;
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
            Write { index: indices::INDICES, id: "old", source: Some(b"{}".to_vec()), expect: Expect::Any },
            Write { index: "i/old", id: "1", source: Some(stored), expect: Expect::Any },
        ])?;
        let e = Embedded::new(store, "test")?;
        let found = call(&e, "POST", "/old/_search", Some(json!({"query": {"term": {"user": "ana"}}})));
        assert_eq!(ids(&found), ["1"]);
        Ok(())
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
}
