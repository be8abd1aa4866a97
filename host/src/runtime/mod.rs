//! The sandbox: one wasmtime [`Engine`] shared by every extension, tuned for
//! a fresh instance per invocation (pooling allocator, epoch interruption),
//! plus the compile cache and the epoch ticker that drives CPU deadlines.

pub mod bindings;
pub mod cache;
pub mod capabilities;
pub mod extension;
pub mod limits;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use self::cache::{CacheOutcome, CompileCache};
pub use self::extension::{ExtensionError, HttpRequest, HttpResponse, InvokeError, LoadedExtension};
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
}

/// The shared engine, its compile cache and its epoch ticker.
#[derive(Debug)]
pub struct Runtime {
    engine: Engine,
    config: RuntimeConfig,
    cache: Option<CompileCache>,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine =
            Engine::new(&engine_config(&config)).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let cache = config.cache_dir.as_deref().map(|dir| CompileCache::new(dir, &engine));
        let ticker = EpochTicker::start(engine.clone());
        Ok(Runtime { engine, config, cache, _ticker: ticker })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Reads and compiles a component, through the cache when there is one.
    pub fn load_component(&self, path: &Path) -> Result<(Component, CacheOutcome), RuntimeError> {
        let bytes =
            std::fs::read(path).map_err(|source| RuntimeError::Read { path: path.to_owned(), source })?;
        check_header(path, &bytes)?;
        let compile = || {
            Component::new(&self.engine, &bytes)
                .map_err(|e| RuntimeError::Invalid { path: path.to_owned(), message: format!("{e:#}") })
        };
        match &self.cache {
            Some(cache) => cache.get_or_compile(&self.engine, &bytes, compile),
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
    let instances = config.max_instances;
    pool.total_component_instances(instances)
        // A Rust wasip2 component holds a handful of core instances (main
        // module, adapter shims), each with a memory or table at most.
        .total_core_instances(instances.saturating_mul(4))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
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
}
