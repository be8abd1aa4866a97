//! The action layer: an OpenSearch REST call (method, path, body) → the
//! action name OpenSearch's security plugin would check and the indices it
//! targets. One layer serves users' REST calls and extensions' `cluster.call`.

use serde_json::Value;

/// A recognised call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    pub action: &'static str,
    pub op: Op,
    /// Index expressions as written (comma lists split; wildcards kept).
    /// Empty for cluster actions.
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
    IndexDoc { id: Option<String>, create_only: bool },
    GetDoc { id: String },
    DeleteDoc { id: String },
    UpdateDoc { id: String },
    Search,
    Count,
    Bulk,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no such API: {method} {path}")]
    Unknown { method: String, path: String },
    #[error("invalid index name `{0}`: {1}")]
    BadIndex(String, &'static str),
    #[error("invalid _bulk body: {0}")]
    BadBulk(String),
    #[error("invalid document id `{0}`: {1}")]
    BadId(String, &'static str),
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

/// Maps one call. `path` may carry a query string (ignored here).
pub fn resolve(method: &str, path: &str, body: Option<&[u8]>) -> Result<ActionRequest, ActionError> {
    let path = path.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = method.to_ascii_uppercase();
    let unknown = || ActionError::Unknown { method: method.clone(), path: path.to_owned() };
    let cluster = |action, op| Ok(ActionRequest { action, op, indices: Vec::new(), items: Vec::new() });
    let on = |action, op, index: &str| -> Result<ActionRequest, ActionError> {
        Ok(ActionRequest { action, op, indices: split_indices(index)?, items: Vec::new() })
    };
    match (method.as_str(), segments.as_slice()) {
        ("GET" | "HEAD", []) => cluster(CLUSTER_MAIN, Op::Main),
        ("GET", ["_cluster", "health"]) => cluster(CLUSTER_HEALTH, Op::ClusterHealth),
        ("GET" | "POST", ["_search"]) => on(READ_SEARCH, Op::Search, "*"),
        ("GET" | "POST", ["_count"]) => on(READ_SEARCH, Op::Count, "*"),
        ("POST" | "PUT", ["_bulk"]) => bulk(None, body),
        ("POST" | "PUT", [index, "_bulk"]) => bulk(Some(index), body),
        ("GET" | "POST", [index, "_search"]) => on(READ_SEARCH, Op::Search, index),
        ("GET" | "POST", [index, "_count"]) => on(READ_SEARCH, Op::Count, index),
        ("POST" | "GET", [index, "_refresh"]) => on(REFRESH, Op::Refresh, index),
        ("POST", [index, "_doc"]) => on(WRITE_INDEX, Op::IndexDoc { id: None, create_only: false }, index),
        ("PUT" | "POST", [index, "_doc", id]) => {
            on(WRITE_INDEX, Op::IndexDoc { id: Some(doc_id(id)?), create_only: false }, index)
        }
        ("PUT" | "POST", [index, "_create", id]) => {
            on(WRITE_INDEX, Op::IndexDoc { id: Some(doc_id(id)?), create_only: true }, index)
        }
        ("GET" | "HEAD", [index, "_doc", id]) => on(READ_GET, Op::GetDoc { id: doc_id(id)? }, index),
        ("DELETE", [index, "_doc", id]) => on(WRITE_DELETE, Op::DeleteDoc { id: doc_id(id)? }, index),
        ("POST", [index, "_update", id]) => on(WRITE_UPDATE, Op::UpdateDoc { id: doc_id(id)? }, index),
        ("PUT", [index]) if !index.starts_with('_') => on(CREATE_INDEX, Op::CreateIndex, index),
        ("DELETE", [index]) if !index.starts_with('_') => on(DELETE_INDEX, Op::DeleteIndex, index),
        ("GET" | "HEAD", [index]) if !index.starts_with('_') => on(GET_INDEX, Op::GetIndex, index),
        _ => Err(unknown()),
    }
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

/// `a,b,logs-*` → ["a", "b", "logs-*"], each checked for OpenSearch's rules.
pub fn split_indices(expr: &str) -> Result<Vec<String>, ActionError> {
    let decoded = percent_decode(expr);
    decoded
        .split(',')
        .map(|name| {
            let bad = |why| ActionError::BadIndex(name.to_owned(), why);
            if name.is_empty() {
                return Err(bad("empty"));
            }
            if name != name.to_lowercase() {
                return Err(bad("must be lower case"));
            }
            if name.starts_with(['-', '+', '_']) {
                return Err(bad("must not start with '-', '+' or '_'"));
            }
            if name.contains(['\\', '/', '"', '<', '>', '|', ' ', '#', ':']) || name == "." || name == ".." {
                return Err(bad("contains a forbidden character"));
            }
            Ok(name.to_owned())
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
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
    String::from_utf8_lossy(&out).into_owned()
}

/// `_bulk`: NDJSON action lines, each (but delete) followed by a source line.
fn bulk(default_index: Option<&&str>, body: Option<&[u8]>) -> Result<ActionRequest, ActionError> {
    let body = body.unwrap_or_default();
    let text = std::str::from_utf8(body).map_err(|_| ActionError::BadBulk("not UTF-8".into()))?;
    let mut lines = non_empty_lines(text);
    let mut items = Vec::new();
    while let Some((_, line)) = lines.next() {
        let action: Value = serde_json::from_str(line)
            .map_err(|e| ActionError::BadBulk(format!("action line is not JSON: {e}")))?;
        let Some((kind, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return Err(ActionError::BadBulk(format!("empty action line `{line}`")));
        };
        let (kind, item_action) = match kind.as_str() {
            "index" => (BulkKind::Index, WRITE_INDEX),
            "create" => (BulkKind::Create, WRITE_INDEX),
            "update" => (BulkKind::Update, WRITE_UPDATE),
            "delete" => (BulkKind::Delete, WRITE_DELETE),
            other => return Err(ActionError::BadBulk(format!("unknown action `{other}`"))),
        };
        let index = match (meta.get("_index").and_then(Value::as_str), default_index) {
            (Some(i), _) => i.to_owned(),
            (None, Some(i)) => (**i).to_owned(),
            (None, None) => return Err(ActionError::BadBulk(format!("item `{line}` names no _index"))),
        };
        if index.contains(['*', '?', ',']) {
            return Err(ActionError::BadBulk(format!("item index `{index}` must name one index")));
        }
        let index = split_indices(&index)?.into_iter().next().unwrap_or_default();
        let id = match meta.get("_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if !id.is_empty() => Some(checked_id(id.clone())?),
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
        items.push(BulkItem { kind, action: item_action, index, id, source });
    }
    if items.is_empty() {
        return Err(ActionError::BadBulk("no items".into()));
    }
    let mut indices: Vec<String> = items.iter().map(|i| i.index.clone()).collect();
    indices.sort();
    indices.dedup();
    Ok(ActionRequest { action: WRITE_BULK, op: Op::Bulk, indices, items })
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
        assert!(action("PUT", "/Logs").0.contains("must be lower case"));
        assert!(action("PUT", "/a%2Fb").0.contains("forbidden character"));
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
}
