//! The sandbox: one wasmtime [`Engine`] shared by every extension, tuned for
//! a fresh instance per invocation (pooling allocator, epoch interruption),
//! plus the compile cache and the epoch ticker that drives CPU deadlines.

pub mod bindings;
pub mod cache;
pub mod capabilities;
pub mod extension;
pub mod limits;
pub mod session;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use self::cache::{CacheOutcome, CompileCache};
pub(crate) use self::capabilities::log::truncate;
pub use self::extension::{
    ExtensionError, HttpRequest, HttpResponse, InvokeError, JobContext, JobOutcome, LoadedExtension,
};
pub use self::limits::Limits;

/// Settings for the engine that every extension shares.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Component instances alive at once across all extensions.
    pub max_instances: u32,
    /// Largest linear memory any extension may be given, in bytes.
    pub max_memory_bytes: u64,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Default limits for extensions that do not set their own.
    pub default_limits: Limits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 1_000,
            max_memory_bytes: 1 << 30,
            cache_dir: None,
            default_limits: Limits::default(),
        }
    }
}

/// Why the engine could not be built or a component not compiled.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a WebAssembly file (no `\\0asm` header)")]
    NotWasm { path: PathBuf },
    #[error(
        "{path}: a core WebAssembly module, not a component; build with `--target wasm32-wasip2` \
         or wrap it with `wasm-tools component new`"
    )]
    CoreModule { path: PathBuf },
    #[error("{path}: invalid component: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: refused, it needs more than this host allows one component: {message}")]
    OverPoolLimits { path: PathBuf, message: String },
}

impl crate::error::HasKind for RuntimeError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            RuntimeError::Engine(_) => ErrorKind::Internal,
            RuntimeError::Read { .. } => ErrorKind::NotFound,
            RuntimeError::NotWasm { .. }
            | RuntimeError::CoreModule { .. }
            | RuntimeError::Invalid { .. }
            | RuntimeError::OverPoolLimits { .. } => ErrorKind::Invalid,
        }
    }
}

impl crate::error::HasKind for PoolFull {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Busy
    }
}

/// The shared engine, its compile cache and its epoch ticker.
#[derive(Debug)]
pub struct Runtime {
    engine: Engine,
    config: RuntimeConfig,
    cache: Option<CompileCache>,
    /// Pool slots the loaded extensions have reserved.
    reserved: Arc<Mutex<PoolSlots>>,
    _ticker: EpochTicker,
}

/// Slots of the pooling allocator, by kind. Used both for the pool's totals
/// and for what one extension reserves of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolSlots {
    pub component_instances: u64,
    pub core_instances: u64,
    pub memories: u64,
    pub tables: u64,
    /// Async fiber stacks: one per invocation running.
    pub stacks: u64,
}

impl PoolSlots {
    /// The slots of the pool built for `max_instances` component instances.
    pub fn pool_totals(max_instances: u32) -> PoolSlots {
        let n = u64::from(max_instances);
        PoolSlots {
            component_instances: n,
            core_instances: n * u64::from(limits::MAX_CORE_INSTANCES_PER_COMPONENT),
            memories: n * u64::from(limits::MAX_MEMORIES_PER_COMPONENT),
            tables: n * u64::from(limits::MAX_TABLES_PER_COMPONENT),
            stacks: n,
        }
    }

    /// What one instance of `component` holds at most: its exact memories
    /// and tables when wasmtime can count them statically, the per-component
    /// maxima otherwise (core instances are always taken at their maximum).
    pub fn per_instance(component: &Component) -> PoolSlots {
        let required = component.resources_required();
        PoolSlots {
            component_instances: 1,
            core_instances: u64::from(limits::MAX_CORE_INSTANCES_PER_COMPONENT),
            memories: required
                .as_ref()
                .map_or(u64::from(limits::MAX_MEMORIES_PER_COMPONENT), |r| u64::from(r.num_memories)),
            tables: required
                .as_ref()
                .map_or(u64::from(limits::MAX_TABLES_PER_COMPONENT), |r| u64::from(r.num_tables)),
            stacks: 1,
        }
    }

    /// `self` × `n` (saturating).
    pub fn times(self, n: u32) -> PoolSlots {
        let n = u64::from(n);
        PoolSlots {
            component_instances: self.component_instances.saturating_mul(n),
            core_instances: self.core_instances.saturating_mul(n),
            memories: self.memories.saturating_mul(n),
            tables: self.tables.saturating_mul(n),
            stacks: self.stacks.saturating_mul(n),
        }
    }

    fn fields(&self) -> [(&'static str, u64); 5] {
        [
            ("component instances", self.component_instances),
            ("core instances", self.core_instances),
            ("memories", self.memories),
            ("tables", self.tables),
            ("stacks", self.stacks),
        ]
    }

    fn zip(self, other: PoolSlots, f: impl Fn(u64, u64) -> u64) -> PoolSlots {
        PoolSlots {
            component_instances: f(self.component_instances, other.component_instances),
            core_instances: f(self.core_instances, other.core_instances),
            memories: f(self.memories, other.memories),
            tables: f(self.tables, other.tables),
            stacks: f(self.stacks, other.stacks),
        }
    }
}

/// Why an extension's share of the pool could not be reserved: names the
/// first kind of slot that does not fit, with the numbers.
#[derive(Debug, thiserror::Error)]
#[error(
    "needs {needed} pooled {kind} ({per_instance} per instance × limits.max_concurrency {concurrency}) \
     but only {free} of the pool's {total} are free ({reserved} reserved by extensions loaded before it); \
     lower limits.max_concurrency (one extension cannot starve the others), or give the host a bigger pool \
     with `warden serve --max-instances`"
)]
pub struct PoolFull {
    pub kind: &'static str,
    pub per_instance: u64,
    pub concurrency: u32,
    pub needed: u64,
    pub free: u64,
    pub total: u64,
    pub reserved: u64,
}

/// One extension's share of the pool, given back when it is dropped (an
/// extension that fails a later load step or is unloaded frees its share).
#[derive(Debug)]
pub struct PoolReservation {
    slots: PoolSlots,
    ledger: Arc<Mutex<PoolSlots>>,
}

impl PoolReservation {
    pub fn slots(&self) -> PoolSlots {
        self.slots
    }
}

impl Drop for PoolReservation {
    fn drop(&mut self) {
        let mut reserved = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        *reserved = reserved.zip(self.slots, u64::saturating_sub);
    }
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine =
            Engine::new(&engine_config(&config)).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let cache = config.cache_dir.as_deref().map(|dir| CompileCache::new(dir, &engine));
        let ticker = EpochTicker::start(engine.clone());
        Ok(Runtime { engine, config, cache, reserved: Arc::default(), _ticker: ticker })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Reserves `concurrency` instances of `per_instance` slots in the pool,
    /// or says which kind of slot does not fit. With every extension's
    /// share reserved and its invocations bounded by its concurrency slots,
    /// the pool cannot run out for one extension because of another.
    pub fn reserve(&self, per_instance: PoolSlots, concurrency: u32) -> Result<PoolReservation, PoolFull> {
        let needed = per_instance.times(concurrency);
        let totals = PoolSlots::pool_totals(self.config.max_instances);
        let mut reserved = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        let kinds = needed
            .fields()
            .into_iter()
            .zip(totals.fields())
            .zip(reserved.fields())
            .zip(per_instance.fields());
        for ((((kind, need), (_, total)), (_, taken)), (_, each)) in kinds {
            let free = total.saturating_sub(taken);
            if need > free {
                return Err(PoolFull {
                    kind,
                    per_instance: each,
                    concurrency,
                    needed: need,
                    free,
                    total,
                    reserved: taken,
                });
            }
        }
        *reserved = reserved.zip(needed, u64::saturating_add);
        Ok(PoolReservation { slots: needed, ledger: self.reserved.clone() })
    }

    /// Pool slots reserved by the extensions loaded now.
    pub fn reserved(&self) -> PoolSlots {
        *self.reserved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads and compiles a component, through the cache when there is one.
    pub fn load_component(&self, path: &Path) -> Result<(Component, CacheOutcome), RuntimeError> {
        let bytes =
            std::fs::read(path).map_err(|source| RuntimeError::Read { path: path.to_owned(), source })?;
        self.load_component_bytes(path, &bytes)
    }

    /// Compiles component `bytes` (an installed extension's, from the
    /// store), through the cache when there is one; `path` names it in errors.
    pub fn load_component_bytes(
        &self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        check_header(path, bytes)?;
        let compile = || {
            Component::new(&self.engine, bytes).map_err(|e| {
                let message = format!("{e:#}");
                if message.contains("pooling allocator") {
                    RuntimeError::OverPoolLimits { path: path.to_owned(), message }
                } else {
                    RuntimeError::Invalid { path: path.to_owned(), message }
                }
            })
        };
        match &self.cache {
            Some(cache) => cache.get_or_compile(&self.engine, bytes, compile),
            None => Ok((compile()?, CacheOutcome::Disabled)),
        }
    }
}

/// Tells a component from a core module or a stray file before compiling,
/// so the error says which it is.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(RuntimeError::CoreModule { path: path.to_owned() }),
        _ => Err(RuntimeError::NotWasm { path: path.to_owned() }),
    }
}

/// The engine settings ../shared/runtime-tuning.md measured as the floor for
/// a fresh instance per request.
fn engine_config(config: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let totals = PoolSlots::pool_totals(config.max_instances);
    let total = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    pool.total_component_instances(total(totals.component_instances))
        .total_core_instances(total(totals.core_instances))
        .total_memories(total(totals.memories))
        .total_tables(total(totals.tables))
        .total_stacks(total(totals.stacks))
        // Per component and per module: wasmtime checks these when a
        // component is compiled or read from the cache, so a component
        // holding more is refused at load, naming the limit. Without them
        // one component could hold any number of memories (issue #10).
        .max_core_instances_per_component(limits::MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(limits::MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(limits::MAX_TABLES_PER_COMPONENT)
        .max_memories_per_module(limits::MAX_MEMORIES_PER_MODULE)
        .max_tables_per_module(limits::MAX_TABLES_PER_MODULE)
        .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
        // Keep pages resident between uses and reset only the dirty ones.
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        // No component-model async in the contract; off saves ~25% per call.
        .concurrency_support(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// Advances the engine's epoch every [`limits::EPOCH_TICK`]; CPU deadlines
/// count these ticks. Stops when dropped.
#[derive(Debug)]
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new().name("warden-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(limits::EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        if let Err(e) = spawned {
            // Without the ticker CPU deadlines never fire; wall-clock
            // timeouts still do, so run on, loudly.
            tracing::error!("cannot start the epoch ticker thread, CPU deadlines are off: {e}");
        }
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_components_from_modules_and_junk() {
        let p = Path::new("x.wasm");
        assert!(check_header(p, b"\0asm\x0d\0\x01\0rest").is_ok());
        assert!(matches!(check_header(p, b"\0asm\x01\0\0\0"), Err(RuntimeError::CoreModule { .. })));
        assert!(matches!(check_header(p, b"#!/bin/sh\n"), Err(RuntimeError::NotWasm { .. })));
        assert!(matches!(check_header(p, b""), Err(RuntimeError::NotWasm { .. })));
    }

    #[test]
    fn reservations_never_exceed_the_pool_and_are_given_back() -> Result<(), Box<dyn std::error::Error>> {
        let runtime = Runtime::new(RuntimeConfig { max_instances: 10, ..RuntimeConfig::default() })?;
        let each = PoolSlots { component_instances: 1, core_instances: 3, memories: 1, tables: 2, stacks: 1 };
        let first = runtime.reserve(each, 6)?;
        assert_eq!(runtime.reserved().component_instances, 6);
        let refused = runtime.reserve(each, 5).err().ok_or("5 more fit in 4")?;
        assert_eq!(
            (refused.kind, refused.needed, refused.free, refused.total),
            ("component instances", 5, 4, 10)
        );
        let message = refused.to_string();
        assert!(message.contains("needs 5 pooled component instances"), "{message}");
        assert!(message.contains("limits.max_concurrency 5"), "{message}");
        // Memories run out before instances do when each instance holds more.
        let heavy = PoolSlots { memories: 5, ..each };
        let refused = runtime.reserve(heavy, 4).err().ok_or("20 memories fit in 14")?;
        assert_eq!((refused.kind, refused.needed, refused.free), ("memories", 20, 14));
        let second = runtime.reserve(each, 4)?;
        assert_eq!(runtime.reserved(), each.times(10));
        drop(first);
        drop(second);
        assert_eq!(runtime.reserved(), PoolSlots::default());
        Ok(())
    }
}
