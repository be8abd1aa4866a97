//! The store of installed extensions: one record per extension in
//! `.warden-extensions` (state, version, manifest text, component digest,
//! who installed and approved it and when, the last load error) and the
//! component bytes in `.warden-extension-components`, content-addressed by
//! their SHA-256 (two records holding the same component share one blob).
//! The embedded store keeps a document in one value of any size (no
//! per-document limit in `store/`; the REST body limit bounds a component),
//! so a component is one document, not chunks. Every write is
//! compare-and-set; a record and its blob are written and deleted in one
//! transaction. `.warden*` indices are refused to every cluster call, so
//! nothing reaches these but this module.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ErrorKind, HasKind};
use crate::store::{Expect, Store, StoreError, Versioned, Write};

/// The records, by extension id.
pub const INDEX: &str = ".warden-extensions";
/// Component bytes, by the hex SHA-256 of the bytes.
pub const COMPONENTS_INDEX: &str = ".warden-extension-components";

/// How many times a compare-and-set change is retried after losing a race.
const CAS_RETRIES: usize = 16;

/// Where an installed extension stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallState {
    /// Installed, waiting for an operator's approval: runs nothing.
    Pending,
    /// Approved: loaded and serving (unless its load failed, `last_error`).
    Approved,
}

impl InstallState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallState::Pending => "pending",
            InstallState::Approved => "approved",
        }
    }
}

/// One installed extension, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub id: String,
    pub state: InstallState,
    pub version: String,
    /// The `extension.toml` text as installed.
    pub manifest: String,
    /// Hex SHA-256 of the component: the key of its bytes and of its
    /// compile-cache entry.
    pub component_sha256: String,
    pub component_bytes: u64,
    /// Milliseconds since the epoch.
    pub installed_at: u64,
    pub installed_by: String,
    pub approved_at: Option<u64>,
    pub approved_by: Option<String>,
    /// Why the last load of this extension failed, if it did.
    #[serde(default)]
    pub last_error: Option<String>,
    /// What the operator grants, when narrowed from what the manifest
    /// requests (`None`: everything requested).
    #[serde(default)]
    pub grants: Option<crate::extensions::delta::Grants>,
}

/// A record's version, for the compare-and-set write that changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    seq_no: u64,
    primary_term: u64,
}

impl Version {
    fn expect(self) -> Expect {
        Expect::Version { seq_no: self.seq_no, primary_term: self.primary_term }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstalledError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("installed extension record [{0}] is corrupt: {1}")]
    Corrupt(String, String),
    #[error("extension `{0}` is already installed")]
    Exists(String),
    #[error("no installed extension `{0}`")]
    NotFound(String),
    #[error("extension `{0}` changed concurrently too often; retry")]
    Contended(String),
}

impl HasKind for InstalledError {
    fn kind(&self) -> ErrorKind {
        match self {
            InstalledError::Store(e) => e.kind(),
            InstalledError::Corrupt(..) => ErrorKind::Internal,
            InstalledError::Exists(_) | InstalledError::Contended(_) => ErrorKind::Conflict,
            InstalledError::NotFound(_) => ErrorKind::NotFound,
        }
    }
}

/// The hex SHA-256 of component bytes.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The installed extensions in the store.
#[derive(Debug, Clone)]
pub struct InstalledStore {
    store: Arc<Store>,
}

impl InstalledStore {
    pub fn new(store: Arc<Store>) -> InstalledStore {
        InstalledStore { store }
    }

    fn decode(id: &str, doc: &Versioned) -> Result<(Installed, Version), InstalledError> {
        let record: Installed = serde_json::from_slice(&doc.source)
            .map_err(|e| InstalledError::Corrupt(id.to_owned(), e.to_string()))?;
        Ok((record, Version { seq_no: doc.seq_no, primary_term: doc.primary_term }))
    }

    pub fn get(&self, id: &str) -> Result<Option<(Installed, Version)>, InstalledError> {
        self.store.get(INDEX, id)?.map(|doc| Self::decode(id, &doc)).transpose()
    }

    /// Every record, by id.
    pub fn list(&self) -> Result<Vec<Installed>, InstalledError> {
        self.store.list(INDEX)?.iter().map(|(id, doc)| Self::decode(id, doc).map(|(r, _)| r)).collect()
    }

    /// The component bytes of digest `sha256`.
    pub fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, InstalledError> {
        Ok(self.store.get(COMPONENTS_INDEX, sha256)?.map(|doc| doc.source))
    }

    /// Creates `record` (which must not exist) and its component's blob in
    /// one transaction.
    pub fn create(&self, record: &Installed, component: &[u8]) -> Result<(), InstalledError> {
        let source = to_json(record)?;
        let writes = [
            Write { index: INDEX, id: &record.id, source: Some(source), expect: Expect::Absent },
            // Content-addressed: the same key always holds the same bytes.
            Write {
                index: COMPONENTS_INDEX,
                id: &record.component_sha256,
                source: Some(component.to_vec()),
                expect: Expect::Any,
            },
        ];
        match self.store.write(&writes) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { index, .. }) if index == INDEX => {
                Err(InstalledError::Exists(record.id.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `edit` to record `id` with compare-and-set, re-reading and
    /// re-applying when a concurrent change wins. `edit` may refuse.
    pub fn update<E>(
        &self,
        id: &str,
        mut edit: impl FnMut(&mut Installed) -> Result<(), E>,
    ) -> Result<Installed, E>
    where
        E: From<InstalledError>,
    {
        for _ in 0..CAS_RETRIES {
            let (mut record, version) =
                self.get(id)?.ok_or_else(|| InstalledError::NotFound(id.to_owned()))?;
            edit(&mut record)?;
            let write = Write { index: INDEX, id, source: Some(to_json(&record)?), expect: version.expect() };
            match self.store.write(&[write]) {
                Ok(_) => return Ok(record),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(InstalledError::from(e).into()),
            }
        }
        Err(InstalledError::Contended(id.to_owned()).into())
    }

    /// Deletes record `id` at `version`, and its component's blob when no
    /// other record holds the same component, in one transaction.
    pub fn delete(&self, record: &Installed, version: Version) -> Result<(), InstalledError> {
        let shared = self
            .list()?
            .iter()
            .any(|other| other.id != record.id && other.component_sha256 == record.component_sha256);
        let mut writes = vec![Write { index: INDEX, id: &record.id, source: None, expect: version.expect() }];
        if !shared {
            writes.push(Write {
                index: COMPONENTS_INDEX,
                id: &record.component_sha256,
                source: None,
                expect: Expect::Any,
            });
        }
        match self.store.write(&writes) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { .. }) => Err(InstalledError::Contended(record.id.clone())),
            Err(e) => Err(e.into()),
        }
    }
}

fn to_json(record: &Installed) -> Result<Vec<u8>, InstalledError> {
    serde_json::to_vec(record).map_err(|e| InstalledError::Corrupt(record.id.clone(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn record(id: &str, component: &[u8]) -> Installed {
        Installed {
            id: id.to_owned(),
            state: InstallState::Pending,
            version: "1".into(),
            manifest: format!("id = \"{id}\""),
            component_sha256: digest(component),
            component_bytes: component.len() as u64,
            installed_at: 1,
            installed_by: "admin".into(),
            approved_at: None,
            approved_by: None,
            last_error: None,
            grants: None,
        }
    }

    fn open() -> Result<(tempfile::TempDir, InstalledStore), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("s.redb"))?);
        Ok((dir, InstalledStore::new(store)))
    }

    #[test]
    fn a_record_and_its_blob_come_and_go_together() -> TestResult {
        let (_dir, installed) = open()?;
        let a = record("a", b"component bytes");
        installed.create(&a, b"component bytes")?;
        assert_eq!(installed.component(&a.component_sha256)?.as_deref(), Some(&b"component bytes"[..]));
        // Created once: the same id again is refused and changes nothing.
        let mut again = record("a", b"other bytes");
        again.version = "2".into();
        assert!(matches!(installed.create(&again, b"other bytes"), Err(InstalledError::Exists(_))));
        assert_eq!(installed.get("a")?.map(|(r, _)| r.version), Some("1".into()));
        assert_eq!(installed.component(&again.component_sha256)?, None);

        // Two records with the same component share one blob: deleting one
        // keeps it, deleting the last removes it.
        let b = record("b", b"component bytes");
        installed.create(&b, b"component bytes")?;
        let (a, version) = installed.get("a")?.ok_or("a")?;
        installed.delete(&a, version)?;
        assert!(installed.get("a")?.is_none());
        assert!(installed.component(&b.component_sha256)?.is_some());
        let (b, version) = installed.get("b")?.ok_or("b")?;
        installed.delete(&b, version)?;
        assert!(installed.list()?.is_empty());
        assert_eq!(installed.component(&b.component_sha256)?, None);
        Ok(())
    }

    #[test]
    fn updates_are_compare_and_set() -> TestResult {
        let (_dir, installed) = open()?;
        installed.create(&record("a", b"x"), b"x")?;
        let (_, stale) = installed.get("a")?.ok_or("a")?;
        let approved = installed.update::<InstalledError>("a", |r| {
            r.state = InstallState::Approved;
            Ok(())
        })?;
        assert_eq!(approved.state, InstallState::Approved);
        // A delete at the version read before the update loses.
        assert!(matches!(installed.delete(&approved, stale), Err(InstalledError::Contended(_))));
        assert!(installed.get("a")?.is_some());
        // An update of a missing record: not found.
        let missing = installed.update::<InstalledError>("zz", |_| Ok(()));
        assert!(matches!(missing, Err(InstalledError::NotFound(_))));
        Ok(())
    }
}
