//! API tokens: `POST /_plugins/_security/api/apitokens` (create: the secret
//! is in this answer only), `GET …/apitokens` (your own; all of them with
//! `restapi:admin/apitokens`), `DELETE …/apitokens/{name}` (`?creator=` for
//! security managers). Only internal users, with their own credentials,
//! manage API tokens; every change is audited as API_TOKEN_WRITE.

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
use crate::security::api_tokens::{ApiTokenRecord, ApiTokens, NewApiToken};

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

/// `POST /_plugins/_security/api/apitokens`: the secret is in this answer only.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Json<Value>, SecurityApiError> {
    let tokens = store(&state, &caller)?;
    let new: NewApiToken = body.parse(Expected::Body)?;
    // Issued after any revocation of the user's tokens, even one made
    // earlier in this very second.
    let issued_at = match state.security.tokens() {
        Some(obo) => obo.issue_time(caller.name(), None),
        None => crate::time::now_secs(),
    };
    let (token, record) = tokens.create(caller.name(), new, issued_at)?;
    audit_token(&caller, format!("created API token {}", record.name));
    Ok(Json(json!({ "token": token, "name": record.name, "expires_at": record.expires_at })))
}

/// `GET …/apitokens`: your tokens; security managers (`restapi:admin/apitokens`) see all.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<ApiTokenRecord>>, SecurityApiError> {
    let tokens = store(&state, &caller)?;
    let all = caller.holds(ADMIN);
    Ok(Json(tokens.list((!all).then_some(caller.name()))?))
}

/// `DELETE …/apitokens/{name}` (`?creator=` for security managers): the
/// token fails on its next use.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, SecurityApiError> {
    let tokens = store(&state, &caller)?;
    let creator = match query.get("creator") {
        Some(other) if other != caller.name() => {
            caller.require(ADMIN)?;
            other.clone()
        }
        _ => caller.name().to_owned(),
    };
    tokens.delete(&creator, &name)?;
    audit_token(&caller, format!("deleted API token {name} of {creator}"));
    Ok(ok(StatusCode::OK, "OK", format!("'{name}' deleted.")))
}
