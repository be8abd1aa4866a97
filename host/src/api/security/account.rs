//! Who the caller is: `GET|POST /_plugins/_security/authinfo`,
//! `GET|POST /_plugins/_security/whoami` and
//! `GET /_plugins/_security/api/account`, as OpenSearch answers them; and
//! `PUT /_plugins/_security/api/account`, an internal user changing their
//! own password.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{audit_write, blocking, ok, require_internal_user, require_own_credentials, update};
use crate::api::error::SecurityApiError;
use crate::api::json::{Expected, JsonBody};
use crate::api::{AppState, Caller};
use crate::security::{IdentitySource, password};

/// `GET|POST /_plugins/_security/authinfo`: who the caller is, as
/// OpenSearch answers it (`remote_address` is the address alone: Warden
/// does not keep the client's port).
pub async fn authinfo(caller: Caller) -> Json<Value> {
    let user = &caller.user;
    let name = &user.principal.name;
    let backend_roles = &user.principal.backend_roles;
    // Java's list printing, as OpenSearch's `User.toString` gives it.
    let listed = backend_roles.join(", ");
    Json(json!({
        "user": format!("User [name={name}, backend_roles=[{listed}], requestedTenant=null]"),
        "user_name": name,
        "user_requested_tenant": null,
        "remote_address": caller.meta.remote.map(|ip| ip.to_string()),
        "backend_roles": backend_roles,
        "custom_attribute_names": user.principal.attributes.keys().filter(|k| *k != "user_name").collect::<Vec<_>>(),
        "roles": user.role_names(),
        "tenants": {},
        "principal": null,
        "peer_certificates": "0",
        "sso_logout_url": null,
    }))
}

/// `GET|POST /_plugins/_security/whoami`, as OpenSearch answers it: Warden
/// has no TLS client certificates, so no distinguished name, never the
/// admin certificate, never a node's.
pub async fn whoami(_caller: Caller) -> Json<Value> {
    Json(json!({ "dn": null, "is_admin": false, "is_node_certificate_request": false }))
}

/// `GET /_plugins/_security/api/account`.
pub async fn show(caller: Caller) -> Json<Value> {
    let user = &caller.user;
    // Only the internal database vouches for an internal record: a JWT
    // user named like an internal user does not see theirs.
    let record = (user.source == IdentitySource::Internal)
        .then(|| user.state.config.internal_users.get(&user.principal.name))
        .flatten();
    Json(json!({
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
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    current_password: String,
    password: String,
}

/// `PUT /_plugins/_security/api/account` `{"current_password", "password"}`.
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, SecurityApiError> {
    require_own_credentials(&caller, "change a password")?;
    require_internal_user(&caller, "change their password here")?;
    let change: Change = body.parse(Expected::Body)?;
    let name = caller.user.principal.name.clone();
    password::check_strength(&name, &change.password)?;
    let hash = blocking(|| password::hash(&change.password))?;
    update(&state, &caller, |config| {
        let record = config
            .internal_users
            .get_mut(&name)
            .ok_or_else(|| SecurityApiError::bad_request("only internal users have a password here"))?;
        if !record.hash.as_deref().is_some_and(|h| password::verify(&change.current_password, h)) {
            return Err(SecurityApiError::bad_request("current password is wrong"));
        }
        record.hash = Some(hash);
        Ok(())
    })?;
    audit_write(&caller, format!("PUT account {name} (password change)"));
    Ok(ok(StatusCode::OK, "OK", format!("'{name}' updated.")))
}
