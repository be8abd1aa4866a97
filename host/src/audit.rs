//! The audit log: one JSON object per line in `<data-dir>/audit/audit.log`,
//! queryable over `GET /_warden/audit`. Categories follow OpenSearch's audit
//! logging; by default AUTHENTICATED and GRANTED_PRIVILEGES are off (as in
//! OpenSearch) because they fire on every request. Passwords, hashes and
//! tokens are never recorded: events carry names, actions and reasons only.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Authenticated,
        Category::FailedLogin,
        Category::GrantedPrivileges,
        Category::MissingPrivileges,
        Category::SecurityConfigWrite,
        Category::ApiTokenWrite,
        Category::JobRun,
        Category::JobWrite,
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
    pub remote_address: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indices: Vec<String>,
    pub extension: Option<String>,
    /// For extension calls: which gate decided (`route`, `service`, `user`).
    pub gate: Option<String>,
    /// For job events: the job's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Why: the denial or failure reason, or what was written.
    pub reason: Option<String>,
}

impl Event {
    pub fn new(category: Category, request_id: &str) -> Event {
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
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
}

/// Query filters for `GET /_warden/audit`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
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

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
    disabled: BTreeSet<Category>,
}

impl AuditLog {
    /// Opens (appending) `<dir>/audit.log`.
    pub fn open(dir: &Path, disabled: BTreeSet<Category>) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io { path: dir.to_owned(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join("audit.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| AuditError::Io { path: path.clone(), source })?;
        Ok(AuditLog { path, file: Mutex::new(file), disabled })
    }

    pub fn enabled(&self, category: Category) -> bool {
        !self.disabled.contains(&category)
    }

    /// Appends one event (if its category is enabled). A write failure is
    /// logged, never turned into a failed request.
    pub fn record(&self, event: Event) {
        let Some(category) = event.category else { return };
        if !self.enabled(category) {
            return;
        }
        let Ok(mut line) = serde_json::to_vec(&event) else { return };
        line.push(b'\n');
        match self.file.lock() {
            Ok(mut file) => {
                if let Err(e) = file.write_all(&line) {
                    tracing::error!(file = %self.path.display(), "cannot write audit event: {e}");
                }
            }
            Err(_) => tracing::error!("audit log lock poisoned; event dropped"),
        }
    }

    /// Events matching `filter`, most recent first.
    pub fn query(&self, filter: &Filter) -> Result<Vec<Event>, AuditError> {
        let file =
            File::open(&self.path).map_err(|source| AuditError::Io { path: self.path.clone(), source })?;
        let category = filter.category.as_deref().and_then(Category::parse);
        let mut events: Vec<Event> = BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str::<Event>(&line).ok())
            .filter(|e| category.is_none() || e.category == category)
            .filter(|e| filter.user.as_deref().is_none_or(|u| e.user.as_deref() == Some(u)))
            .filter(|e| filter.extension.as_deref().is_none_or(|x| e.extension.as_deref() == Some(x)))
            .filter(|e| filter.job.as_deref().is_none_or(|j| e.job.as_deref() == Some(j)))
            .filter(|e| filter.from.is_none_or(|from| e.time_ms >= from))
            .filter(|e| filter.to.is_none_or(|to| e.time_ms <= to))
            .collect();
        events.reverse();
        events.truncate(filter.size.unwrap_or(100).min(10_000));
        Ok(events)
    }
}

/// `2026-11-22T19:40:00.123Z` from milliseconds since the epoch.
pub fn rfc3339(ms: u64) -> String {
    crate::cluster::dates::format(i64::try_from(ms).unwrap_or(i64::MAX))
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
}
