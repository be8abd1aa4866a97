//! The set of extensions a server runs: every directory under the
//! extensions directory is loaded on its own; one that fails is recorded
//! with its error and the others still serve. Installed extensions (from
//! the store, `extensions::lifecycle`) join and leave at runtime: the set
//! is an immutable snapshot behind a lock held only to clone or swap an
//! `Arc`, so a change takes effect for the next request without a restart
//! while invocations under way keep their own `Arc<LoadedExtension>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;

use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::runtime::{CacheOutcome, LoadedExtension, Runtime};

/// An extension directory (or installed extension) that did not load, and why.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFailure {
    pub dir: PathBuf,
    /// The id, when the manifest was readable enough to say.
    pub id: Option<String>,
    pub error: String,
    /// A directory's failure stays when an installed extension of the same
    /// id serves (the directory copy was refused for it).
    pub origin: Origin,
}

/// Where a serving extension came from: only installed ones are the
/// lifecycle's to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `--extensions-dir`: loaded at start, as an operator dropped it there.
    Directory,
    /// Installed and approved through the lifecycle API (kept in the store).
    Installed,
}

/// One consistent view of the set: what serves, what failed, what waits
/// for approval.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    extensions: BTreeMap<String, (Arc<LoadedExtension>, Origin)>,
    failed: Vec<LoadFailure>,
    /// Installed, not approved: runs nothing, its routes answer 404.
    pending: BTreeSet<String>,
}

/// Loaded extensions by id, plus the failures and the pending ones.
#[derive(Debug, Default)]
pub struct Registry {
    current: RwLock<Arc<Snapshot>>,
    /// Serialises changes (read, copy, change, swap), so two never lose
    /// each other's edit.
    writer: Mutex<()>,
}

impl Registry {
    /// Loads every extension directory under `extensions_dir`, except one
    /// whose id is in `installed`: that id belongs to an extension installed
    /// through the lifecycle, whose roles and grants an operator approved;
    /// a directory copy taking the id would act under them unreviewed.
    pub fn load_dir(
        runtime: &Runtime,
        extensions_dir: &Path,
        data_dir: &Path,
        installed: &std::collections::BTreeSet<String>,
    ) -> Registry {
        let mut snapshot = Snapshot::default();
        let entries = match std::fs::read_dir(extensions_dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(dir = %extensions_dir.display(), "no extensions loaded: cannot read the extensions directory: {e}");
                return Registry::default();
            }
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for dir in dirs {
            if !dir.is_dir() {
                tracing::warn!(path = %dir.display(), "ignored: an extension is a directory holding {MANIFEST_FILE} and its component");
                continue;
            }
            if let Ok(manifest) = Manifest::load(&dir)
                && installed.contains(&manifest.id)
            {
                let error = format!(
                    "{}: id `{}` belongs to an installed extension (`warden ext show {}`); a directory \
                     extension may not take it",
                    dir.join(MANIFEST_FILE).display(),
                    manifest.id,
                    manifest.id
                );
                tracing::error!("extension not loaded: {error}");
                snapshot.failed.push(LoadFailure {
                    dir: dir.clone(),
                    id: Some(manifest.id),
                    error,
                    origin: Origin::Directory,
                });
                continue;
            }
            snapshot.load_one(runtime, &dir, data_dir);
        }
        Registry { current: RwLock::new(Arc::new(snapshot)), writer: Mutex::new(()) }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Applies `change` to a copy of the set and swaps it in.
    fn change<R>(&self, change: impl FnOnce(&mut Snapshot) -> R) -> R {
        let _guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = Snapshot::clone(&self.snapshot());
        let result = change(&mut next);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        result
    }

    pub fn get(&self, id: &str) -> Option<Arc<LoadedExtension>> {
        self.snapshot().extensions.get(id).map(|(e, _)| e.clone())
    }

    /// Where serving extension `id` came from.
    pub fn origin(&self, id: &str) -> Option<Origin> {
        self.snapshot().extensions.get(id).map(|(_, origin)| *origin)
    }

    /// The serving extensions, by id.
    pub fn extensions(&self) -> Vec<Arc<LoadedExtension>> {
        self.snapshot().extensions.values().map(|(e, _)| e.clone()).collect()
    }

    pub fn failed(&self) -> Vec<LoadFailure> {
        self.snapshot().failed.clone()
    }

    /// The failure recorded for extension `id`, if it failed to load.
    pub fn failure_of(&self, id: &str) -> Option<LoadFailure> {
        self.snapshot().failed.iter().find(|f| f.id.as_deref() == Some(id)).cloned()
    }

    /// The failure recorded for installed extension `id`'s last load.
    pub fn installed_failure_of(&self, id: &str) -> Option<LoadFailure> {
        let snapshot = self.snapshot();
        snapshot.failed.iter().find(|f| f.origin == Origin::Installed && f.id.as_deref() == Some(id)).cloned()
    }

    /// Whether `id` is installed and waits for approval.
    pub fn is_pending(&self, id: &str) -> bool {
        self.snapshot().pending.contains(id)
    }

    /// The ids installed and waiting for approval.
    pub fn pending(&self) -> Vec<String> {
        self.snapshot().pending.iter().cloned().collect()
    }

    /// Whether anything holds `id`: serving, failed or pending.
    pub fn knows(&self, id: &str) -> bool {
        let snapshot = self.snapshot();
        snapshot.extensions.contains_key(id)
            || snapshot.pending.contains(id)
            || snapshot.failed.iter().any(|f| f.id.as_deref() == Some(id))
    }

    /// Marks `id` installed and waiting for approval.
    pub fn set_pending(&self, id: &str) {
        self.change(|s| {
            s.pending.insert(id.to_owned());
        });
    }

    /// Serves `extension` (installed, approved) from the next request on:
    /// it is no longer pending and no earlier failure of its id stands.
    pub fn insert_installed(&self, extension: Arc<LoadedExtension>) {
        self.change(|s| {
            let id = extension.id().to_owned();
            s.pending.remove(&id);
            s.failed.retain(|f| f.origin == Origin::Directory || f.id.as_deref() != Some(id.as_str()));
            s.extensions.insert(id, (extension, Origin::Installed));
        });
    }

    /// Records that installed extension `id` did not load.
    pub fn record_failure(&self, failure: LoadFailure) {
        self.change(|s| {
            if let Some(id) = &failure.id {
                s.pending.remove(id);
            }
            s.failed.push(failure);
        });
    }

    /// Forgets installed extension `id` (serving, pending or failed): its
    /// routes answer 404 from the next request on. Invocations under way
    /// finish on the `Arc` they hold. A directory extension is left alone.
    pub fn remove_installed(&self, id: &str) -> Option<Arc<LoadedExtension>> {
        self.change(|s| {
            s.pending.remove(id);
            s.failed.retain(|f| f.origin == Origin::Directory || f.id.as_deref() != Some(id));
            match s.extensions.get(id) {
                Some((_, Origin::Installed)) => s.extensions.remove(id).map(|(e, _)| e),
                _ => None,
            }
        })
    }
}

impl Snapshot {
    fn load_one(&mut self, runtime: &Runtime, dir: &Path, data_dir: &Path) {
        let started = std::time::Instant::now();
        let failure = |error: String| {
            // Best effort: name the id in the failure when the manifest parses.
            let id = Manifest::load(dir).ok().map(|m| m.id);
            LoadFailure { dir: dir.to_owned(), id, error, origin: Origin::Directory }
        };
        match LoadedExtension::load(runtime, dir, data_dir) {
            Ok(extension) => {
                if let Some((existing, _)) = self.extensions.get(extension.id()) {
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
                self.extensions.insert(extension.id().to_owned(), (Arc::new(extension), Origin::Directory));
            }
            Err(e) => {
                let error = e.to_string();
                tracing::error!("extension not loaded: {error}");
                self.failed.push(failure(error));
            }
        }
    }
}
