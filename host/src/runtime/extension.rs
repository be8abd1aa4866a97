//! One loaded extension: its manifest, its checked and linked component
//! (`InstancePre`), its limits and its concurrency slots; and the invocation
//! path — a fresh `Store` per call, limits applied, handler called, dropped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, InstancePre};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::bindings::{http_handler, job_runner};
use super::capabilities::log::{LogBudget, LogRate};
use super::capabilities::{self, classify_import, files};
use super::limits::{Limits, MAX_HANDLES_PER_STORE, MemoryLimitExceeded, MemoryLimiter};
use super::session::Session;
use super::state::{InvocationState, STDIO_CAPACITY};
use super::{CacheOutcome, PoolReservation, PoolSlots, Runtime, RuntimeError};
use crate::capability::{Capability, ImportClass};
use crate::error::{ErrorKind, HasKind};
use crate::manifest::Manifest;
use crate::metrics::{Kind, Outcome};

const HTTP_HANDLER: &str = "warden:extension/http-handler";
const JOB_RUNNER: &str = "warden:extension/job-runner";

/// Why an extension was not loaded. Each names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Component(#[from] RuntimeError),
    #[error("{path}: refused, it imports what extension `{id}` is not granted: {}", .offenders.join("; "))]
    NotGranted { path: PathBuf, id: String, offenders: Vec<String> },
    /// A grant beyond what the manifest requests (and so was linked).
    #[error("extension `{id}` does not request the `{capability}` capability, so it cannot be granted")]
    GrantBeyondRequest { id: String, capability: Capability },
    #[error(
        "{path}: exports nothing Warden can call (needs `{HTTP_HANDLER}@0.1.x` or `{JOB_RUNNER}@0.1.x`; \
         it exports: {exports})"
    )]
    NoKnownExports { path: PathBuf, exports: String },
    #[error("{path}: its `{export}` export does not match the Warden contract: {message}")]
    BadExport { path: PathBuf, export: &'static str, message: String },
    #[error("{path}: memory limit {requested} MiB is above this host's maximum of {max} MiB")]
    MemoryAboveMaximum { path: PathBuf, requested: u64, max: u64 },
    #[error("{path}: cannot link: {message}")]
    Link { path: PathBuf, message: String },
    #[error(transparent)]
    Files(#[from] files::FilesError),
    #[error("{path}: refused, extension `{id}` {source}")]
    PoolFull { path: PathBuf, id: String, source: super::PoolFull },
}

impl HasKind for ExtensionError {
    fn kind(&self) -> ErrorKind {
        match self {
            ExtensionError::Files(e) => e.kind(),
            ExtensionError::PoolFull { .. } => ErrorKind::Busy,
            ExtensionError::Component(_) | ExtensionError::Link { .. } => ErrorKind::Internal,
            ExtensionError::Manifest(_)
            | ExtensionError::NotGranted { .. }
            | ExtensionError::GrantBeyondRequest { .. }
            | ExtensionError::NoKnownExports { .. }
            | ExtensionError::BadExport { .. }
            | ExtensionError::MemoryAboveMaximum { .. } => ErrorKind::Invalid,
        }
    }
}

/// Why an invocation produced no response from the guest.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("extension `{id}` is busy ({max} invocations running); retry shortly")]
    Busy { id: String, max: u32, retry_after: Duration },
    #[error("extension `{id}` used more than its {}ms of CPU and was stopped", .limit.as_millis())]
    CpuDeadline { id: String, limit: Duration },
    #[error("extension `{id}` did not finish within {}ms and was stopped", .limit.as_millis())]
    Timeout { id: String, limit: Duration },
    #[error("extension `{id}` exceeded its memory limit of {} MiB and was stopped", .limit_bytes >> 20)]
    MemoryLimit { id: String, limit_bytes: u64 },
    #[error("extension `{id}` trapped: {message}")]
    Trap { id: String, message: String },
    #[error("extension `{id}` failed: {message}")]
    Failed { id: String, message: String },
    #[error("extension `{id}` does not {what}")]
    NotExported { id: String, what: &'static str },
}

impl HasKind for InvokeError {
    fn kind(&self) -> ErrorKind {
        match self {
            InvokeError::Busy { .. } => ErrorKind::Busy,
            InvokeError::CpuDeadline { .. } | InvokeError::Timeout { .. } => ErrorKind::Timeout,
            InvokeError::MemoryLimit { .. } | InvokeError::Trap { .. } | InvokeError::Failed { .. } => {
                ErrorKind::Internal
            }
            InvokeError::NotExported { .. } => ErrorKind::NotFound,
        }
    }
}

/// What a job run is told: which job, which run of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    pub job_id: String,
    pub job_name: String,
    pub params: String,
    /// When the run was due (milliseconds since the epoch).
    pub scheduled_at: u64,
    /// 1 for the first attempt of this run, more for retries.
    pub attempt: u32,
}

/// What a job runner answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Success(String),
    Failure(String),
}

/// The error the epoch callback stops a guest with.
#[derive(Debug, thiserror::Error)]
#[error("CPU deadline exceeded")]
struct CpuDeadlineExceeded;

impl HasKind for CpuDeadlineExceeded {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Timeout
    }
}

/// A REST request for an extension's handler.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: String,
    /// Below the extension's prefix, starting with `/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The authenticated user; empty when anonymous.
    pub user: String,
}

/// What the handler answered (not yet validated as HTTP).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A loaded, checked, linked extension, ready to invoke.
pub struct LoadedExtension {
    pub manifest: Manifest,
    pub limits: Limits,
    pub cache: CacheOutcome,
    id: Arc<str>,
    /// The capabilities granted now: at most those linked (the manifest's),
    /// narrowed by the operator without a reload; every host call checks it.
    grants: RwLock<Arc<BTreeSet<Capability>>>,
    pre: InstancePre<InvocationState>,
    http: Option<http_handler::GuestIndices>,
    job: Option<job_runner::GuestIndices>,
    slots: Semaphore,
    /// With `files`: the directory and its disk quota, shared by all its
    /// invocations.
    files: Option<files::PreparedFiles>,
    /// Its share of the pool: `max_concurrency` instances' worth, so its
    /// invocations (requests and job runs share `slots`) always find room.
    pool: PoolReservation,
    /// Its log rate, shared by all its invocations.
    log_rate: Arc<LogRate>,
    /// Its invocation counters and latency, resolved once.
    metrics: crate::metrics::ExtensionMetrics,
}

impl std::fmt::Debug for LoadedExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedExtension")
            .field("id", &self.id)
            .field("version", &self.manifest.version)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

impl LoadedExtension {
    /// Loads the extension in `dir`: manifest, component (via the cache),
    /// capability check, exports check, linking.
    pub fn load(runtime: &Runtime, dir: &Path, data_dir: &Path) -> Result<LoadedExtension, ExtensionError> {
        let manifest = Manifest::load(dir)?;
        let bytes = std::fs::read(&manifest.component)
            .map_err(|source| RuntimeError::Read { path: manifest.component.clone(), source })?;
        LoadedExtension::from_bytes(runtime, manifest, &bytes, data_dir)
    }

    /// Loads an extension whose manifest is parsed and whose component is
    /// in memory (an installed extension: both come from the store); the
    /// same checks as [`LoadedExtension::load`], in the same order.
    pub fn from_bytes(
        runtime: &Runtime,
        manifest: Manifest,
        bytes: &[u8],
        data_dir: &Path,
    ) -> Result<LoadedExtension, ExtensionError> {
        let path = manifest.component.clone();
        let limits = runtime.config().default_limits.with_overrides(&manifest.limits);
        let max = runtime.config().max_memory_bytes;
        if limits.memory_bytes > max {
            return Err(ExtensionError::MemoryAboveMaximum {
                path,
                requested: limits.memory_bytes >> 20,
                max: max >> 20,
            });
        }
        let (component, cache) = runtime.load_component_bytes(&path, bytes)?;
        check_imports(runtime, &component, &manifest)?;

        let linker = capabilities::linker_for::<InvocationState>(runtime.engine(), &manifest.capabilities)
            .map_err(|e| ExtensionError::Link { path: path.clone(), message: format!("{e:#}") })?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| ExtensionError::Link { path: path.clone(), message: format!("{e:#}") })?;
        let http =
            export_indices(runtime, &component, &pre, &path, HTTP_HANDLER, http_handler::GuestIndices::new)?;
        let job =
            export_indices(runtime, &component, &pre, &path, JOB_RUNNER, job_runner::GuestIndices::new)?;
        if http.is_none() && job.is_none() {
            let exports = component
                .component_type()
                .exports(runtime.engine())
                .map(|(name, _)| name.to_owned())
                .collect::<Vec<_>>();
            let exports = if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") };
            return Err(ExtensionError::NoKnownExports { path, exports });
        }
        let pool = runtime.reserve(PoolSlots::per_instance(&component), limits.max_concurrency).map_err(
            |source| ExtensionError::PoolFull { path: path.clone(), id: manifest.id.clone(), source },
        )?;

        let files = match manifest.capabilities.contains(&Capability::Files) {
            true => Some(files::prepare(data_dir, &manifest.id, limits.files_bytes)?),
            false => None,
        };
        let manifest_id = manifest.id.clone();
        Ok(LoadedExtension {
            id: manifest.id.as_str().into(),
            grants: RwLock::new(Arc::new(manifest.capabilities.clone())),
            slots: Semaphore::new(limits.max_concurrency as usize),
            manifest,
            limits,
            cache,
            pre,
            http,
            job,
            files,
            pool,
            log_rate: Arc::new(LogRate::default()),
            metrics: crate::metrics::ExtensionMetrics::new(&manifest_id),
        })
    }

    /// The capabilities granted now (a snapshot for one invocation).
    pub fn grants(&self) -> Arc<BTreeSet<Capability>> {
        self.grants.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Narrows (or widens back) the granted capabilities, for the next
    /// invocation on; an invocation under way keeps its snapshot. Only what
    /// the manifest requested (and so was linked) can be granted.
    pub fn set_grants(&self, granted: BTreeSet<Capability>) -> Result<(), ExtensionError> {
        if let Some(beyond) = granted.iter().find(|c| !self.manifest.capabilities.contains(c)) {
            return Err(ExtensionError::GrantBeyondRequest {
                id: self.manifest.id.clone(),
                capability: *beyond,
            });
        }
        *self.grants.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(granted);
        Ok(())
    }

    /// The pool slots this extension holds reserved.
    pub fn pool_share(&self) -> PoolSlots {
        self.pool.slots()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn serves_http(&self) -> bool {
        self.http.is_some()
    }

    pub fn runs_jobs(&self) -> bool {
        self.job.is_some()
    }

    /// Calls the REST handler in a fresh instance.
    pub async fn handle_http(
        &self,
        request: HttpRequest,
        session: Session,
    ) -> Result<HttpResponse, InvokeError> {
        let indices = self.http.as_ref().ok_or_else(|| self.not_exported("serve REST requests"))?;
        let user = request.user.clone();
        let request = http_handler::Request {
            method: request.method,
            path: request.path,
            query: request
                .query
                .into_iter()
                .map(|(name, value)| super::bindings::types::QueryParam { name, value })
                .collect(),
            headers: request
                .headers
                .into_iter()
                .map(|(name, value)| super::bindings::types::Header { name, value })
                .collect(),
            body: request.body,
            user: request.user,
        };
        let response = self
            .invoke(Kind::Http, user, session, async |store, pre| {
                let instance = pre.instantiate_async(&mut *store).await?;
                let guest = indices.load(&mut *store, &instance)?;
                guest.call_handle(&mut *store, &request).await
            })
            .await?;
        Ok(HttpResponse {
            status: response.status,
            headers: response.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: response.body,
        })
    }

    /// Runs the job runner in a fresh instance.
    pub async fn run_job(
        &self,
        user: String,
        session: Session,
        context: JobContext,
    ) -> Result<JobOutcome, InvokeError> {
        let indices = self.job.as_ref().ok_or_else(|| self.not_exported("run jobs"))?;
        let context = job_runner::JobContext {
            job_id: context.job_id,
            job_name: context.job_name,
            params: context.params,
            scheduled_at: context.scheduled_at,
            attempt: context.attempt,
        };
        let outcome = self
            .invoke(Kind::Job, user, session, async |store, pre| {
                let instance = pre.instantiate_async(&mut *store).await?;
                let guest = indices.load(&mut *store, &instance)?;
                guest.call_run(&mut *store, &context).await
            })
            .await?;
        Ok(match outcome {
            job_runner::Outcome::Success(message) => JobOutcome::Success(message),
            job_runner::Outcome::Failure(message) => JobOutcome::Failure(message),
        })
    }

    fn not_exported(&self, what: &'static str) -> InvokeError {
        InvokeError::NotExported { id: self.id.to_string(), what }
    }

    /// Takes a concurrency slot (waiting at most the queue timeout), builds a
    /// fresh store with every limit, runs `call` under the wall-clock
    /// timeout, logs the guest's stdio and names any failure.
    async fn invoke<R>(
        &self,
        kind: Kind,
        user: String,
        session: Session,
        call: impl AsyncFnOnce(&mut Store<InvocationState>, &InstancePre<InvocationState>) -> wasmtime::Result<R>,
    ) -> Result<R, InvokeError> {
        let started = std::time::Instant::now();
        let result = self.invoke_counted(user, session, call).await;
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(InvokeError::Busy { .. }) => Outcome::Busy,
            Err(InvokeError::CpuDeadline { .. }) => Outcome::CpuLimit,
            Err(InvokeError::Timeout { .. }) => Outcome::Timeout,
            Err(InvokeError::MemoryLimit { .. }) => Outcome::MemoryLimit,
            Err(InvokeError::Trap { .. }) => Outcome::Trap,
            // Not exported is answered before any invocation: never here.
            Err(InvokeError::Failed { .. } | InvokeError::NotExported { .. }) => Outcome::Failed,
        };
        self.metrics.invocation(kind, outcome, started.elapsed());
        result
    }

    /// [`LoadedExtension::invoke`]'s work, whose outcome it counts.
    async fn invoke_counted<R>(
        &self,
        user: String,
        session: Session,
        call: impl AsyncFnOnce(&mut Store<InvocationState>, &InstancePre<InvocationState>) -> wasmtime::Result<R>,
    ) -> Result<R, InvokeError> {
        // Fast path without a timer; wait (bounded) only when all slots are taken.
        let _slot = match self.slots.try_acquire() {
            Ok(permit) => permit,
            Err(_) => match tokio::time::timeout(self.limits.queue_timeout, self.slots.acquire()).await {
                Ok(Ok(permit)) => permit,
                // Timed out waiting, or the semaphore was closed (never done).
                Ok(Err(_)) | Err(_) => {
                    return Err(InvokeError::Busy {
                        id: self.id.to_string(),
                        max: self.limits.max_concurrency,
                        retry_after: Duration::from_secs(1),
                    });
                }
            },
        };
        let mut store = self.new_store(user, session)?;
        let outcome = tokio::time::timeout(self.limits.timeout, call(&mut store, &self.pre)).await;
        self.log_stdio(store.data_mut());
        store.data().log_budget.report(&self.id);
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.classify(store.data(), error)),
            Err(_elapsed) => {
                Err(InvokeError::Timeout { id: self.id.to_string(), limit: self.limits.timeout })
            }
        }
    }

    fn new_store(&self, user: String, session: Session) -> Result<Store<InvocationState>, InvokeError> {
        let stdout = MemoryOutputPipe::new(STDIO_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDIO_CAPACITY);
        // No args, no environment, no stdin, no sockets (not linked).
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        if let Some(prepared) = &self.files {
            files::preopen(&mut wasi, &prepared.dir).map_err(|e| InvokeError::Failed {
                id: self.id.to_string(),
                message: format!("cannot open its files directory: {e:#}"),
            })?;
        }
        let mut table = wasmtime::component::ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES_PER_STORE);
        let Session { request_id, grants, cluster, jobs } = session;
        let state = InvocationState {
            extension_id: self.id.clone(),
            grants,
            user,
            request_id,
            cluster,
            jobs,
            files: files::FilesCtx { quota: self.files.as_ref().map(|f| f.quota.clone()) },
            wasi: wasi.build(),
            table,
            limiter: MemoryLimiter::new(self.limits.memory_bytes),
            stdout,
            stderr,
            log_budget: LogBudget::new(self.log_rate.clone()),
            cpu_ticks_used: 0,
            cpu_ticks_budget: self.limits.cpu_ticks(),
            cpu_exceeded: false,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        // Guest-made handles (`resource.new`, handles to host resources) are
        // host memory outside the memory cap: bounded like the host table.
        store.set_max_component_handles(MAX_HANDLES_PER_STORE);
        // The callback runs each time the epoch passes the deadline while
        // wasm executes, i.e. about once per tick of guest CPU time: a guest
        // waiting in a host call sees one callback however long it waited.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            state.cpu_ticks_used += 1;
            if state.cpu_ticks_used >= state.cpu_ticks_budget {
                state.cpu_exceeded = true;
                return Err(CpuDeadlineExceeded.into());
            }
            // Yield so the executor can run other work and the wall-clock
            // timeout can fire even while the guest spins.
            Ok(UpdateDeadline::Yield(1))
        });
        Ok(store)
    }

    /// Names what stopped the guest, from what the store saw.
    fn classify(&self, state: &InvocationState, error: wasmtime::Error) -> InvokeError {
        let id = self.id.to_string();
        tracing::warn!(extension = &*self.id, "invocation failed: {error:?}");
        if state.limiter.exceeded || error.downcast_ref::<MemoryLimitExceeded>().is_some() {
            return InvokeError::MemoryLimit { id, limit_bytes: self.limits.memory_bytes };
        }
        if state.cpu_exceeded || error.downcast_ref::<CpuDeadlineExceeded>().is_some() {
            return InvokeError::CpuDeadline { id, limit: self.limits.cpu };
        }
        if too_many_handles(&error) {
            return InvokeError::Failed {
                id,
                message: format!(
                    "it held too many resources at once: at most {MAX_HANDLES_PER_STORE} host resource \
                     entries (a pollable takes two) and {MAX_HANDLES_PER_STORE} component handles per \
                     invocation; it was stopped, drop handles it no longer needs"
                ),
            };
        }
        if let Some(trap) = error.downcast_ref::<Trap>() {
            let message = match (trap, panic_message(&state.stderr.contents())) {
                (Trap::UnreachableCodeReached, Some(panic)) => format!("{trap} after a panic: {panic}"),
                (Trap::StackOverflow, _) => format!("stack overflow ({trap})"),
                _ => trap.to_string(),
            };
            return InvokeError::Trap { id, message };
        }
        InvokeError::Failed { id, message: error.root_cause().to_string() }
    }

    /// Guest stdout/stderr, line by line, into the host log, within the
    /// same log budget as its log records.
    fn log_stdio(&self, state: &mut InvocationState) {
        for (stream, pipe) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
            let bytes = pipe.contents();
            if bytes.is_empty() {
                continue;
            }
            for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.trim().is_empty()) {
                if !state.log_budget.admit(line.len()) {
                    continue;
                }
                let line = super::capabilities::log::truncate(line, super::capabilities::log::MAX_MESSAGE);
                tracing::info!(target: "warden::guest", extension = &*self.id, stream, "{line}");
            }
        }
    }
}

/// Whether `error` is a refused handle allocation: the host resource table
/// (`ResourceTableError::Full`) or the store's component handle limit (which
/// wasmtime reports only as a message).
fn too_many_handles(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        ) || cause.to_string().contains("store handle limit exceeded")
    })
}

/// The message of a Rust panic in guest stderr: the line after
/// `thread '...' panicked at <file>:<line>:<col>:`.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let after = text.rsplit_once(" panicked at ")?.1;
    let message = after.lines().nth(1)?.trim();
    (!message.is_empty()).then(|| super::capabilities::log::truncate(message, 512).to_owned())
}

/// Refuses the component unless every import is baseline or granted.
fn check_imports(
    runtime: &Runtime,
    component: &Component,
    manifest: &Manifest,
) -> Result<(), ExtensionError> {
    let mut offenders = Vec::new();
    for (name, _) in component.component_type().imports(runtime.engine()) {
        match classify_import(name) {
            ImportClass::Baseline | ImportClass::Filesystem => {}
            ImportClass::Needs(Capability::Network) => {
                offenders.push(format!("`{name}` needs `network`, which this host does not provide yet"))
            }
            ImportClass::Needs(capability) if manifest.capabilities.contains(&capability) => {}
            ImportClass::Needs(capability) => {
                offenders.push(format!("`{name}` needs the `{capability}` capability"))
            }
            ImportClass::Unknown => offenders.push(format!("`{name}` is not an interface Warden provides")),
        }
    }
    if offenders.is_empty() {
        Ok(())
    } else {
        Err(ExtensionError::NotGranted {
            path: manifest.component.clone(),
            id: manifest.id.clone(),
            offenders,
        })
    }
}

/// The indices of an export interface, `None` if the component does not
/// export it, an error if it does but with the wrong shape.
fn export_indices<I>(
    runtime: &Runtime,
    component: &Component,
    pre: &InstancePre<InvocationState>,
    path: &Path,
    export: &'static str,
    new: fn(&InstancePre<InvocationState>) -> wasmtime::Result<I>,
) -> Result<Option<I>, ExtensionError> {
    let exported = component
        .component_type()
        .exports(runtime.engine())
        .any(|(name, _)| name.strip_prefix(export).is_some_and(|v| v.starts_with("@0.1.")));
    if !exported {
        return Ok(None);
    }
    new(pre).map(Some).map_err(|e| ExtensionError::BadExport {
        path: path.to_owned(),
        export,
        message: format!("{e:#}"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn panic_messages_are_found_in_stderr() {
        let stderr = b"some output\nthread '<unnamed>' panicked at src/lib.rs:13:9:\nboom: it broke\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(super::panic_message(stderr).as_deref(), Some("boom: it broke"));
        assert_eq!(super::panic_message(b"no panic here\n"), None);
    }
}
