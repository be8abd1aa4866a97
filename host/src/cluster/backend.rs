//! The [`Backend`] trait and its own vocabulary: what a call brings
//! ([`Params`], the query-string options), what it answers ([`Reply`], in
//! OpenSearch's response shapes) and how it fails ([`BackendError`]). The
//! embedded backend implements it, and so would a remote OpenSearch: neither
//! the gateway nor a second backend imports an implementation to speak it.

use serde_json::{Value, json};

use super::actions::{ActionRequest, InvalidIndexName};
use crate::error::{ErrorKind, HasKind};
use crate::store::StoreError;

/// Where documents live. Writes follow OpenSearch's optimistic concurrency
/// (`if_seq_no`/`if_primary_term` → 409), so locks and config writes built
/// on a backend are compare-and-set whatever implements it.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The names of the existing indices (system ones included).
    fn indices(&self) -> Result<Vec<String>, BackendError>;

    /// Performs an authorised request on concrete `indices`.
    fn execute(
        &self,
        request: &ActionRequest,
        indices: &[String],
        params: &Params,
        body: Option<&[u8]>,
    ) -> Reply;
}

/// Why a backend could not answer at all (a failed request is a [`Reply`]
/// with OpenSearch's error body, not this).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The embedded store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HasKind for BackendError {
    fn kind(&self) -> ErrorKind {
        match self {
            BackendError::Store(e) => e.kind(),
        }
    }
}

/// A backend answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Reply {
        Reply { status, body }
    }

    /// OpenSearch's error body: `{"error":{"type","reason"},"status"}`.
    pub fn error(status: u16, error_type: &str, reason: String) -> Reply {
        Reply::new(status, json!({ "error": { "type": error_type, "reason": reason }, "status": status }))
    }

    /// An error body naming the index it is about, as OpenSearch's do.
    pub fn with_index(mut self, index: &str) -> Reply {
        if let Some(error) = self.body.get_mut("error").and_then(Value::as_object_mut) {
            error.insert("index".into(), json!(index));
            error.insert("shard".into(), json!("0"));
        }
        self
    }

    /// OpenSearch's 404 for an index (or expression) that names no index.
    pub fn index_not_found(index: &str) -> Reply {
        let reason = format!("no such index [{index}]");
        let cause = json!({ "type": "index_not_found_exception", "reason": reason, "index": index, "index_uuid": "_na_", "resource.type": "index_or_alias", "resource.id": index });
        Reply::new(
            404,
            json!({ "error": { "root_cause": [cause], "type": "index_not_found_exception", "reason": reason, "index": index, "index_uuid": "_na_", "resource.type": "index_or_alias", "resource.id": index }, "status": 404 }),
        )
    }

    /// OpenSearch's answer to a name that cannot be an index.
    pub fn invalid_index_name(e: &InvalidIndexName) -> Reply {
        let cause = json!({ "type": InvalidIndexName::TYPE, "reason": e.to_string(), "index": e.name, "index_uuid": "_na_" });
        Reply::new(
            400,
            json!({ "error": { "root_cause": [cause], "type": InvalidIndexName::TYPE, "reason": e.to_string(), "index": e.name, "index_uuid": "_na_" }, "status": 400 }),
        )
    }
}

/// Query-string options that matter to the backend.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub if_seq_no: Option<u64>,
    pub if_primary_term: Option<u64>,
    /// `_search?size=…&from=…` (clients send them so); they win over the body's.
    pub size: Option<u64>,
    pub from: Option<u64>,
    /// `op_type=create`: the write only creates (409 on an existing id).
    pub op_type: Option<OpType>,
    /// `version` and `version_type` (OpenSearch's versioning).
    pub version: Option<u64>,
    pub version_type: VersionType,
    /// `refresh=true|wait_for|false` (`refresh` alone is `true`).
    pub refresh: Refresh,
    /// `_source`, `_source_includes`, `_source_excludes` on reads.
    pub source: Option<SourceFilter>,
    /// `rest_total_hits_as_int`: `hits.total` as a number, as clients of
    /// the 6.x format (and every aggregation client) ask.
    pub rest_total_hits_as_int: bool,
    /// `track_total_hits` in the query string (it wins over the body's).
    pub track_total_hits: Option<TrackTotalHits>,
    /// `docvalue_fields` in the query string (added to the body's).
    pub docvalue_fields: Vec<String>,
    /// `scroll=<keep-alive>` on a search: open a scroll context.
    pub scroll: Option<String>,
    /// `keep_alive=` of a point in time.
    pub keep_alive: Option<String>,
    /// `sort=field[:asc|desc],…` in the query string (when the body has none).
    pub sort: Option<Value>,
    /// `request_cache=`: refused with `scroll`, as OpenSearch refuses it.
    pub request_cache: Option<bool>,
    /// `expand_wildcards=`: whether wildcards expand at all (`open`, `all`,
    /// `hidden`: yes; `none`, `closed`: no — there are no closed indices here).
    pub expand_wildcards: ExpandWildcards,
    /// `ignore_unavailable=true`: a named index that does not exist is
    /// left out instead of answering 404.
    pub ignore_unavailable: bool,
    /// `allow_no_indices=false`: an expression that comes to no index is a
    /// 404 instead of an empty answer.
    pub allow_no_indices: Option<bool>,
}

/// `expand_wildcards`, as far as a node without closed or hidden indices has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExpandWildcards {
    /// `open`, `all`, `hidden` (and the default).
    #[default]
    Expand,
    /// `none`, or only `closed`: wildcards match nothing.
    Nothing,
}

/// How far a search counts its hits (`track_total_hits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackTotalHits {
    /// Every hit (`true`, `-1`).
    Accurate,
    /// Not at all (`false`): no `hits.total`.
    Off,
    /// Up to this many; beyond, the limit with `relation: gte`.
    UpTo(u64),
}

impl TrackTotalHits {
    /// From a body's or a query string's value; the reason otherwise.
    pub fn from_json(value: &Value) -> Result<TrackTotalHits, String> {
        match value {
            Value::Bool(true) => Ok(TrackTotalHits::Accurate),
            Value::Bool(false) => Ok(TrackTotalHits::Off),
            Value::Number(n) => match n.as_i64() {
                Some(-1) => Ok(TrackTotalHits::Accurate),
                Some(limit) if limit >= 0 => Ok(TrackTotalHits::UpTo(limit.unsigned_abs())),
                _ => Err(format!("[track_total_hits] parameter must be positive or equals to -1, got {n}")),
            },
            Value::String(s) => match s.as_str() {
                "" | "true" => Ok(TrackTotalHits::Accurate),
                "false" => Ok(TrackTotalHits::Off),
                text => match text.parse::<i64>() {
                    Ok(n) => TrackTotalHits::from_json(&json!(n)),
                    Err(_) => {
                        Err(format!("[track_total_hits] must be a boolean or an integer, not [{text}]"))
                    }
                },
            },
            other => Err(format!("[track_total_hits] must be a boolean or an integer, not {other}")),
        }
    }
}

/// `op_type`: what an index call may do to an existing document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    Index,
    Create,
}

/// `version_type`: how a given `version` is compared with the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionType {
    /// The store counts versions; a given one must equal it (reads only:
    /// writes use `if_seq_no`/`if_primary_term`).
    #[default]
    Internal,
    /// The caller's versions: a write must bring a higher one.
    External,
    /// The caller's versions: a write must bring one at least as high.
    ExternalGte,
}

impl VersionType {
    pub fn name(self) -> &'static str {
        match self {
            VersionType::Internal => "internal",
            VersionType::External => "external",
            VersionType::ExternalGte => "external_gte",
        }
    }
}

/// `refresh`: the embedded backend's searches see every write at once, so
/// each value is honoured by what is already true; `true` is reported as
/// OpenSearch does (`forced_refresh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refresh {
    #[default]
    False,
    True,
    WaitFor,
}

/// Which parts of a document's `_source` a read returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFilter {
    /// `_source=false`: none at all.
    pub disabled: bool,
    /// Dotted paths with `*` wildcards; none means everything.
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
}

impl SourceFilter {
    /// From a request body's `_source` (`true`, `false`, a path, a list of
    /// paths, or `{includes, excludes}`); `None` when it is none of them.
    pub fn from_json(value: &Value) -> Option<SourceFilter> {
        let list = |v: &Value| -> Option<Vec<String>> {
            match v {
                Value::Null => Some(Vec::new()),
                Value::String(s) => Some(vec![s.clone()]),
                Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
                _ => None,
            }
        };
        match value {
            Value::Bool(b) => Some(SourceFilter { disabled: !b, ..SourceFilter::default() }),
            Value::String(_) | Value::Array(_) => {
                Some(SourceFilter { includes: list(value)?, ..SourceFilter::default() })
            }
            Value::Object(o) => {
                let includes = o.get("includes").or_else(|| o.get("include")).unwrap_or(&Value::Null);
                let excludes = o.get("excludes").or_else(|| o.get("exclude")).unwrap_or(&Value::Null);
                Some(SourceFilter { disabled: false, includes: list(includes)?, excludes: list(excludes)? })
            }
            _ => None,
        }
    }

    /// `source` as this filter lets it be seen (`None`: not at all).
    pub fn apply(&self, source: &Value) -> Option<Value> {
        if self.disabled {
            return None;
        }
        if self.includes.is_empty() && self.excludes.is_empty() {
            return Some(source.clone());
        }
        Some(self.filter(source, ""))
    }

    fn filter(&self, value: &Value, prefix: &str) -> Value {
        let Value::Object(fields) = value else { return value.clone() };
        let mut out = serde_json::Map::new();
        for (key, v) in fields {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            if self.excludes.iter().any(|p| glob(p, &path)) {
                continue;
            }
            let included = self.includes.is_empty() || self.includes.iter().any(|p| glob(p, &path));
            if included {
                // Everything under an included path, less what is excluded.
                out.insert(
                    key.clone(),
                    if self.excludes.is_empty() { v.clone() } else { self.filter_all(v, &path) },
                );
            } else if v.is_object() && self.includes.iter().any(|p| could_match_below(p, &path)) {
                let inner = self.filter(v, &path);
                if inner.as_object().is_some_and(|o| !o.is_empty()) {
                    out.insert(key.clone(), inner);
                }
            }
        }
        Value::Object(out)
    }

    /// Everything under `path` but the excluded.
    fn filter_all(&self, value: &Value, prefix: &str) -> Value {
        let Value::Object(fields) = value else { return value.clone() };
        let mut out = serde_json::Map::new();
        for (key, v) in fields {
            let path = format!("{prefix}.{key}");
            if !self.excludes.iter().any(|p| glob(p, &path)) {
                out.insert(key.clone(), self.filter_all(v, &path));
            }
        }
        Value::Object(out)
    }
}

/// Whether `pattern` (with `*` wildcards) matches all of `text`, or
/// `text` lies under a path it matches (`a` covers `a.b`).
fn glob(pattern: &str, text: &str) -> bool {
    fn whole(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| whole(rest, &t[i..])),
            Some((c, rest)) => t.first() == Some(c) && whole(rest, &t[1..]),
        }
    }
    whole(pattern.as_bytes(), text.as_bytes())
        || text.match_indices('.').any(|(i, _)| whole(pattern.as_bytes(), &text.as_bytes()[..i]))
}

/// Whether `pattern` could match a path below `path` (`a.b` below `a`).
fn could_match_below(pattern: &str, path: &str) -> bool {
    pattern.contains('*') || pattern.starts_with(&format!("{path}."))
}

/// Why a query string was refused (every one is the caller's mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// A numeric option that is not a non-negative integer.
    #[error("[{name}] must be a non-negative integer, not `{value}`")]
    NotANumber { name: &'static str, value: String },
    /// `q=`: a Lucene query string.
    #[error("[q] (query string search) is not supported; send a query body")]
    QueryString,
    /// One of `if_seq_no`/`if_primary_term` without the other.
    #[error("[{given}] needs [{missing}]")]
    Unpaired { given: &'static str, missing: &'static str },
    /// An option whose value is none of those it takes (OpenSearch's text).
    #[error("Unknown value for {name}: [{value}].")]
    UnknownValue { name: &'static str, value: String },
    /// A `track_total_hits` that is no boolean, `-1` or a count.
    #[error("{0}")]
    TrackTotalHits(String),
}

impl HasKind for ParamsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl Params {
    /// The options in `path`'s query string. A CAS option that does not
    /// parse, or one without the other, is refused: ignoring it would turn
    /// a conditional write into an unconditional one.
    pub fn parse(path: &str) -> Result<Params, ParamsError> {
        let mut p = Params::default();
        let mut source: Option<SourceFilter> = None;
        if let Some((_, query)) = path.split_once('?') {
            for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                let number = |name: &'static str, v: &str| {
                    v.parse::<u64>().map_err(|_| ParamsError::NotANumber { name, value: v.to_owned() })
                };
                let unknown =
                    |name: &'static str, v: &str| ParamsError::UnknownValue { name, value: v.to_owned() };
                let (name, v) = pair.split_once('=').unwrap_or((pair, ""));
                let decoded = super::actions::percent_decode(v);
                let paths =
                    || decoded.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>();
                match name {
                    "if_seq_no" => p.if_seq_no = Some(number("if_seq_no", v)?),
                    "if_primary_term" => p.if_primary_term = Some(number("if_primary_term", v)?),
                    "size" => p.size = Some(number("size", v)?),
                    "from" => p.from = Some(number("from", v)?),
                    "version" => p.version = Some(number("version", v)?),
                    "version_type" => {
                        p.version_type = match v {
                            "internal" => VersionType::Internal,
                            "external" => VersionType::External,
                            "external_gte" => VersionType::ExternalGte,
                            _ => return Err(unknown("version_type", v)),
                        }
                    }
                    "op_type" => {
                        p.op_type = Some(match v {
                            "index" => OpType::Index,
                            "create" => OpType::Create,
                            _ => return Err(unknown("op_type", v)),
                        })
                    }
                    "refresh" => {
                        p.refresh = match v {
                            "" | "true" => Refresh::True,
                            "false" => Refresh::False,
                            "wait_for" => Refresh::WaitFor,
                            _ => return Err(unknown("refresh", v)),
                        }
                    }
                    "_source" => {
                        let filter = source.get_or_insert_with(SourceFilter::default);
                        match decoded.as_str() {
                            "true" => filter.disabled = false,
                            "false" => filter.disabled = true,
                            _ => filter.includes = paths(),
                        }
                    }
                    "_source_includes" | "_source_include" => {
                        source.get_or_insert_with(SourceFilter::default).includes = paths()
                    }
                    "rest_total_hits_as_int" => p.rest_total_hits_as_int = matches!(v, "" | "true"),
                    "docvalue_fields" => p.docvalue_fields.extend(paths()),
                    "scroll" => p.scroll = Some(decoded.clone()),
                    "keep_alive" => p.keep_alive = Some(decoded.clone()),
                    "request_cache" => p.request_cache = Some(matches!(v, "" | "true")),
                    "ignore_unavailable" => p.ignore_unavailable = matches!(v, "" | "true"),
                    "allow_no_indices" => p.allow_no_indices = Some(matches!(v, "" | "true")),
                    "expand_wildcards" => {
                        let mut expand = false;
                        for value in decoded.split(',') {
                            match value {
                                "open" | "all" | "hidden" => expand = true,
                                "none" | "closed" => {}
                                _ => return Err(unknown("expand_wildcards", value)),
                            }
                        }
                        p.expand_wildcards =
                            if expand { ExpandWildcards::Expand } else { ExpandWildcards::Nothing };
                    }
                    "sort" => {
                        let clauses = paths()
                            .into_iter()
                            .map(|clause| match clause.rsplit_once(':') {
                                Some((field, order)) => serde_json::json!({ field: order }),
                                None => Value::String(clause),
                            })
                            .collect();
                        p.sort = Some(Value::Array(clauses));
                    }
                    "track_total_hits" => {
                        p.track_total_hits = Some(
                            TrackTotalHits::from_json(&Value::String(v.to_owned()))
                                .map_err(ParamsError::TrackTotalHits)?,
                        )
                    }
                    "_source_excludes" | "_source_exclude" => {
                        source.get_or_insert_with(SourceFilter::default).excludes = paths()
                    }
                    // Answering a Lucene query string with everything would be
                    // worse than refusing it.
                    "q" => return Err(ParamsError::QueryString),
                    _ => {}
                }
            }
        }
        p.source = source;
        match (p.if_seq_no, p.if_primary_term) {
            (Some(_), None) => Err(ParamsError::Unpaired { given: "if_seq_no", missing: "if_primary_term" }),
            (None, Some(_)) => Err(ParamsError::Unpaired { given: "if_primary_term", missing: "if_seq_no" }),
            _ => Ok(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query string's options, and the refusals that keep a
    /// conditional write from becoming an unconditional one.
    #[test]
    fn params_parse_or_say_why_not() {
        let p = Params::parse("/i/_doc/1?if_seq_no=3&if_primary_term=2&routing=x");
        assert!(p.as_ref().is_ok_and(|p| p.if_seq_no == Some(3) && p.if_primary_term == Some(2)), "{p:?}");
        let refused = |path: &str| Params::parse(path).err().map(|e| (e.kind(), e.to_string()));
        assert_eq!(
            refused("/i/_search?size=-1"),
            Some((ErrorKind::Invalid, "[size] must be a non-negative integer, not `-1`".into()))
        );
        assert_eq!(
            refused("/i/_doc/1?if_seq_no=1"),
            Some((ErrorKind::Invalid, "[if_seq_no] needs [if_primary_term]".into()))
        );
        assert_eq!(
            refused("/i/_search?q=a:1"),
            Some((
                ErrorKind::Invalid,
                "[q] (query string search) is not supported; send a query body".into()
            ))
        );
    }

    /// The document API's options, and OpenSearch's refusals of bad values.
    #[test]
    fn document_options_parse_or_say_why_not() {
        let p = Params::parse(
            "/i/_doc/1?op_type=create&refresh&version=7&version_type=external_gte&_source_includes=a%2Cb.c",
        );
        let p = p.unwrap_or_default();
        assert_eq!(
            (p.op_type, p.refresh, p.version, p.version_type),
            (Some(OpType::Create), Refresh::True, Some(7), VersionType::ExternalGte)
        );
        assert_eq!(p.source.map(|s| s.includes), Some(vec!["a".to_owned(), "b.c".to_owned()]));
        let p =
            Params::parse("/i/_search?track_total_hits=-1&rest_total_hits_as_int=true").unwrap_or_default();
        assert_eq!((p.track_total_hits, p.rest_total_hits_as_int), (Some(TrackTotalHits::Accurate), true));
        let refused = |path: &str| Params::parse(path).err().map(|e| e.to_string());
        assert_eq!(
            refused("/i/_doc/1?refresh=later").as_deref(),
            Some("Unknown value for refresh: [later].")
        );
        assert_eq!(
            refused("/i/_doc/1?op_type=upsert").as_deref(),
            Some("Unknown value for op_type: [upsert].")
        );
        assert_eq!(
            refused("/i/_doc/1?version_type=force").as_deref(),
            Some("Unknown value for version_type: [force].")
        );
        assert_eq!(
            refused("/i/_search?track_total_hits=-2").as_deref(),
            Some("[track_total_hits] parameter must be positive or equals to -1, got -2")
        );
    }

    /// `_source` filtering: paths, wildcards, whole objects, excludes.
    #[test]
    fn source_filters_keep_what_is_asked() {
        let source = json!({"a": {"x": 1, "y": 2}, "b": 3, "c": {"d": {"e": 4}}});
        let filter = |v: Value| SourceFilter::from_json(&v).and_then(|f| f.apply(&source));
        assert_eq!(filter(json!(false)), None);
        assert_eq!(filter(json!(true)), Some(source.clone()));
        assert_eq!(filter(json!("a.x")), Some(json!({"a": {"x": 1}})));
        assert_eq!(filter(json!(["b", "c.d.e"])), Some(json!({"b": 3, "c": {"d": {"e": 4}}})));
        assert_eq!(filter(json!({"includes": ["a"], "excludes": ["*.y"]})), Some(json!({"a": {"x": 1}})));
        assert_eq!(filter(json!({"excludes": ["a", "c"]})), Some(json!({"b": 3})));
        assert_eq!(filter(json!("*.e")), Some(json!({"c": {"d": {"e": 4}}})));
        assert_eq!(filter(json!("nothing")), Some(json!({})));
        assert_eq!(SourceFilter::from_json(&json!(5)), None);
    }

    #[test]
    fn a_lost_compare_and_set_is_a_conflict() {
        let lost = BackendError::from(StoreError::Conflict {
            index: "i/logs".into(),
            id: "1".into(),
            message: "document already exists".into(),
        });
        assert_eq!(lost.kind(), ErrorKind::Conflict);
        assert_eq!(BackendError::from(StoreError::Io("disk".into())).kind(), ErrorKind::Internal);
    }
}
