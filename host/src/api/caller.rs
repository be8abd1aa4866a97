//! Who is calling: the [`Caller`] extractor every authenticated handler
//! takes. It holds the user the authentication middleware (`authenticate`)
//! vouched for and the request's [`RequestMeta`], answers the questions
//! handlers ask of a caller (`require`, `forbid_obo`, own credentials,
//! internal user) with a typed [`Denial`], and starts the caller's audit
//! events ([`Caller::event`]) with who, from where and what request.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::AppState;
use super::error::OpenSearchError;
use crate::audit::{AuditLog, Category, Event};
use crate::error::{Denial, Gate};
use crate::security::{AuthenticatedUser, IdentitySource};

/// One request's id (in the audit log and the `x-request-id` header),
/// client address, method and path.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub id: String,
    pub remote: Option<IpAddr>,
    pub method: String,
    pub path: String,
}

/// The authenticated caller of one request.
#[derive(Debug)]
pub struct Caller {
    pub user: AuthenticatedUser,
    pub meta: RequestMeta,
    audit: Arc<AuditLog>,
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = OpenSearchError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        // Both are put there by the authentication middleware, which every
        // route passes; a route outside it would have no caller.
        let user = parts.extensions.remove::<AuthenticatedUser>();
        let meta = parts.extensions.remove::<RequestMeta>();
        match (user, meta) {
            (Some(user), Some(meta)) => Ok(Caller { user, meta, audit: state.audit.clone() }),
            _ => Err(OpenSearchError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the request was not authenticated",
            )),
        }
    }
}

impl Caller {
    /// The user's name.
    pub fn name(&self) -> &str {
        &self.user.principal.name
    }

    /// The caller must hold the cluster permission `permission` (an API
    /// token's own limits included). Not audited: callers that audit the
    /// refusal say so.
    pub fn require(&self, permission: &str) -> Result<(), Denial> {
        self.user.check_cluster(permission).map_err(|denied| Denial::new(Gate::User, denied.to_string()))
    }

    /// Whether the caller holds `permission` (for what is shown, not refused).
    pub fn holds(&self, permission: &str) -> bool {
        self.require(permission).is_ok()
    }

    /// Refuses a caller holding an on-behalf-of token: "an on-behalf-of
    /// token cannot `what`".
    pub fn forbid_obo(&self, what: &str) -> Result<(), Denial> {
        if self.user.via_obo {
            return Err(Denial::new(Gate::Token, format!("an on-behalf-of token cannot {what}")));
        }
        Ok(())
    }

    /// What needs the user's own credentials: no token may make or extend
    /// a token (a read-only API token must not mint an OBO token carrying
    /// its creator's every role), and nobody anonymous acts as a user.
    pub fn require_own_credentials(&self, what: &str) -> Result<(), Denial> {
        self.forbid_obo(what)?;
        if self.user.api_token.is_some() {
            return Err(Denial::new(Gate::Token, format!("an API token cannot {what}")));
        }
        if self.user.source == IdentitySource::Anonymous {
            return Err(Denial::new(Gate::User, format!("anonymous users cannot {what}")));
        }
        Ok(())
    }

    /// For what only the internal user database can vouch for (API tokens
    /// are evaluated against their creator's internal record; passwords
    /// live there): a JWT user named like an internal user is not that user.
    pub fn require_internal_user(&self, what: &str) -> Result<(), Denial> {
        if self.user.source != IdentitySource::Internal {
            return Err(Denial::new(
                Gate::User,
                format!(
                    "only internal users can {what}; `{}` was authenticated by {}",
                    self.user.principal.name, self.user.source
                ),
            ));
        }
        Ok(())
    }

    /// An audit event of this request: the user, the client address, the
    /// method and the path, ready for what the handler adds.
    pub fn event(&self, category: Category) -> Event {
        Event {
            method: Some(self.meta.method.clone()),
            path: Some(self.meta.path.clone()),
            ..self.user_event(category)
        }
    }

    /// An audit event naming the user, the token that stood in for them if
    /// one did, and the client address, but not the request line (as
    /// security-configuration writes are recorded).
    pub fn user_event(&self, category: Category) -> Event {
        Event::new(category, &self.meta.id)
            .remote(self.meta.remote)
            .user(&self.user.principal.name)
            .user_source(self.user.source.as_str())
            .credential(crate::security::authn::audit_credential(&self.user))
    }

    /// Whether `category` is being recorded (to skip building an event).
    pub fn audits(&self, category: Category) -> bool {
        self.audit.enabled(category)
    }

    /// Records `event` in the audit log.
    pub fn record(&self, event: Event) {
        self.audit.record(event);
    }
}
