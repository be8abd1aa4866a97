//! The security REST API, in the security plugin's envelope
//! (`{"status","message"}`, [`SecurityApiError`]): the configuration
//! resources ([`resources`]), the caller's account and `authinfo`
//! ([`account`]), on-behalf-of tokens ([`obo`]), API tokens
//! ([`api_tokens`]) and whole-configuration export/import ([`transfer`]).
//!
//! What they share is here: the checks every one of them makes of its
//! caller (audited as MISSING_PRIVILEGES when they refuse), running a
//! configuration change off the executor, and the SECURITY_CONFIG_WRITE /
//! API_TOKEN_WRITE records.

pub mod account;
pub mod api_tokens;
pub mod obo;
pub mod resources;
pub mod transfer;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::SecurityApiError;
use super::{AppState, Caller};
use crate::audit::Category;
use crate::error::Denial;
use crate::security::config::SecurityConfig;

/// Whole-configuration import/export needs this, as OpenSearch's securityadmin does.
const CONFIG_UPDATE: &str = "restapi:admin/config/update";
/// OBO token administration (revoke, rotate keys) needs this.
const TOKENS_ADMIN: &str = "restapi:admin/tokens";

/// What an on-behalf-of token can never do here (OpenSearch security#2891).
const OBO_NEVER: &str = "mint tokens, change passwords or call the security API";

/// A success in the security plugin's shape: `{"status": label, "message"}`.
fn ok(status: StatusCode, label: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "status": label, "message": message.into() }))).into_response()
}

/// Audits a refusal of the caller as MISSING_PRIVILEGES (with the request
/// line) and turns it into a 403.
fn refuse(caller: &Caller, denial: Denial) -> SecurityApiError {
    caller.record(caller.event(Category::MissingPrivileges).reason(denial.reason.clone()));
    denial.into()
}

/// An on-behalf-of token can never manage security; the refusal is audited.
fn forbid_obo(caller: &Caller) -> Result<(), SecurityApiError> {
    caller.forbid_obo(OBO_NEVER).map_err(|denial| refuse(caller, denial))
}

/// Minting tokens, changing one's password and managing API tokens need
/// the user's own credentials (see [`Caller::require_own_credentials`]).
/// The refusal is audited.
fn require_own_credentials(caller: &Caller, what: &str) -> Result<(), SecurityApiError> {
    forbid_obo(caller)?;
    caller.require_own_credentials(what).map_err(|denial| refuse(caller, denial))
}

/// Only the internal user database vouches for `what`; the refusal is audited.
fn require_internal_user(caller: &Caller, what: &str) -> Result<(), SecurityApiError> {
    caller.require_internal_user(what).map_err(|denial| refuse(caller, denial))
}

/// The caller (never an OBO token) must hold the cluster permission
/// `action`; a refusal is audited as MISSING_PRIVILEGES.
fn authorize(caller: &Caller, action: &str) -> Result<(), SecurityApiError> {
    forbid_obo(caller)?;
    caller.require(action).map_err(|denial| {
        caller.record(
            caller.user_event(Category::MissingPrivileges).action(action).reason(denial.reason.clone()),
        );
        denial.into()
    })
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
    caller: &Caller,
    change: impl FnOnce(&mut SecurityConfig) -> Result<R, SecurityApiError>,
) -> Result<R, SecurityApiError> {
    let user = &caller.user;
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
                    return Err(SecurityApiError::forbidden(format!(
                        "a token cannot set a password: `{name}`'s must be set with a user's own credentials"
                    )));
                }
            }
            Ok(result)
        })
    })
}

/// Records a SECURITY_CONFIG_WRITE: `what` was changed.
fn audit_write(caller: &Caller, what: String) {
    audit_change(caller, Category::SecurityConfigWrite, "security config write", what);
}

fn audit_change(caller: &Caller, category: Category, action: &str, what: String) {
    caller.record(caller.user_event(category).action(action).reason(what));
}
