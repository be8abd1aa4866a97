//! The authentication middleware every route passes: Basic / Bearer /
//! anonymous per `config.yml` (through [`crate::security::Security::authenticate`]),
//! then the body, read only now and within the body timeout. The user and
//! the [`RequestMeta`] ride in the request for the [`super::Caller`]
//! extractor; every answer carries `x-request-id`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::OpenSearchError;
use super::{AppState, MAX_BODY, RequestMeta};
use crate::audit::{Category, Event};

/// A request id unique in this process and unlikely to repeat across
/// restarts: a random prefix and a counter.
pub(super) fn next_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        let _ = getrandom::fill(&mut bytes);
        hex::encode(bytes)
    });
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Authenticates every request; the user travels in the request's extensions.
/// Every failure is the same 401 to the client; the log says which it was.
/// A throttled login (too many failures from the address or for the name)
/// answers 429 and a saturated password check 503, both with `Retry-After`
/// and without checking anything.
pub async fn authenticate(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    use crate::security::authn::AuthnError;
    let remote = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let request_id = next_request_id();
    let (method, path) = (request.method().to_string(), request.uri().path().to_owned());
    let event = |category| Event {
        method: Some(method.clone()),
        path: Some(path.clone()),
        ..Event::new(category, &request_id).remote(remote)
    };
    // A header that is there but unreadable is a failed login, never "no
    // credentials" (which anonymous access would let through).
    // Without `Authorization`, the console's session cookie (which holds
    // changes to its CSRF and origin rules); the header always wins.
    let mut console_session = None;
    let from_console = request.headers().contains_key(super::console::CONSOLE_HEADER);
    let authenticated = match request.headers().get(header::AUTHORIZATION).map(|v| v.to_str()) {
        Some(Err(_)) => Err(AuthnError::Malformed("Authorization is not visible ASCII")),
        Some(Ok(authorization)) => state.security.authenticate(Some(authorization), remote).await,
        None => match super::console::from_cookie(&state, &request, remote) {
            None => state.security.authenticate(None, remote).await,
            Some(Ok(session)) => {
                let user = session.user.clone();
                console_session = Some(session);
                Ok(user)
            }
            Some(Err(super::console::CookieRefusal::Forbidden(reason))) => {
                let mut response =
                    OpenSearchError::new(StatusCode::FORBIDDEN, "security_exception", reason).into_response();
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert("x-request-id", value);
                }
                return response;
            }
            Some(Err(super::console::CookieRefusal::Authn(e))) => Err(e),
        },
    };
    let quiet = from_console
        || console_session.is_some()
        || super::console::session_cookie(request.headers()).is_some();
    let response = match authenticated {
        Ok(user) => {
            crate::metrics::authentication(true);
            if state.audit.enabled(Category::Authenticated) {
                state.audit.record(
                    event(Category::Authenticated)
                        .user(&user.principal.name)
                        .credential(crate::security::authn::audit_credential(&user)),
                );
            }
            // Only whoever may install extensions gets the install route's
            // larger body; everyone else is held to the usual limit before
            // the handler's 403 (no 65 MiB uploads by any signed-in user).
            // The privilege check runs for the install route only, not for
            // every request.
            let limit = super::lifecycle::body_limit(request.method(), request.uri().path())
                .filter(|_| user.check_cluster(crate::extensions::lifecycle::ADMIN_PERMISSION).is_ok())
                .unwrap_or(MAX_BODY);
            request.extensions_mut().insert(user);
            if let Some(session) = console_session {
                request.extensions_mut().insert(session);
            }
            request.extensions_mut().insert(RequestMeta { id: request_id.clone(), remote, method, path });
            // The body is read only now, after authentication (nobody
            // unauthenticated gets to upload), and within the body timeout.
            let (parts, body) = request.into_parts();
            match tokio::time::timeout(state.body_timeout, axum::body::to_bytes(body, limit)).await {
                Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
                Ok(Err(e)) => OpenSearchError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "content_too_long_exception",
                    format!("the request body could not be read (at most {limit} bytes): {e}"),
                )
                .into_response(),
                Err(_) => {
                    let mut response = OpenSearchError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        format!(
                            "the request body did not arrive within {} ms",
                            state.body_timeout.as_millis()
                        ),
                    )
                    .into_response();
                    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                    response
                }
            }
        }
        Err(e) => {
            let mut response = refusal(&state, e, event(Category::FailedLogin), remote);
            // A refusal of the console's own calls does not ask for Basic:
            // the browser would pop up its dialog over the page.
            if quiet {
                response.headers_mut().remove(header::WWW_AUTHENTICATE);
            }
            response
        }
    };
    let mut response = response;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The answer to a failed authentication, audited (`event`, a
/// FAILED_LOGIN) and logged: 429 when throttled, 503 when the password
/// check is saturated, else the uniform 401 asking for Basic. The console's
/// sign-in answers with it too, so a wrong password there counts and is
/// recorded exactly as one sent in `Authorization`.
pub(super) fn refusal(
    state: &AppState,
    e: crate::security::authn::AuthnError,
    event: Event,
    remote: Option<std::net::IpAddr>,
) -> Response {
    use crate::metrics::Backpressure;
    use crate::security::authn::AuthnError;
    let reason = e.to_string();
    state.audit.record(Event {
        user: e.claimed_user().map(str::to_owned),
        reason: Some(reason.clone()),
        ..event
    });
    // A claimed name can be as long as a header: the log line stays short.
    let user = e.claimed_user().map(|u| crate::audit::truncate(u, 256));
    let user = user.as_deref();
    tracing::info!(target: "warden::authn", remote = ?remote, user, "authentication failed: {}", crate::audit::truncate(&reason, 512));
    // Turned away unchecked is backpressure; anything else a failure.
    match &e {
        AuthnError::Throttled { .. } => crate::metrics::backpressure(Backpressure::LoginThrottled),
        AuthnError::Busy(_) => crate::metrics::backpressure(Backpressure::AuthenticationBusy),
        _ => crate::metrics::authentication(false),
    }
    let refusal = match &e {
        AuthnError::Throttled { retry_after_secs, .. } => OpenSearchError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "security_exception",
            "too many failed logins: try again later",
        )
        .retry_after(*retry_after_secs),
        AuthnError::Busy(_) => OpenSearchError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "security_exception",
            "authentication is busy: try again later",
        )
        .retry_after(1),
        _ => OpenSearchError::new(
            StatusCode::UNAUTHORIZED,
            "security_exception",
            "authentication required: missing or invalid credentials",
        ),
    };
    let mut response = refusal.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"warden\""));
    response
}
