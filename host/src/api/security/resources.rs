//! The four configuration resources on OpenSearch's paths:
//! `/_plugins/_security/api/{internalusers,roles,rolesmapping,actiongroups}[/{name}]`
//! (GET, PUT, DELETE, PATCH with JSON Patch).
//!
//! Each endpoint needs the cluster permission `restapi:admin/<endpoint>`
//! (held by `security_manager` and `all_access`). Reserved and static
//! entries cannot be changed; hidden ones are not shown. Every change
//! applies atomically (see [`crate::security::Security::update`]) and is
//! audited as SECURITY_CONFIG_WRITE.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{audit_write, authorize, ok, update};
use crate::api::error::SecurityApiError;
use crate::api::json::{Expected, JsonBody};
use crate::api::{AppState, Caller};
use crate::security::config::{ActionGroup, InternalUser, Role, RoleMapping, SecurityConfig};
use crate::security::password;

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
    fn put(self, config: &mut SecurityConfig, name: &str, mut doc: Value) -> Result<(), SecurityApiError> {
        let bad = |e: serde_json::Error| SecurityApiError::bad_request(format!("invalid `{name}`: {e}"));
        let Some(obj) = doc.as_object_mut() else {
            return Err(SecurityApiError::bad_request(format!("`{name}` must be a JSON object")));
        };
        for flag in ["reserved", "static", "hidden"] {
            if obj.get(flag).and_then(Value::as_bool) == Some(true) {
                return Err(SecurityApiError::bad_request(format!("`{flag}` cannot be set through the API")));
            }
        }
        match self {
            Resource::InternalUsers => {
                if crate::security::service_accounts::is_service_account(name) {
                    if !config.internal_users.contains_key(name) {
                        return Err(SecurityApiError::bad_request(format!(
                            "`{name}`: service accounts are created by Warden when it loads an extension"
                        )));
                    }
                    if obj.contains_key("password") {
                        return Err(SecurityApiError::bad_request(format!(
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
                        password::check_strength(name, &p)?;
                        user.hash = Some(password::hash(&p)?);
                    }
                    Some(_) => return Err(SecurityApiError::bad_request("`password` must be a string")),
                    None if crate::security::service_accounts::is_service_account(name) => {}
                    None if user.hash.is_none() => {
                        user.hash = config.internal_users.get(name).and_then(|u| u.hash.clone());
                        if user.hash.is_none() {
                            return Err(SecurityApiError::bad_request(format!(
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
                    return Err(SecurityApiError::bad_request(format!("role `{name}` does not exist")));
                }
                let mapping: RoleMapping = serde_json::from_value(doc).map_err(bad)?;
                config.roles_mapping.insert(name.to_owned(), mapping);
            }
            Resource::ActionGroups => {
                let group: ActionGroup = serde_json::from_value(doc).map_err(bad)?;
                if group.allowed_actions.iter().any(|a| a == name) {
                    return Err(SecurityApiError::bad_request(format!(
                        "action group `{name}` cannot contain itself"
                    )));
                }
                config.action_groups.insert(name.to_owned(), group);
            }
        }
        Ok(())
    }
}

pub async fn collection(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(resource): Path<String>,
    method: Method,
    body: JsonBody,
) -> Result<Response, SecurityApiError> {
    let resource = Resource::parse(&resource)
        .ok_or_else(|| SecurityApiError::not_found(format!("no API `{resource}`")))?;
    authorize(&caller, &format!("restapi:admin/{}", resource.endpoint()))?;
    match method {
        Method::GET => Ok(axum::Json(resource.list(&state.security.state().config)).into_response()),
        Method::PATCH => {
            let patch: json_patch::Patch = body.parse(Expected::JsonPatch)?;
            let names = patch_collection(&state, &caller, resource, &patch)?;
            audit_write(&caller, format!("PATCH {} {}", resource.endpoint(), names.join(",")));
            Ok(ok(StatusCode::OK, "OK", "Resource updated."))
        }
        _ => Err(SecurityApiError::bad_request(format!(
            "{method} is not supported on {}",
            resource.endpoint()
        ))),
    }
}

pub async fn entry(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((resource, name)): Path<(String, String)>,
    method: Method,
    body: JsonBody,
) -> Result<Response, SecurityApiError> {
    let resource = Resource::parse(&resource)
        .ok_or_else(|| SecurityApiError::not_found(format!("no API `{resource}`")))?;
    authorize(&caller, &format!("restapi:admin/{}", resource.endpoint()))?;
    let not_found = || SecurityApiError::not_found(format!("Resource '{name}' not found."));
    match method {
        Method::GET => {
            let mut all = resource.list(&state.security.state().config);
            let doc = all.remove(&name).ok_or_else(not_found)?;
            Ok(axum::Json(json!({ name: doc })).into_response())
        }
        Method::PUT => {
            let doc: Value = body.parse(Expected::Json)?;
            let created = update(&state, &caller, |config| {
                let existed = writable(resource, config, &name, true)?;
                resource.put(config, &name, doc)?;
                Ok::<_, SecurityApiError>(!existed)
            })?;
            audit_write(&caller, format!("PUT {}/{name}", resource.endpoint()));
            Ok(if created {
                ok(StatusCode::CREATED, "CREATED", format!("'{name}' created."))
            } else {
                ok(StatusCode::OK, "OK", format!("'{name}' updated."))
            })
        }
        Method::DELETE => {
            update(&state, &caller, |config| {
                if !writable(resource, config, &name, false)? {
                    return Err(not_found());
                }
                if resource == Resource::InternalUsers && name == caller.user.principal.name {
                    return Err(SecurityApiError::forbidden("you cannot delete yourself"));
                }
                resource.remove(config, &name);
                Ok(())
            })?;
            audit_write(&caller, format!("DELETE {}/{name}", resource.endpoint()));
            Ok(ok(StatusCode::OK, "OK", format!("'{name}' deleted.")))
        }
        Method::PATCH => {
            let patch: json_patch::Patch = body.parse(Expected::JsonPatch)?;
            update(&state, &caller, |config| {
                if !writable(resource, config, &name, false)? {
                    return Err(not_found());
                }
                let mut doc = resource.list(config).remove(&name).ok_or_else(not_found)?;
                json_patch::patch(&mut doc, &patch)
                    .map_err(|e| SecurityApiError::bad_request(format!("patch failed: {e}")))?;
                resource.put(config, &name, doc)
            })?;
            audit_write(&caller, format!("PATCH {}/{name}", resource.endpoint()));
            Ok(ok(StatusCode::OK, "OK", format!("'{name}' updated.")))
        }
        _ => Err(SecurityApiError::bad_request(format!("{method} is not supported"))),
    }
}

/// Whether `name` exists; an error if it exists and may not be changed
/// (reserved/static → 403, hidden → 404 as if absent).
fn writable(
    resource: Resource,
    config: &SecurityConfig,
    name: &str,
    creating: bool,
) -> Result<bool, SecurityApiError> {
    match resource.flags(config, name) {
        None => {
            if creating
                && name.starts_with(crate::security::config::EXTENSION_POLICY_PREFIX)
                && resource == Resource::RolesMapping
            {
                return Err(SecurityApiError::bad_request("extension policies cannot be mapped to users"));
            }
            Ok(false)
        }
        Some((_, true)) => Err(SecurityApiError::not_found(format!("Resource '{name}' not found."))),
        Some((true, _)) => Err(SecurityApiError::forbidden(format!("Resource '{name}' is reserved."))),
        Some((false, false)) => Ok(true),
    }
}

/// Applies a JSON Patch to a whole collection; each changed entry goes
/// through the same checks as PUT/DELETE. Returns the names touched.
fn patch_collection(
    state: &AppState,
    caller: &Caller,
    resource: Resource,
    patch: &json_patch::Patch,
) -> Result<Vec<String>, SecurityApiError> {
    update(state, caller, |config| {
        let before = resource.list(config);
        let mut doc = serde_json::to_value(&before).map_err(|e| SecurityApiError::internal(e.to_string()))?;
        json_patch::patch(&mut doc, patch)
            .map_err(|e| SecurityApiError::bad_request(format!("patch failed: {e}")))?;
        let after: BTreeMap<String, Value> = serde_json::from_value(doc)
            .map_err(|e| SecurityApiError::bad_request(format!("patched collection: {e}")))?;
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
