//! The `files` grant: a private directory per extension, preopened as `/data`
//! (`<data-dir>/files/<extension-id>`). Without the grant the filesystem
//! interfaces are linked (see [`super::wasi`]) but no directory is opened,
//! so every path lookup fails.
//!
//! `wasi:filesystem/types` is served by [`GuardedFilesystem`], which wraps
//! wasmtime-wasi's implementation and adds what it lacks:
//!
//! - **No links.** `symlink-at` and `link-at` are refused (a planted link
//!   pointing outside the directory would be followed by whoever reads the
//!   data directory later: backups, operators, another process). Lookups
//!   never follow a final-component symlink, and a directory that already
//!   holds one is refused at load.
//! - **A disk quota** (`limits.files_mib`) for the whole directory, shared
//!   by every concurrent invocation of the extension: each write, file
//!   extension (`set-size`) and new entry is charged *before* it happens
//!   and refused with `insufficient-space` (ENOSPC) when it does not fit.
//!
//! How the quota counts. Usage is the directory's walk: every entry (file,
//! directory) costs [`ENTRY_BYTES`] plus its length. Between walks the
//! charges err high: a write of `n` bytes is charged `n` rounded up to a
//! block plus one block (the most disk blocks it can newly touch, even
//! sparse), an overwrite is charged as if it grew the file, a write past
//! the end of the file (descriptor `write` at an offset, or a
//! `write-via-stream` opened there) is charged for the hole it leaves too —
//! a file's length is what the walk counts, however sparse — and deletions
//! are not credited. When a charge does not fit and anything changed since
//! the last walk, the directory is walked again (off the executor) and the
//! charge retried, so the over-count never refuses a write that truly fits.
//! Bytes charged but not yet on disk (a write in flight) and bytes charged
//! while the walk ran are added to its result, so a walk never forgets them.
//!
//! The module owns both filesystem interfaces ([`IMPORTS`], [`link`]), the
//! load-time preparation ([`prepare`]: the directory, refused if it holds
//! a link, and its quota) and the per-invocation context ([`FilesCtx`]).
//!
//! What the guest sees: a refused descriptor call (`open-at` creating,
//! `create-directory-at`, `set-size`, `write`) fails with ENOSPC; a refused
//! stream write fails with EIO, because wasi-libc maps every stream error to
//! EIO without asking `filesystem-error-code`. The host log names the quota.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystem, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, DescriptorStat, ErrorCode, HostDescriptor, HostDirectoryEntryStream,
};
use wasmtime_wasi::p2::{
    DynOutputStream, FsError, FsResult, OutputStream, Pollable, StreamError, StreamResult,
};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::{Covers, Versions};
use crate::capability::ImportClass;
use crate::error::{ErrorKind, HasKind};

/// The filesystem interfaces: linked for every extension (adapter-built
/// guests import them even for `println!`), with a directory only with
/// the `files` grant.
pub const IMPORTS: &[Covers] = &[Covers {
    package: "wasi:filesystem",
    items: &["types", "preopens"],
    versions: Versions::Wasi02,
    class: ImportClass::Filesystem,
}];

/// Links `wasi:filesystem/types` through [`GuardedFilesystem`] and
/// `preopens` as wasmtime-wasi serves them.
pub fn link<T: WasiFilesystemView + 'static>(
    l: &mut Linker<T>,
    view: fn(&mut T) -> GuardedView<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, GuardedFilesystem>(l, view)?;
    preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)
}

/// One invocation's files context: the extension's quota (none without
/// the `files` grant).
#[derive(Debug, Clone, Default)]
pub struct FilesCtx {
    pub quota: Option<Arc<FilesQuota>>,
}

/// What [`prepare`] made ready at load: the directory and its quota,
/// shared by all the extension's invocations.
#[derive(Debug)]
pub struct PreparedFiles {
    pub dir: PathBuf,
    pub quota: Arc<FilesQuota>,
}

/// Load-time preparation of the `files` grant: creates the extension's
/// directory (so a failure is a load error) and measures it for the quota
/// (a directory holding a symlink is refused).
pub fn prepare(data_dir: &Path, extension_id: &str, limit: u64) -> Result<PreparedFiles, FilesError> {
    let dir = host_dir(data_dir, extension_id);
    std::fs::create_dir_all(&dir).map_err(|source| FilesError::Dir { dir: dir.clone(), source })?;
    let quota = FilesQuota::open(extension_id, &dir, limit)?;
    Ok(PreparedFiles { dir, quota: Arc::new(quota) })
}

/// Where the guest sees its directory.
pub const GUEST_PATH: &str = "/data";

/// What one directory entry costs against the quota besides its length:
/// one block, so a flood of empty files is not free.
pub const ENTRY_BYTES: u64 = 4096;

/// `ENOSPC`: what the guest's libc reports for a refused write.
const ENOSPC: i32 = 28;

/// The host directory backing an extension's `/data`.
pub fn host_dir(data_dir: &Path, extension_id: &str) -> PathBuf {
    data_dir.join("files").join(extension_id)
}

/// Opens `dir` as `/data` for one invocation.
pub fn preopen(builder: &mut WasiCtxBuilder, dir: &Path) -> wasmtime::Result<()> {
    builder.preopened_dir(dir, GUEST_PATH, FsPerms::ReadWrite)?;
    Ok(())
}

/// Why an extension's files directory was refused at load.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{dir}: cannot prepare its files directory: {source}")]
    Dir { dir: PathBuf, source: std::io::Error },
    #[error("{dir}: cannot measure its files directory: {source}")]
    Walk { dir: PathBuf, source: std::io::Error },
    #[error(
        "{dir}: its files directory holds symbolic links, which the `files` capability refuses \
         (remove them to load the extension): {}", .links.join(", ")
    )]
    Symlinks { dir: PathBuf, links: Vec<String> },
}

impl HasKind for FilesError {
    fn kind(&self) -> ErrorKind {
        match self {
            FilesError::Dir { .. } | FilesError::Walk { .. } => ErrorKind::Internal,
            FilesError::Symlinks { .. } => ErrorKind::Invalid,
        }
    }
}

/// What a walk of the directory found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    /// [`ENTRY_BYTES`] per entry plus the length of every file.
    pub bytes: u64,
    /// Symbolic links, relative to the directory.
    pub symlinks: Vec<String>,
}

/// Walks `dir` without following links.
pub fn usage(dir: &Path) -> std::io::Result<Usage> {
    let mut usage = Usage::default();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let meta = entry.path().symlink_metadata()?;
            usage.bytes = usage.bytes.saturating_add(ENTRY_BYTES);
            if meta.file_type().is_symlink() {
                let path = entry.path();
                usage.symlinks.push(path.strip_prefix(dir).unwrap_or(&path).display().to_string());
            } else if meta.is_dir() {
                pending.push(entry.path());
            } else {
                usage.bytes = usage.bytes.saturating_add(meta.len());
            }
        }
    }
    Ok(usage)
}

/// The most bytes a write of `len` bytes can newly put on disk: whole
/// blocks, one more for a write straddling a block boundary.
fn write_cost(len: u64) -> u64 {
    if len == 0 { 0 } else { len.div_ceil(ENTRY_BYTES).saturating_add(1).saturating_mul(ENTRY_BYTES) }
}

/// What a write of `len` bytes at `offset` into a file of `size` bytes is
/// charged: its blocks, plus the hole it leaves past the end of the file.
/// The quota counts a file's length (its apparent size), so a write far past
/// the end — one byte at 1 TiB — costs that whole length, as `set-size` does.
fn positioned_write_cost(size: u64, offset: u64, len: u64) -> u64 {
    write_cost(len).saturating_add(offset.saturating_sub(size))
}

/// The longest write whose [`write_cost`] fits in `room`.
fn longest_write(room: u64) -> u64 {
    room.saturating_sub(ENTRY_BYTES) / ENTRY_BYTES * ENTRY_BYTES
}

#[derive(Debug)]
struct Ledger {
    /// Usage at the last walk plus every charge since (an upper bound).
    charged: u64,
    /// Every charge ever made (only grows): what was charged while a walk ran.
    total: u64,
    /// Something was charged or removed since the last walk, so a walk may
    /// find less than `charged`.
    dirty: bool,
}

/// One extension's disk quota, shared by all its invocations.
#[derive(Debug)]
pub struct FilesQuota {
    extension_id: String,
    dir: PathBuf,
    limit: u64,
    ledger: Mutex<Ledger>,
    /// Charged bytes whose write has not finished yet.
    in_flight: AtomicU64,
}

/// A charge whose bytes may still be in flight; dropping it says they landed.
#[derive(Debug)]
pub struct Charge {
    quota: Arc<FilesQuota>,
    bytes: u64,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.quota.in_flight.fetch_sub(self.bytes, Ordering::AcqRel);
        // Charges err high (and a failed write put nothing on disk): a walk
        // may find room again.
        self.quota.mark_dirty();
    }
}

impl FilesQuota {
    /// Measures `dir` (prepared already) and refuses it if it holds links.
    pub fn open(extension_id: &str, dir: &Path, limit: u64) -> Result<FilesQuota, FilesError> {
        let found = usage(dir).map_err(|source| FilesError::Walk { dir: dir.to_owned(), source })?;
        if !found.symlinks.is_empty() {
            return Err(FilesError::Symlinks { dir: dir.to_owned(), links: found.symlinks });
        }
        if found.bytes > limit {
            tracing::warn!(
                extension = extension_id,
                used = found.bytes,
                limit,
                "files directory is over its quota; writes are refused until files are removed"
            );
        }
        Ok(FilesQuota {
            extension_id: extension_id.to_owned(),
            dir: dir.to_owned(),
            limit,
            ledger: Mutex::new(Ledger { charged: found.bytes, total: 0, dirty: false }),
            in_flight: AtomicU64::new(0),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The usage as counted now (an upper bound of the real one).
    pub fn charged(&self) -> u64 {
        self.lock().charged
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Room left before the quota, as counted now.
    fn room(&self) -> u64 {
        self.limit.saturating_sub(self.lock().charged)
    }

    fn is_dirty(&self) -> bool {
        self.lock().dirty
    }

    /// Something was removed or shrunk: a walk may find room again.
    fn mark_dirty(&self) {
        self.lock().dirty = true;
    }

    /// Charges `bytes` if they fit under the quota as counted now.
    fn try_charge(self: &Arc<Self>, bytes: u64) -> Option<Charge> {
        let mut ledger = self.lock();
        let charged = ledger.charged.checked_add(bytes).filter(|&c| c <= self.limit)?;
        ledger.charged = charged;
        ledger.total = ledger.total.saturating_add(bytes);
        ledger.dirty = true;
        self.in_flight.fetch_add(bytes, Ordering::AcqRel);
        Some(Charge { quota: self.clone(), bytes })
    }

    /// Replaces the count by a walk of the directory. Blocking: call it off
    /// the executor. The walk runs without the lock (charges go on meanwhile);
    /// what was in flight when it started and everything charged while it
    /// ran are added to what it found: a write may so be counted twice
    /// (erring high), never missed.
    fn reconcile(&self) {
        let (in_flight, total_before) = {
            let ledger = self.lock();
            (self.in_flight.load(Ordering::Acquire), ledger.total)
        };
        match usage(&self.dir) {
            Ok(found) => {
                let mut ledger = self.lock();
                let charged_meanwhile = ledger.total.saturating_sub(total_before);
                ledger.charged = found.bytes.saturating_add(in_flight).saturating_add(charged_meanwhile);
                ledger.dirty = charged_meanwhile > 0;
            }
            Err(e) => {
                tracing::warn!(extension = &*self.extension_id, "cannot measure the files directory: {e}")
            }
        }
    }

    /// Walks the directory on a blocking thread.
    async fn reconcile_off_executor(self: &Arc<Self>) {
        let quota = self.clone();
        if tokio::task::spawn_blocking(move || quota.reconcile()).await.is_err() {
            tracing::warn!(extension = &*self.extension_id, "files quota walk did not finish");
        }
    }

    /// Charges `bytes`, walking the directory once if the count may be
    /// stale; `None` when they do not fit (logged).
    async fn charge(self: &Arc<Self>, bytes: u64) -> Option<Charge> {
        if let Some(charge) = self.try_charge(bytes) {
            return Some(charge);
        }
        if self.is_dirty() {
            self.reconcile_off_executor().await;
            if let Some(charge) = self.try_charge(bytes) {
                return Some(charge);
            }
        }
        self.refused(bytes);
        None
    }

    fn refused(&self, bytes: u64) {
        tracing::warn!(
            extension = &*self.extension_id,
            wanted = bytes,
            used = self.charged(),
            limit = self.limit,
            "files quota of {} MiB reached; write refused",
            self.limit >> 20
        );
    }
}

/// The error a guest sees when its quota refuses a stream write.
fn quota_stream_error() -> StreamError {
    StreamError::LastOperationFailed(std::io::Error::from_raw_os_error(ENOSPC).into())
}

/// `wasi:filesystem/types` with the guards above.
#[derive(Debug)]
pub struct GuardedFilesystem;

impl HasData for GuardedFilesystem {
    type Data<'a> = GuardedView<'a>;
}

/// The store's filesystem view plus its quota (none without `files`).
pub struct GuardedView<'a> {
    fs: WasiFilesystemCtxView<'a>,
    quota: Option<Arc<FilesQuota>>,
}

impl std::fmt::Debug for GuardedView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedView").field("quota", &self.quota).finish_non_exhaustive()
    }
}

impl<'a> GuardedView<'a> {
    /// The view the linker's accessor hands out: the store's filesystem
    /// and the invocation's [`FilesCtx`].
    pub fn new(fs: WasiFilesystemCtxView<'a>, ctx: FilesCtx) -> Self {
        GuardedView { fs, quota: ctx.quota }
    }
}

/// A second handle on a borrowed descriptor, to call two operations.
fn again(fd: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(fd.rep())
}

/// Path flags with symlink following removed.
fn no_follow(flags: types::PathFlags) -> types::PathFlags {
    flags & !types::PathFlags::SYMLINK_FOLLOW
}

/// Charges `bytes` against `quota` (if any); `insufficient-space` if they
/// do not fit. (A free function: the view itself is not `Sync`, so the
/// future must not hold `&self`.)
async fn charge(quota: Option<Arc<FilesQuota>>, bytes: u64) -> FsResult<Option<Charge>> {
    match quota {
        None => Ok(None),
        Some(quota) => match quota.charge(bytes).await {
            Some(charge) => Ok(Some(charge)),
            None => Err(ErrorCode::InsufficientSpace.into()),
        },
    }
}

impl GuardedView<'_> {
    fn removed_something(&self) {
        if let Some(quota) = &self.quota {
            quota.mark_dirty();
        }
    }

    fn refuse_link(&self, what: &str) -> FsError {
        tracing::warn!(
            extension = self.quota.as_ref().map(|q| q.extension_id.as_str()).unwrap_or(""),
            "refused {what}: the files capability allows no links"
        );
        ErrorCode::NotPermitted.into()
    }

    /// The open file behind `fd` (to measure it), when a quota applies.
    fn file_of(&mut self, fd: &Resource<Descriptor>) -> FsResult<Option<Arc<std::fs::File>>> {
        if self.quota.is_none() {
            return Ok(None);
        }
        match self.fs.table.get(fd)? {
            Descriptor::File(file) => Ok(Some(file.file.clone())),
            // wasmtime-wasi refuses a stream on a directory itself.
            Descriptor::Dir(_) => Ok(None),
        }
    }

    /// Wraps a file output stream so that its writes are charged;
    /// `positioned` is the file and the offset a `write-via-stream` starts at.
    fn guard_stream(
        &mut self,
        stream: Resource<DynOutputStream>,
        positioned: Option<(Arc<std::fs::File>, u64)>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some(quota) = self.quota.clone() else { return Ok(stream) };
        let inner = self.fs.table.delete(stream)?;
        let guarded: DynOutputStream =
            Box::new(QuotaStream { inner, quota, positioned, pending: Vec::new(), walk_wanted: false });
        Ok(self.fs.table.push(guarded)?)
    }
}

impl types::Host for GuardedView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.fs, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.fs, err)
    }
}

impl HostDescriptor for GuardedView<'_> {
    async fn advise(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        HostDescriptor::advise(&mut self.fs, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        HostDescriptor::sync_data(&mut self.fs, fd).await
    }

    async fn get_flags(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::DescriptorFlags> {
        HostDescriptor::get_flags(&mut self.fs, fd).await
    }

    async fn get_type(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::DescriptorType> {
        HostDescriptor::get_type(&mut self.fs, fd).await
    }

    async fn set_size(&mut self, fd: Resource<types::Descriptor>, size: types::Filesize) -> FsResult<()> {
        let current = HostDescriptor::stat(&mut self.fs, again(&fd)).await?.size;
        let _charge = if size > current {
            charge(self.quota.clone(), write_cost(size - current)).await?
        } else {
            self.removed_something();
            None
        };
        HostDescriptor::set_size(&mut self.fs, fd, size).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<types::Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times(&mut self.fs, fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<types::Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        HostDescriptor::read(&mut self.fs, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<types::Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        let _charge = if self.quota.is_some() {
            let current = HostDescriptor::stat(&mut self.fs, again(&fd)).await?.size;
            charge(self.quota.clone(), positioned_write_cost(current, offset, buf.len() as u64)).await?
        } else {
            None
        };
        HostDescriptor::write(&mut self.fs, fd, buf, offset).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        HostDescriptor::read_directory(&mut self.fs, fd).await
    }

    async fn sync(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        HostDescriptor::sync(&mut self.fs, fd).await
    }

    async fn create_directory_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<()> {
        let _charge = charge(self.quota.clone(), ENTRY_BYTES).await?;
        HostDescriptor::create_directory_at(&mut self.fs, fd, path).await
    }

    async fn stat(&mut self, fd: Resource<types::Descriptor>) -> FsResult<DescriptorStat> {
        HostDescriptor::stat(&mut self.fs, fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<DescriptorStat> {
        HostDescriptor::stat_at(&mut self.fs, fd, no_follow(path_flags), path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times_at(&mut self.fs, fd, no_follow(path_flags), path, atim, mtim).await
    }

    async fn link_at(
        &mut self,
        _fd: Resource<types::Descriptor>,
        _old_path_flags: types::PathFlags,
        _old_path: String,
        _new_descriptor: Resource<types::Descriptor>,
        _new_path: String,
    ) -> FsResult<()> {
        Err(self.refuse_link("a hard link"))
    }

    async fn open_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<types::Descriptor>> {
        // A new entry costs a block; opening an existing one with CREATE is
        // over-charged until the next walk.
        let _charge = if oflags.contains(types::OpenFlags::CREATE) {
            charge(self.quota.clone(), ENTRY_BYTES).await?
        } else {
            None
        };
        if oflags.contains(types::OpenFlags::TRUNCATE) {
            self.removed_something();
        }
        HostDescriptor::open_at(&mut self.fs, fd, no_follow(path_flags), path, oflags, flags).await
    }

    fn drop(&mut self, fd: Resource<types::Descriptor>) -> wasmtime::Result<()> {
        HostDescriptor::drop(&mut self.fs, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<String> {
        HostDescriptor::readlink_at(&mut self.fs, fd, path).await
    }

    async fn remove_directory_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<()> {
        let result = HostDescriptor::remove_directory_at(&mut self.fs, fd, path).await;
        self.removed_something();
        result
    }

    async fn rename_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path: String,
        new_fd: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        // Renaming over an existing file frees it.
        let result = HostDescriptor::rename_at(&mut self.fs, fd, old_path, new_fd, new_path).await;
        self.removed_something();
        result
    }

    async fn symlink_at(
        &mut self,
        _fd: Resource<types::Descriptor>,
        _src_path: String,
        _dest_path: String,
    ) -> FsResult<()> {
        Err(self.refuse_link("a symbolic link"))
    }

    async fn unlink_file_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<()> {
        let result = HostDescriptor::unlink_file_at(&mut self.fs, fd, path).await;
        self.removed_something();
        result
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<wasmtime_wasi::p2::DynInputStream>> {
        HostDescriptor::read_via_stream(&mut self.fs, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let file = self.file_of(&fd)?;
        let stream = HostDescriptor::write_via_stream(&mut self.fs, fd, offset)?;
        self.guard_stream(stream, file.map(|file| (file, offset)))
    }

    fn append_via_stream(&mut self, fd: Resource<types::Descriptor>) -> FsResult<Resource<DynOutputStream>> {
        // Appending writes at the end: it never leaves a hole.
        let stream = HostDescriptor::append_via_stream(&mut self.fs, fd)?;
        self.guard_stream(stream, None)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<types::Descriptor>,
        b: Resource<types::Descriptor>,
    ) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.fs, a, b).await
    }

    async fn metadata_hash(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash(&mut self.fs, fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash_at(&mut self.fs, fd, no_follow(path_flags), path).await
    }
}

impl HostDirectoryEntryStream for GuardedView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        HostDirectoryEntryStream::read_directory_entry(&mut self.fs, stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.fs, stream)
    }
}

/// A file output stream whose writes are charged to the quota first.
/// `check-write` offers no more than fits, so a guest writing in a loop
/// gets a short write and then `insufficient-space`.
struct QuotaStream {
    inner: DynOutputStream,
    quota: Arc<FilesQuota>,
    /// For `write-via-stream`: the file and where the next write lands, so a
    /// stream opened past the end is charged for the hole. `None` appends.
    positioned: Option<(Arc<std::fs::File>, u64)>,
    /// Charges of writes the inner stream has not finished.
    pending: Vec<Charge>,
    /// `check-write` found no room with a stale count: walk in `ready`.
    walk_wanted: bool,
}

#[wasmtime_wasi::async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        if self.walk_wanted {
            self.walk_wanted = false;
            self.quota.reconcile_off_executor().await;
        }
        self.inner.ready().await;
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        let len = bytes.len() as u64;
        let cost = match &self.positioned {
            // The file's length now (an earlier write still in flight is
            // not in it yet: the hole is over-counted, never under).
            Some((file, at)) => {
                let size = file.metadata().map_err(|e| StreamError::LastOperationFailed(e.into()))?.len();
                positioned_write_cost(size, *at, len)
            }
            None => write_cost(len),
        };
        let Some(charge) = self.quota.try_charge(cost) else {
            self.quota.refused(cost);
            return Err(quota_stream_error());
        };
        self.inner.write(bytes)?;
        if let Some((_, at)) = &mut self.positioned {
            *at = at.saturating_add(len);
        }
        self.pending.push(charge);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let permit = self.inner.check_write();
        if !matches!(permit, Ok(0)) {
            // Ready again (or failed): the previous writes are done.
            self.pending.clear();
        }
        let permit = permit?;
        if permit == 0 {
            return Ok(0);
        }
        let fits = usize::try_from(longest_write(self.quota.room())).unwrap_or(usize::MAX);
        if fits > 0 {
            return Ok(permit.min(fits));
        }
        if self.quota.is_dirty() {
            // Maybe over-counted: `ready` walks the directory, then the
            // guest asks again.
            self.walk_wanted = true;
            return Ok(0);
        }
        self.quota.refused(ENTRY_BYTES);
        Err(quota_stream_error())
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_every_entry_and_length_and_finds_links() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("a"), vec![0u8; 10_000])?;
        std::fs::create_dir(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("sub").join("b"), b"")?;
        let found = usage(dir.path())?;
        assert_eq!(found.bytes, 3 * ENTRY_BYTES + 10_000);
        assert!(found.symlinks.is_empty());

        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", dir.path().join("sub").join("evil"))?;
            let found = usage(dir.path())?;
            assert_eq!(found.symlinks, vec!["sub/evil".to_owned()]);
            let refused = FilesQuota::open("x", dir.path(), 1 << 20);
            assert!(
                matches!(&refused, Err(FilesError::Symlinks { links, .. }) if links == &["sub/evil".to_owned()]),
                "{refused:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn write_costs_cover_every_block_a_write_can_touch() {
        assert_eq!(write_cost(0), 0);
        assert_eq!(write_cost(1), 2 * ENTRY_BYTES);
        assert_eq!(write_cost(ENTRY_BYTES), 2 * ENTRY_BYTES);
        assert_eq!(write_cost(ENTRY_BYTES + 1), 3 * ENTRY_BYTES);
        for room in [0, 1, ENTRY_BYTES, 2 * ENTRY_BYTES, 10 * ENTRY_BYTES + 7] {
            let longest = longest_write(room);
            assert!(write_cost(longest) <= room, "room {room}: {longest}");
            assert!(write_cost(longest + 1) > room || longest == 0 && room < 2 * ENTRY_BYTES);
        }
    }

    #[test]
    fn a_write_past_the_end_is_charged_for_the_hole() {
        // Inside the file or appending: only the blocks written.
        assert_eq!(positioned_write_cost(10_000, 0, 1), write_cost(1));
        assert_eq!(positioned_write_cost(10_000, 10_000, 1), write_cost(1));
        // One byte at 1 TiB into an empty file: the whole apparent length.
        assert_eq!(positioned_write_cost(0, 1 << 40, 1), write_cost(1) + (1 << 40));
        assert_eq!(positioned_write_cost(100, 1000, 1), write_cost(1) + 900);
        assert_eq!(positioned_write_cost(0, u64::MAX, 1), u64::MAX, "saturates, never wraps");
    }

    #[tokio::test]
    async fn charges_stop_at_the_quota_and_a_walk_gives_back_what_was_freed()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let quota = Arc::new(FilesQuota::open("x", dir.path(), 16 * ENTRY_BYTES)?);
        assert_eq!(quota.charged(), 0);
        let first = quota.charge(10 * ENTRY_BYTES).await.ok_or("first charge refused")?;
        // Nothing landed on disk, but the charge is in flight: a walk keeps it.
        assert!(quota.charge(10 * ENTRY_BYTES).await.is_none(), "20 blocks do not fit in 16");
        assert_eq!(quota.charged(), 10 * ENTRY_BYTES);
        drop(first);
        // The write "landed" nowhere (nothing on disk): the next walk finds
        // room again, so an over-count never refuses what truly fits.
        assert!(quota.charge(10 * ENTRY_BYTES).await.is_some());
        // Written behind the quota's back; a walk sees it.
        std::fs::write(dir.path().join("big"), vec![0u8; (15 * ENTRY_BYTES) as usize])?;
        quota.reconcile();
        assert_eq!(quota.charged(), 16 * ENTRY_BYTES);
        assert!(quota.charge(ENTRY_BYTES).await.is_none(), "the file fills the quota");
        Ok(())
    }
}
