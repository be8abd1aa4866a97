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
    /// A newer version that widens what is granted, waiting for an
    /// operator's approval while this one serves.
    #[serde(default)]
    pub upgrade: Option<PendingUpgrade>,
    /// The version this one replaced, and when and by whom (the last upgrade).
    #[serde(default)]
    pub previous_version: Option<String>,
    #[serde(default)]
    pub upgraded_at: Option<u64>,
    #[serde(default)]
    pub upgraded_by: Option<String>,
}

/// A new version of an approved extension, kept until approved: its
/// manifest and component (stored, content-addressed, like the serving one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpgrade {
    pub version: String,
    pub manifest: String,
    pub component_sha256: String,
    pub component_bytes: u64,
    pub submitted_at: u64,
    pub submitted_by: String,
}

impl Installed {
    /// The digests of the components this record holds: the serving one
    /// and a pending upgrade's.
    fn components(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.component_sha256.as_str())
            .chain(self.upgrade.as_ref().map(|u| u.component_sha256.as_str()))
    }
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

/// What an operator reviews, as one digest: the manifest's text and the
/// component's digest. Approving may name it, so that what is approved is
/// what was reviewed even if someone replaced it in between.
pub fn review_digest(manifest: &str, component_sha256: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(manifest.as_bytes());
    hasher.update([0]);
    hasher.update(component_sha256.as_bytes());
    hex::encode(hasher.finalize())
}

impl Installed {
    /// The review digest of what an approval of this record would approve
    /// now: its waiting upgrade, else (pending) itself.
    pub fn awaiting_digest(&self) -> Option<String> {
        match (&self.upgrade, self.state) {
            (Some(u), _) => Some(review_digest(&u.manifest, &u.component_sha256)),
            (None, InstallState::Pending) => Some(review_digest(&self.manifest, &self.component_sha256)),
            (None, InstallState::Approved) => None,
        }
    }
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

    /// The writes that turn `before` (stored at `version`) into `after`
    /// (`None`: deleted): the record, compare-and-set; `blob`, a component
    /// `after` holds, put (content-addressed: the same key always holds the
    /// same bytes); and each component `before` held that neither `after`
    /// nor another record holds, deleted. For [`InstalledStore::change`],
    /// or to write in one transaction with other writes.
    pub fn change_writes<'a>(
        &self,
        before: &'a Installed,
        version: Version,
        after: Option<&'a Installed>,
        blob: Option<(&'a str, &[u8])>,
    ) -> Result<Vec<Write<'a>>, InstalledError> {
        let source = after.map(to_json).transpose()?;
        let mut writes = vec![Write { index: INDEX, id: &before.id, source, expect: version.expect() }];
        if let Some((sha256, bytes)) = blob {
            writes.push(Write {
                index: COMPONENTS_INDEX,
                id: sha256,
                source: Some(bytes.to_vec()),
                expect: Expect::Any,
            });
        }
        let others = self.list()?;
        let held = |sha256: &str| {
            after.is_some_and(|a| a.components().any(|c| c == sha256))
                || others.iter().any(|o| o.id != before.id && o.components().any(|c| c == sha256))
        };
        let mut dropped: Vec<&str> = before.components().filter(|c| !held(c)).collect();
        dropped.dedup();
        for sha256 in dropped {
            writes.push(Write { index: COMPONENTS_INDEX, id: sha256, source: None, expect: Expect::Any });
        }
        Ok(writes)
    }

    /// Turns `before` (stored at `version`) into `after` in one
    /// transaction (see [`InstalledStore::change_writes`]); losing a race
    /// is [`InstalledError::Contended`].
    pub fn change(
        &self,
        before: &Installed,
        version: Version,
        after: Option<&Installed>,
        blob: Option<(&str, &[u8])>,
    ) -> Result<(), InstalledError> {
        let writes = self.change_writes(before, version, after, blob)?;
        match self.store.write(&writes) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { .. }) => Err(InstalledError::Contended(before.id.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes record `id` at `version`, and its components' blobs when no
    /// other record holds the same component, in one transaction.
    pub fn delete(&self, record: &Installed, version: Version) -> Result<(), InstalledError> {
        self.change(record, version, None, None)
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
            upgrade: None,
            previous_version: None,
            upgraded_at: None,
            upgraded_by: None,
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

    /// A pending upgrade's component is kept beside the serving one;
    /// applying the upgrade drops the old component unless another record
    /// holds it; deleting the record drops both.
    #[test]
    fn components_live_as_long_as_a_record_holds_them() -> TestResult {
        let (_dir, installed) = open()?;
        let (v1, v2, v3) = (&b"v1"[..], &b"v2"[..], &b"v3"[..]);
        let a = record("a", v1);
        installed.create(&a, v1)?;
        installed.create(&record("b", v1), v1)?;
        let (before, version) = installed.get("a")?.ok_or("a")?;
        let waiting = Installed {
            upgrade: Some(PendingUpgrade {
                version: "2".into(),
                manifest: String::new(),
                component_sha256: digest(v2),
                component_bytes: 2,
                submitted_at: 1,
                submitted_by: "admin".into(),
            }),
            ..before.clone()
        };
        installed.change(&before, version, Some(&waiting), Some((&digest(v2), v2)))?;
        assert!(installed.component(&digest(v1))?.is_some() && installed.component(&digest(v2))?.is_some());
        // Applied: v2 serves; v1 stays, `b` holds it.
        let (before, version) = installed.get("a")?.ok_or("a")?;
        let applied = Installed { upgrade: None, component_sha256: digest(v2), ..before.clone() };
        installed.change(&before, version, Some(&applied), None)?;
        assert!(installed.component(&digest(v1))?.is_some());
        // A stale version loses and writes nothing.
        let stale = Installed { component_sha256: digest(v3), ..applied.clone() };
        let lost = installed.change(&before, version, Some(&stale), Some((&digest(v3), v3)));
        assert!(matches!(lost, Err(InstalledError::Contended(_))), "{lost:?}");
        assert_eq!(installed.component(&digest(v3))?, None);
        // `b` removed: v1 goes; `a` removed: v2 goes.
        for id in ["b", "a"] {
            let (r, version) = installed.get(id)?.ok_or(id)?;
            installed.delete(&r, version)?;
        }
        for v in [v1, v2] {
            assert_eq!(installed.component(&digest(v))?, None);
        }
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
