//! The operator console: a single-page app under `/_warden/console`, every
//! asset embedded in the binary (plain HTML, one ES module, one stylesheet:
//! no CDN, no front-end build), and the sign-in that gives the browser a
//! session cookie.
//!
//! | path | what |
//! |---|---|
//! | `GET /_warden/console[/]` | the page |
//! | `GET /_warden/console/app.js`, `app.css` | its script and style |
//! | `POST /_warden/console/_login` | `{"user","password"}` → session cookie |
//! | `GET /_warden/console/_session` | who is signed in, what they hold, the CSRF token |
//! | `POST /_warden/console/_logout` | ends the session |
//!
//! These routes sit outside the authentication middleware (the page must
//! load before anyone signs in). Sign-in checks the password through the
//! very path `Authorization: Basic` takes ([`crate::security::Security::authenticate`]):
//! the same internal users, throttling of failed logins and audit. After
//! it, the console's script calls the ordinary REST handlers with the
//! cookie; the authentication middleware resolves the cookie to the user
//! afresh on each request ([`sessions::ConsoleSessions::resolve`]) and
//! holds every change to the CSRF and origin rules of [`from_cookie`].
//! There is no second authorization path: the console sees and does what
//! the user's permissions allow through the REST API.

pub mod sessions;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};

pub use sessions::{ConsoleSession, ConsoleSessions, ConsoleSettings};

use super::AppState;
use super::error::OpenSearchError;
use crate::audit::{Category, Event};
use crate::security::AuthenticatedUser;
use crate::security::authn::AuthnError;

/// The session cookie's name.
pub const COOKIE: &str = "warden_session";
/// The header a cookie-authenticated change carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sent by the console's script on every call: a refusal then omits
/// `WWW-Authenticate`, which would make the browser pop up its own
/// Basic-auth dialog over the page.
pub const CONSOLE_HEADER: &str = "x-warden-console";

/// The policy every console answer carries: nothing inline, nothing from
/// elsewhere, never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const INDEX: &str = include_str!("../../../console/index.html");
const APP_JS: &str = include_str!("../../../console/app.js");
const APP_CSS: &str = include_str!("../../../console/app.css");

/// A sign-in body is a name and a password: a few KiB at most.
const MAX_LOGIN_BODY: usize = 8 << 10;

/// The console's routes, outside the authentication middleware.
pub fn router(sessions: Arc<ConsoleSessions>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/_warden/console", get(index))
        .route("/_warden/console/", get(index))
        .route("/_warden/console/app.js", get(app_js))
        .route("/_warden/console/app.css", get(app_css))
        .route("/_warden/console/_login", post(login))
        .route("/_warden/console/_logout", post(logout))
        .route("/_warden/console/_session", get(session))
        .layer(axum::middleware::map_response(hardened))
        .layer(Extension(sessions))
}

/// The headers of every console answer.
async fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// The session id the request's `Cookie` header names, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// Whether the request came over TLS as far as Warden can tell: Warden
/// serves plain HTTP, so only a proxy in front saying so.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn set_cookie(sessions: &ConsoleSessions, headers: &HeaderMap, value: &str, max_age: u64) -> HeaderValue {
    let secure = if sessions.settings.secure_cookie || over_tls(headers) { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("warden_session=; Max-Age=0"))
}

/// Why a cookie-authenticated request is refused.
#[derive(Debug)]
pub enum CookieRefusal {
    /// The session is not (or no longer) good: a 401 like any failed login.
    Authn(AuthnError),
    /// A change without the session's CSRF token, or from another origin.
    Forbidden(String),
}

fn forbidden(reason: impl Into<String>) -> Response {
    OpenSearchError::new(StatusCode::FORBIDDEN, "security_exception", reason).into_response()
}

/// Whether a change comes from this server's own pages: its `Origin`, when
/// there is one, names the host the request was sent to, and the browser
/// does not call it cross-site.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && (site == "cross-site" || site == "same-site")
    {
        return Err(format!("a {site} request may not change anything through a console session"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().map_err(|_| "the Origin header is not readable".to_owned())?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    if host.is_empty() || !authority.eq_ignore_ascii_case(host) {
        return Err(format!("origin `{}` is not this server's", crate::audit::truncate(origin, 200)));
    }
    Ok(())
}

/// The session a request without `Authorization` holds in its cookie, if
/// it has one: resolved afresh ([`ConsoleSessions::resolve`]); a change
/// (anything but GET and HEAD) must also carry the session's CSRF token
/// in `x-csrf-token` and come from this server's origin.
pub fn from_cookie(
    state: &AppState,
    request: &Request,
    remote: Option<IpAddr>,
) -> Option<Result<ConsoleSession, CookieRefusal>> {
    let id = session_cookie(request.headers())?;
    let sessions = request.extensions().get::<Arc<ConsoleSessions>>()?;
    Some(check_cookie(state, sessions, request.method(), request.headers(), &id, remote))
}

fn check_cookie(
    state: &AppState,
    sessions: &ConsoleSessions,
    method: &Method,
    headers: &HeaderMap,
    id: &str,
    remote: Option<IpAddr>,
) -> Result<ConsoleSession, CookieRefusal> {
    let session = sessions.resolve(&state.security, id, remote).map_err(CookieRefusal::Authn)?;
    if method != Method::GET && method != Method::HEAD {
        let token = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !sessions::same_secret(token, &session.csrf) {
            return Err(CookieRefusal::Forbidden(format!(
                "a change through a console session must carry the session's `{CSRF_HEADER}` header"
            )));
        }
        same_origin(headers).map_err(CookieRefusal::Forbidden)?;
    }
    Ok(session)
}

/// What the page needs to know of its user.
fn describe(user: &AuthenticatedUser, csrf: &str, settings: &ConsoleSettings) -> Value {
    let holds = |permission: &str| user.check_cluster(permission).is_ok();
    json!({
        "user": user.principal.name,
        "source": user.source.as_str(),
        "backend_roles": user.principal.backend_roles,
        "roles": user.role_names(),
        "can": {
            "manage_extensions": holds(crate::extensions::lifecycle::ADMIN_PERMISSION),
            "manage_jobs": holds(crate::scheduler::ADMIN_PERMISSION),
            "manage_consents": holds(super::consents::ADMIN_PERMISSION),
            "read_audit": holds("restapi:admin/audit"),
            "read_metrics": holds(super::metrics::PERMISSION),
            "revoke_tokens": holds("restapi:admin/tokens"),
        },
        "csrf_token": csrf,
        "idle_timeout_secs": settings.idle.as_secs(),
    })
}

fn remote_of(request: &Request) -> Option<IpAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// `GET /_warden/console/_session`: the signed-in user, or 401 (without
/// `WWW-Authenticate`: the page shows its own sign-in).
async fn session(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Extension<Arc<ConsoleSessions>>,
    request: Request,
) -> Response {
    let remote = remote_of(&request);
    let resolved = session_cookie(request.headers())
        .ok_or(AuthnError::Missing)
        .and_then(|id| sessions.resolve(&state.security, &id, remote));
    match resolved {
        Ok(s) => Json(describe(&s.user, &s.csrf, &sessions.settings)).into_response(),
        Err(_) => OpenSearchError::new(StatusCode::UNAUTHORIZED, "security_exception", "not signed in")
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
}

/// `POST /_warden/console/_login`: checks the password as Basic does (the
/// same authenticator, throttle and audit) and opens a session.
async fn login(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Extension<Arc<ConsoleSessions>>,
    request: Request,
) -> Response {
    let remote = remote_of(&request);
    let (parts, body) = request.into_parts();
    // Sign-in from another site's page (login CSRF) is refused; so is a
    // form post: only the console's own script sends JSON.
    if let Err(reason) = same_origin(&parts.headers) {
        return forbidden(reason);
    }
    let json_body = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/json"));
    if !json_body {
        return OpenSearchError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "parse_exception",
            "sign in with a JSON body {\"user\": .., \"password\": ..}",
        )
        .into_response();
    }
    let bytes =
        match tokio::time::timeout(state.body_timeout, axum::body::to_bytes(body, MAX_LOGIN_BODY)).await {
            Ok(Ok(bytes)) => bytes,
            _ => {
                return OpenSearchError::new(
                    StatusCode::BAD_REQUEST,
                    "parse_exception",
                    format!("the sign-in body did not arrive whole (at most {MAX_LOGIN_BODY} bytes)"),
                )
                .into_response();
            }
        };
    let Ok(login) = serde_json::from_slice::<Login>(&bytes) else {
        return OpenSearchError::new(
            StatusCode::BAD_REQUEST,
            "parse_exception",
            "sign in with a JSON body {\"user\": .., \"password\": ..}",
        )
        .into_response();
    };
    let request_id = super::authenticate::next_request_id();
    let event = |category| Event {
        method: Some("POST".into()),
        path: Some(parts.uri.path().to_owned()),
        ..Event::new(category, &request_id).remote(remote)
    };
    // Basic cannot carry a name holding `:`; neither can the console.
    let authenticated = if login.user.contains(':') || login.user.is_empty() {
        Err(AuthnError::Malformed("a user name is not empty and holds no `:`"))
    } else {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", login.user, login.password));
        state.security.authenticate(Some(&format!("Basic {credentials}")), remote).await
    };
    let user = match authenticated {
        Ok(user) => user,
        Err(e) => {
            let mut response = super::authenticate::refusal(&state, e, event(Category::FailedLogin), remote);
            response.headers_mut().remove(header::WWW_AUTHENTICATE);
            return response;
        }
    };
    crate::metrics::authentication(true);
    if state.audit.enabled(Category::Authenticated) {
        state.audit.record(
            event(Category::Authenticated).user(&user.principal.name).reason("console sign-in".to_owned()),
        );
    }
    let hash = user.state.config.internal_users.get(&user.principal.name).and_then(|r| r.hash.clone());
    // Issued after any revocation of the user's tokens, as an API token is.
    let created = match state.security.tokens() {
        Some(obo) => obo.issue_time(&user.principal.name, None),
        None => crate::time::now_secs(),
    };
    let (id, csrf) = match sessions.open(&user.principal.name, hash, created) {
        Ok(opened) => opened,
        Err(e) => {
            return OpenSearchError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "security_exception",
                e.to_string(),
            )
            .retry_after(60)
            .into_response();
        }
    };
    let cookie = set_cookie(&sessions, &parts.headers, &id, sessions.settings.lifetime.as_secs());
    let mut response = Json(describe(&user, &csrf, &sessions.settings)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// `POST /_warden/console/_logout`: ends the cookie's session (a change:
/// it takes the CSRF token and the origin rule like any other).
async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Extension<Arc<ConsoleSessions>>,
    request: Request,
) -> Response {
    let remote = remote_of(&request);
    let Some(id) = session_cookie(request.headers()) else {
        return OpenSearchError::new(StatusCode::UNAUTHORIZED, "security_exception", "not signed in")
            .into_response();
    };
    match check_cookie(&state, &sessions, request.method(), request.headers(), &id, remote) {
        Ok(session) => sessions.close(&session.id),
        Err(CookieRefusal::Forbidden(reason)) => return forbidden(reason),
        // Already ended: the cookie is cleared all the same.
        Err(CookieRefusal::Authn(_)) => {}
    }
    let mut response = Json(json!({ "signed_out": true })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(&sessions, request.headers(), "", 0));
    response
}
