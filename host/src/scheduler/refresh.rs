//! The cluster access of a job run, which keeps the run's token fresh.
//!
//! A run's token lives `SchedulerConfig::token_lifetime` (short, like a
//! request's). A run that lasts longer does not keep stale authority: once
//! half of its token's life is gone, the host checks, before the next
//! cluster call, that the run still holds the job's lease (an operator who
//! removes the job takes it away) and that the owner can still be run for
//! (not deleted, not disabled, still consenting), then mints a new token
//! with the owner's roles as of now. If either check fails the call is
//! denied by the token gate and audited; the guest never handles a token.

use std::sync::{Arc, Mutex};

use super::jobs::JobIdentity;
use super::{ResolvedOwner, Scheduler, now_ms};
use crate::audit::{Category, Event};
use crate::cluster::gateway::ClusterGateway;
use crate::runtime::bindings::{cluster, types};
use crate::runtime::capabilities::cluster::ClusterAccess;
use crate::security::obo;

/// One run's token and when to renew it (seconds since the epoch).
#[derive(Debug)]
struct Current {
    token: String,
    renew_at: u64,
}

#[derive(Debug)]
pub struct JobCluster {
    scheduler: Arc<Scheduler>,
    gateway: Arc<ClusterGateway>,
    job_id: String,
    identity: JobIdentity,
    /// Seconds each token lives.
    lifetime: u64,
    current: Mutex<Current>,
}

impl JobCluster {
    /// Mints the run's first token for the owner resolved at dispatch.
    pub fn start(
        scheduler: Arc<Scheduler>,
        gateway: Arc<ClusterGateway>,
        job_id: &str,
        identity: JobIdentity,
        owner: &ResolvedOwner,
    ) -> Result<JobCluster, String> {
        let lifetime = scheduler.config.token_lifetime.as_secs().clamp(1, obo::MAX_LIFETIME);
        let token = mint(&gateway, job_id, &identity, owner, lifetime)?;
        Ok(JobCluster {
            scheduler,
            gateway,
            job_id: job_id.to_owned(),
            identity,
            lifetime,
            current: Mutex::new(Current { token, renew_at: renew_at(lifetime) }),
        })
    }

    /// The token to use now, renewed first when half its life is gone.
    fn token(&self, request_id: &str) -> Result<String, types::Error> {
        let mut current =
            self.current.lock().map_err(|_| types::Error::Internal("job token lock poisoned".into()))?;
        if crate::time::now_secs() < current.renew_at {
            return Ok(current.token.clone());
        }
        let refused = |reason: String| {
            self.scheduler.audit.record(Event {
                user: Some(self.identity.user.clone()),
                extension: Some(self.identity.extension.clone()),
                job: Some(self.job_id.clone()),
                gate: Some("token".into()),
                reason: Some(format!("job token not renewed: {reason}")),
                ..Event::new(Category::MissingPrivileges, request_id)
            });
            types::Error::Denied(format!("token gate: the job's token was not renewed: {reason}"))
        };
        let holds = self.scheduler.jobs.holds_lock(&self.job_id, &self.scheduler.holder, now_ms());
        match holds {
            Ok(true) => {}
            Ok(false) => {
                return Err(refused(
                    "this run no longer holds the job (it was removed or taken over)".into(),
                ));
            }
            Err(e) => return Err(types::Error::Internal(e.to_string())),
        }
        let owner = self.scheduler.resolve_owner(&self.identity).map_err(refused)?;
        let token = mint(&self.gateway, &self.job_id, &self.identity, &owner, self.lifetime)
            .map_err(types::Error::Internal)?;
        tracing::info!(job = self.job_id, user = self.identity.user, "job token renewed for a long run");
        *current = Current { token: token.clone(), renew_at: renew_at(self.lifetime) };
        Ok(token)
    }

    /// The run's current token (for the session; calls use [`Self::token`]).
    pub fn initial_token(&self) -> Option<String> {
        self.current.lock().ok().map(|c| c.token.clone())
    }
}

fn renew_at(lifetime: u64) -> u64 {
    crate::time::now_secs() + (lifetime / 2).max(1)
}

/// A token for the owner as resolved now: their current roles and attributes.
fn mint(
    gateway: &ClusterGateway,
    job_id: &str,
    identity: &JobIdentity,
    owner: &ResolvedOwner,
    lifetime: u64,
) -> Result<String, String> {
    let holder = obo::TokenHolder {
        user: &identity.user,
        source: &identity.auth_source,
        roles: &owner.state.privileges.role_names(&owner.subject.roles),
        backend_roles: &owner.principal.backend_roles,
        attributes: &owner.principal.attributes,
    };
    gateway
        .tokens()
        .mint(&holder, &identity.extension, &obo::Scope::Job(job_id.to_owned()), lifetime)
        .map_err(|e| format!("cannot mint the run's token: {e}"))
}

impl ClusterAccess for JobCluster {
    fn call(
        &self,
        extension: &str,
        request_id: &str,
        _token: Option<&str>,
        request: &cluster::Request,
    ) -> Result<cluster::Response, types::Error> {
        // Calls as the service account carry no user token to renew.
        let token = match request.identity {
            cluster::Identity::User => Some(self.token(request_id)?),
            cluster::Identity::Service => None,
        };
        ClusterAccess::call(self.gateway.as_ref(), extension, request_id, token.as_deref(), request)
    }
}
