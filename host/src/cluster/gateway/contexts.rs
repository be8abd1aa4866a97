//! Scroll and point-in-time (PIT) contexts, as OpenSearch offers them:
//! `scroll=` on `_search`, `_search/scroll` (body, path or query string),
//! `DELETE _search/scroll` (ids or `_all`), `POST /{index}/_search/point_in_time`,
//! a search with `pit`, `DELETE _search/point_in_time` (ids or `_all`) and
//! `GET _search/point_in_time/_all`.
//!
//! A context is a position, not a copy: it keeps the search (indices as
//! allowed when it was opened, the body, the sort ending in the unique
//! `_shard_doc` tiebreaker) and where the last page ended; each page is the
//! same search with `search_after` there. So a context costs a few hundred
//! bytes whatever the hits, every page is authorised again as a search of
//! those indices (a revoked role stops a scroll at its next page), and a
//! document is returned at most once. Unlike OpenSearch's, it is not a
//! snapshot: a document written after the context was opened can appear
//! in a later page, one deleted no longer does; `hits.total` stays as the
//! first page counted it.
//!
//! Each context belongs to the caller that opened it — a user (with the API
//! token they used, if any), or an extension with the user its token
//! names, or an extension's service identity — and any other caller's use
//! of its id is refused (403, audited); clearing frees only one's own.
//! Open contexts are capped per owner ([`MAX_PER_OWNER`]) and in all
//! (OpenSearch's `search.max_open_scroll_context`, 500, and
//! `search.max_open_pit_context`, 300); each expires after its keep-alive
//! (at most a day, OpenSearch's `search.max_keep_alive`). An id that does
//! not parse is a 400, an unknown or expired one OpenSearch's 404
//! `search_context_missing_exception`.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use serde_json::{Value, json};

use super::{ClusterGateway, GateError, denied};
use crate::audit::{Category, Event};
use crate::cluster::actions::{ActionRequest, Op, READ_SEARCH};
use crate::cluster::{Params, Reply};
use crate::error::Gate as GateName;

/// OpenSearch's `search.max_open_scroll_context` default.
pub const MAX_OPEN_SCROLL_CONTEXT: usize = 500;
/// OpenSearch's `search.max_open_pit_context` default.
pub const MAX_OPEN_PIT_CONTEXT: usize = 300;
/// Contexts of one kind one owner may hold open at once: no caller can
/// take the whole allowance from everyone else.
pub const MAX_PER_OWNER: usize = 100;
/// OpenSearch's `search.max_keep_alive` default: a day.
pub const MAX_KEEP_ALIVE_MS: u64 = 86_400_000;

/// The tiebreaker every context's sort ends with (document order).
const TIEBREAK: &str = "_shard_doc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scroll,
    Pit,
}

impl Kind {
    /// The first byte of its ids: a scroll id is never taken for a PIT's.
    fn tag(self) -> u8 {
        match self {
            Kind::Scroll => b's',
            Kind::Pit => b'p',
        }
    }

    fn cap(self) -> usize {
        match self {
            Kind::Scroll => MAX_OPEN_SCROLL_CONTEXT,
            Kind::Pit => MAX_OPEN_PIT_CONTEXT,
        }
    }
}

#[derive(Debug, Clone)]
struct Context {
    kind: Kind,
    owner: String,
    /// The concrete indices the opening call was allowed.
    indices: Vec<String>,
    /// A scroll's search (its sort ending in the tiebreaker), and its options.
    body: Value,
    params: Params,
    /// Whether the caller sorted (else hits are shown unsorted).
    sorted: bool,
    /// Whether the tiebreaker was added to the caller's sort.
    appended: bool,
    /// The last page's last sort values; `None` before the first hit.
    after: Option<Value>,
    /// No hit is left (a page came back empty).
    done: bool,
    /// `hits.total` as the first page counted it: value and relation.
    total: Option<(u64, String)>,
    keep_alive_ms: u64,
    expires_at: u64,
    created_at: u64,
}

/// The open contexts, by id.
#[derive(Debug, Default)]
pub struct Contexts {
    open: Mutex<HashMap<String, Context>>,
}

/// Who is calling, and the call's request id and path.
pub struct At<'a> {
    pub owner: &'a str,
    pub request_id: &'a str,
    pub path: &'a str,
}

/// Runs one authorised call (the caller's own authorisation and audit), and
/// reports the concrete indices it was allowed.
pub type Run<'r> =
    dyn Fn(&ActionRequest, &Params, Option<&[u8]>, Option<&mut Vec<String>>) -> Result<Reply, GateError> + 'r;

/// Whether the call opens, uses or frees a context.
pub fn involved(request: &ActionRequest, params: &Params, body: Option<&[u8]>) -> bool {
    match request.op {
        Op::Scroll { .. } | Op::ClearScroll { .. } | Op::CreatePit | Op::DeletePit { .. } | Op::ListPits => {
            true
        }
        Op::Search => params.scroll.is_some() || pit_of(body).is_some(),
        _ => false,
    }
}

/// The `pit` of a search body, when it has one.
fn pit_of(body: Option<&[u8]>) -> Option<Value> {
    let body = body?;
    // Most searches have no `pit`: no parse for them.
    if !body.windows(5).any(|w| w == b"\"pit\"") {
        return None;
    }
    serde_json::from_slice::<Value>(body).ok()?.get("pit").cloned()
}

/// A keep-alive as OpenSearch writes durations (`30s`, `1m`, `500ms`, `2h`, `1d`).
fn keep_alive(text: &str) -> Result<u64, Reply> {
    let bad = || {
        Reply::error(
            400,
            "illegal_argument_exception",
            format!(
                "failed to parse setting [keep_alive] with value [{text}] as a time value: unit is missing or unrecognized"
            ),
        )
    };
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let ms = number.checked_mul(factor).ok_or_else(bad)?;
    if ms > MAX_KEEP_ALIVE_MS {
        return Err(Reply::error(
            400,
            "illegal_argument_exception",
            format!(
                "Keep alive for request ({text}) is too large. It must be less than (1d). This limit can be set by changing the [search.max_keep_alive] cluster level setting."
            ),
        ));
    }
    Ok(ms)
}

fn new_id(kind: Kind) -> Result<String, Reply> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes[1..])
        .map_err(|e| Reply::error(500, "exception", format!("no randomness for a context id: {e}")))?;
    bytes[0] = kind.tag();
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `id` is an id of `kind` as this host makes them.
fn well_formed(id: &str, kind: Kind) -> bool {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .is_ok_and(|bytes| bytes.len() == 24 && bytes[0] == kind.tag())
}

fn cannot_parse(kind: Kind, id: &str) -> Reply {
    let what = if kind == Kind::Scroll { "scroll" } else { "point in time" };
    let shown: String = id.chars().take(64).collect();
    Reply::error(400, "illegal_argument_exception", format!("Cannot parse {what} id [{shown}]"))
}

fn missing(id: &str) -> Reply {
    let shown: String = id.chars().take(64).collect();
    Reply::error(404, "search_context_missing_exception", format!("No search context found for id [{shown}]"))
}

/// The sort of a context's search: the caller's, then the tiebreaker
/// (unless they named it); whether the caller sorted, and whether the
/// tiebreaker was added (hits then do not show it).
fn with_tiebreak(sort: Option<&Value>) -> (Value, bool, bool) {
    let mut clauses = match sort {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(one) => vec![one.clone()],
    };
    let sorted = !clauses.is_empty();
    let named = clauses.iter().any(|c| match c {
        Value::String(f) => f == "_doc" || f == TIEBREAK,
        Value::Object(o) => o.contains_key("_doc") || o.contains_key(TIEBREAK),
        _ => false,
    });
    if !named {
        clauses.push(Value::String(TIEBREAK.to_owned()));
    }
    (Value::Array(clauses), sorted, !named)
}

/// `hits.total` of a reply, as a value and a relation.
fn total_of(reply: &Value) -> Option<(u64, String)> {
    match &reply["hits"]["total"] {
        Value::Number(n) => n.as_u64().map(|n| (n, "eq".to_owned())),
        Value::Object(t) => Some((
            t.get("value").and_then(Value::as_u64)?,
            t.get("relation").and_then(Value::as_str).unwrap_or("eq").to_owned(),
        )),
        _ => None,
    }
}

impl Contexts {
    fn sweep(open: &mut HashMap<String, Context>, now: u64) {
        open.retain(|_, c| c.expires_at > now);
    }

    /// Room for one more context of `kind` for `owner`, or OpenSearch's refusal.
    fn room(&self, kind: Kind, owner: &str) -> Result<(), Reply> {
        let mut open = self.open.lock().map_err(|_| poisoned())?;
        Self::sweep(&mut open, crate::time::now_ms());
        let of_kind = open.values().filter(|c| c.kind == kind);
        let (all, own) = of_kind.fold((0, 0), |(a, o), c| (a + 1, o + usize::from(c.owner == owner)));
        let (setting, what) = match kind {
            Kind::Scroll => ("search.max_open_scroll_context", "scroll"),
            Kind::Pit => ("search.max_open_pit_context", "pit"),
        };
        if all >= kind.cap() {
            return Err(Reply::error(
                429,
                "too_many_contexts_exception",
                format!(
                    "Trying to create too many {what} contexts. Must be less than or equal to: [{}]. This limit can be set by changing the [{setting}] setting.",
                    kind.cap()
                ),
            ));
        }
        if own >= MAX_PER_OWNER {
            return Err(Reply::error(
                429,
                "too_many_contexts_exception",
                format!(
                    "this caller holds {own} open {what} contexts, the most one caller may; clear some first"
                ),
            ));
        }
        Ok(())
    }

    fn insert(&self, id: String, context: Context) -> Result<(), Reply> {
        self.open.lock().map_err(|_| poisoned())?.insert(id, context);
        Ok(())
    }

    /// The context `id` of `kind`, for `owner` (its keep-alive renewed to
    /// `keep` when given): a 400 for an id that does not parse, a 404 for
    /// an unknown or expired one, and `Err(None)` for another caller's.
    fn take(&self, kind: Kind, id: &str, owner: &str, keep: Option<u64>) -> Result<Context, Option<Reply>> {
        if !well_formed(id, kind) {
            return Err(Some(cannot_parse(kind, id)));
        }
        let mut open = self.open.lock().map_err(|_| Some(poisoned()))?;
        let now = crate::time::now_ms();
        Self::sweep(&mut open, now);
        let context = open.get_mut(id).ok_or_else(|| Some(missing(id)))?;
        if owner.is_empty() || context.owner != owner {
            return Err(None);
        }
        if let Some(keep) = keep {
            context.keep_alive_ms = keep;
            context.expires_at = now.saturating_add(keep);
        }
        Ok(context.clone())
    }

    /// Frees `owner`'s contexts of `kind` named by `ids` (`_all`: every one
    /// of theirs); another caller's are left alone. The ids freed.
    fn free(&self, kind: Kind, owner: &str, ids: &[String]) -> Result<Vec<String>, Reply> {
        let mut open = self.open.lock().map_err(|_| poisoned())?;
        Self::sweep(&mut open, crate::time::now_ms());
        let mine = |c: &Context| c.kind == kind && !owner.is_empty() && c.owner == owner;
        if ids.iter().any(|id| id == "_all") {
            let all: Vec<String> = open.iter().filter(|(_, c)| mine(c)).map(|(id, _)| id.clone()).collect();
            for id in &all {
                open.remove(id);
            }
            return Ok(all);
        }
        if let Some(bad) = ids.iter().find(|id| !well_formed(id, kind)) {
            return Err(cannot_parse(kind, bad));
        }
        let mut freed = Vec::new();
        for id in ids {
            if open.get(id).is_some_and(mine) {
                open.remove(id);
                freed.push(id.clone());
            }
        }
        Ok(freed)
    }
}

fn poisoned() -> Reply {
    Reply::error(500, "exception", "the context table is unavailable".to_owned())
}

impl ClusterGateway {
    /// Serves a call that opens, uses or frees a scroll or PIT context
    /// ([`involved`]); `run` performs an authorised search as the caller.
    pub(super) fn contexts_call(
        &self,
        at: &At<'_>,
        request: &ActionRequest,
        params: &Params,
        body: Option<&[u8]>,
        run: &Run<'_>,
    ) -> Result<Reply, GateError> {
        let answered = match &request.op {
            Op::Search if params.scroll.is_some() => self.open_scroll(at, request, params, body, run),
            Op::Search => self.pit_search(at, params, body, run),
            Op::Scroll { id, keep_alive } => {
                self.next_page(at, id.as_deref(), keep_alive.as_deref(), params, run)
            }
            Op::ClearScroll { ids } => self.clear_scroll(at, ids),
            Op::CreatePit => self.create_pit(at, request, params, run),
            Op::DeletePit { ids } => self.delete_pits(at, ids),
            Op::ListPits => self.list_pits(at),
            _ => return run(request, params, body, None),
        };
        match answered {
            Ok(reply) | Err(Answer::Reply(reply)) => Ok(reply),
            Err(Answer::Gate(e)) => Err(e),
        }
    }

    /// Another caller's context: refused as the user gate's decision, and audited.
    fn not_yours(&self, at: &At<'_>, action: &str) -> Answer {
        let reason = "this search context was opened by another caller: only its owner may use it".to_owned();
        let mut event = Event::new(Category::MissingPrivileges, at.request_id);
        event.action = Some(action.to_owned());
        event.path = Some(at.path.to_owned());
        event.gate = Some(GateName::User.as_str().to_owned());
        event.reason = Some(reason.clone());
        self.audit.record(event);
        Answer::Gate(GateError::Refused(denied(GateName::User, reason)))
    }

    fn open_scroll(
        &self,
        at: &At<'_>,
        request: &ActionRequest,
        params: &Params,
        body: Option<&[u8]>,
        run: &Run<'_>,
    ) -> Result<Reply, Answer> {
        let keep = keep_alive(params.scroll.as_deref().unwrap_or_default())?;
        let mut search: Value = match body {
            None => json!({}),
            Some(b) if b.iter().all(u8::is_ascii_whitespace) => json!({}),
            // Not JSON: the search itself answers why.
            Some(b) => match serde_json::from_slice::<Value>(b) {
                Ok(v) if v.is_object() => v,
                _ => return run(request, params, body, None).map_err(Answer::Gate),
            },
        };
        if search.get("pit").is_some() {
            return Err(invalid("using [point in time] is not allowed in a scroll context"));
        }
        let size = params.size.or_else(|| search.get("size").and_then(Value::as_u64));
        if size == Some(0) {
            return Err(invalid("[size] cannot be [0] in a scroll context"));
        }
        if params.from.or_else(|| search.get("from").and_then(Value::as_u64)).is_some_and(|f| f > 0) {
            return Err(invalid("using [from] is not allowed in a scroll context"));
        }
        if params.request_cache == Some(true) {
            return Err(invalid("[request_cache] cannot be used in a scroll context"));
        }
        self.contexts.room(Kind::Scroll, at.owner)?;
        if at.owner.is_empty() {
            // No verified caller to own it: the search's own authorisation says why.
            return run(request, params, body, None).map_err(Answer::Gate);
        }
        let sort = search.get("sort").cloned().or_else(|| params.sort.clone());
        let (sort, sorted, appended) = with_tiebreak(sort.as_ref());
        if let Some(fields) = search.as_object_mut() {
            fields.insert("sort".into(), sort);
            fields.insert("size".into(), json!(size.unwrap_or(10)));
            fields.remove("from");
        }
        let stored = Params { scroll: None, sort: None, size: None, from: None, ..params.clone() };
        let mut allowed = Vec::new();
        let text = search.to_string();
        let mut reply =
            run(request, &stored, Some(text.as_bytes()), Some(&mut allowed)).map_err(Answer::Gate)?;
        if reply.status != 200 {
            return Ok(reply);
        }
        let now = crate::time::now_ms();
        let mut context = Context {
            kind: Kind::Scroll,
            owner: at.owner.to_owned(),
            indices: allowed,
            body: search,
            params: stored,
            sorted,
            appended,
            after: None,
            done: false,
            total: total_of(&reply.body),
            keep_alive_ms: keep,
            expires_at: now.saturating_add(keep),
            created_at: now,
        };
        advance(&mut context, &mut reply);
        // Aggregations are the first page's, as OpenSearch answers them:
        // later pages do not compute them again.
        if let Some(fields) = context.body.as_object_mut() {
            fields.remove("aggs");
            fields.remove("aggregations");
        }
        let id = new_id(Kind::Scroll)?;
        set_first(&mut reply.body, "_scroll_id", json!(id));
        self.contexts.insert(id, context)?;
        Ok(reply)
    }

    fn next_page(
        &self,
        at: &At<'_>,
        id: Option<&str>,
        keep: Option<&str>,
        params: &Params,
        run: &Run<'_>,
    ) -> Result<Reply, Answer> {
        let id = id.ok_or_else(|| {
            Reply::error(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: scrollId is missing;".into(),
            )
        })?;
        let keep = keep.map(keep_alive).transpose()?;
        let mut context =
            self.contexts.take(Kind::Scroll, id, at.owner, keep).map_err(|refused| match refused {
                Some(reply) => Answer::Reply(reply),
                None => self.not_yours(at, crate::cluster::actions::READ_SCROLL),
            })?;
        let page_params =
            Params { rest_total_hits_as_int: params.rest_total_hits_as_int, ..context.params.clone() };
        let mut reply = if context.done || context.indices.is_empty() {
            // Nothing is left: an empty page, as OpenSearch answers past the end.
            Reply::new(
                200,
                json!({ "took": 0, "timed_out": false, "_shards": shards(context.indices.len()), "hits": { "total": { "value": 0, "relation": "eq" }, "max_score": null, "hits": [] } }),
            )
        } else {
            // Authorised again, as a search of the indices it was opened on.
            let search = ActionRequest {
                action: READ_SEARCH,
                op: Op::Search,
                indices: context.indices.clone(),
                items: Vec::new(),
            };
            let mut body = context.body.clone();
            if let (Some(after), Some(fields)) = (&context.after, body.as_object_mut()) {
                fields.insert("search_after".into(), after.clone());
            }
            let text = body.to_string();
            let reply = run(&search, &page_params, Some(text.as_bytes()), None).map_err(Answer::Gate)?;
            if reply.status != 200 {
                return Ok(reply);
            }
            reply
        };
        advance(&mut context, &mut reply);
        // The total as the first page counted it.
        if let Some((value, relation)) = &context.total {
            reply.body["hits"]["total"] = if page_params.rest_total_hits_as_int {
                json!(value)
            } else {
                json!({ "value": value, "relation": relation })
            };
        }
        set_first(&mut reply.body, "_scroll_id", json!(id));
        // Kept where the page ended (unless cleared meanwhile).
        if let Ok(mut open) = self.contexts.open.lock()
            && let Some(kept) = open.get_mut(id)
        {
            kept.after = context.after;
            kept.done = context.done;
        }
        Ok(reply)
    }

    fn clear_scroll(&self, at: &At<'_>, ids: &[String]) -> Result<Reply, Answer> {
        let (freed, status) = self.free_named(Kind::Scroll, at, ids)?;
        Ok(Reply::new(status, json!({ "succeeded": true, "num_freed": freed.len() })))
    }

    /// Frees the caller's contexts of `kind` that `ids` name (`_all`: every
    /// one of theirs): what was freed, and the status OpenSearch answers
    /// (404 when named ids freed nothing). Naming none is its validation error.
    fn free_named(&self, kind: Kind, at: &At<'_>, ids: &[String]) -> Result<(Vec<String>, u16), Answer> {
        if ids.is_empty() {
            let what = match kind {
                Kind::Scroll => "scroll",
                Kind::Pit => "pit",
            };
            return Err(Answer::Reply(Reply::error(
                400,
                "action_request_validation_exception",
                format!("Validation Failed: 1: no {what} ids specified;"),
            )));
        }
        let freed = self.contexts.free(kind, at.owner, ids)?;
        let status = if freed.is_empty() && !ids.iter().any(|id| id == "_all") { 404 } else { 200 };
        Ok((freed, status))
    }

    fn create_pit(
        &self,
        at: &At<'_>,
        request: &ActionRequest,
        params: &Params,
        run: &Run<'_>,
    ) -> Result<Reply, Answer> {
        let keep = match params.keep_alive.as_deref() {
            Some(text) => keep_alive(text)?,
            None => {
                return Err(Answer::Reply(Reply::error(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: keep alive not specified;".into(),
                )));
            }
        };
        self.contexts.room(Kind::Pit, at.owner)?;
        let mut allowed = Vec::new();
        let reply = run(request, params, None, Some(&mut allowed)).map_err(Answer::Gate)?;
        if reply.status != 200 || at.owner.is_empty() {
            return Ok(reply);
        }
        let now = crate::time::now_ms();
        let id = new_id(Kind::Pit)?;
        let count = allowed.len();
        self.contexts.insert(
            id.clone(),
            Context {
                kind: Kind::Pit,
                owner: at.owner.to_owned(),
                indices: allowed,
                body: Value::Null,
                params: Params::default(),
                sorted: true,
                appended: false,
                after: None,
                done: false,
                total: None,
                keep_alive_ms: keep,
                expires_at: now.saturating_add(keep),
                created_at: now,
            },
        )?;
        Ok(Reply::new(200, json!({ "pit_id": id, "_shards": shards(count), "creation_time": now })))
    }

    fn pit_search(
        &self,
        at: &At<'_>,
        params: &Params,
        body: Option<&[u8]>,
        run: &Run<'_>,
    ) -> Result<Reply, Answer> {
        let Some(mut search) = body.and_then(|b| serde_json::from_slice::<Value>(b).ok()) else {
            return Err(invalid("the search body is not JSON"));
        };
        let first = at.path.split('?').next().unwrap_or("").split('/').find(|s| !s.is_empty());
        if first != Some("_search") {
            return Err(invalid(
                "[indices] cannot be used with point in time. Do not specify any index with point in time.",
            ));
        }
        let pit = search.get("pit").cloned().unwrap_or(Value::Null);
        let Some(id) = pit.get("id").and_then(Value::as_str) else {
            return Err(invalid("[pit] needs an [id]"));
        };
        let keep = pit.get("keep_alive").and_then(Value::as_str).map(keep_alive).transpose()?;
        let context = self.contexts.take(Kind::Pit, id, at.owner, keep).map_err(|refused| match refused {
            Some(reply) => Answer::Reply(reply),
            None => self.not_yours(at, READ_SEARCH),
        })?;
        let (sort, ..) = with_tiebreak(search.get("sort").or(params.sort.as_ref()));
        if let Some(fields) = search.as_object_mut() {
            fields.remove("pit");
            fields.insert("sort".into(), sort);
        }
        if context.indices.is_empty() {
            // Opened on an expression that came to no index: nothing to search.
            let mut reply = Reply::new(
                200,
                json!({ "took": 0, "timed_out": false, "_shards": shards(0), "hits": { "total": { "value": 0, "relation": "eq" }, "max_score": null, "hits": [] } }),
            );
            set_first(&mut reply.body, "pit_id", json!(id));
            return Ok(reply);
        }
        let request = ActionRequest {
            action: READ_SEARCH,
            op: Op::Search,
            indices: context.indices,
            items: Vec::new(),
        };
        let text = search.to_string();
        let page_params = Params { sort: None, ..params.clone() };
        let mut reply = run(&request, &page_params, Some(text.as_bytes()), None).map_err(Answer::Gate)?;
        if reply.status == 200 {
            set_first(&mut reply.body, "pit_id", json!(id));
        }
        Ok(reply)
    }

    fn delete_pits(&self, at: &At<'_>, ids: &[String]) -> Result<Reply, Answer> {
        let (freed, status) = self.free_named(Kind::Pit, at, ids)?;
        let pits: Vec<Value> = if ids.iter().any(|id| id == "_all") {
            freed.iter().map(|id| json!({ "pit_id": id, "successful": true })).collect()
        } else {
            ids.iter().map(|id| json!({ "pit_id": id, "successful": freed.contains(id) })).collect()
        };
        Ok(Reply::new(status, json!({ "pits": pits })))
    }

    fn list_pits(&self, at: &At<'_>) -> Result<Reply, Answer> {
        let mut open = self.contexts.open.lock().map_err(|_| poisoned())?;
        Contexts::sweep(&mut open, crate::time::now_ms());
        let mut pits: Vec<(&String, &Context)> = open
            .iter()
            .filter(|(_, c)| c.kind == Kind::Pit && !at.owner.is_empty() && c.owner == at.owner)
            .collect();
        pits.sort_by_key(|(_, c)| c.created_at);
        let pits: Vec<Value> = pits
            .into_iter()
            .map(|(id, c)| json!({ "pit_id": id, "creation_time": c.created_at, "keep_alive": c.keep_alive_ms }))
            .collect();
        Ok(Reply::new(200, json!({ "pits": pits })))
    }
}

/// A context call's answer that is not a page: a reply the caller gets as
/// the cluster's own, or the gateway's refusal.
enum Answer {
    Reply(Reply),
    Gate(GateError),
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer::Reply(reply)
    }
}

fn invalid(reason: &str) -> Answer {
    Answer::Reply(Reply::error(400, "illegal_argument_exception", reason.to_owned()))
}

fn shards(count: usize) -> Value {
    json!({ "total": count, "successful": count, "skipped": 0, "failed": 0 })
}

/// Moves the context past the page: where its last hit was; done when
/// empty. Each hit shows only the caller's sort values (the tiebreaker is
/// the context's), or none and its score when the caller did not sort.
fn advance(context: &mut Context, reply: &mut Reply) {
    let Some(hits) = reply.body["hits"]["hits"].as_array_mut() else {
        context.done = true;
        return;
    };
    match hits.last().map(|hit| hit["sort"].clone()) {
        Some(last @ Value::Array(_)) => context.after = Some(last),
        _ => context.done = true,
    }
    for hit in hits.iter_mut() {
        let Some(fields) = hit.as_object_mut() else { continue };
        if context.sorted {
            if context.appended
                && let Some(Value::Array(values)) = fields.get_mut("sort")
            {
                values.pop();
            }
        } else {
            fields.remove("sort");
            fields.insert("_score".into(), json!(1.0));
        }
    }
    if !context.sorted && !hits.is_empty() {
        reply.body["hits"]["max_score"] = json!(1.0);
    }
}

/// Puts `key` first in `body` (OpenSearch answers `_scroll_id` / `pit_id` first).
fn set_first(body: &mut Value, key: &str, value: Value) {
    if let Some(fields) = body.as_object_mut() {
        let rest = std::mem::take(fields);
        fields.insert(key.to_owned(), value);
        fields.extend(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alives_parse_as_opensearch_writes_them() {
        assert_eq!(keep_alive("1m").ok(), Some(60_000));
        assert_eq!(keep_alive("30s").ok(), Some(30_000));
        assert_eq!(keep_alive("500ms").ok(), Some(500));
        assert_eq!(keep_alive("1d").ok(), Some(86_400_000));
        for bad in ["", "1", "m", "1x", "-1m", "2d", "99999999999999999999d"] {
            assert!(keep_alive(bad).is_err(), "{bad}");
        }
    }

    /// Ids are opaque and kind-tagged: a forged, truncated or other-kind
    /// id never parses as one.
    #[test]
    fn ids_are_tagged_and_checked() -> Result<(), String> {
        let scroll = new_id(Kind::Scroll).map_err(|r| r.body.to_string())?;
        assert!(well_formed(&scroll, Kind::Scroll));
        assert!(!well_formed(&scroll, Kind::Pit));
        assert!(!well_formed(&scroll[1..], Kind::Scroll));
        assert!(!well_formed("not an id", Kind::Scroll));
        assert_ne!(scroll, new_id(Kind::Scroll).map_err(|r| r.body.to_string())?);
        Ok(())
    }

    #[test]
    fn the_tiebreaker_ends_every_sort_once() {
        assert_eq!(with_tiebreak(None), (json!(["_shard_doc"]), false, true));
        assert_eq!(with_tiebreak(Some(&json!("foo"))), (json!(["foo", "_shard_doc"]), true, true));
        assert_eq!(with_tiebreak(Some(&json!(["_doc"]))), (json!(["_doc"]), true, false));
    }
}
