//! The scheduler as extensions see it ([`JobAccess`]): register, unregister,
//! get and list — only their own jobs, only those of the invocation's user,
//! never who a job runs as. Registration needs the user's consent
//! (`schedule:<extension>`) and is audited.

use super::jobs::{Job, JobError, Registration};
use super::schedule::Schedule;
use super::{Scheduler, consent_permission, now_ms};
use crate::audit::{Category, Event};
use crate::runtime::bindings::{scheduler as wit, types};
use crate::runtime::capabilities::scheduler::{JobAccess, JobOwner};

impl JobAccess for Scheduler {
    fn register(
        &self,
        extension: &str,
        owner: &JobOwner,
        request_id: &str,
        spec: wit::JobSpec,
    ) -> Result<String, types::Error> {
        if let Err(reason) = &owner.consent {
            self.audit.record(Event {
                user: Some(owner.user.clone()),
                extension: Some(extension.to_owned()),
                action: Some(consent_permission(extension)),
                gate: Some("consent".into()),
                reason: Some(reason.clone()),
                ..Event::new(Category::MissingPrivileges, request_id)
            });
            return Err(types::Error::Denied(reason.clone()));
        }
        if !self.registry.get(extension).is_some_and(|e| e.runs_jobs()) {
            return Err(types::Error::Invalid(format!(
                "extension `{extension}` does not export `warden:extension/job-runner`, so its jobs could never run"
            )));
        }
        // A job left by an earlier holder of this name (deleted since) is
        // theirs, not this user's to take over: it goes, a new one is made.
        let owner_key = (owner.user.as_str(), owner.auth_source.as_str());
        if let Some(old) = self.jobs.id_named(extension, owner_key, &spec.name).map_err(to_wit_error)?
            && let Some((identity, _)) = self.jobs.identity(&old).map_err(to_wit_error)?
            && self.stale_owner(&identity).is_some()
        {
            self.jobs.remove(&old).map_err(to_wit_error)?;
        }
        let schedule = from_wit(spec.schedule);
        let described = format!("{schedule:?}");
        let (id, created) = self
            .jobs
            .register(
                Registration {
                    extension,
                    user: &owner.user,
                    auth_source: &owner.auth_source,
                    backend_roles: &owner.backend_roles,
                    name: &spec.name,
                    schedule,
                    params: spec.params,
                },
                now_ms(),
            )
            .map_err(to_wit_error)?;
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
    ) -> Result<(), types::Error> {
        let job = self.own_job(extension, owner, id)?;
        self.jobs.remove(id).map_err(to_wit_error)?;
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

    fn get(&self, extension: &str, owner: &JobOwner, id: &str) -> Result<wit::JobInfo, types::Error> {
        self.own_job(extension, owner, id).map(|job| info(id, job))
    }

    fn list(&self, extension: &str, owner: &JobOwner) -> Result<Vec<wit::JobInfo>, types::Error> {
        let mut out = Vec::new();
        for id in self.jobs.ids_of(extension, (&owner.user, &owner.auth_source)).map_err(to_wit_error)? {
            if let Ok(job) = self.own_job(extension, owner, &id) {
                out.push(info(&id, job));
            }
        }
        Ok(out)
    }
}

impl Scheduler {
    /// The job, if it belongs to this extension and this user; otherwise
    /// not found (whether it exists is not the extension's business).
    fn own_job(&self, extension: &str, owner: &JobOwner, id: &str) -> Result<Job, types::Error> {
        let not_found = || types::Error::NotFound(format!("no job `{id}`"));
        let identity = self.jobs.identity(id).map_err(to_wit_error)?.ok_or_else(not_found)?.0;
        if identity.extension != extension
            || identity.owner() != (&owner.user, &owner.auth_source)
            || self.stale_owner(&identity).is_some()
        {
            return Err(not_found());
        }
        Ok(self.jobs.get(id).map_err(to_wit_error)?.ok_or_else(not_found)?.0)
    }
}

fn from_wit(schedule: wit::Schedule) -> Schedule {
    match schedule {
        wit::Schedule::Once(at) => Schedule::Once(at),
        wit::Schedule::Interval(secs) => Schedule::Interval(secs),
        wit::Schedule::Cron(expr) => Schedule::Cron(expr),
    }
}

fn info(id: &str, job: Job) -> wit::JobInfo {
    wit::JobInfo {
        id: id.to_owned(),
        name: job.name,
        schedule: match job.schedule {
            Schedule::Once(at) => wit::Schedule::Once(at),
            Schedule::Interval(secs) => wit::Schedule::Interval(secs),
            Schedule::Cron(expr) => wit::Schedule::Cron(expr),
        },
        params: job.params,
        enabled: job.enabled && job.suspended.is_none(),
        next_run: job.next_run,
        last_run: job.last_run.map(|run| run.finished_at),
    }
}

fn to_wit_error(e: JobError) -> types::Error {
    let message = e.to_string();
    match e {
        JobError::Invalid(_) | JobError::Schedule(_) => types::Error::Invalid(message),
        JobError::NotFound(_) => types::Error::NotFound(message),
        JobError::Limit(_) => types::Error::Denied(message),
        JobError::Contended(_) => types::Error::Conflict(message),
        JobError::Store(_) | JobError::Corrupt { .. } => types::Error::Internal(message),
    }
}
