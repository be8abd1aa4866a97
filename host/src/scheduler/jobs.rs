//! The job store, in three system indices of the cluster store:
//!
//! - `.warden-jobs`: what a job is — extension, name, schedule, params,
//!   state, next run, the last run's outcome;
//! - `.warden-job-identities`: who it runs as — user, auth source —
//!   owned by security and never shown to an extension;
//! - `.warden-job-locks`: leases that let one node run a due job;
//! - `.warden-job-names`: (extension, user, name) → id, created with the
//!   job by compare-and-set, so a name is unique per owner on any number
//!   of nodes;
//! - `.warden-job-due`: (next run, id) for the jobs that will run, kept in
//!   the same transaction as each definition change;
//! - `.warden-job-runs`: each job's last runs (its bounded history), one
//!   small document per run keyed (job id, sequence), written with the
//!   run's outcome in one transaction, the oldest deleted in the same one.
//!
//! A job's definition and identity are written in one transaction; every
//! change is compare-and-set on the store's versions, so a run finishing
//! while an operator disables the job loses nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::schedule::{CatchUp, JobOptions, Schedule, ScheduleError};
use crate::store::{Expect, Store, StoreError, Write};

pub const JOBS_INDEX: &str = ".warden-jobs";
pub const IDENTITIES_INDEX: &str = ".warden-job-identities";
pub const LOCKS_INDEX: &str = ".warden-job-locks";
/// (extension, user, name) → job id: names unique per owner, and an owner's
/// jobs found without reading everyone's.
pub const NAMES_INDEX: &str = ".warden-job-names";
/// (next run, id) of every job that will run: the dispatcher's tick reads
/// only the entries already due, however many jobs there are.
pub const DUE_INDEX: &str = ".warden-job-due";
/// (job id, sequence) → one run of that job: its bounded history.
///
/// One document per run rather than a capped list inside the job record:
/// a run then writes one entry of at most a few KiB and deletes the one
/// that fell out, whatever N is, while a list in the record would rewrite
/// all N entries (up to N × 4 KiB of messages) at every run, and every
/// read of the job — each dispatch, each listing — would carry them.
pub const RUNS_INDEX: &str = ".warden-job-runs";
/// Runs kept per job unless `WARDEN_JOB_HISTORY` says otherwise.
pub const DEFAULT_HISTORY: usize = 20;

/// Jobs one user may hold in one extension: a hostile extension cannot fill
/// the store by registering on every request.
pub const MAX_JOBS_PER_OWNER: usize = 100;
pub const MAX_PARAMS_BYTES: usize = 64 << 10;
pub const MAX_NAME_BYTES: usize = 128;
/// A CAS update retried this often before giving up.
const CAS_RETRIES: usize = 8;

/// What a job is (never who runs it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub extension: String,
    pub name: String,
    pub schedule: Schedule,
    pub params: String,
    pub enabled: bool,
    /// Why the host stopped running it (owner deleted, disabled, lost
    /// consent); cleared when re-enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<String>,
    /// Set when its extension was removed ([`JobStore::suspend_removed`]):
    /// the job stays suspended for good, to be listed and deleted, never
    /// resumed nor given to anyone. An extension installed later under the
    /// same id is other code, and the job's owner consented to the old
    /// one's; the new one registers its own jobs. Typed, so no check reads
    /// the `suspended` text. Absent in jobs stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_removed: Option<ExtensionRemoved>,
    /// Suspended because its owner's consent was revoked or expired: the
    /// owner consenting again resumes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub consent_revoked: bool,
    /// When it runs next; `None` when it never will (a `once` job that ran).
    pub next_run: Option<u64>,
    /// When the run `next_run` belongs to was due (later while retrying).
    #[serde(default)]
    pub due: Option<u64>,
    /// The attempt `next_run` will be (1, or more while retrying).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    #[serde(default)]
    pub last_run: Option<RunRecord>,
    #[serde(default)]
    pub runs: u64,
    #[serde(default)]
    pub failures: u64,
    /// Failed attempts since the last success (a skipped run changes
    /// nothing); at the configured maximum the job is suspended and the
    /// count starts again from zero.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The sequence number of the newest entry of its run history.
    #[serde(default)]
    pub history_seq: u64,
    /// Each slot's run is delayed by up to this fraction of the interval.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jitter: f64,
    /// What becomes of runs missed while no node was up.
    #[serde(default, skip_serializing_if = "is_skip")]
    pub catch_up: CatchUp,
    pub created_at: u64,
    pub updated_at: u64,
}

fn first_attempt() -> u32 {
    1
}

/// Why a job can never run again: its extension was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionRemoved {
    /// When (milliseconds since the epoch).
    pub at: u64,
}

fn is_zero(n: &f64) -> bool {
    *n == 0.0
}

fn is_skip(policy: &CatchUp) -> bool {
    *policy == CatchUp::Skip
}

impl Job {
    /// Its jitter and catch-up policy.
    pub fn options(&self) -> JobOptions {
        JobOptions { jitter: self.jitter, catch_up: self.catch_up }
    }

    /// Whether the dispatcher should run it at `now`.
    pub fn is_due(&self, now: u64) -> bool {
        self.enabled
            && self.suspended.is_none()
            && self.extension_removed.is_none()
            && self.next_run.is_some_and(|t| t <= now)
    }

    /// Refuses to lift the suspension of job `id` (resume it, give it to
    /// someone) when its extension was removed.
    pub fn check_resumable(&self, id: &str) -> Result<(), JobError> {
        match &self.extension_removed {
            Some(removed) => Err(JobError::ExtensionRemoved {
                id: id.to_owned(),
                extension: self.extension.clone(),
                at: crate::audit::rfc3339(removed.at),
            }),
            None => Ok(()),
        }
    }
}

/// One run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub started_at: u64,
    pub finished_at: u64,
    pub attempt: u32,
    pub status: RunStatus,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The runner reported success.
    Success,
    /// The runner reported failure.
    Failure,
    /// The runner did not report: it trapped, timed out, ran out of memory.
    Error,
    /// The host did not run it (extension not loaded, busy).
    Skipped,
    /// It came due while no node was up and its catch-up policy is `skip`:
    /// not run; the job waits for its next slot. Only in the run history.
    Missed,
}

impl RunStatus {
    /// Its name, as serialised (the `outcome` of `warden_job_runs_total`).
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::Failure => "failure",
            RunStatus::Error => "error",
            RunStatus::Skipped => "skipped",
            RunStatus::Missed => "missed",
        }
    }
}

/// One entry of a job's run history ([`RUNS_INDEX`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    /// Its place in the job's history: 1 for the first run recorded.
    pub seq: u64,
    /// The slot the run belonged to (what the runner got as `scheduled-at`).
    pub scheduled_at: u64,
    /// When the dispatcher meant to start it (the slot, or the retry's time).
    pub planned_at: u64,
    pub started_at: u64,
    pub duration_ms: u64,
    pub attempt: u32,
    pub outcome: RunStatus,
    pub message: String,
}

impl RunEntry {
    /// How late the dispatcher started it.
    pub fn lateness_ms(&self) -> u64 {
        self.started_at.saturating_sub(self.planned_at)
    }
}

/// The id of a run's entry in [`RUNS_INDEX`]; zero padded, so one job's
/// entries sort by sequence.
fn run_key(id: &str, seq: u64) -> String {
    format!("{id}\u{1f}{seq:020}")
}

/// Who a job runs as. Kept by security, apart from the definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobIdentity {
    pub extension: String,
    pub user: String,
    /// How the user authenticated when registering: `internal`, `jwt`,
    /// `api-token:<id>`...
    pub auth_source: String,
    /// Backend roles from registration, for users not in the internal
    /// user database (a JWT's roles cannot be asked again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_roles: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A lease on a due job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobLock {
    pub holder: String,
    pub expires_at: u64,
}

/// A record and the version it was read at (for compare-and-set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub seq_no: u64,
    pub primary_term: u64,
}

impl Version {
    fn expect(self) -> Expect {
        Expect::Version { seq_no: self.seq_no, primary_term: self.primary_term }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("no job `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Limit(String),
    #[error("job `{0}` kept changing while it was being updated; try again")]
    Contended(String),
    #[error("job store: {0}")]
    Store(#[from] StoreError),
    #[error("job store record `{id}` is unreadable: {message}")]
    Corrupt { id: String, message: String },
    /// Its extension was removed: it can be listed and deleted, never resumed.
    #[error(
        "job `{id}` was suspended because extension `{extension}` was removed on {at}: it cannot be \
         resumed or given to anyone; delete it (an extension installed under that id registers its own jobs again)"
    )]
    ExtensionRemoved { id: String, extension: String, at: String },
}

impl crate::error::HasKind for JobError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            JobError::Invalid(_) | JobError::Schedule(_) => ErrorKind::Invalid,
            JobError::NotFound(_) => ErrorKind::NotFound,
            // A per-user job limit: refused, as a guest has always been told.
            JobError::Limit(_) => ErrorKind::Denied,
            JobError::Contended(_) | JobError::ExtensionRemoved { .. } => ErrorKind::Conflict,
            JobError::Store(_) | JobError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

/// A registration: what the extension asked for, and who it runs for.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub extension: &'a str,
    pub user: &'a str,
    pub auth_source: &'a str,
    pub backend_roles: &'a [String],
    pub name: &'a str,
    pub schedule: Schedule,
    pub params: String,
    pub options: JobOptions,
}

#[derive(Debug)]
pub struct JobStore {
    store: Arc<Store>,
}

/// The id of a job's entry in [`NAMES_INDEX`], and the prefix shared by all
/// of one owner's entries in one extension. Owner names with control
/// characters are refused, so the separators are unambiguous. An owner is
/// a name *and* its source: internal users keep the plain name (keys
/// written before sources were), others carry the source after `\u{1e}`,
/// so a JWT `admin` never shares the internal `admin`'s names.
fn name_key(extension: &str, owner: Owner<'_>, name: &str) -> String {
    format!("{}{name}", owner_prefix(extension, owner))
}

fn owner_prefix(extension: &str, (user, source): Owner<'_>) -> String {
    if source == crate::security::IdentitySource::Internal.as_str() {
        format!("{extension}\u{1f}{user}\u{1f}")
    } else {
        format!("{extension}\u{1f}{user}\u{1e}{source}\u{1f}")
    }
}

/// A job owner: (user name, identity source).
pub type Owner<'a> = (&'a str, &'a str);

impl JobIdentity {
    pub fn owner(&self) -> Owner<'_> {
        (&self.user, &self.auth_source)
    }
}

/// The job's entry in [`DUE_INDEX`], if it will run: the next run, zero
/// padded so ids sort by time.
fn due_key(id: &str, job: &Job) -> Option<String> {
    let at =
        job.next_run.filter(|_| job.enabled && job.suspended.is_none() && job.extension_removed.is_none())?;
    Some(format!("{at:020}\u{1f}{id}"))
}

/// The writes that move a job's due entry from `old` to `new`.
fn due_writes<'a>(old: &'a Option<String>, new: &'a Option<String>) -> Vec<Write<'a>> {
    if old == new {
        return Vec::new();
    }
    let mut writes = Vec::new();
    if let Some(old) = old {
        writes.push(Write { index: DUE_INDEX, id: old, source: None, expect: Expect::Any });
    }
    if let Some(new) = new {
        writes.push(Write { index: DUE_INDEX, id: new, source: Some(Vec::new()), expect: Expect::Any });
    }
    writes
}

impl JobStore {
    pub fn new(store: Arc<Store>) -> JobStore {
        JobStore { store }
    }

    /// The ids of one user's jobs in one extension.
    /// The id of `owner`'s job `name` in `extension`, if there is one.
    pub fn id_named(
        &self,
        extension: &str,
        owner: Owner<'_>,
        name: &str,
    ) -> Result<Option<String>, JobError> {
        let key = name_key(extension, owner, name);
        match self.store.get(NAMES_INDEX, &key)? {
            Some(v) => String::from_utf8(v.source)
                .map(Some)
                .map_err(|e| JobError::Corrupt { id: key, message: e.to_string() }),
            None => Ok(None),
        }
    }

    pub fn ids_of(&self, extension: &str, owner: Owner<'_>) -> Result<Vec<String>, JobError> {
        self.store
            .list_prefix(NAMES_INDEX, &owner_prefix(extension, owner))?
            .into_iter()
            .map(|(key, v)| {
                String::from_utf8(v.source).map_err(|e| JobError::Corrupt { id: key, message: e.to_string() })
            })
            .collect()
    }

    pub fn get(&self, id: &str) -> Result<Option<(Job, Version)>, JobError> {
        self.read(JOBS_INDEX, id)
    }

    pub fn identity(&self, id: &str) -> Result<Option<(JobIdentity, Version)>, JobError> {
        self.read(IDENTITIES_INDEX, id)
    }

    /// Every job with its identity (a job missing either is left out).
    pub fn list(&self) -> Result<Vec<(String, Job, JobIdentity)>, JobError> {
        let mut identities: BTreeMap<String, JobIdentity> = self
            .store
            .list(IDENTITIES_INDEX)?
            .into_iter()
            .map(|(id, v)| Ok((id.clone(), parse(&id, &v.source)?)))
            .collect::<Result<_, JobError>>()?;
        let mut out = Vec::new();
        for (id, v) in self.store.list(JOBS_INDEX)? {
            let job: Job = parse(&id, &v.source)?;
            if let Some(identity) = identities.remove(&id) {
                out.push((id, job, identity));
            }
        }
        Ok(out)
    }

    /// The ids of the jobs due at `now`, earliest first: the dispatcher's
    /// tick. Reads only the due entries of [`DUE_INDEX`].
    pub fn due(&self, now: u64) -> Result<Vec<String>, JobError> {
        let until = format!("{:020}", now.saturating_add(1));
        let keys = self.store.ids_between(DUE_INDEX, "", &until)?;
        Ok(keys.into_iter().filter_map(|key| key.split_once('\u{1f}').map(|(_, id)| id.to_owned())).collect())
    }

    /// [`JobStore::due`] with each job's planned start, earliest first.
    pub fn due_at(&self, now: u64) -> Result<Vec<(u64, String)>, JobError> {
        let until = format!("{:020}", now.saturating_add(1));
        let keys = self.store.ids_between(DUE_INDEX, "", &until)?;
        Ok(keys
            .into_iter()
            .filter_map(|key| {
                let (at, id) = key.split_once('\u{1f}')?;
                Some((at.parse().ok()?, id.to_owned()))
            })
            .collect())
    }

    /// Rebuilds [`DUE_INDEX`] from the definitions, in one transaction (at
    /// start: whatever the index held, it then agrees with the jobs).
    /// Returns how many jobs will run.
    pub fn rebuild_due_index(&self) -> Result<usize, JobError> {
        let stale = self.store.list(DUE_INDEX)?;
        let mut fresh = Vec::new();
        for (id, v) in self.store.list(JOBS_INDEX)? {
            let job: Job = parse(&id, &v.source)?;
            fresh.extend(due_key(&id, &job));
        }
        let mut writes: Vec<Write<'_>> = stale
            .iter()
            .map(|(key, _)| Write { index: DUE_INDEX, id: key, source: None, expect: Expect::Any })
            .collect();
        writes.extend(fresh.iter().map(|key| Write {
            index: DUE_INDEX,
            id: key,
            source: Some(Vec::new()),
            expect: Expect::Any,
        }));
        if !writes.is_empty() {
            self.store.write(&writes)?;
        }
        Ok(fresh.len())
    }

    /// Registers a job, or — same extension, user and name — replaces its
    /// schedule and params (registering is idempotent). Returns the id and
    /// whether it was created.
    pub fn register(&self, r: Registration<'_>, now: u64) -> Result<(String, bool), JobError> {
        validate_name(r.name)?;
        if r.params.len() > MAX_PARAMS_BYTES {
            return Err(JobError::Invalid(format!(
                "job params are {} bytes; at most {MAX_PARAMS_BYTES} are kept",
                r.params.len()
            )));
        }
        r.schedule.validate()?;
        r.options.validate()?;
        // `due` is the slot (what the runner is told); `next_run` when the
        // run starts: the slot, delayed by the job's jitter.
        let due = r.schedule.first_run(now);
        let next_run = due.map(|slot| r.options.start_of(&r.schedule, slot));
        if r.user.chars().any(char::is_control) || r.auth_source.chars().any(char::is_control) {
            return Err(JobError::Invalid("a job's owner name cannot hold control characters".into()));
        }
        let key = name_key(r.extension, (r.user, r.auth_source), r.name);
        if let Some(existing) = self.store.get(NAMES_INDEX, &key)? {
            let id = String::from_utf8(existing.source)
                .map_err(|e| JobError::Corrupt { id: key.clone(), message: e.to_string() })?;
            self.update(&id, |job| {
                job.schedule = r.schedule.clone();
                job.params = r.params.clone();
                job.next_run = next_run;
                job.due = due;
                job.attempt = 1;
                job.jitter = r.options.jitter;
                job.catch_up = r.options.catch_up;
                job.updated_at = now;
                Ok(())
            })?;
            return Ok((id, false));
        }
        if self.ids_of(r.extension, (r.user, r.auth_source))?.len() >= MAX_JOBS_PER_OWNER {
            return Err(JobError::Limit(format!(
                "user `{}` already has {MAX_JOBS_PER_OWNER} jobs in extension `{}`; unregister some first",
                r.user, r.extension
            )));
        }
        let id = new_id()?;
        let job = Job {
            extension: r.extension.to_owned(),
            name: r.name.to_owned(),
            schedule: r.schedule,
            params: r.params,
            enabled: true,
            suspended: None,
            extension_removed: None,
            consent_revoked: false,
            next_run,
            due,
            attempt: 1,
            last_run: None,
            runs: 0,
            failures: 0,
            consecutive_failures: 0,
            history_seq: 0,
            jitter: r.options.jitter,
            catch_up: r.options.catch_up,
            created_at: now,
            updated_at: now,
        };
        let identity = JobIdentity {
            extension: r.extension.to_owned(),
            user: r.user.to_owned(),
            auth_source: r.auth_source.to_owned(),
            backend_roles: r.backend_roles.to_vec(),
            created_at: now,
            updated_at: now,
        };
        // The name entry is created with the job, compare-and-set: of two
        // registrations racing for one name, one wins, the other conflicts.
        let (never, due) = (None, due_key(&id, &job));
        let mut writes = due_writes(&never, &due);
        writes.extend([
            Write {
                index: NAMES_INDEX,
                id: &key,
                source: Some(id.clone().into_bytes()),
                expect: Expect::Absent,
            },
            Write { index: JOBS_INDEX, id: &id, source: Some(to_json(&job)?), expect: Expect::Absent },
            Write {
                index: IDENTITIES_INDEX,
                id: &id,
                source: Some(to_json(&identity)?),
                expect: Expect::Absent,
            },
        ]);
        self.store.write(&writes)?;
        Ok((id, true))
    }

    /// Applies `edit` to the job with compare-and-set, re-reading and
    /// re-applying when a concurrent change wins.
    pub fn update(
        &self,
        id: &str,
        edit: impl FnMut(&mut Job) -> Result<(), JobError>,
    ) -> Result<Job, JobError> {
        self.update_releasing(id, None, edit)
    }

    /// [`JobStore::update`], releasing the lease taken at `lease` in the
    /// same transaction (a run's outcome and its unlock: one commit). A
    /// lease taken over since is left to its new holder.
    pub fn update_releasing(
        &self,
        id: &str,
        lease: Option<Version>,
        edit: impl FnMut(&mut Job) -> Result<(), JobError>,
    ) -> Result<Job, JobError> {
        self.update_recording(id, lease, None, edit)
    }

    /// [`JobStore::update_releasing`], adding `run` to the job's history in
    /// the same transaction: it takes the next sequence number, and the
    /// entry that falls out of the last `keep` is deleted.
    pub fn update_recording(
        &self,
        id: &str,
        mut lease: Option<Version>,
        run: Option<(&RunEntry, usize)>,
        mut edit: impl FnMut(&mut Job) -> Result<(), JobError>,
    ) -> Result<Job, JobError> {
        for _ in 0..CAS_RETRIES {
            let (mut job, version) = self.get(id)?.ok_or_else(|| JobError::NotFound(id.to_owned()))?;
            let was_due = due_key(id, &job);
            edit(&mut job)?;
            let mut history = Vec::new();
            if let Some((run, keep)) = run {
                job.history_seq = job.history_seq.saturating_add(1);
                let entry = RunEntry { seq: job.history_seq, ..run.clone() };
                history.push((run_key(id, entry.seq), Some(to_json(&entry)?)));
                if let Some(old) = job.history_seq.checked_sub(keep as u64).filter(|old| *old > 0) {
                    history.push((run_key(id, old), None));
                }
            }
            let is_due = due_key(id, &job);
            let mut writes =
                vec![Write { index: JOBS_INDEX, id, source: Some(to_json(&job)?), expect: version.expect() }];
            writes.extend(due_writes(&was_due, &is_due));
            writes.extend(history.iter().map(|(key, source)| Write {
                index: RUNS_INDEX,
                id: key,
                source: source.clone(),
                expect: Expect::Any,
            }));
            if let Some(lease) = lease {
                writes.push(Write { index: LOCKS_INDEX, id, source: None, expect: lease.expect() });
            }
            match self.store.write(&writes) {
                Ok(_) => return Ok(job),
                Err(StoreError::Conflict { index, .. }) if index == LOCKS_INDEX => lease = None,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobError::Contended(id.to_owned()))
    }

    /// The job's last `limit` runs, newest first. Reads only that job's
    /// entries (a key prefix), never another job's.
    pub fn runs(&self, id: &str, limit: usize) -> Result<Vec<RunEntry>, JobError> {
        let entries = self.store.list_prefix(RUNS_INDEX, &format!("{id}\u{1f}"))?;
        entries.iter().rev().take(limit).map(|(key, v)| parse(key, &v.source)).collect()
    }

    /// Re-associates a job with another user (an administrator's act) and
    /// lifts its suspension — it was suspended for its old owner's sake;
    /// the caller has checked that the new one can be run for. One
    /// transaction. The new owner must not already have a job of the same
    /// name there.
    pub fn set_owner(
        &self,
        id: &str,
        user: &str,
        auth_source: &str,
        now: u64,
    ) -> Result<(Job, JobIdentity), JobError> {
        if user.chars().any(char::is_control) {
            return Err(JobError::Invalid("a job's owner name cannot hold control characters".into()));
        }
        for _ in 0..CAS_RETRIES {
            let (mut job, job_version) = self.get(id)?.ok_or_else(|| JobError::NotFound(id.to_owned()))?;
            job.check_resumable(id)?;
            let (mut identity, version) =
                self.identity(id)?.ok_or_else(|| JobError::NotFound(id.to_owned()))?;
            let old_key = name_key(&identity.extension, identity.owner(), &job.name);
            let new_key = name_key(&identity.extension, (user, auth_source), &job.name);
            let moving = old_key != new_key;
            if moving && self.store.get(NAMES_INDEX, &new_key)?.is_some() {
                return Err(JobError::Invalid(format!(
                    "user `{user}` already has a job named `{}` in extension `{}`",
                    job.name, identity.extension
                )));
            }
            let was_due = due_key(id, &job);
            job.suspended = None;
            job.consent_revoked = false;
            job.updated_at = now;
            let is_due = due_key(id, &job);
            let mut writes = vec![Write {
                index: JOBS_INDEX,
                id,
                source: Some(to_json(&job)?),
                expect: job_version.expect(),
            }];
            writes.extend(due_writes(&was_due, &is_due));
            if moving {
                identity.user = user.to_owned();
                identity.auth_source = auth_source.to_owned();
                identity.backend_roles.clear();
                identity.updated_at = now;
                writes.extend([
                    Write {
                        index: IDENTITIES_INDEX,
                        id,
                        source: Some(to_json(&identity)?),
                        expect: version.expect(),
                    },
                    Write { index: NAMES_INDEX, id: &old_key, source: None, expect: Expect::Any },
                    Write {
                        index: NAMES_INDEX,
                        id: &new_key,
                        source: Some(id.as_bytes().to_vec()),
                        expect: Expect::Absent,
                    },
                ]);
            }
            match self.store.write(&writes) {
                Ok(_) => return Ok((job, identity)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobError::Contended(id.to_owned()))
    }

    /// Suspends every job of `extension`, which was removed, for good
    /// (`reason` said in `suspended`, [`Job::extension_removed`] set at
    /// `now`), those already suspended for another reason included: none
    /// may be resumed once an extension of the same id is installed again.
    /// Returns the ids newly marked (a job marked by an earlier removal
    /// keeps its date).
    pub fn suspend_removed(&self, extension: &str, reason: &str, now: u64) -> Result<Vec<String>, JobError> {
        let mut marked = Vec::new();
        for (id, v) in self.store.list(JOBS_INDEX)? {
            let job: Job = parse(&id, &v.source)?;
            if job.extension != extension || job.extension_removed.is_some() {
                continue;
            }
            self.update(&id, |job| {
                if job.extension_removed.is_none() {
                    job.suspended = Some(reason.to_owned());
                    job.extension_removed = Some(ExtensionRemoved { at: now });
                    job.updated_at = now;
                }
                Ok(())
            })?;
            marked.push(id);
        }
        Ok(marked)
    }

    /// Removes a job, its identity and any lease together.
    pub fn remove(&self, id: &str) -> Result<(), JobError> {
        let (job, _) = self.get(id)?.ok_or_else(|| JobError::NotFound(id.to_owned()))?;
        let name = self.identity(id)?.map(|(who, _)| name_key(&who.extension, who.owner(), &job.name));
        let due = due_key(id, &job);
        let delete = |index, id| Write { index, id, source: None, expect: Expect::Any };
        let mut writes = vec![delete(JOBS_INDEX, id), delete(IDENTITIES_INDEX, id), delete(LOCKS_INDEX, id)];
        if let Some(name) = &name {
            writes.push(delete(NAMES_INDEX, name));
        }
        if let Some(due) = &due {
            writes.push(delete(DUE_INDEX, due));
        }
        // Its history goes with it.
        let history = self.store.list_prefix(RUNS_INDEX, &format!("{id}\u{1f}"))?;
        writes.extend(history.iter().map(|(key, _)| delete(RUNS_INDEX, key.as_str())));
        self.store.write(&writes)?;
        Ok(())
    }

    /// Takes the job's lease until `expires_at` unless someone else holds
    /// an unexpired one. Compare-and-set: of two nodes racing, one wins.
    pub fn try_lock(
        &self,
        id: &str,
        holder: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<Option<Version>, JobError> {
        let expect = match self.read::<JobLock>(LOCKS_INDEX, id)? {
            None => Expect::Absent,
            Some((lock, _)) if lock.expires_at > now => return Ok(None),
            Some((_, version)) => version.expect(),
        };
        let lock = JobLock { holder: holder.to_owned(), expires_at };
        // Volatile: a lease lost in a crash only lets the job run again,
        // which a crash needs anyway; the run's outcome is written durably.
        let write = Write { index: LOCKS_INDEX, id, source: Some(to_json(&lock)?), expect };
        match self.store.write_volatile(&[write]) {
            Ok(mut versions) => {
                Ok(versions.pop().map(|v| Version { seq_no: v.seq_no, primary_term: v.primary_term }))
            }
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops every lease. Only for a store one process has open (the
    /// embedded store is locked to its process): the leases found at start
    /// were left by a run the previous process never finished, and would
    /// otherwise hold those jobs back until they expire. Returns how many.
    pub fn release_all_leases(&self) -> Result<usize, JobError> {
        let leases = self.store.list(LOCKS_INDEX)?;
        let writes: Vec<Write<'_>> = leases
            .iter()
            .map(|(id, _)| Write { index: LOCKS_INDEX, id, source: None, expect: Expect::Any })
            .collect();
        if !writes.is_empty() {
            self.store.write(&writes)?;
        }
        Ok(writes.len())
    }

    /// Releases the lease taken at `lease`, unless it was taken over since:
    /// for a run of a job removed between its lease and its start (the
    /// removal deleted the lease it saw, not the one taken after it).
    pub fn release(&self, id: &str, lease: Version) -> Result<(), JobError> {
        match self.store.write(&[Write { index: LOCKS_INDEX, id, source: None, expect: lease.expect() }]) {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `holder` still holds an unexpired lease on the job.
    pub fn holds_lock(&self, id: &str, holder: &str, now: u64) -> Result<bool, JobError> {
        Ok(self
            .read::<JobLock>(LOCKS_INDEX, id)?
            .is_some_and(|(lock, _)| lock.holder == holder && lock.expires_at > now))
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        index: &str,
        id: &str,
    ) -> Result<Option<(T, Version)>, JobError> {
        let Some(v) = self.store.get(index, id)? else { return Ok(None) };
        let version = Version { seq_no: v.seq_no, primary_term: v.primary_term };
        Ok(Some((parse(id, &v.source)?, version)))
    }
}

fn validate_name(name: &str) -> Result<(), JobError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(JobError::Invalid(format!(
            "job name must be 1 to {MAX_NAME_BYTES} bytes, got {}",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))) {
        return Err(JobError::Invalid(format!(
            "job name `{}` has `{}`; use letters, digits, `-`, `_`, `.` and `:`",
            name.escape_debug(),
            c.escape_debug()
        )));
    }
    Ok(())
}

/// 16 random bytes, hex: ids say nothing about who or when.
fn new_id() -> Result<String, JobError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| JobError::Invalid(format!("no randomness for a job id: {e}")))?;
    Ok(hex::encode(bytes))
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, JobError> {
    serde_json::to_vec(value).map_err(|e| JobError::Invalid(format!("cannot encode a job record: {e}")))
}

fn parse<T: serde::de::DeserializeOwned>(id: &str, bytes: &[u8]) -> Result<T, JobError> {
    serde_json::from_slice(bytes).map_err(|e| JobError::Corrupt { id: id.to_owned(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration<'a>(user: &'a str, name: &'a str) -> Registration<'a> {
        Registration {
            extension: "reporter",
            user,
            auth_source: "internal",
            backend_roles: &[],
            name,
            schedule: Schedule::Interval(60),
            params: "{}".into(),
            options: JobOptions::default(),
        }
    }

    fn open() -> Result<(tempfile::TempDir, JobStore), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("s.redb"))?);
        Ok((dir, JobStore::new(store)))
    }

    #[test]
    fn registering_is_idempotent_per_extension_user_and_name() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, jobs) = open()?;
        let (id, created) = jobs.register(registration("ana", "nightly"), 1_000)?;
        assert!(created);
        let again = Registration {
            schedule: Schedule::Interval(120),
            params: r#"{"window":"1d"}"#.into(),
            ..registration("ana", "nightly")
        };
        assert_eq!(jobs.register(again, 2_000)?, (id.clone(), false));
        let (job, _) = jobs.get(&id)?.ok_or("job missing")?;
        assert_eq!((&job.schedule, job.next_run), (&Schedule::Interval(120), Some(122_000)));
        assert_eq!((job.params.as_str(), job.due, job.attempt), (r#"{"window":"1d"}"#, Some(122_000), 1));
        // Another user's job of the same name is another job.
        let (bob, created) = jobs.register(registration("bob", "nightly"), 1_000)?;
        assert!(created && bob != id);
        // So is a JWT user's who is named `ana` too: identity is (name,
        // source), and re-registering must not rewrite the internal ana's job.
        let jwt_ana =
            Registration { auth_source: "jwt", params: "{\"x\":1}".into(), ..registration("ana", "nightly") };
        let (impostor, created) = jobs.register(jwt_ana, 1_500)?;
        assert!(created && impostor != id, "a JWT `ana` reached the internal ana's job");
        assert_eq!(jobs.get(&id)?.ok_or("job missing")?.0.params, r#"{"window":"1d"}"#);
        assert_eq!(jobs.ids_of("reporter", ("ana", "jwt"))?, std::slice::from_ref(&impostor));
        jobs.remove(&impostor)?;
        // The identity lives apart from the definition.
        let (identity, _) = jobs.identity(&id)?.ok_or("identity missing")?;
        assert_eq!(identity.user, "ana");
        assert!(!String::from_utf8(serde_json::to_vec(&job)?)?.contains("ana"));
        assert_eq!(jobs.ids_of("reporter", ("ana", "internal"))?, std::slice::from_ref(&id));
        // Bob already has a `nightly`: ana's cannot become his.
        let clash = jobs.set_owner(&id, "bob", "internal", 3_000).err().map(|e| e.to_string());
        assert!(clash.is_some_and(|e| e.contains("already has a job named `nightly`")));
        let (carl_id, _) = jobs.register(registration("ana", "weekly"), 1_000)?;
        jobs.set_owner(&carl_id, "carl", "internal", 3_000)?;
        assert_eq!(jobs.ids_of("reporter", ("carl", "internal"))?, std::slice::from_ref(&carl_id));
        assert_eq!(jobs.register(registration("carl", "weekly"), 4_000)?, (carl_id, false));
        assert!(jobs.register(registration("ana", "weekly"), 4_000)?.1, "ana's name was freed");
        jobs.remove(&id)?;
        assert!(jobs.identity(&id)?.is_none() && jobs.get(&id)?.is_none());
        assert!(jobs.ids_of("reporter", ("ana", "internal"))?.iter().all(|other| *other != id));
        assert!(matches!(jobs.remove(&id), Err(JobError::NotFound(_))));
        Ok(())
    }

    #[test]
    fn bad_registrations_are_refused_and_capped() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, jobs) = open()?;
        for (reg, says) in [
            (registration("ana", ""), "1 to 128 bytes"),
            (registration("ana", "a b"), "has ` `"),
            (
                Registration { params: "x".repeat(MAX_PARAMS_BYTES + 1), ..registration("ana", "big") },
                "bytes",
            ),
            (Registration { schedule: Schedule::cron("* *"), ..registration("ana", "c") }, "5 fields"),
        ] {
            let e = jobs.register(reg, 0).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(says), "{says}: {e}");
        }
        let names: Vec<String> = (0..MAX_JOBS_PER_OWNER).map(|i| format!("j{i}")).collect();
        for name in &names {
            jobs.register(registration("ana", name), 0)?;
        }
        let over = jobs.register(registration("ana", "one-more"), 0);
        assert!(matches!(over, Err(JobError::Limit(_))), "{over:?}");
        // Re-registering an existing one is still fine.
        assert!(jobs.register(registration("ana", "j0"), 0).is_ok());
        Ok(())
    }

    #[test]
    fn leases_go_to_one_holder_until_they_expire() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, jobs) = open()?;
        let (j, _) = jobs.register(registration("ana", "leased"), 0)?;
        let v = jobs.try_lock(&j, "node-a", 100, 200)?.ok_or("first lock refused")?;
        assert_eq!(jobs.try_lock(&j, "node-b", 150, 250)?, None);
        assert!(jobs.holds_lock(&j, "node-a", 150)? && !jobs.holds_lock(&j, "node-b", 150)?);
        // Expired: taken over; the old holder's outcome is still written,
        // but its release leaves the new lease.
        let taken = jobs.try_lock(&j, "node-b", 201, 300)?.ok_or("expired lock not taken over")?;
        let count_run = |job: &mut Job| {
            job.runs += 1;
            Ok(())
        };
        assert_eq!(jobs.update_releasing(&j, Some(v), count_run)?.runs, 1);
        assert!(jobs.holds_lock(&j, "node-b", 250)?);
        jobs.update_releasing(&j, Some(taken), count_run)?;
        assert!(jobs.try_lock(&j, "node-c", 250, 400)?.is_some());
        // A job removed after its lease was taken: the run releases the
        // lease it took (none is left behind), not one taken over since.
        let (gone, _) = jobs.register(registration("ana", "gone"), 0)?;
        let lease = jobs.try_lock(&gone, "node-a", 100, 200)?.ok_or("lock refused")?;
        jobs.remove(&gone)?;
        let stray = jobs.try_lock(&gone, "node-a", 100, 200)?.ok_or("lock refused")?;
        jobs.release(&gone, lease)?;
        assert!(jobs.holds_lock(&gone, "node-a", 150)?, "not the stray's: taken after");
        jobs.release(&gone, stray)?;
        assert!(!jobs.holds_lock(&gone, "node-a", 150)?, "released");
        // A restart of the only process holding the store frees them all.
        assert_eq!(jobs.release_all_leases()?, 1);
        assert!(jobs.try_lock(&j, "node-d", 260, 400)?.is_some());
        Ok(())
    }

    #[test]
    fn the_due_index_follows_every_change() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, jobs) = open()?;
        let (a, _) = jobs.register(registration("ana", "a"), 1_000)?; // due at 61 000
        let (b, _) = jobs
            .register(Registration { schedule: Schedule::Interval(30), ..registration("ana", "b") }, 1_000)?;
        assert!(jobs.due(30_999)?.is_empty());
        assert_eq!(jobs.due(31_000)?, std::slice::from_ref(&b));
        assert_eq!(jobs.due_at(31_000)?, [(31_000, b.clone())], "with its planned start");
        assert_eq!(jobs.due(u64::MAX)?, [b.clone(), a.clone()], "earliest first");
        let pause = |enabled: bool| {
            move |job: &mut Job| {
                job.enabled = enabled;
                Ok(())
            }
        };
        jobs.update(&b, pause(false))?;
        assert_eq!(jobs.due(u64::MAX)?, std::slice::from_ref(&a), "disabled jobs are not due");
        jobs.update(&b, pause(true))?;
        jobs.update(&a, |job| {
            job.next_run = Some(5);
            Ok(())
        })?;
        assert_eq!(jobs.due(10)?, std::slice::from_ref(&a), "moved with its next run");
        jobs.remove(&a)?;
        assert_eq!(jobs.due(u64::MAX)?, std::slice::from_ref(&b));
        // A stray entry (a job the index outlived) is dropped by a rebuild.
        jobs.store.write(&[Write {
            index: DUE_INDEX,
            id: "00000000000000000001\u{1f}ghost",
            source: Some(Vec::new()),
            expect: Expect::Any,
        }])?;
        assert_eq!(jobs.due(u64::MAX)?.len(), 2);
        assert_eq!(jobs.rebuild_due_index()?, 1);
        assert_eq!(jobs.due(u64::MAX)?, [b]);
        Ok(())
    }

    #[test]
    fn updates_are_compare_and_set() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, jobs) = open()?;
        let (id, _) = jobs.register(registration("ana", "n"), 0)?;
        let mut calls = 0;
        let job = jobs.update(&id, |job| {
            calls += 1;
            if calls == 1 {
                // A concurrent writer wins the first round.
                jobs.update(&id, |j| {
                    j.enabled = false;
                    Ok(())
                })?;
            }
            job.runs += 1;
            Ok(())
        })?;
        assert_eq!(calls, 2, "retried after the conflict");
        assert!(!job.enabled && job.runs == 1, "both changes kept: {job:?}");
        Ok(())
    }

    /// A removed extension's jobs are marked for good, already-suspended
    /// ones too; none can be resumed or given away; other extensions' jobs
    /// are untouched; a second removal keeps the first date.
    #[test]
    fn a_removed_extensions_jobs_can_never_resume() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, jobs) = open()?;
        let (running, _) = jobs.register(registration("ana", "running"), 1_000)?;
        let (paused, _) = jobs.register(registration("ana", "paused"), 1_000)?;
        jobs.update(&paused, |job| {
            job.suspended = Some("user `ana` no longer consents".into());
            Ok(())
        })?;
        let (other, _) =
            jobs.register(Registration { extension: "other", ..registration("ana", "running") }, 1_000)?;
        let mut marked =
            jobs.suspend_removed("reporter", "extension `reporter` was removed by `admin`", 5_000)?;
        marked.sort();
        let mut expected = vec![running.clone(), paused.clone()];
        expected.sort();
        assert_eq!(marked, expected);
        for id in [&running, &paused] {
            let (job, _) = jobs.get(id)?.ok_or("job missing")?;
            assert_eq!(job.extension_removed, Some(ExtensionRemoved { at: 5_000 }));
            assert_eq!(job.suspended.as_deref(), Some("extension `reporter` was removed by `admin`"));
            assert!(!job.is_due(u64::MAX));
            let refused = job.check_resumable(id).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(refused.contains("extension `reporter` was removed on 1970-01-01T00:00:05"), "{refused}");
            assert!(refused.contains("delete it"), "{refused}");
            let given = jobs.set_owner(id, "bob", "internal", 6_000);
            assert!(matches!(given, Err(JobError::ExtensionRemoved { .. })), "{given:?}");
        }
        assert!(jobs.due(u64::MAX)? == [other.clone()], "only the other extension's job is due");
        let kept = jobs.get(&other)?.ok_or("job missing")?.0;
        assert!(kept.extension_removed.is_none() && kept.suspended.is_none());
        assert!(jobs.suspend_removed("reporter", "again", 9_000)?.is_empty(), "already marked");
        let (job, _) = jobs.get(&running)?.ok_or("job missing")?;
        assert_eq!(job.extension_removed, Some(ExtensionRemoved { at: 5_000 }));
        // Deleting is what is left, and it works.
        jobs.remove(&running)?;
        assert!(jobs.get(&running)?.is_none());
        Ok(())
    }

    /// Jobs stored before the marker existed still read, unmarked.
    #[test]
    fn jobs_stored_without_the_marker_still_read() -> Result<(), Box<dyn std::error::Error>> {
        let old = r#"{"extension":"reporter","name":"n","schedule":{"interval":60},"params":"{}",
            "enabled":false,"suspended":"extension `reporter` was removed by `admin`","next_run":null,
            "created_at":1,"updated_at":2}"#;
        let job: Job = serde_json::from_str(old)?;
        assert_eq!(job.extension_removed, None);
        assert!(job.check_resumable("j").is_ok(), "only the typed marker refuses");
        assert!(!serde_json::to_string(&job)?.contains("extension_removed"));
        Ok(())
    }

    #[test]
    fn run_history_is_bounded_and_goes_with_the_job() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, jobs) = open()?;
        let (id, _) = jobs.register(registration("ana", "busy"), 0)?;
        let (other, _) = jobs.register(registration("ana", "quiet"), 0)?;
        let run = |n: u64| RunEntry {
            seq: 0,
            scheduled_at: n * 1000,
            planned_at: n * 1000,
            started_at: n * 1000 + 7,
            duration_ms: 3,
            attempt: 1,
            outcome: if n.is_multiple_of(2) { RunStatus::Success } else { RunStatus::Failure },
            message: format!("run {n}"),
        };
        for n in 1..=25 {
            jobs.update_recording(&id, None, Some((&run(n), 20)), |_| Ok(()))?;
        }
        let kept = jobs.runs(&id, 100)?;
        assert_eq!(kept.len(), 20, "only the last 20 are kept");
        assert_eq!((kept[0].seq, kept[0].message.as_str()), (25, "run 25"), "newest first");
        assert_eq!((kept[19].seq, kept[19].lateness_ms()), (6, 7));
        // The store holds no more than that: the oldest were deleted.
        assert_eq!(jobs.store.list_prefix(RUNS_INDEX, &format!("{id}\u{1f}"))?.len(), 20);
        assert_eq!(jobs.get(&id)?.ok_or("job missing")?.0.history_seq, 25);
        assert_eq!(jobs.runs(&id, 3)?.iter().map(|r| r.seq).collect::<Vec<_>>(), [25, 24, 23]);
        assert!(jobs.runs(&other, 20)?.is_empty(), "another job's history is its own");
        // A refused edit records nothing.
        let refused =
            jobs.update_recording(&id, None, Some((&run(26), 20)), |_| Err(JobError::Invalid("no".into())));
        assert!(refused.is_err());
        assert_eq!(jobs.runs(&id, 1)?[0].seq, 25);
        jobs.remove(&id)?;
        assert!(jobs.store.list(RUNS_INDEX)?.is_empty(), "removed with its job");
        Ok(())
    }
}
