//! `/_warden/extensions`: the extension lifecycle over REST — install
//! (pending), upgrade, approve (serving), grants, list, show, remove. Every
//! endpoint needs the cluster permission `restapi:admin/extensions`
//! (`all_access` holds it) and refuses on-behalf-of tokens; every change is
//! audited (EXTENSION_INSTALL, EXTENSION_UPGRADE, EXTENSION_APPROVE,
//! EXTENSION_GRANT, EXTENSION_REMOVE) with the actor, refusals too. Errors
//! are OpenSearch-shaped.
//!
//! | method | path | does |
//! |---|---|---|
//! | POST | `/_warden/extensions` `{"manifest": "<toml>", "component": "<base64>"}` | install → 201, pending; of an approved id, upgrade → 200 applied (narrows) or 202 waiting (widens) |
//! | POST | `/_warden/extensions/_diff` (same body) | what installing would change, writing nothing |
//! | POST | `/_warden/extensions/{id}/_approve[?digest=]` | approve → serving (or the waiting upgrade applied); with `digest` (the record's `review_digest`), only if that is still what waits |
//! | DELETE | `/_warden/extensions/{id}/upgrade` | discard the upgrade waiting for approval |
//! | PUT | `/_warden/extensions/{id}/grants` | narrow, or widen back up to the request |
//! | GET | `/_warden/extensions[/{id}]` | list / show |
//! | DELETE | `/_warden/extensions/{id}` | remove (data indices kept) |
//! | GET | `/_warden/extensions/{id}/_check` | the missing-permission report |
//!
//! The install body is JSON with the component in base64, not multipart:
//! every client (curl, a script, the CLI) can send it without a multipart
//! library, and it goes through the one JSON extractor. Base64 costs a
//! third more bytes, so this route alone takes bodies up to
//! [`MAX_INSTALL_BODY`] (a component up to 48 MiB); every other route keeps
//! [`super::MAX_BODY`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::OpenSearchError;
use super::json::{Expected, JsonBody};
use super::{AppState, Caller};
use crate::audit::Category;
use crate::error::HasKind;
use crate::extensions::installed::{InstallState, Installed};
use crate::extensions::lifecycle::{ADMIN_PERMISSION, Approval, Installation, Lifecycle, LifecycleError};

/// Largest install body: base64 of a 48 MiB component, plus the manifest.
pub const MAX_INSTALL_BODY: usize = 65 << 20;

/// The body limit of the install route (`None`: the general one). Read by
/// the authentication middleware, which takes every body before routing.
pub fn body_limit(method: &axum::http::Method, path: &str) -> Option<usize> {
    let path = path.trim_end_matches('/');
    (method == axum::http::Method::POST
        && (path == "/_warden/extensions" || path == "/_warden/extensions/_diff"))
        .then_some(MAX_INSTALL_BODY)
}

impl From<LifecycleError> for OpenSearchError {
    fn from(e: LifecycleError) -> Self {
        let status =
            StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = match status {
            StatusCode::NOT_FOUND => "resource_not_found_exception",
            StatusCode::CONFLICT => "version_conflict_engine_exception",
            _ => "extension_exception",
        };
        OpenSearchError::new(status, kind, e.to_string())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallBody {
    manifest: String,
    /// The component's bytes, standard base64.
    component: String,
}

#[derive(Debug, Deserialize)]
pub struct RemoveParams {
    #[serde(default)]
    purge: bool,
}

/// The lifecycle, for a caller allowed to use it.
fn lifecycle(state: &AppState, caller: &Caller) -> Result<Arc<Lifecycle>, OpenSearchError> {
    // A refusal is audited too: who tried to manage extensions, and which
    // gate said no.
    let allowed = caller.require(ADMIN_PERMISSION).and_then(|()| caller.forbid_obo("manage extensions"));
    if let Err(denial) = allowed {
        if caller.audits(Category::MissingPrivileges) {
            caller.record(
                caller
                    .event(Category::MissingPrivileges)
                    .action(ADMIN_PERMISSION)
                    .gate(denial.gate.as_str())
                    .reason(denial.reason.clone()),
            );
        }
        return Err(denial.into());
    }
    state.lifecycle.clone().ok_or_else(|| {
        OpenSearchError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this host does not manage installed extensions",
        )
    })
}

/// Runs lifecycle work (store writes, compiling) on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, LifecycleError> + Send + 'static,
) -> Result<T, OpenSearchError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| {
            OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "extension_exception", e.to_string())
        })?
        .map_err(OpenSearchError::from)
}

/// Records a lifecycle event: who did what to which extension, and the
/// refusal when there was one.
fn audit<T>(caller: &Caller, category: Category, id: &str, result: &Result<T, OpenSearchError>) {
    if !caller.audits(category) {
        return;
    }
    let event = caller.event(category).extension(id);
    caller.record(match result {
        Ok(_) => event,
        Err(e) => event.reason(e.reason.clone()),
    });
}

/// A record as shown: the stored fields, the capabilities it requests and
/// whether it serves now (and why not, when its load failed).
fn view(lifecycle: &Lifecycle, record: &Installed) -> Value {
    let capabilities: Vec<String> = toml::from_str::<toml::Table>(&record.manifest)
        .ok()
        .and_then(|t| t.get("capabilities").and_then(|c| c.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    // The permission review: what it asks for, in plain words and as data.
    let described = lifecycle.describe(record).ok();
    let review = described.as_ref().map(|d| &d.review);
    let registry = lifecycle.registry();
    let last_error =
        registry.installed_failure_of(&record.id).map(|f| f.error).or_else(|| record.last_error.clone());
    json!({
        "id": record.id,
        "state": record.state.as_str(),
        "serving": registry.get(&record.id).is_some(),
        "version": record.version,
        "component_sha256": record.component_sha256,
        "component_bytes": record.component_bytes,
        "capabilities": capabilities,
        "installed_at": record.installed_at,
        "installed_at_rfc3339": crate::audit::rfc3339(record.installed_at),
        "installed_by": record.installed_by,
        "approved_at": record.approved_at,
        "approved_by": record.approved_by,
        "last_error": last_error,
        "manifest": record.manifest,
        "review": review,
        "requested": described.as_ref().map(|d| &d.requested),
        "granted": described.as_ref().map(|d| &d.granted),
        "review_text": review.map(ToString::to_string),
        // What an approval would approve now, as one digest: name it in
        // `_approve?digest=` to approve only what was reviewed.
        "review_digest": record.awaiting_digest(),
        "previous_version": record.previous_version,
        "upgraded_at": record.upgraded_at,
        "upgraded_by": record.upgraded_by,
        "upgrade": record.upgrade.as_ref().map(|u| {
            let delta = described.as_ref().and_then(|d| d.upgrade_delta.as_ref());
            json!({
                "version": u.version,
                "component_sha256": u.component_sha256,
                "component_bytes": u.component_bytes,
                "submitted_at": u.submitted_at,
                "submitted_by": u.submitted_by,
                "manifest": u.manifest,
                "delta": delta,
                "delta_text": delta.map(ToString::to_string),
            })
        }),
    })
}

/// The install body, decoded: the manifest's text and the component bytes.
fn decode_install(body: JsonBody) -> Result<(String, Vec<u8>), OpenSearchError> {
    let body: InstallBody =
        body.parse(Expected::Shape("{\"manifest\": \"<toml>\", \"component\": \"<base64>\"}"))?;
    let component = base64::engine::general_purpose::STANDARD.decode(body.component.trim()).map_err(|e| {
        OpenSearchError::new(
            StatusCode::BAD_REQUEST,
            "extension_exception",
            format!("component is not base64: {e}"),
        )
    })?;
    Ok((body.manifest, component))
}

/// The id a manifest's text names, when it names one (a refused install is
/// audited under it).
fn named_id(manifest: &str) -> String {
    toml::from_str::<toml::Table>(manifest)
        .ok()
        .and_then(|t| t.get("id").and_then(|id| id.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

pub async fn install(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), OpenSearchError> {
    let lifecycle = lifecycle(&state, &caller)?;
    let mut named = String::new();
    let result = async {
        let (manifest, component) = decode_install(body)?;
        named = named_id(&manifest);
        let actor = caller.user.principal.name.clone();
        let work = lifecycle.clone();
        // Installed, then checked as it would serve: what its routes and
        // jobs would be denied, and which callers would be.
        blocking(move || {
            let installation = work.install(&actor, &manifest, &component)?;
            let check = work.check(&installation.record().id).ok();
            Ok((installation, check))
        })
        .await
    }
    .await;
    let (category, id) = match &result {
        Ok((Installation::New(record), _)) => (Category::ExtensionInstall, record.id.clone()),
        Ok((installation, _)) => (Category::ExtensionUpgrade, installation.record().id.clone()),
        // A refused install of an id already approved was an upgrade.
        Err(_) => match lifecycle.find(&named) {
            Ok(Some(record)) if record.state == InstallState::Approved => (Category::ExtensionUpgrade, named),
            _ => (Category::ExtensionInstall, named),
        },
    };
    if caller.audits(category) {
        let event = caller.event(category).extension(&id);
        caller.record(match &result {
            Ok((Installation::New(_), _)) => event,
            Ok((Installation::Upgraded { record, from, .. }, _)) => event.reason(format!(
                "version {from} -> {}: applied at once (it only narrows what is granted)",
                record.version
            )),
            Ok((Installation::Waiting { record, delta }, _)) => event.reason(format!(
                "version {} -> {}: waits for approval, the old version serves (it widens: {})",
                record.version,
                record.upgrade.as_ref().map_or("?", |u| u.version.as_str()),
                delta.additions()
            )),
            Err(e) => event.reason(e.reason.clone()),
        });
    }
    let (installation, check) = result?;
    let mut answer = view(&lifecycle, installation.record());
    if let Some(report) = check {
        answer["check_clean"] = json!(report.is_clean());
        answer["check_text"] = json!(report.to_string());
    }
    let status = match &installation {
        Installation::New(_) => StatusCode::CREATED,
        Installation::Upgraded { from, delta, .. } => {
            answer["upgraded"] = json!({
                "from": from,
                "applied": true,
                "delta": delta,
                "delta_text": delta.to_string(),
            });
            StatusCode::OK
        }
        // `upgrade` (in the view) says what waits, with its delta.
        Installation::Waiting { .. } => StatusCode::ACCEPTED,
    };
    Ok((status, Json(answer)))
}

/// `POST /_warden/extensions/_diff`: what installing this manifest and
/// component would change against what is granted now, and whether it
/// would apply at once. Writes nothing; a query, so not audited.
pub async fn diff(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Json<Value>, OpenSearchError> {
    let lifecycle = lifecycle(&state, &caller)?;
    let (manifest, component) = decode_install(body)?;
    let preview = blocking(move || lifecycle.preview(&manifest, &component)).await?;
    Ok(Json(json!({
        "id": preview.id,
        "installed_version": preview.installed_version,
        "version": preview.version,
        "applies_at_once": preview.applies_at_once,
        "delta": preview.delta,
        "delta_text": preview.delta.to_string(),
    })))
}

/// `?digest=`: the review digest the operator approves (see
/// [`Lifecycle::approve`]).
#[derive(Debug, Deserialize)]
pub struct ApproveParams {
    digest: Option<String>,
}

pub async fn approve(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<ApproveParams>,
) -> Result<Json<Value>, OpenSearchError> {
    let lifecycle = lifecycle(&state, &caller)?;
    let (actor, work, target) = (caller.user.principal.name.clone(), lifecycle.clone(), id.clone());
    let result = blocking(move || work.approve(&actor, &target, params.digest.as_deref())).await;
    audit(&caller, Category::ExtensionApprove, &id, &result);
    if let Ok(Approval { record, upgraded_from: Some(from) }) = &result
        && caller.audits(Category::ExtensionUpgrade)
    {
        caller.record(
            caller
                .event(Category::ExtensionUpgrade)
                .extension(&id)
                .reason(format!("version {from} -> {}: applied on approval", record.version)),
        );
    }
    let approval = result?;
    let mut answer = view(&lifecycle, &approval.record);
    if let Some(from) = approval.upgraded_from {
        answer["upgraded"] = json!({ "from": from, "applied": true });
    }
    Ok(Json(answer))
}

/// `DELETE /_warden/extensions/{id}/upgrade`: the operator refuses the
/// upgrade waiting for approval; the serving version stays.
pub async fn discard_upgrade(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let lifecycle = lifecycle(&state, &caller)?;
    let (work, target) = (lifecycle.clone(), id.clone());
    let result = blocking(move || work.discard_upgrade(&target)).await;
    if caller.audits(Category::ExtensionUpgrade) {
        let event = caller.event(Category::ExtensionUpgrade).extension(&id);
        caller.record(match &result {
            Ok(version) => event.reason(format!("version {version}: discarded, not applied")),
            Err(e) => event.reason(e.reason.clone()),
        });
    }
    let discarded = result?;
    let work = lifecycle.clone();
    let record = blocking(move || work.get(&id)).await?;
    let mut answer = view(&lifecycle, &record);
    answer["discarded_version"] = json!(discarded);
    Ok(Json(answer))
}

/// `PUT /_warden/extensions/{id}/grants`: what the operator grants, at most
/// what the manifest requests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsBody {
    capabilities: std::collections::BTreeSet<String>,
    #[serde(default)]
    policy: crate::extensions::manifest::Policy,
}

pub async fn set_grants(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, OpenSearchError> {
    let lifecycle = lifecycle(&state, &caller)?;
    let result = async {
        let body: GrantsBody = body.parse(Expected::Shape(
            "{\"capabilities\": [..], \"policy\": {\"cluster_permissions\": [..], \"index_permissions\": [..]}}",
        ))?;
        let (work, target) = (lifecycle.clone(), id.clone());
        blocking(move || work.set_grants(&target, body.capabilities, body.policy)).await
    }
    .await;
    match &result {
        // What was granted, so the record says more than "changed".
        Ok(record) if caller.audits(Category::ExtensionGrant) => {
            let granted = record.grants.as_ref().map_or_else(String::new, |g| {
                let index: Vec<String> = g
                    .policy
                    .index_permissions
                    .iter()
                    .map(|p| format!("{:?} on {:?}", p.allowed_actions, p.index_patterns))
                    .collect();
                format!(
                    "granted capabilities {:?}, cluster {:?}, index [{}]",
                    g.capabilities,
                    g.policy.cluster_permissions,
                    index.join("; ")
                )
            });
            caller.record(caller.event(Category::ExtensionGrant).extension(&id).reason(granted));
        }
        Ok(_) => {}
        Err(_) => audit(&caller, Category::ExtensionGrant, &id, &result),
    }
    Ok(Json(view(&lifecycle, &result?)))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, OpenSearchError> {
    let lifecycle = lifecycle(&state, &caller)?;
    let work = lifecycle.clone();
    let records = blocking(move || work.list()).await?;
    let extensions: Vec<Value> = records.iter().map(|r| view(&lifecycle, r)).collect();
    Ok(Json(json!({ "extensions": extensions })))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let lifecycle = lifecycle(&state, &caller)?;
    let work = lifecycle.clone();
    let record = blocking(move || work.get(&id)).await?;
    Ok(Json(view(&lifecycle, &record)))
}

/// `GET /_warden/extensions/{id}/_check`: the missing-permission report, as
/// data and in plain words. A query, so not audited (as `show`).
pub async fn check(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let lifecycle = lifecycle(&state, &caller)?;
    let report = blocking(move || lifecycle.check(&id)).await?;
    Ok(Json(json!({
        "id": report.id,
        "clean": report.is_clean(),
        "report": report,
        "report_text": report.to_string(),
    })))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<RemoveParams>,
) -> Result<Json<Value>, OpenSearchError> {
    let lifecycle = lifecycle(&state, &caller)?;
    let (actor, work, target, purge) =
        (caller.user.principal.name.clone(), lifecycle.clone(), id.clone(), params.purge);
    let result = blocking(move || work.remove(&actor, &target, purge)).await;
    audit(&caller, Category::ExtensionRemove, &id, &result);
    let removal = result?;
    Ok(Json(json!({
        "id": id,
        "removed": true,
        "suspended_jobs": removal.suspended_jobs,
        "service_account_removed": removal.service_account_removed,
        "consents_revoked": removal.consents_revoked,
        "roles_removed": removal.roles_removed,
        "mappings_removed": removal.mappings_removed,
        "indices_deleted": removal.indices_deleted,
        "data_indices_kept": !params.purge,
    })))
}
