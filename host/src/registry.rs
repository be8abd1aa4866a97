//! The set of extensions a server runs: every directory under the
//! extensions directory is loaded on its own; one that fails is recorded
//! with its error and the others still serve.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::runtime::{CacheOutcome, LoadedExtension, Runtime};

/// An extension directory that did not load, and why.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFailure {
    pub dir: PathBuf,
    /// The id, when the manifest was readable enough to say.
    pub id: Option<String>,
    pub error: String,
}

/// Loaded extensions by id, plus the failures.
#[derive(Debug, Default)]
pub struct Registry {
    extensions: BTreeMap<String, Arc<LoadedExtension>>,
    failed: Vec<LoadFailure>,
}

impl Registry {
    /// Loads every extension directory under `extensions_dir`.
    pub fn load_dir(runtime: &Runtime, extensions_dir: &Path, data_dir: &Path) -> Registry {
        let mut registry = Registry::default();
        let entries = match std::fs::read_dir(extensions_dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(dir = %extensions_dir.display(), "no extensions loaded: cannot read the extensions directory: {e}");
                return registry;
            }
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for dir in dirs {
            if !dir.is_dir() {
                tracing::warn!(path = %dir.display(), "ignored: an extension is a directory holding {MANIFEST_FILE} and its component");
                continue;
            }
            registry.load_one(runtime, &dir, data_dir);
        }
        registry
    }

    fn load_one(&mut self, runtime: &Runtime, dir: &Path, data_dir: &Path) {
        let started = std::time::Instant::now();
        let failure = |error: String| {
            // Best effort: name the id in the failure when the manifest parses.
            let id = Manifest::load(dir).ok().map(|m| m.id);
            LoadFailure { dir: dir.to_owned(), id, error }
        };
        match LoadedExtension::load(runtime, dir, data_dir) {
            Ok(extension) => {
                if let Some(existing) = self.extensions.get(extension.id()) {
                    let error = format!(
                        "{}: id `{}` is already used by the extension in {}",
                        dir.join(MANIFEST_FILE).display(),
                        extension.id(),
                        existing.manifest.component.parent().unwrap_or(Path::new("?")).display()
                    );
                    tracing::error!("extension not loaded: {error}");
                    self.failed.push(failure(error));
                    return;
                }
                let how = match extension.cache {
                    CacheOutcome::Hit => "loaded from compile cache",
                    CacheOutcome::Compiled | CacheOutcome::Disabled => "compiled",
                };
                tracing::info!(
                    extension = extension.id(),
                    version = extension.manifest.version,
                    capabilities = ?extension.manifest.capabilities,
                    pool_share = ?extension.pool_share(),
                    elapsed_ms = crate::time::millis(started.elapsed()),
                    "extension loaded ({how})"
                );
                self.extensions.insert(extension.id().to_owned(), Arc::new(extension));
            }
            Err(e) => {
                let error = e.to_string();
                tracing::error!("extension not loaded: {error}");
                self.failed.push(failure(error));
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<LoadedExtension>> {
        self.extensions.get(id)
    }

    pub fn extensions(&self) -> impl Iterator<Item = &Arc<LoadedExtension>> {
        self.extensions.values()
    }

    pub fn failed(&self) -> &[LoadFailure] {
        &self.failed
    }

    /// The failure recorded for extension `id`, if it failed to load.
    pub fn failure_of(&self, id: &str) -> Option<&LoadFailure> {
        self.failed.iter().find(|f| f.id.as_deref() == Some(id))
    }
}
