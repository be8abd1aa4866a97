//! The gateway every extension cluster call goes through: the host's OBO
//! token is validated, the action layer names the action and indices,
//! system indices are refused, and two gates decide — the service gate (the
//! extension's policy role `extension:<id>`) and the user gate (the roles
//! carried in the token). Both must allow; every decision is audited with
//! the gate that made it. Calls as the extension's service identity reach
//! only the extension's own indices.
//!
//! System indices: `.warden*` (Warden's own) are refused to everyone;
//! `.ext-*` (the extensions' own, see [`is_own_index`]) are refused to every
//! user-identity call — a user's REST call or an extension calling as its
//! user, whatever the roles (`all_access` too) — and reached only by the
//! owning extension's service identity. Named, they are refused by the
//! system-index gate; wildcards (`*`, `_all`, `.e*`) leave them out.
//!
//! An expression resolves to a set of concrete indices, as OpenSearch's
//! does: `big,big`, `big,b*,*` name `big` once, so repeating a name buys no
//! extra work.
//!
//! Scroll and point-in-time contexts are the gateway's ([`contexts`]): each
//! belongs to the caller that opened it, and every page is authorised
//! again as a search of the indices it was opened on.
//!
//! Extensions reach the gateway through [`ClusterAccess`], in domain terms
//! ([`GuestCall`] in, [`Reply`] or [`GateError`] out); the conversion from
//! and to the WIT types is the `cluster` capability's
//! (`runtime::capabilities::cluster`), so nothing here knows the bindings.

mod contexts;

use std::sync::Arc;

use crate::audit::{AuditLog, Category, Event};
use crate::cluster::Backend;
use crate::cluster::actions::{self, ActionRequest};
use crate::cluster::{Params, Reply};
use crate::error::{Denial, ErrorKind, Gate as GateName, HasKind};
use crate::security::Security;
use crate::security::obo::TokenService;
use crate::security::privileges::{Privileges, RoleSet, Subject};
use crate::security::service_accounts;

/// Whose authority a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallIdentity {
    User,
    Service,
}

/// One call from a guest.
#[derive(Debug, Clone)]
pub struct GuestCall<'a> {
    pub extension: &'a str,
    pub request_id: &'a str,
    /// The invocation's OBO token (absent for anonymous invocations).
    pub token: Option<&'a str>,
    pub identity: CallIdentity,
    pub method: &'a str,
    pub path: &'a str,
    pub body: Option<&'a [u8]>,
}

/// Performs an extension's cluster call: token check, gates, execution.
/// [`ClusterGateway`] is the one real implementation; a job run wraps it to
/// keep its token fresh (`scheduler::refresh::RenewingClusterAccess`).
pub trait ClusterAccess: Send + Sync + std::fmt::Debug {
    fn call(&self, call: &GuestCall<'_>) -> Result<Reply, GateError>;
}

/// Why a call was not performed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// A gate said no, or the decision could not be made (see [`Refusal`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The path names no API the action layer knows (REST: 404
    /// `no_handler_found`; a guest sees `invalid`, as it always did).
    #[error("no such API: {method} {path}")]
    UnknownApi { method: String, path: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    /// Something inside the host failed (a job run's token renewal).
    #[error("{0}")]
    Internal(String),
}

impl HasKind for GateError {
    fn kind(&self) -> ErrorKind {
        match self {
            GateError::Refused(refusal) => refusal.kind(),
            // Invalid, not NotFound: a guest has always seen `invalid` for
            // a path no API serves; the REST front names it by the variant.
            GateError::UnknownApi { .. } | GateError::Invalid(_) => ErrorKind::Invalid,
            GateError::Unavailable(_) => ErrorKind::Unavailable,
            GateError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// A refused call: a gate's [`Denial`], or a decision that could not be
/// made. Either way nothing ran, and the audit record names which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Gate(#[from] Denial),
    /// Deciding failed: the indices a wildcard may expand to could not be
    /// read (`store`), or the wildcard did not parse (`request`). Refused
    /// like a denial, so nothing runs undecided.
    #[error("{reason}")]
    Undecided { step: Undecided, reason: String },
}

/// Where a decision failed (audited in the gate field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undecided {
    Store,
    Request,
}

impl Refusal {
    /// The name in the audit record's gate field.
    pub fn gate_name(&self) -> &'static str {
        match self {
            Refusal::Gate(denial) => denial.gate.as_str(),
            Refusal::Undecided { step: Undecided::Store, .. } => "store",
            Refusal::Undecided { step: Undecided::Request, .. } => "request",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Refusal::Gate(denial) => &denial.reason,
            Refusal::Undecided { reason, .. } => reason,
        }
    }

    /// `<gate> gate: <reason>`: what an extension is told.
    pub fn qualified(&self) -> String {
        format!("{} gate: {}", self.gate_name(), self.reason())
    }
}

impl HasKind for Refusal {
    fn kind(&self) -> ErrorKind {
        // A failed decision is refused as a denial (what callers always saw).
        ErrorKind::Denied
    }
}

fn denied(gate: GateName, reason: impl Into<String>) -> Refusal {
    Refusal::Gate(Denial::new(gate, reason))
}

/// Prefix of Warden's system indices: unreachable for users and extensions.
pub const SYSTEM_PREFIX: &str = ".warden";

/// Prefix of the extensions' system indices: `.ext-<id>` and
/// `.ext-<id>_<suffix>` belong to extension `<id>` ([`is_own_index`]);
/// no user-identity call reaches any index under it.
pub const EXTENSION_PREFIX: &str = ".ext-";

#[derive(Debug)]
pub struct ClusterGateway {
    backend: Box<dyn Backend>,
    tokens: Arc<TokenService>,
    security: Arc<Security>,
    audit: Arc<AuditLog>,
    /// Tokens whose signature and encrypted claims were checked, by token
    /// text: an invocation's later calls only re-check audience, expiry and
    /// revocation. Bounded; cleared when full.
    verified: std::sync::Mutex<std::collections::HashMap<String, Arc<VerifiedToken>, TokenTailHash>>,
    /// Open scroll and point-in-time contexts.
    contexts: contexts::Contexts,
}

/// A token whose signature and sealed claims were checked, and the two
/// gates' subjects made from it, kept for the configuration they were made
/// under: an invocation's later calls reuse them until the security
/// configuration changes (a new [`SecurityState::generation`]). Making them
/// (the policy's name and description, the roles' ids, the attributes)
/// was a fifth of the security cost of a call (issue #18).
///
/// [`SecurityState::generation`]: crate::security::SecurityState
#[derive(Debug)]
struct VerifiedToken {
    claims: crate::security::obo::OboClaims,
    subjects: std::sync::Mutex<Option<Arc<TokenSubjects>>>,
}

/// The service and user gates' subjects for one token under one
/// configuration generation.
#[derive(Debug)]
struct TokenSubjects {
    generation: u64,
    /// The service gate's policy, as the audit names it.
    policy: String,
    service: Subject,
    user: Subject,
}

impl VerifiedToken {
    /// The gates' subjects under `state`: kept ones if `state` is the
    /// configuration they were made under, else made now (and kept).
    fn subjects(&self, state: &crate::security::SecurityState, extension: &str) -> Arc<TokenSubjects> {
        let mut kept = self.subjects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(subjects) = kept.as_ref()
            && subjects.generation == state.generation
        {
            return subjects.clone();
        }
        let claims = &self.claims;
        // The service gate: the extension's policy, widened for this user
        // by `services_mappings`; the audit names what it was made of.
        let policy = state.service_policy(extension, &claims.user, &claims.backend_roles);
        let mut roles = RoleSet::default();
        for role in &claims.roles {
            if let Some(id) = state.privileges.role_id(role) {
                roles.insert(id);
            }
        }
        // The token carries the user's attributes (sealed): `${user_name}`
        // and `${attr.*}` in index patterns resolve as on the REST path.
        let mut attributes = claims.attributes.clone();
        attributes.insert("user_name".to_owned(), claims.user.clone());
        let made = Arc::new(TokenSubjects {
            generation: state.generation,
            policy: policy.description,
            service: policy.subject,
            user: Subject { name: claims.user.clone(), roles, attributes },
        });
        *kept = Some(made.clone());
        made
    }
}

/// Hashes a token by its last [`TokenTailHash::TAIL`] bytes only — its
/// signature, random-looking and different for every token — with the
/// standard keyed hasher. SipHash over a whole token (hundreds of bytes)
/// was a sixth of the security cost of a call (issue #18). Lookups still
/// compare whole tokens, so a shared tail costs a collision, never a wrong
/// answer.
#[derive(Debug, Default, Clone)]
struct TokenTailHash(std::hash::RandomState);

impl TokenTailHash {
    const TAIL: usize = 32;
}

impl std::hash::BuildHasher for TokenTailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

#[derive(Debug)]
struct TailHasher(std::hash::DefaultHasher);

impl std::hash::Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(&bytes[bytes.len().saturating_sub(TokenTailHash::TAIL)..]);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

const VERIFIED_CAP: usize = 10_000;

/// Who decided, for the audit log, when an expression expands to no index
/// a write may touch (answered as a missing index, not refused).
const GATE_EXPANSION: &str = "index-expansion";

/// The action layer's answer: the request, a reply the call gets as the
/// cluster's own (an invalid index name: OpenSearch's 400
/// `invalid_index_name_exception`), or an error.
fn resolve(method: &str, path: &str, body: Option<&[u8]>) -> Result<Result<ActionRequest, Reply>, GateError> {
    match actions::resolve(method, path, body) {
        Ok(request) => Ok(Ok(request)),
        Err(actions::ActionError::InvalidIndexName(e)) => Ok(Err(Reply::invalid_index_name(&e))),
        Err(e @ actions::ActionError::Validation(_)) => {
            Ok(Err(Reply::error(400, "action_request_validation_exception", e.to_string())))
        }
        Err(actions::ActionError::Parse(reason)) => Ok(Err(Reply::error(400, "parse_exception", reason))),
        Err(actions::ActionError::Unknown { method, path }) => Err(GateError::UnknownApi { method, path }),
        Err(e) => Err(GateError::Invalid(e.to_string())),
    }
}

impl ClusterGateway {
    pub fn new(
        backend: Box<dyn Backend>,
        tokens: Arc<TokenService>,
        security: Arc<Security>,
        audit: Arc<AuditLog>,
    ) -> Self {
        ClusterGateway {
            backend,
            tokens,
            security,
            audit,
            verified: Default::default(),
            contexts: Default::default(),
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Validates, authorises and performs one call.
    pub fn call(&self, call: &GuestCall<'_>) -> Result<Reply, GateError> {
        let request = match resolve(call.method, call.path, call.body)? {
            Ok(request) => request,
            Err(reply) => return Ok(reply),
        };
        let params = Params::parse(call.path).map_err(|e| GateError::Invalid(e.to_string()))?;
        let run = |request: &ActionRequest,
                   params: &Params,
                   body: Option<&[u8]>,
                   allowed: Option<&mut Vec<String>>|
         -> Result<Reply, GateError> {
            // `authorise` notes who decided in `facts`; the record itself
            // (its timestamp, names and indices: a quarter of the security
            // cost of a call, issue #18) is made only when it is written,
            // which for an allowed call is only when granted calls are audited.
            let mut facts = Event::default();
            let decision = self.authorise(call, request, params, &mut facts);
            let complete = |facts: &mut Event| {
                *facts = Event {
                    extension: Some(call.extension.to_owned()),
                    action: Some(request.action.to_owned()),
                    indices: request.indices.clone(),
                    method: Some(call.method.to_owned()),
                    path: Some(call.path.to_owned()),
                    user: facts.user.take(),
                    user_source: facts.user_source.take(),
                    gate: facts.gate.take(),
                    policy: facts.policy.take(),
                    credential: facts.credential.take(),
                    ..Event::new(Category::GrantedPrivileges, call.request_id)
                };
            };
            Ok(self.conclude((request, params, body), facts, decision, allowed, &complete)?)
        };
        if contexts::involved(&request, &params, call.body) {
            let owner = self.call_owner(call);
            let at = contexts::At { owner: &owner, request_id: call.request_id, path: call.path };
            return self.contexts_call(&at, &request, &params, call.body, &run);
        }
        run(&request, &params, call.body, None)
    }

    /// Who owns the scroll and point-in-time contexts an extension's call
    /// opens: the extension and the user its token names, or the
    /// extension's service identity; empty (owning nothing) when the token
    /// does not verify, which the call's own authorisation refuses.
    fn call_owner(&self, call: &GuestCall<'_>) -> String {
        match call.identity {
            CallIdentity::Service => format!("service\u{1f}{}", call.extension),
            CallIdentity::User => call
                .token
                .and_then(|token| self.verified_claims(token, call.extension).ok())
                .map(|v| {
                    let c = &v.claims;
                    format!("extension\u{1f}{}\u{1f}{}\u{1f}{}", call.extension, c.source, c.user)
                })
                .unwrap_or_default(),
        }
    }

    /// Audits the decision; performs the call (the request, its parameters
    /// and body) if it was allowed. `complete` makes `event` the whole
    /// record, called only when one is written; `allowed_out` receives the
    /// indices allowed (a scroll or point in time keeps them).
    fn conclude(
        &self,
        (request, params, body): (&ActionRequest, &Params, Option<&[u8]>),
        mut event: Event,
        decision: Result<Allowed, Refusal>,
        allowed_out: Option<&mut Vec<String>>,
        complete: &dyn Fn(&mut Event),
    ) -> Result<Reply, Refusal> {
        let recorded = match &decision {
            Ok(allowed) => {
                self.audit.enabled(Category::GrantedPrivileges)
                    || allowed.parts.iter().any(Result::is_err)
                    || ((request.op.writes() || params.allow_no_indices == Some(false))
                        && allowed.indices.is_empty()
                        && !request.indices.is_empty())
            }
            Err(_) => true,
        };
        if recorded {
            complete(&mut event);
        }
        // An expression that expands to nothing is never an authorised
        // write (the backend would otherwise be asked to write nowhere, or
        // to index ""): it is refused and audited, and answered as
        // OpenSearch answers a missing index.
        // A read with `allow_no_indices=false` is answered the same way.
        if let Ok(allowed) = &decision
            && (request.op.writes() || params.allow_no_indices == Some(false))
            && allowed.indices.is_empty()
            && !request.indices.is_empty()
        {
            let expression = request.indices.join(",");
            let what = if request.op.writes() { "write" } else { "read (allow_no_indices=false)" };
            event.category = Some(Category::MissingPrivileges);
            event.gate = Some(GATE_EXPANSION.to_owned());
            event.reason = Some(format!("`{expression}` expands to no index this call may {what}"));
            crate::metrics::gate_denied(GATE_EXPANSION);
            self.audit.record(event);
            return Ok(Reply::index_not_found(&expression));
        }
        match decision {
            Ok(allowed) => {
                // A multi request some of whose parts were refused: the
                // refusals are audited apart, the rest goes ahead.
                let refused: Vec<&Refusal> = allowed.parts.iter().filter_map(|p| p.as_ref().err()).collect();
                crate::metrics::gates_allowed(!refused.is_empty());
                if let Some(first) = refused.first() {
                    let mut missing = event.clone();
                    missing.category = Some(Category::MissingPrivileges);
                    missing.gate = Some(first.gate_name().to_owned());
                    let reasons: Vec<&str> = refused.iter().map(|r| r.reason()).collect();
                    missing.reason = Some(distinct_reasons(&reasons));
                    self.audit.record(missing);
                }
                if self.audit.enabled(Category::GrantedPrivileges) {
                    event.indices = allowed.indices.clone();
                    self.audit.record(event);
                }
                // A scroll or point in time keeps what it was allowed.
                if let Some(out) = allowed_out {
                    out.clone_from(&allowed.indices);
                }
                if allowed.parts.is_empty() {
                    Ok(self.backend.execute(request, &allowed.indices, params, body))
                } else {
                    Ok(self.execute_parts(request, &allowed.parts, params, body))
                }
            }
            Err(refusal) => {
                crate::metrics::gate_denied(refusal.gate_name());
                event.category = Some(Category::MissingPrivileges);
                event.gate = Some(refusal.gate_name().to_owned());
                event.reason = Some(refusal.reason().to_owned());
                self.audit.record(event);
                Err(refusal)
            }
        }
    }

    /// Performs each allowed part of a multi request on the backend and
    /// answers with OpenSearch's shape: a refused part is an error in its
    /// slot (`security_exception`), never its document or hits.
    fn execute_parts(
        &self,
        request: &ActionRequest,
        parts: &[Result<Vec<String>, Refusal>],
        params: &Params,
        body: Option<&[u8]>,
    ) -> Reply {
        let refused = |reason: &str| {
            let cause = serde_json::json!({ "type": "security_exception", "reason": reason });
            serde_json::json!({ "root_cause": [cause], "type": "security_exception", "reason": reason })
        };
        let subs = request.parts();
        match &request.op {
            actions::Op::Mget { docs } => {
                let mut out = Vec::with_capacity(docs.len());
                for ((doc, sub), part) in docs.iter().zip(&subs).zip(parts) {
                    out.push(match part {
                        Err(refusal) => serde_json::json!({ "_index": doc.index, "_id": doc.id, "error": refused(refusal.reason()) }),
                        Ok(indices) => {
                            let mut doc_params = params.clone();
                            if let Some(source) = &doc.source {
                                doc_params.source = crate::cluster::backend::SourceFilter::from_json(source);
                            }
                            let reply = self.backend.execute(sub, indices, &doc_params, None);
                            match reply.body.get("error") {
                                Some(error) => serde_json::json!({ "_index": doc.index, "_id": doc.id, "error": error }),
                                None => reply.body,
                            }
                        }
                    });
                }
                Reply::new(200, serde_json::json!({ "docs": out }))
            }
            actions::Op::Msearch { searches } => {
                // As OpenSearch validates the whole request first: totals
                // as numbers need every search to count them all.
                if params.rest_total_hits_as_int
                    && let Some(limit) = searches.iter().find_map(|search| {
                        let body = body.and_then(|b| b.get(search.body.clone()))?;
                        let body: serde_json::Value = serde_json::from_slice(body).ok()?;
                        body.get("track_total_hits").and_then(serde_json::Value::as_u64)
                    })
                {
                    return Reply::error(
                        400,
                        "illegal_argument_exception",
                        format!(
                            "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got {limit}"
                        ),
                    );
                }
                let mut out = Vec::with_capacity(searches.len());
                // The URL's paging is no search's: each body says its own.
                let search_params = Params { size: None, from: None, ..params.clone() };
                for ((search, sub), part) in searches.iter().zip(&subs).zip(parts) {
                    out.push(match part {
                        Err(refusal) => {
                            serde_json::json!({ "error": refused(refusal.reason()), "status": 403 })
                        }
                        Ok(indices) => {
                            let search_body = body.and_then(|b| b.get(search.body.clone()));
                            let reply = self.backend.execute(sub, indices, &search_params, search_body);
                            let mut answer = reply.body;
                            if let Some(fields) = answer.as_object_mut() {
                                fields.insert("status".into(), serde_json::json!(reply.status));
                            }
                            answer
                        }
                    });
                }
                Reply::new(200, serde_json::json!({ "took": 0, "responses": out }))
            }
            _ => self.backend.execute(request, &[], params, body),
        }
    }

    /// Refuses system indices named in the request (expressions and bulk
    /// items; see [`system_index`]); lists the existing indices a wildcard
    /// in the request could expand to, system ones left out.
    fn expandable_indices(
        &self,
        request: &ActionRequest,
        identity: CallIdentity,
        params: &Params,
    ) -> Result<Vec<String>, Refusal> {
        let named = request.indices.iter().chain(request.items.iter().map(|item| &item.index));
        for name in named {
            if let Some(reason) = system_index(name, identity) {
                return Err(denied(GateName::SystemIndex, reason));
            }
        }
        // `expand_wildcards=none`: a wildcard matches nothing.
        let wildcards = request.indices.iter().any(|i| i.contains(['*', '?']))
            && params.expand_wildcards == crate::cluster::backend::ExpandWildcards::Expand;
        if wildcards {
            self.visible_indices(identity)
                .map_err(|reason| Refusal::Undecided { step: Undecided::Store, reason })
        } else {
            Ok(Vec::new())
        }
    }

    /// The concrete indices the call may touch, or why not.
    fn authorise(
        &self,
        call: &GuestCall<'_>,
        request: &ActionRequest,
        params: &Params,
        event: &mut Event,
    ) -> Result<Allowed, Refusal> {
        let existing = self.expandable_indices(request, call.identity, params)?;

        if call.identity == CallIdentity::Service {
            event.user = Some(service_accounts::name(call.extension));
            event.gate = Some(GateName::ServiceAccount.as_str().into());
            let indices = service_accounts::check_usable(&self.security.state().config, call.extension)
                .map_err(|denial| denial.reason)
                .and_then(|()| service_account_indices(call.extension, request, &existing))
                .map_err(|reason| denied(GateName::ServiceAccount, reason))?;
            // Every part was checked with the whole; each keeps its own.
            let mut parts = Vec::new();
            for part in request.parts() {
                let own = service_account_indices(call.extension, &part, &existing)
                    .map_err(|reason| denied(GateName::ServiceAccount, reason))?;
                parts.push(Ok(own));
            }
            return Ok(Allowed { indices, parts });
        }

        let token = call
            .token
            .ok_or_else(|| denied(GateName::Token, "no user behind this invocation (anonymous)"))?;
        let verified = self
            .verified_claims(token, call.extension)
            .map_err(|e| denied(GateName::Token, e.to_string()))?;
        let claims = &verified.claims;
        event.user = Some(claims.user.clone());
        event.user_source = Some(claims.source.clone());
        let state = self.security.state();
        // The token's user as of now: deleted or disabled, its tokens die.
        crate::security::token_holder(&state.config, claims).map_err(Refusal::Gate)?;
        let privileges = &state.privileges;
        let subjects = verified.subjects(&state, call.extension);
        event.policy = Some(subjects.policy.clone());
        let mut gates: Vec<Gate<'_>> = vec![
            (GateName::Service, privileges, &subjects.service),
            (GateName::User, privileges, &subjects.user),
        ];
        // A request authenticated by an API token carries the token's limits
        // into the extension's calls.
        let limit = match claims.scope.api_token() {
            Some(id) => {
                let tokens = self
                    .security
                    .api_tokens()
                    .ok_or_else(|| denied(GateName::ApiToken, "API tokens are not enabled"))?;
                let record =
                    tokens.get(id).map_err(|e| denied(GateName::ApiToken, e.to_string()))?.ok_or_else(
                        || denied(GateName::ApiToken, "the API token behind this request was deleted"),
                    )?;
                // The extension acts for a request the token made: the
                // audit names the token, as on the REST path.
                event.credential = Some(crate::security::api_tokens::audit_credential(id, &record.name));
                Some(tokens.limit(id, &record, &state.config, state.generation))
            }
            None => None,
        };
        if let Some(limit) = &limit {
            gates.push((GateName::ApiToken, &limit.privileges, &limit.subject));
        }
        // A job's run acts on its owner's consent: live at this call (a
        // revocation stops a run under way), and its scopes a gate of their own.
        let consent = match &claims.scope {
            crate::security::obo::Scope::Job(_) => self.consent_gate(claims, &state)?,
            _ => None,
        };
        if let Some(limit) = &consent {
            gates.push((GateName::Consent, &limit.privileges, &limit.subject));
        }
        check_gates(&gates, request, &existing)
    }

    /// The consent gate of a job run's call: refused when the owner's
    /// consent to the extension is not live now; `None` when it covers
    /// everything the user may do (`"all"`).
    fn consent_gate(
        &self,
        claims: &crate::security::obo::OboClaims,
        state: &crate::security::SecurityState,
    ) -> Result<Option<Arc<crate::security::api_tokens::TokenLimit>>, Refusal> {
        let consents = self
            .security
            .consents()
            .ok_or_else(|| denied(GateName::Consent, "consents are not kept by this host"))?;
        let source = crate::security::IdentitySource::parse(&claims.source).ok_or_else(|| {
            denied(GateName::Consent, format!("unknown identity source `{}`", claims.source))
        })?;
        let consent = consents
            .live(source, &claims.user, &claims.extension, crate::time::now_ms())
            .map_err(|e| Refusal::Undecided { step: Undecided::Store, reason: e.to_string() })?
            .map_err(|why| denied(GateName::Consent, why))?;
        Ok(consents.limit(&consent, &state.config, state.generation))
    }

    /// A user's own REST call to the cluster (OpenSearch's paths): one gate,
    /// the user's roles; system indices refused.
    pub fn call_as_user(
        &self,
        caller: &crate::security::AuthenticatedUser,
        request_id: &str,
        remote: Option<std::net::IpAddr>,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, GateError> {
        let (user, privileges) = (&caller.subject, &caller.state.privileges);
        let limit = caller.api_token.as_ref().map(|(_, limit)| limit.as_ref());
        let request = match resolve(method, path, body)? {
            Ok(request) => request,
            Err(reply) => return Ok(reply),
        };
        let params = Params::parse(path).map_err(|e| GateError::Invalid(e.to_string()))?;
        let run = |request: &ActionRequest,
                   params: &Params,
                   body: Option<&[u8]>,
                   allowed: Option<&mut Vec<String>>|
         -> Result<Reply, GateError> {
            let event = Event {
                user: Some(user.name.clone()),
                credential: crate::security::authn::audit_credential(caller),
                action: Some(request.action.to_owned()),
                indices: request.indices.clone(),
                method: Some(method.to_owned()),
                path: Some(path.to_owned()),
                ..Event::new(Category::GrantedPrivileges, request_id).remote(remote)
            };
            let decision =
                self.expandable_indices(request, CallIdentity::User, params).and_then(|existing| {
                    let mut gates: Vec<Gate<'_>> = vec![(GateName::User, privileges, user)];
                    if let Some(limit) = limit {
                        gates.push((GateName::ApiToken, &limit.privileges, &limit.subject));
                    }
                    check_gates(&gates, request, &existing)
                });
            Ok(self.conclude((request, params, body), event, decision, allowed, &|_| {})?)
        };
        if contexts::involved(&request, &params, body) {
            // A user's contexts are theirs as this credential: an API
            // token's are the token's.
            let owner = format!(
                "user\u{1f}{}\u{1f}{}\u{1f}{}",
                caller.source.as_str(),
                caller.principal.name,
                caller.api_token.as_ref().map_or("", |(id, _)| id.as_str())
            );
            let at = contexts::At { owner: &owner, request_id, path };
            return self.contexts_call(&at, &request, &params, body, &run);
        }
        run(&request, &params, body, None)
    }

    /// Full verification the first time a token is seen, then the cheap re-checks.
    fn verified_claims(
        &self,
        token: &str,
        extension: &str,
    ) -> Result<Arc<VerifiedToken>, crate::security::obo::TokenError> {
        let cached = self.verified.lock().ok().and_then(|m| m.get(token).cloned());
        if let Some(verified) = cached {
            self.tokens.recheck(&verified.claims, extension)?;
            return Ok(verified);
        }
        let verified = Arc::new(VerifiedToken {
            claims: self.tokens.verify(token, extension)?,
            subjects: std::sync::Mutex::new(None),
        });
        if let Ok(mut map) = self.verified.lock() {
            if map.len() >= VERIFIED_CAP {
                map.clear();
            }
            map.insert(token.to_owned(), verified.clone());
        }
        Ok(verified)
    }

    /// The existing indices a wildcard of `identity` may expand to: no
    /// system index of that caller ([`system_index`]).
    fn visible_indices(&self, identity: CallIdentity) -> Result<Vec<String>, String> {
        let existing = self.backend.indices().map_err(|e| e.to_string())?;
        Ok(existing.into_iter().filter(|i| system_index(i, identity).is_none()).collect())
    }
}

/// Why `name` (an index, or an expression as written) is a system index
/// for a caller of `identity`, or `None`. Prefixes are compared on the
/// name as decoded once by the action layer, so `%2Eext-x` is `.ext-x`.
/// An expression that starts with a system prefix (`.warden*`, `.ext-*`)
/// is refused as the names it can only match; one that merely could match
/// (`*`, `.e*`) is not, and expands without them ([`visible_indices`]).
///
/// [`visible_indices`]: ClusterGateway::visible_indices
fn system_index(name: &str, identity: CallIdentity) -> Option<String> {
    if name.starts_with(SYSTEM_PREFIX) {
        return Some(format!("index `{name}` is a system index"));
    }
    if identity == CallIdentity::User && name.starts_with(EXTENSION_PREFIX) {
        return Some(format!(
            "index `{name}` is a system index of an extension: `{EXTENSION_PREFIX}<id>` and `{EXTENSION_PREFIX}<id>_*` are reached only by extension <id>'s service identity, never by a user (whatever the roles) nor by an extension calling as its user"
        ));
    }
    None
}

/// Every gate must allow: cluster actions, each bulk item, each named
/// index; wildcards expand only to indices every gate allows.
/// Asks every gate (not only until the first no), so the refusal — and the
/// audit event — records each gate's decision; the first gate that said no
/// is the one named.
fn decide(
    gates: &[Gate<'_>],
    check: impl Fn(&Privileges, &Subject) -> Result<(), crate::security::privileges::Denied>,
) -> Result<(), Refusal> {
    // The common answer, allowed by every gate, without collecting the
    // decisions; a refusal asks them all again, to name each (issue #18).
    if gates.iter().all(|&(_, p, s)| check(p, s).is_ok()) {
        return Ok(());
    }
    let decisions: Vec<(GateName, Result<(), String>)> =
        gates.iter().map(|&(gate, p, s)| (gate, check(p, s).map_err(|d| d.to_string()))).collect();
    let Some((gate, Err(reason))) = decisions.iter().find(|(_, d)| d.is_err()) else {
        return Ok(());
    };
    let others: Vec<String> = decisions
        .iter()
        .filter(|(g, _)| g != gate)
        .map(|(g, d)| match d {
            Ok(()) => format!("{g} gate: allowed"),
            Err(r) => format!("{g} gate: {r}"),
        })
        .collect();
    let reason = if others.is_empty() { reason.clone() } else { format!("{reason} ({})", others.join("; ")) };
    Err(denied(*gate, reason))
}

/// One gate: whose privileges, evaluated by which compiled configuration.
type Gate<'a> = (GateName, &'a Privileges, &'a Subject);

/// What a decision allows: the concrete indices; for a multi request
/// (`_mget`, `_msearch`, see [`ActionRequest::parts`]) each part's own, or
/// why that part was refused.
#[derive(Debug, Default)]
struct Allowed {
    indices: Vec<String>,
    parts: Vec<Result<Vec<String>, Refusal>>,
}

impl From<Vec<String>> for Allowed {
    fn from(indices: Vec<String>) -> Allowed {
        Allowed { indices, parts: Vec::new() }
    }
}

/// The refusals of a multi request's parts, each reason once.
fn distinct_reasons(reasons: &[&str]) -> String {
    actions::distinct(reasons.iter().copied()).join("; ")
}

/// Every gate must allow; a multi request's parts are decided each on its
/// own, as OpenSearch's security plugin decides the shard requests of an
/// `_mget` and the searches of an `_msearch`: a refused part is refused
/// alone, and only when every part is refused is the whole.
fn check_gates(gates: &[Gate<'_>], request: &ActionRequest, existing: &[String]) -> Result<Allowed, Refusal> {
    let parts = request.parts();
    if parts.is_empty() {
        return check_single(gates, request, existing).map(Allowed::from);
    }
    let decided: Vec<Result<Vec<String>, Refusal>> =
        parts.iter().map(|part| check_single(gates, part, existing)).collect();
    if let Some(Err(first)) = decided.first()
        && decided.iter().all(Result::is_err)
    {
        return Err(first.clone());
    }
    let indices = actions::distinct(decided.iter().flatten().flatten().cloned());
    Ok(Allowed { indices, parts: decided })
}

fn check_single(
    gates: &[Gate<'_>],
    request: &ActionRequest,
    existing: &[String],
) -> Result<Vec<String>, Refusal> {
    if request.indices.is_empty() {
        decide(gates, |p, s| p.check_cluster(s, request.action))?;
        return Ok(Vec::new());
    }
    if !request.items.is_empty() {
        // _bulk: every item must pass every gate for its own action and index.
        for item in &request.items {
            decide(gates, |p, s| p.check_indices(s, item.action, [item.index.as_str()]))?;
        }
        return Ok(request.indices.clone());
    }
    // One name, the usual call: decided, and the answer is that name.
    if let [expr] = request.indices.as_slice()
        && !expr.contains(['*', '?'])
    {
        decide(gates, |p, s| p.check_indices(s, request.action, [expr.as_str()]))?;
        return Ok(vec![expr.clone()]);
    }
    // The answer is a set (in order of first appearance): an index named
    // twice, or matched by several patterns (`big,b*,*`), is decided once
    // and worked on once.
    let mut concrete = Vec::new();
    let mut considered: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for expr in &request.indices {
        if let Some(excluded) = expr.strip_prefix('-') {
            // An exclusion (after a wildcard, the action layer saw to it)
            // takes away what it matches; it never adds, so it is not decided.
            let pattern = crate::security::pattern::Pattern::parse(excluded)
                .map_err(|e| Refusal::Undecided { step: Undecided::Request, reason: e.to_string() })?;
            concrete.retain(|index: &String| !pattern.matches(index));
            considered.retain(|index| !pattern.matches(index));
            continue;
        }
        if expr.contains(['*', '?']) {
            // A wildcard expands only to indices every gate allows.
            let pattern = crate::security::pattern::Pattern::parse(expr)
                .map_err(|e| Refusal::Undecided { step: Undecided::Request, reason: e.to_string() })?;
            for index in existing.iter().filter(|i| pattern.matches(i)) {
                if considered.insert(index)
                    && gates
                        .iter()
                        .all(|(_, p, s)| p.check_indices(s, request.action, [index.as_str()]).is_ok())
                {
                    concrete.push(index.clone());
                }
            }
        } else {
            // A name is always decided, even if a wildcard before it left
            // it out: named, a refused index is a refusal.
            decide(gates, |p, s| p.check_indices(s, request.action, [expr.as_str()]))?;
            if considered.insert(expr) {
                concrete.push(expr.clone());
            }
        }
    }
    Ok(concrete)
}

/// Whether `index` is in extension `extension`'s own namespace: `.ext-<id>`
/// exactly, or `.ext-<id>_<suffix>`. Ids are `[a-z][a-z0-9-]*`, so `_`
/// cannot be part of one and the namespace is unambiguous: `hc` never
/// reaches `.ext-hc-2` (the own index of `hc-2`) nor `.ext-hc2`.
pub fn is_own_index(extension: &str, index: &str) -> bool {
    index.strip_prefix(".ext-").and_then(|rest| rest.strip_prefix(extension)).is_some_and(|rest| {
        rest.is_empty() || rest.strip_prefix('_').is_some_and(|suffix| !suffix.is_empty())
    })
}

/// The service account reaches `.ext-<id>` and `.ext-<id>_*` only (see
/// [`is_own_index`]), and no cluster action beyond health; a wildcard
/// expands only to existing indices of its own, every `_bulk` item must
/// name one of its own concrete indices.
fn service_account_indices(
    extension: &str,
    request: &ActionRequest,
    existing: &[String],
) -> Result<Vec<String>, String> {
    let own = format!(".ext-{extension}");
    let is_own = |i: &str| is_own_index(extension, i);
    if request.indices.is_empty() {
        return match request.action {
            actions::CLUSTER_HEALTH | actions::CLUSTER_MAIN => Ok(Vec::new()),
            other => Err(format!("the service identity may not perform `{other}`")),
        };
    }
    let mut concrete = Vec::new();
    for expr in request.indices.iter().chain(request.items.iter().map(|item| &item.index)) {
        if let Some(excluded) = expr.strip_prefix('-') {
            let pattern = crate::security::pattern::Pattern::parse(excluded).map_err(|e| e.to_string())?;
            concrete.retain(|index: &String| !pattern.matches(index));
        } else if expr.contains(['*', '?']) {
            let pattern = crate::security::pattern::Pattern::parse(expr).map_err(|e| e.to_string())?;
            concrete.extend(existing.iter().filter(|i| pattern.matches(i) && is_own(i)).cloned());
        } else if is_own(expr) {
            concrete.push(expr.clone());
        } else {
            return Err(format!(
                "the service identity of `{extension}` reaches only `{own}` and `{own}_*`, not `{expr}`"
            ));
        }
    }
    concrete.sort();
    concrete.dedup();
    Ok(concrete)
}

impl ClusterAccess for ClusterGateway {
    fn call(&self, call: &GuestCall<'_>) -> Result<Reply, GateError> {
        ClusterGateway::call(self, call)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::audit::Filter;
    use crate::cluster::embedded::Embedded;
    use crate::security::config::SecurityConfig;
    use crate::security::obo::{KeyRing, Revocations, attacks};
    use crate::store::Store;

    type R = Result<(), Box<dyn std::error::Error>>;

    const ROLES: &str = r#"
extension:reporter:
  index_permissions:
    - index_patterns: ["logs"]
      allowed_actions: ["read"]
analyst_role:
  index_permissions:
    - index_patterns: ["logs"]
      allowed_actions: ["read"]
"#;

    fn read_logs<'a>(token: &'a str, request_id: &'a str) -> GuestCall<'a> {
        GuestCall {
            extension: "reporter",
            request_id,
            token: Some(token),
            identity: CallIdentity::User,
            method: "GET",
            path: "/logs/_search",
            body: None,
        }
    }

    /// The namespace of an extension: `.ext-<id>` and `.ext-<id>_<suffix>`,
    /// never another id that starts like it.
    #[test]
    fn own_indices_are_unambiguous() {
        for (ext, index, own) in [
            ("hc", ".ext-hc", true),
            ("hc", ".ext-hc_state", true),
            ("hc", ".ext-hc_a_b", true),
            ("hc", ".ext-hc_", false),
            ("hc", ".ext-hc-2", false),
            ("hc", ".ext-hc-2_state", false),
            ("hc", ".ext-hc-cache", false),
            ("hc", ".ext-hc2", false),
            ("hc", ".ext-h", false),
            ("hc", "ext-hc", false),
            ("hc", ".ext-", false),
            ("hc-2", ".ext-hc-2", true),
            ("hc-2", ".ext-hc-2_state", true),
            ("hc-2", ".ext-hc", false),
        ] {
            assert_eq!(is_own_index(ext, index), own, "{ext} {index}");
        }
    }

    /// `.warden*` is a system index for every caller; `.ext-*` (names and
    /// patterns starting so) for user identities only; names that merely
    /// resemble them are no system index.
    #[test]
    fn system_indices_depend_on_the_identity() {
        for (name, user, service) in [
            (".warden-tokens", true, true),
            (".warden*", true, true),
            (".ext-hc", true, false),
            (".ext-hc-2_s", true, false),
            (".ext-future", true, false),
            (".ext-*", true, false),
            (".ext-", true, false),
            (".ext", false, false),
            (".extra", false, false),
            (".e*", false, false),
            ("*", false, false),
            ("ext-hc", false, false),
            ("logs", false, false),
        ] {
            assert_eq!(system_index(name, CallIdentity::User).is_some(), user, "user {name}");
            assert_eq!(system_index(name, CallIdentity::Service).is_some(), service, "service {name}");
        }
    }

    /// Every hostile token is refused by the token gate, with its reason in
    /// the refusal and in an audited MISSING_PRIVILEGES event; the genuine
    /// token passes, so the suite would notice a gate that refuses all.
    #[test]
    fn attack_tokens_are_refused_and_audited_with_their_reason() -> R {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("store.redb"))?);
        let texts = BTreeMap::from([
            ("roles.yml", ROLES.to_owned()),
            ("internal_users.yml", "ana:\n  backend_roles: [analyst]\n".to_owned()),
        ]);
        let security = Arc::new(Security::new(SecurityConfig::from_texts("test", &texts)?));
        let tokens = Arc::new(TokenService::new("warden-test", KeyRing::generate()?, Revocations::default()));
        let audit = Arc::new(AuditLog::open(&dir.path().join("audit"), Default::default())?);
        let backend = Box::new(Embedded::new(store, "warden-test")?);
        let gateway = ClusterGateway::new(backend, tokens.clone(), security.clone(), audit.clone());

        let genuine = attacks::mint(&tokens)?;
        let allowed = gateway.call(&read_logs(&genuine, "genuine"))?;
        assert_eq!(allowed.status, 404, "allowed through to the store (no index yet): {allowed:?}");

        let mut cases = attacks::cases(&tokens)?;
        let revoked = attacks::mint(&tokens)?;
        let claims = tokens.verify(&revoked, "reporter")?;
        tokens.revoke_jti(&claims.jti, claims.expires_at)?;
        cases.push(("revoked jti", revoked, "is revoked"));
        assert!(cases.len() >= 14);

        for (what, token, reason) in &cases {
            match gateway.call(&read_logs(token, what)) {
                Ok(reply) => panic!("{what}: performed, {reply:?}"),
                Err(GateError::Refused(refusal)) => {
                    let message = refusal.qualified();
                    assert!(
                        message.starts_with("token gate: ") && message.contains(reason),
                        "{what}: {message}"
                    )
                }
                Err(other) => panic!("{what}: {other:?}"),
            }
            let events =
                audit.query(&Filter { category: Some("MISSING_PRIVILEGES".into()), ..Filter::default() })?;
            let event = events.iter().find(|e| e.request_id == *what);
            let event = event.ok_or_else(|| format!("{what}: not audited"))?;
            assert_eq!(event.gate.as_deref(), Some("token"), "{what}");
            assert_eq!(event.extension.as_deref(), Some("reporter"), "{what}");
            assert!(event.reason.as_deref().is_some_and(|r| r.contains(reason)), "{what}: {event:?}");
        }

        // A token dies with its user: disabled, then deleted, the genuine
        // token (already verified and cached) is refused.
        let disable = |disabled: bool| {
            security.update(|c| {
                if let Some(ana) = c.internal_users.get_mut("ana") {
                    ana.disabled = disabled;
                }
                Ok::<_, crate::security::SecurityWriteError>(())
            })
        };
        disable(true)?;
        let refused = gateway.call(&read_logs(&genuine, "disabled"));
        assert!(
            matches!(&refused, Err(GateError::Refused(r)) if r.reason().contains("is disabled")),
            "{refused:?}"
        );
        disable(false)?;
        assert!(gateway.call(&read_logs(&genuine, "enabled again")).is_ok());
        security.update(|c| {
            c.internal_users.remove("ana");
            Ok::<_, crate::security::SecurityWriteError>(())
        })?;
        let refused = gateway.call(&read_logs(&genuine, "deleted"));
        assert!(
            matches!(&refused, Err(GateError::Refused(r)) if r.reason().contains("no longer exists")),
            "{refused:?}"
        );
        Ok(())
    }

    /// A services mapping widens the service gate for the user it names
    /// (by name or backend role) and no one else; the audit names the
    /// policy each decision was made with; calls `as service` are not
    /// widened and carry no policy.
    #[test]
    fn services_mappings_widen_the_service_gate_per_user_and_are_audited() -> R {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("store.redb"))?);
        let roles = format!(
            "{ROLES}act_as_original_user:\n  index_permissions:\n    - index_patterns: [\"reports\"]\n      allowed_actions: [\"read\"]\n"
        );
        let mapping = "act_as_original_user:\n  services_mappings:\n    reporter:\n      backend_roles: [\"analyst\"]\n";
        let texts = BTreeMap::from([
            ("roles.yml", roles),
            ("roles_mapping.yml", mapping.to_owned()),
            ("internal_users.yml", "ana:\n  backend_roles: [analyst]\nbob: {}\n".to_owned()),
        ]);
        let security = Arc::new(Security::new(SecurityConfig::from_texts("test", &texts)?));
        let tokens = Arc::new(TokenService::new("warden-test", KeyRing::generate()?, Revocations::default()));
        let audit = Arc::new(AuditLog::open(&dir.path().join("audit"), Default::default())?);
        let backend = Box::new(Embedded::new(store, "warden-test")?);
        let gateway = ClusterGateway::new(backend, tokens.clone(), security, audit.clone());
        let mint = |user: &str, backend_roles: &[String]| {
            let roles = ["analyst_role".to_owned(), "act_as_original_user".to_owned()];
            let attributes = std::collections::HashMap::new();
            let holder = crate::security::obo::TokenHolder {
                user,
                source: crate::security::IdentitySource::Internal,
                roles: &roles,
                backend_roles,
                attributes: &attributes,
            };
            tokens.mint(&holder, "reporter", &crate::security::obo::Scope::request("r1", None), 60)
        };
        let ana = mint("ana", &["analyst".to_owned()])?;
        let bob = mint("bob", &[])?;
        let read_reports = |token: &str, request_id: &'static str, identity: CallIdentity| {
            let call = GuestCall { path: "/reports/_search", identity, ..read_logs(token, request_id) };
            gateway.call(&call)
        };
        let event = |request_id: &str| -> Result<crate::audit::Event, Box<dyn std::error::Error>> {
            let events = audit.query(&Filter::default())?;
            Ok(events.into_iter().find(|e| e.request_id == request_id).ok_or("not audited")?)
        };

        let allowed = read_reports(&ana, "ana", CallIdentity::User)?;
        assert_eq!(allowed.status, 404, "through both gates to the store: {allowed:?}");
        assert_eq!(event("ana")?.policy.as_deref(), Some("extension:reporter + act_as_original_user"));

        let refused = read_reports(&bob, "bob", CallIdentity::User);
        assert!(
            matches!(&refused, Err(GateError::Refused(r)) if r.gate_name() == "service" && r.reason().contains("`reports`")),
            "{refused:?}"
        );
        let denial = event("bob")?;
        assert_eq!(denial.gate.as_deref(), Some("service"));
        assert_eq!(denial.policy.as_deref(), Some("extension:reporter"));
        assert_eq!(denial.user.as_deref(), Some("bob"));

        // The policy is recorded whichever gate decides: logs, allowed by
        // the policy itself, reaches the store for bob.
        gateway.call(&read_logs(&bob, "bob logs"))?;
        assert_eq!(event("bob logs")?.policy.as_deref(), Some("extension:reporter"));

        // As service: the service account's own gate, never widened.
        let service = read_reports(&ana, "ana as service", CallIdentity::Service);
        assert!(
            matches!(&service, Err(GateError::Refused(r)) if r.gate_name() == "service-account"),
            "{service:?}"
        );
        assert_eq!(event("ana as service")?.policy, None);
        Ok(())
    }

    /// A token's calls keep the gates' subjects made at its first call only
    /// while the security configuration is the same: a change between two
    /// calls of one invocation (a mapping removed, a role narrowed) decides
    /// its next call, and a change back widens it again.
    #[test]
    fn a_cached_tokens_gates_follow_the_configuration() -> R {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("store.redb"))?);
        let roles = format!(
            "{ROLES}act_as_original_user:\n  index_permissions:\n    - index_patterns: [\"reports\"]\n      allowed_actions: [\"read\"]\n"
        );
        let mapping = "act_as_original_user:\n  services_mappings:\n    reporter:\n      users: [\"ana\"]\n";
        let users = "ana: {}\n".to_owned();
        let texts = |mapping: &str, roles: &str| {
            BTreeMap::from([
                ("roles.yml", roles.to_owned()),
                ("roles_mapping.yml", mapping.to_owned()),
                ("internal_users.yml", users.clone()),
            ])
        };
        let widened = SecurityConfig::from_texts("test", &texts(mapping, &roles))?;
        let security = Arc::new(Security::new(widened.clone()));
        let tokens = Arc::new(TokenService::new("warden-test", KeyRing::generate()?, Revocations::default()));
        let audit = Arc::new(AuditLog::open(&dir.path().join("audit"), Default::default())?);
        let backend = Box::new(Embedded::new(store, "warden-test")?);
        let gateway = ClusterGateway::new(backend, tokens.clone(), security.clone(), audit);
        let token_roles = ["analyst_role".to_owned(), "act_as_original_user".to_owned()];
        let attributes = std::collections::HashMap::new();
        let holder = crate::security::obo::TokenHolder {
            user: "ana",
            source: crate::security::IdentitySource::Internal,
            roles: &token_roles,
            backend_roles: &[],
            attributes: &attributes,
        };
        let token =
            tokens.mint(&holder, "reporter", &crate::security::obo::Scope::request("r1", None), 60)?;
        let reports = GuestCall { path: "/reports/_search", ..read_logs(&token, "r1") };
        let service_refused = |result: &Result<Reply, GateError>| matches!(result, Err(GateError::Refused(r)) if r.gate_name() == "service");

        // Twice: the second call is served from the token's cached subjects.
        for _ in 0..2 {
            let allowed = gateway.call(&reports);
            assert!(matches!(&allowed, Ok(reply) if reply.status == 404), "{allowed:?}");
        }
        // The mapping goes: the same token's next call is refused.
        security.replace(SecurityConfig::from_texts("test", &texts("", &roles))?)?;
        let refused = gateway.call(&reports);
        assert!(service_refused(&refused), "{refused:?}");
        // The user's role no longer reads logs: the user gate refuses.
        let narrowed = ROLES.replace(
            "analyst_role:\n  index_permissions:\n    - index_patterns: [\"logs\"]",
            "analyst_role:\n  index_permissions:\n    - index_patterns: [\"other\"]",
        );
        assert_ne!(narrowed, ROLES, "the role was narrowed");
        gateway.call(&read_logs(&token, "r1"))?;
        security.replace(SecurityConfig::from_texts("test", &texts("", &narrowed))?)?;
        let refused = gateway.call(&read_logs(&token, "r1"));
        assert!(matches!(&refused, Err(GateError::Refused(r)) if r.gate_name() == "user"), "{refused:?}");
        // And back: widened again at once.
        security.replace(widened)?;
        let allowed = gateway.call(&reports);
        assert!(matches!(&allowed, Ok(reply) if reply.status == 404), "{allowed:?}");
        Ok(())
    }
}
