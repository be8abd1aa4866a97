//! Warden's own OBO tokens presented as `Authorization: Bearer`: verified
//! by the token service (every check, the audience taken from the token),
//! then the holder checked against the configuration now. The caller gets
//! the roles the user had when the token was minted.

use super::AuthnError;
use crate::error::{Denial, Gate};
use crate::security::config::SecurityConfig;
use crate::security::mapping::Principal;
use crate::security::obo::{OboClaims, TokenService};
use crate::security::{IdentitySource, SecurityState};

/// The principal a presented OBO token speaks for, and who vouched for it.
pub(super) fn authenticate(
    tokens: &TokenService,
    state: &SecurityState,
    token: &str,
) -> Result<(Principal, IdentitySource), AuthnError> {
    let claims = tokens.verify_presented(token).map_err(|e| AuthnError::InvalidToken(e.to_string()))?;
    let source = token_holder(&state.config, &claims).map_err(|d| AuthnError::InvalidToken(d.reason))?;
    let mut attributes = claims.attributes;
    attributes.insert("user_name".to_owned(), claims.user.clone());
    let principal = Principal {
        attributes,
        name: claims.user,
        backend_roles: claims.backend_roles,
        // The roles the user had when the token was minted.
        direct_roles: claims.roles,
    };
    Ok((principal, source))
}

/// Who an OBO token speaks for, checked against the configuration now: an
/// internal user must still exist and be enabled (a token dies with its
/// user); an external user cannot be asked again and is taken as minted.
/// A refusal is the token gate's.
pub fn token_holder(config: &SecurityConfig, claims: &OboClaims) -> Result<IdentitySource, Denial> {
    let refuse = |reason: String| Denial::new(Gate::Token, reason);
    let source: IdentitySource = claims
        .source
        .parse()
        .map_err(|_| refuse(format!("token names an unknown identity source `{}`", claims.source)))?;
    if source == IdentitySource::Internal {
        match config.internal_users.get(&claims.user) {
            None => return Err(refuse(format!("the token's user `{}` no longer exists", claims.user))),
            Some(record) if record.disabled => {
                return Err(refuse(format!("the token's user `{}` is disabled", claims.user)));
            }
            Some(_) => {}
        }
    }
    Ok(source)
}
