//! The whole configuration at once, as OpenSearch's security files:
//! `GET /_warden/security/_export` and `PUT /_warden/security/_import`
//! (both need `restapi:admin/config/update`, as securityadmin does).
//!
//! An import replaces the configuration wholesale, except for what is not
//! the files' to say: the extensions' service accounts, and the roles the
//! extension lifecycle owns (an installed extension's policy role and
//! predefined roles): those come through unchanged, and an import that
//! defines one otherwise is refused (it would widen an extension's service
//! gate past what the operator granted it).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{CONFIG_UPDATE, audit_write, authorize, ok, update};
use crate::api::error::SecurityApiError;
use crate::api::json::{Expected, JsonBody};
use crate::api::{AppState, Caller};
use crate::error::HasKind;
use crate::extensions::installed::{InstallState, Installed};
use crate::manifest::Manifest;
use crate::security::config::SecurityConfig;

/// `GET /_warden/security/_export` → `{"internal_users.yml": "<yaml>", ...}`.
pub async fn export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<BTreeMap<&'static str, String>>, SecurityApiError> {
    authorize(&caller, CONFIG_UPDATE)?;
    Ok(Json(crate::security::config::export(&state.security.state().config).into_iter().collect()))
}

/// `PUT /_warden/security/_import` with `{"internal_users.yml": "<yaml>", ...}`:
/// replaces the whole configuration at once. Files left out become empty.
pub async fn import(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, SecurityApiError> {
    use crate::security::config::{ACTION_GROUPS, INTERNAL_USERS, ROLES, ROLES_MAPPING};
    authorize(&caller, CONFIG_UPDATE)?;
    let files: BTreeMap<String, String> = body.parse(Expected::Body)?;
    if let Some(unknown) =
        files.keys().find(|k| ![INTERNAL_USERS, ROLES, ROLES_MAPPING, ACTION_GROUPS].contains(&k.as_str()))
    {
        return Err(SecurityApiError::bad_request(format!("unknown file `{unknown}`")));
    }
    let texts: BTreeMap<&str, String> = files.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let imported =
        SecurityConfig::from_texts("", &texts).map_err(|e| SecurityApiError::bad_request(e.to_string()))?;
    let name = &caller.user.principal.name;
    if !imported.internal_users.contains_key(name)
        && caller.user.state.config.internal_users.contains_key(name)
    {
        return Err(SecurityApiError::bad_request(format!(
            "the import does not contain `{name}`, the user importing it; refusing to lock you out"
        )));
    }
    update(&state, &caller, |config| {
        // Service accounts belong to the loaded extensions, not to the
        // files: an import (of OpenSearch's files, say) keeps them.
        let mut imported = imported;
        // The lifecycle's roles, read under the configuration's write lock:
        // an approval writes its roles under the same lock before it
        // records the extension approved, and a pending extension's policy
        // role is counted already, so none slips through between the two.
        if let Some(lifecycle) = &state.lifecycle {
            let records = lifecycle.list().map_err(|e| SecurityApiError::new(e.kind(), e.to_string()))?;
            let owned = owned_roles(&records);
            crate::extensions::policy::keep_owned_roles(&mut imported, config, &owned)
                .map_err(|e| SecurityApiError::new(e.kind(), e.to_string()))?;
        }
        for (name, account) in &config.internal_users {
            if crate::security::service_accounts::is_service_account(name) {
                imported.internal_users.entry(name.clone()).or_insert_with(|| account.clone());
            }
        }
        *config = imported;
        Ok(())
    })?;
    audit_write(&caller, "import of the whole configuration".into());
    Ok(ok(StatusCode::OK, "OK", "Configuration imported."))
}

/// The roles the lifecycle owns ([`crate::extensions::policy::owned_roles`])
/// of the installed `records`: an approved one's manifest gives its
/// predefined roles (validated at install; should a later parser refuse
/// it, its policy role is still kept).
fn owned_roles(records: &[Installed]) -> BTreeMap<String, String> {
    let parsed: Vec<(&str, Option<Manifest>)> = records
        .iter()
        .map(|record| {
            let approved = (record.state == InstallState::Approved).then(|| {
                let dir = std::path::Path::new("installed").join(&record.id);
                Manifest::parse(&record.manifest, &dir, &dir.join(crate::manifest::MANIFEST_FILE))
                    .inspect_err(|e| {
                        tracing::warn!(extension = record.id, "installed manifest unreadable: {e}")
                    })
                    .ok()
            });
            (record.id.as_str(), approved.flatten())
        })
        .collect();
    crate::extensions::policy::owned_roles(parsed.iter().map(|(id, manifest)| (*id, manifest.as_ref())))
}
