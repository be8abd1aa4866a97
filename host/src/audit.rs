//! The audit log: one JSON object per line in `<data-dir>/audit/audit.log`,
//! queryable over `GET /_warden/audit`. Categories follow OpenSearch's audit
//! logging; by default AUTHENTICATED and GRANTED_PRIVILEGES are off (as in
//! OpenSearch) because they fire on every request. Passwords, hashes and
//! tokens are never recorded: events carry names, actions and reasons only.
//!
//! What an unauthenticated client can make it write is bounded: every field
//! is cut to [`AuditSettings::max_field_bytes`] (UTF-8 safe, with a marker);
//! past the first [`AuditSettings::failed_login_burst`] FAILED_LOGIN events
//! of one address in a window, the rest become one summary event carrying
//! their `count`; the file rotates by size (`audit.log` → `audit.log.1` …
//! `audit.log.<max_files>`, the oldest deleted). The directory is 0700 and
//! the files 0600. A query reads the files newest first, line by line from
//! the end, and stops once it has `size` events: recent events cost little
//! however big the files.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Authenticated,
    FailedLogin,
    GrantedPrivileges,
    MissingPrivileges,
    SecurityConfigWrite,
    ApiTokenWrite,
    /// A scheduled job ran (or was not run), with its outcome.
    JobRun,
    /// A job was registered, changed, given to another user, suspended or removed.
    JobWrite,
    /// An extension was installed (pending approval), or an install refused.
    ExtensionInstall,
    /// An installed extension was approved (serving from then on).
    ExtensionApprove,
    /// What an installed extension is granted was changed.
    ExtensionGrant,
    /// A new version of an approved extension was installed: applied at
    /// once (it only narrows), left waiting for approval (it widens), or
    /// applied on approval.
    ExtensionUpgrade,
    /// An installed extension was removed.
    ExtensionRemove,
    /// A user consented to an extension's background work, or a consent
    /// was revoked.
    ConsentWrite,
    /// A user's outstanding tokens were revoked, with the cause (password
    /// changed, disabled, deleted, roles changed).
    TokensRevoked,
}

impl Category {
    pub const ALL: [Category; 15] = [
        Category::Authenticated,
        Category::FailedLogin,
        Category::GrantedPrivileges,
        Category::MissingPrivileges,
        Category::SecurityConfigWrite,
        Category::ApiTokenWrite,
        Category::JobRun,
        Category::JobWrite,
        Category::ExtensionInstall,
        Category::ExtensionApprove,
        Category::ExtensionGrant,
        Category::ExtensionUpgrade,
        Category::ExtensionRemove,
        Category::ConsentWrite,
        Category::TokensRevoked,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Authenticated => "AUTHENTICATED",
            Category::FailedLogin => "FAILED_LOGIN",
            Category::GrantedPrivileges => "GRANTED_PRIVILEGES",
            Category::MissingPrivileges => "MISSING_PRIVILEGES",
            Category::SecurityConfigWrite => "SECURITY_CONFIG_WRITE",
            Category::ApiTokenWrite => "API_TOKEN_WRITE",
            Category::JobRun => "JOB_RUN",
            Category::JobWrite => "JOB_WRITE",
            Category::ExtensionInstall => "EXTENSION_INSTALL",
            Category::ExtensionApprove => "EXTENSION_APPROVE",
            Category::ExtensionGrant => "EXTENSION_GRANT",
            Category::ExtensionUpgrade => "EXTENSION_UPGRADE",
            Category::ExtensionRemove => "EXTENSION_REMOVE",
            Category::ConsentWrite => "CONSENT_WRITE",
            Category::TokensRevoked => "TOKENS_REVOKED",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// One audit record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// RFC 3339, UTC, milliseconds.
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    /// Milliseconds since the Unix epoch (for time filters).
    pub time_ms: u64,
    pub category: Option<Category>,
    pub request_id: String,
    /// The effective user, or the name a failed login claimed.
    pub user: Option<String>,
    /// Where the user's identity came from (`internal`, `jwt`,
    /// `anonymous`): a JWT `alice` is not the internal `alice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_source: Option<String>,
    pub remote_address: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indices: Vec<String>,
    pub extension: Option<String>,
    /// For extension calls: which gate decided (`route`, `service`, `user`).
    pub gate: Option<String>,
    /// For an extension's cluster call as a user: the policy the service
    /// gate decided with (`extension:<id>`, plus each role its
    /// `services_mappings` added for the user: `extension:reporter +
    /// act_as_original_user`), whichever gate then allowed or refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// For job events: the job's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Why: the denial or failure reason, or what was written.
    pub reason: Option<String>,
    /// For a summary event: how many events it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The token a request was authenticated with, when not the user's
    /// own credentials: the user's own actions and a token's are told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

impl Event {
    pub fn new(category: Category, request_id: &str) -> Event {
        let time_ms = crate::time::now_ms();
        Event {
            timestamp: rfc3339(time_ms),
            time_ms,
            category: Some(category),
            request_id: request_id.to_owned(),
            ..Event::default()
        }
    }

    pub fn remote(mut self, remote: Option<IpAddr>) -> Event {
        self.remote_address = remote.map(|r| r.to_string());
        self
    }

    // The builder the REST layer's `Caller::event` starts: one field each.

    pub fn user(mut self, user: &str) -> Event {
        self.user = Some(user.to_owned());
        self
    }

    pub fn action(mut self, action: &str) -> Event {
        self.action = Some(action.to_owned());
        self
    }

    pub fn extension(mut self, extension: &str) -> Event {
        self.extension = Some(extension.to_owned());
        self
    }

    pub fn gate(mut self, gate: &str) -> Event {
        self.gate = Some(gate.to_owned());
        self
    }

    pub fn job(mut self, job: &str) -> Event {
        self.job = Some(job.to_owned());
        self
    }

    pub fn path(mut self, path: String) -> Event {
        self.path = Some(path);
        self
    }

    pub fn reason(mut self, reason: String) -> Event {
        self.reason = Some(reason);
        self
    }

    pub fn credential(mut self, credential: Option<Credential>) -> Event {
        self.credential = credential;
        self
    }

    pub fn user_source(mut self, source: &str) -> Event {
        self.user_source = Some(source.to_owned());
        self
    }
}

/// A token that stood in for the user ([`Event::credential`]); never its
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// One of the user's API tokens: its name (as the API tokens API lists
    /// it, unique per creator) and its id (the start of the hash it is
    /// kept under: tells a deleted token from a new one of the same name).
    ApiToken { name: String, id: String },
    /// An on-behalf-of token of the user.
    OboToken,
}

/// Query filters for `GET /_warden/audit`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    /// A [`Category`] name (any case); an unknown name is refused, never
    /// read as "every category".
    #[serde(default, deserialize_with = "known_category")]
    pub category: Option<String>,
    pub user: Option<String>,
    pub extension: Option<String>,
    /// A job's id: its runs and changes.
    pub job: Option<String>,
    /// Milliseconds since the epoch, inclusive.
    pub from: Option<u64>,
    pub to: Option<u64>,
    /// Most recent first, at most this many (default 100, max 10,000).
    pub size: Option<usize>,
}

fn known_category<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let name = Option::<String>::deserialize(d)?.filter(|n| !n.trim().is_empty());
    match name {
        Some(n) if Category::parse(&n).is_none() => {
            let known: Vec<&str> = Category::ALL.iter().map(|c| c.name()).collect();
            Err(serde::de::Error::custom(format!(
                "unknown audit category `{n}` (known: {})",
                known.join(", ")
            )))
        }
        other => Ok(other),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl crate::error::HasKind for AuditError {
    /// The log is the host's own file: failing to read or write it is ours.
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Internal
    }
}

/// How much the audit log may hold and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// `audit.log` rotates before it would grow past this.
    pub max_file_bytes: u64,
    /// Rotated files kept (`audit.log.1` … `.N`); older ones are deleted.
    pub max_files: usize,
    /// Each text field of an event is cut to this many bytes.
    pub max_field_bytes: usize,
    /// FAILED_LOGIN events written one by one per address and window.
    pub failed_login_burst: u32,
    /// The window of [`AuditSettings::failed_login_burst`].
    pub failed_login_window: Duration,
}

impl Default for AuditSettings {
    /// 64 MiB files, 10 kept (≤ 704 MiB in all), 1 KiB fields, 10 failed
    /// logins a minute per address in full.
    fn default() -> Self {
        AuditSettings {
            max_file_bytes: 64 << 20,
            max_files: 10,
            max_field_bytes: 1024,
            failed_login_burst: 10,
            failed_login_window: Duration::from_secs(60),
        }
    }
}

/// Index entries at most in an event's `indices` list.
const MAX_INDICES: usize = 16;
/// Bytes kept of each index name in an event (names are at most 255 bytes).
const MAX_INDEX_BYTES: usize = 256;
/// Addresses whose failed logins are counted apart; more share one count.
const MAX_TRACKED_REMOTES: usize = 10_000;
/// A line longer than this (an older, unbounded event) is skipped by queries.
const MAX_LINE: usize = 1 << 20;
/// Queries stop this long before `from`: lines are appended in time order
/// give or take the few milliseconds between stamping and writing.
const FROM_SLACK_MS: u64 = 60_000;

#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    path: PathBuf,
    settings: AuditSettings,
    writer: Mutex<Writer>,
    disabled: BTreeSet<Category>,
}

#[derive(Debug)]
struct Writer {
    file: File,
    size: u64,
    /// Failed logins per address (`None`: no address, or past the table's cap).
    failures: HashMap<Option<String>, FailureWindow>,
    last_sweep: Instant,
}

#[derive(Debug)]
struct FailureWindow {
    started: Instant,
    written: u32,
    suppressed: u64,
    first_suppressed_ms: u64,
    last_suppressed_ms: u64,
}

/// `text` cut to at most `max` bytes on a character boundary, with a marker
/// saying how much was cut (the marker is extra).
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[{} more bytes]", &text[..end], text.len() - end))
}

impl Event {
    /// Every text field cut to `max` bytes, the index list to [`MAX_INDICES`].
    fn bounded(mut self, max: usize) -> Event {
        let cut = |field: &mut String| {
            if let Cow::Owned(cut) = truncate(field, max) {
                *field = cut;
            }
        };
        cut(&mut self.request_id);
        for field in [
            &mut self.user,
            &mut self.remote_address,
            &mut self.method,
            &mut self.path,
            &mut self.action,
            &mut self.extension,
            &mut self.gate,
            &mut self.policy,
            &mut self.job,
            &mut self.reason,
        ]
        .into_iter()
        .flatten()
        {
            cut(field);
        }
        if self.indices.len() > MAX_INDICES {
            let more = self.indices.len() - MAX_INDICES;
            self.indices.truncate(MAX_INDICES);
            self.indices.push(format!("…[{more} more]"));
        }
        let index_max = max.min(MAX_INDEX_BYTES);
        for index in &mut self.indices {
            if let Cow::Owned(cut) = truncate(index, index_max) {
                *index = cut;
            }
        }
        self
    }
}

/// The network a remote address belongs to for aggregation: its /24
/// (IPv4) or /64 (IPv6), written as a CIDR; other text is kept as it is.
fn network_of(remote: &str) -> String {
    match remote.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(IpAddr::V6(v6)) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            format!("{}/64", std::net::Ipv6Addr::from(octets))
        }
        Err(_) => remote.to_owned(),
    }
}

impl AuditLog {
    /// Opens (appending) `<dir>/audit.log` with the default settings.
    pub fn open(dir: &Path, disabled: BTreeSet<Category>) -> Result<AuditLog, AuditError> {
        AuditLog::open_with(dir, disabled, AuditSettings::default())
    }

    /// Opens (appending) `<dir>/audit.log`; makes the directory 0700 and the
    /// file 0600 (also when an earlier version made them readable to all).
    pub fn open_with(
        dir: &Path,
        disabled: BTreeSet<Category>,
        settings: AuditSettings,
    ) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io { path: dir.to_owned(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        let path = dir.join("audit.log");
        let mut file = open_private(&path)?;
        let mut size = file.metadata().map_err(|source| AuditError::Io { path: path.clone(), source })?.len();
        // A crash (or a full disk) mid-write can leave a torn last line.
        // Without a newline after it, the next event would be glued to the
        // fragment and be unreadable too: end the torn line first (queries
        // skip it as unparseable), so every event from now on is a whole line.
        if ends_torn(&path, size).map_err(|source| AuditError::Io { path: path.clone(), source })? {
            tracing::warn!(file = %path.display(), "the audit log ends with a torn line (a crash mid-write?): ending it");
            file.write_all(b"\n").map_err(|source| AuditError::Io { path: path.clone(), source })?;
            size += 1;
        }
        let log = AuditLog {
            dir: dir.to_owned(),
            path,
            settings,
            writer: Mutex::new(Writer { file, size, failures: HashMap::new(), last_sweep: Instant::now() }),
            disabled,
        };
        // Rotated files kept by a larger `max_files` earlier are deleted now.
        for n in settings.max_files + 1.. {
            match std::fs::remove_file(log.rotated(n)) {
                Ok(()) => {}
                Err(_) => break,
            }
        }
        for n in 1..=settings.max_files {
            let _ = std::fs::set_permissions(log.rotated(n), std::fs::Permissions::from_mode(0o600));
        }
        Ok(log)
    }

    pub fn enabled(&self, category: Category) -> bool {
        !self.disabled.contains(&category)
    }

    /// `audit.log.<n>`.
    fn rotated(&self, n: usize) -> PathBuf {
        self.dir.join(format!("audit.log.{n}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends one event (if its category is enabled), its fields bounded;
    /// a FAILED_LOGIN past its address's burst is only counted. A write
    /// failure is logged, never turned into a failed request.
    pub fn record(&self, event: Event) {
        let Some(category) = event.category else { return };
        if !self.enabled(category) {
            return;
        }
        let event = event.bounded(self.settings.max_field_bytes);
        let mut writer = self.lock();
        let now = Instant::now();
        self.sweep(&mut writer, now, false);
        if category == Category::FailedLogin && !self.admit_failure(&mut writer, &event, now) {
            return;
        }
        self.write(&mut writer, &event);
    }

    /// Whether a failed login is written one by one (else it is counted).
    fn admit_failure(&self, writer: &mut Writer, event: &Event, now: Instant) -> bool {
        // Counted per network (an IPv4 /24, an IPv6 /64): one client with
        // many addresses is still one flood.
        let mut key = event.remote_address.as_deref().map(network_of);
        if !writer.failures.contains_key(&key) && writer.failures.len() >= MAX_TRACKED_REMOTES {
            key = None;
        }
        let window = self.settings.failed_login_window;
        if writer.failures.get(&key).is_some_and(|w| now.duration_since(w.started) >= window)
            && let Some(ended) = writer.failures.remove(&key)
        {
            self.write_summary(writer, key.as_deref(), &ended);
        }
        let entry = writer.failures.entry(key).or_insert(FailureWindow {
            started: now,
            written: 0,
            suppressed: 0,
            first_suppressed_ms: 0,
            last_suppressed_ms: 0,
        });
        if entry.written < self.settings.failed_login_burst {
            entry.written += 1;
            return true;
        }
        if entry.suppressed == 0 {
            entry.first_suppressed_ms = event.time_ms;
        }
        entry.suppressed += 1;
        entry.last_suppressed_ms = event.time_ms;
        false
    }

    /// Writes the summaries of ended windows (all of them when `all`), at
    /// most once a second unless `all`.
    fn sweep(&self, writer: &mut Writer, now: Instant, all: bool) {
        if !all && now.duration_since(writer.last_sweep) < Duration::from_secs(1) {
            return;
        }
        writer.last_sweep = now;
        let window = self.settings.failed_login_window;
        let ended: Vec<Option<String>> = writer
            .failures
            .iter()
            .filter(|(_, w)| all || now.duration_since(w.started) >= window)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            if let Some(w) = writer.failures.remove(&key) {
                self.write_summary(writer, key.as_deref(), &w);
            }
        }
    }

    fn write_summary(&self, writer: &mut Writer, remote: Option<&str>, window: &FailureWindow) {
        if window.suppressed == 0 {
            return;
        }
        let from = remote.unwrap_or("addresses not tracked apart");
        let event = Event {
            remote_address: remote.map(str::to_owned),
            count: Some(window.suppressed),
            reason: Some(format!(
                "{} more failed logins from {from} between {} and {} (counted, not written one by one)",
                window.suppressed,
                rfc3339(window.first_suppressed_ms),
                rfc3339(window.last_suppressed_ms)
            )),
            ..Event::new(Category::FailedLogin, "failed-login-summary")
        };
        self.write(writer, &event);
    }

    fn write(&self, writer: &mut Writer, event: &Event) {
        let Ok(mut line) = serde_json::to_vec(event) else { return };
        line.push(b'\n');
        if writer.size > 0
            && writer.size + line.len() as u64 > self.settings.max_file_bytes
            && let Err(e) = self.rotate(writer)
        {
            tracing::error!(file = %self.path.display(), "cannot rotate the audit log: {e}");
        }
        match writer.file.write_all(&line) {
            Ok(()) => writer.size += line.len() as u64,
            Err(e) => tracing::error!(file = %self.path.display(), "cannot write audit event: {e}"),
        }
    }

    /// `audit.log` → `audit.log.1` → … → `audit.log.<max_files>` (the oldest
    /// is replaced), then a new `audit.log`.
    fn rotate(&self, writer: &mut Writer) -> Result<(), AuditError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| AuditError::Io { path, source }
        };
        if self.settings.max_files == 0 {
            writer.file.set_len(0).map_err(io(&self.path))?;
            writer.size = 0;
            return Ok(());
        }
        for n in (1..self.settings.max_files).rev() {
            match std::fs::rename(self.rotated(n), self.rotated(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&self.rotated(n))(e)),
                _ => {}
            }
        }
        std::fs::rename(&self.path, self.rotated(1)).map_err(io(&self.path))?;
        writer.file = open_private(&self.path)?;
        writer.size = 0;
        Ok(())
    }

    /// Events matching `filter`, most recent first: the files are read
    /// newest first, each from its end, until `size` events are found.
    pub fn query(&self, filter: &Filter) -> Result<Vec<Event>, AuditError> {
        {
            // Windows that have ended get their summary before anyone looks.
            let mut writer = self.lock();
            self.sweep(&mut writer, Instant::now(), false);
        }
        let size = filter.size.unwrap_or(100).min(10_000);
        let category = filter.category.as_deref().and_then(Category::parse);
        let matches = |e: &Event| {
            (category.is_none() || e.category == category)
                && filter.user.as_deref().is_none_or(|u| e.user.as_deref() == Some(u))
                && filter.extension.as_deref().is_none_or(|x| e.extension.as_deref() == Some(x))
                && filter.job.as_deref().is_none_or(|j| e.job.as_deref() == Some(j))
                && filter.from.is_none_or(|from| e.time_ms >= from)
                && filter.to.is_none_or(|to| e.time_ms <= to)
        };
        let mut events = Vec::new();
        let files =
            std::iter::once(self.path.clone()).chain((1..=self.settings.max_files).map(|n| self.rotated(n)));
        for path in files {
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(AuditError::Io { path, source }),
            };
            let mut lines = ReverseLines::new(file);
            loop {
                if events.len() >= size {
                    return Ok(events);
                }
                let line = match lines.next_line() {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(source) => return Err(AuditError::Io { path, source }),
                };
                let Ok(event) = serde_json::from_slice::<Event>(&line) else { continue };
                if filter.from.is_some_and(|from| event.time_ms.saturating_add(FROM_SLACK_MS) < from) {
                    // Everything further back is older still.
                    return Ok(events);
                }
                if matches(&event) {
                    events.push(event);
                }
            }
        }
        Ok(events)
    }
}

impl Drop for AuditLog {
    /// Failed logins still being counted get their summary.
    fn drop(&mut self) {
        let mut writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let writer = &mut *writer;
        let pending: Vec<(Option<String>, FailureWindow)> = writer.failures.drain().collect();
        for (key, window) in pending {
            self.write_summary(writer, key.as_deref(), &window);
        }
    }
}

/// Whether the `size`-byte file at `path` is non-empty and does not end
/// with a newline.
fn ends_torn(path: &Path, size: u64) -> std::io::Result<bool> {
    if size == 0 {
        return Ok(false);
    }
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(size - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Opens `path` for appending, created 0600 (and made 0600 if it was not).
fn open_private(path: &Path) -> Result<File, AuditError> {
    let io = |source| AuditError::Io { path: path.to_owned(), source };
    let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(file)
}

/// A file's lines from the last to the first, read in blocks from the end.
struct ReverseLines {
    file: File,
    /// Bytes of the file not yet read (everything before `pos`).
    pos: u64,
    /// Read but not yet returned: the tail of the part before `pos`.
    buf: Vec<u8>,
    /// The line being skipped is longer than [`MAX_LINE`].
    skipping: bool,
}

impl ReverseLines {
    const BLOCK: usize = 64 << 10;

    fn new(file: File) -> ReverseLines {
        let pos = file.metadata().map(|m| m.len()).unwrap_or(0);
        ReverseLines { file, pos, buf: Vec::new(), skipping: false }
    }

    fn next_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            // A newline in the buffer ends the last line it holds.
            if let Some(at) = self.buf.iter().rposition(|b| *b == b'\n') {
                let line = self.buf.split_off(at + 1);
                self.buf.pop();
                let skipped = std::mem::replace(&mut self.skipping, false);
                if line.is_empty() || skipped || line.len() > MAX_LINE {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.pos == 0 {
                let line = std::mem::take(&mut self.buf);
                let skipped = std::mem::replace(&mut self.skipping, false);
                return Ok((!line.is_empty() && !skipped && line.len() <= MAX_LINE).then_some(line));
            }
            if self.buf.len() > MAX_LINE {
                // Keep reading back to its start, but not holding it.
                self.buf.clear();
                self.skipping = true;
            }
            let len = Self::BLOCK.min(usize::try_from(self.pos).unwrap_or(Self::BLOCK));
            self.pos -= len as u64;
            let mut block = vec![0u8; len];
            self.file.seek(SeekFrom::Start(self.pos))?;
            self.file.read_exact(&mut block)?;
            block.extend_from_slice(&self.buf);
            self.buf = block;
        }
    }
}

/// `2026-11-22T19:40:00.123Z` from milliseconds since the epoch.
pub fn rfc3339(ms: u64) -> String {
    crate::time::rfc3339(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_376_400_123), "2026-11-22T19:40:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn records_filters_and_skips_disabled_categories() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = AuditLog::open(dir.path(), BTreeSet::from([Category::Authenticated]))?;
        log.record(Event { user: Some("ana".into()), ..Event::new(Category::Authenticated, "r1") });
        log.record(Event { user: Some("ana".into()), ..Event::new(Category::FailedLogin, "r2") });
        log.record(Event {
            user: Some("bob".into()),
            extension: Some("hello".into()),
            ..Event::new(Category::MissingPrivileges, "r3")
        });
        let all = log.query(&Filter::default())?;
        assert_eq!(all.iter().map(|e| e.request_id.as_str()).collect::<Vec<_>>(), ["r3", "r2"]);
        let ana = log.query(&Filter { user: Some("ana".into()), ..Filter::default() })?;
        assert_eq!(ana.len(), 1);
        let hello = log.query(&Filter { extension: Some("hello".into()), ..Filter::default() })?;
        assert_eq!(hello[0].request_id, "r3");
        let failed = log.query(&Filter { category: Some("failed_login".into()), ..Filter::default() })?;
        assert_eq!(failed[0].request_id, "r2");
        let future = log.query(&Filter { from: Some(u64::MAX), ..Filter::default() })?;
        assert!(future.is_empty());
        Ok(())
    }

    #[test]
    fn an_unknown_category_is_refused_not_read_as_no_filter() {
        let parse = |v: serde_json::Value| serde_json::from_value::<Filter>(v).map_err(|e| e.to_string());
        let bogus = parse(serde_json::json!({"category": "BOGUS"})).err().unwrap_or_default();
        assert!(bogus.contains("unknown audit category `BOGUS`"), "{bogus}");
        let known = parse(serde_json::json!({"category": "failed_login"}));
        assert_eq!(known.map(|f| f.category), Ok(Some("failed_login".to_owned())));
        assert_eq!(parse(serde_json::json!({})).map(|f| f.category), Ok(None));
    }

    #[test]
    fn fields_are_cut_on_character_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        // `é` is two bytes: a cut inside it backs off to before it.
        assert_eq!(truncate("aé", 2), "a…[2 more bytes]");
        let long = "é".repeat(40_000);
        let event = Event {
            path: Some(long.clone()),
            user: Some(long.clone()),
            indices: vec![long; 100],
            ..Event::new(Category::FailedLogin, "r")
        }
        .bounded(100);
        assert!(event.path.as_deref().is_some_and(|p| p.len() < 130 && p.ends_with("more bytes]")));
        assert!(event.user.as_deref().is_some_and(|p| p.len() < 130));
        assert_eq!(event.indices.len(), MAX_INDICES + 1);
        assert!(event.indices.iter().all(|i| i.len() < 130));
    }

    fn small(max_file_bytes: u64, max_files: usize, burst: u32) -> AuditSettings {
        AuditSettings {
            max_file_bytes,
            max_files,
            max_field_bytes: 200,
            failed_login_burst: burst,
            failed_login_window: Duration::from_secs(3600),
        }
    }

    #[test]
    fn failed_logins_of_one_address_are_summarised() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let remote = |ip: &str| ip.parse::<IpAddr>().ok();
        {
            let log = AuditLog::open_with(dir.path(), BTreeSet::new(), small(1 << 20, 2, 3))?;
            for i in 0..100 {
                log.record(Event::new(Category::FailedLogin, &format!("a{i}")).remote(remote("10.0.0.1")));
            }
            // Another address of the same /24 is the same flood: counted.
            log.record(Event::new(Category::FailedLogin, "a100").remote(remote("10.0.0.9")));
            log.record(Event::new(Category::FailedLogin, "b0").remote(remote("10.0.1.2")));
            let written = log.query(&Filter::default())?;
            assert_eq!(written.len(), 4, "{written:?}"); // 3 from 10.0.0.0/24, 1 from 10.0.1.0/24
        } // dropped: the summary is written
        let log = AuditLog::open_with(dir.path(), BTreeSet::new(), small(1 << 20, 2, 3))?;
        let all = log.query(&Filter::default())?;
        let summary = all.iter().find(|e| e.count.is_some()).ok_or("no summary")?;
        assert_eq!(summary.count, Some(98));
        assert_eq!(summary.remote_address.as_deref(), Some("10.0.0.0/24"));
        Ok(())
    }

    #[test]
    fn the_file_rotates_and_old_files_are_deleted() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = AuditLog::open_with(dir.path(), BTreeSet::new(), small(2_000, 2, 1_000))?;
        for i in 0..200 {
            log.record(Event::new(Category::MissingPrivileges, &format!("r{i}")));
        }
        let names = |dir: &Path| -> std::io::Result<BTreeSet<String>> {
            std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect()
        };
        assert_eq!(
            names(dir.path())?,
            BTreeSet::from(["audit.log".into(), "audit.log.1".into(), "audit.log.2".into()])
        );
        for name in names(dir.path())? {
            let meta = std::fs::metadata(dir.path().join(&name))?;
            assert!(meta.len() <= 2_000, "{name}: {}", meta.len());
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        }
        assert_eq!(std::fs::metadata(dir.path())?.permissions().mode() & 0o777, 0o700);
        // Newest first across the files, stopping at `size`.
        let newest = log.query(&Filter { size: Some(20), ..Filter::default() })?;
        let ids: Vec<&str> = newest.iter().map(|e| e.request_id.as_str()).collect();
        let expected: Vec<String> = (180..200).rev().map(|i| format!("r{i}")).collect();
        assert_eq!(ids, expected);
        Ok(())
    }

    #[test]
    fn reverse_lines_handle_blocks_and_overlong_lines() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        let long = "x".repeat(MAX_LINE + 10);
        let medium = "y".repeat(ReverseLines::BLOCK * 2 + 3);
        std::fs::write(&path, format!("first\n{long}\n{medium}\nlast\n"))?;
        let mut lines = ReverseLines::new(File::open(&path)?);
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line()? {
            seen.push(String::from_utf8(line)?);
        }
        let lens: Vec<usize> = seen.iter().map(String::len).collect();
        assert_eq!(lens, [4, medium.len(), 5]);
        assert_eq!((seen[0].as_str(), seen[2].as_str()), ("last", "first"));
        Ok(())
    }
}
