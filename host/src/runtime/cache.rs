//! On-disk cache of compiled components, keyed by the component's SHA-256
//! and the engine's compatibility hash (wasmtime version and settings), so a
//! restart loads native code instead of recompiling (~75 ms per component).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::RuntimeError;

/// Whether a component came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled code from the cache.
    Hit,
    /// Compiled, and stored for next time.
    Compiled,
    /// Compiled; there is no cache.
    Disabled,
}

#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

/// Feeds `Hash` output into SHA-256: a hash that is stable across runs,
/// unlike `DefaultHasher`.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0 // never used: the digest is read with `finalize`
    }
}

impl CompileCache {
    pub fn new(dir: &Path, engine: &Engine) -> CompileCache {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        CompileCache { dir: dir.to_owned(), engine_key }
    }

    fn entry(&self, bytes: &[u8]) -> PathBuf {
        let content = hex::encode(Sha256::digest(bytes));
        self.dir.join(format!("{content}-{}.cwasm", self.engine_key))
    }

    /// The cached compilation of `bytes`, or `compile()`'s result, stored.
    /// A cache that cannot be read or written only costs a compile.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compile: impl FnOnce() -> Result<Component, RuntimeError>,
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        let entry = self.entry(bytes);
        if entry.is_file() {
            match load_precompiled(engine, &entry) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(file = %entry.display(), "ignoring unusable compile cache entry: {e:#}")
                }
            }
        }
        let component = compile()?;
        if let Err(e) = self.store(&entry, &component) {
            tracing::warn!(file = %entry.display(), "cannot write compile cache entry: {e:#}");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn store(&self, entry: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let code = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        // Write then rename, so a crash never leaves a torn entry behind.
        let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, code)?;
        std::fs::rename(&tmp, entry)?;
        Ok(())
    }
}

/// Loads native code written by [`CompileCache::store`].
#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, entry: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime runs deserialized code as is. The entry was produced
    // by `Component::serialize` in this cache directory, which lives in the
    // operator's data directory (same trust as the warden binary itself);
    // its name binds the source's SHA-256 and the engine's compatibility
    // hash, and wasmtime re-checks the engine compatibility header.
    unsafe { Component::deserialize_file(engine, entry) }
}
