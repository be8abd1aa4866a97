//! The two error envelopes of the REST layer, and every domain error's
//! conversion into them, in this one file:
//!
//! - [`OpenSearchError`], `{"error":{"type":..,"reason":..},"status":..}`,
//!   OpenSearch's own shape (extension routes, the document API, health,
//!   audit, jobs);
//! - [`SecurityApiError`], `{"status":"BAD_REQUEST","message":..}`, the
//!   security plugin's shape (`/_plugins/_security/api/...`, `/_warden/tokens`,
//!   `/_warden/security`), kept apart on purpose: OpenSearch's clients read it.
//!
//! A status comes from [`ErrorKind::http_status`]: every domain error
//! reports its kind. The few mappings below that name a status of their own
//! are the answers OpenSearch's clients already know and that differ from
//! the kind's: a busy extension is 503 with `Retry-After` (not 429), a path
//! no API serves is 404 `no_handler_found` (a guest sees `invalid`), the job
//! limit is 400 (a guest is `denied`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::json::InvalidBody;
use crate::audit::AuditError;
use crate::cluster::gateway::GateError;
use crate::error::{Denial, ErrorKind, HasKind};
use crate::runtime::InvokeError;
use crate::scheduler::jobs::JobError;
use crate::security::SecurityWriteError;
use crate::security::api_tokens::ApiTokenError;
use crate::security::obo::TokenError;
use crate::security::password::PasswordError;

/// The status of a kind.
fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error in OpenSearch's shape: `{"error":{"type":kind,"reason":reason},"status":code}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {reason}")]
pub struct OpenSearchError {
    pub status: StatusCode,
    /// OpenSearch's `type` (`security_exception`, `job_exception`, …).
    pub kind: &'static str,
    pub reason: String,
    /// Seconds for a `Retry-After` header, when waiting helps.
    pub retry_after: Option<u64>,
}

impl OpenSearchError {
    pub fn new(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> Self {
        OpenSearchError { status, kind, reason: reason.into(), retry_after: None }
    }

    /// Answers with `Retry-After: secs` (at least 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// A 403 `security_exception`.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        OpenSearchError::new(StatusCode::FORBIDDEN, "security_exception", reason)
    }
}

impl IntoResponse for OpenSearchError {
    fn into_response(self) -> Response {
        let body =
            json!({ "error": { "type": self.kind, "reason": self.reason }, "status": self.status.as_u16() });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<Denial> for OpenSearchError {
    fn from(denial: Denial) -> Self {
        OpenSearchError::new(status_of(denial.kind()), "security_exception", denial.reason)
    }
}

/// A malformed body: 400 `parse_exception`.
impl From<InvalidBody> for OpenSearchError {
    fn from(e: InvalidBody) -> Self {
        OpenSearchError::new(status_of(ErrorKind::Invalid), "parse_exception", e.to_string())
    }
}

/// A user's own call to the document API. The status is the kind's, except
/// a path no API serves: 404 `no_handler_found`, as OpenSearch answers it
/// (a guest sees the same error as `invalid`).
impl From<GateError> for OpenSearchError {
    fn from(e: GateError) -> Self {
        let status = status_of(e.kind());
        match e {
            GateError::Refused(refusal) => {
                OpenSearchError::new(status, "security_exception", refusal.reason())
            }
            e @ GateError::UnknownApi { .. } => {
                OpenSearchError::new(StatusCode::NOT_FOUND, "no_handler_found", e.to_string())
            }
            GateError::Invalid(reason) => OpenSearchError::new(status, "illegal_argument_exception", reason),
            GateError::Unavailable(reason) => OpenSearchError::new(status, "unavailable", reason),
            GateError::Internal(reason) => OpenSearchError::new(status, "internal_error", reason),
        }
    }
}

/// An extension's invocation that did not answer.
impl From<InvokeError> for OpenSearchError {
    fn from(e: InvokeError) -> Self {
        let reason = e.to_string();
        match e {
            InvokeError::Busy { retry_after, .. } => {
                OpenSearchError::new(StatusCode::SERVICE_UNAVAILABLE, "extension_busy", reason)
                    .retry_after(retry_after.as_secs())
            }
            InvokeError::CpuDeadline { .. } => {
                OpenSearchError::new(StatusCode::GATEWAY_TIMEOUT, "cpu_deadline_exceeded", reason)
            }
            InvokeError::Timeout { .. } => {
                OpenSearchError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", reason)
            }
            InvokeError::MemoryLimit { .. } => {
                OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "memory_limit_exceeded", reason)
            }
            InvokeError::Trap { .. } => {
                OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "extension_trapped", reason)
            }
            InvokeError::Failed { .. } => {
                OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "extension_failed", reason)
            }
            InvokeError::NotExported { .. } => {
                OpenSearchError::new(StatusCode::NOT_FOUND, "no_handler", reason)
            }
        }
    }
}

/// The job store's errors, as `job_exception`. The status is the kind's,
/// except the per-user job limit: a guest is `denied` it, a REST client has
/// always been told 400 (the request must change).
impl From<JobError> for OpenSearchError {
    fn from(e: JobError) -> Self {
        let kind = match e {
            JobError::Limit(_) => ErrorKind::Invalid,
            _ => e.kind(),
        };
        OpenSearchError::new(status_of(kind), "job_exception", e.to_string())
    }
}

/// An audit query that could not read the log.
impl From<AuditError> for OpenSearchError {
    fn from(e: AuditError) -> Self {
        OpenSearchError::new(status_of(e.kind()), "audit_unavailable", e.to_string())
    }
}

/// An error in the security plugin's shape: `{"status":"BAD_REQUEST","message":..}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SecurityApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl SecurityApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SecurityApiError { kind, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        SecurityApiError::new(ErrorKind::Invalid, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        SecurityApiError::new(ErrorKind::Denied, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        SecurityApiError::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        SecurityApiError::new(ErrorKind::Internal, message)
    }
}

/// The security plugin's `status` label of a kind: its HTTP status's name.
fn label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Invalid => "BAD_REQUEST",
        ErrorKind::Denied => "FORBIDDEN",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::Conflict => "CONFLICT",
        ErrorKind::Busy => "TOO_MANY_REQUESTS",
        ErrorKind::Internal => "INTERNAL_SERVER_ERROR",
        ErrorKind::Unavailable => "SERVICE_UNAVAILABLE",
        ErrorKind::Timeout => "GATEWAY_TIMEOUT",
    }
}

impl IntoResponse for SecurityApiError {
    fn into_response(self) -> Response {
        let body = json!({ "status": label(self.kind), "message": self.message });
        (status_of(self.kind), axum::Json(body)).into_response()
    }
}

impl From<Denial> for SecurityApiError {
    fn from(denial: Denial) -> Self {
        SecurityApiError::new(denial.kind(), denial.reason)
    }
}

impl From<InvalidBody> for SecurityApiError {
    fn from(e: InvalidBody) -> Self {
        SecurityApiError::bad_request(e.to_string())
    }
}

/// A configuration change that did not apply (a configuration that does
/// not validate is the caller's; the store is ours), a password refused or
/// not hashed, an API token refused: each says its kind, and the status
/// follows from it.
impl From<SecurityWriteError> for SecurityApiError {
    fn from(e: SecurityWriteError) -> Self {
        SecurityApiError::new(e.kind(), e.to_string())
    }
}

impl From<PasswordError> for SecurityApiError {
    fn from(e: PasswordError) -> Self {
        SecurityApiError::new(e.kind(), e.to_string())
    }
}

impl From<ApiTokenError> for SecurityApiError {
    fn from(e: ApiTokenError) -> Self {
        SecurityApiError::new(e.kind(), e.to_string())
    }
}

/// The token service's persistence (revoking, rotating keys) failing is
/// ours. Minting answers 400 for any failure, at its one call site.
impl From<TokenError> for SecurityApiError {
    fn from(e: TokenError) -> Self {
        SecurityApiError::internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn envelopes_are_opensearch_and_security_plugin_shaped() {
        let response = OpenSearchError::forbidden("no").into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            body(response).await,
            json!({ "error": { "type": "security_exception", "reason": "no" }, "status": 403 })
        );
        let response = SecurityApiError::bad_request("bad").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body(response).await, json!({ "status": "BAD_REQUEST", "message": "bad" }));
        let response = SecurityApiError::internal("oops").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body(response).await, json!({ "status": "INTERNAL_SERVER_ERROR", "message": "oops" }));
    }

    #[test]
    fn a_busy_extension_is_503_with_retry_after() {
        let e = InvokeError::Busy { id: "x".into(), max: 1, retry_after: std::time::Duration::ZERO };
        let response = OpenSearchError::from(e).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(b"1".as_slice()));
    }
}
