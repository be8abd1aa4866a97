//! `GET /_warden/health` (needs `cluster:monitor/health`): what is loaded,
//! with its grants and limits; what failed to load and why (for operators,
//! never shown to extension callers); which installed extensions wait for
//! approval; the scheduler's state.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::error::OpenSearchError;
use super::{AppState, Caller};

pub async fn health(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, OpenSearchError> {
    caller.require("cluster:monitor/health")?;
    let registry = &state.registry;
    let extensions: Vec<_> = registry
        .extensions()
        .iter()
        .map(|e| {
            json!({
                "id": e.id(),
                "version": e.manifest.version,
                "capabilities": e.manifest.capabilities.iter().map(|c| c.name()).collect::<Vec<_>>(),
                "serves_http": e.serves_http(),
                "runs_jobs": e.runs_jobs(),
                "limits": {
                    "memory_mib": e.limits.memory_bytes >> 20,
                    "cpu_ms": crate::time::millis(e.limits.cpu),
                    "timeout_ms": crate::time::millis(e.limits.timeout),
                    "max_concurrency": e.limits.max_concurrency,
                },
            })
        })
        .collect();
    let status = if registry.failed().is_empty() { "green" } else { "yellow" };
    Ok(Json(json!({
        "status": status,
        "uptime_ms": crate::time::millis(state.started.elapsed()),
        "extensions": extensions,
        "failed": registry.failed(),
        "pending": registry.pending(),
        "scheduler": state.scheduler.as_ref().map(|s| s.status()),
    })))
}
