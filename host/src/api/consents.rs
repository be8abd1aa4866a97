//! `/_warden/consents`: users consent to an extension running background
//! work for them, with scopes (a subset of their permissions, or all of
//! them), list their consents and revoke them; holders of
//! `restapi:admin/consents` list and revoke everyone's. Every change is
//! audited (CONSENT_WRITE). Errors are OpenSearch-shaped.
//!
//! | method | path | does |
//! |---|---|---|
//! | POST | `/_warden/consents` `{"extension": "<id>", "scopes": "all" \| {..}, "add"?: true}` | consent (or, with `add`, widen the live one) → 201 `{"id", "consent"}` |
//! | GET | `/_warden/consents[?user=&extension=]` | one's own; an admin's: everyone's |
//! | DELETE | `/_warden/consents/{id}` | revoke; the extension's jobs for that user stop |
//! | DELETE | `/_warden/consents?user=&extension=` | an admin revokes every live consent of a user and/or an extension |
//!
//! Consenting needs `schedule:<id>` (the operator's "this user may
//! consent") and is refused through an on-behalf-of token; through an API
//! token, only scopes within the token's own permissions. Scopes wider
//! than the user holds now are refused, naming what is missing. The user
//! gate still decides at every run: scopes only ever narrow. Each consent
//! shown says what the extension's job types declare beyond it
//! (`uncovered`: after an upgrade that declares more, what the user is
//! asked to add, and only that).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::OpenSearchError;
use super::json::{Expected, JsonBody};
use super::{AppState, Caller};
use crate::audit::Category;
use crate::error::HasKind;
use crate::extensions::actions;
use crate::extensions::check::representative_index;
use crate::extensions::delta::covers;
use crate::manifest::JobType;
use crate::security::consents::{Consent, ConsentError, Consents, LimitedScopes, Scopes, id_for};
use crate::security::{
    AuthenticatedUser, IdentitySource, SecurityState, consent_permission, service_accounts,
};
use crate::time::now_ms;

/// The cluster permission that lists and revokes everyone's consents.
pub const ADMIN_PERMISSION: &str = "restapi:admin/consents";

impl From<ConsentError> for OpenSearchError {
    fn from(e: ConsentError) -> Self {
        let status =
            StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = match status {
            StatusCode::NOT_FOUND => "resource_not_found_exception",
            StatusCode::BAD_REQUEST => "illegal_argument_exception",
            StatusCode::CONFLICT => "version_conflict_engine_exception",
            _ => "consent_exception",
        };
        OpenSearchError::new(status, kind, e.to_string())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConsent {
    extension: String,
    scopes: Value,
    /// Add these scopes to the live consent instead of replacing it.
    #[serde(default)]
    add: bool,
}

#[derive(Debug, Deserialize)]
pub struct ListFilter {
    user: Option<String>,
    extension: Option<String>,
}

fn consents(state: &AppState) -> Result<&Arc<Consents>, OpenSearchError> {
    state.security.consents().ok_or_else(|| {
        OpenSearchError::new(StatusCode::NOT_FOUND, "not_found", "this host keeps no consents")
    })
}

fn is_admin(user: &AuthenticatedUser) -> bool {
    user.check_cluster(ADMIN_PERMISSION).is_ok()
}

/// `list` as the known actions it names (see [`actions::concrete`]).
fn expand_actions(state: &SecurityState, list: &[String]) -> Vec<String> {
    actions::concrete(list, &state.config.action_groups).into_iter().collect()
}

/// What the extension's declared job types do that `consent`'s scopes do
/// not allow: what the user would be asked to add (incremental consent,
/// after an upgrade that declares more). Until they do, the jobs keep
/// running within the old scopes. Empty for `"all"`.
fn uncovered(state: &SecurityState, consents: &Consents, consent: &Consent, jobs: &[JobType]) -> Vec<String> {
    let Some(limit) = consents.limit(consent, &state.config, state.generation) else { return Vec::new() };
    let mut missing = Vec::new();
    for job in jobs {
        for action in expand_actions(state, &job.cluster_actions) {
            if !action.starts_with("indices:") {
                if limit.privileges.check_cluster(&limit.subject, &action).is_err() {
                    missing.push(format!("job type `{}`: cluster `{action}`", job.name));
                }
                continue;
            }
            for pattern in &job.index_patterns {
                let Some(index) = representative_index(pattern) else { continue };
                if limit.privileges.check_indices(&limit.subject, &action, [index.as_str()]).is_err() {
                    missing.push(format!("job type `{}`: `{action}` on `{pattern}`", job.name));
                }
            }
        }
    }
    missing
}

/// A consent as shown: the record, whether it is live, and what the
/// extension's job types now declare beyond it.
fn view(state: &AppState, consents: &Consents, consent: &Consent, now: u64) -> Value {
    let security = state.security.state();
    let jobs = state.registry.get(&consent.extension).map(|e| e.manifest.jobs.clone()).unwrap_or_default();
    let mut value = json!(consent);
    value["live"] = json!(consent.is_live(now));
    value["uncovered"] = json!(uncovered(&security, consents, consent, &jobs));
    value
}

/// `add`: the new scopes join a live consent's (incremental consent);
/// `"all"` on either side is all.
fn merged(old: &Scopes, new: Scopes) -> Scopes {
    match (old, new) {
        (Scopes::Limited(old), Scopes::Limited(mut new)) => {
            let mut cluster = old.cluster_permissions.clone();
            cluster.append(&mut new.cluster_permissions);
            cluster.sort();
            cluster.dedup();
            let mut index = old.index_permissions.clone();
            for p in new.index_permissions {
                if !index.contains(&p) {
                    index.push(p);
                }
            }
            Scopes::Limited(LimitedScopes { cluster_permissions: cluster, index_permissions: index })
        }
        (Scopes::All(all), _) => Scopes::All(*all),
        (_, all) => all,
    }
}

/// What of `scopes` `user` does not hold now (their roles and, through an
/// API token, the token's permissions), in words: each cluster action, and
/// each index action on a representative index of each pattern. Action
/// groups and action patterns are expanded to the actions they name.
fn beyond_user(state: &SecurityState, user: &AuthenticatedUser, scopes: &LimitedScopes) -> Vec<String> {
    let expand = |list: &[String]| expand_actions(state, list);
    let holds_cluster = |action: &str| user.check_cluster(action).is_ok();
    // What the user's roles hold on indices, as (pattern, concrete actions):
    // a scope pattern must be *contained* in one of them (every index it can
    // name is named by a held pattern granting the action), not merely
    // match a sample index.
    let held: Vec<(String, BTreeSet<String>)> = state
        .privileges
        .role_names(&user.subject.roles)
        .iter()
        .filter_map(|name| state.config.roles.get(name))
        .flat_map(|role| role.index_permissions.iter())
        .flat_map(|p| {
            let actions = actions::concrete(&p.allowed_actions, &state.config.action_groups);
            // A templated pattern depends on the user: never counted as
            // containing anything (conservative).
            p.index_patterns.iter().filter(|i| !i.contains("${")).map(move |i| (i.clone(), actions.clone()))
        })
        .collect();
    let holds_index = |action: &str, pattern: &str, index: &str| {
        let contained = held.iter().any(|(p, actions)| actions.contains(action) && covers(p, pattern));
        // Through an API token, its own limits too (compiled: checked on
        // the pattern's sample index).
        contained
            && user.api_token.as_ref().is_none_or(|(_, limit)| {
                limit.privileges.check_indices(&limit.subject, action, [index]).is_ok()
            })
    };
    let mut missing = Vec::new();
    for action in expand(&scopes.cluster_permissions) {
        if !holds_cluster(&action) {
            missing.push(format!("cluster `{action}`"));
        }
    }
    for permission in &scopes.index_permissions {
        let actions = expand(&permission.allowed_actions);
        for pattern in &permission.index_patterns {
            let Some(index) = representative_index(pattern) else {
                missing
                    .push(format!("index pattern `{pattern}`: a regex or template cannot be consented to"));
                continue;
            };
            for action in &actions {
                if !holds_index(action, pattern, &index) {
                    missing.push(format!("`{action}` on `{pattern}`"));
                }
            }
        }
    }
    missing
}

/// `POST /_warden/consents`.
pub async fn grant(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), OpenSearchError> {
    let result = grant_consent(&state, &caller, body).await;
    if caller.audits(Category::ConsentWrite) {
        let event = caller.event(Category::ConsentWrite);
        caller.record(match &result {
            Ok(consent) => event.extension(&consent.extension).reason(format!(
                "consented (id {}), scopes {}",
                consent.id,
                serde_json::to_string(&consent.scopes).unwrap_or_default()
            )),
            Err(e) => event.reason(e.reason.clone()),
        });
    }
    let consent = result?;
    let shown = view(&state, consents(&state)?, &consent, now_ms());
    Ok((StatusCode::CREATED, Json(json!({ "id": consent.id, "consent": shown }))))
}

async fn grant_consent(
    state: &AppState,
    caller: &Caller,
    body: JsonBody,
) -> Result<Consent, OpenSearchError> {
    caller.forbid_obo("consent to background work")?;
    let user = &caller.user;
    if user.source == IdentitySource::Anonymous || service_accounts::is_service_account(&user.principal.name)
    {
        return Err(OpenSearchError::forbidden("only users consent to background work"));
    }
    // A name with control characters (an external subject can carry them)
    // could never own a job: refused here too, before anything is kept.
    if user.principal.name.chars().any(char::is_control) {
        return Err(OpenSearchError::new(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "a user name holding control characters cannot consent to background work",
        ));
    }
    let request: NewConsent =
        body.parse(Expected::Shape("{\"extension\": \"<id>\", \"scopes\": \"all\" | {\"cluster_permissions\": [..], \"index_permissions\": [..]}}"))?;
    let consents = consents(state)?;
    let scopes = Scopes::from_json(&request.scopes)?;
    let id = request.extension;
    let scopes = if request.add {
        let (lookup, key) = (consents.clone(), id_for(user.source, &user.principal.name, &id));
        let existing = tokio::task::spawn_blocking(move || lookup.get(&key)).await.map_err(|e| {
            OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "consent_exception", e.to_string())
        })??;
        match existing.filter(|c| c.is_live(now_ms())) {
            Some(live) => merged(&live.scopes, scopes),
            None => scopes,
        }
    } else {
        scopes
    };
    // The operator's "this user may consent".
    let permission = consent_permission(&id);
    user.check_extension(&permission).map_err(|denied| {
        OpenSearchError::forbidden(format!("consenting to extension `{id}` needs `{permission}`: {denied}"))
    })?;
    let extension = state.registry.get(&id).ok_or_else(|| {
        let why = if state.registry.is_pending(&id) { "is pending approval" } else { "is not serving" };
        OpenSearchError::new(
            StatusCode::NOT_FOUND,
            "resource_not_found_exception",
            format!("extension `{id}` {why}"),
        )
    })?;
    if !extension.runs_jobs() {
        return Err(OpenSearchError::new(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            format!("extension `{id}` runs no background work: there is nothing to consent to"),
        ));
    }
    let security = user.state.clone();
    match &scopes {
        // Through an API token, "everything I may do" would outlive the
        // token's own limits: name them.
        Scopes::All(_) if user.api_token.is_some() => {
            return Err(OpenSearchError::forbidden(
                "through an API token, consent names scopes within the token's permissions, not \"all\"",
            ));
        }
        Scopes::All(_) => {}
        Scopes::Limited(limited) => {
            // Checked entry by entry against the user's roles: on the
            // blocking pool, never on a request executor.
            let (user_now, scopes_now) = (user.clone(), limited.clone());
            let missing = tokio::task::spawn_blocking(move || beyond_user(&security, &user_now, &scopes_now))
                .await
                .map_err(|e| {
                    OpenSearchError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "consent_exception",
                        e.to_string(),
                    )
                })?;
            if !missing.is_empty() {
                return Err(OpenSearchError::forbidden(format!(
                    "scopes wider than `{}` holds: {}",
                    user.principal.name,
                    missing.join(", ")
                )));
            }
        }
    }
    let now = now_ms();
    let consent = Consent {
        id: id_for(user.source, &user.principal.name, &id),
        user: user.principal.name.clone(),
        auth_source: user.source,
        extension: id.clone(),
        extension_version: Some(extension.manifest.version.clone()),
        // An installed extension's component digest: what was consented to.
        component_sha256: state
            .lifecycle
            .as_ref()
            .and_then(|lifecycle| lifecycle.find(&id).ok().flatten())
            .map(|record| record.component_sha256),
        scopes,
        backend_roles: user.principal.backend_roles.clone(),
        via_api_token: user.api_token.as_ref().map(|(token, _)| token.clone()),
        created_at: now,
        // An external user's roles were seen now, from a login no one can
        // repeat: the consent lasts a bounded time.
        expires_at: (user.source == IdentitySource::Jwt)
            .then(|| now.saturating_add(consents.external_max_age_ms())),
        revoked_at: None,
        revoked_by: None,
    };
    let kept = consent.clone();
    let store = consents.clone();
    tokio::task::spawn_blocking(move || store.put(&kept)).await.map_err(|e| {
        OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "consent_exception", e.to_string())
    })??;
    if let Some(scheduler) = &state.scheduler {
        let resumed = scheduler.resume_after_consent(&consent);
        if !resumed.is_empty() {
            tracing::info!(user = consent.user, extension = id, jobs = ?resumed, "jobs resumed by a new consent");
        }
    }
    Ok(consent)
}

/// `GET /_warden/consents`: the caller's own; an admin's, everyone's
/// (filtered by `user` and `extension`).
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(filter): Query<ListFilter>,
) -> Result<Json<Value>, OpenSearchError> {
    caller.forbid_obo("list consents")?;
    let consents = consents(&state)?.clone();
    let all = tokio::task::spawn_blocking(move || consents.list()).await.map_err(|e| {
        OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "consent_exception", e.to_string())
    })??;
    let admin = is_admin(&caller.user);
    let now = now_ms();
    let store = state.security.consents().ok_or_else(|| {
        OpenSearchError::new(StatusCode::NOT_FOUND, "not_found", "this host keeps no consents")
    })?;
    let shown: Vec<Value> = all
        .into_iter()
        .filter(|c| admin || caller.user.is(&c.user, c.auth_source))
        .filter(|c| filter.user.as_ref().is_none_or(|u| *u == c.user))
        .filter(|c| filter.extension.as_ref().is_none_or(|e| *e == c.extension))
        .map(|c| view(&state, store, &c, now))
        .collect();
    Ok(Json(json!({ "consents": shown })))
}

/// `DELETE /_warden/consents?user=&extension=`: an admin revokes every
/// live consent of a user, of an extension, or of both (at least one is
/// named); each one's jobs are suspended as by a single revocation.
pub async fn revoke_matching(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(filter): Query<ListFilter>,
) -> Result<Json<Value>, OpenSearchError> {
    caller.forbid_obo("revoke consents")?;
    if !is_admin(&caller.user) {
        return Err(OpenSearchError::forbidden(format!(
            "revoking consents in bulk needs `{ADMIN_PERMISSION}`"
        )));
    }
    if filter.user.is_none() && filter.extension.is_none() {
        return Err(OpenSearchError::new(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "name `user`, `extension` or both: revoking every consent at once is not offered",
        ));
    }
    let consents = consents(&state)?.clone();
    let all = tokio::task::spawn_blocking(move || consents.list()).await.map_err(|e| {
        OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "consent_exception", e.to_string())
    })??;
    let now = now_ms();
    let mut revoked = Vec::new();
    for consent in all.into_iter().filter(|c| {
        c.is_live(now)
            && filter.user.as_ref().is_none_or(|u| *u == c.user)
            && filter.extension.as_ref().is_none_or(|e| *e == c.extension)
    }) {
        let result = revoke_consent(&state, &caller, &consent.id).await;
        if caller.audits(Category::ConsentWrite) {
            let event = caller.event(Category::ConsentWrite).extension(&consent.extension);
            caller.record(match &result {
                Ok((c, suspended)) => event.reason(format!(
                    "revoked consent {} of `{}` (bulk); jobs suspended: {suspended:?}",
                    c.id, c.user
                )),
                Err(e) => event.reason(e.reason.clone()),
            });
        }
        let (consent, suspended) = result?;
        revoked.push(json!({"id": consent.id, "user": consent.user, "extension": consent.extension, "suspended_jobs": suspended}));
    }
    Ok(Json(json!({ "revoked": revoked })))
}

/// `DELETE /_warden/consents/{id}`: its owner or an admin revokes it; the
/// extension's jobs for that user are suspended at once (they would be at
/// their next run anyway), and resume if the user consents again.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let result = revoke_consent(&state, &caller, &id).await;
    if caller.audits(Category::ConsentWrite) {
        let event = caller.event(Category::ConsentWrite);
        caller.record(match &result {
            Ok((consent, suspended)) => event.extension(&consent.extension).reason(format!(
                "revoked consent {} of `{}`; jobs suspended: {suspended:?}",
                consent.id, consent.user
            )),
            Err(e) => event.reason(e.reason.clone()),
        });
    }
    let (consent, suspended) = result?;
    Ok(Json(json!({ "id": consent.id, "revoked": true, "consent": consent, "suspended_jobs": suspended })))
}

async fn revoke_consent(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Consent, Vec<String>), OpenSearchError> {
    caller.forbid_obo("revoke consents")?;
    let consents = consents(state)?.clone();
    let not_found = || OpenSearchError::from(ConsentError::NotFound(id.to_owned()));
    let (lookup, key) = (consents.clone(), id.to_owned());
    let consent = tokio::task::spawn_blocking(move || lookup.get(&key))
        .await
        .map_err(|e| {
            OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "consent_exception", e.to_string())
        })??
        .ok_or_else(not_found)?;
    // Someone else's consent is not found, as if it did not exist.
    if !caller.user.is(&consent.user, consent.auth_source) && !is_admin(&caller.user) {
        return Err(not_found());
    }
    let (by, key) = (caller.user.principal.name.clone(), id.to_owned());
    let revoked =
        tokio::task::spawn_blocking(move || consents.revoke(&key, &by, now_ms())).await.map_err(|e| {
            OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "consent_exception", e.to_string())
        })??;
    let suspended = match &state.scheduler {
        Some(scheduler) => scheduler.suspend_for_consent(&revoked),
        None => Vec::new(),
    };
    Ok((revoked, suspended))
}
