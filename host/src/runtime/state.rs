//! What one store (one invocation) carries: its WASI context, its resource
//! table, its limiter, who and what it runs for, and each capability's own
//! per-invocation context — handed to the capability modules as views
//! ([`CapabilityViews`]), so they never import this type.

use std::collections::BTreeSet;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::capabilities::cluster::{ClusterCtx, ClusterView};
use super::capabilities::files::{FilesCtx, GuardedView};
use super::capabilities::log::{LogBudget, LogView};
use super::capabilities::scheduler::{JobsCtx, JobsView};
use super::capabilities::{CapView, CapabilityViews};
use super::limits::MemoryLimiter;
use crate::capability::Capability;

/// Guest stdout/stderr kept per invocation; more than this traps the guest.
pub const STDIO_CAPACITY: usize = 1 << 20;

/// The data of one invocation's `Store`.
pub struct InvocationState {
    pub extension_id: Arc<str>,
    /// What the extension may use. Host functions check it on every call,
    /// not only at link time.
    pub grants: Arc<BTreeSet<Capability>>,
    /// The authenticated user; empty when anonymous.
    pub user: String,
    /// The request (or job run) id, in the audit log.
    pub request_id: String,
    pub cluster: ClusterCtx,
    pub jobs: JobsCtx,
    pub files: FilesCtx,
    /// What the guest may still write to the host log (records and stdio).
    pub log_budget: LogBudget,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    /// Epoch ticks seen while the guest was executing wasm.
    pub cpu_ticks_used: u64,
    pub cpu_ticks_budget: u64,
    /// Set when the CPU budget ran out.
    pub cpu_exceeded: bool,
}

impl InvocationState {
    pub fn is_granted(&self, capability: Capability) -> bool {
        self.grants.contains(&capability)
    }

    /// The view of one capability's context.
    fn view<'a, C>(
        extension: &'a Arc<str>,
        request_id: &'a str,
        granted: bool,
        ctx: &'a mut C,
    ) -> CapView<'a, C> {
        CapView { ctx, extension, request_id, granted }
    }
}

impl std::fmt::Debug for InvocationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvocationState")
            .field("extension_id", &self.extension_id)
            .field("grants", &self.grants)
            .field("request_id", &self.request_id)
            .field("cpu_ticks_used", &self.cpu_ticks_used)
            .finish_non_exhaustive()
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl CapabilityViews for InvocationState {
    fn log_view(&mut self) -> LogView<'_> {
        Self::view(&self.extension_id, &self.request_id, true, &mut self.log_budget)
    }

    fn files_view(&mut self) -> GuardedView<'_> {
        let files = self.files.clone();
        GuardedView::new(self.filesystem(), files)
    }

    fn cluster_view(&mut self) -> ClusterView<'_> {
        let granted = self.grants.contains(&Capability::Cluster);
        Self::view(&self.extension_id, &self.request_id, granted, &mut self.cluster)
    }

    fn jobs_view(&mut self) -> JobsView<'_> {
        let granted = self.grants.contains(&Capability::Scheduler);
        Self::view(&self.extension_id, &self.request_id, granted, &mut self.jobs)
    }
}
