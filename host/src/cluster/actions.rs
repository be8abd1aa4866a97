//! The action layer: an OpenSearch REST call (method, path, body) → the
//! action name OpenSearch's security plugin would check and the indices it
//! targets. One layer serves users' REST calls and extensions' `cluster.call`.
//!
//! It is also the one place index names are judged ([`validate_index_name`]),
//! after the path is percent-decoded once, so what is checked downstream is
//! what is written: no wildcard, comma list or encoding becomes a concrete
//! name.

use serde_json::Value;

use crate::error::{ErrorKind, HasKind};

/// A recognised call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    pub action: &'static str,
    pub op: Op,
    /// Index expressions, percent-decoded once and checked (comma lists
    /// split; wildcards kept; `_all` as `*`); exactly one concrete name
    /// for single-index operations ([`Op::single_index`]). Empty for
    /// cluster actions.
    pub indices: Vec<String>,
    /// For `_bulk`: the items, in order, parsed once here and executed
    /// from here (the backend never re-reads the action lines).
    pub items: Vec<BulkItem>,
}

/// One `_bulk` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem {
    pub kind: BulkKind,
    /// The action checked for it (`indices:data/write/index`, …).
    pub action: &'static str,
    /// Its index: its own `_index`, or the one in the path.
    pub index: String,
    pub id: Option<String>,
    /// Where its source line is in the body (none for delete).
    pub source: Option<std::ops::Range<usize>>,
    /// Its own conditions: `if_seq_no`/`if_primary_term`, `version` and
    /// `version_type`, as written (judged per item: a bad one fails its
    /// item only).
    pub conditions: BulkConditions,
}

/// A `_bulk` item's concurrency options, as written in its action line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkConditions {
    pub if_seq_no: Option<Value>,
    pub if_primary_term: Option<Value>,
    pub version: Option<Value>,
    pub version_type: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkKind {
    Index,
    Create,
    Update,
    Delete,
}

impl BulkKind {
    /// The name OpenSearch uses for it in requests and responses.
    pub fn name(self) -> &'static str {
        match self {
            BulkKind::Index => "index",
            BulkKind::Create => "create",
            BulkKind::Update => "update",
            BulkKind::Delete => "delete",
        }
    }
}

/// What to do, once allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Main,
    ClusterHealth,
    CreateIndex,
    DeleteIndex,
    GetIndex,
    Refresh,
    IndexDoc {
        id: Option<String>,
        create_only: bool,
    },
    GetDoc {
        id: String,
    },
    /// `GET /<index>/_source/<id>`: the source alone.
    GetSource {
        id: String,
    },
    DeleteDoc {
        id: String,
    },
    UpdateDoc {
        id: String,
    },
    Search,
    Count,
    Bulk,
    /// `_mget`: documents, each authorised and answered on its own.
    Mget {
        docs: Vec<MgetDoc>,
    },
    /// `_msearch`: searches, each authorised and answered on its own.
    Msearch {
        searches: Vec<SubSearch>,
    },
    /// `_search/scroll`: the next page of a scroll context (its id from
    /// the body, else the path, else the query string; `None` when none
    /// was given). Authorised again, at every page, as a search of the
    /// indices the context was opened on (the gateway binds it).
    Scroll {
        id: Option<String>,
        keep_alive: Option<String>,
    },
    /// `DELETE _search/scroll`: the caller's own contexts (`_all`: every one of theirs).
    ClearScroll {
        ids: Vec<String>,
    },
    /// `POST /{index}/_search/point_in_time?keep_alive=`.
    CreatePit,
    /// `DELETE _search/point_in_time` (`_all`: every one of the caller's).
    DeletePit {
        ids: Vec<String>,
    },
    /// `GET _search/point_in_time/_all`: the caller's own.
    ListPits,
}

/// One document of an `_mget`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgetDoc {
    pub index: String,
    pub id: String,
    /// Its own `_source` filter (`true`, `false`, paths, `{includes, excludes}`).
    pub source: Option<Value>,
}

/// One search of an `_msearch`: its header's index expression (or the
/// path's, or everything) and where its body line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubSearch {
    pub indices: Vec<String>,
    pub body: std::ops::Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no such API: {method} {path}")]
    Unknown { method: String, path: String },
    /// OpenSearch's `invalid_index_name_exception` (400).
    #[error(transparent)]
    InvalidIndexName(#[from] InvalidIndexName),
    /// An index expression of more than [`MAX_INDEX_EXPRESSIONS`] parts (400).
    #[error(
        "the index expression holds {count} comma-separated parts; at most {MAX_INDEX_EXPRESSIONS} are allowed per request"
    )]
    TooManyExpressions { count: usize },
    #[error("invalid _bulk body: {0}")]
    BadBulk(String),
    #[error("invalid document id `{0}`: {1}")]
    BadId(String, &'static str),
    /// OpenSearch's `action_request_validation_exception` (400): the
    /// reason as it words it (`index is missing for doc 0`).
    #[error("Validation Failed: 1: {0};")]
    Validation(String),
    /// A body that does not parse (400 `parse_exception`).
    #[error("{0}")]
    Parse(String),
}

/// A name that cannot be an index (or an index expression), with
/// OpenSearch's reason text: `Invalid index name [<name>], <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid index name [{name}], {reason}")]
pub struct InvalidIndexName {
    pub name: String,
    pub reason: String,
}

impl InvalidIndexName {
    /// The type OpenSearch answers with (HTTP 400).
    pub const TYPE: &'static str = "invalid_index_name_exception";
}

impl HasKind for ActionError {
    fn kind(&self) -> ErrorKind {
        match self {
            // No such API: the REST fallback answers 404 `no_handler_found`.
            ActionError::Unknown { .. } => ErrorKind::NotFound,
            ActionError::InvalidIndexName(e) => e.kind(),
            ActionError::TooManyExpressions { .. }
            | ActionError::BadBulk(_)
            | ActionError::BadId(..)
            | ActionError::Validation(_)
            | ActionError::Parse(_) => ErrorKind::Invalid,
        }
    }
}

impl HasKind for InvalidIndexName {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

pub const CLUSTER_HEALTH: &str = "cluster:monitor/health";
pub const CLUSTER_MAIN: &str = "cluster:monitor/main";
pub const CREATE_INDEX: &str = "indices:admin/create";
pub const DELETE_INDEX: &str = "indices:admin/delete";
pub const GET_INDEX: &str = "indices:admin/get";
pub const REFRESH: &str = "indices:admin/refresh";
pub const WRITE_INDEX: &str = "indices:data/write/index";
pub const WRITE_DELETE: &str = "indices:data/write/delete";
pub const WRITE_UPDATE: &str = "indices:data/write/update";
pub const WRITE_BULK: &str = "indices:data/write/bulk";
pub const READ_GET: &str = "indices:data/read/get";
pub const READ_SEARCH: &str = "indices:data/read/search";
pub const READ_MGET: &str = "indices:data/read/mget";
pub const READ_MSEARCH: &str = "indices:data/read/msearch";
pub const READ_SCROLL: &str = "indices:data/read/scroll";
pub const CLEAR_SCROLL: &str = "indices:data/read/scroll/clear";
pub const PIT_CREATE: &str = "indices:data/read/point_in_time/create";
pub const PIT_DELETE: &str = "indices:data/read/point_in_time/delete";
pub const PIT_READALL: &str = "indices:data/read/point_in_time/readall";

/// Maps one call. `path` may carry a query string (ignored here).
///
/// Index names are checked here, once, after percent-decoding each path
/// segment once (as OpenSearch decodes it): single-document operations,
/// index creation and `_bulk` items need one concrete index name
/// ([`validate_index_name`]); searches, refreshes and index reads or
/// deletes take an expression (comma list, `*`/`?` wildcards, `_all`).
pub fn resolve(method: &str, path: &str, body: Option<&[u8]>) -> Result<ActionRequest, ActionError> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = method.to_ascii_uppercase();
    let unknown = || ActionError::Unknown { method: method.clone(), path: path.to_owned() };
    let cluster = |action, op| Ok(ActionRequest { action, op, indices: Vec::new(), items: Vec::new() });
    // Many indices (an expression) or exactly one concrete index.
    let on = |action, op, index: &str| -> Result<ActionRequest, ActionError> {
        Ok(ActionRequest { action, op, indices: index_expression(index)?, items: Vec::new() })
    };
    let one = |action, op, index: &str| -> Result<ActionRequest, ActionError> {
        Ok(ActionRequest { action, op, indices: vec![concrete_index(index)?], items: Vec::new() })
    };
    match (method.as_str(), segments.as_slice()) {
        ("GET" | "HEAD", []) => cluster(CLUSTER_MAIN, Op::Main),
        ("GET", ["_cluster", "health"]) => cluster(CLUSTER_HEALTH, Op::ClusterHealth),
        ("GET" | "POST", ["_search"]) => on(READ_SEARCH, Op::Search, "*"),
        ("GET" | "POST", ["_search", "scroll"]) => scroll(None, query, body),
        ("GET" | "POST", ["_search", "scroll", id]) => scroll(Some(id), query, body),
        ("DELETE", ["_search", "scroll"]) => {
            cluster(CLEAR_SCROLL, Op::ClearScroll { ids: context_ids("scroll_id", None, query, body)? })
        }
        ("DELETE", ["_search", "scroll", ids]) => {
            cluster(CLEAR_SCROLL, Op::ClearScroll { ids: context_ids("scroll_id", Some(ids), query, body)? })
        }
        ("POST", [index, "_search", "point_in_time"]) => on(PIT_CREATE, Op::CreatePit, index),
        ("DELETE", ["_search", "point_in_time"]) => {
            cluster(PIT_DELETE, Op::DeletePit { ids: context_ids("pit_id", None, query, body)? })
        }
        ("DELETE", ["_search", "point_in_time", "_all"]) => {
            cluster(PIT_DELETE, Op::DeletePit { ids: vec!["_all".to_owned()] })
        }
        ("GET", ["_search", "point_in_time", "_all"]) => cluster(PIT_READALL, Op::ListPits),
        ("GET" | "POST", ["_count"]) => on(READ_SEARCH, Op::Count, "*"),
        ("POST" | "PUT", ["_bulk"]) => bulk(None, body),
        ("POST" | "PUT", [index, "_bulk"]) => bulk(Some(concrete_index(index)?.as_str()), body),
        ("GET" | "POST", [index, "_search"]) => on(READ_SEARCH, Op::Search, index),
        ("GET" | "POST", [index, "_count"]) => on(READ_SEARCH, Op::Count, index),
        ("POST" | "GET", ["_refresh"]) => on(REFRESH, Op::Refresh, "*"),
        ("POST" | "GET", [index, "_refresh"]) => on(REFRESH, Op::Refresh, index),
        ("POST", [index, "_doc"]) => one(WRITE_INDEX, Op::IndexDoc { id: None, create_only: false }, index),
        ("PUT" | "POST", [index, "_doc", id]) => {
            one(WRITE_INDEX, Op::IndexDoc { id: Some(doc_id(id)?), create_only: false }, index)
        }
        ("PUT" | "POST", [index, "_create", id]) => {
            one(WRITE_INDEX, Op::IndexDoc { id: Some(doc_id(id)?), create_only: true }, index)
        }
        ("GET" | "HEAD", [index, "_doc", id]) => one(READ_GET, Op::GetDoc { id: doc_id(id)? }, index),
        ("GET" | "HEAD", [index, "_source", id]) => one(READ_GET, Op::GetSource { id: doc_id(id)? }, index),
        ("GET" | "POST", ["_mget"]) => mget(None, body),
        ("GET" | "POST", [index, "_mget"]) => mget(Some(concrete_index(index)?.as_str()), body),
        ("GET" | "POST", ["_msearch"]) => msearch(None, body),
        ("GET" | "POST", [index, "_msearch"]) => msearch(Some(index), body),
        ("DELETE", [index, "_doc", id]) => one(WRITE_DELETE, Op::DeleteDoc { id: doc_id(id)? }, index),
        ("POST", [index, "_update", id]) => one(WRITE_UPDATE, Op::UpdateDoc { id: doc_id(id)? }, index),
        ("PUT", [index]) if !index.starts_with('_') => one(CREATE_INDEX, Op::CreateIndex, index),
        ("DELETE", [index]) if !index.starts_with('_') => on(DELETE_INDEX, Op::DeleteIndex, index),
        ("GET" | "HEAD", [index]) if !index.starts_with('_') => on(GET_INDEX, Op::GetIndex, index),
        _ => Err(unknown()),
    }
}

impl ActionRequest {
    /// The parts of a multi request, each a request of its own as
    /// OpenSearch's security plugin authorises them: an `_mget`'s
    /// documents (`indices:data/read/mget` on each one's index), an
    /// `_msearch`'s searches (`indices:data/read/search` on each one's
    /// expression). Empty for every other request.
    pub fn parts(&self) -> Vec<ActionRequest> {
        let part = |action, op, indices| ActionRequest { action, op, indices, items: Vec::new() };
        match &self.op {
            Op::Mget { docs } => docs
                .iter()
                .map(|d| part(READ_MGET, Op::GetDoc { id: d.id.clone() }, vec![d.index.clone()]))
                .collect(),
            Op::Msearch { searches } => {
                searches.iter().map(|s| part(READ_SEARCH, Op::Search, s.indices.clone())).collect()
            }
            _ => Vec::new(),
        }
    }
}

impl Op {
    /// Whether it changes data or indices: such a call must name (or
    /// expand to) at least one index it may touch; reads of an expression
    /// that expands to nothing answer empty, as OpenSearch's do.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Op::CreateIndex
                | Op::DeleteIndex
                | Op::IndexDoc { .. }
                | Op::DeleteDoc { .. }
                | Op::UpdateDoc { .. }
                | Op::Bulk
        )
    }

    /// Whether it works on exactly one concrete index (never an expression).
    pub fn single_index(&self) -> bool {
        matches!(
            self,
            Op::CreateIndex
                | Op::IndexDoc { .. }
                | Op::GetDoc { .. }
                | Op::GetSource { .. }
                | Op::DeleteDoc { .. }
                | Op::UpdateDoc { .. }
        )
    }
}

/// OpenSearch's limit on an index name, in bytes.
pub const MAX_INDEX_NAME_BYTES: usize = 255;

/// The characters OpenSearch refuses in index names, as its message lists
/// them (`Strings.INVALID_FILENAME_CHARS`).
const INVALID_FILENAME_CHARS: &str = r#"[ , ", *, \, <, |, ,, >, /, ?]"#;

/// Whether `name` may be a concrete index: OpenSearch's rules
/// (`MetadataCreateIndexService.validateIndexOrAliasName` + lower case),
/// with its reason texts, plus two of Warden's: no `%` — a name is decoded
/// exactly once, so one that still holds `%` would mean something else to
/// the next decoder (`%252A` → `%2A` → `*`) — and no control characters.
/// The one validator for names from paths (after decoding) and bodies.
pub fn validate_index_name(name: &str) -> Result<(), InvalidIndexName> {
    let bad = |reason: String| Err(InvalidIndexName { name: name.to_owned(), reason });
    if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',']) {
        return bad(format!("must not contain the following characters {INVALID_FILENAME_CHARS}"));
    }
    if name.is_empty() {
        return bad("must not be empty".into());
    }
    if name.contains('#') {
        return bad("must not contain '#'".into());
    }
    if name.contains(':') {
        return bad("must not contain ':'".into());
    }
    if name.starts_with(['_', '-', '+']) {
        return bad("must not start with '_', '-', or '+'".into());
    }
    if name.len() > MAX_INDEX_NAME_BYTES {
        return bad(format!("index name is too long, ({} > {MAX_INDEX_NAME_BYTES})", name.len()));
    }
    if name == "." || name == ".." {
        return bad("must not be '.' or '..'".into());
    }
    if name.to_lowercase() != name {
        return bad("must be lowercase".into());
    }
    if name.contains('%') {
        return bad("must not contain '%' (a name is percent-decoded once, in the path only)".into());
    }
    if name.chars().any(char::is_control) {
        return bad("must not contain control characters".into());
    }
    Ok(())
}

/// One concrete index from a path segment: decoded once, then validated
/// whole, so `a,b`, `logs-*`, `%2A` and `_all` are refused, not expanded.
pub fn concrete_index(segment: &str) -> Result<String, InvalidIndexName> {
    let name = date_math_name(&decode_index_segment(segment)?, crate::time::now_ms_signed())?;
    validate_index_name(&name)?;
    Ok(name)
}

/// The most expressions (comma-separated parts) one index expression may
/// hold. OpenSearch has no such setting — its URLs are bounded instead —
/// but every part costs a validation, a pattern and a gate decision, so a
/// bound keeps a long URL from buying unbounded work.
pub const MAX_INDEX_EXPRESSIONS: usize = 1_000;

/// An index expression from a path segment: decoded once, split at commas;
/// each part is `_all`/`*` (everything), a wildcard pattern, a concrete
/// name, or — after a wildcard — `-name` / `-pattern`, an exclusion (kept
/// with its `-`, applied in order where the expression is expanded), all
/// under the same rules ([`validate_index_name`]) except that a pattern may
/// hold `*` and `?`.
///
/// The answer is a set, as OpenSearch resolves one: a part repeated
/// (`big,big`) is kept once, in the order of its first appearance, so no
/// index is searched, counted or deleted twice. Overlapping patterns
/// (`big,b*,*`) are collapsed where they are expanded (the gateway). At
/// most [`MAX_INDEX_EXPRESSIONS`] parts, counted before repeats collapse.
pub fn index_expression(segment: &str) -> Result<Vec<String>, ActionError> {
    let decoded = decode_index_segment(segment)?;
    // Counted before any part is judged: the bound is what keeps the
    // judging cheap.
    let count = decoded.split(',').count();
    if count > MAX_INDEX_EXPRESSIONS {
        return Err(ActionError::TooManyExpressions { count });
    }
    let mut seen = std::collections::HashSet::new();
    let mut parts = Vec::new();
    // As OpenSearch resolves them: `-pattern` after a wildcard excludes
    // what it matches from the indices named so far; before any wildcard
    // it is a name (and an invalid one).
    let mut wildcard_seen = false;
    let now = crate::time::now_ms_signed();
    let resolved: Vec<String> =
        decoded.split(',').map(|part| date_math_name(part, now)).collect::<Result<_, _>>()?;
    for part in resolved.iter().map(String::as_str) {
        let part = if part == "_all" { "*" } else { part };
        if let Some(excluded) = part.strip_prefix('-')
            && wildcard_seen
        {
            let as_name: String =
                excluded.chars().map(|c| if c == '*' || c == '?' { 'x' } else { c }).collect();
            validate_index_name(&as_name)
                .map_err(|e| InvalidIndexName { name: part.to_owned(), reason: e.reason })?;
            parts.push(part.to_owned());
            continue;
        }
        wildcard_seen |= part.contains(['*', '?']);
        if !seen.insert(part) {
            continue;
        }
        // A pattern is checked as the names it could match: with its
        // wildcards replaced by a legal character.
        let as_name: String = part.chars().map(|c| if c == '*' || c == '?' { 'x' } else { c }).collect();
        validate_index_name(&as_name)
            .map_err(|e| InvalidIndexName { name: part.to_owned(), reason: e.reason })?;
        parts.push(part.to_owned());
    }
    Ok(parts)
}

/// `items` without repeats, each kept at its first appearance: how a list
/// of resolved indices becomes the set OpenSearch works on.
pub fn distinct<T: Eq + std::hash::Hash + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().filter(|item| seen.insert(item.clone())).collect()
}

/// OpenSearch's limit on `_id`.
const MAX_ID_BYTES: usize = 512;

/// A document id from a path segment (percent-decoded, as clients encode
/// ids with `/`, spaces and the like) or a bulk item.
fn doc_id(raw: &str) -> Result<String, ActionError> {
    checked_id(percent_decode(raw))
}

fn checked_id(id: String) -> Result<String, ActionError> {
    if id.len() > MAX_ID_BYTES {
        let shown: String = id.chars().take(32).collect();
        return Err(ActionError::BadId(format!("{shown}…"), "longer than 512 bytes"));
    }
    Ok(id)
}

pub(crate) fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(s)).into_owned()
}

/// A date-math index name, `<static{date-math{format|time zone}}static…>`,
/// resolved against `now` (epoch ms) as OpenSearch resolves one:
/// `<logs-{now/d}>` → `logs-2026.11.27`, `<logs-{now/M{yyyy.MM}}>` →
/// `logs-2026.11`, `<logs-{now/d-1d}>` → yesterday's. The math is the range
/// queries' ([`crate::cluster::dates::bound`], rounding down); formats take
/// `yyyy`, `MM`, `dd`, `HH`, `mm`, `ss` and literal characters; only the
/// UTC time zone is offered (another is refused, never silently ignored).
/// `\{` and `\}` are literal braces. A name not in `<…>` is returned as it is.
pub fn date_math_name(name: &str, now: i64) -> Result<String, InvalidIndexName> {
    let Some(inner) = name.strip_prefix('<').and_then(|n| n.strip_suffix('>')) else {
        return Ok(name.to_owned());
    };
    let bad = |reason: &str| InvalidIndexName { name: name.to_owned(), reason: reason.to_owned() };
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => out.push(escaped),
                None => return Err(bad("ends in an escape")),
            },
            '{' => {
                // The expression, up to its closing brace (a format's own
                // braces nest once).
                let mut expr = String::new();
                let mut depth = 1;
                for c in chars.by_ref() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                    expr.push(c);
                }
                if depth != 0 {
                    return Err(bad("has an unclosed `{` in its date math"));
                }
                let (math, format) = match expr.split_once('{') {
                    Some((math, rest)) => {
                        (math, rest.strip_suffix('}').ok_or_else(|| bad("has an unclosed date format"))?)
                    }
                    None => (expr.as_str(), "yyyy.MM.dd"),
                };
                let (format, zone) = format.split_once('|').unwrap_or((format, "UTC"));
                if !matches!(zone, "UTC" | "Z" | "+00:00" | "Etc/UTC") {
                    return Err(bad(
                        "uses a time zone other than UTC, which Warden does not offer in date math",
                    ));
                }
                if !math.starts_with("now") {
                    return Err(bad("date math must start with `now`"));
                }
                let ms = crate::cluster::dates::bound(math, now, false)
                    .ok_or_else(|| bad("has date math that does not resolve"))?;
                out.push_str(
                    &format_date(ms, format).ok_or_else(|| bad("has a date format Warden cannot apply"))?,
                );
            }
            '}' => return Err(bad("has an unopened `}`")),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `ms` (UTC) in a Java-style pattern of `yyyy MM dd HH mm ss` and literals.
fn format_date(ms: i64, pattern: &str) -> Option<String> {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000) / 1000;
    let (year, month, day) = crate::time::civil_from_days(days);
    let (hour, minute, second) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
    let mut out = String::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        let token = ["yyyy", "MM", "dd", "HH", "mm", "ss"].into_iter().find(|t| rest.starts_with(t));
        match token {
            Some("yyyy") => out.push_str(&format!("{year:04}")),
            Some("MM") => out.push_str(&format!("{month:02}")),
            Some("dd") => out.push_str(&format!("{day:02}")),
            Some("HH") => out.push_str(&format!("{hour:02}")),
            Some("mm") => out.push_str(&format!("{minute:02}")),
            Some("ss") => out.push_str(&format!("{second:02}")),
            _ => {
                let c = rest.chars().next()?;
                if c.is_ascii_alphabetic() {
                    return None;
                }
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
        }
        rest = &rest[token.map_or(0, str::len)..];
    }
    Some(out)
}

/// A path segment naming indices, decoded once; bytes that are not UTF-8
/// after decoding are refused (a lossy decode would invent a name).
fn decode_index_segment(segment: &str) -> Result<String, InvalidIndexName> {
    String::from_utf8(percent_decode_bytes(segment)).map_err(|_| InvalidIndexName {
        name: percent_decode(segment),
        reason: "must be UTF-8 after percent-decoding".into(),
    })
}

fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A query-string parameter, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

/// The body of a scroll or point-in-time call, when it has one.
fn context_body(body: Option<&[u8]>) -> Result<Option<Value>, ActionError> {
    match body {
        None => Ok(None),
        Some(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(None),
        Some(b) => serde_json::from_slice::<Value>(b)
            .map(Some)
            .map_err(|e| ActionError::Parse(format!("the request body is not JSON: {e}"))),
    }
}

/// `_search/scroll`: the id and keep-alive from the body, which wins over
/// the path and the query string (as OpenSearch's parser lets it).
fn scroll(in_path: Option<&str>, query: &str, body: Option<&[u8]>) -> Result<ActionRequest, ActionError> {
    let body = context_body(body)?;
    let from_body =
        |name: &str| body.as_ref().and_then(|b| b.get(name)).and_then(Value::as_str).map(str::to_owned);
    let id = from_body("scroll_id")
        .or_else(|| in_path.map(percent_decode))
        .or_else(|| query_param(query, "scroll_id"));
    let keep_alive = from_body("scroll").or_else(|| query_param(query, "scroll"));
    Ok(ActionRequest {
        action: READ_SCROLL,
        op: Op::Scroll { id, keep_alive },
        indices: Vec::new(),
        items: Vec::new(),
    })
}

/// The context ids a clear names: the body's `field` (a string or a list),
/// else the path's comma list, else the query string's.
fn context_ids(
    field: &str,
    in_path: Option<&str>,
    query: &str,
    body: Option<&[u8]>,
) -> Result<Vec<String>, ActionError> {
    let split = |s: &str| s.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect::<Vec<_>>();
    if let Some(value) = context_body(body)?.and_then(|b| b.get(field).cloned()) {
        return match value {
            Value::String(one) => Ok(vec![one]),
            Value::Array(many) => many
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(ActionError::Parse(format!("[{field}] holds {other}, not an id"))),
                })
                .collect(),
            other => Err(ActionError::Parse(format!("[{field}] must be a string or an array, not {other}"))),
        };
    }
    if let Some(ids) = in_path {
        return Ok(split(&percent_decode(ids)));
    }
    Ok(query_param(query, field).map(|ids| split(&ids)).unwrap_or_default())
}

/// `_bulk`: NDJSON action lines, each (but delete) followed by a source line.
///
/// Every item names one concrete index — its `_index` as written (bodies
/// are JSON, never percent-decoded) or the path's — checked by
/// [`validate_index_name`]; one bad item refuses the whole call before
/// anything is written.
fn bulk(default_index: Option<&str>, body: Option<&[u8]>) -> Result<ActionRequest, ActionError> {
    let body = body.unwrap_or_default();
    let text = std::str::from_utf8(body).map_err(|_| ActionError::BadBulk("not UTF-8".into()))?;
    let mut lines = non_empty_lines(text);
    let mut items = Vec::new();
    // OpenSearch's messages name the line, counted from 1: newlines are
    // counted since the previous action line only, so a long body is read
    // once, not once per line.
    let (mut counted_to, mut newlines) = (0usize, 0usize);
    while let Some((start, line)) = lines.next() {
        newlines += text.get(counted_to..start).map_or(0, |skipped| skipped.matches('\n').count());
        counted_to = start;
        let number = newlines + 1;
        let action: Value = serde_json::from_str(line)
            .map_err(|e| ActionError::BadBulk(format!("action line is not JSON: {e}")))?;
        let Some((kind, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return Err(ActionError::BadBulk(format!(
                "Malformed action/metadata line [{number}], expected FIELD_NAME but found [END_OBJECT]"
            )));
        };
        let (kind, item_action) = match kind.as_str() {
            "index" => (BulkKind::Index, WRITE_INDEX),
            "create" => (BulkKind::Create, WRITE_INDEX),
            "update" => (BulkKind::Update, WRITE_UPDATE),
            "delete" => (BulkKind::Delete, WRITE_DELETE),
            other => {
                return Err(ActionError::BadBulk(format!(
                    "Malformed action/metadata line [{number}], expected one of [create, delete, index, update] but found [{other}]"
                )));
            }
        };
        // `op_type: create` on an index item makes it a create item.
        let kind = match (kind, meta.get("op_type").and_then(Value::as_str)) {
            (BulkKind::Index, Some("create")) => BulkKind::Create,
            (kind, _) => kind,
        };
        let index = match (meta.get("_index"), default_index) {
            (Some(Value::String(i)), _) => i.clone(),
            (Some(other), _) => {
                return Err(ActionError::BadBulk(format!("item `_index` {other} must be a string")));
            }
            (None, Some(i)) => i.to_owned(),
            (None, None) => return Err(ActionError::BadBulk(format!("item `{line}` names no _index"))),
        };
        let index = date_math_name(&index, crate::time::now_ms_signed())?;
        validate_index_name(&index)?;
        let id = match meta.get("_id") {
            None | Some(Value::Null) => None,
            // An empty `_id` fails its item only (the backend says why).
            Some(Value::String(id)) => Some(checked_id(id.clone())?),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(ActionError::BadBulk(format!("item `_id` {other} must be a non-empty string")));
            }
        };
        if id.is_none() && kind != BulkKind::Index && kind != BulkKind::Create {
            return Err(ActionError::BadBulk(format!("`{}` item without an `_id`", kind.name())));
        }
        let source = match kind {
            BulkKind::Delete => None,
            _ => match lines.next() {
                Some((start, line)) => Some(start..start + line.len()),
                None => {
                    return Err(ActionError::BadBulk(format!(
                        "`{}` item without a source line",
                        kind.name()
                    )));
                }
            },
        };
        let conditions = BulkConditions {
            if_seq_no: meta.get("if_seq_no").cloned(),
            if_primary_term: meta.get("if_primary_term").cloned(),
            version: meta.get("version").cloned(),
            version_type: meta.get("version_type").cloned(),
        };
        items.push(BulkItem { kind, action: item_action, index, id, source, conditions });
    }
    if items.is_empty() {
        return Err(ActionError::BadBulk("no items".into()));
    }
    let mut indices: Vec<String> = items.iter().map(|i| i.index.clone()).collect();
    indices.sort();
    indices.dedup();
    Ok(ActionRequest { action: WRITE_BULK, op: Op::Bulk, indices, items })
}

/// `_mget`: `{"docs": [{"_index", "_id", "_source"}, …]}` or, with an
/// index in the path, `{"ids": […]}`. Every document names one concrete
/// index (its own `_index` or the path's), checked as a path's would be.
fn mget(default_index: Option<&str>, body: Option<&[u8]>) -> Result<ActionRequest, ActionError> {
    let body: Value = match body {
        None | Some([]) => return Err(ActionError::Validation("no documents to get".into())),
        Some(b) => serde_json::from_slice(b)
            .map_err(|e| ActionError::Parse(format!("request body is not JSON: {e}")))?,
    };
    let Some(fields) = body.as_object() else {
        return Err(ActionError::Parse("the _mget body must be a JSON object".into()));
    };
    let id_of = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut docs = Vec::new();
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("docs", Value::Array(list)) => {
                for (n, doc) in list.iter().enumerate() {
                    let Some(doc) = doc.as_object() else {
                        return Err(ActionError::Parse(format!("doc {n} of _mget must be a JSON object")));
                    };
                    let index = match (doc.get("_index"), default_index) {
                        (Some(Value::String(i)), _) => i.clone(),
                        (None, Some(i)) => i.to_owned(),
                        _ => return Err(ActionError::Validation(format!("index is missing for doc {n}"))),
                    };
                    validate_index_name(&index)?;
                    let Some(id) = doc.get("_id").and_then(id_of) else {
                        return Err(ActionError::Validation(format!("id is missing for doc {n}")));
                    };
                    docs.push(MgetDoc { index, id: checked_id(id)?, source: doc.get("_source").cloned() });
                }
            }
            ("ids", Value::Array(list)) => {
                let Some(index) = default_index else {
                    return Err(ActionError::Validation("index is missing for doc 0".into()));
                };
                for (n, id) in list.iter().enumerate() {
                    let Some(id) = id_of(id) else {
                        return Err(ActionError::Validation(format!("id is missing for doc {n}")));
                    };
                    docs.push(MgetDoc { index: index.to_owned(), id: checked_id(id)?, source: None });
                }
            }
            (other, _) => {
                return Err(ActionError::Parse(format!(
                    "unknown key [{other}] in an _mget body: expected `docs` or `ids` (an array)"
                )));
            }
        }
    }
    if docs.is_empty() {
        return Err(ActionError::Validation("no documents to get".into()));
    }
    let indices = distinct(docs.iter().map(|d| d.index.clone()));
    Ok(ActionRequest { action: READ_MGET, op: Op::Mget { docs }, indices, items: Vec::new() })
}

/// `_msearch`: NDJSON pairs of a header (`{"index": …}`, or `{}` for the
/// path's expression, or everything) and a search body. A header's
/// `index` is an expression (a comma list or an array) taken as written —
/// bodies are never percent-decoded — under the path's rules.
fn msearch(default_expression: Option<&str>, body: Option<&[u8]>) -> Result<ActionRequest, ActionError> {
    let default = match default_expression {
        Some(segment) => index_expression(segment)?,
        None => vec!["*".to_owned()],
    };
    let text = std::str::from_utf8(body.unwrap_or_default())
        .map_err(|_| ActionError::Parse("the _msearch body is not UTF-8".into()))?;
    let mut lines = non_empty_lines(text);
    let mut searches = Vec::new();
    while let Some((_, line)) = lines.next() {
        let header: Value = serde_json::from_str(line)
            .map_err(|e| ActionError::Parse(format!("an _msearch header is not JSON: {e}")))?;
        let Some(header) = header.as_object() else {
            return Err(ActionError::Parse("an _msearch header must be a JSON object".into()));
        };
        let indices = match header.get("index") {
            None | Some(Value::Null) => default.clone(),
            Some(Value::String(expression)) => expression_as_written(expression)?,
            Some(Value::Array(parts)) => {
                let parts: Option<Vec<&str>> = parts.iter().map(Value::as_str).collect();
                let parts = parts.ok_or_else(|| {
                    ActionError::Parse("an _msearch `index` list holds a non-string".into())
                })?;
                expression_as_written(&parts.join(","))?
            }
            Some(other) => {
                return Err(ActionError::Parse(format!(
                    "an _msearch header's `index` must be a string, not {other}"
                )));
            }
        };
        let Some((start, line)) = lines.next() else {
            return Err(ActionError::Validation("an _msearch header without its search body".into()));
        };
        searches.push(SubSearch { indices, body: start..start + line.len() });
    }
    if searches.is_empty() {
        return Err(ActionError::Validation("no requests added".into()));
    }
    let indices = distinct(searches.iter().flat_map(|s| s.indices.iter().cloned()));
    Ok(ActionRequest { action: READ_MSEARCH, op: Op::Msearch { searches }, indices, items: Vec::new() })
}

/// An index expression from a body (never percent-decoded): a `%` in it
/// is refused by the name rules, as in a bulk item's `_index`.
fn expression_as_written(expression: &str) -> Result<Vec<String>, ActionError> {
    // `%25` decodes to `%`, which every part then refuses: what is
    // judged is what was written.
    index_expression(&expression.replace('%', "%25"))
}

/// The non-blank lines of `text` with their byte offsets (`\r\n` too).
fn non_empty_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .scan(0usize, |offset, line| {
            let start = *offset;
            *offset += line.len() + 1;
            Some((start, line.strip_suffix('\r').unwrap_or(line)))
        })
        .filter(|(_, line)| !line.trim().is_empty())
}

#[cfg(test)]
mod tests {

    /// Date-math names resolve as OpenSearch's documentation shows them,
    /// percent-encoded in a path too; what they resolve to is judged as any
    /// name is (a system prefix stays one); a time zone Warden does not
    /// offer, or math that does not resolve, is refused.
    #[test]
    fn date_math_names_resolve_against_now() {
        let now = crate::time::days_from_civil(2026, 11, 27) * 86_400_000 + 21 * 3_600_000 + 42 * 60_000;
        let name = |n: &str| date_math_name(n, now).map_err(|e| e.to_string());
        assert_eq!(name("<logs-{now/d}>"), Ok("logs-2026.11.27".to_owned()));
        assert_eq!(name("<logs-{now/M{yyyy.MM}}>"), Ok("logs-2026.11".to_owned()));
        assert_eq!(name("<logs-{now/d-1d}>"), Ok("logs-2026.11.26".to_owned()));
        assert_eq!(name("<logs-{now/d{yyyy-MM-dd|UTC}}>"), Ok("logs-2026-11-27".to_owned()));
        assert_eq!(name("<a\\{b\\}-{now/y{yyyy}}>"), Ok("a{b}-2026".to_owned()));
        assert_eq!(name("plain"), Ok("plain".to_owned()));
        for bad in [
            "<logs-{now/d{yyyy|Europe/Paris}}>",
            "<logs-{2026/d}>",
            "<logs-{now/q}>",
            "<logs-{now/d>",
            "<x}>",
        ] {
            assert!(name(bad).is_err(), "{bad}");
        }
        // Through the path, percent-encoded, as clients send it.
        let request = resolve("PUT", "/%3Clogs-%7Bnow%2Fd%7D%3E/_doc/1", Some(b"{}"));
        let today = date_math_name("<logs-{now/d}>", crate::time::now_ms_signed());
        assert_eq!(request.map(|r| r.indices), today.map(|t| vec![t]).map_err(ActionError::from));
        let expression = index_expression("%3C.warden-%7Bnow%2Fd%7D%3E,logs");
        assert!(
            expression.is_ok_and(|parts| parts[0].starts_with(".warden-")),
            "resolved, then refused by the gateway"
        );
    }

    use super::*;

    fn action(method: &str, path: &str) -> (String, Vec<String>) {
        match resolve(method, path, None) {
            Ok(r) => (r.action.to_owned(), r.indices),
            Err(e) => (format!("error: {e}"), Vec::new()),
        }
    }

    #[test]
    fn rest_calls_map_to_opensearch_actions() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(action("GET", "/_cluster/health"), (CLUSTER_HEALTH.into(), vec![]));
        assert_eq!(action("PUT", "/logs"), (CREATE_INDEX.into(), s(&["logs"])));
        assert_eq!(action("DELETE", "/a,b"), (DELETE_INDEX.into(), s(&["a", "b"])));
        assert_eq!(action("PUT", "/logs/_doc/1"), (WRITE_INDEX.into(), s(&["logs"])));
        assert_eq!(action("POST", "/logs/_doc"), (WRITE_INDEX.into(), s(&["logs"])));
        assert_eq!(action("get", "/logs/_doc/1?routing=x"), (READ_GET.into(), s(&["logs"])));
        assert_eq!(action("DELETE", "/logs/_doc/1"), (WRITE_DELETE.into(), s(&["logs"])));
        assert_eq!(action("POST", "/logs/_update/1"), (WRITE_UPDATE.into(), s(&["logs"])));
        assert_eq!(
            action("POST", "/logs-*,metrics/_search"),
            (READ_SEARCH.into(), s(&["logs-*", "metrics"]))
        );
        assert_eq!(action("GET", "/_search"), (READ_SEARCH.into(), s(&["*"])));
        assert_eq!(action("POST", "/logs/_count"), (READ_SEARCH.into(), s(&["logs"])));
        assert!(action("GET", "/_nodes/stats").0.starts_with("error: no such API"));
        assert!(action("PUT", "/Logs").0.contains("must be lowercase"));
        assert!(action("PUT", "/a%2Fb").0.contains("must not contain the following characters"));
    }

    #[test]
    fn bulk_items_carry_their_own_actions_and_indices() -> Result<(), ActionError> {
        let body = br#"{"index":{"_index":"a","_id":"1"}}
{"x":1}
{"delete":{"_index":"b","_id":"2"}}
{"update":{"_id":"3"}}
{"doc":{"x":2}}
"#;
        let r = resolve("POST", "/c/_bulk", Some(body))?;
        assert_eq!(r.action, WRITE_BULK);
        let items: Vec<(&str, &str, Option<&str>)> =
            r.items.iter().map(|i| (i.action, i.index.as_str(), i.id.as_deref())).collect();
        assert_eq!(
            items,
            vec![
                (WRITE_INDEX, "a", Some("1")),
                (WRITE_DELETE, "b", Some("2")),
                (WRITE_UPDATE, "c", Some("3"))
            ]
        );
        let source = |n: usize| r.items[n].source.clone().map(|range| &body[range]);
        assert_eq!(source(0), Some(&br#"{"x":1}"#[..]));
        assert_eq!(source(1), None);
        assert_eq!(source(2), Some(&br#"{"doc":{"x":2}}"#[..]));
        assert_eq!(r.indices, ["a", "b", "c"]);
        assert!(resolve("POST", "/_bulk", Some(b"{\"index\":{}}\n{}\n")).is_err(), "no index anywhere");
        assert!(resolve("POST", "/_bulk", Some(b"{\"index\":{\"_index\":\"a\"}}\n")).is_err(), "no source");
        assert!(resolve("POST", "/_bulk", Some(b"{\"nuke\":{\"_index\":\"a\"}}\n")).is_err());
        assert!(resolve("POST", "/_bulk", Some(b"{\"delete\":{\"_index\":\"a\"}}\n")).is_err(), "no _id");
        Ok(())
    }

    #[test]
    fn document_ids_are_decoded_and_bounded() -> Result<(), ActionError> {
        let r = resolve("GET", "/logs/_doc/a%2Fb%20c", None)?;
        assert_eq!(r.op, Op::GetDoc { id: "a/b c".into() });
        let long = "x".repeat(513);
        let e = resolve("PUT", &format!("/logs/_doc/{long}"), Some(b"{}")).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("longer than 512 bytes")));
        let bulk = format!("{{\"index\":{{\"_index\":\"a\",\"_id\":\"{long}\"}}}}\n{{}}\n");
        assert!(resolve("POST", "/_bulk", Some(bulk.as_bytes())).is_err());
        Ok(())
    }

    /// `_mget`: both forms, each document a part of its own on its own
    /// index (so the gateway authorises each); OpenSearch's validation
    /// messages for what is missing.
    #[test]
    fn mget_documents_are_parts_with_their_own_indices() -> Result<(), ActionError> {
        let body = br#"{"docs":[{"_index":"a","_id":"1","_source":false},{"_id":2},{"_index":".warden-x","_id":"3"}]}"#;
        let r = resolve("POST", "/b/_mget", Some(body))?;
        assert_eq!(
            (r.action, r.indices.clone()),
            (READ_MGET, vec!["a".into(), "b".into(), ".warden-x".into()])
        );
        let parts: Vec<(&str, Vec<String>, Op)> =
            r.parts().into_iter().map(|p| (p.action, p.indices, p.op)).collect();
        assert_eq!(parts[1], (READ_MGET, vec!["b".to_owned()], Op::GetDoc { id: "2".into() }));
        let ids = resolve("GET", "/b/_mget", Some(br#"{"ids":["1",2]}"#))?;
        assert_eq!(ids.parts().len(), 2);
        for (path, body, message) in [
            ("/_mget", &br#"{"docs":[{"_id":"1"}]}"#[..], "index is missing for doc 0"),
            ("/_mget", br#"{"docs":[{"_index":"a"}]}"#, "id is missing for doc 0"),
            ("/_mget", br#"{"ids":["1"]}"#, "index is missing for doc 0"),
            ("/b/_mget", br#"{"ids":[]}"#, "no documents to get"),
            ("/b/_mget", br#"{}"#, "no documents to get"),
        ] {
            let e = resolve("POST", path, Some(body)).err();
            assert!(matches!(&e, Some(ActionError::Validation(m)) if m == message), "{path}: {e:?}");
        }
        assert!(matches!(resolve("POST", "/_mget", Some(b"{\"doc\":[]}")), Err(ActionError::Parse(_))));
        assert!(refusal("POST", "/_mget", Some(br#"{"docs":[{"_index":"A","_id":"1"}]}"#)).is_some());
        Ok(())
    }

    /// `_msearch`: a header's `index` (string, comma list or array) is an
    /// expression taken as written — never percent-decoded — or the
    /// path's, or everything; every search is a part.
    #[test]
    fn msearch_searches_are_parts_with_their_own_expressions() -> Result<(), ActionError> {
        let body = b"{\"index\":\"a,l*\"}\n{}\n{}\n{\"query\":{\"match_all\":{}}}\n{\"index\":[\"c\",\"_all\"]}\n{}\n";
        let r = resolve("POST", "/p/_msearch", Some(body))?;
        assert_eq!(r.action, READ_MSEARCH);
        let parts: Vec<Vec<String>> = r.parts().into_iter().map(|p| p.indices).collect();
        assert_eq!(
            parts,
            vec![vec!["a".to_owned(), "l*".into()], vec!["p".into()], vec!["c".into(), "*".into()]]
        );
        assert_eq!(r.indices, ["a", "l*", "p", "c", "*"]);
        let Op::Msearch { searches } = &r.op else { return Err(ActionError::Parse("not an msearch".into())) };
        assert_eq!(&body[searches[1].body.clone()], br#"{"query":{"match_all":{}}}"#);
        assert_eq!(resolve("POST", "/_msearch", Some(b"{}\n{}\n"))?.indices, ["*"]);
        assert!(
            refusal("POST", "/_msearch", Some(b"{\"index\":\"logs-%2A\"}\n{}\n")).is_some(),
            "never decoded"
        );
        assert!(refusal("POST", "/_msearch", Some(b"{\"index\":\"A\"}\n{}\n")).is_some());
        assert!(matches!(
            resolve("POST", "/_msearch", Some(b"{\"index\":\"a\"}\n")),
            Err(ActionError::Validation(_))
        ));
        assert!(matches!(resolve("POST", "/_msearch", Some(b"")), Err(ActionError::Validation(_))));
        assert!(matches!(resolve("POST", "/_msearch", Some(b"[]\n{}\n")), Err(ActionError::Parse(_))));
        Ok(())
    }

    fn refusal(method: &str, path: &str, body: Option<&[u8]>) -> Option<InvalidIndexName> {
        match resolve(method, path, body) {
            Err(ActionError::InvalidIndexName(e)) => Some(e),
            _ => None,
        }
    }

    /// OpenSearch's rules, with its reason texts, and Warden's two more.
    #[test]
    fn concrete_names_follow_opensearch_rules() {
        let long = "a".repeat(256);
        let cases: Vec<(&str, &str)> = vec![
            ("zz*", "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]"),
            ("a,b", "must not contain the following characters"),
            ("logs-?", "must not contain the following characters"),
            ("a b", "must not contain the following characters"),
            ("a\\b", "must not contain the following characters"),
            ("a\"b", "must not contain the following characters"),
            ("a<b", "must not contain the following characters"),
            ("a|b", "must not contain the following characters"),
            ("", "must not be empty"),
            ("a#b", "must not contain '#'"),
            ("a:b", "must not contain ':'"),
            ("_all", "must not start with '_', '-', or '+'"),
            ("-a", "must not start with '_', '-', or '+'"),
            ("+a", "must not start with '_', '-', or '+'"),
            (&long, "index name is too long, (256 > 255)"),
            (".", "must not be '.' or '..'"),
            ("..", "must not be '.' or '..'"),
            ("Logs", "must be lowercase"),
            ("logs-%3f", "must not contain '%'"),
            ("a\nb", "must not contain control characters"),
        ];
        for (name, reason) in cases {
            let e = validate_index_name(name).err();
            assert!(e.as_ref().is_some_and(|e| e.reason.starts_with(reason)), "{name:?}: {e:?}");
        }
        for good in ["logs", "logs-2026.11", ".ext-hc", ".ext-hc_cache", "a_b", "a+b", "é", &"a".repeat(255)]
        {
            assert_eq!(validate_index_name(good), Ok(()), "{good}");
        }
        let e = validate_index_name("zz*").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "Invalid index name [zz*], must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]"
            )
        );
    }

    /// Single-document operations and index creation take one concrete
    /// name, judged after decoding the segment once: a wildcard, a comma
    /// list, `_all` or an encoded one of them is refused, never expanded.
    #[test]
    fn single_index_operations_refuse_expressions_and_encodings() {
        let paths = [
            "zz*", "a,b", "%2A", "zz%2a", "a%2Cb", "%252A", "_all", "*", "a%2Fb", "%5Fx", "logs-%3F", "Logs",
        ];
        for index in paths {
            for (method, path) in [
                ("PUT", format!("/{index}/_doc/1")),
                ("POST", format!("/{index}/_doc/1")),
                ("POST", format!("/{index}/_doc")),
                ("PUT", format!("/{index}/_create/1")),
                ("GET", format!("/{index}/_doc/1")),
                ("HEAD", format!("/{index}/_doc/1")),
                ("DELETE", format!("/{index}/_doc/1")),
                ("POST", format!("/{index}/_update/1")),
                ("POST", format!("/{index}/_bulk")),
            ] {
                assert!(refusal(method, &path, Some(b"{}")).is_some(), "{method} {path}");
            }
            if !index.starts_with('_') {
                assert!(refusal("PUT", &format!("/{index}"), None).is_some(), "PUT /{index}");
            }
        }
        // Decoded once: `%252A` is the name `%2A`, refused for its `%`.
        assert_eq!(refusal("PUT", "/%252A/_doc/1", None).map(|e| e.name), Some("%2A".to_owned()));
        assert_eq!(refusal("PUT", "/a%2Cb/_doc/1", None).map(|e| e.name), Some("a,b".to_owned()));
        assert!(refusal("PUT", "/logs%FF/_doc/1", None).is_some_and(|e| e.reason.contains("UTF-8")));
        assert!(refusal("GET", "/logs%FF/_search", None).is_some());
        let r = resolve("PUT", "/logs%C3%A9/_doc/1", Some(b"{}")).map(|r| r.indices);
        assert_eq!(r, Ok(vec!["logsé".to_owned()]));
        let r = resolve("PUT", "/logs%2D1/_doc/1", Some(b"{}")).map(|r| r.indices);
        assert_eq!(r, Ok(vec!["logs-1".to_owned()]), "an encoded legal character is that character");
    }

    /// Expressions: comma lists and wildcards for multi-index operations;
    /// `_all` means `*`; each part otherwise follows the name rules.
    #[test]
    fn expressions_for_multi_index_operations() -> Result<(), ActionError> {
        assert_eq!(resolve("GET", "/_all/_search", None)?.indices, ["*"]);
        assert_eq!(resolve("GET", "/a,l*/_search", None)?.indices, ["a", "l*"]);
        assert_eq!(resolve("GET", "/a%2Cl%2A/_count", None)?.indices, ["a", "l*"]);
        assert_eq!(resolve("DELETE", "/l*", None)?.indices, ["l*"]);
        for bad in ["/a,,b/_search", "/L*/_search", "/a%252A/_search", "/a%23/_search", "/-a/_search"] {
            assert!(refusal("GET", bad, None).is_some(), "{bad}");
        }
        Ok(())
    }

    /// An expression is a set: repeats (also `_all` next to `*`, or an
    /// encoded repeat) are kept once, first appearance first; more than
    /// [`MAX_INDEX_EXPRESSIONS`] parts are refused, naming the limit,
    /// even when they are all the same.
    #[test]
    fn expressions_are_sets_of_bounded_size() -> Result<(), ActionError> {
        assert_eq!(resolve("GET", "/big,big,big/_search", None)?.indices, ["big"]);
        assert_eq!(resolve("GET", "/b,a,b,l*,a,l*/_count", None)?.indices, ["b", "a", "l*"]);
        assert_eq!(resolve("GET", "/_all,*,big,%62ig/_search", None)?.indices, ["*", "big"]);
        assert_eq!(resolve("DELETE", "/a,a", None)?.indices, ["a"]);
        let at_limit = vec!["big"; MAX_INDEX_EXPRESSIONS].join(",");
        assert_eq!(resolve("POST", &format!("/{at_limit}/_search"), None)?.indices, ["big"]);
        for over in [
            vec!["big"; MAX_INDEX_EXPRESSIONS + 1].join(","),
            (0..5_000).map(|i| format!("i{i}")).collect::<Vec<_>>().join(","),
        ] {
            let e = resolve("POST", &format!("/{over}/_search"), None).err();
            assert!(matches!(e, Some(ActionError::TooManyExpressions { .. })), "{e:?}");
            let message = e.map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(&format!("at most {MAX_INDEX_EXPRESSIONS}")), "{message}");
        }
        assert_eq!(distinct(["b", "a", "b", "c", "a"]), ["b", "a", "c"]);
        Ok(())
    }

    /// `_bulk` items: `_index` from the body is taken literally (never
    /// decoded) and must be a concrete name; one bad item refuses the call.
    #[test]
    fn bulk_items_name_concrete_indices() {
        for index in ["logs-%3F", "logs-?", "logs-*", "Logs", "", "a,b", "_all", "..", "%2A"] {
            let body = format!(
                "{{\"index\":{{\"_index\":{}}}}}\n{{}}\n{{\"index\":{{\"_index\":\"ok\"}}}}\n{{}}\n",
                serde_json::json!(index)
            );
            let e = refusal("POST", "/_bulk", Some(body.as_bytes()));
            assert_eq!(e.map(|e| e.name), Some(index.to_owned()), "{body}");
        }
        assert!(resolve("POST", "/_bulk", Some(b"{\"index\":{\"_index\":5}}\n{}\n")).is_err());
        assert!(resolve("POST", "/_bulk", Some(b"{\"index\":{\"_index\":\"ok\"}}\n{}\n")).is_ok());
    }
}
