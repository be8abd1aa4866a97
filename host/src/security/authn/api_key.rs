//! API tokens presented as credentials (`Authorization: ApiKey <token>`):
//! the token must exist, be unexpired, have been created by an internal
//! user who still exists, is enabled and has not changed their credentials
//! since. The request then runs as the creator, limited by the token's own
//! permissions ([`crate::security::api_tokens::TokenLimit`]).

use std::sync::Arc;

use super::AuthnError;
use super::basic::internal_principal;
use crate::security::api_tokens::{ApiTokens, TokenLimit};
use crate::security::mapping::Principal;
use crate::security::{IdentitySource, Security, SecurityState};
use crate::time::now_secs;

/// The creator's principal, and the token's id and limits.
pub(super) fn authenticate(
    security: &Security,
    tokens: &ApiTokens,
    state: &SecurityState,
    token: &str,
) -> Result<(Principal, (String, Arc<TokenLimit>)), AuthnError> {
    use crate::metrics::{TokenEvent, TokenKind};
    let result = check(security, tokens, state, token);
    let event = if result.is_ok() { TokenEvent::Verified } else { TokenEvent::Rejected };
    crate::metrics::token(TokenKind::ApiToken, event);
    result
}

fn check(
    security: &Security,
    tokens: &ApiTokens,
    state: &SecurityState,
    token: &str,
) -> Result<(Principal, (String, Arc<TokenLimit>)), AuthnError> {
    let (id, record) = tokens
        .lookup(token)
        .map_err(|e| AuthnError::InvalidToken(e.to_string()))?
        .ok_or_else(|| AuthnError::InvalidToken("unknown or deleted API token".into()))?;
    if now_secs() > record.expires_at {
        return Err(AuthnError::InvalidToken(format!("API token `{}` has expired", record.name)));
    }
    // Only internal users create API tokens; a record that does
    // not say so predates identity sources and cannot be told
    // apart from one a JWT user of the same name created.
    if record.creator_source.as_deref() != Some(IdentitySource::Internal.as_str()) {
        return Err(AuthnError::InvalidToken(format!(
            "API token `{}` of `{}` does not record who vouched for its creator; create it again",
            record.name, record.creator
        )));
    }
    let creator = state.config.internal_users.get(&record.creator).ok_or_else(|| {
        AuthnError::InvalidToken(format!(
            "the creator `{}` of API token `{}` no longer exists",
            record.creator, record.name
        ))
    })?;
    if creator.disabled {
        return Err(AuthnError::Disabled(record.creator.clone()));
    }
    if security.user_revoked_before(&record.creator).is_some_and(|t| record.created_at <= t) {
        return Err(AuthnError::InvalidToken(format!(
            "API token `{}` was issued before the credentials of `{}` changed",
            record.name, record.creator
        )));
    }
    let limit = tokens.limit(&id, &record, &state.config, state.generation);
    Ok((internal_principal(&record.creator, creator), (id, limit)))
}
