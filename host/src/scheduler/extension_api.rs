//! The scheduler as extensions see it ([`JobAccess`]): register, unregister,
//! get and list — only their own jobs, only those of the invocation's user,
//! never who a job runs as. Registration needs the user's consent
//! (`schedule:<extension>`) and is audited.
//!
//! Everything here is in domain terms ([`JobSpec`], [`JobInfo`],
//! [`JobAccessError`]); the `scheduler` capability
//! (`runtime::capabilities::scheduler`) converts from and to the WIT types.

use super::jobs::{Job, JobError, Registration};
use super::schedule::{JobOptions, Schedule};
use super::{Scheduler, consent_permission};
use crate::audit::{Category, Event};
use crate::error::{Denial, ErrorKind, HasKind};
use crate::security::IdentitySource;
use crate::time::now_ms;

/// Who the jobs an invocation registers will run as.
#[derive(Debug, Clone)]
pub struct JobOwner {
    pub user: String,
    /// How the user authenticated: the job's identity is the name *and* this.
    pub auth_source: IdentitySource,
    pub backend_roles: Vec<String>,
    /// Whether the user consented to this extension scheduling work on
    /// their behalf (the consent gate's refusal when not).
    pub consent: Result<(), Denial>,
}

/// Why nobody can act on jobs in an invocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoJobOwner {
    #[error("jobs run on behalf of a user, and this request has none (anonymous)")]
    Anonymous,
    #[error(
        "jobs cannot be managed through {via}: background work runs with the user's own roles, \
         so `{user}` must act with their own credentials"
    )]
    ThroughToken { via: &'static str, user: String },
    #[error("`{0}` names a service account; jobs run for users")]
    ServiceAccount(String),
}

impl HasKind for NoJobOwner {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Denied
    }
}

/// A job as an extension asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub name: String,
    pub schedule: Schedule,
    pub params: String,
    /// Jitter and catch-up policy (the defaults through `register`).
    pub options: JobOptions,
}

/// A job as an extension sees it (never whom it runs as).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: String,
    pub name: String,
    pub schedule: Schedule,
    pub params: String,
    pub enabled: bool,
    pub next_run: Option<u64>,
    pub last_run: Option<u64>,
}

/// Why a scheduler call from an extension failed.
#[derive(Debug, thiserror::Error)]
pub enum JobAccessError {
    /// The user has not consented (`Gate::Consent`).
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error("extension `{0}` does not export `warden:extension/job-runner`, so its jobs could never run")]
    NotRunnable(String),
    /// No such job of this extension and user (whether it exists is not the
    /// extension's business).
    #[error("no job `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Job(#[from] JobError),
}

impl HasKind for JobAccessError {
    fn kind(&self) -> ErrorKind {
        match self {
            JobAccessError::Denied(denial) => denial.kind(),
            JobAccessError::NotRunnable(_) => ErrorKind::Invalid,
            JobAccessError::NotFound(_) => ErrorKind::NotFound,
            JobAccessError::Job(e) => e.kind(),
        }
    }
}

/// The host's side of the scheduler interface.
pub trait JobAccess: Send + Sync + std::fmt::Debug {
    fn register(
        &self,
        extension: &str,
        owner: &JobOwner,
        request_id: &str,
        spec: JobSpec,
    ) -> Result<String, JobAccessError>;
    fn unregister(
        &self,
        extension: &str,
        owner: &JobOwner,
        request_id: &str,
        id: &str,
    ) -> Result<(), JobAccessError>;
    fn get(&self, extension: &str, owner: &JobOwner, id: &str) -> Result<JobInfo, JobAccessError>;
    fn list(&self, extension: &str, owner: &JobOwner) -> Result<Vec<JobInfo>, JobAccessError>;
}

impl JobAccess for Scheduler {
    fn register(
        &self,
        extension: &str,
        owner: &JobOwner,
        request_id: &str,
        spec: JobSpec,
    ) -> Result<String, JobAccessError> {
        if let Err(denial) = &owner.consent {
            self.audit.record(Event {
                user: Some(owner.user.clone()),
                extension: Some(extension.to_owned()),
                action: Some(consent_permission(extension)),
                gate: Some(denial.gate.as_str().into()),
                reason: Some(denial.reason.clone()),
                ..Event::new(Category::MissingPrivileges, request_id)
            });
            return Err(denial.clone().into());
        }
        // May consent (`schedule:<id>`), and did: a live consent record of
        // this user to this extension (never implied by a role).
        if let Err(denial) = self.live_consent(owner.auth_source, &owner.user, extension) {
            self.audit.record(Event {
                user: Some(owner.user.clone()),
                extension: Some(extension.to_owned()),
                gate: Some(denial.gate.as_str().into()),
                reason: Some(denial.reason.clone()),
                ..Event::new(Category::MissingPrivileges, request_id)
            });
            return Err(denial.into());
        }
        if !self.registry.get(extension).is_some_and(|e| e.runs_jobs()) {
            return Err(JobAccessError::NotRunnable(extension.to_owned()));
        }
        // A job left by an earlier holder of this name (deleted since) is
        // theirs, not this user's to take over: it goes, a new one is made.
        // So does one left by an earlier extension of this id (removed
        // since): this extension's registration makes its own.
        let owner_key = (owner.user.as_str(), owner.auth_source.as_str());
        if let Some(old) = self.jobs.id_named(extension, owner_key, &spec.name)?
            && let Some((identity, _)) = self.jobs.identity(&old)?
            && (self.stale_owner(&identity).is_some()
                || self.jobs.get(&old)?.is_some_and(|(job, _)| job.extension_removed.is_some()))
        {
            self.jobs.remove(&old)?;
        }
        let described = match spec.options == JobOptions::default() {
            true => format!("{:?}", spec.schedule),
            false => format!("{:?}, {:?}", spec.schedule, spec.options),
        };
        let (id, created) = self.jobs.register(
            Registration {
                extension,
                user: &owner.user,
                auth_source: owner.auth_source.as_str(),
                backend_roles: &owner.backend_roles,
                name: &spec.name,
                schedule: spec.schedule,
                params: spec.params,
                options: spec.options,
            },
            now_ms(),
        )?;
        let what = if created { "registered" } else { "re-registered" };
        let who = Some((owner.user.as_str(), extension));
        self.audit(Category::JobWrite, request_id, &id, who, format!("{what} `{}` ({described})", spec.name));
        Ok(id)
    }

    fn unregister(
        &self,
        extension: &str,
        owner: &JobOwner,
        request_id: &str,
        id: &str,
    ) -> Result<(), JobAccessError> {
        let job = self.own_job(extension, owner, id)?;
        self.jobs.remove(id)?;
        let who = Some((owner.user.as_str(), extension));
        self.audit(
            Category::JobWrite,
            request_id,
            id,
            who,
            format!("unregistered `{}` by the extension", job.name),
        );
        Ok(())
    }

    fn get(&self, extension: &str, owner: &JobOwner, id: &str) -> Result<JobInfo, JobAccessError> {
        self.own_job(extension, owner, id).map(|job| info(id, job))
    }

    fn list(&self, extension: &str, owner: &JobOwner) -> Result<Vec<JobInfo>, JobAccessError> {
        let mut out = Vec::new();
        for id in self.jobs.ids_of(extension, (&owner.user, owner.auth_source.as_str()))? {
            if let Ok(job) = self.own_job(extension, owner, &id) {
                out.push(info(&id, job));
            }
        }
        Ok(out)
    }
}

impl Scheduler {
    /// The job, if it belongs to this extension and this user; otherwise
    /// not found (whether it exists is not the extension's business). A job
    /// an earlier extension of this id left behind (removed since) is not
    /// this one's.
    fn own_job(&self, extension: &str, owner: &JobOwner, id: &str) -> Result<Job, JobAccessError> {
        let not_found = || JobAccessError::NotFound(id.to_owned());
        let identity = self.jobs.identity(id)?.ok_or_else(not_found)?.0;
        if identity.extension != extension
            || identity.owner() != (&owner.user, owner.auth_source.as_str())
            || self.stale_owner(&identity).is_some()
        {
            return Err(not_found());
        }
        let job = self.jobs.get(id)?.ok_or_else(not_found)?.0;
        if job.extension_removed.is_some() {
            return Err(not_found());
        }
        Ok(job)
    }
}

fn info(id: &str, job: Job) -> JobInfo {
    JobInfo {
        id: id.to_owned(),
        name: job.name,
        schedule: job.schedule,
        params: job.params,
        enabled: job.enabled && job.suspended.is_none(),
        next_run: job.next_run,
        last_run: job.last_run.map(|run| run.finished_at),
    }
}
