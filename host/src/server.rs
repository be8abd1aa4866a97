//! The HTTP front: `/_extensions/{id}/{*path}` (every method) calls the
//! extension's handler; `GET /_warden/health` reports what is loaded and
//! what failed; `GET /_plugins/_security/authinfo` says who you are. Every
//! route authenticates first. Errors are JSON in OpenSearch's shape:
//! `{"error":{"type":..,"reason":..},"status":..}`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::json;

use crate::audit::{AuditLog, Category, Event, Filter};
use crate::registry::Registry;
use crate::runtime::session::{Session, Sessions};
use crate::runtime::{HttpRequest, HttpResponse, InvokeError};
use crate::scheduler::extension_api::JobAccess;
use crate::security::{AuthenticatedUser, Security};

/// Largest request body passed to an extension.
pub const MAX_BODY: usize = 10 << 20;

/// What every route shares.
#[derive(Debug)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub security: Arc<Security>,
    pub audit: Arc<AuditLog>,
    /// Extensions' cluster calls go here; `None` runs without a cluster.
    pub cluster: Option<Arc<crate::cluster::gateway::ClusterGateway>>,
    /// Scheduled jobs; `None` runs without a scheduler.
    pub scheduler: Option<Arc<crate::scheduler::Scheduler>>,
    /// Builds invocation sessions (and mints their tokens).
    pub sessions: Arc<Sessions>,
    pub started: Instant,
    /// An authenticated request's body must arrive within this (a slow
    /// body would otherwise hold a connection and a handler forever).
    pub body_timeout: std::time::Duration,
}

/// One request's id (in the audit log and the `x-request-id` header) and
/// client address.
#[derive(Debug, Clone)]
pub struct RequestId {
    pub id: String,
    pub remote: Option<std::net::IpAddr>,
    pub method: String,
    pub path: String,
}

fn next_request_id() -> String {
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

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/_extensions/{id}", any(extension_call))
        .route("/_extensions/{id}/", any(extension_call))
        .route("/_extensions/{id}/{*path}", any(extension_call))
        .route("/_warden/health", get(health))
        .route("/_plugins/_security/authinfo", get(authinfo))
        .route("/_warden/audit", get(audit))
        .merge(crate::security_api::routes())
        .merge(crate::scheduler::api::routes())
        .fallback(cluster_rest)
        .layer(from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Authenticates every request; the user travels in the request's extensions.
/// Every failure is the same 401 to the client; the log says which it was.
/// A throttled login (too many failures from the address or for the name)
/// answers 429 and a saturated password check 503, both with `Retry-After`
/// and without checking anything.
async fn authenticate(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
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
    let authenticated = match request.headers().get(header::AUTHORIZATION).map(|v| v.to_str()) {
        Some(Err(_)) => {
            Err(crate::security::authn::AuthnError::Malformed("Authorization is not visible ASCII"))
        }
        Some(Ok(authorization)) => state.security.authenticate(Some(authorization), remote).await,
        None => state.security.authenticate(None, remote).await,
    };
    let response = match authenticated {
        Ok(user) => {
            if state.audit.enabled(Category::Authenticated) {
                state.audit.record(Event {
                    user: Some(user.principal.name.clone()),
                    ..event(Category::Authenticated)
                });
            }
            request.extensions_mut().insert(user);
            request.extensions_mut().insert(RequestId { id: request_id.clone(), remote, method, path });
            // The body is read only now, after authentication (nobody
            // unauthenticated gets to upload), and within the body timeout.
            let (parts, body) = request.into_parts();
            match tokio::time::timeout(state.body_timeout, axum::body::to_bytes(body, MAX_BODY)).await {
                Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
                Ok(Err(e)) => error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "content_too_long_exception",
                    &format!("the request body could not be read (at most {MAX_BODY} bytes): {e}"),
                ),
                Err(_) => {
                    let mut response = error(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        &format!(
                            "the request body did not arrive within {} ms",
                            state.body_timeout.as_millis()
                        ),
                    );
                    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                    response
                }
            }
        }
        Err(e) => {
            let reason = e.to_string();
            state.audit.record(Event {
                user: e.claimed_user().map(str::to_owned),
                reason: Some(reason.clone()),
                ..event(Category::FailedLogin)
            });
            // A claimed name can be as long as a header: the log line stays short.
            let user = e.claimed_user().map(|u| crate::audit::truncate(u, 256));
            let user = user.as_deref();
            tracing::info!(target: "warden::authn", remote = ?remote, user, "authentication failed: {}", crate::audit::truncate(&reason, 512));
            let (status, kind, message, retry_after) = match &e {
                AuthnError::Throttled { retry_after_secs, .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "security_exception",
                    "too many failed logins: try again later",
                    Some(*retry_after_secs),
                ),
                AuthnError::Busy(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "security_exception",
                    "authentication is busy: try again later",
                    Some(1),
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    "security_exception",
                    "authentication required: missing or invalid credentials",
                    None,
                ),
            };
            let mut response = error(status, kind, message);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"warden\""));
            if let Some(secs) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
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

/// `GET /_warden/audit?category=&user=&extension=&job=&from=&to=&size=`: needs
/// `restapi:admin/audit` (security managers and all_access).
async fn audit(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    axum::extract::Query(filter): axum::extract::Query<Filter>,
) -> Response {
    if let Err(denied) = user.check_cluster("restapi:admin/audit") {
        return error(StatusCode::FORBIDDEN, "security_exception", &denied.to_string());
    }
    // File reads: on the blocking pool, not the request executor, two at a
    // time (a query may read every retained file).
    static QUERIES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let Ok(_permit) = QUERIES.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable", "the audit log is closing");
    };
    let audit = state.audit.clone();
    match tokio::task::spawn_blocking(move || audit.query(&filter)).await {
        Ok(Ok(events)) => axum::Json(json!({ "total": events.len(), "events": events })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "audit_unavailable", &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "audit_unavailable", &e.to_string()),
    }
}

/// Everything else is the cluster's REST API on OpenSearch's paths, for the
/// user's own roles (one gate; system indices refused).
async fn cluster_rest(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request_id): Extension<RequestId>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    use crate::cluster::gateway::GateError;
    let Some(gateway) = state.cluster.clone() else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such route");
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let method = parts.method.clone();
    // Store work (a large `_bulk`, a scan) blocks: it runs on the blocking
    // pool so the request executor keeps serving everyone else.
    let result = tokio::task::spawn_blocking(move || {
        let body = (!body.is_empty()).then_some(&body[..]);
        gateway.call_as_user(&user, &request_id.id, request_id.remote, method.as_str(), &path, body)
    })
    .await
    .unwrap_or_else(|e| Err(GateError::Unavailable(format!("the cluster call did not complete: {e}"))));
    match result {
        Ok(reply) => {
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if parts.method == Method::HEAD {
                return status.into_response();
            }
            (status, axum::Json(reply.body)).into_response()
        }
        Err(GateError::Refused(refusal)) => {
            error(StatusCode::FORBIDDEN, "security_exception", refusal.reason())
        }
        Err(e @ GateError::UnknownApi { .. }) => {
            error(StatusCode::NOT_FOUND, "no_handler_found", &e.to_string())
        }
        Err(GateError::Invalid(reason)) => {
            error(StatusCode::BAD_REQUEST, "illegal_argument_exception", &reason)
        }
        Err(GateError::Unavailable(reason)) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &reason),
        Err(GateError::Internal(reason)) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", &reason)
        }
    }
}

/// `GET /_plugins/_security/authinfo`: who the caller is, as OpenSearch answers it.
async fn authinfo(Extension(user): Extension<AuthenticatedUser>) -> Response {
    let name = &user.principal.name;
    let backend_roles = &user.principal.backend_roles;
    axum::Json(json!({
        "user": format!("User [name={name}, backend_roles={backend_roles:?}, requestedTenant=null]"),
        "user_name": name,
        "user_requested_tenant": null,
        "backend_roles": backend_roles,
        "custom_attribute_names": user.principal.attributes.keys().filter(|k| *k != "user_name").collect::<Vec<_>>(),
        "roles": user.role_names(),
        "tenants": {},
        "principal": null,
        "peer_certificates": "0",
        "sso_logout_url": null,
    }))
    .into_response()
}

/// Connection limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// A client must send a request's whole head within this; an idle
    /// keep-alive connection is closed after it too (hyper's timer starts
    /// whenever the connection waits for a head).
    pub header_read_timeout: std::time::Duration,
    /// Connections open at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_address: usize,
    /// An authenticated request's body must arrive within this (enforced
    /// by the authentication middleware, through [`AppState::body_timeout`]).
    pub body_timeout: std::time::Duration,
    /// A write to a client that makes no progress for this long closes the
    /// connection (a client that never reads its answers).
    pub write_timeout: std::time::Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: std::time::Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_address: 256,
            body_timeout: std::time::Duration::from_secs(60),
            write_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// The address a connection counts against: an IPv4 address, or an IPv6
/// client's /64 (one host holds a whole /64).
fn client_network(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            std::net::IpAddr::V6(octets.into())
        }
        other => other,
    }
}

/// Serves until `shutdown` resolves, then lets the requests in flight finish
/// (for at most 30 s). Each connection needs a permit of the connection cap
/// and of its address's cap: a connection over either is closed at once,
/// so slow or idle clients cannot hold every connection, and the header
/// timeout frees the ones they hold.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower_service::Service as _;

    /// One connection's share of its address's cap, given back when dropped.
    struct AddressSlot {
        counts: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
    }
    impl Drop for AddressSlot {
        fn drop(&mut self) {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = counts.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&self.ip);
                }
            }
        }
    }

    /// What the accept loop knows of an open connection: whether it has
    /// sent a whole request head yet, and how to close it.
    struct OpenConnection {
        served: Arc<AtomicBool>,
        abort: tokio::task::AbortHandle,
    }
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = router(state);
    // Open connections, oldest first (ids grow).
    let idle: Arc<std::sync::Mutex<std::collections::BTreeMap<u64, OpenConnection>>> = Arc::default();
    let mut next_connection = 0u64;
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let per_address: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> =
        Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    // Refusals are logged at most every 10 s, with a count: a flood must not
    // become a log flood.
    let mut refused = 0u64;
    let mut refused_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, do not spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let mut permit = connections.clone().try_acquire_owned().ok();
        if permit.is_none() {
            // Full: the oldest connection that has not yet sent a whole
            // request head gives way (a client that only opens connections
            // must not hold every slot for a header timeout each).
            let victim = {
                let open = idle.lock().unwrap_or_else(|p| p.into_inner());
                open.iter()
                    .find(|(_, c)| !c.served.load(Ordering::Relaxed))
                    .map(|(id, c)| (*id, c.abort.clone()))
            };
            if let Some((id, abort)) = victim {
                abort.abort();
                idle.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                let wait = tokio::time::timeout(
                    std::time::Duration::from_millis(100),
                    connections.clone().acquire_owned(),
                );
                permit = wait.await.ok().and_then(Result::ok);
            }
        }
        let slot = permit.as_ref().and_then(|_| {
            let mut counts = per_address.lock().unwrap_or_else(|p| p.into_inner());
            let ip = client_network(remote.ip());
            let count = counts.entry(ip).or_insert(0);
            (*count < limits.max_connections_per_address).then(|| {
                *count += 1;
                AddressSlot { counts: per_address.clone(), ip }
            })
        });
        let (Some(permit), Some(slot)) = (permit, slot) else {
            drop(stream);
            refused += 1;
            if refused_logged.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(10)) {
                tracing::warn!(
                    refused,
                    max_connections = limits.max_connections,
                    max_connections_per_address = limits.max_connections_per_address,
                    "connections refused over the connection caps (last from {remote})"
                );
                refused_logged = Some(Instant::now());
                refused = 0;
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let served = Arc::new(AtomicBool::new(false));
        let first_head = served.clone();
        let service =
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                first_head.store(true, Ordering::Relaxed);
                request.extensions_mut().insert(ConnectInfo(remote));
                app.clone().call(request)
            });
        // A client that stops reading its answers (say, thousands of
        // pipelined requests never read) is cut off once a write has made
        // no progress for the write timeout.
        let mut io = tokio_io_timeout::TimeoutStream::new(stream);
        io.set_write_timeout(Some(limits.write_timeout));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(Box::pin(io)), service));
        let id = next_connection;
        next_connection += 1;
        let open = idle.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%remote, "connection closed: {e}");
            }
            open.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            drop((permit, slot));
        });
        idle.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, OpenConnection { served, abort: task.abort_handle() });
    }
    drop(listener);
    if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open 30 s after shutdown began; closing them");
    }
    Ok(())
}

/// `{"error":{"type":kind,"reason":reason},"status":code}`.
pub fn error(status: StatusCode, kind: &str, reason: &str) -> Response {
    let body = json!({ "error": { "type": kind, "reason": reason }, "status": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

async fn health(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
) -> Response {
    if let Err(denied) = user.check_cluster("cluster:monitor/health") {
        return error(StatusCode::FORBIDDEN, "security_exception", &denied.to_string());
    }
    let registry = &state.registry;
    let extensions: Vec<_> = registry
        .extensions()
        .map(|e| {
            json!({
                "id": e.id(),
                "version": e.manifest.version,
                "capabilities": e.manifest.capabilities.iter().map(|c| c.name()).collect::<Vec<_>>(),
                "serves_http": e.serves_http(),
                "runs_jobs": e.runs_jobs(),
                "limits": {
                    "memory_mib": e.limits.memory_bytes >> 20,
                    "cpu_ms": e.limits.cpu.as_millis() as u64,
                    "timeout_ms": e.limits.timeout.as_millis() as u64,
                    "max_concurrency": e.limits.max_concurrency,
                },
            })
        })
        .collect();
    let status = if registry.failed().is_empty() { "green" } else { "yellow" };
    axum::Json(json!({
        "status": status,
        "uptime_ms": state.started.elapsed().as_millis() as u64,
        "extensions": extensions,
        "failed": registry.failed(),
        "scheduler": state.scheduler.as_ref().map(|s| s.status()),
    }))
    .into_response()
}

/// Both extension routes: `{id}` alone and `{id}/{*path}`.
async fn extension_call(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request_id): Extension<RequestId>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    let call = Call {
        id: params.get("id").cloned().unwrap_or_default(),
        path: params.get("path").cloned().unwrap_or_default(),
        method: parts.method,
        query: RawQuery(parts.uri.query().map(str::to_owned)),
        headers: parts.headers,
        body,
    };
    dispatch(&state, &user, &request_id, call).await
}

/// One request for an extension, as received.
struct Call {
    id: String,
    /// Below `/_extensions/<id>/`, without the leading `/`.
    path: String,
    method: Method,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
}

/// The extension permission a route needs: `extension:<id>/<first path
/// segment>` (`extension:<id>/*` in a role grants them all).
pub fn route_permission(id: &str, path: &str) -> String {
    let route = path.split('/').find(|s| !s.is_empty()).unwrap_or("");
    format!("extension:{id}/{route}")
}

async fn dispatch(
    state: &AppState,
    user: &AuthenticatedUser,
    request_id: &RequestId,
    call: Call,
) -> Response {
    let Call { id, path, method, query: RawQuery(query), headers, body } = call;
    // The route permission is decided first, the same way whether the
    // extension exists, failed to load or serves: a caller without the
    // permission learns nothing about which ids exist.
    let permission = route_permission(&id, &path);
    let decision = user.check_extension(&permission);
    let category = if decision.is_ok() { Category::GrantedPrivileges } else { Category::MissingPrivileges };
    if state.audit.enabled(category) {
        state.audit.record(Event {
            user: Some(user.principal.name.clone()),
            method: Some(method.to_string()),
            path: Some(format!("/_extensions/{id}/{path}")),
            action: Some(permission.clone()),
            extension: Some(id.clone()),
            gate: Some("route".into()),
            reason: decision.as_ref().err().map(ToString::to_string),
            ..Event::new(category, &request_id.id).remote(request_id.remote)
        });
    }
    if let Err(denied) = decision {
        return error(StatusCode::FORBIDDEN, "security_exception", &denied.to_string());
    }
    let Some(extension) = state.registry.get(&id) else {
        return match state.registry.failure_of(&id) {
            // Why it failed names files on the server: that is for
            // operators (`/_warden/health`, the log), not for callers.
            Some(_) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "extension_not_loaded",
                &format!("extension `{id}` is not loaded; an operator can see why in /_warden/health"),
            ),
            None => error(StatusCode::NOT_FOUND, "extension_not_found", &format!("no extension `{id}`")),
        };
    };
    let query = match parse_query(query.as_deref().unwrap_or("")) {
        Ok(query) => query,
        Err(reason) => return error(StatusCode::BAD_REQUEST, "invalid_query", &reason),
    };
    let request = HttpRequest {
        method: method.as_str().to_owned(),
        path: format!("/{path}"),
        query,
        // Credentials stay with the host: the guest never sees them; nor
        // the headers that only mean something to this one connection.
        headers: headers
            .iter()
            .filter(|(name, _)| !CREDENTIAL_HEADERS.contains(name) && !is_hop_by_hop(name, &headers))
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect(),
        body: body.to_vec(),
        user: user.principal.name.clone(),
    };
    let session = match session_for(state, extension, user, request_id) {
        Ok(session) => session,
        Err(reason) => return error(StatusCode::INTERNAL_SERVER_ERROR, "token_error", &reason),
    };
    let started = Instant::now();
    let result = extension.handle_http(request, session).await;
    let elapsed_us = started.elapsed().as_micros() as u64;
    match result {
        Ok(response) => {
            tracing::debug!(extension = id, method = %method, path, status = response.status, elapsed_us, "handled");
            into_http(&id, response)
        }
        Err(e) => {
            tracing::warn!(extension = id, method = %method, path, elapsed_us, "{e}");
            invoke_error(e)
        }
    }
}

/// The session of one invocation, built by `runtime::session` (which
/// mints its token and decides who its jobs would run as).
fn session_for(
    state: &AppState,
    extension: &crate::runtime::LoadedExtension,
    user: &AuthenticatedUser,
    request_id: &RequestId,
) -> Result<Session, String> {
    let jobs = state.scheduler.clone().map(|s| s as Arc<dyn JobAccess>);
    state.sessions.for_request(user, extension, &request_id.id, jobs).map_err(|e| e.to_string())
}

fn invoke_error(e: InvokeError) -> Response {
    let reason = e.to_string();
    match e {
        InvokeError::Busy { retry_after, .. } => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "extension_busy", &reason);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            response
        }
        InvokeError::CpuDeadline { .. } => {
            error(StatusCode::GATEWAY_TIMEOUT, "cpu_deadline_exceeded", &reason)
        }
        InvokeError::Timeout { .. } => error(StatusCode::GATEWAY_TIMEOUT, "timeout", &reason),
        InvokeError::MemoryLimit { .. } => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "memory_limit_exceeded", &reason)
        }
        InvokeError::Trap { .. } => error(StatusCode::INTERNAL_SERVER_ERROR, "extension_trapped", &reason),
        InvokeError::Failed { .. } => error(StatusCode::INTERNAL_SERVER_ERROR, "extension_failed", &reason),
        InvokeError::NotExported { .. } => error(StatusCode::NOT_FOUND, "no_handler", &reason),
    }
}

/// Request headers that carry the caller's credentials: the host consumed
/// them, the guest never sees them.
const CREDENTIAL_HEADERS: [HeaderName; 3] =
    [header::AUTHORIZATION, header::PROXY_AUTHORIZATION, header::COOKIE];

/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, not
/// the message, so they never cross the host in either direction. Headers
/// that `Connection` names are hop-by-hop too.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

fn is_hop_by_hop(name: &HeaderName, headers: &HeaderMap) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
        || headers.get_all(header::CONNECTION).iter().any(|listed| {
            listed
                .to_str()
                .is_ok_and(|v| v.split(',').any(|token| token.trim().eq_ignore_ascii_case(name.as_str())))
        })
}

/// Turns the guest's answer into HTTP, or a 502 naming what was invalid.
/// Only final statuses (200–599) are accepted: a guest cannot switch
/// protocols, answer informationally or hijack the connection.
fn into_http(id: &str, response: HttpResponse) -> Response {
    let invalid = |what: String| {
        error(
            StatusCode::BAD_GATEWAY,
            "invalid_extension_response",
            &format!("extension `{id}` answered {what}"),
        )
    };
    let status = match StatusCode::from_u16(response.status) {
        Ok(status) if (200..600).contains(&response.status) => status,
        _ => return invalid(format!("an invalid HTTP status {} (200-599 only)", response.status)),
    };
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    for (name, value) in response.headers {
        let Ok(header_name) = HeaderName::from_bytes(name.as_bytes()) else {
            return invalid(format!("an invalid header name {name:?}"));
        };
        let Ok(header_value) = HeaderValue::from_str(&value) else {
            return invalid(format!("an invalid value for header {name:?}"));
        };
        headers.append(header_name, header_value);
    }
    let connection_specific: Vec<HeaderName> =
        headers.keys().filter(|name| is_hop_by_hop(name, &headers)).cloned().collect();
    for name in connection_specific {
        headers.remove(name);
    }
    (status, headers, response.body).into_response()
}

/// `a=1&b=x%20y` → ordered, percent-decoded pairs.
fn parse_query(raw: &str) -> Result<Vec<(String, String)>, String> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(byte) = byte else {
                    return Err(format!("bad percent-escape in query string at `{}`", &s[i..]));
                };
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("query string `{s}` is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_in_order() {
        assert_eq!(
            parse_query("b=2&a=x%20y+z&flag&b=%C3%A9"),
            Ok(vec![
                ("b".into(), "2".into()),
                ("a".into(), "x y z".into()),
                ("flag".into(), String::new()),
                ("b".into(), "é".into()),
            ])
        );
        assert!(parse_query("a=%zz").is_err_and(|e| e.contains("percent-escape")));
        assert!(parse_query("a=%ff").is_err_and(|e| e.contains("not UTF-8")));
    }

    #[test]
    fn guest_responses_are_validated() {
        let ok = into_http(
            "x",
            HttpResponse { status: 201, headers: vec![("x-a".into(), "1".into())], body: vec![] },
        );
        assert_eq!(ok.status(), StatusCode::CREATED);
        assert_eq!(ok.headers().get("x-a").map(|v| v.as_bytes()), Some(b"1".as_slice()));
        let bad_status = into_http("x", HttpResponse { status: 42, headers: vec![], body: vec![] });
        assert_eq!(bad_status.status(), StatusCode::BAD_GATEWAY);
        let bad_header = into_http(
            "x",
            HttpResponse { status: 200, headers: vec![("bad name".into(), "v".into())], body: vec![] },
        );
        assert_eq!(bad_header.status(), StatusCode::BAD_GATEWAY);
        for status in [100, 101, 103, 199, 600] {
            let upgrade = into_http(
                "x",
                HttpResponse { status, headers: vec![("upgrade".into(), "websocket".into())], body: vec![] },
            );
            assert_eq!(upgrade.status(), StatusCode::BAD_GATEWAY, "status {status}");
        }
        let hop = into_http(
            "x",
            HttpResponse {
                status: 200,
                headers: vec![
                    ("connection".into(), "close, x-private".into()),
                    ("x-private".into(), "1".into()),
                    ("upgrade".into(), "h2c".into()),
                    ("keep-alive".into(), "timeout=999".into()),
                    ("transfer-encoding".into(), "chunked".into()),
                    ("x-kept".into(), "2".into()),
                ],
                body: b"ok".to_vec(),
            },
        );
        assert_eq!(hop.status(), StatusCode::OK);
        let names: Vec<&str> = hop.headers().keys().map(|n| n.as_str()).collect();
        assert!(names.contains(&"x-kept"), "{names:?}");
        for dropped in ["connection", "x-private", "upgrade", "keep-alive", "transfer-encoding"] {
            assert!(!names.contains(&dropped), "{dropped} crossed: {names:?}");
        }
    }
}
