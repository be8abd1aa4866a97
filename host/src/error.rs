//! One error vocabulary for the whole host.
//!
//! Every domain error (cluster, security, scheduler, runtime) reports an
//! [`ErrorKind`] through [`HasKind`]; the HTTP status (in `api::error`) and
//! the guest-facing WIT error (in `runtime::capabilities`) are each derived
//! from the kind in exactly one place, after quickwit's `ServiceErrorCode`.
//! Nothing decides by matching an error message's text, except two
//! messages of wasmtime's own that it gives no type for (`runtime`: a full
//! pooling allocator; `runtime::extension`: the store's handle limit).
//!
//! A security gate's refusal is a typed [`Denial`]: which gate said no and
//! why, so an audit record and a response can name the gate without parsing.

use std::fmt;

/// What kind of failure an error is. The WIT `types.error` variants plus
/// `Busy` and `Timeout` (which a guest sees as `unavailable`: retrying later
/// may help).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A capability not granted, or a security gate said no.
    Denied,
    /// The thing named does not exist.
    NotFound,
    /// The request was malformed.
    Invalid,
    /// A concurrent change won, or the thing already exists.
    Conflict,
    /// Too much work at once (a pool, a queue, a throttle is full).
    Busy,
    /// The work did not finish in its time.
    Timeout,
    /// A service this needs is not available right now.
    Unavailable,
    /// Something went wrong inside the host.
    Internal,
}

impl ErrorKind {
    /// The HTTP status for this kind: the one mapping every REST surface uses.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Denied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Busy => 429,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
        }
    }
}

/// An error that knows its [`ErrorKind`].
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

/// The gates a request or a host call passes, each of which may refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gate {
    /// The OBO token: signature, lifetime, audience, revocation.
    Token,
    /// System indices (security's own, other extensions' namespaces).
    SystemIndex,
    /// The extension's granted policy (the service gate).
    Service,
    /// The user's own roles.
    User,
    /// The extension's service account (its own indices).
    ServiceAccount,
    /// An API token's own permissions.
    ApiToken,
    /// The permission to call an extension's route.
    Route,
    /// The user's consent to background work.
    Consent,
}

impl Gate {
    /// The name audit records and responses use (stable: stored in logs,
    /// and byte-identical to what the gateway audited before it was typed).
    pub const fn as_str(self) -> &'static str {
        match self {
            Gate::Token => "token",
            Gate::SystemIndex => "system-index",
            Gate::Service => "service",
            Gate::User => "user",
            Gate::ServiceAccount => "service-account",
            Gate::ApiToken => "api-token",
            Gate::Route => "route",
            Gate::Consent => "consent",
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A gate's refusal: which gate, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Denial {
    pub gate: Gate,
    pub reason: String,
}

impl Denial {
    pub fn new(gate: Gate, reason: impl Into<String>) -> Self {
        Denial { gate, reason: reason.into() }
    }
}

impl HasKind for Denial {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Denied
    }
}

/// The store's kinds are given here, not in `store`: the store is the one
/// layer that imports nothing of the crate (it knows no vocabulary above
/// redb), so this vocabulary reaches down to it instead.
impl HasKind for crate::store::StoreError {
    fn kind(&self) -> ErrorKind {
        use crate::store::StoreError;
        match self {
            // A compare-and-set lost, or a create found the document.
            StoreError::Conflict { .. } => ErrorKind::Conflict,
            // The database file cannot be opened (locked by another
            // process, unreadable): nothing can be served from it.
            StoreError::Open { .. } => ErrorKind::Unavailable,
            StoreError::Io(_) | StoreError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_status() {
        use std::collections::BTreeSet;
        let kinds = [
            ErrorKind::Denied,
            ErrorKind::NotFound,
            ErrorKind::Invalid,
            ErrorKind::Conflict,
            ErrorKind::Busy,
            ErrorKind::Timeout,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ];
        let statuses: BTreeSet<u16> = kinds.iter().map(|k| k.http_status()).collect();
        assert_eq!(statuses.len(), kinds.len());
        assert_eq!(ErrorKind::Denied.http_status(), 403);
        assert_eq!(ErrorKind::Busy.http_status(), 429);
    }

    #[test]
    fn a_denial_names_its_gate() {
        let denial = Denial::new(Gate::User, "no permissions for [indices:data/read/get]");
        assert_eq!(denial.gate.as_str(), "user");
        assert_eq!(denial.to_string(), "no permissions for [indices:data/read/get]");
        assert_eq!(denial.kind(), ErrorKind::Denied);
    }
}
