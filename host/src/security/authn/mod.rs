//! Authentication of REST requests: which method an `Authorization` header
//! (or its absence) calls for, and the [`AuthnError`] every method reports.
//!
//! | file | method |
//! |---|---|
//! | `basic.rs` | `Basic`: internal users, bcrypt off the executor, verified-credential cache |
//! | `throttle.rs` | failed-login throttling (`auth_failure_listeners`) for Basic |
//! | `jwt.rs` | `Bearer` JWT from an external identity provider |
//! | `bearer.rs` | `Bearer` OBO token of Warden's own |
//! | `api_key.rs` | `ApiKey`: API tokens as credentials |
//! | `settings.rs` | which methods are on (`config.yml`) |
//!
//! No header: anonymous when `config.yml` allows it, else a failure.

mod api_key;
mod basic;
mod bearer;
mod jwt;
mod settings;
mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;

pub use self::basic::{BasicAuthenticator, internal_principal, parse_basic};
pub use self::bearer::token_holder;
pub use self::jwt::JwtDomain;
pub use self::settings::Authc;
pub use self::throttle::{FailureListener, ListenerKind};
use super::mapping::Principal;
use super::{AuthenticatedUser, IdentitySource, Security};
use crate::error::{ErrorKind, HasKind};

/// A `config.yml` Warden cannot use; the message names the entry.
#[derive(Debug, thiserror::Error)]
#[error("config.yml: {0}")]
pub struct AuthcError(String);

impl AuthcError {
    pub(super) fn new(message: impl Into<String>) -> AuthcError {
        AuthcError(message.into())
    }

    /// The same error, said of entry `entry`.
    pub(super) fn within(self, entry: &str) -> AuthcError {
        AuthcError(format!("{entry}: {}", self.0))
    }
}

impl HasKind for AuthcError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

/// OpenSearch's names for the anonymous user and its backend role.
pub const ANONYMOUS_USER: &str = "opendistro_security_anonymous";
pub const ANONYMOUS_BACKEND_ROLE: &str = "opendistro_security_anonymous_backendrole";

/// Why a request was not authenticated. The HTTP answer is the same 401 for
/// all of them; the audit log gets the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    #[error("no credentials")]
    Missing,
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    #[error("user `{0}` is disabled")]
    Disabled(String),
    #[error("wrong password for user `{0}`")]
    WrongPassword(String),
    #[error("user `{0}` has no password")]
    NoPassword(String),
    #[error("invalid bearer token: {0}")]
    InvalidToken(String),
    #[error("{0} authentication is not enabled")]
    NotEnabled(&'static str),
    /// Too many failed logins from this address or for this name: refused
    /// without checking the password until the block expires.
    #[error("too many failed logins ({listener}) for user `{user}`: blocked for {retry_after_secs} s")]
    Throttled { user: String, listener: String, retry_after_secs: u64 },
    /// Every password-verification permit stayed busy for the queue timeout.
    #[error("password verification is saturated; user `{0}` not checked")]
    Busy(String),
}

impl AuthnError {
    /// The user the request claimed to be, for the audit log.
    pub fn claimed_user(&self) -> Option<&str> {
        match self {
            AuthnError::UnknownUser(u)
            | AuthnError::Disabled(u)
            | AuthnError::WrongPassword(u)
            | AuthnError::NoPassword(u)
            | AuthnError::Busy(u)
            | AuthnError::Throttled { user: u, .. } => Some(u),
            AuthnError::Missing
            | AuthnError::Malformed(_)
            | AuthnError::InvalidToken(_)
            | AuthnError::NotEnabled(_) => None,
        }
    }
}

impl HasKind for AuthnError {
    /// A failed authentication is `Denied` (the REST layer answers every
    /// one with the same 401); a blocked address or name is `Busy` (429),
    /// saturated password checking `Unavailable` (503).
    fn kind(&self) -> ErrorKind {
        match self {
            AuthnError::Throttled { .. } => ErrorKind::Busy,
            AuthnError::Busy(_) => ErrorKind::Unavailable,
            AuthnError::Missing
            | AuthnError::Malformed(_)
            | AuthnError::UnknownUser(_)
            | AuthnError::Disabled(_)
            | AuthnError::WrongPassword(_)
            | AuthnError::NoPassword(_)
            | AuthnError::InvalidToken(_)
            | AuthnError::NotEnabled(_) => ErrorKind::Denied,
        }
    }
}

/// The anonymous principal, when anonymous access is on.
pub fn anonymous() -> Principal {
    Principal {
        name: ANONYMOUS_USER.into(),
        backend_roles: vec![ANONYMOUS_BACKEND_ROLE.into()],
        direct_roles: Vec::new(),
        attributes: HashMap::from([("user_name".to_owned(), ANONYMOUS_USER.to_owned())]),
    }
}

/// Whether `header` uses `scheme` (given in lower case with its space).
fn has_scheme(header: &str, scheme: &str) -> bool {
    header.len() > scheme.len() && header.get(..scheme.len()).is_some_and(|s| s.eq_ignore_ascii_case(scheme))
}

/// The token `user` was authenticated with, for the audit log: an API
/// token (by name and id) or an on-behalf-of token; `None` for the user's
/// own credentials (a password, a JWT, anonymous).
pub fn audit_credential(user: &AuthenticatedUser) -> Option<crate::audit::Credential> {
    match &user.api_token {
        Some((id, limit)) => Some(crate::security::api_tokens::audit_credential(id, &limit.name)),
        None if user.via_obo => Some(crate::audit::Credential::OboToken),
        None => None,
    }
}

impl Security {
    /// Authenticates an `Authorization` header from `remote` (async: an
    /// uncached Basic password is checked off the executor).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        remote: Option<IpAddr>,
    ) -> Result<AuthenticatedUser, AuthnError> {
        let state = self.state();
        let mut via_obo = false;
        let mut api_token = None;
        let mut source = IdentitySource::Internal;
        let principal = match authorization {
            None if self.authc.anonymous => {
                source = IdentitySource::Anonymous;
                anonymous()
            }
            None => return Err(AuthnError::Missing),
            Some(header) if has_scheme(header, "apikey ") => {
                let tokens = self.api_tokens.as_ref().ok_or(AuthnError::NotEnabled("API token"))?;
                let (principal, token) = api_key::authenticate(self, tokens, &state, header[7..].trim())?;
                api_token = Some(token);
                principal
            }
            Some(header) if has_scheme(header, "bearer ") => {
                let token = header[7..].trim();
                if let Some(tokens) = self.obo.as_ref().filter(|t| t.is_ours(token)) {
                    let (principal, holder) = bearer::authenticate(tokens, &state, token)?;
                    source = holder;
                    via_obo = true;
                    principal
                } else {
                    let jwt = self.authc.jwt.as_ref().ok_or(AuthnError::NotEnabled("bearer token"))?;
                    source = IdentitySource::Jwt;
                    jwt.authenticate(token)?
                }
            }
            Some(header) => {
                if !self.authc.basic {
                    return Err(AuthnError::NotEnabled("basic"));
                }
                let (user, password) = parse_basic(header)?;
                let record = self
                    .basic
                    .verify(&state.config, &self.authc.failure_listeners, &user, &password, remote)
                    .await?;
                internal_principal(&user, record)
            }
        };
        let subject = state.subject(&principal, remote);
        Ok(AuthenticatedUser { principal, source, subject, via_obo, api_token, state })
    }
}
