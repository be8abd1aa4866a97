//! The REST layer: the only module that imports axum. Every surface lives
//! here, one file (or folder) each, composed in the one [`router`]:
//!
//! | path | file | envelope of errors |
//! |---|---|---|
//! | `/_extensions/{id}[/{*path}]` | [`extensions`] | OpenSearch |
//! | `/_warden/health` | [`health`] | OpenSearch |
//! | `/_warden/metrics` | [`metrics`] (Prometheus text) | OpenSearch |
//! | `/_warden/audit` | [`audit`] | OpenSearch |
//! | `/_warden/jobs/...` | [`jobs`] | OpenSearch |
//! | `/_warden/extensions/...` | [`lifecycle`] | OpenSearch |
//! | `/_warden/consents[/{id}]` | [`consents`] | OpenSearch |
//! | `/_warden/console/...` (outside the authentication middleware: the page, sign-in, sign-out) | [`console`] | OpenSearch |
//! | `/_plugins/_security/api/{internalusers,roles,rolesmapping,actiongroups}` | [`security::resources`] | security plugin |
//! | `/_plugins/_security/api/account`, `/_plugins/_security/authinfo`, `/_plugins/_security/whoami` | [`security::account`] | security plugin |
//! | `/_plugins/_security/api/generateonbehalfoftoken`, `/_plugins/_security/api/obo/token`, `/_warden/tokens/...` | [`security::obo`] | security plugin |
//! | `/_plugins/_security/api/apitokens` | [`security::api_tokens`] | security plugin |
//! | `/_warden/security/{_export,_import}` | [`security::transfer`] | security plugin |
//! | anything else: OpenSearch's document API | [`cluster`] | OpenSearch |
//!
//! Every route passes [`authenticate`] first; handlers take the [`Caller`]
//! it vouched for, parse bodies with [`json::JsonBody`] and return
//! `Result<_, OpenSearchError>` or `Result<_, SecurityApiError>` (both in
//! [`error`], with every domain error's conversion). [`serve`] is the
//! listener, with its connection limits.

mod audit;
mod authenticate;
pub mod caller;
mod cluster;
mod connections;
mod consents;
mod console;
pub mod error;
mod extensions;
mod health;
mod jobs;
pub mod json;
mod lifecycle;
mod metrics;
mod security;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, delete, get, post, put};

pub use caller::{Caller, RequestMeta};
pub use connections::{ServeLimits, serve};
pub use error::{OpenSearchError, SecurityApiError};

use crate::audit::AuditLog;
use crate::cluster::gateway::ClusterGateway;
use crate::extensions::lifecycle::Lifecycle;
use crate::registry::Registry;
use crate::runtime::session::Sessions;
use crate::scheduler::Scheduler;
use crate::security::Security;

/// Largest request body passed to an extension.
pub const MAX_BODY: usize = 10 << 20;

/// What every route shares.
#[derive(Debug)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub security: Arc<Security>,
    pub audit: Arc<AuditLog>,
    /// Extensions' cluster calls go here; `None` runs without a cluster.
    pub cluster: Option<Arc<ClusterGateway>>,
    /// Scheduled jobs; `None` runs without a scheduler.
    pub scheduler: Option<Arc<Scheduler>>,
    /// Installed extensions (install, approve, remove); `None`: only the
    /// extensions directory's.
    pub lifecycle: Option<Arc<Lifecycle>>,
    /// Builds invocation sessions (and mints their tokens).
    pub sessions: Arc<Sessions>,
    pub started: Instant,
    /// An authenticated request's body must arrive within this (a slow
    /// body would otherwise hold a connection and a handler forever).
    pub body_timeout: std::time::Duration,
}

/// Every route of the host, behind the authentication middleware.
pub fn router(state: Arc<AppState>) -> Router {
    use security::{account, api_tokens, obo, resources, transfer};
    // The console's sessions: in memory, shared by its sign-in routes and
    // the authentication middleware (which reads them from the request).
    let sessions = Arc::new(console::ConsoleSessions::new(console::ConsoleSettings::from_env(&|name| {
        std::env::var(name).ok()
    })));
    Router::new()
        // Extensions.
        .route("/_extensions/{id}", any(extensions::call))
        .route("/_extensions/{id}/", any(extensions::call))
        .route("/_extensions/{id}/{*path}", any(extensions::call))
        // Warden's own.
        .route("/_warden/health", get(health::health))
        .route("/_warden/metrics", get(metrics::scrape))
        .route("/_warden/audit", get(audit::query))
        .route("/_warden/jobs", get(jobs::list))
        .route("/_warden/jobs/{id}", get(jobs::show).delete(jobs::remove))
        .route("/_warden/jobs/{id}/_enable", post(jobs::enable))
        .route("/_warden/jobs/{id}/_disable", post(jobs::disable))
        .route("/_warden/jobs/{id}/_run", post(jobs::run_now))
        .route("/_warden/jobs/{id}/_owner", put(jobs::set_owner))
        .route("/_warden/jobs/{id}/runs", get(jobs::runs))
        .route(
            "/_warden/extensions",
            get(lifecycle::list)
                .post(lifecycle::install)
                .layer(DefaultBodyLimit::max(lifecycle::MAX_INSTALL_BODY)),
        )
        .route(
            "/_warden/consents",
            get(consents::list).post(consents::grant).delete(consents::revoke_matching),
        )
        .route("/_warden/consents/{id}", delete(consents::revoke))
        .route("/_warden/extensions/_diff", post(lifecycle::diff))
        .route("/_warden/extensions/{id}", get(lifecycle::show).delete(lifecycle::remove))
        .route("/_warden/extensions/{id}/_approve", post(lifecycle::approve))
        .route("/_warden/extensions/{id}/grants", put(lifecycle::set_grants))
        .route("/_warden/extensions/{id}/upgrade", delete(lifecycle::discard_upgrade))
        .route("/_warden/extensions/{id}/_check", get(lifecycle::check))
        .route("/_warden/tokens/_revoke", post(obo::revoke))
        .route("/_warden/tokens/_revocations", get(obo::revocations))
        .route("/_warden/tokens/_rotate_keys", post(obo::rotate_keys))
        .route("/_warden/security/_export", get(transfer::export))
        .route("/_warden/security/_import", put(transfer::import))
        // The security plugin's, on OpenSearch's paths.
        .route("/_plugins/_security/authinfo", get(account::authinfo).post(account::authinfo))
        .route("/_plugins/_security/whoami", get(account::whoami).post(account::whoami))
        .route("/_plugins/_security/api/account", get(account::show).put(account::change_password))
        .route("/_plugins/_security/api/generateonbehalfoftoken", post(obo::generate))
        .route("/_plugins/_security/api/obo/token", post(obo::generate))
        .route("/_plugins/_security/api/apitokens", get(api_tokens::list).post(api_tokens::create))
        .route("/_plugins/_security/api/apitokens/{id}", delete(api_tokens::delete))
        .route("/_plugins/_security/api/{resource}", any(resources::collection))
        .route("/_plugins/_security/api/{resource}/{name}", any(resources::entry))
        // Everything else: the cluster's document API.
        .fallback(cluster::call)
        .layer(from_fn_with_state(state.clone(), authenticate::authenticate))
        // The console's page and sign-in, added after the middleware so
        // they do not pass it (the page loads before anyone signs in).
        .merge(console::router(sessions.clone()))
        .layer(axum::Extension(sessions))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
