//! API tokens, as OpenSearch 3.7 documents them:
//! `POST /_plugins/_security/api/apitokens` (create: `{id, token}`, the
//! secret in this answer only; `duration_seconds` defaults to the maximum;
//! no token wider than its creator), `GET …/apitokens` (your own; all of
//! them with `restapi:admin/apitokens`), `DELETE …/apitokens/{id}` (also by
//! the name of one's own token, and `{name}?creator=` for security
//! managers; another user's token by id only for them). Only internal
//! users, with their own credentials, manage API tokens; every change is
//! audited as API_TOKEN_WRITE.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{audit_change, ok, require_internal_user, require_own_credentials};
use crate::api::error::SecurityApiError;
use crate::api::json::{Expected, JsonBody};
use crate::api::{AppState, Caller};
use crate::audit::Category;
use crate::security::api_tokens::{self, ApiTokens, ListedApiToken, NewApiToken};

/// Seeing and deleting others' tokens needs this.
const ADMIN: &str = "restapi:admin/apitokens";

/// The API token store, for a caller who may manage API tokens.
fn store(state: &AppState, caller: &Caller) -> Result<Arc<ApiTokens>, SecurityApiError> {
    require_own_credentials(caller, "manage API tokens")?;
    require_internal_user(caller, "manage API tokens")?;
    state
        .security
        .api_tokens()
        .cloned()
        .ok_or_else(|| SecurityApiError::not_found("API tokens are not enabled"))
}

fn audit_token(caller: &Caller, what: String) {
    audit_change(caller, Category::ApiTokenWrite, "api token write", what);
}

/// `POST /_plugins/_security/api/apitokens`: the secret is in this answer
/// only. OpenSearch answers `{id, token}`; `name` and `expires_at` (epoch
/// milliseconds, as the list gives it) are Warden's, kept for its clients.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Json<Value>, SecurityApiError> {
    let tokens = store(&state, &caller)?;
    let new: NewApiToken = body.parse(Expected::Body)?;
    api_tokens::check_within(&new, &caller.user.state, &caller.user.subject).map_err(|e| {
        super::refuse(&caller, crate::error::Denial::new(crate::error::Gate::User, e.to_string()))
    })?;
    // Issued after any revocation of the user's tokens, even one made
    // earlier in this very second.
    let issued_at = match state.security.tokens() {
        Some(obo) => obo.issue_time(caller.name(), None),
        None => crate::time::now_secs(),
    };
    let (token, id, record) = tokens.create(caller.name(), new, issued_at)?;
    audit_token(&caller, format!("created API token {} (id {id})", record.name));
    Ok(Json(json!({
        "id": id,
        "token": token,
        "name": record.name,
        "expires_at": record.expires_at.saturating_mul(1000),
    })))
}

/// `GET …/apitokens`: your tokens; security managers (`restapi:admin/apitokens`) see all.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<ListedApiToken>>, SecurityApiError> {
    let tokens = store(&state, &caller)?;
    let all = caller.holds(ADMIN);
    Ok(Json(tokens.list((!all).then_some(caller.name()))?))
}

/// `DELETE …/apitokens/{id}`: the token fails on its next use. `{id}` may
/// also be the name of one of the caller's own tokens, and with
/// `?creator=` (security managers) the name of another user's.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, SecurityApiError> {
    let tokens = store(&state, &caller)?;
    let revoked = match query.get("creator") {
        Some(other) if other != caller.name() => {
            caller.require(ADMIN).map_err(|denial| super::refuse(&caller, denial))?;
            let hash = tokens.delete(other, &key)?;
            api_tokens::Revoked { id: api_tokens::audit_id(&hash), name: key, creator: other.clone() }
        }
        _ => match tokens.revoke(caller.name(), caller.holds(ADMIN), &key) {
            Ok(revoked) => revoked,
            Err(e @ api_tokens::ApiTokenError::NotYours(_)) => {
                return Err(super::refuse(
                    &caller,
                    crate::error::Denial::new(crate::error::Gate::User, e.to_string()),
                ));
            }
            Err(e) => return Err(e.into()),
        },
    };
    let api_tokens::Revoked { id, name, creator } = revoked;
    audit_token(&caller, format!("deleted API token {name} of {creator} (id {id})"));
    Ok(ok(StatusCode::OK, "OK", format!("Token {id} revoked successfully.")))
}
