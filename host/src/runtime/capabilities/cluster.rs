//! `warden:extension/cluster` (grant: `cluster`).
//!
//! Linked for extensions granted `cluster`. Each call goes to the
//! invocation's [`ClusterAccess`] (the host's gateway) together with the
//! invocation's OBO token, which the host minted and the guest never sees.
//! An invocation without cluster access answers a typed `unavailable`.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::not_granted;
use crate::capability::Capability;
use crate::runtime::bindings::{cluster, types};
use crate::runtime::state::InvocationState;

/// Performs an extension's cluster call: token check, gates, execution.
pub trait ClusterAccess: Send + Sync + std::fmt::Debug {
    fn call(
        &self,
        extension: &str,
        request_id: &str,
        token: Option<&str>,
        request: &cluster::Request,
    ) -> Result<cluster::Response, types::Error>;
}

/// What an invocation carries for its host calls.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub request_id: String,
    /// The OBO token for this invocation (none when anonymous).
    pub token: Option<String>,
    pub cluster: Option<Arc<dyn ClusterAccess>>,
    /// The scheduler and who jobs registered now run as (extensions granted
    /// `scheduler` only).
    pub jobs: Option<super::scheduler::JobSession>,
}

pub fn link(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    cluster::add_to_linker::<_, HasSelf<InvocationState>>(linker, |s| s)
}

impl cluster::Host for InvocationState {
    async fn call(
        &mut self,
        request: cluster::Request,
    ) -> wasmtime::Result<Result<cluster::Response, types::Error>> {
        if !self.context.is_granted(Capability::Cluster) {
            return Ok(Err(not_granted(Capability::Cluster)));
        }
        let session = &self.context.session;
        let Some(access) = session.cluster.clone() else {
            return Ok(Err(types::Error::Unavailable("no cluster is configured for this invocation".into())));
        };
        let (extension, request_id) = (self.context.extension_id.clone(), session.request_id.clone());
        let token = session.token.clone();
        // Store work blocks: it runs on the blocking pool, so the executor
        // keeps serving, and the invocation's wall-clock timeout (which
        // wraps this await) still stops a guest waiting on a slow call.
        let call = tokio::task::spawn_blocking(move || {
            access.call(&extension, &request_id, token.as_deref(), &request)
        });
        Ok(call.await.unwrap_or_else(|e| {
            Err(types::Error::Unavailable(format!("the cluster call did not complete: {e}")))
        }))
    }
}
