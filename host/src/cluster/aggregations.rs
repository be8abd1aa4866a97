//! Search aggregations over the matching documents: `min`, `max`, `avg`,
//! `sum`, `value_count`, `terms` (with `size`, nested `aggs`) and
//! `date_histogram` (`fixed_interval` or `calendar_interval`, on epoch
//! milliseconds or ISO-8601 strings), in OpenSearch's request and response
//! shapes.

use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{ErrorKind, HasKind};

/// OpenSearch's default `search.max_buckets`: the buckets one search may
/// create, over all its aggregations, nested ones included.
pub const MAX_BUCKETS: usize = 65_535;

/// Why aggregations were not evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggError {
    /// A request OpenSearch would not parse (400 `parsing_exception`).
    #[error("{0}")]
    Invalid(String),
    /// OpenSearch's `too_many_buckets_exception`.
    #[error(
        "Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}] but was [{0}]. This limit can be set by changing the [search.max_buckets] cluster level setting."
    )]
    TooManyBuckets(usize),
}

impl AggError {
    /// OpenSearch's error type for it.
    pub fn error_type(&self) -> &'static str {
        match self {
            AggError::Invalid(_) => "parsing_exception",
            AggError::TooManyBuckets(_) => "too_many_buckets_exception",
        }
    }
}

impl HasKind for AggError {
    fn kind(&self) -> ErrorKind {
        // Too many buckets too: the search is answered 400, the request
        // (not the host) asked for too much.
        ErrorKind::Invalid
    }
}

impl From<String> for AggError {
    fn from(reason: String) -> Self {
        AggError::Invalid(reason)
    }
}

/// The fields `aggs` reads (every aggregation names its `field`; nested
/// `aggs` too), so a search can hand each match's projection
/// ([`project`]) to [`evaluate`] instead of its whole source. A malformed
/// request gives what it names; [`evaluate`] reports what is wrong.
pub fn fields(aggs: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_fields(aggs, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect_fields(aggs: &Value, out: &mut Vec<String>) {
    let Some(aggs) = aggs.as_object() else { return };
    for spec in aggs.values().filter_map(Value::as_object) {
        for (key, body) in spec {
            if key == "aggs" || key == "aggregations" {
                collect_fields(body, out);
            } else if let Some(field) = body.get("field").and_then(Value::as_str) {
                out.push(field.to_owned());
            }
        }
    }
}

/// The part of `source` that `fields` reach (dotted paths, as
/// [`evaluate`] reads them): the same answers from [`evaluate`], holding
/// only the values the aggregations read.
pub fn project(source: &Value, fields: &[String]) -> Value {
    let mut out = Value::Object(Map::new());
    for field in fields {
        let Some(value) = field.split('.').try_fold(source, |v, k| v.get(k)) else { continue };
        let mut at = &mut out;
        let mut keys = field.split('.').peekable();
        while let Some(key) = keys.next() {
            let Value::Object(map) = at else { break };
            if keys.peek().is_none() {
                map.insert(key.to_owned(), value.clone());
                break;
            }
            at = map.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
        }
    }
    out
}

/// Evaluates `aggs` (the request's `aggs`/`aggregations` object) over `docs`.
pub fn evaluate(aggs: &Value, docs: &[&Value]) -> Result<Value, AggError> {
    evaluate_counted(aggs, docs, &Cell::new(0))
}

/// `buckets` counts the buckets created so far, against [`MAX_BUCKETS`].
fn evaluate_counted(aggs: &Value, docs: &[&Value], buckets: &Cell<usize>) -> Result<Value, AggError> {
    let Some(aggs) = aggs.as_object() else {
        return Err(AggError::Invalid("`aggs` must be an object".into()));
    };
    let mut out = Map::new();
    for (name, spec) in aggs {
        out.insert(name.clone(), one(name, spec, docs, buckets)?);
    }
    Ok(Value::Object(out))
}

/// Counts `n` more buckets; refuses past [`MAX_BUCKETS`] (before they are built).
fn count_buckets(buckets: &Cell<usize>, n: usize) -> Result<(), AggError> {
    let total = buckets.get().saturating_add(n);
    buckets.set(total);
    if total > MAX_BUCKETS { Err(AggError::TooManyBuckets(total)) } else { Ok(()) }
}

fn field_values<'a>(docs: &[&'a Value], field: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter_map(|d| field.split('.').try_fold(*d, |v, k| v.get(k)))
        .flat_map(|v| match v {
            Value::Array(a) => a.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn numbers(docs: &[&Value], field: &str) -> Vec<f64> {
    field_values(docs, field).into_iter().filter_map(Value::as_f64).collect()
}

fn one(name: &str, spec: &Value, docs: &[&Value], buckets: &Cell<usize>) -> Result<Value, AggError> {
    let Some((kind, body)) =
        spec.as_object().and_then(|o| o.iter().find(|(k, _)| *k != "aggs" && *k != "aggregations"))
    else {
        return Err(AggError::Invalid(format!("aggregation [{name}] has no type")));
    };
    let field = body["field"].as_str().ok_or_else(|| format!("aggregation [{name}] needs a `field`"))?;
    let sub = spec.get("aggs").or_else(|| spec.get("aggregations"));
    let with_sub = |bucket: &mut Map<String, Value>, members: &[&Value]| -> Result<(), AggError> {
        if let Some(sub) = sub
            && let Value::Object(inner) = evaluate_counted(sub, members, buckets)?
        {
            bucket.extend(inner);
        }
        Ok(())
    };
    Ok(match kind.as_str() {
        "min" => json!({ "value": numbers(docs, field).into_iter().reduce(f64::min) }),
        "max" => json!({ "value": numbers(docs, field).into_iter().reduce(f64::max) }),
        "sum" => json!({ "value": numbers(docs, field).into_iter().sum::<f64>() }),
        "avg" => {
            let n = numbers(docs, field);
            json!({ "value": if n.is_empty() { None } else { Some(n.iter().sum::<f64>() / n.len() as f64) } })
        }
        "value_count" => json!({ "value": field_values(docs, field).len() }),
        "terms" => {
            let size = body["size"].as_u64().unwrap_or(10) as usize;
            let mut groups: BTreeMap<String, (Value, Vec<&Value>)> = BTreeMap::new();
            for doc in docs {
                for v in field_values(&[doc], field) {
                    let key = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    groups.entry(key).or_insert_with(|| (v.clone(), Vec::new())).1.push(doc);
                }
            }
            let mut ordered: Vec<(Value, Vec<&Value>)> = groups.into_values().collect();
            ordered.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
            let others: usize = ordered.iter().skip(size).map(|(_, d)| d.len()).sum();
            count_buckets(buckets, ordered.len().min(size))?;
            let mut out = Vec::new();
            for (key, members) in ordered.into_iter().take(size) {
                let mut bucket = Map::new();
                bucket.insert("key".into(), key);
                bucket.insert("doc_count".into(), json!(members.len()));
                with_sub(&mut bucket, &members)?;
                out.push(Value::Object(bucket));
            }
            json!({ "doc_count_error_upper_bound": 0, "sum_other_doc_count": others, "buckets": out })
        }
        "date_histogram" => {
            // A fixed interval (`30s`, `5m`, …) or a calendar one (`day`,
            // `week`, `month`, …); dates as epoch millis or ISO strings.
            // The legacy `interval` is whichever of the two it parses as.
            let legacy = body["interval"].as_str();
            let fixed = body["fixed_interval"].as_str().or(legacy.filter(|i| interval_ms(i).is_some()));
            let calendar = body["calendar_interval"].as_str().or(legacy);
            // Keys are checked: a date or an interval at the edge of the
            // range gives no bucket rather than a wrapped one (or a panic).
            let floor: Box<dyn Fn(i64) -> Option<i64>> = match (fixed, calendar) {
                (Some(interval), _) => {
                    let step = interval_ms(interval).ok_or_else(|| {
                        format!(
                            "bad fixed_interval `{interval}` (a positive whole number of ms, s, m, h or d, e.g. 30s, 5m, 1h, 1d, up to {} days)",
                            super::dates::MAX_MS / 86_400_000
                        )
                    })?;
                    Box::new(move |t: i64| t.div_euclid(step).checked_mul(step))
                }
                (None, Some(unit)) => {
                    let unit = unit.to_owned();
                    if super::dates::calendar_floor(&unit, 0).is_none() {
                        return Err(AggError::Invalid(format!(
                            "bad calendar_interval `{unit}` (minute, hour, day, week, month, quarter, year)"
                        )));
                    }
                    Box::new(move |t: i64| super::dates::calendar_floor(&unit, t))
                }
                (None, None) => {
                    return Err(AggError::Invalid(format!(
                        "date_histogram [{name}] needs `fixed_interval` or `calendar_interval`"
                    )));
                }
            };
            let mut keyed: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
            for doc in docs {
                for t in field_values(&[doc], field).into_iter().filter_map(super::dates::millis) {
                    if let Some(key) = floor(t) {
                        keyed.entry(key).or_default().push(doc);
                    }
                }
            }
            count_buckets(buckets, keyed.len())?;
            let mut out = Vec::new();
            for (key, members) in keyed {
                let mut bucket = Map::new();
                bucket.insert("key".into(), json!(key));
                bucket.insert("key_as_string".into(), json!(crate::time::rfc3339(key)));
                bucket.insert("doc_count".into(), json!(members.len()));
                with_sub(&mut bucket, &members)?;
                out.push(Value::Object(bucket));
            }
            json!({ "buckets": out })
        }
        other => return Err(AggError::Invalid(format!("unknown aggregation type [{other}] in [{name}]"))),
    })
}

/// A fixed interval in milliseconds: positive and at most the date range
/// ([`super::dates::MAX_MS`]), computed without overflow.
fn interval_ms(s: &str) -> Option<i64> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = s[..unit_at].parse().ok()?;
    let unit = match &s[unit_at..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit).filter(|&ms| ms > 0 && ms <= super::dates::MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_terms_and_histograms() -> Result<(), AggError> {
        let docs = [
            json!({"n": 1, "kind": "a", "t": 0}),
            json!({"n": 5, "kind": "b", "t": 3_600_000}),
            json!({"n": 3, "kind": "a", "t": 3_700_000}),
            json!({"kind": "c"}),
        ];
        let refs: Vec<&Value> = docs.iter().collect();
        let aggs = json!({
            "lo": {"min": {"field": "n"}}, "hi": {"max": {"field": "n"}}, "mean": {"avg": {"field": "n"}},
            "total": {"sum": {"field": "n"}}, "count": {"value_count": {"field": "n"}},
            "kinds": {"terms": {"field": "kind", "size": 2}, "aggs": {"top": {"max": {"field": "n"}}}},
            "hourly": {"date_histogram": {"field": "t", "fixed_interval": "1h"}}
        });
        let r = evaluate(&aggs, &refs)?;
        assert_eq!(r["lo"]["value"], json!(1.0));
        assert_eq!(r["hi"]["value"], json!(5.0));
        assert_eq!(r["mean"]["value"], json!(3.0));
        assert_eq!(r["total"]["value"], json!(9.0));
        assert_eq!(r["count"]["value"], json!(3));
        assert_eq!(r["kinds"]["buckets"][0], json!({"key": "a", "doc_count": 2, "top": {"value": 3.0}}));
        assert_eq!(r["kinds"]["sum_other_doc_count"], json!(1));
        assert_eq!(r["hourly"]["buckets"][1]["doc_count"], json!(2));
        assert!(evaluate(&json!({"x": {"percentiles": {"field": "n"}}}), &refs).is_err());
        Ok(())
    }

    /// A projection holds only what the aggregations read, and evaluating
    /// over projections answers as over whole sources (nested fields,
    /// arrays, missing values, overlapping paths, sub-aggregations).
    #[test]
    fn projections_answer_like_whole_sources() -> Result<(), AggError> {
        let docs = [
            json!({"n": 1, "kind": "a", "big": "x".repeat(1000), "m": {"v": 2, "w": [1, 2]}}),
            json!({"n": [5, 6], "kind": "b", "m": {"v": 4}, "other": {"deep": true}}),
            json!({"kind": "a", "m": 7}),
            json!({}),
        ];
        let aggs = json!({
            "kinds": {"terms": {"field": "kind"}, "aggs": {"v": {"sum": {"field": "m.v"}}, "w": {"value_count": {"field": "m.w"}}}},
            "m": {"value_count": {"field": "m"}}, "hi": {"max": {"field": "n"}}
        });
        let fields = fields(&aggs);
        assert_eq!(fields, ["kind", "m", "m.v", "m.w", "n"]);
        let projected: Vec<Value> = docs.iter().map(|d| project(d, &fields)).collect();
        assert_eq!(projected[0], json!({"n": 1, "kind": "a", "m": {"v": 2, "w": [1, 2]}}));
        assert_eq!(projected[3], json!({}));
        assert!(projected.iter().all(|p| p.get("big").is_none() && p.get("other").is_none()));
        let whole: Vec<&Value> = docs.iter().collect();
        let parts: Vec<&Value> = projected.iter().collect();
        assert_eq!(evaluate(&aggs, &parts)?, evaluate(&aggs, &whole)?);
        Ok(())
    }

    /// Timestamps as ISO strings (what OpenSearch documents usually hold),
    /// in calendar buckets; bad intervals are named.
    #[test]
    fn date_histograms_read_iso_dates_and_calendar_intervals() -> Result<(), AggError> {
        let docs = [
            json!({"@timestamp": "2026-11-22T10:15:30Z"}),
            json!({"@timestamp": "2026-11-30T23:59:59.999+00:00"}),
            json!({"@timestamp": "2026-12-01T00:30:00+01:00"}),
            json!({"@timestamp": "2026-12-05"}),
            json!({"@timestamp": "not a date"}),
        ];
        let refs: Vec<&Value> = docs.iter().collect();
        let monthly = json!({"m": {"date_histogram": {"field": "@timestamp", "calendar_interval": "month"}}});
        let r = evaluate(&monthly, &refs)?;
        let buckets: Vec<(String, u64)> = r["m"]["buckets"]
            .as_array()
            .map(|b| {
                b.iter()
                    .map(|b| {
                        (
                            b["key_as_string"].as_str().unwrap_or("").to_owned(),
                            b["doc_count"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        // 2026-12-01T00:30+01:00 is still November in UTC.
        assert_eq!(
            buckets,
            [("2026-11-01T00:00:00.000Z".to_owned(), 3), ("2026-12-01T00:00:00.000Z".to_owned(), 1)]
        );
        let daily = json!({"d": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1d"}}});
        // Nov 22, Nov 30 (twice: 23:59 UTC and 00:30+01:00), Dec 5.
        assert_eq!(evaluate(&daily, &refs)?["d"]["buckets"].as_array().map(Vec::len), Some(3));
        let legacy = json!({"w": {"date_histogram": {"field": "@timestamp", "interval": "week"}}});
        assert_eq!(evaluate(&legacy, &refs)?["w"]["buckets"][0]["key_as_string"], "2026-11-16T00:00:00.000Z");
        let bad = json!({"x": {"date_histogram": {"field": "@timestamp", "calendar_interval": "fortnight"}}});
        assert!(evaluate(&bad, &refs).is_err_and(|e| e.to_string().contains("fortnight")));
        Ok(())
    }

    /// Intervals and dates a request chooses never overflow: an interval
    /// too large is refused with its reason, a date at the edge of i64 is
    /// no date; nothing panics, and the ordinary histogram still works.
    #[test]
    fn overflowing_intervals_and_dates_are_refused() -> Result<(), AggError> {
        let docs = [json!({"t": i64::MIN}), json!({"t": i64::MAX}), json!({"t": -1}), json!({"t": 1e300})];
        let refs: Vec<&Value> = docs.iter().collect();
        for interval in [
            "9223372036854775807d",
            "106751991168d",
            "9223372036854775807ms0",
            "0s",
            "-1h",
            "99999999999999999999h",
        ] {
            let aggs = json!({"h": {"date_histogram": {"field": "t", "fixed_interval": interval}}});
            let e = evaluate(&aggs, &refs).err();
            assert!(e.as_ref().is_some_and(|e| e.error_type() == "parsing_exception"), "{interval}: {e:?}");
        }
        for interval in ["100000000000d", "9223372036854775s"] {
            let aggs = json!({"h": {"date_histogram": {"field": "t", "fixed_interval": interval}}});
            let e = evaluate(&aggs, &refs);
            assert!(e.is_ok() || e.is_err_and(|e| e.error_type() == "parsing_exception"), "{interval}");
        }
        for unit in ["day", "week", "month", "year"] {
            let aggs = json!({"h": {"date_histogram": {"field": "t", "calendar_interval": unit}}});
            let r = evaluate(&aggs, &refs)?;
            assert_eq!(r["h"]["buckets"].as_array().map(Vec::len), Some(1), "{unit}: only -1 is a date: {r}");
        }
        Ok(())
    }

    /// More than `search.max_buckets` buckets, in one aggregation or by
    /// nesting, is OpenSearch's `too_many_buckets_exception`.
    #[test]
    fn bucket_counts_are_bounded() -> Result<(), AggError> {
        let docs: Vec<Value> =
            (0..70_000).map(|i| json!({"t": i * 1000, "k": i % 1000, "j": i % 67})).collect();
        let refs: Vec<&Value> = docs.iter().collect();
        let per_second = json!({"h": {"date_histogram": {"field": "t", "fixed_interval": "1s"}}});
        let e = evaluate(&per_second, &refs).err();
        assert_eq!(e.as_ref().map(AggError::error_type), Some("too_many_buckets_exception"));
        assert!(e.is_some_and(|e| e.to_string().contains("[65535] but was [70000]")));
        // 1,000 outer buckets of 67 inner ones each: 68,000 in all.
        let nested = json!({"k": {"terms": {"field": "k", "size": 1000}, "aggs": {"j": {"terms": {"field": "j", "size": 100}}}}});
        assert_eq!(
            evaluate(&nested, &refs).err().map(|e| e.error_type()),
            Some("too_many_buckets_exception")
        );
        let per_minute = json!({"h": {"date_histogram": {"field": "t", "fixed_interval": "1m"}}});
        assert_eq!(evaluate(&per_minute, &refs)?["h"]["buckets"].as_array().map(Vec::len), Some(1167));
        Ok(())
    }
}
