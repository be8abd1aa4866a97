//! The embedded store: crash-safe documents on one node, in redb (a pure-
//! Rust, copy-on-write B-tree store with ACID transactions; a commit is
//! durable once it returns, and a crash leaves the last committed state).
//!
//! Documents live in indices; every write carries OpenSearch's optimistic
//! concurrency numbers: a per-store `seq_no` that grows with each write and
//! a `primary_term` that grows with each open of the store. A write may
//! demand the version it read (compare-and-set) and fails with
//! [`StoreError::Conflict`] otherwise, so config writes and (later) job
//! locks are CAS everywhere.
//!
//! Writes made with an [`Indexer`] also keep postings — (index, term) →
//! document ids — in the same transaction, so an inverted index never
//! disagrees with the documents it points at, even after a crash.
//!
//! System indices start with `.warden-`; they are reached only through the
//! host's own modules, never through a user's or an extension's call.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, TableDefinition};

/// (index, id) → 8-byte seq_no, 8-byte primary_term, then the source.
const DOCS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("docs");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// (index, term, id) → nothing: which documents of an index hold a term.
/// Byte strings, not `&str`: redb validates UTF-8 on every comparison of a
/// `&str` key, which dominated bulk writes.
const POSTINGS: TableDefinition<PostingKey, ()> = TableDefinition::new("postings");
type PostingKey = (&'static [u8], &'static [u8], &'static [u8]);
/// The version of the postings an [`Indexer`] built (see [`Store::ensure_postings`]).
const POSTINGS_VERSION: &str = "postings_version";

/// The terms a stored document of `index` is found by (none for indices
/// that are not searched). Must be deterministic: the terms of the old
/// source are recomputed to remove them.
pub type Indexer = dyn Fn(&str, &[u8]) -> Vec<String> + Sync;
const SEQ_NO: &str = "seq_no";
const PRIMARY_TERM: &str = "primary_term";

/// A stored document and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub seq_no: u64,
    pub primary_term: u64,
    pub source: Vec<u8>,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there.
    Any,
    /// Only create: the document must not exist.
    Absent,
    /// The document must be at exactly this version.
    Version { seq_no: u64, primary_term: u64 },
}

/// One write of a batch.
#[derive(Debug, Clone)]
pub struct Write<'a> {
    pub index: &'a str,
    pub id: &'a str,
    /// `None` deletes.
    pub source: Option<Vec<u8>>,
    pub expect: Expect,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the store: {message}")]
    Open { path: PathBuf, message: String },
    #[error("store failure: {0}")]
    Io(String),
    #[error("version conflict on [{index}][{id}]: {message}")]
    Conflict { index: String, id: String, message: String },
    #[error("store record [{index}][{id}] is corrupt")]
    Corrupt { index: String, id: String },
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// `None` only while [`Store::reopen_if_failed`] swaps it.
    db: RwLock<Option<Arc<Database>>>,
    primary_term: u64,
}

impl Store {
    /// Opens (creating) the store at `path` and starts a new primary term.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |message: String| StoreError::Open { path: path.to_owned(), message };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| open_error(e.to_string()))?;
        }
        let db = Database::create(path).map_err(|e| open_error(e.to_string()))?;
        restrict_permissions(path);
        let txn = db.begin_write().map_err(io)?;
        let primary_term = {
            let mut meta = txn.open_table(META).map_err(io)?;
            let term = meta.get(PRIMARY_TERM).map_err(io)?.map(|v| v.value()).unwrap_or(0) + 1;
            meta.insert(PRIMARY_TERM, term).map_err(io)?;
            txn.open_table(DOCS).map_err(io)?;
            txn.open_table(POSTINGS).map_err(io)?;
            term
        };
        txn.commit().map_err(io)?;
        Ok(Store { path: path.to_owned(), db: RwLock::new(Some(Arc::new(db))), primary_term })
    }

    fn db(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(db) = self.db.read().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(db);
        }
        // A reopen failed earlier: try again now.
        let _ = self.reopen_if_failed();
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        db.clone().ok_or_else(|| StoreError::Io("the store could not be reopened after an I/O error".into()))
    }

    /// After a failed write: when redb refuses all writes because an
    /// earlier one hit an I/O error (a full disk: `PreviousIo`, "close and
    /// re-open the database"), reopen it, so writes work again once the
    /// disk has room — instead of failing until the process restarts. The
    /// reopened file is the last committed state (redb is copy-on-write;
    /// the failed transaction never committed). Same primary term: the
    /// process, and so the writer, is the same. While the disk is still
    /// full the failed handle is kept: it still serves reads.
    /// Whether it reopened the store.
    fn reopen_if_failed(&self) -> bool {
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = slot.as_ref() {
            match db.begin_write() {
                Err(redb::TransactionError::Storage(redb::StorageError::PreviousIo)) => {}
                _ => return false, // healthy (the probe transaction aborts on drop), or another failure
            }
            // Reopening repairs the file, which writes: only with room to.
            if let Err(e) = room_to_write(&self.path) {
                tracing::warn!(file = %self.path.display(), "store writes fail (an earlier I/O error), and no room to reopen it yet: {e}");
                return false;
            }
        }
        tracing::warn!(file = %self.path.display(), "store write failed with an I/O error: reopening the store");
        // redb refuses a second handle on the file while the first (or a
        // read transaction of it) is alive: drop ours, wait for readers.
        let old = slot.take();
        drop(old);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match Database::create(&self.path) {
                Ok(db) => {
                    *slot = Some(Arc::new(db));
                    tracing::info!(file = %self.path.display(), "store reopened");
                    return true;
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!("store not reopened yet: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    // Left closed: every request fails clearly, the next
                    // failed write tries again.
                    tracing::error!(file = %self.path.display(), "cannot reopen the store: {e}");
                    return false;
                }
            }
        }
    }

    pub fn primary_term(&self) -> u64 {
        self.primary_term
    }

    pub fn get(&self, index: &str, id: &str) -> Result<Option<Versioned>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(DOCS).map_err(io)?;
        let value = table.get((index, id)).map_err(io)?;
        value.map(|v| decode(index, id, v.value())).transpose()
    }

    /// Every document of `index`, by id.
    pub fn list(&self, index: &str) -> Result<Vec<(String, Versioned)>, StoreError> {
        self.list_prefix(index, "")
    }

    /// The documents of `index` whose ids start with `prefix`, by id.
    pub fn list_prefix(&self, index: &str, prefix: &str) -> Result<Vec<(String, Versioned)>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(DOCS).map_err(io)?;
        let mut out = Vec::new();
        for entry in table.range((index, prefix)..).map_err(io)? {
            let (key, value) = entry.map_err(io)?;
            let (entry_index, id) = key.value();
            if entry_index != index || !id.starts_with(prefix) {
                break;
            }
            out.push((id.to_owned(), decode(index, id, value.value())?));
        }
        Ok(out)
    }

    /// The ids of `index`'s documents in `from..to` (`to` excluded), in
    /// order, without reading their values.
    pub fn ids_between(&self, index: &str, from: &str, to: &str) -> Result<Vec<String>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(DOCS).map_err(io)?;
        let mut out = Vec::new();
        for entry in table.range((index, from)..(index, to)).map_err(io)? {
            let (key, _) = entry.map_err(io)?;
            out.push(key.value().1.to_owned());
        }
        Ok(out)
    }

    /// How many documents `index` holds, and those at positions
    /// `skip..skip + take` in id order — without reading the others' values.
    pub fn page(
        &self,
        index: &str,
        skip: usize,
        take: usize,
    ) -> Result<(usize, Vec<(String, Versioned)>), StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(DOCS).map_err(io)?;
        let (mut count, mut out) = (0, Vec::new());
        for entry in table.range((index, "")..).map_err(io)? {
            let (key, value) = entry.map_err(io)?;
            let (entry_index, id) = key.value();
            if entry_index != index {
                break;
            }
            if count >= skip && out.len() < take {
                out.push((id.to_owned(), decode(index, id, value.value())?));
            }
            count += 1;
        }
        Ok((count, out))
    }

    /// Applies every write in one transaction: all or none. Returns the new
    /// versions (deletes return the version of the tombstone's write).
    pub fn write(&self, writes: &[Write<'_>]) -> Result<Vec<Versioned>, StoreError> {
        self.write_with(writes, None, redb::Durability::Immediate)
    }

    /// [`Store::write`] without waiting for the disk: atomic and visible at
    /// once, made durable by the next ordinary write. Only for state whose
    /// loss in a crash is harmless — a job's lease, which a crash ends anyway.
    pub fn write_volatile(&self, writes: &[Write<'_>]) -> Result<Vec<Versioned>, StoreError> {
        self.write_with(writes, None, redb::Durability::None)
    }

    /// [`Store::write`], keeping the postings of `indexer` in step.
    pub fn write_indexed(
        &self,
        writes: &[Write<'_>],
        indexer: &Indexer,
    ) -> Result<Vec<Versioned>, StoreError> {
        self.write_with(writes, Some(indexer), redb::Durability::Immediate)
    }

    /// A read transaction, counted (`warden_store_operations_total`).
    fn read_txn(&self) -> Result<redb::ReadTransaction, StoreError> {
        let txn = self.db().and_then(|db| db.begin_read().map_err(io));
        crate::metrics::store_read(txn.is_ok());
        txn
    }

    fn write_with(
        &self,
        writes: &[Write<'_>],
        indexer: Option<&Indexer>,
        durability: redb::Durability,
    ) -> Result<Vec<Versioned>, StoreError> {
        let started = Instant::now();
        let mut result = self.write_once(writes, indexer, durability);
        // Failed because an earlier write did, and reopened: the disk has
        // room again, so this write is tried once more on the new handle.
        if matches!(result, Err(StoreError::Io(_))) && self.reopen_if_failed() {
            result = self.write_once(writes, indexer, durability);
        }
        let outcome = match &result {
            Ok(_) => crate::metrics::StoreWrite::Ok,
            Err(StoreError::Conflict { .. }) => crate::metrics::StoreWrite::Conflict,
            Err(_) => crate::metrics::StoreWrite::Error,
        };
        crate::metrics::store_write(outcome, started.elapsed());
        result
    }

    fn write_once(
        &self,
        writes: &[Write<'_>],
        indexer: Option<&Indexer>,
        durability: redb::Durability,
    ) -> Result<Vec<Versioned>, StoreError> {
        let mut txn = self.db()?.begin_write().map_err(io)?;
        txn.set_durability(durability);
        let mut results = Vec::with_capacity(writes.len());
        {
            let mut docs = txn.open_table(DOCS).map_err(io)?;
            let mut meta = txn.open_table(META).map_err(io)?;
            // (index, term, id, add?) for every write, applied sorted below.
            let mut posting_changes: Vec<(&str, String, &str, bool)> = Vec::new();
            let mut seq_no = meta.get(SEQ_NO).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            for w in writes {
                let current = docs
                    .get((w.index, w.id))
                    .map_err(io)?
                    .map(|v| decode(w.index, w.id, v.value()))
                    .transpose()?;
                check(w, current.as_ref())?;
                if let Some(indexer) = indexer {
                    let terms = |source: Option<&[u8]>| {
                        let mut t = source.map(|s| indexer(w.index, s)).unwrap_or_default();
                        t.sort_unstable();
                        t.dedup();
                        t
                    };
                    let old = terms(current.as_ref().map(|c| c.source.as_slice()));
                    let new = terms(w.source.as_deref());
                    for term in old.iter().filter(|t| new.binary_search(t).is_err()) {
                        posting_changes.push((w.index, term.clone(), w.id, false));
                    }
                    for term in new.into_iter().filter(|t| old.binary_search(t).is_err()) {
                        posting_changes.push((w.index, term, w.id, true));
                    }
                }
                seq_no += 1;
                let versioned = Versioned {
                    seq_no,
                    primary_term: self.primary_term,
                    source: w.source.clone().unwrap_or_default(),
                };
                match &w.source {
                    Some(_) => {
                        docs.insert((w.index, w.id), encode(&versioned).as_slice()).map_err(io)?;
                    }
                    None => {
                        docs.remove((w.index, w.id)).map_err(io)?;
                    }
                }
                results.push(versioned);
            }
            meta.insert(SEQ_NO, seq_no).map_err(io)?;
            // In key order: consecutive changes land on the same B-tree
            // pages. Within one key, the later write's change wins.
            posting_changes.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
            let mut postings = txn.open_table(POSTINGS).map_err(io)?;
            for (i, (index, term, id, add)) in posting_changes.iter().enumerate() {
                let key = (index.as_bytes(), term.as_bytes(), id.as_bytes());
                if posting_changes
                    .get(i + 1)
                    .is_some_and(|next| (next.0, &next.1, next.2) == (*index, term, *id))
                {
                    continue;
                }
                if *add {
                    postings.insert(key, ()).map_err(io)?;
                } else {
                    postings.remove(key).map_err(io)?;
                }
            }
        }
        // Dropping `txn` without commit (on any error above) aborts it.
        txn.commit().map_err(io)?;
        Ok(results)
    }

    /// The ids of `index`'s documents holding a term in `from..to` (`to`
    /// excluded), each once, in id order.
    pub fn postings(&self, index: &str, from: &str, to: &str) -> Result<Vec<String>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(POSTINGS).map_err(io)?;
        let mut ids = Vec::new();
        let (index, empty) = (index.as_bytes(), &b""[..]);
        for entry in
            table.range((index, from.as_bytes(), empty)..(index, to.as_bytes(), empty)).map_err(io)?
        {
            let (key, _) = entry.map_err(io)?;
            // Ids were written from `&str`s.
            ids.push(String::from_utf8_lossy(key.value().2).into_owned());
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The documents of `index` with these ids (missing ones skipped), read
    /// in one transaction.
    pub fn get_many(&self, index: &str, ids: &[String]) -> Result<Vec<(String, Versioned)>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(DOCS).map_err(io)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(v) = table.get((index, id.as_str())).map_err(io)? {
                out.push((id.clone(), decode(index, id, v.value())?));
            }
        }
        Ok(out)
    }

    /// Rebuilds every posting with `indexer` unless the store already holds
    /// postings of `version` — for stores written before postings existed,
    /// or by an indexer that found other terms. One transaction.
    pub fn ensure_postings(&self, version: u64, indexer: &Indexer) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(io)?;
        {
            let mut meta = txn.open_table(META).map_err(io)?;
            if meta.get(POSTINGS_VERSION).map_err(io)?.map(|v| v.value()) == Some(version) {
                return Ok(());
            }
            txn.delete_table(POSTINGS).map_err(io)?;
            let mut postings = txn.open_table(POSTINGS).map_err(io)?;
            let docs = txn.open_table(DOCS).map_err(io)?;
            for entry in docs.iter().map_err(io)? {
                let (key, value) = entry.map_err(io)?;
                let (index, id) = key.value();
                let doc = decode(index, id, value.value())?;
                for term in indexer(index, &doc.source) {
                    postings.insert((index.as_bytes(), term.as_bytes(), id.as_bytes()), ()).map_err(io)?;
                }
            }
            meta.insert(POSTINGS_VERSION, version).map_err(io)?;
        }
        txn.commit().map_err(io)?;
        Ok(())
    }
}

fn check(w: &Write<'_>, current: Option<&Versioned>) -> Result<(), StoreError> {
    let conflict =
        |message: String| StoreError::Conflict { index: w.index.to_owned(), id: w.id.to_owned(), message };
    match (w.expect, current) {
        (Expect::Any, _) => Ok(()),
        (Expect::Absent, None) => Ok(()),
        (Expect::Absent, Some(_)) => Err(conflict("document already exists".into())),
        (Expect::Version { .. }, None) => Err(conflict("document does not exist".into())),
        (Expect::Version { seq_no, primary_term }, Some(c))
            if c.seq_no == seq_no && c.primary_term == primary_term =>
        {
            Ok(())
        }
        (Expect::Version { seq_no, primary_term }, Some(c)) => Err(conflict(format!(
            "required seqNo [{seq_no}], primary term [{primary_term}]; current seqNo [{}], primary term [{}]",
            c.seq_no, c.primary_term
        ))),
    }
}

fn encode(v: &Versioned) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + v.source.len());
    out.extend_from_slice(&v.seq_no.to_le_bytes());
    out.extend_from_slice(&v.primary_term.to_le_bytes());
    out.extend_from_slice(&v.source);
    out
}

fn decode(index: &str, id: &str, bytes: &[u8]) -> Result<Versioned, StoreError> {
    let corrupt = || StoreError::Corrupt { index: index.to_owned(), id: id.to_owned() };
    let seq_no = u64::from_le_bytes(bytes.get(..8).ok_or_else(corrupt)?.try_into().map_err(|_| corrupt())?);
    let primary_term =
        u64::from_le_bytes(bytes.get(8..16).ok_or_else(corrupt)?.try_into().map_err(|_| corrupt())?);
    Ok(Versioned { seq_no, primary_term, source: bytes[16..].to_vec() })
}

/// The store holds password hashes: owner only.
/// Whether a MiB can be written beside `path` (written, synced, removed).
fn room_to_write(path: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let probe = path.with_extension("space-probe");
    let result = std::fs::File::create(&probe).and_then(|mut file| {
        file.write_all(&[0u8; 1 << 20])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    result
}

fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put<'a>(index: &'a str, id: &'a str, source: &str, expect: Expect) -> Write<'a> {
        Write { index, id, source: Some(source.as_bytes().to_vec()), expect }
    }

    #[test]
    fn compare_and_set_and_atomic_batches() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("s.redb"))?;
        let v1 = store.write(&[put("i", "a", "one", Expect::Absent)])?.remove(0);
        assert!(matches!(
            store.write(&[put("i", "a", "x", Expect::Absent)]),
            Err(StoreError::Conflict { .. })
        ));
        let at_v1 = Expect::Version { seq_no: v1.seq_no, primary_term: v1.primary_term };
        let v2 = store.write(&[put("i", "a", "two", at_v1)])?.remove(0);
        assert!(v2.seq_no > v1.seq_no);
        // A stale CAS fails and names both versions.
        let stale =
            store.write(&[put("i", "a", "three", at_v1)]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(stale.contains("version conflict on [i][a]: required seqNo"), "{stale}");
        // A batch with one failing write changes nothing.
        let batch = [put("i", "b", "new", Expect::Any), put("i", "a", "bad", at_v1)];
        assert!(store.write(&batch).is_err());
        assert_eq!(store.get("i", "b")?, None);
        assert_eq!(store.get("i", "a")?.map(|v| v.source), Some(b"two".to_vec()));
        // Lists stay within their index.
        store.write(&[put("j", "z", "other", Expect::Any), put("i", "c", "three", Expect::Any)])?;
        let ids: Vec<String> = store.list("i")?.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["a", "c"]);
        store.write(&[put("i", "ab", "x", Expect::Any), put("i", "b", "y", Expect::Any)])?;
        let ids: Vec<String> = store.list_prefix("i", "a")?.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["a", "ab"]);
        assert_eq!(store.ids_between("i", "ab", "c")?, ["ab", "b"]);
        assert_eq!(store.ids_between("j", "", "\u{10ffff}")?, ["z"]);
        store.write(&[Write { index: "i", id: "ab", source: None, expect: Expect::Any }])?;
        store.write(&[Write { index: "i", id: "c", source: None, expect: Expect::Any }])?;
        assert_eq!(store.get("i", "c")?, None);
        Ok(())
    }

    #[test]
    fn reopening_keeps_data_and_starts_a_new_term() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.redb");
        let first = {
            let store = Store::open(&path)?;
            store.write(&[put("i", "a", "kept", Expect::Any)])?.remove(0)
        };
        let store = Store::open(&path)?;
        assert_eq!(store.primary_term(), first.primary_term + 1);
        assert_eq!(store.get("i", "a")?, Some(first));
        Ok(())
    }
}
