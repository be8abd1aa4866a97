//! `GET /_warden/metrics` (needs `cluster:monitor/warden/metrics`, which
//! OpenSearch's `cluster_monitor` action group holds): every counter and
//! histogram of [`crate::metrics`] in Prometheus' text format, for a
//! scraper with its own credentials (an API token limited to that one
//! permission is the usual way).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Caller;
use super::error::OpenSearchError;

/// The cluster permission a scrape needs.
pub const PERMISSION: &str = "cluster:monitor/warden/metrics";

pub async fn scrape(caller: Caller) -> Result<Response, OpenSearchError> {
    caller.require(PERMISSION)?;
    let text = crate::metrics::render().map_err(|e| {
        OpenSearchError::new(StatusCode::INTERNAL_SERVER_ERROR, "metrics_exception", e.to_string())
    })?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}
