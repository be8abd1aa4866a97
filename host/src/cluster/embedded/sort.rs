//! `sort`: `["field", {"field": {"order": "desc"}}, {"field": "asc"}]`;
//! numbers before strings, missing values last; `_score` (every hit scores
//! 1.0 here), `_id`, and `_doc`/`_shard_doc` (document order: the searched
//! index's position, then the id — unique, so the tiebreaker that makes
//! `search_after` paging exact). [`sort_hits`] keeps only the best `keep`
//! hits, so a search holds about its page, not its matches, and gives each
//! kept hit its `sort` values; [`SearchAfter`] is the `search_after`
//! position a match must come after.

use std::cmp::Ordering;

use serde_json::Value;

use crate::error::{ErrorKind, HasKind};

/// A matching document, before it becomes a JSON hit.
pub(super) struct Hit {
    /// Position of its index in the searched indices.
    pub index: usize,
    pub id: String,
    pub source: Value,
    /// Its sort values as OpenSearch shows them in `hits[].sort` (set by
    /// [`sort_hits`] for the hits it keeps).
    pub sort: Vec<Value>,
}

/// A sort clause OpenSearch would not parse (400 `parsing_exception`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SortError {
    #[error("empty sort clause")]
    EmptyClause,
    /// The order given for a field is neither a string nor an object.
    #[error("sort on [{field}]: expected \"asc\", \"desc\" or an object, not {spec}")]
    BadSpec { field: String, spec: Value },
    /// A clause that is neither a field name nor a one-field object.
    #[error("a sort clause is a field name or {{\"field\": {{\"order\": …}}}}, not {0}")]
    BadClause(Value),
    #[error("sort on [{field}]: unknown order [{order}] (asc or desc)")]
    UnknownOrder { field: String, order: String },
    /// `search_after` without a sort to be after in.
    #[error("Sort must contain at least one field.")]
    AfterWithoutSort,
    #[error("search_after has {given} value(s) but sort has {expected}.")]
    AfterLength { given: usize, expected: usize },
    #[error("search_after value {value} does not fit the sort on [{field}]")]
    AfterValue { field: String, value: Value },
}

impl HasKind for SortError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

/// A sort key of one hit: numbers before text, missing values last;
/// `Doc` is a document's place (index position, id).
#[derive(Debug, Clone, PartialEq)]
enum SortValue {
    Number(f64),
    Text(String),
    Doc(usize, String),
    Missing,
}

/// What a sort clause sorts on.
#[derive(Debug, Clone, PartialEq)]
enum SortOn {
    Field(String),
    Score,
    Id,
    Doc,
}

impl SortOn {
    fn of(field: String) -> SortOn {
        match field.as_str() {
            "_score" => SortOn::Score,
            "_id" => SortOn::Id,
            "_doc" | "_shard_doc" => SortOn::Doc,
            _ => SortOn::Field(field),
        }
    }

    fn name(&self) -> &str {
        match self {
            SortOn::Field(f) => f,
            SortOn::Score => "_score",
            SortOn::Id => "_id",
            SortOn::Doc => "_shard_doc",
        }
    }

    /// The key of a hit in `index` (its position `pos`), `id`, `source`.
    fn value(&self, pos: usize, id: &str, source: &Value) -> SortValue {
        match self {
            SortOn::Field(field) => SortValue::of(field.split('.').try_fold(source, |v, k| v.get(k))),
            SortOn::Score => SortValue::Number(1.0),
            SortOn::Id => SortValue::Text(id.to_owned()),
            SortOn::Doc => SortValue::Doc(pos, id.to_owned()),
        }
    }

    /// The value shown in `hits[].sort`: the field's own JSON value; a
    /// document's place as `<index>/<id>` (index names hold no `/`).
    fn shown(&self, indices: &[String], pos: usize, id: &str, source: &Value) -> Value {
        match self {
            SortOn::Field(field) => {
                field.split('.').try_fold(source, |v, k| v.get(k)).cloned().unwrap_or(Value::Null)
            }
            SortOn::Score => Value::from(1.0),
            SortOn::Id => Value::String(id.to_owned()),
            SortOn::Doc => Value::String(format!("{}/{id}", indices.get(pos).map_or("", String::as_str))),
        }
    }
}

/// The parsed `sort` of a search: what each clause sorts on, and whether descending.
pub(super) struct SortKeys(Vec<(SortOn, bool)>);

impl SortKeys {
    pub fn parse(sort: &Value) -> Result<SortKeys, SortError> {
        let keys: Vec<(String, bool)> = match sort {
            Value::Null => Vec::new(),
            Value::Array(items) => items.iter().map(sort_key).collect::<Result<_, _>>()?,
            other => vec![sort_key(other)?],
        };
        Ok(SortKeys(keys.into_iter().map(|(f, d)| (SortOn::of(f), d)).collect()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the sort is document order alone (`_doc`/`_shard_doc`,
    /// ascending): a scroll's default, which the store's own order serves.
    pub fn doc_order(&self) -> bool {
        matches!(self.0.as_slice(), [(SortOn::Doc, false)])
    }

    /// The `sort` values of a hit, as [`sort_hits`] gives them.
    pub fn shown(&self, indices: &[String], pos: usize, id: &str, source: &Value) -> Vec<Value> {
        self.0.iter().map(|(on, _)| on.shown(indices, pos, id, source)).collect()
    }

    fn values(&self, pos: usize, id: &str, source: &Value) -> Vec<SortValue> {
        self.0.iter().map(|(on, _)| on.value(pos, id, source)).collect()
    }

    fn order(&self, a: &[SortValue], b: &[SortValue]) -> Ordering {
        a.iter()
            .zip(b)
            .zip(&self.0)
            .map(|((x, y), (_, descending))| x.compare(y, *descending))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

/// A `search_after` position: a match is kept only if it sorts strictly
/// after it, as OpenSearch keeps them.
pub(super) struct SearchAfter(Vec<SortValue>);

impl SearchAfter {
    /// `after` (the `search_after` array) read against `keys`; a
    /// `_shard_doc` value is `<index>/<id>` as hits show it, the index
    /// looked up in `indices` (one no longer searched sorts after all).
    pub fn parse(after: &Value, keys: &SortKeys, indices: &[String]) -> Result<SearchAfter, SortError> {
        if keys.is_empty() {
            return Err(SortError::AfterWithoutSort);
        }
        let values = match after {
            Value::Array(values) => values,
            other => {
                return Err(SortError::AfterValue {
                    field: keys.0[0].0.name().to_owned(),
                    value: other.clone(),
                });
            }
        };
        if values.len() != keys.0.len() {
            return Err(SortError::AfterLength { given: values.len(), expected: keys.0.len() });
        }
        let mut out = Vec::with_capacity(values.len());
        for ((on, _), value) in keys.0.iter().zip(values) {
            let bad = || SortError::AfterValue { field: on.name().to_owned(), value: value.clone() };
            out.push(match (on, value) {
                (SortOn::Doc, Value::String(place)) => {
                    let (index, id) = place.split_once('/').ok_or_else(bad)?;
                    let pos = indices.iter().position(|i| i == index).unwrap_or(indices.len());
                    SortValue::Doc(pos, id.to_owned())
                }
                (SortOn::Doc, _) => return Err(bad()),
                (_, Value::Array(_) | Value::Object(_)) => return Err(bad()),
                (_, value) => SortValue::of(Some(value)),
            });
        }
        Ok(SearchAfter(out))
    }

    /// The document place of a `search_after` in document order.
    pub fn doc_place(&self) -> Option<(usize, &str)> {
        match self.0.as_slice() {
            [SortValue::Doc(pos, id)] => Some((*pos, id.as_str())),
            _ => None,
        }
    }

    /// Whether the hit (index position `pos`, `id`, `source`) comes after.
    pub fn admits(&self, keys: &SortKeys, pos: usize, id: &str, source: &Value) -> bool {
        keys.order(&keys.values(pos, id, source), &self.0).is_gt()
    }
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
    fn compare(&self, other: &SortValue, descending: bool) -> Ordering {
        let ord = match (self, other) {
            (SortValue::Missing, SortValue::Missing) => return Ordering::Equal,
            (SortValue::Missing, _) => return Ordering::Greater,
            (_, SortValue::Missing) => return Ordering::Less,
            (SortValue::Number(x), SortValue::Number(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
            (SortValue::Number(_), SortValue::Text(_)) => Ordering::Less,
            (SortValue::Text(_), SortValue::Number(_)) => Ordering::Greater,
            (SortValue::Text(x), SortValue::Text(y)) => x.cmp(y),
            (SortValue::Doc(p, x), SortValue::Doc(q, y)) => p.cmp(q).then_with(|| x.cmp(y)),
            (SortValue::Doc(..), _) => Ordering::Greater,
            (_, SortValue::Doc(..)) => Ordering::Less,
        };
        if descending { ord.reverse() } else { ord }
    }
}

/// Orders `hits` by `sort` and keeps the first `keep`: each hit's keys are
/// read once, and only the kept ones are fully sorted (a selection finds
/// them first), so "the latest 10 of 100,000" does not sort 100,000. Ties
/// keep the documents' order. Each kept hit gets its `sort` values
/// (`indices` names the documents' places).
pub(super) fn sort_hits(
    hits: &mut Vec<Hit>,
    sort: &Value,
    keep: usize,
    indices: &[String],
) -> Result<(), SortError> {
    let keys = SortKeys::parse(sort)?;
    if keys.is_empty() {
        return Ok(());
    }
    let mut keyed: Vec<(Vec<SortValue>, usize, Hit)> = std::mem::take(hits)
        .into_iter()
        .enumerate()
        .map(|(position, hit)| (keys.values(hit.index, &hit.id, &hit.source), position, hit))
        .collect();
    let order = |a: &(Vec<SortValue>, usize, Hit), b: &(Vec<SortValue>, usize, Hit)| {
        keys.order(&a.0, &b.0).then_with(|| a.1.cmp(&b.1))
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
    *hits = keyed
        .into_iter()
        .map(|(_, _, mut hit)| {
            hit.sort =
                keys.0.iter().map(|(on, _)| on.shown(indices, hit.index, &hit.id, &hit.source)).collect();
            hit
        })
        .collect();
    Ok(())
}

/// One sort clause: `"field"`, `{"field": "desc"}` or `{"field": {"order": "desc"}}`.
fn sort_key(item: &Value) -> Result<(String, bool), SortError> {
    let (field, order) = match item {
        Value::String(field) => (field.clone(), "asc"),
        Value::Object(o) if o.len() == 1 => {
            let Some((field, spec)) = o.iter().next() else { return Err(SortError::EmptyClause) };
            let order = match spec {
                Value::String(order) => order.as_str(),
                Value::Object(options) => options.get("order").and_then(Value::as_str).unwrap_or("asc"),
                other => return Err(SortError::BadSpec { field: field.clone(), spec: other.clone() }),
            };
            (field.clone(), order)
        }
        other => return Err(SortError::BadClause(other.clone())),
    };
    match order.to_ascii_lowercase().as_str() {
        "asc" => Ok((field, false)),
        "desc" => Ok((field, true)),
        other => Err(SortError::UnknownOrder { field, order: other.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::Embedded;
    use super::super::testing::{call, ids};
    use crate::store::Store;

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
        let page = |sort: serde_json::Value, from: u64, size: u64| {
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
}
