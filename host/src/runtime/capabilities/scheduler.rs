//! `warden:extension/scheduler` (grant: `scheduler`).
//!
//! Linked for extensions granted `scheduler`. Each call goes to the
//! invocation's [`JobAccess`] (the host's scheduler) with the invocation's
//! [`JobOwner`]: the user the request or job runs for, decided by the host.
//! The guest names only jobs, schedules and its own params; it never sees
//! or chooses who a job runs as. An invocation without a scheduler answers
//! a typed `unavailable`.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::not_granted;
use crate::capability::Capability;
use crate::runtime::bindings::{scheduler, types};
use crate::runtime::state::InvocationState;

/// Who the jobs an invocation registers will run as.
#[derive(Debug, Clone)]
pub struct JobOwner {
    pub user: String,
    /// How the user authenticated (`internal`, `jwt`, `api-token:<id>`...).
    pub auth_source: String,
    pub backend_roles: Vec<String>,
    /// Whether the user consented to this extension scheduling work on
    /// their behalf (the reason when not).
    pub consent: Result<(), String>,
}

/// The host's side of the scheduler interface.
pub trait JobAccess: Send + Sync + std::fmt::Debug {
    fn register(
        &self,
        extension: &str,
        owner: &JobOwner,
        request_id: &str,
        spec: scheduler::JobSpec,
    ) -> Result<String, types::Error>;
    fn unregister(
        &self,
        extension: &str,
        owner: &JobOwner,
        request_id: &str,
        id: &str,
    ) -> Result<(), types::Error>;
    fn get(&self, extension: &str, owner: &JobOwner, id: &str) -> Result<scheduler::JobInfo, types::Error>;
    fn list(&self, extension: &str, owner: &JobOwner) -> Result<Vec<scheduler::JobInfo>, types::Error>;
}

/// What an invocation carries for its scheduler calls.
#[derive(Debug, Clone)]
pub struct JobSession {
    pub access: Arc<dyn JobAccess>,
    /// Who the invocation's jobs belong to, or why nobody can act on jobs
    /// here (an anonymous caller; a token standing in for the user).
    pub owner: Result<JobOwner, String>,
}

pub fn link(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    scheduler::add_to_linker::<_, HasSelf<InvocationState>>(linker, |s| s)
}

impl InvocationState {
    /// The grant (checked again at call time), the scheduler and the owner.
    fn job_session(&self) -> Result<(&dyn JobAccess, &JobOwner), types::Error> {
        if !self.context.is_granted(Capability::Scheduler) {
            return Err(not_granted(Capability::Scheduler));
        }
        let Some(session) = &self.context.session.jobs else {
            return Err(types::Error::Unavailable("no scheduler is configured for this invocation".into()));
        };
        let owner = session.owner.as_ref().map_err(|reason| types::Error::Denied(reason.clone()))?;
        Ok((session.access.as_ref(), owner))
    }
}

impl scheduler::Host for InvocationState {
    async fn register(&mut self, spec: scheduler::JobSpec) -> wasmtime::Result<Result<String, types::Error>> {
        let request_id = &self.context.session.request_id;
        Ok(self
            .job_session()
            .and_then(|(access, owner)| access.register(&self.context.extension_id, owner, request_id, spec)))
    }

    async fn unregister(&mut self, id: String) -> wasmtime::Result<Result<(), types::Error>> {
        let request_id = &self.context.session.request_id;
        Ok(self.job_session().and_then(|(access, owner)| {
            access.unregister(&self.context.extension_id, owner, request_id, &id)
        }))
    }

    async fn get(&mut self, id: String) -> wasmtime::Result<Result<scheduler::JobInfo, types::Error>> {
        Ok(self.job_session().and_then(|(access, owner)| access.get(&self.context.extension_id, owner, &id)))
    }

    async fn list_jobs(&mut self) -> wasmtime::Result<Result<Vec<scheduler::JobInfo>, types::Error>> {
        Ok(self.job_session().and_then(|(access, owner)| access.list(&self.context.extension_id, owner)))
    }
}
