//! The security REST API on OpenSearch's paths:
//! `/_plugins/_security/api/{internalusers,roles,rolesmapping,actiongroups}[/{name}]`
//! (GET, PUT, DELETE, PATCH with JSON Patch) and `/_plugins/_security/api/account`.
//!
//! Each endpoint needs the cluster permission `restapi:admin/<endpoint>`
//! (held by `security_manager` and `all_access`). Reserved and static
//! entries cannot be changed; hidden ones are not shown. Every change
//! applies atomically (see [`crate::security::Security::update`]) and is
//! audited as SECURITY_CONFIG_WRITE.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use crate::audit::{Category, Event};
use crate::security::config::{ActionGroup, InternalUser, Role, RoleMapping, SecurityConfig};
use crate::security::{AuthenticatedUser, SecurityWriteError, password};
use crate::server::{AppState, RequestId};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/_plugins/_security/api/generateonbehalfoftoken", axum::routing::post(generate_obo))
        .route("/_plugins/_security/api/apitokens", get(api_tokens_list).post(api_tokens_create))
        .route("/_plugins/_security/api/apitokens/{name}", axum::routing::delete(api_tokens_delete))
        .route("/_warden/tokens/_revoke", axum::routing::post(revoke))
        .route("/_warden/tokens/_revocations", get(revocations))
        .route("/_warden/tokens/_rotate_keys", axum::routing::post(rotate_keys))
        .route("/_warden/security/_export", get(export))
        .route("/_warden/security/_import", axum::routing::put(import))
        .route("/_plugins/_security/api/account", get(account_get).put(account_put))
        .route("/_plugins/_security/api/{resource}", any(collection))
        .route("/_plugins/_security/api/{resource}/{name}", any(entry))
}

/// The four configuration resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    InternalUsers,
    Roles,
    RolesMapping,
    ActionGroups,
}

impl Resource {
    fn parse(s: &str) -> Option<Resource> {
        match s {
            "internalusers" => Some(Resource::InternalUsers),
            "roles" => Some(Resource::Roles),
            "rolesmapping" => Some(Resource::RolesMapping),
            "actiongroups" => Some(Resource::ActionGroups),
            _ => None,
        }
    }

    fn endpoint(self) -> &'static str {
        match self {
            Resource::InternalUsers => "internalusers",
            Resource::Roles => "roles",
            Resource::RolesMapping => "rolesmapping",
            Resource::ActionGroups => "actiongroups",
        }
    }

    /// Entries as JSON, hidden ones left out, hashes blanked as OpenSearch does.
    fn list(self, config: &SecurityConfig) -> BTreeMap<String, Value> {
        fn visible<T: serde::Serialize>(
            map: &BTreeMap<String, T>,
            hidden: impl Fn(&T) -> bool,
        ) -> BTreeMap<String, Value> {
            map.iter()
                .filter(|(_, v)| !hidden(v))
                .filter_map(|(k, v)| serde_json::to_value(v).ok().map(|v| (k.clone(), v)))
                .collect()
        }
        match self {
            Resource::InternalUsers => {
                let mut users = visible(&config.internal_users, |u| u.hidden);
                for user in users.values_mut() {
                    if let Some(obj) = user.as_object_mut() {
                        obj.insert("hash".into(), Value::String(String::new()));
                    }
                }
                users
            }
            Resource::Roles => visible(&config.roles, |r| r.hidden),
            Resource::RolesMapping => visible(&config.roles_mapping, |m| m.hidden),
            Resource::ActionGroups => visible(&config.action_groups, |g| g.hidden),
        }
    }

    /// (exists, protected: reserved or static, hidden)
    fn flags(self, config: &SecurityConfig, name: &str) -> Option<(bool, bool)> {
        match self {
            Resource::InternalUsers => {
                config.internal_users.get(name).map(|u| (u.reserved || u.is_static, u.hidden))
            }
            Resource::Roles => config.roles.get(name).map(|r| (r.reserved || r.is_static, r.hidden)),
            Resource::RolesMapping => config.roles_mapping.get(name).map(|m| (m.reserved, m.hidden)),
            Resource::ActionGroups => {
                config.action_groups.get(name).map(|g| (g.reserved || g.is_static, g.hidden))
            }
        }
    }

    fn remove(self, config: &mut SecurityConfig, name: &str) {
        match self {
            Resource::InternalUsers => drop(config.internal_users.remove(name)),
            Resource::Roles => drop(config.roles.remove(name)),
            Resource::RolesMapping => drop(config.roles_mapping.remove(name)),
            Resource::ActionGroups => drop(config.action_groups.remove(name)),
        }
    }

    /// Writes one entry from its JSON document. Users take `password`
    /// (hashed here, strength-checked) or keep their current hash.
    fn put(self, config: &mut SecurityConfig, name: &str, mut doc: Value) -> Result<(), ApiError> {
        let bad = |e: serde_json::Error| ApiError::BadRequest(format!("invalid `{name}`: {e}"));
        let Some(obj) = doc.as_object_mut() else {
            return Err(ApiError::BadRequest(format!("`{name}` must be a JSON object")));
        };
        for flag in ["reserved", "static", "hidden"] {
            if obj.get(flag).and_then(Value::as_bool) == Some(true) {
                return Err(ApiError::BadRequest(format!("`{flag}` cannot be set through the API")));
            }
        }
        match self {
            Resource::InternalUsers => {
                if crate::security::service_accounts::is_service_account(name) {
                    if !config.internal_users.contains_key(name) {
                        return Err(ApiError::BadRequest(format!(
                            "`{name}`: service accounts are created by Warden when it loads an extension"
                        )));
                    }
                    if obj.contains_key("password") {
                        return Err(ApiError::BadRequest(format!(
                            "`{name}`: a service account has no password"
                        )));
                    }
                }
                let password = obj.remove("password");
                // An empty hash is how GET shows one; it means "unchanged".
                if obj.get("hash").and_then(Value::as_str) == Some("") {
                    obj.remove("hash");
                }
                let mut user: InternalUser = serde_json::from_value(doc).map_err(bad)?;
                match password {
                    Some(Value::String(p)) => {
                        password::check_strength(name, &p)
                            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                        user.hash = Some(password::hash(&p).map_err(|e| ApiError::Internal(e.to_string()))?);
                    }
                    Some(_) => return Err(ApiError::BadRequest("`password` must be a string".into())),
                    None if crate::security::service_accounts::is_service_account(name) => {}
                    None if user.hash.is_none() => {
                        user.hash = config.internal_users.get(name).and_then(|u| u.hash.clone());
                        if user.hash.is_none() {
                            return Err(ApiError::BadRequest(format!(
                                "new user `{name}` needs a `password`"
                            )));
                        }
                    }
                    None => {}
                }
                config.internal_users.insert(name.to_owned(), user);
            }
            Resource::Roles => {
                let role: Role = serde_json::from_value(doc).map_err(bad)?;
                config.roles.insert(name.to_owned(), role);
            }
            Resource::RolesMapping => {
                if !config.roles.contains_key(name) {
                    return Err(ApiError::BadRequest(format!("role `{name}` does not exist")));
                }
                let mapping: RoleMapping = serde_json::from_value(doc).map_err(bad)?;
                config.roles_mapping.insert(name.to_owned(), mapping);
            }
            Resource::ActionGroups => {
                let group: ActionGroup = serde_json::from_value(doc).map_err(bad)?;
                if group.allowed_actions.iter().any(|a| a == name) {
                    return Err(ApiError::BadRequest(format!("action group `{name}` cannot contain itself")));
                }
                config.action_groups.insert(name.to_owned(), group);
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl From<SecurityWriteError> for ApiError {
    fn from(e: SecurityWriteError) -> Self {
        match e {
            SecurityWriteError::Invalid(c) => ApiError::BadRequest(c.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, label) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR"),
        };
        (status, axum::Json(json!({ "status": label, "message": self.to_string() }))).into_response()
    }
}

fn ok(status: StatusCode, label: &str, message: String) -> Response {
    (status, axum::Json(json!({ "status": label, "message": message }))).into_response()
}

/// An on-behalf-of token can never manage security (OpenSearch security#2891);
/// the refusal is audited as MISSING_PRIVILEGES.
fn forbid_obo(state: &AppState, user: &AuthenticatedUser, request: &RequestId) -> Result<(), ApiError> {
    if user.via_obo {
        return Err(refuse(
            state,
            user,
            request,
            "an on-behalf-of token cannot mint tokens, change passwords or call the security API",
        ));
    }
    Ok(())
}

/// Minting tokens, changing one's password and managing API tokens need
/// the user's own credentials: no token may make or extend a token (a
/// read-only API token must not mint an OBO token carrying its creator's
/// every role). The refusal is audited.
fn require_own_credentials(
    state: &AppState,
    user: &AuthenticatedUser,
    request: &RequestId,
    what: &str,
) -> Result<(), ApiError> {
    forbid_obo(state, user, request)?;
    if user.api_token.is_some() {
        return Err(refuse(state, user, request, &format!("an API token cannot {what}")));
    }
    if user.source == crate::security::IdentitySource::Anonymous {
        return Err(refuse(state, user, request, &format!("anonymous users cannot {what}")));
    }
    Ok(())
}

/// For what only the internal user database can vouch for (API tokens are
/// evaluated against their creator's internal record; passwords live
/// there): a JWT user named like an internal user is not that user.
fn require_internal_user(
    state: &AppState,
    user: &AuthenticatedUser,
    request: &RequestId,
    what: &str,
) -> Result<(), ApiError> {
    if user.source != crate::security::IdentitySource::Internal {
        let reason = format!(
            "only internal users can {what}; `{}` was authenticated by {}",
            user.principal.name, user.source
        );
        return Err(refuse(state, user, request, &reason));
    }
    Ok(())
}

/// Runs `work` — a configuration change: bcrypt, compiling the snapshot, a
/// durable store commit — without stalling the request executor's other
/// tasks (on the multi-threaded runtime the server runs on).
fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Applies a configuration change off the executor (see [`blocking`]).
/// No token creates a credential: a change that sets anyone's password or
/// hash through an OBO or API token is refused (a token holding
/// `restapi:admin/internalusers` must not turn itself into a password).
fn update<R>(
    state: &AppState,
    user: &AuthenticatedUser,
    change: impl FnOnce(&mut SecurityConfig) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    blocking(|| {
        state.security.update(|config| {
            // Only a token's change is compared (the common path pays nothing).
            let before: Option<BTreeMap<String, Option<String>>> = (!user.with_own_credentials())
                .then(|| config.internal_users.iter().map(|(n, u)| (n.clone(), u.hash.clone())).collect());
            let result = change(config)?;
            if let Some(before) = before {
                let set = config.internal_users.iter().find(|(name, record)| {
                    record.hash.is_some() && before.get(*name).is_none_or(|old| *old != record.hash)
                });
                if let Some((name, _)) = set {
                    return Err(ApiError::Forbidden(format!(
                        "a token cannot set a password: `{name}`'s must be set with a user's own credentials"
                    )));
                }
            }
            Ok(result)
        })
    })
}

/// Audits a refusal as MISSING_PRIVILEGES and turns it into a 403.
fn refuse(state: &AppState, user: &AuthenticatedUser, request: &RequestId, reason: &str) -> ApiError {
    state.audit.record(Event {
        user: Some(user.principal.name.clone()),
        method: Some(request.method.clone()),
        path: Some(request.path.clone()),
        reason: Some(reason.to_owned()),
        ..Event::new(Category::MissingPrivileges, &request.id).remote(request.remote)
    });
    ApiError::Forbidden(reason.to_owned())
}

/// Checks `restapi:admin/<endpoint>`; a denial is audited.
fn authorize(
    state: &AppState,
    user: &AuthenticatedUser,
    request: &RequestId,
    resource: Resource,
) -> Result<(), ApiError> {
    authorize_action(state, user, request, &format!("restapi:admin/{}", resource.endpoint()))
}

/// The caller (never an OBO token) must hold the cluster permission
/// `action`; a refusal is audited as MISSING_PRIVILEGES.
fn authorize_action(
    state: &AppState,
    user: &AuthenticatedUser,
    request: &RequestId,
    action: &str,
) -> Result<(), ApiError> {
    forbid_obo(state, user, request)?;
    user.check_cluster(action).map_err(|denied| {
        state.audit.record(Event {
            user: Some(user.principal.name.clone()),
            action: Some(action.to_owned()),
            reason: Some(denied.to_string()),
            ..Event::new(Category::MissingPrivileges, &request.id).remote(request.remote)
        });
        ApiError::Forbidden(denied.to_string())
    })
}

/// Whole-configuration import/export needs this, as OpenSearch's securityadmin does.
const CONFIG_UPDATE: &str = "restapi:admin/config/update";
/// OBO token administration (revoke, rotate keys) needs this.
const TOKENS_ADMIN: &str = "restapi:admin/tokens";

fn audit_write(state: &AppState, user: &AuthenticatedUser, request: &RequestId, what: String) {
    audit_change(state, user, request, Category::SecurityConfigWrite, "security config write", what);
}

fn audit_change(
    state: &AppState,
    user: &AuthenticatedUser,
    request: &RequestId,
    category: Category,
    action: &str,
    what: String,
) {
    state.audit.record(Event {
        user: Some(user.principal.name.clone()),
        action: Some(action.to_owned()),
        reason: Some(what),
        ..Event::new(category, &request.id).remote(request.remote)
    });
}

async fn collection(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    Path(resource): Path<String>,
    method: Method,
    body: Bytes,
) -> Result<Response, ApiError> {
    let resource =
        Resource::parse(&resource).ok_or_else(|| ApiError::NotFound(format!("no API `{resource}`")))?;
    authorize(&state, &user, &request, resource)?;
    match method {
        Method::GET => Ok(axum::Json(resource.list(&state.security.state().config)).into_response()),
        Method::PATCH => {
            let patch: json_patch::Patch = serde_json::from_slice(&body)
                .map_err(|e| ApiError::BadRequest(format!("body is not a JSON Patch: {e}")))?;
            let names = patch_collection(&state, &user, resource, &patch)?;
            audit_write(
                &state,
                &user,
                &request,
                format!("PATCH {} {}", resource.endpoint(), names.join(",")),
            );
            Ok(ok(StatusCode::OK, "OK", "Resource updated.".into()))
        }
        _ => Err(ApiError::BadRequest(format!("{method} is not supported on {}", resource.endpoint()))),
    }
}

async fn entry(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    Path((resource, name)): Path<(String, String)>,
    method: Method,
    body: Bytes,
) -> Result<Response, ApiError> {
    let resource =
        Resource::parse(&resource).ok_or_else(|| ApiError::NotFound(format!("no API `{resource}`")))?;
    authorize(&state, &user, &request, resource)?;
    let not_found = || ApiError::NotFound(format!("Resource '{name}' not found."));
    match method {
        Method::GET => {
            let mut all = resource.list(&state.security.state().config);
            let doc = all.remove(&name).ok_or_else(not_found)?;
            Ok(axum::Json(json!({ name: doc })).into_response())
        }
        Method::PUT => {
            let doc: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::BadRequest(format!("body is not JSON: {e}")))?;
            let created = update(&state, &user, |config| {
                let existed = writable(resource, config, &name, true)?;
                resource.put(config, &name, doc)?;
                Ok::<_, ApiError>(!existed)
            })?;
            audit_write(&state, &user, &request, format!("PUT {}/{name}", resource.endpoint()));
            Ok(if created {
                ok(StatusCode::CREATED, "CREATED", format!("'{name}' created."))
            } else {
                ok(StatusCode::OK, "OK", format!("'{name}' updated."))
            })
        }
        Method::DELETE => {
            update(&state, &user, |config| {
                if !writable(resource, config, &name, false)? {
                    return Err(not_found());
                }
                if resource == Resource::InternalUsers && name == user.principal.name {
                    return Err(ApiError::Forbidden("you cannot delete yourself".into()));
                }
                resource.remove(config, &name);
                Ok(())
            })?;
            audit_write(&state, &user, &request, format!("DELETE {}/{name}", resource.endpoint()));
            Ok(ok(StatusCode::OK, "OK", format!("'{name}' deleted.")))
        }
        Method::PATCH => {
            let patch: json_patch::Patch = serde_json::from_slice(&body)
                .map_err(|e| ApiError::BadRequest(format!("body is not a JSON Patch: {e}")))?;
            update(&state, &user, |config| {
                if !writable(resource, config, &name, false)? {
                    return Err(not_found());
                }
                let mut doc = resource.list(config).remove(&name).ok_or_else(not_found)?;
                json_patch::patch(&mut doc, &patch)
                    .map_err(|e| ApiError::BadRequest(format!("patch failed: {e}")))?;
                resource.put(config, &name, doc)
            })?;
            audit_write(&state, &user, &request, format!("PATCH {}/{name}", resource.endpoint()));
            Ok(ok(StatusCode::OK, "OK", format!("'{name}' updated.")))
        }
        _ => Err(ApiError::BadRequest(format!("{method} is not supported"))),
    }
}

/// Whether `name` exists; an error if it exists and may not be changed
/// (reserved/static → 403, hidden → 404 as if absent).
fn writable(
    resource: Resource,
    config: &SecurityConfig,
    name: &str,
    creating: bool,
) -> Result<bool, ApiError> {
    match resource.flags(config, name) {
        None => {
            if creating
                && name.starts_with(crate::security::config::EXTENSION_POLICY_PREFIX)
                && resource == Resource::RolesMapping
            {
                return Err(ApiError::BadRequest("extension policies cannot be mapped to users".into()));
            }
            Ok(false)
        }
        Some((_, true)) => Err(ApiError::NotFound(format!("Resource '{name}' not found."))),
        Some((true, _)) => Err(ApiError::Forbidden(format!("Resource '{name}' is reserved."))),
        Some((false, false)) => Ok(true),
    }
}

/// Applies a JSON Patch to a whole collection; each changed entry goes
/// through the same checks as PUT/DELETE. Returns the names touched.
fn patch_collection(
    state: &AppState,
    user: &AuthenticatedUser,
    resource: Resource,
    patch: &json_patch::Patch,
) -> Result<Vec<String>, ApiError> {
    update(state, user, |config| {
        let before = resource.list(config);
        let mut doc = serde_json::to_value(&before).map_err(|e| ApiError::Internal(e.to_string()))?;
        json_patch::patch(&mut doc, patch).map_err(|e| ApiError::BadRequest(format!("patch failed: {e}")))?;
        let after: BTreeMap<String, Value> = serde_json::from_value(doc)
            .map_err(|e| ApiError::BadRequest(format!("patched collection: {e}")))?;
        let mut touched = Vec::new();
        for (name, old) in &before {
            match after.get(name) {
                None => {
                    writable(resource, config, name, false)?;
                    resource.remove(config, name);
                    touched.push(name.clone());
                }
                Some(new) if new != old => {
                    writable(resource, config, name, false)?;
                    resource.put(config, name, new.clone())?;
                    touched.push(name.clone());
                }
                Some(_) => {}
            }
        }
        for (name, new) in &after {
            if !before.contains_key(name) {
                writable(resource, config, name, true)?;
                resource.put(config, name, new.clone())?;
                touched.push(name.clone());
            }
        }
        Ok(touched)
    })
}

async fn account_get(Extension(user): Extension<AuthenticatedUser>) -> Response {
    // Only the internal database vouches for an internal record: a JWT
    // user named like an internal user does not see theirs.
    let record = (user.source == crate::security::IdentitySource::Internal)
        .then(|| user.state.config.internal_users.get(&user.principal.name))
        .flatten();
    axum::Json(json!({
        "user_name": user.principal.name,
        "is_reserved": record.is_some_and(|r| r.reserved),
        "is_hidden": record.is_some_and(|r| r.hidden),
        "is_internal_user": record.is_some(),
        "user_requested_tenant": null,
        "backend_roles": user.principal.backend_roles,
        "custom_attribute_names": record.map(|r| r.attributes.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
        "tenants": {},
        "roles": user.role_names(),
    }))
    .into_response()
}

/// `PUT /_plugins/_security/api/account` `{"current_password", "password"}`.
async fn account_put(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Change {
        current_password: String,
        password: String,
    }
    require_own_credentials(&state, &user, &request, "change a password")?;
    require_internal_user(&state, &user, &request, "change their password here")?;
    let change: Change =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let name = user.principal.name.clone();
    password::check_strength(&name, &change.password).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let hash =
        blocking(|| password::hash(&change.password)).map_err(|e| ApiError::Internal(e.to_string()))?;
    update(&state, &user, |config| {
        let record = config
            .internal_users
            .get_mut(&name)
            .ok_or_else(|| ApiError::BadRequest("only internal users have a password here".into()))?;
        if !record.hash.as_deref().is_some_and(|h| password::verify(&change.current_password, h)) {
            return Err(ApiError::BadRequest("current password is wrong".into()));
        }
        record.hash = Some(hash);
        Ok(())
    })?;
    audit_write(&state, &user, &request, format!("PUT account {name} (password change)"));
    Ok(ok(StatusCode::OK, "OK", format!("'{name}' updated.")))
}

/// `GET /_warden/security/_export` → `{"internal_users.yml": "<yaml>", ...}`.
async fn export(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
) -> Result<Response, ApiError> {
    authorize_action(&state, &user, &request, CONFIG_UPDATE)?;
    let files: BTreeMap<&str, String> =
        crate::security::config::export(&state.security.state().config).into_iter().collect();
    Ok(axum::Json(files).into_response())
}

/// `PUT /_warden/security/_import` with `{"internal_users.yml": "<yaml>", ...}`:
/// replaces the whole configuration at once. Files left out become empty.
async fn import(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::security::config::{ACTION_GROUPS, INTERNAL_USERS, ROLES, ROLES_MAPPING};
    authorize_action(&state, &user, &request, CONFIG_UPDATE)?;
    let files: BTreeMap<String, String> =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    if let Some(unknown) =
        files.keys().find(|k| ![INTERNAL_USERS, ROLES, ROLES_MAPPING, ACTION_GROUPS].contains(&k.as_str()))
    {
        return Err(ApiError::BadRequest(format!("unknown file `{unknown}`")));
    }
    let texts: BTreeMap<&str, String> = files.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let imported = SecurityConfig::from_texts("", &texts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !imported.internal_users.contains_key(&user.principal.name)
        && user.state.config.internal_users.contains_key(&user.principal.name)
    {
        return Err(ApiError::BadRequest(format!(
            "the import does not contain `{}`, the user importing it; refusing to lock you out",
            user.principal.name
        )));
    }
    update(&state, &user, |config| {
        // Service accounts belong to the loaded extensions, not to the
        // files: an import (of OpenSearch's files, say) keeps them.
        let mut imported = imported;
        for (name, account) in &config.internal_users {
            if crate::security::service_accounts::is_service_account(name) {
                imported.internal_users.entry(name.clone()).or_insert_with(|| account.clone());
            }
        }
        *config = imported;
        Ok::<_, ApiError>(())
    })?;
    audit_write(&state, &user, &request, "import of the whole configuration".into());
    Ok(ok(StatusCode::OK, "OK", "Configuration imported.".into()))
}

/// `POST /_warden/tokens/_revoke` with `{"jti", "expires_at"}`, `{"user"}` or
/// `{"extension"}`: OBO tokens stop working at once, and after a restart.
async fn revoke(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Revoke {
        jti: Option<String>,
        expires_at: Option<u64>,
        user: Option<String>,
        extension: Option<String>,
    }
    authorize_action(&state, &user, &request, TOKENS_ADMIN)?;
    let cluster = state.cluster.as_ref().ok_or_else(|| ApiError::NotFound("no token service".into()))?;
    let r: Revoke =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let tokens = cluster.tokens();
    let internal = |e: crate::security::obo::TokenError| ApiError::Internal(e.to_string());
    let what = match (r.jti, r.user, r.extension) {
        (Some(jti), None, None) => {
            // Kept at least as long as any token can live: a revocation the
            // caller dated in the past must not be pruned before it acts.
            let floor = crate::time::now_secs() + crate::security::obo::MAX_LIFETIME;
            let expires_at = r.expires_at.map_or(floor, |at| at.max(floor));
            tokens.revoke_jti(&jti, expires_at).map_err(internal)?;
            format!("token {jti}")
        }
        (None, Some(name), None) => {
            tokens.revoke_user(&name).map_err(internal)?;
            format!("tokens of user {name}")
        }
        (None, None, Some(id)) => {
            tokens.revoke_extension(&id).map_err(internal)?;
            format!("tokens for extension {id}")
        }
        _ => return Err(ApiError::BadRequest("give exactly one of `jti`, `user`, `extension`".into())),
    };
    audit_write(&state, &user, &request, format!("revoked {what}"));
    Ok(ok(StatusCode::OK, "OK", format!("revoked {what}")))
}

async fn revocations(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
) -> Result<Response, ApiError> {
    authorize_action(&state, &user, &request, TOKENS_ADMIN)?;
    let cluster = state.cluster.as_ref().ok_or_else(|| ApiError::NotFound("no token service".into()))?;
    Ok(axum::Json(cluster.tokens().revocations()).into_response())
}

/// `POST /_plugins/_security/api/generateonbehalfoftoken` with OpenSearch's
/// body `{"service", "durationSeconds", "description"}`: a token for the
/// caller, audience `service`, at most [`crate::security::obo::MAX_LIFETIME`].
async fn generate_obo(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Generate {
        service: Option<String>,
        duration_seconds: Option<u64>,
        description: Option<String>,
    }
    require_own_credentials(&state, &user, &request, "mint tokens")?;
    let cluster = state.cluster.as_ref().ok_or_else(|| ApiError::NotFound("no token service".into()))?;
    let g: Generate =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    let service = g.service.unwrap_or_else(|| "self-issued".into());
    let duration = g.duration_seconds.unwrap_or(crate::security::obo::DEFAULT_LIFETIME);
    let max = crate::security::obo::MAX_REST_LIFETIME;
    if duration == 0 || duration > max {
        return Err(ApiError::BadRequest(format!("`durationSeconds` must be 1..={max}, not {duration}")));
    }
    let holder = crate::security::obo::TokenHolder {
        user: &user.principal.name,
        source: user.source.as_str(),
        roles: &user.role_names(),
        backend_roles: &user.principal.backend_roles,
        attributes: &user.principal.attributes,
    };
    let token = cluster
        .tokens()
        .mint(
            &holder,
            &service,
            &crate::security::obo::Scope::User(g.description.unwrap_or_default()),
            duration,
        )
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    audit_write(&state, &user, &request, format!("minted an on-behalf-of token for service {service}"));
    Ok(axum::Json(json!({
        "user": user.principal.name,
        "authenticationToken": token,
        "durationSeconds": duration.to_string(),
    }))
    .into_response())
}

fn api_token_store(
    state: &AppState,
    user: &AuthenticatedUser,
    request: &RequestId,
) -> Result<Arc<crate::security::api_tokens::ApiTokens>, ApiError> {
    require_own_credentials(state, user, request, "manage API tokens")?;
    require_internal_user(state, user, request, "manage API tokens")?;
    state
        .security
        .api_tokens()
        .cloned()
        .ok_or_else(|| ApiError::NotFound("API tokens are not enabled".into()))
}

fn api_token_error(e: crate::security::api_tokens::ApiTokenError) -> ApiError {
    use crate::security::api_tokens::ApiTokenError as E;
    match e {
        E::Invalid(m) => ApiError::BadRequest(m),
        E::Duplicate(_) | E::TooMany(_) => ApiError::BadRequest(e.to_string()),
        E::NotFound(_) => ApiError::NotFound(e.to_string()),
        E::Store(s) => ApiError::Internal(s.to_string()),
    }
}

fn audit_token(state: &AppState, user: &AuthenticatedUser, request: &RequestId, what: String) {
    audit_change(state, user, request, Category::ApiTokenWrite, "api token write", what);
}

/// `POST /_plugins/_security/api/apitokens`: the secret is in this answer only.
async fn api_tokens_create(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tokens = api_token_store(&state, &user, &request)?;
    let new: crate::security::api_tokens::NewApiToken =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
    // Issued after any revocation of the user's tokens, even one made
    // earlier in this very second.
    let issued_at = match &state.cluster {
        Some(cluster) => cluster.tokens().issue_time(&user.principal.name, None),
        None => crate::time::now_secs(),
    };
    let (token, record) = tokens.create(&user.principal.name, new, issued_at).map_err(api_token_error)?;
    audit_token(&state, &user, &request, format!("created API token {}", record.name));
    Ok(axum::Json(json!({ "token": token, "name": record.name, "expires_at": record.expires_at }))
        .into_response())
}

/// `GET …/apitokens`: your tokens; security managers (`restapi:admin/apitokens`) see all.
async fn api_tokens_list(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
) -> Result<Response, ApiError> {
    let tokens = api_token_store(&state, &user, &request)?;
    let all = user.check_cluster("restapi:admin/apitokens").is_ok();
    let list = tokens.list((!all).then_some(user.principal.name.as_str())).map_err(api_token_error)?;
    Ok(axum::Json(list).into_response())
}

/// `DELETE …/apitokens/{name}` (`?creator=` for security managers): the
/// token fails on its next use.
async fn api_tokens_delete(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let tokens = api_token_store(&state, &user, &request)?;
    let creator = match query.get("creator") {
        Some(other) if *other != user.principal.name => {
            user.check_cluster("restapi:admin/apitokens").map_err(|d| ApiError::Forbidden(d.to_string()))?;
            other.clone()
        }
        _ => user.principal.name.clone(),
    };
    tokens.delete(&creator, &name).map_err(api_token_error)?;
    audit_token(&state, &user, &request, format!("deleted API token {name} of {creator}"));
    Ok(ok(StatusCode::OK, "OK", format!("'{name}' deleted.")))
}

/// `POST /_warden/tokens/_rotate_keys`: new OBO signing/encryption keys; the
/// previous ones verify until the longest token lifetime has passed.
async fn rotate_keys(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
) -> Result<Response, ApiError> {
    authorize_action(&state, &user, &request, TOKENS_ADMIN)?;
    let cluster = state.cluster.as_ref().ok_or_else(|| ApiError::NotFound("no token service".into()))?;
    let kid = cluster.tokens().rotate_keys().map_err(|e| ApiError::Internal(e.to_string()))?;
    audit_write(&state, &user, &request, format!("rotated OBO keys; new kid {kid}"));
    Ok(axum::Json(json!({ "status": "OK", "kid": kid })).into_response())
}
