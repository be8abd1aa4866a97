//! Everything no other route takes: the cluster's REST API on OpenSearch's
//! paths, for the caller's own roles (one gate; system indices refused),
//! through the same gateway as extensions' calls.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::OpenSearchError;
use super::{AppState, Caller};
use crate::cluster::gateway::GateError;

pub async fn call(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Result<Response, OpenSearchError> {
    let Some(gateway) = state.cluster.clone() else {
        return Err(OpenSearchError::new(StatusCode::NOT_FOUND, "not_found", "no such route"));
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let method = parts.method.clone();
    let Caller { user, meta, .. } = caller;
    // Store work (a large `_bulk`, a scan) blocks: it runs on the blocking
    // pool so the request executor keeps serving everyone else.
    let reply = tokio::task::spawn_blocking(move || {
        let body = (!body.is_empty()).then_some(&body[..]);
        gateway.call_as_user(&user, &meta.id, meta.remote, method.as_str(), &path, body)
    })
    .await
    .unwrap_or_else(|e| Err(GateError::Unavailable(format!("the cluster call did not complete: {e}"))))?;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if parts.method == Method::HEAD {
        return Ok(status.into_response());
    }
    Ok((status, axum::Json(reply.body)).into_response())
}
