//! On-disk cache of compiled components, keyed by the component's SHA-256
//! and the engine's compatibility hash (wasmtime version and settings), so a
//! restart loads native code instead of recompiling (~75 ms per component).
//!
//! wasmtime runs deserialized code as is, so a cache entry is native code
//! this process will execute: every entry is authenticated before it is
//! deserialized. An entry is `WCC1 || HMAC-SHA256(key, name || code) ||
//! code`, with a 32-byte key kept beside the cache directory
//! (`<cache>.key`, mode 0600, created on first use). A truncated, flipped or
//! garbage entry, an entry renamed from another component's, or one written
//! by another installation (another key) fails the check and is recompiled
//! and replaced; the verified bytes are the ones deserialized (read once, so
//! the file cannot change between the check and the load).

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

/// The first bytes of every entry: the format, so an older unauthenticated
/// entry (raw `Component::serialize` output) is told apart and recompiled.
const MAGIC: &[u8; 4] = b"WCC1";
const MAC_LEN: usize = 32;

#[derive(Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
    /// The entries' MAC key; `None` when it could not be read or created:
    /// then nothing is loaded from (or written to) the cache.
    key: Option<[u8; 32]>,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CompileCache")
            .field("dir", &self.dir)
            .field("engine_key", &self.engine_key)
            .field("keyed", &self.key.is_some())
            .finish()
    }
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

/// Why a cache entry was not used.
#[derive(Debug, thiserror::Error)]
enum EntryError {
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    #[error("not a Warden cache entry (no WCC1 header, or too short)")]
    Format,
    #[error("authentication failed: the entry was not written by this installation for this component")]
    Mac,
    #[error("cannot deserialize: {0}")]
    Deserialize(String),
}

impl CompileCache {
    pub fn new(dir: &Path, engine: &Engine) -> CompileCache {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        let key_path = dir.with_extension("key");
        let key = match load_or_create_key(&key_path) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(file = %key_path.display(), "compile cache disabled: no key: {e:#}");
                None
            }
        };
        CompileCache { dir: dir.to_owned(), engine_key, key }
    }

    fn entry_name(&self, bytes: &[u8]) -> String {
        let content = hex::encode(Sha256::digest(bytes));
        format!("{content}-{}.cwasm", self.engine_key)
    }

    /// The cached compilation of `bytes`, or `compile()`'s result, stored.
    /// A cache that cannot be read or written only costs a compile.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compile: impl FnOnce() -> Result<Component, RuntimeError>,
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        let Some(key) = &self.key else {
            return Ok((compile()?, CacheOutcome::Disabled));
        };
        let name = self.entry_name(bytes);
        let entry = self.dir.join(&name);
        if entry.is_file() {
            match load_verified(engine, key, &name, &entry) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(file = %entry.display(), "ignoring unusable compile cache entry: {e}")
                }
            }
        }
        let component = compile()?;
        if let Err(e) = self.store(key, &name, &entry, &component) {
            tracing::warn!(file = %entry.display(), "cannot write compile cache entry: {e:#}");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn store(&self, key: &[u8; 32], name: &str, entry: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let code = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mut sealed = Vec::with_capacity(MAGIC.len() + MAC_LEN + code.len());
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(&mac(key, name, &code));
        sealed.extend_from_slice(&code);
        // Write then rename, so a crash never leaves a torn entry behind
        // (and a torn one would fail its MAC anyway).
        let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, sealed)?;
        std::fs::rename(&tmp, entry)?;
        Ok(())
    }
}

/// Reads `entry` once, checks its MAC, and deserializes the checked bytes.
#[allow(unsafe_code)]
fn load_verified(engine: &Engine, key: &[u8; 32], name: &str, entry: &Path) -> Result<Component, EntryError> {
    let sealed = std::fs::read(entry)?;
    let code = verify(key, name, &sealed)?;
    // SAFETY: wasmtime runs deserialized code as is. `code` is exactly the
    // bytes `Component::serialize` produced in `store` for the component
    // whose SHA-256 and engine are in `name`: its HMAC under this
    // installation's key (kept 0600 outside the cache directory) was just
    // checked over these in-memory bytes, and wasmtime re-checks the engine
    // compatibility header.
    unsafe { Component::deserialize(engine, code) }.map_err(|e| EntryError::Deserialize(format!("{e:#}")))
}

/// The code in `sealed` when its header and MAC are right.
fn verify<'a>(key: &[u8; 32], name: &str, sealed: &'a [u8]) -> Result<&'a [u8], EntryError> {
    let rest = sealed.strip_prefix(MAGIC.as_slice()).ok_or(EntryError::Format)?;
    if rest.len() < MAC_LEN {
        return Err(EntryError::Format);
    }
    let (tag, code) = rest.split_at(MAC_LEN);
    let expected = mac(key, name, code);
    let differs = expected.iter().zip(tag).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if differs != 0 {
        return Err(EntryError::Mac);
    }
    Ok(code)
}

/// HMAC-SHA256 (RFC 2104) of the entry's name (which binds the source's
/// digest and the engine) and its code.
fn mac(key: &[u8; 32], name: &str, code: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let name_len = u64::try_from(name.len()).unwrap_or(u64::MAX);
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(name_len.to_be_bytes())
        .chain_update(name.as_bytes())
        .chain_update(code)
        .finalize();
    Sha256::new().chain_update(opad).chain_update(inner).finalize().into()
}

/// The cache key in `path`, or a new random one written there (0600,
/// `create_new`, so two starting processes never both win). A key file of
/// the wrong size is replaced: every entry then fails its MAC and is
/// recompiled.
fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => {
            if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(key);
            }
            tracing::warn!(file = %path.display(), "compile cache key has the wrong size: replacing it");
            std::fs::remove_file(path)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(path)?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| std::io::Error::other("the compile cache key has the wrong size"))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_shape() {
        // HMAC-SHA256 with a 32-byte key is deterministic and keyed.
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(mac(&a, "n", b"code"), mac(&a, "n", b"code"));
        assert_ne!(mac(&a, "n", b"code"), mac(&b, "n", b"code"));
        assert_ne!(mac(&a, "n", b"code"), mac(&a, "m", b"code"));
        assert_ne!(mac(&a, "n", b"code"), mac(&a, "n", b"cods"));
    }

    #[test]
    fn verify_refuses_what_this_key_did_not_seal() {
        let key = [7u8; 32];
        let code = b"native code".as_slice();
        let mut sealed = MAGIC.to_vec();
        sealed.extend_from_slice(&mac(&key, "x.cwasm", code));
        sealed.extend_from_slice(code);
        assert!(matches!(verify(&key, "x.cwasm", &sealed), Ok(c) if c == code));
        // Another name (an entry renamed from another component's).
        assert!(matches!(verify(&key, "y.cwasm", &sealed), Err(EntryError::Mac)));
        // Another installation's key.
        assert!(matches!(verify(&[8u8; 32], "x.cwasm", &sealed), Err(EntryError::Mac)));
        // A flipped byte, a truncation, a bare header, garbage.
        let mut flipped = sealed.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(verify(&key, "x.cwasm", &flipped), Err(EntryError::Mac)));
        assert!(matches!(verify(&key, "x.cwasm", &sealed[..sealed.len() - 3]), Err(EntryError::Mac)));
        assert!(matches!(verify(&key, "x.cwasm", &sealed[..10]), Err(EntryError::Format)));
        assert!(matches!(verify(&key, "x.cwasm", b"\x7fELF garbage"), Err(EntryError::Format)));
    }
}
