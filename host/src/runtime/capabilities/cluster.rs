//! `warden:extension/cluster` (grant: `cluster`).
//!
//! The contract is linked for extensions granted `cluster`. The host side —
//! OBO token injection and the two gates — arrives with the OBO issue; until
//! then every call answers a typed `unavailable` error, never a fake success.

use wasmtime::component::{HasSelf, Linker};

use super::not_granted;
use crate::capability::Capability;
use crate::runtime::bindings::{cluster, types};
use crate::runtime::state::InvocationState;

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
        tracing::debug!(
            extension = &*self.context.extension_id,
            method = request.method,
            path = request.path,
            "cluster call refused: no cluster connection configured"
        );
        Ok(Err(types::Error::Unavailable(
            "this Warden host has no cluster connection yet; cluster calls are not performed".into(),
        )))
    }
}
