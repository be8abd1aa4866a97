//! `GET /_warden/audit?category=&user=&extension=&job=&from=&to=&size=`:
//! the audit log, newest first; needs `restapi:admin/audit` (security
//! managers and all_access).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::error::OpenSearchError;
use super::{AppState, Caller};
use crate::audit::Filter;

pub async fn query(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(filter): Query<Filter>,
) -> Result<Json<Value>, OpenSearchError> {
    caller.require("restapi:admin/audit")?;
    // File reads: on the blocking pool, not the request executor, two at a
    // time (a query may read every retained file).
    static QUERIES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let Ok(_permit) = QUERIES.acquire().await else {
        return Err(OpenSearchError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the audit log is closing",
        ));
    };
    let audit = state.audit.clone();
    let events = tokio::task::spawn_blocking(move || audit.query(&filter)).await.map_err(|e| {
        OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "audit_unavailable", e.to_string())
    })??;
    Ok(Json(json!({ "total": events.len(), "events": events })))
}
