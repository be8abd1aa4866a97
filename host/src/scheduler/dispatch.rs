//! The dispatcher: every tick it looks for due jobs, takes each one's lease
//! (compare-and-set, so of several nodes one runs it), resolves the owner
//! now, mints a token scoped `job:<id>` with the owner's current roles and
//! calls the component's `job-runner` export. The outcome, the next run and
//! any retry are written back with compare-and-set; every run is audited.

use std::sync::Arc;
use std::time::Duration;

use super::extension_api::{JobAccess, JobOwner};
use super::jobs::{Job, JobIdentity, RunEntry, RunRecord, RunStatus, Version};
use super::refresh::RenewingClusterAccess;
use super::{OwnerError, ResolvedOwner, Scheduler};
use crate::audit::Category;
use crate::capability::Capability;
use crate::cluster::gateway::ClusterAccess;
use crate::runtime::session::{JobRun, Session, SessionError};
use crate::runtime::{InvokeError, JobContext, JobOutcome, LoadedExtension};
use crate::time::now_ms;

/// A run's lease outlasts the extension's timeout by this much.
const LEASE_MARGIN_MS: u64 = 30_000;
/// What is kept of a runner's message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Successful runs at debug (an every-second job would flood the log),
/// the others at info.
fn log_run(id: &str, extension: &str, record: &RunRecord) {
    let elapsed_ms = record.finished_at.saturating_sub(record.started_at);
    let (status, attempt, message) = (record.status, record.attempt, &record.message);
    if status == RunStatus::Success {
        tracing::debug!(job = id, extension, attempt, elapsed_ms, "job ran: {message}");
    } else {
        tracing::info!(job = id, extension, ?status, attempt, elapsed_ms, "job did not succeed: {message}");
    }
}

/// Why a run starts: its schedule (a run missed while no node was up may
/// be skipped, per its catch-up policy) or someone asking (`_run`).
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Schedule,
    Asked,
}

/// What became of one dispatched run.
#[derive(Debug)]
enum Step {
    /// The owner can no longer be run for: stop until someone re-enables it.
    Suspend(String),
    /// The owner's consent is revoked or expired: stop until they consent
    /// again (which resumes it).
    SuspendForConsent(String),
    Ran(RunStatus, String),
}

/// Removes a job from this node's running set however its run ends.
struct Claim<'a> {
    scheduler: &'a Scheduler,
    id: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.scheduler.running.lock() {
            running.remove(&self.id);
        }
    }
}

impl Scheduler {
    /// Runs the dispatcher on the current tokio runtime until aborted.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(this.config.tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticker.tick().await;
                this.dispatch_due(now_ms());
                this.ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    }

    /// Waits (at most `grace`) for the runs under way to finish; how many
    /// were still running when it gave up. Called at shutdown, after the
    /// dispatcher stopped starting new ones.
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let running = self.running.lock().map(|r| r.len()).unwrap_or(0);
            if running == 0 || tokio::time::Instant::now() >= deadline {
                return running;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts every job due at `now` that this node can lease; returns how
    /// many started. Each runs in its own task.
    pub fn dispatch_due(self: &Arc<Self>, now: u64) -> usize {
        let due = match self.jobs.due(now) {
            Ok(due) => due,
            Err(e) => {
                tracing::error!("scheduler: cannot read the job store: {e}");
                return 0;
            }
        };
        let mut started = 0;
        for id in due {
            // Read whole only now that it is due (it may have changed).
            let job = match self.jobs.get(&id) {
                Ok(Some((job, _))) if job.is_due(now) => job,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(job = id, "scheduler: cannot read the job: {e}");
                    continue;
                }
            };
            let Some(lock) = self.claim(&id, &job, now) else { continue };
            let this = self.clone();
            tokio::spawn(async move {
                let _claim = Claim { scheduler: &this, id: id.clone() };
                this.run(&id, job, lock, Trigger::Schedule).await;
            });
            started += 1;
        }
        started
    }

    /// Runs one job now, in this task, if it is enabled and this node can
    /// lease it; whether it ran. (`POST …/_run` only moves the next run:
    /// this is for embedding and benchmarks.)
    pub async fn run_now(self: &Arc<Self>, id: &str) -> Result<bool, super::jobs::JobError> {
        let (job, _) = self.jobs.get(id)?.ok_or_else(|| super::jobs::JobError::NotFound(id.to_owned()))?;
        if !job.enabled || job.suspended.is_some() {
            return Ok(false);
        }
        let Some(lock) = self.claim(id, &job, now_ms()) else { return Ok(false) };
        let _claim = Claim { scheduler: self, id: id.to_owned() };
        self.run(id, job, lock, Trigger::Asked).await;
        Ok(true)
    }

    /// Marks the job running on this node and takes its lease; `None` if
    /// it already runs here or another holder has an unexpired lease.
    fn claim(&self, id: &str, job: &Job, now: u64) -> Option<Version> {
        if !self.running.lock().ok()?.insert(id.to_owned()) {
            return None;
        }
        let release = || drop(Claim { scheduler: self, id: id.to_owned() });
        let lease = now.saturating_add(self.lease_ms(&job.extension));
        match self.jobs.try_lock(id, &self.holder, now, lease) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => {
                release();
                None
            }
            Err(e) => {
                tracing::error!(job = id, "scheduler: cannot lease the job: {e}");
                release();
                None
            }
        }
    }

    fn lease_ms(&self, extension: &str) -> u64 {
        let timeout = self.registry.get(extension).map_or(Duration::from_secs(30), |e| e.limits.timeout);
        crate::time::millis(timeout).saturating_add(LEASE_MARGIN_MS)
    }

    /// One run: execute, then record the outcome and release the lease in
    /// one commit (a job removed meanwhile took its lease with it; a lease
    /// left behind by a crash expires).
    async fn run(self: &Arc<Self>, id: &str, job: Job, lock: Version, trigger: Trigger) {
        let started = now_ms();
        let due = job.due.or(job.next_run).unwrap_or(started);
        let planned = job.next_run.unwrap_or(started);
        let attempt = job.attempt;
        let request_id = format!("job-{id}-{started}");
        // A run someone asked for (`_run`) is never a missed one.
        let skip = match trigger {
            Trigger::Schedule => {
                job.catch_up.skip_to(&job.schedule, (planned, due), self.started_at, started)
            }
            Trigger::Asked => None,
        };
        if let Some(slot) = skip {
            self.skip_missed(id, &job, (due, planned), slot, lock, started);
            return;
        }
        // Dispatch lateness: not a catch-up run's wait for this node to start.
        if planned >= self.started_at {
            let late = started.saturating_sub(planned);
            self.note_lateness(late);
            crate::metrics::job_lateness(std::time::Duration::from_millis(late));
        }
        // Read once: the events name whom this run ran for, even if the
        // job is given to someone else meanwhile.
        let identity = self.jobs.identity(id).map(|found| found.map(|(identity, _)| identity));
        let step = match &identity {
            Ok(Some(identity)) => self.execute(id, &job, identity, due, attempt, &request_id).await,
            // Removed since it was read as due: nothing ran and there is no
            // job to suspend (the soak saw a "suspended" audit event and an
            // error for each); the lease taken after the removal goes too.
            Ok(None) if matches!(self.jobs.get(id), Ok(None)) => {
                tracing::debug!(job = id, "job removed before it ran");
                if let Err(e) = self.jobs.release(id, lock) {
                    tracing::warn!(job = id, "cannot release the lease of a removed job: {e}");
                }
                return;
            }
            Ok(None) => Step::Suspend("the job has no identity record".into()),
            Err(e) => Step::Ran(RunStatus::Error, e.to_string()),
        };
        let finished = now_ms();
        let for_consent = matches!(step, Step::SuspendForConsent(_));
        let identity = identity.ok().flatten();
        let who = identity.as_ref().map(|i| (i.user.as_str(), i.extension.as_str()));
        match step {
            // Audited first: whoever sees the job's new state finds the
            // event that explains it already in the log.
            Step::Suspend(reason) | Step::SuspendForConsent(reason) => {
                crate::metrics::job_run("suspended");
                tracing::warn!(job = id, extension = job.extension, "job suspended: {reason}");
                let what = format!("suspended: {reason}");
                self.audit(Category::JobWrite, &request_id, id, who, what);
                let suspended = self.jobs.update_releasing(id, Some(lock), |job| {
                    job.suspended = Some(reason.clone());
                    job.consent_revoked = for_consent;
                    // Resumed, it starts counting failures afresh.
                    job.consecutive_failures = 0;
                    job.updated_at = finished;
                    Ok(())
                });
                if let Err(e) = suspended {
                    tracing::error!(job = id, "cannot record the suspension: {e}");
                }
            }
            Step::Ran(status, message) => {
                let message = crate::runtime::truncate(&message, MAX_MESSAGE_BYTES).to_owned();
                crate::metrics::job_run(status.label());
                let record =
                    RunRecord { started_at: started, finished_at: finished, attempt, status, message };
                log_run(id, &job.extension, &record);
                let what =
                    format!("run {attempt} of `{}`: {:?}: {}", job.name, record.status, record.message);
                self.audit(Category::JobRun, &request_id, id, who, what);
                if let Some(reason) = self.record(id, (due, planned), record, lock) {
                    // Suspended by this outcome: audited as every other
                    // suspension (after the write here: only the write
                    // knows whether the count was reached).
                    tracing::warn!(job = id, extension = job.extension, "job suspended: {reason}");
                    self.audit(Category::JobWrite, &request_id, id, who, format!("suspended: {reason}"));
                }
            }
        }
    }

    /// Resolves the owner, builds the session and calls the runner.
    async fn execute(
        self: &Arc<Self>,
        id: &str,
        job: &Job,
        identity: &JobIdentity,
        due: u64,
        attempt: u32,
        request_id: &str,
    ) -> Step {
        let owner = match self.resolve_owner(identity) {
            Ok(owner) => owner,
            Err(OwnerError::ConsentNotLive(reason)) => return Step::SuspendForConsent(reason),
            Err(reason) => return Step::Suspend(reason.to_string()),
        };
        let Some(extension) = self.registry.get(&job.extension) else {
            return Step::Ran(RunStatus::Skipped, format!("extension `{}` is not loaded", job.extension));
        };
        // Capabilities are checked at every call: an extension whose
        // `scheduler` grant was withdrawn runs no more jobs.
        if !extension.grants().contains(&Capability::Scheduler) {
            return Step::Suspend(format!("extension `{}` is no longer granted `scheduler`", job.extension));
        }
        let session = match self.job_session(id, &extension, identity, &owner, request_id) {
            Ok(session) => session,
            Err(e) => return Step::Ran(RunStatus::Error, e.to_string()),
        };
        let context = JobContext {
            job_id: id.to_owned(),
            job_name: job.name.clone(),
            params: job.params.clone(),
            scheduled_at: due,
            attempt,
        };
        match extension.run_job(identity.user.clone(), session, context).await {
            Ok(JobOutcome::Success(message)) => Step::Ran(RunStatus::Success, message),
            Ok(JobOutcome::Failure(message)) => Step::Ran(RunStatus::Failure, message),
            Err(e @ InvokeError::Busy { .. }) => Step::Ran(RunStatus::Skipped, e.to_string()),
            Err(e) => Step::Ran(RunStatus::Error, e.to_string()),
        }
    }

    /// A run's session: a fresh OBO token for the owner's roles now, scoped
    /// to the job and renewed while the run lasts ([`RenewingClusterAccess`]);
    /// the scheduler for jobs the run registers in turn. Built by
    /// `runtime::session`, as a request's is.
    fn job_session(
        self: &Arc<Self>,
        id: &str,
        extension: &LoadedExtension,
        identity: &JobIdentity,
        owner: &ResolvedOwner,
        request_id: &str,
    ) -> Result<Session, SessionError> {
        let cluster = match extension.grants().contains(&Capability::Cluster) {
            true => RenewingClusterAccess::start(self.clone(), id, identity.clone(), owner)?
                .map(|access| Arc::new(access) as Arc<dyn ClusterAccess>),
            false => None,
        };
        Ok(self.sessions.for_job(
            extension,
            JobRun {
                request_id,
                owner: JobOwner {
                    user: identity.user.clone(),
                    auth_source: owner.source,
                    backend_roles: owner.principal.backend_roles.clone(),
                    consent: Ok(()),
                },
                jobs: self.clone() as Arc<dyn JobAccess>,
                cluster,
            },
        ))
    }

    /// Writes the outcome, adds it to the job's history and plans the next
    /// run: a retry after a failure (up to `max_attempts`), else the
    /// schedule's next slot. A job changed while it ran (re-registered, run
    /// now) keeps its new plan. `max_failures` failed attempts in a row
    /// suspend the job; the reason is returned when this outcome did.
    fn record(
        &self,
        id: &str,
        (due, planned): (u64, u64),
        record: RunRecord,
        lock: Version,
    ) -> Option<String> {
        let (attempt, status, finished) = (record.attempt, record.status, record.finished_at);
        let failed = matches!(status, RunStatus::Failure | RunStatus::Error | RunStatus::Skipped);
        let retry = failed && attempt < self.config.max_attempts;
        let delay = crate::time::millis(self.config.retry_delay);
        let entry = RunEntry {
            seq: 0,
            scheduled_at: due,
            planned_at: planned,
            started_at: record.started_at,
            duration_ms: finished.saturating_sub(record.started_at),
            attempt,
            outcome: status,
            message: record.message.clone(),
        };
        let mut suspended = None;
        let history = Some((&entry, self.config.history));
        let result = self.jobs.update_recording(id, Some(lock), history, |job| {
            suspended = None;
            job.last_run = Some(record.clone());
            if status != RunStatus::Skipped {
                job.runs += 1;
            }
            match status {
                RunStatus::Failure | RunStatus::Error => {
                    job.failures += 1;
                    job.consecutive_failures = job.consecutive_failures.saturating_add(1);
                }
                RunStatus::Success => job.consecutive_failures = 0,
                RunStatus::Skipped | RunStatus::Missed => {}
            }
            job.updated_at = finished;
            if job.consecutive_failures >= self.config.max_failures.max(1) && job.suspended.is_none() {
                let reason = failures_reason(job.consecutive_failures, &record);
                job.suspended = Some(reason.clone());
                // Resumed, it starts counting again.
                job.consecutive_failures = 0;
                suspended = Some(reason);
            }
            if job.due.or(job.next_run) != Some(due) || job.attempt != attempt {
                return Ok(());
            }
            if retry {
                job.attempt = attempt + 1;
                job.next_run = Some(finished.saturating_add(delay.saturating_mul(u64::from(attempt))));
            } else {
                // The next slot; the run starts at it plus the job's jitter.
                job.attempt = 1;
                job.due = job.schedule.next_run(due, finished);
                job.next_run = job.due.map(|slot| job.options().start_of(&job.schedule, slot));
            }
            Ok(())
        });
        match result {
            Ok(_) => suspended,
            Err(super::jobs::JobError::NotFound(_)) => None,
            Err(e) => {
                tracing::error!(job = id, "cannot record the run: {e}");
                None
            }
        }
    }
}

impl Scheduler {
    /// A run missed while no node was up, of a job whose catch-up policy is
    /// `skip`: not run; recorded in its history; the job moves to `slot`
    /// (the next one still to come), the lease released in the same commit.
    fn skip_missed(
        &self,
        id: &str,
        job: &Job,
        (due, planned): (u64, u64),
        slot: u64,
        lock: Version,
        now: u64,
    ) {
        let when = crate::time::rfc3339(i64::try_from(slot).unwrap_or(i64::MAX));
        let message = format!("missed while no node was up; skipped to the next slot, {when}");
        crate::metrics::job_run(RunStatus::Missed.label());
        tracing::info!(job = id, extension = job.extension, "job run {message}");
        let entry = RunEntry {
            seq: 0,
            scheduled_at: due,
            planned_at: planned,
            started_at: now,
            duration_ms: 0,
            attempt: job.attempt,
            outcome: RunStatus::Missed,
            message,
        };
        let attempt = job.attempt;
        let result = self.jobs.update_recording(id, Some(lock), Some((&entry, self.config.history)), |job| {
            // Re-planned meanwhile (re-registered, run now): that plan stands.
            if job.due.or(job.next_run) == Some(due) && job.attempt == attempt {
                job.attempt = 1;
                job.due = Some(slot);
                job.next_run = Some(job.options().start_of(&job.schedule, slot));
                job.updated_at = now;
            }
            Ok(())
        });
        match result {
            Ok(_) | Err(super::jobs::JobError::NotFound(_)) => {}
            Err(e) => tracing::error!(job = id, "cannot record the skipped run: {e}"),
        }
    }
}

/// Why a job was suspended after too many failures: the count and the
/// last failure, cut short (the whole message is in its history).
fn failures_reason(count: u32, last: &RunRecord) -> String {
    const SHOWN: usize = 200;
    let message = crate::runtime::truncate(&last.message, SHOWN);
    let more = if message.len() < last.message.len() { "…" } else { "" };
    format!("{count} consecutive failed runs; the last ({:?}): {message}{more}", last.status)
}
