//! On-behalf-of tokens over REST: `POST /_plugins/_security/api/generateonbehalfoftoken`
//! and its newer path `POST /_plugins/_security/api/obo/token` (the same
//! handler: a token for the caller, with their own credentials only), and their
//! administration under `restapi:admin/tokens`: `POST /_warden/tokens/_revoke`,
//! `GET /_warden/tokens/_revocations`, `POST /_warden/tokens/_rotate_keys`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{TOKENS_ADMIN, audit_write, authorize, ok, require_own_credentials};
use crate::api::error::SecurityApiError;
use crate::api::json::{Expected, JsonBody};
use crate::api::{AppState, Caller};
use crate::security::obo::{Revocations, TokenService};

/// The token service, when this host has one.
fn tokens(state: &AppState) -> Result<&TokenService, SecurityApiError> {
    state.security.tokens().map(AsRef::as_ref).ok_or_else(|| SecurityApiError::not_found("no token service"))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    jti: Option<String>,
    expires_at: Option<u64>,
    user: Option<String>,
    extension: Option<String>,
}

/// `POST /_warden/tokens/_revoke` with `{"jti", "expires_at"}`, `{"user"}` or
/// `{"extension"}`: OBO tokens stop working at once, and after a restart.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, SecurityApiError> {
    authorize(&caller, TOKENS_ADMIN)?;
    let tokens = tokens(&state)?;
    let r: Revoke = body.parse(Expected::Body)?;
    let what = match (r.jti, r.user, r.extension) {
        (Some(jti), None, None) => {
            // Kept at least as long as any token can live: a revocation the
            // caller dated in the past must not be pruned before it acts.
            let floor = crate::time::now_secs() + crate::security::obo::MAX_LIFETIME;
            let expires_at = r.expires_at.map_or(floor, |at| at.max(floor));
            tokens.revoke_jti(&jti, expires_at)?;
            format!("token {jti}")
        }
        (None, Some(name), None) => {
            tokens.revoke_user(&name)?;
            format!("tokens of user {name}")
        }
        (None, None, Some(id)) => {
            tokens.revoke_extension(&id)?;
            format!("tokens for extension {id}")
        }
        _ => return Err(SecurityApiError::bad_request("give exactly one of `jti`, `user`, `extension`")),
    };
    audit_write(&caller, format!("revoked {what}"));
    Ok(ok(StatusCode::OK, "OK", format!("revoked {what}")))
}

/// `GET /_warden/tokens/_revocations`.
pub async fn revocations(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Revocations>, SecurityApiError> {
    authorize(&caller, TOKENS_ADMIN)?;
    Ok(Json(tokens(&state)?.revocations()))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Generate {
    service: Option<String>,
    duration_seconds: Option<Seconds>,
    description: Option<String>,
    /// OpenSearch's switch for encrypting the roles in the token: Warden
    /// always seals them, so either value is taken and changes nothing.
    #[allow(dead_code)]
    role_security_mode: Option<bool>,
}

/// `durationSeconds` as OpenSearch takes it: a number or a string of one
/// (its documentation's example sends `"300"`).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn value(self) -> Result<u64, SecurityApiError> {
        match self {
            Seconds::Number(n) => Ok(n),
            Seconds::Text(text) => text
                .trim()
                .parse()
                .map_err(|_| SecurityApiError::bad_request("durationSeconds must be an integer.")),
        }
    }
}

/// `POST /_plugins/_security/api/generateonbehalfoftoken` (and
/// `…/api/obo/token`) with OpenSearch's body `{"service", "durationSeconds",
/// "description", "roleSecurityMode"}`: a token for the
/// caller, audience `service`, at most [`crate::security::obo::MAX_LIFETIME`].
pub async fn generate(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Json<Value>, SecurityApiError> {
    require_own_credentials(&caller, "mint tokens")?;
    let tokens = tokens(&state)?;
    let g: Generate = body.parse(Expected::Body)?;
    let service = g.service.unwrap_or_else(|| "self-issued".into());
    let duration = match g.duration_seconds {
        Some(seconds) => seconds.value()?,
        None => crate::security::obo::DEFAULT_LIFETIME,
    };
    let max = crate::security::obo::MAX_REST_LIFETIME;
    if duration == 0 || duration > max {
        return Err(SecurityApiError::bad_request(format!(
            "`durationSeconds` must be 1..={max}, not {duration}"
        )));
    }
    let user = &caller.user;
    let roles = user.role_names();
    let holder = user.token_holder(&roles);
    // Any failure to mint is answered 400, as it always was.
    let token = tokens
        .mint(
            &holder,
            &service,
            &crate::security::obo::Scope::User(g.description.unwrap_or_default()),
            duration,
        )
        .map_err(|e| SecurityApiError::bad_request(e.to_string()))?;
    audit_write(&caller, format!("minted an on-behalf-of token for service {service}"));
    Ok(Json(json!({
        "user": user.principal.name,
        "authenticationToken": token,
        "durationSeconds": duration.to_string(),
    })))
}

/// `POST /_warden/tokens/_rotate_keys`: new OBO signing/encryption keys; the
/// previous ones verify until the longest token lifetime has passed.
pub async fn rotate_keys(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, SecurityApiError> {
    authorize(&caller, TOKENS_ADMIN)?;
    let kid = tokens(&state)?.rotate_keys()?;
    audit_write(&caller, format!("rotated OBO keys; new kid {kid}"));
    Ok(Json(json!({ "status": "OK", "kid": kid })))
}
