//! The query DSL subset: validation, evaluation of a query against one
//! document ([`matches`]), the terms a document is indexed by
//! ([`terms_of`]), and the plan that narrows a search to candidate ids
//! through those postings ([`candidates`]).
//!
//! The postings are an over-approximation by design: a plan returns a
//! superset of the matching documents and [`matches`] decides, so the
//! index can only make a search faster, never change its answer.
//!
//! Terms are `<field>\0<kind><value>`: `n` numbers (order-preserving hex
//! of the f64, so ranges are key ranges), `d` strings that are dates (the
//! same encoding of their epoch millis), `b` booleans, `s` whole strings,
//! `w` the lowercased words of a string (when they are not just the string
//! itself). Only scalars and arrays of scalars are indexed — what
//! [`matches`] can reach through a dotted path.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::{ErrorKind, HasKind};

/// Bumped whenever [`terms_of`] changes: stores rebuild their postings.
pub const TERMS_VERSION: u64 = 2;

const QUERIES: [&str; 8] = ["match_all", "term", "terms", "ids", "exists", "range", "bool", "match"];

/// A query outside the supported subset (400 `parsing_exception`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("query must be an object with one clause")]
    NotOneClause,
    #[error("unknown query [{0}] (supported: {list})", list = QUERIES.join(", "))]
    Unknown(String),
}

impl HasKind for QueryError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

/// Whether `query` (and every clause of a `bool`) is one this subset knows.
pub fn validate_query(query: &Value) -> Result<(), QueryError> {
    let Some((kind, body)) = query.as_object().and_then(|o| o.iter().next()) else {
        return Err(QueryError::NotOneClause);
    };
    if !QUERIES.contains(&kind.as_str()) {
        return Err(QueryError::Unknown(kind.clone()));
    }
    if kind == "bool" {
        for clause in ["must", "filter", "should", "must_not"] {
            for q in clauses(&body[clause]) {
                validate_query(q)?;
            }
        }
    }
    Ok(())
}

fn clauses(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// The value at a dotted path.
fn field<'a>(source: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(source, |v, key| v.get(key))
}

fn term_matches(actual: Option<&Value>, expected: &Value) -> bool {
    match actual {
        Some(Value::Array(a)) => a.iter().any(|v| v == expected),
        Some(v) => v == expected,
        None => false,
    }
}

/// `term`/`terms` on `_id` (the document's id, not a source field) as the
/// `ids` query it means; ids written as numbers are their text.
fn on_id(query: &Value) -> Option<Value> {
    let (kind, body) = query.as_object().and_then(|o| o.iter().next())?;
    let wanted = body.get("_id")?;
    let text = |v: &Value| match v {
        Value::String(s) => Some(Value::String(s.clone())),
        Value::Number(n) => Some(Value::String(n.to_string())),
        _ => None,
    };
    let values: Vec<Value> = match kind.as_str() {
        "term" => text(wanted.get("value").unwrap_or(wanted)).into_iter().collect(),
        "terms" => wanted.as_array()?.iter().filter_map(text).collect(),
        _ => return None,
    };
    Some(serde_json::json!({ "ids": { "values": values } }))
}

pub fn matches(query: &Value, id: &str, source: &Value) -> bool {
    if let Some(ids) = on_id(query) {
        return matches(&ids, id, source);
    }
    let Some((kind, body)) = query.as_object().and_then(|o| o.iter().next()) else { return false };
    let single = || body.as_object().and_then(|o| o.iter().next());
    match kind.as_str() {
        "match_all" => true,
        "term" => single().is_some_and(|(f, v)| term_matches(field(source, f), v.get("value").unwrap_or(v))),
        "terms" => single().is_some_and(|(f, vs)| {
            vs.as_array().is_some_and(|vs| vs.iter().any(|v| term_matches(field(source, f), v)))
        }),
        "match" => single().is_some_and(|(f, v)| {
            let wanted = v.get("query").unwrap_or(v);
            match (field(source, f), wanted) {
                (Some(Value::String(text)), Value::String(q)) => {
                    let words: Vec<String> =
                        text.to_lowercase().split_whitespace().map(str::to_owned).collect();
                    q.to_lowercase().split_whitespace().any(|w| words.iter().any(|x| x == w))
                }
                (actual, wanted) => term_matches(actual, wanted),
            }
        }),
        "ids" => body["values"].as_array().is_some_and(|ids| ids.iter().any(|v| v.as_str() == Some(id))),
        "exists" => body["field"].as_str().is_some_and(|f| field(source, f).is_some_and(|v| !v.is_null())),
        "range" => single().is_some_and(|(f, bounds)| {
            let Some(actual) = field(source, f) else { return false };
            let now = crate::time::now_ms_signed();
            RANGE_BOUNDS.iter().all(|&(key, ok, round_up)| {
                bounds.get(key).is_none_or(|b| compare(actual, b, now, round_up).is_some_and(ok))
            })
        }),
        "bool" => {
            let all = |c: &str| clauses(&body[c]).iter().all(|q| matches(q, id, source));
            let should = clauses(&body["should"]);
            let must_not = clauses(&body["must_not"]).iter().any(|q| matches(q, id, source));
            let has_required = !clauses(&body["must"]).is_empty() || !clauses(&body["filter"]).is_empty();
            let should_ok =
                should.is_empty() || has_required || should.iter().any(|q| matches(q, id, source));
            all("must") && all("filter") && !must_not && should_ok
        }
        _ => false,
    }
}

/// The range keys: each with the ordering it accepts and whether date
/// math rounds it up (to the unit's last millisecond).
const RANGE_BOUNDS: [RangeBound; 4] = [
    ("gt", std::cmp::Ordering::is_gt, true),
    ("gte", std::cmp::Ordering::is_ge, false),
    ("lt", std::cmp::Ordering::is_lt, false),
    ("lte", std::cmp::Ordering::is_le, true),
];

/// (key, accepted ordering, rounds up).
type RangeBound = (&'static str, fn(std::cmp::Ordering) -> bool, bool);

/// How a range compares `actual` with a bound: numbers as numbers; a
/// bound that is a date (or date math) against the actual value read as a
/// date (ISO string or epoch millis); other strings by their text.
fn compare(actual: &Value, bound: &Value, now: i64, round_up: bool) -> Option<std::cmp::Ordering> {
    match (actual, bound) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (_, Value::String(b)) => match super::dates::bound(b, now, round_up) {
            Some(b) => Some(super::dates::millis(actual)?.cmp(&b)),
            None => match actual {
                Value::String(a) => Some(a.as_str().cmp(b.as_str())),
                _ => None,
            },
        },
        _ => None,
    }
}

/// The terms a document source is found by.
pub fn terms_of(source: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = String::new();
    walk(&mut path, source, &mut out);
    out
}

fn walk(path: &mut String, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields {
                let len = path.len();
                if len > 0 {
                    path.push('.');
                }
                path.push_str(key);
                walk(path, v, out);
                path.truncate(len);
            }
        }
        // `field` does not descend into arrays: only their scalars count.
        Value::Array(items) => {
            for item in items.iter().filter(|i| !i.is_object() && !i.is_array()) {
                walk(path, item, out);
            }
        }
        scalar => {
            if let Some(term) = exact_term(path, scalar) {
                out.push(term);
            }
            if let Value::String(text) = scalar {
                if let Some(ms) = super::dates::parse(text) {
                    out.push(format!("{path}\0d{}", ordered(ms as f64)));
                }
                let words: Vec<String> = text.to_lowercase().split_whitespace().map(str::to_owned).collect();
                if words.len() != 1 || words[0] != *text {
                    out.extend(words.iter().map(|w| format!("{path}\0w{w}")));
                }
            }
        }
    }
}

/// The term an exact scalar value is posted under.
fn exact_term(field: &str, value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(format!("{field}\0n{}", ordered(n.as_f64()?))),
        Value::Bool(b) => Some(format!("{field}\0b{b}")),
        Value::String(s) => Some(format!("{field}\0s{s}")),
        _ => None,
    }
}

/// Hex of an f64 whose byte order is numeric order (-0.0 is 0.0).
fn ordered(x: f64) -> String {
    let x = if x == 0.0 { 0.0 } else { x };
    let bits = x.to_bits();
    let key = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    format!("{key:016x}")
}

/// A lookup in the postings: the ids holding a term in `from..to`.
pub trait Postings {
    type Error;
    fn ids(&self, from: &str, to: &str) -> Result<BTreeSet<String>, Self::Error>;
}

fn exact<P: Postings>(postings: &P, term: &str) -> Result<BTreeSet<String>, P::Error> {
    // A term is a whole key: `term` itself up to `term\0` (excluded).
    postings.ids(term, &format!("{term}\0"))
}

/// The ids that can match `query` — a superset of those that do — or
/// `None` when the postings cannot narrow it (the index is scanned).
pub fn candidates<P: Postings>(query: &Value, postings: &P) -> Result<Option<BTreeSet<String>>, P::Error> {
    if let Some(ids) = on_id(query) {
        return candidates(&ids, postings);
    }
    let Some((kind, body)) = query.as_object().and_then(|o| o.iter().next()) else { return Ok(None) };
    let single = || body.as_object().and_then(|o| o.iter().next());
    Ok(match kind.as_str() {
        "term" => match single() {
            Some((f, v)) => match exact_term(f, v.get("value").unwrap_or(v)) {
                Some(term) => Some(exact(postings, &term)?),
                None => None,
            },
            None => None,
        },
        "terms" => match single().and_then(|(f, vs)| Some((f, vs.as_array()?))) {
            Some((f, values)) => union(values.iter().map(|v| exact_term(f, v)), postings)?,
            None => None,
        },
        "ids" => body["values"]
            .as_array()
            .map(|ids| ids.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
        "match" => match single() {
            Some((f, v)) => match v.get("query").unwrap_or(v) {
                Value::String(q) => {
                    // A word of the text, a whole string equal to a word, or
                    // (for arrays) an element equal to the query.
                    let mut terms = vec![Some(format!("{f}\0s{q}"))];
                    for w in q.to_lowercase().split_whitespace() {
                        terms.push(Some(format!("{f}\0w{w}")));
                        terms.push(Some(format!("{f}\0s{w}")));
                    }
                    union(terms.into_iter(), postings)?
                }
                other => exact_term(f, other).map(|term| exact(postings, &term)).transpose()?,
            },
            None => None,
        },
        "range" => match single() {
            Some((f, bounds)) => range(f, bounds, postings)?,
            None => None,
        },
        "bool" => {
            let required: Vec<&Value> =
                clauses(&body["must"]).into_iter().chain(clauses(&body["filter"])).collect();
            let should = clauses(&body["should"]);
            if !required.is_empty() {
                let mut narrowed: Option<BTreeSet<String>> = None;
                for q in required {
                    if let Some(ids) = candidates(q, postings)? {
                        narrowed = Some(match narrowed {
                            Some(so_far) => so_far.intersection(&ids).cloned().collect(),
                            None => ids,
                        });
                    }
                }
                narrowed
            } else if !should.is_empty() {
                let mut all = BTreeSet::new();
                for q in should {
                    match candidates(q, postings)? {
                        Some(ids) => all.extend(ids),
                        None => return Ok(None),
                    }
                }
                Some(all)
            } else {
                None
            }
        }
        _ => None,
    })
}

/// The union of the postings of `terms`; `None` if one is not indexable.
fn union<P: Postings>(
    terms: impl Iterator<Item = Option<String>>,
    postings: &P,
) -> Result<Option<BTreeSet<String>>, P::Error> {
    let mut all = BTreeSet::new();
    for term in terms {
        let Some(term) = term else { return Ok(None) };
        all.extend(exact(postings, &term)?);
    }
    Ok(Some(all))
}

/// A range over numbers, dates or strings is a key range (bounds taken
/// inclusively and dates widened by a second, as `now` moves while the
/// search runs; [`matches`] applies the bounds exactly).
fn range<P: Postings>(
    field: &str,
    bounds: &Value,
    postings: &P,
) -> Result<Option<BTreeSet<String>>, P::Error> {
    let now = crate::time::now_ms_signed();
    let present: Vec<(&Value, bool, bool)> = RANGE_BOUNDS
        .iter()
        .filter_map(|&(key, _, round_up)| bounds.get(key).map(|b| (b, key.starts_with('g'), round_up)))
        .collect();
    if present.is_empty() {
        return Ok(None);
    }
    let numbers = present.iter().all(|(b, _, _)| b.is_number());
    let dates: Option<Vec<(i64, bool)>> = present
        .iter()
        .map(|&(b, lower, up)| b.as_str().and_then(|s| super::dates::bound(s, now, up)).map(|ms| (ms, lower)))
        .collect();
    let any_date = present
        .iter()
        .any(|&(b, _, up)| b.as_str().is_some_and(|s| super::dates::bound(s, now, up).is_some()));
    // Text order only when no bound is a date (a date bound compares by time).
    let strings = !any_date && present.iter().all(|(b, _, _)| b.is_string());
    // (kind, lowest key value, highest key value) per kind to read.
    let spans: Vec<(char, Option<String>, Option<String>)> = if numbers {
        let side =
            |lower: bool| present.iter().filter(|p| p.1 == lower).find_map(|p| p.0.as_f64()).map(ordered);
        vec![('n', side(true), side(false))]
    } else if let Some(dates) = dates {
        let side = |lower: bool, widen: i64| {
            dates.iter().filter(|d| d.1 == lower).map(|d| d.0 + widen).next().map(|ms| ordered(ms as f64))
        };
        let (lo, hi) = (side(true, -1000), side(false, 1000));
        // Dates are ISO strings (`d`) or epoch millis (`n`).
        vec![('d', lo.clone(), hi.clone()), ('n', lo, hi)]
    } else if strings {
        let side = |lower: bool| {
            present.iter().filter(|p| p.1 == lower).find_map(|p| p.0.as_str().map(str::to_owned))
        };
        vec![('s', side(true), side(false))]
    } else {
        // Bounds of mixed kinds: leave it to the scan.
        return Ok(None);
    };
    let mut all = BTreeSet::new();
    for (kind, lo, hi) in spans {
        let base = format!("{field}\0{kind}");
        // The next kind's first key: every value of this kind sorts below it.
        let end_of_kind = format!("{field}\0{}", char::from(kind as u8 + 1));
        let from = match lo {
            Some(k) => format!("{base}{k}"),
            None => base.clone(),
        };
        // A value <= the bound sorts below `bound\0`; nothing lies between
        // the bound and `bound\0`.
        let to = match hi {
            Some(k) => format!("{base}{k}\0"),
            None => end_of_kind,
        };
        if from < to {
            all.extend(postings.ids(&from, &to)?);
        }
    }
    Ok(Some(all))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::json;

    use super::*;

    /// Postings in memory, built with [`terms_of`] as the store builds them.
    struct Memory(BTreeMap<String, BTreeSet<String>>);

    impl Postings for Memory {
        type Error = std::convert::Infallible;
        fn ids(&self, from: &str, to: &str) -> Result<BTreeSet<String>, Self::Error> {
            Ok(self
                .0
                .range(from.to_owned()..to.to_owned())
                .flat_map(|(_, ids)| ids.iter().cloned())
                .collect())
        }
    }

    fn docs() -> Vec<(String, Value)> {
        let sources = [
            json!({"user": "ana", "level": "ERROR", "n": 5, "msg": "Disk is full", "tags": ["a", "b"], "ok": false, "at": "2026-01-02"}),
            json!({"user": "bob", "level": "info", "n": 5.0, "msg": "disk ok", "tags": ["b"], "ok": true, "at": "2026-01-05"}),
            json!({"user": "Ana", "level": "warn", "n": -0.0, "msg": "", "geo": {"city": "Oslo"}, "at": "2025-12-31"}),
            json!({"user": "cy", "n": -3, "msg": "full", "tags": [{"x": 1}, " "], "big": 9007199254740993u64}),
            json!({"user": "dee", "n": 0, "msg": "Full disk", "nested": [[1]], "at": "2026-01-05T10:00:00Z"}),
            json!({"user": "fay", "at": "2026-01-05T11:30:00+01:00", "t": 1_767_609_000_000u64}),
            json!({"user": "gus", "at": 1_767_609_000_000u64, "t": "2026-01-05T10:30:00Z"}),
            json!({"user": "eve \u{10FFFF}", "n": 12.5, "geo": {"city": "oslo south"}, "at": "\u{10FFFF}"}),
        ];
        sources.into_iter().enumerate().map(|(i, s)| (format!("d{i}"), s)).collect()
    }

    fn postings(docs: &[(String, Value)]) -> Memory {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, source) in docs {
            for term in terms_of(source) {
                map.entry(term).or_default().insert(id.clone());
            }
        }
        Memory(map)
    }

    /// The plan never loses a match, and it narrows the queries it can.
    #[test]
    fn candidates_are_a_superset_of_matches_and_narrow() {
        let docs = docs();
        let index = postings(&docs);
        let narrowing = [
            json!({"term": {"user": "ana"}}),
            json!({"term": {"user": {"value": "Ana"}}}),
            json!({"term": {"n": 5}}),
            json!({"term": {"n": 5.0}}),
            json!({"term": {"n": 0}}),
            json!({"term": {"ok": true}}),
            json!({"term": {"tags": "b"}}),
            json!({"term": {"geo.city": "Oslo"}}),
            json!({"terms": {"user": ["bob", "cy"]}}),
            json!({"ids": {"values": ["d1", "d9"]}}),
            json!({"match": {"msg": "disk"}}),
            json!({"match": {"msg": {"query": "FULL"}}}),
            json!({"match": {"geo.city": "oslo"}}),
            json!({"match": {"tags": "a"}}),
            json!({"match": {"tags": " "}}),
            json!({"match": {"n": 5}}),
            json!({"range": {"n": {"gte": 0, "lt": 6}}}),
            json!({"range": {"n": {"gt": 0}}}),
            json!({"range": {"n": {"lte": 0}}}),
            json!({"range": {"n": {"gte": -0.0, "lte": 0}}}),
            json!({"range": {"at": {"gte": "2026-01-01", "lte": "2026-01-05"}}}),
            json!({"range": {"at": {"gt": "2026-01-03"}}}),
            json!({"range": {"big": {"gte": 9007199254740993u64}}}),
            json!({"range": {"at": {"gte": "2026-01-05T10:15:00Z", "lt": "2026-01-05T10:45:00Z"}}}),
            json!({"range": {"at": {"gt": "2026-01-04||/d", "lte": "2026-01-05||/d"}}}),
            json!({"range": {"t": {"gte": "2026-01-05T10:30:00Z"}}}),
            json!({"range": {"at": {"lte": "now"}}}),
            // Text bounds: eve's `at` is text past every letter.
            json!({"range": {"at": {"gte": "a", "lte": "\u{10FFFF}"}}}),
            json!({"bool": {"must": [{"term": {"user": "ana"}}, {"exists": {"field": "n"}}]}}),
            json!({"bool": {"filter": {"range": {"n": {"gte": 5}}}, "must_not": {"term": {"ok": true}}}}),
            json!({"bool": {"should": [{"term": {"user": "bob"}}, {"match": {"msg": "full"}}]}}),
        ];
        let scanning = [
            json!({"match_all": {}}),
            json!({"exists": {"field": "geo"}}),
            json!({"bool": {"must_not": {"term": {"user": "ana"}}}}),
            json!({"bool": {"should": [{"term": {"user": "bob"}}, {"exists": {"field": "tags"}}]}}),
            json!({"range": {"n": {"gte": 0, "lt": "z"}}}),
            json!({"range": {"at": {"gte": "2026-01-01", "lt": "zzz"}}}),
            json!({"term": {"geo": {"city": "Oslo"}}}),
        ];
        for (query, expect_narrowed) in
            narrowing.iter().map(|q| (q, true)).chain(scanning.iter().map(|q| (q, false)))
        {
            let matched: BTreeSet<String> =
                docs.iter().filter(|(id, s)| matches(query, id, s)).map(|(id, _)| id.clone()).collect();
            // A narrowing query that matches nothing would make the
            // superset check below vacuous.
            assert!(!expect_narrowed || !matched.is_empty(), "{query}: matches no document");
            let Ok(plan) = candidates(query, &index);
            match plan {
                Some(candidates) => {
                    assert!(expect_narrowed, "{query}: expected a scan");
                    assert!(matched.is_subset(&candidates), "{query}: lost {matched:?} ⊄ {candidates:?}");
                    assert!(candidates.len() < docs.len(), "{query}: did not narrow");
                }
                None => assert!(!expect_narrowed, "{query}: expected the postings to narrow it"),
            }
        }
    }

    /// Date bounds compare by time whatever the offset or form (ISO string
    /// or epoch millis); text bounds by text.
    #[test]
    fn ranges_compare_dates_by_time() {
        let docs = docs();
        let ids = |query: Value| -> Vec<String> {
            docs.iter().filter(|(id, s)| matches(&query, id, s)).map(|(id, _)| id.clone()).collect()
        };
        let half_hour =
            json!({"range": {"at": {"gte": "2026-01-05T10:15:00Z", "lt": "2026-01-05T10:45:00Z"}}});
        assert_eq!(ids(half_hour), ["d5", "d6"], "+01:00 and epoch millis count by their instant");
        let that_day = json!({"range": {"at": {"gte": "2026-01-05||/d", "lte": "2026-01-05||/d"}}});
        assert_eq!(ids(that_day), ["d1", "d4", "d5", "d6"]);
        let past = json!({"range": {"at": {"lt": "now"}}});
        assert_eq!(ids(past).len(), 6, "every date but U+10FFFF, which is not one");
        let text = json!({"range": {"user": {"gte": "b", "lt": "d"}}});
        assert_eq!(ids(text), ["d1", "d3"]);
    }

    #[test]
    fn numbers_keep_their_order_as_keys() {
        let values = [-1e300, -12.5, -3.0, -0.5, 0.0, 1e-9, 5.0, 12.5, 9.007199254740993e15, 1e300];
        let keys: Vec<String> = values.iter().map(|v| ordered(*v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(ordered(-0.0), ordered(0.0));
    }
}
