//! Host capabilities, one module per WIT interface group, in the manner of
//! Spin's factors: each module owns its linker wiring, its per-invocation
//! setup and its checks.
//!
//! | module | interfaces | grant |
//! |---|---|---|
//! | [`wasi`] | wasi:io, clocks, random, cli (empty env), filesystem (no dirs) | baseline |
//! | [`log`] | warden:extension/log, types | baseline |
//! | [`cluster`] | warden:extension/cluster | `cluster` |
//! | [`scheduler`] | warden:extension/scheduler | `scheduler` |
//! | [`files`] | a private directory preopened as `/data` | `files` |
//!
//! Only granted interfaces are linked, so a component importing anything
//! else cannot even be instantiated; host functions check the grant again
//! on every call.

pub mod cluster;
pub mod files;
pub mod log;
pub mod scheduler;
pub mod wasi;

use std::collections::BTreeSet;

use wasmtime::component::Linker;

use super::state::InvocationState;
use crate::capability::Capability;

/// Builds the linker for an extension holding `grants`.
pub fn linker_for(
    engine: &wasmtime::Engine,
    grants: &BTreeSet<Capability>,
) -> wasmtime::Result<Linker<InvocationState>> {
    let mut linker = Linker::new(engine);
    wasi::link(&mut linker)?;
    log::link(&mut linker)?;
    if grants.contains(&Capability::Cluster) {
        cluster::link(&mut linker)?;
    }
    if grants.contains(&Capability::Scheduler) {
        scheduler::link(&mut linker)?;
    }
    Ok(linker)
}

/// The `warden:extension/types` error a host function returns when the
/// capability behind it is not granted (reachable only if the linker and the
/// grant ever disagree: the second check at call time).
pub(crate) fn not_granted(capability: Capability) -> super::bindings::types::Error {
    super::bindings::types::Error::Denied(format!(
        "the `{capability}` capability is not granted to this extension"
    ))
}
