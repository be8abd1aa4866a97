//! `_search` and `_count`: the candidates a query's postings allow (the
//! whole index only for queries they cannot narrow), each decided by
//! [`query::matches`]; the page window (`from`/`size`, at most
//! [`MAX_RESULT_WINDOW`]); aggregations over projections of the matches;
//! OpenSearch's response shape.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::indices::docs;
use super::sort::{Hit, SearchAfter, SortKeys, sort_hits};
use super::{Embedded, json_body, not_an_object};
use crate::cluster::backend::{SourceFilter, TrackTotalHits};
use crate::cluster::query::{self, Postings};
use crate::cluster::{Params, Reply, aggregations};
use crate::error::{ErrorKind, HasKind};
use crate::store::{Store, StoreError};

/// OpenSearch's default `index.max_result_window`: `from + size` of one
/// search, which bounds what a search keeps in memory for its page.
pub const MAX_RESULT_WINDOW: u64 = 10_000;

/// A `from`/`size` OpenSearch would refuse (400 `illegal_argument_exception`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("[{name}] must be a non-negative integer, not {value}")]
    NotANumber { name: &'static str, value: Value },
    #[error(
        "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{0}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting."
    )]
    TooLarge(u64),
}

impl HasKind for WindowError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl Embedded {
    /// `_search` or (`count_only`) `_count` on `indices`, all of which must
    /// exist; the body, if any, is a JSON object.
    pub(super) fn search_request(
        &self,
        indices: &[String],
        params: &Params,
        body: Option<&[u8]>,
        count_only: bool,
    ) -> Result<Reply, StoreError> {
        // Wildcards arrive expanded to existing indices; a named one
        // that does not exist is OpenSearch's 404, or left out with
        // `ignore_unavailable=true`.
        let present;
        let indices = if params.ignore_unavailable {
            present = self.existing_of(indices)?;
            present.as_slice()
        } else {
            if let Some(missing) = self.first_missing(indices)? {
                return Ok(missing);
            }
            indices
        };
        let mut query = match json_body(body) {
            Ok(v) if v.is_object() => v,
            Ok(_) => return Ok(not_an_object("the search body")),
            Err(r) => return Ok(r),
        };
        // OpenSearch refuses a body key it does not know (a query written
        // without `query`, say) rather than searching everything.
        if let Some(unknown) =
            query.as_object().and_then(|o| o.keys().find(|k| !SEARCH_KEYS.contains(&k.as_str())))
        {
            return Ok(Reply::error(
                400,
                "parsing_exception",
                format!("Unknown key for a START_OBJECT in [{unknown}]."),
            ));
        }
        // The query string's `sort` when the body gives none.
        if let (Some(sort), Some(fields)) = (&params.sort, query.as_object_mut())
            && !fields.contains_key("sort")
        {
            fields.insert("sort".into(), sort.clone());
        }
        let track = match (params.track_total_hits, query.get("track_total_hits")) {
            (Some(track), _) => track,
            (None, None) => TrackTotalHits::Accurate,
            (None, Some(value)) => match TrackTotalHits::from_json(value) {
                Ok(track) => track,
                Err(reason) => return Ok(Reply::error(400, "illegal_argument_exception", reason)),
            },
        };
        if params.rest_total_hits_as_int
            && let TrackTotalHits::UpTo(limit) = track
        {
            return Ok(Reply::error(
                400,
                "illegal_argument_exception",
                format!(
                    "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got {limit}"
                ),
            ));
        }
        let mut reply = self.search(indices, &query, params, count_only)?;
        total_hits(&mut reply.body, track, params.rest_total_hits_as_int);
        shape_hits(&mut reply.body, &query, params);
        Ok(reply)
    }

    fn search(
        &self,
        indices: &[String],
        body: &Value,
        params: &Params,
        count_only: bool,
    ) -> Result<Reply, StoreError> {
        let query = body.get("query").cloned().unwrap_or(json!({ "match_all": {} }));
        if let Err(e) = query::validate_query(&query) {
            return Ok(Reply::error(400, "parsing_exception", e.to_string()));
        }
        let aggs = body.get("aggs").or_else(|| body.get("aggregations"));
        if query.get("match_all").is_some()
            && aggs.is_none()
            && body["sort"].is_null()
            && body.get("search_after").is_none()
        {
            return self.match_all_page(indices, body, params, count_only);
        }
        let (from, size) = match window(body, params) {
            Ok(window) => window,
            Err(e) => return Ok(Reply::error(400, "illegal_argument_exception", e.to_string())),
        };
        let keys = match SortKeys::parse(&body["sort"]) {
            Ok(keys) => keys,
            Err(e) => return Ok(Reply::error(400, "parsing_exception", e.to_string())),
        };
        // `search_after`: only matches after this position are kept (the
        // total still counts every match, as OpenSearch's does).
        let after = match body.get("search_after") {
            None | Some(Value::Null) => None,
            Some(_) if from > 0 => {
                return Ok(Reply::error(
                    400,
                    "illegal_argument_exception",
                    "[from] parameter must be set to 0 when [search_after] is used".to_owned(),
                ));
            }
            Some(after) => match SearchAfter::parse(after, &keys, indices) {
                Ok(after) => Some(after),
                Err(e) => return Ok(Reply::error(400, "illegal_argument_exception", e.to_string())),
            },
        };
        // Document order over everything (a scroll's, helpers.scan's): the
        // store's own order, reading only the page's documents.
        if query.get("match_all").is_some() && aggs.is_none() && keys.doc_order() && !count_only {
            return self.doc_order_page(indices, after.as_ref(), from, size, &keys);
        }
        // What is kept while reading: the first from+size in document
        // order, or — sorted — at most twice that, cut back to the best
        // from+size whenever it fills (ties keep document order, since the
        // kept ones precede every later match). Aggregations see every
        // match, but only the fields they read: each match gives them a
        // projection of its source (a few values), never a copy of it.
        let keep = from.saturating_add(size);
        let sorted = !body["sort"].is_null();
        let agg_fields = aggs.map(aggregations::fields);
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
                    projected.push(aggregations::project(&source, fields));
                }
                if count_only || (!sorted && total > keep) {
                    continue;
                }
                if let Some(after) = &after
                    && !after.admits(&keys, index_pos, &id, &source)
                {
                    continue;
                }
                hits.push(Hit { index: index_pos, id, source, sort: Vec::new() });
                if sorted
                    && hits.len() >= keep.saturating_mul(2).max(64)
                    && let Err(e) = sort_hits(&mut hits, &body["sort"], keep, indices)
                {
                    return Ok(Reply::error(400, "parsing_exception", e.to_string()));
                }
            }
        }
        if count_only {
            return Ok(search_reply(indices.len(), total, true, Vec::new(), None));
        }
        let aggregations = match aggs {
            Some(aggs) => {
                let sources: Vec<&Value> = projected.iter().collect();
                match aggregations::evaluate(aggs, &sources) {
                    Ok(result) => Some(result),
                    Err(e) => {
                        let mut reply = Reply::error(400, e.error_type(), e.to_string());
                        if let aggregations::AggError::TooManyBuckets(_) = e {
                            reply.body["error"]["max_buckets"] = json!(aggregations::MAX_BUCKETS);
                        }
                        return Ok(reply);
                    }
                }
            }
            None => None,
        };
        // Only the first from+size need to be in order.
        if let Err(e) = sort_hits(&mut hits, &body["sort"], from.saturating_add(size), indices) {
            return Ok(Reply::error(400, "parsing_exception", e.to_string()));
        }
        // Only the page becomes JSON hits; a sorted one shows each hit's
        // sort values (what `search_after` takes back) and no score.
        let page: Vec<Value> = hits
            .into_iter()
            .skip(from)
            .take(size)
            .map(|h| {
                if sorted {
                    json!({ "_index": indices.get(h.index), "_id": h.id, "_score": null, "_source": h.source, "sort": h.sort })
                } else {
                    json!({ "_index": indices.get(h.index), "_id": h.id, "_score": 1.0, "_source": h.source })
                }
            })
            .collect();
        let mut reply = search_reply(indices.len(), total, false, page, aggregations);
        if sorted {
            reply.body["hits"]["max_score"] = Value::Null;
        }
        Ok(reply)
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
            Err(e) => return Ok(Reply::error(400, "illegal_argument_exception", e.to_string())),
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
}

impl Embedded {
    /// `match_all` in document order from a `search_after` place: each
    /// index before the place is only counted, the one holding it is read
    /// from just past it, so a scroll's page costs its own documents (and
    /// a walk over the keys), not a read of every document.
    fn doc_order_page(
        &self,
        indices: &[String],
        after: Option<&SearchAfter>,
        from: usize,
        size: usize,
        keys: &SortKeys,
    ) -> Result<Reply, StoreError> {
        let place = after.and_then(SearchAfter::doc_place);
        let (mut total, mut skip, mut page) = (0, from, Vec::new());
        for (pos, index) in indices.iter().enumerate() {
            let store_index = docs(index);
            // Documents at or before the place are not this page's.
            let passed = match place {
                Some((at, _)) if pos < at => usize::MAX,
                Some((at, id)) if pos == at => {
                    let before = self.store.ids_between(&store_index, "", id)?.len();
                    before + self.store.ids_between(&store_index, id, &format!("{id}\0"))?.len()
                }
                _ => 0,
            };
            let wanted = size - page.len();
            let (count, documents) = if passed == usize::MAX {
                self.store.page(&store_index, usize::MAX, 0)?
            } else {
                self.store.page(&store_index, passed.saturating_add(skip), wanted)?
            };
            total += count;
            if passed != usize::MAX {
                skip = skip.saturating_sub(count.saturating_sub(passed));
            }
            for (id, doc) in documents {
                let mut stored: Value = serde_json::from_slice(&doc.source).unwrap_or(Value::Null);
                let source = stored.get_mut("s").map(Value::take).unwrap_or(Value::Null);
                let sort = keys.shown(indices, pos, &id, &source);
                page.push(
                    json!({ "_index": index, "_id": id, "_score": null, "_source": source, "sort": sort }),
                );
            }
        }
        let mut reply = search_reply(indices.len(), total, false, page, None);
        reply.body["hits"]["max_score"] = Value::Null;
        Ok(reply)
    }
}

/// One index's postings in the store.
struct StorePostings<'a> {
    store: &'a Store,
    index: &'a str,
}

impl Postings for StorePostings<'_> {
    type Error = StoreError;
    fn ids(&self, from: &str, to: &str) -> Result<BTreeSet<String>, StoreError> {
        Ok(self.store.postings(self.index, from, to)?.into_iter().collect())
    }
}

/// `from` and `size` of a search: the query string's, else the body's;
/// their sum at most [`MAX_RESULT_WINDOW`].
fn window(body: &Value, params: &Params) -> Result<(usize, usize), WindowError> {
    let one = |name: &'static str, in_path: Option<u64>, default: u64| match (in_path, body.get(name)) {
        (Some(n), _) => Ok(n),
        (None, None | Some(Value::Null)) => Ok(default),
        (None, Some(v)) => v.as_u64().ok_or_else(|| WindowError::NotANumber { name, value: v.clone() }),
    };
    let (from, size) = (one("from", params.from, 0)?, one("size", params.size, 10)?);
    let window = from.saturating_add(size);
    if window > MAX_RESULT_WINDOW {
        return Err(WindowError::TooLarge(window));
    }
    // Both fit: their sum is at most MAX_RESULT_WINDOW.
    Ok((from as usize, size as usize))
}

/// Each hit as asked: `_source` filtered (the URL's `_source`,
/// `_source_includes`, `_source_excludes` over the body's `_source`),
/// left out when `stored_fields` do not name it, and `fields` from
/// `docvalue_fields` (the values at each path of the whole source).
fn shape_hits(body: &mut Value, request: &Value, params: &Params) {
    let mut filter = request.get("_source").and_then(SourceFilter::from_json).unwrap_or_default();
    if let Some(url) = &params.source {
        filter.disabled = url.disabled;
        if !url.includes.is_empty() {
            filter.includes = url.includes.clone();
        }
        if !url.excludes.is_empty() {
            filter.excludes = url.excludes.clone();
        }
    }
    let names = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|f| f.as_str().or_else(|| f["field"].as_str()).map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    if let Some(stored) = request.get("stored_fields")
        && !names(stored).iter().any(|f| f == "_source")
    {
        filter.disabled = true;
    }
    let mut docvalues = request.get("docvalue_fields").map(names).unwrap_or_default();
    docvalues.extend(params.docvalue_fields.iter().cloned());
    let Some(hits) = body.get_mut("hits").and_then(|h| h.get_mut("hits")).and_then(Value::as_array_mut)
    else {
        return;
    };
    for hit in hits {
        let Some(hit) = hit.as_object_mut() else { continue };
        let source = hit.remove("_source").unwrap_or(Value::Null);
        if !docvalues.is_empty() {
            let mut fields = serde_json::Map::new();
            for name in &docvalues {
                let value = name.split('.').try_fold(&source, |v, key| v.get(key));
                match value {
                    Some(Value::Array(values)) => fields.insert(name.clone(), Value::Array(values.clone())),
                    Some(Value::Null) | None => None,
                    Some(value) => fields.insert(name.clone(), json!([value])),
                };
            }
            hit.insert("fields".into(), Value::Object(fields));
        }
        if let Some(shown) = filter.apply(&source) {
            hit.insert("_source".into(), shown);
        }
    }
}

/// The keys a search body may hold (OpenSearch's `SearchSourceBuilder`).
const SEARCH_KEYS: &[&str] = &[
    "query",
    "from",
    "size",
    "sort",
    "aggs",
    "aggregations",
    "_source",
    "stored_fields",
    "docvalue_fields",
    "fields",
    "track_total_hits",
    "track_scores",
    "search_after",
    "timeout",
    "terminate_after",
    "min_score",
    "post_filter",
    "highlight",
    "explain",
    "version",
    "seq_no_primary_term",
    "profile",
    "collapse",
    "rescore",
    "suggest",
    "script_fields",
    "indices_boost",
    "pit",
    "slice",
    "stats",
    "ext",
    "runtime_mappings",
];

/// `hits.total` as asked: counted up to `track_total_hits` (beyond it,
/// the limit with `gte`), left out when not tracked, or — with
/// `rest_total_hits_as_int` — a plain number (`-1` when not tracked).
fn total_hits(body: &mut Value, track: TrackTotalHits, as_int: bool) {
    let Some(hits) = body.get_mut("hits").and_then(Value::as_object_mut) else { return };
    let value = hits.get("total").and_then(|t| t["value"].as_u64()).unwrap_or(0);
    match track {
        TrackTotalHits::Off if as_int => {
            hits.insert("total".into(), json!(-1));
        }
        TrackTotalHits::Off => {
            hits.remove("total");
        }
        TrackTotalHits::UpTo(limit) if value > limit => {
            hits.insert("total".into(), json!({ "value": limit, "relation": "gte" }));
        }
        _ if as_int => {
            hits.insert("total".into(), json!(value));
        }
        _ => {}
    }
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
        return Reply::new(200, json!({ "count": total, "_shards": shards_info }));
    }
    let mut out = json!({ "took": 0, "timed_out": false, "_shards": shards_info, "hits": { "total": { "value": total, "relation": "eq" }, "max_score": if total > 0 { json!(1.0) } else { Value::Null }, "hits": hits } });
    if let (Some(aggregations), Some(obj)) = (aggregations, out.as_object_mut()) {
        obj.insert("aggregations".into(), aggregations);
    }
    Reply::new(200, out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::testing::{call, ids};
    use super::*;
    use crate::cluster::Backend;
    use crate::cluster::actions::resolve;

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

    /// Paging in document order with `search_after` (a scroll's pages)
    /// visits every document once, in (index, id) order, whether the
    /// store's order serves it (`match_all`) or a query is decided per
    /// document; the total is every match on every page.
    #[test]
    fn search_after_in_document_order_visits_every_document_once() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let e = Embedded::new(Arc::new(Store::open(&dir.path().join("s.redb"))?), "test")?;
        let mut bulk = String::new();
        let mut expected = Vec::new();
        for (index, count) in [("s1", 130), ("s2", 75)] {
            for i in 0..count {
                let id = format!("{}", i * 7919 % 1000);
                bulk.push_str(&format!(
                    "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"{id}\"}}}}\n{{\"k\":1}}\n"
                ));
                expected.push((index.to_owned(), id));
            }
        }
        expected.sort();
        let request = resolve("POST", "/_bulk", Some(bulk.as_bytes()))?;
        e.execute(&request, &request.indices, &Params::default(), Some(bulk.as_bytes()));
        for query in [json!({"match_all": {}}), json!({"exists": {"field": "k"}})] {
            let mut after = Value::Null;
            let mut seen = Vec::new();
            loop {
                let mut body = json!({"query": query, "sort": ["_shard_doc"], "size": 17});
                if !after.is_null() {
                    body["search_after"] = after.clone();
                }
                let page = call(&e, "POST", "/s1,s2/_search", Some(body));
                assert_eq!(page.body["hits"]["total"]["value"], 205, "{query}");
                let hits = page.body["hits"]["hits"].as_array().cloned().unwrap_or_default();
                let Some(last) = hits.last() else { break };
                after = last["sort"].clone();
                seen.extend(hits.iter().map(|h| {
                    (
                        h["_index"].as_str().unwrap_or("").to_owned(),
                        h["_id"].as_str().unwrap_or("").to_owned(),
                    )
                }));
                assert!(seen.len() <= 205, "{query}");
            }
            assert_eq!(seen, expected, "{query}");
        }
        Ok(())
    }
}
