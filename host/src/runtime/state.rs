//! What one store (one invocation) carries: its WASI context, its resource
//! table, its limiter, and who and what it runs for.

use std::collections::BTreeSet;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::MemoryLimiter;
use crate::capability::Capability;

/// Guest stdout/stderr kept per invocation; more than this traps the guest.
pub const STDIO_CAPACITY: usize = 1 << 20;

/// Who an invocation runs for and what it may use. Host functions check it
/// on every call, not only at link time.
#[derive(Debug, Clone)]
pub struct InvocationContext {
    pub extension_id: Arc<str>,
    pub grants: Arc<BTreeSet<Capability>>,
    /// The authenticated user; empty when anonymous.
    pub user: String,
    pub session: super::capabilities::cluster::Session,
}

impl InvocationContext {
    pub fn is_granted(&self, capability: Capability) -> bool {
        self.grants.contains(&capability)
    }
}

/// The data of one invocation's `Store`.
pub struct InvocationState {
    pub context: InvocationContext,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    /// The extension's disk quota, with the `files` grant.
    pub files_quota: Option<Arc<super::capabilities::files::FilesQuota>>,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    /// What the guest may still write to the host log (records and stdio).
    pub log_budget: super::capabilities::log::LogBudget,
    /// Epoch ticks seen while the guest was executing wasm.
    pub cpu_ticks_used: u64,
    pub cpu_ticks_budget: u64,
    /// Set when the CPU budget ran out.
    pub cpu_exceeded: bool,
}

impl std::fmt::Debug for InvocationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvocationState")
            .field("context", &self.context)
            .field("cpu_ticks_used", &self.cpu_ticks_used)
            .finish_non_exhaustive()
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
