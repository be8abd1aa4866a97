//! `/_extensions/{id}/{*path}` (every method): calls the extension's
//! handler. The route permission (`extension:<id>/<first segment>`) is
//! decided first; credentials and hop-by-hop headers are dropped before the
//! guest; the guest's answer is checked (final status, valid headers) on
//! the way out. Errors are OpenSearch-shaped ([`OpenSearchError`]).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::OpenSearchError;
use super::{AppState, Caller};
use crate::audit::Category;
use crate::runtime::HttpRequest;
use crate::runtime::HttpResponse;
use crate::scheduler::extension_api::JobAccess;
use crate::security::route_permission;

/// Both extension routes: `{id}` alone and `{id}/{*path}` (`path` below
/// `/_extensions/<id>/`, without the leading `/`).
pub async fn call(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(params): Path<std::collections::HashMap<String, String>>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Result<Response, OpenSearchError> {
    let id = params.get("id").cloned().unwrap_or_default();
    let path = params.get("path").cloned().unwrap_or_default();
    let (method, headers) = (parts.method, parts.headers);
    // The route permission is decided first, the same way whether the
    // extension exists, failed to load or serves: a caller without the
    // permission learns nothing about which ids exist.
    let permission = route_permission(&id, &path);
    let decision = caller.user.check_extension(&permission);
    let category = if decision.is_ok() { Category::GrantedPrivileges } else { Category::MissingPrivileges };
    if caller.audits(category) {
        let event = caller
            .event(category)
            .path(format!("/_extensions/{id}/{path}"))
            .action(&permission)
            .extension(&id)
            .gate(crate::error::Gate::Route.as_str());
        caller.record(match &decision {
            Err(denied) => event.reason(denied.to_string()),
            Ok(()) => event,
        });
    }
    if let Err(denied) = decision {
        return Err(OpenSearchError::forbidden(denied.to_string()));
    }
    let Some(extension) = state.registry.get(&id) else {
        return Err(match state.registry.failure_of(&id) {
            // Why it failed names files on the server: that is for
            // operators (`/_warden/health`, the log), not for callers.
            Some(_) => OpenSearchError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "extension_not_loaded",
                format!("extension `{id}` is not loaded; an operator can see why in /_warden/health"),
            ),
            // Installed, not approved: it runs nothing, and says why.
            None if state.registry.is_pending(&id) => OpenSearchError::new(
                StatusCode::NOT_FOUND,
                "extension_not_found",
                format!(
                    "extension `{id}` is pending approval: it serves nothing until an operator approves it"
                ),
            ),
            None => OpenSearchError::new(
                StatusCode::NOT_FOUND,
                "extension_not_found",
                format!("no extension `{id}`"),
            ),
        });
    };
    let query = parse_query(parts.uri.query().unwrap_or(""))
        .map_err(|reason| OpenSearchError::new(StatusCode::BAD_REQUEST, "invalid_query", reason))?;
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
        user: caller.user.principal.name.clone(),
    };
    let jobs = state.scheduler.clone().map(|s| s as Arc<dyn JobAccess>);
    let session = state
        .sessions
        .for_request(&caller.user, &extension, &caller.meta.id, jobs)
        .map_err(|e| OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "token_error", e.to_string()))?;
    let started = Instant::now();
    let result = extension.handle_http(request, session).await;
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    match result {
        Ok(response) => {
            tracing::debug!(extension = id, method = %method, path, status = response.status, elapsed_us, "handled");
            into_http(&id, response)
        }
        Err(e) => {
            tracing::warn!(extension = id, method = %method, path, elapsed_us, "{e}");
            Err(e.into())
        }
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
/// The sandbox every extension answer runs in, when a browser renders it.
const EXTENSION_SANDBOX: &str = "sandbox allow-scripts allow-forms allow-popups allow-downloads";

fn into_http(id: &str, response: HttpResponse) -> Result<Response, OpenSearchError> {
    let invalid = |what: String| {
        Err(OpenSearchError::new(
            StatusCode::BAD_GATEWAY,
            "invalid_extension_response",
            format!("extension `{id}` answered {what}"),
        ))
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
    // An extension answers on the console's origin: it may not set or
    // overwrite cookies (the console's session among them), and a page it
    // serves runs in an opaque origin (a CSP sandbox without
    // allow-same-origin), so its script cannot act with a signed-in
    // operator's console session or read the console's answers.
    headers.remove(header::SET_COOKIE);
    headers.append(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(EXTENSION_SANDBOX));
    Ok((status, headers, response.body).into_response())
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

    /// The answer as the client gets it, refusals included.
    fn into_http(id: &str, response: HttpResponse) -> Response {
        super::into_http(id, response).unwrap_or_else(IntoResponse::into_response)
    }

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

    #[test]
    fn an_extension_sets_no_cookie_and_its_pages_are_sandboxed() {
        let answer = into_http(
            "x",
            HttpResponse {
                status: 200,
                headers: vec![
                    ("set-cookie".into(), "warden_session=fixed; Path=/".into()),
                    ("content-type".into(), "text/html".into()),
                ],
                body: b"<script>fetch('/_warden/console/_session')</script>".to_vec(),
            },
        );
        assert_eq!(answer.status(), StatusCode::OK);
        assert!(answer.headers().get(header::SET_COOKIE).is_none());
        let csp: Vec<&str> = answer
            .headers()
            .get_all(header::CONTENT_SECURITY_POLICY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(csp, [EXTENSION_SANDBOX]);
        assert!(!EXTENSION_SANDBOX.contains("allow-same-origin"));
    }
}
