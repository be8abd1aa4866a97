//! `query`: a search body's `query` (the DSL subset) and `aggs`, as any
//! user or extension sends them, over a small fixed document set.
//!
//! The input is JSON: `{"query": …, "aggs": …}` (either may be missing;
//! a value that is neither is taken as the query).
//!
//! Properties: a query that validates is evaluated against every
//! document without a panic, and the postings plan never misses a match
//! (its candidates are a superset of the matches, the premise that lets a
//! search read only candidates) nor asks the store for an inverted key
//! range; aggregations evaluate without a panic, and the same over each
//! document's projection on the fields they read as over the whole
//! sources (the premise that lets a search hand them projections).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::cluster::aggregations::{evaluate, fields, project};
use crate::cluster::query::{Postings, candidates, matches, terms_of, validate_query};

fn documents() -> &'static Vec<(String, Value)> {
    static DOCS: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let docs = [
            json!({"title": "Hello World", "n": 1, "tags": ["a", "b"], "at": "2026-11-22T10:15:30Z", "ok": true}),
            json!({"title": "hello", "n": 2.5, "tags": "a", "at": 1_700_000_000_000_i64, "user": {"name": "ana", "age": 31}}),
            json!({"title": "", "n": -3, "tags": [], "at": "2026-11-22", "ok": false, "user": {"name": "bob"}}),
            json!({"n": null, "at": "not a date", "nested": [{"x": 1}, 2, "two"]}),
            json!({"title": "Hello  world  again", "n": 1e300, "at": "1969-12-31T23:59:59.999-01:30"}),
            json!({"title": 7, "n": "7", "tags": ["7", 7, true, null], "at": "2026-02-29"}),
            json!({"a.b": "dotted key", "a": {"b": "nested key"}, "n": 0, "neg": -0.0}),
            json!({}),
        ];
        docs.into_iter().enumerate().map(|(i, d)| (format!("d{i}"), d)).collect()
    })
}

/// The postings of [`documents`], built as the store builds them.
struct Memory(BTreeMap<String, BTreeSet<String>>);

impl Postings for Memory {
    type Error = std::convert::Infallible;
    fn ids(&self, from: &str, to: &str) -> Result<BTreeSet<String>, Self::Error> {
        // The store's range panics on an inverted one.
        assert!(from <= to, "the plan asked for an inverted key range {from:?}..{to:?}");
        Ok(self.0.range(from.to_owned()..to.to_owned()).flat_map(|(_, ids)| ids.iter().cloned()).collect())
    }
}

fn postings() -> &'static Memory {
    static POSTINGS: OnceLock<Memory> = OnceLock::new();
    POSTINGS.get_or_init(|| {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, source) in documents() {
            for term in terms_of(source) {
                map.entry(term).or_default().insert(id.clone());
            }
        }
        Memory(map)
    })
}

pub fn check_query(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let (query, aggs) = match body.as_object() {
        Some(o) if o.contains_key("query") || o.contains_key("aggs") || o.contains_key("aggregations") => {
            (o.get("query").cloned(), o.get("aggs").or_else(|| o.get("aggregations")).cloned())
        }
        _ => (Some(body.clone()), None),
    };
    if let Some(query) = query
        && validate_query(&query).is_ok()
    {
        check_matches(&query);
    }
    if let Some(aggs) = aggs {
        check_aggregations(&aggs);
    }
}

fn check_matches(query: &Value) {
    let plan = match candidates(query, postings()) {
        Ok(plan) => plan,
        Err(never) => match never {},
    };
    for (id, source) in documents() {
        if matches(query, id, source)
            && let Some(plan) = &plan
        {
            // Date math on `now` moves between the two reads; the plan
            // widens date bounds by a second for that.
            assert!(plan.contains(id), "`{id}` matches {query} but the postings plan {plan:?} leaves it out");
        }
    }
}

fn check_aggregations(aggs: &Value) {
    let sources: Vec<&Value> = documents().iter().map(|(_, d)| d).collect();
    let whole = evaluate(aggs, &sources);
    let read = fields(aggs);
    let projected: Vec<Value> = sources.iter().map(|s| project(s, &read)).collect();
    let projected: Vec<&Value> = projected.iter().collect();
    assert_eq!(evaluate(aggs, &projected), whole, "aggregations over projections differ ({read:?})");
}
