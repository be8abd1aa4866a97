//! The cluster access of a job run, which keeps the run's token fresh.
//!
//! A run's token lives `SchedulerConfig::token_lifetime` (short, like a
//! request's). A run that lasts longer does not keep stale authority: once
//! half of its token's life is gone, the host checks, before the next
//! cluster call, that the run still holds the job's lease (an operator who
//! removes the job takes it away) and that the owner can still be run for
//! (not deleted, not disabled, still consenting), then mints a new token
//! (through `runtime::session`, the one place tokens are minted) with the
//! owner's roles as of now. If either check fails the call is denied by the
//! token gate and audited; the guest never handles a token.

use std::sync::{Arc, Mutex};

use super::jobs::JobIdentity;
use super::{ResolvedOwner, Scheduler};
use crate::audit::{Category, Event};
use crate::cluster::Reply;
use crate::cluster::gateway::{CallIdentity, ClusterAccess, GateError, GuestCall, Refusal};
use crate::error::{Denial, Gate};
use crate::runtime::session::SessionError;
use crate::security::obo;
use crate::time::now_ms;
use crate::time::now_secs;

/// One run's token and when to renew it (seconds since the epoch).
#[derive(Debug)]
struct Current {
    token: String,
    renew_at: u64,
}

/// A job run's cluster access: the gateway, with the run's own token,
/// renewed at half-life while the run still holds its lease and its owner.
#[derive(Debug)]
pub struct RenewingClusterAccess {
    scheduler: Arc<Scheduler>,
    inner: Arc<dyn ClusterAccess>,
    job_id: String,
    identity: JobIdentity,
    /// Seconds each token lives.
    lifetime: u64,
    current: Mutex<Current>,
}

impl RenewingClusterAccess {
    /// Mints the run's first token for the owner resolved at dispatch;
    /// `None` when the host runs without a cluster.
    pub fn start(
        scheduler: Arc<Scheduler>,
        job_id: &str,
        identity: JobIdentity,
        owner: &ResolvedOwner,
    ) -> Result<Option<RenewingClusterAccess>, SessionError> {
        let Some(inner) = scheduler.sessions.cluster() else { return Ok(None) };
        let lifetime = scheduler.config.token_lifetime.as_secs().clamp(1, obo::MAX_LIFETIME);
        let token = mint(&scheduler, job_id, &identity, owner, lifetime)?;
        Ok(Some(RenewingClusterAccess {
            inner,
            job_id: job_id.to_owned(),
            identity,
            lifetime,
            current: Mutex::new(Current { token, renew_at: renew_at(lifetime) }),
            scheduler,
        }))
    }

    /// The token to use now, renewed first when half its life is gone.
    fn token(&self, request_id: &str) -> Result<String, GateError> {
        let mut current =
            self.current.lock().map_err(|_| GateError::Internal("job token lock poisoned".into()))?;
        if now_secs() < current.renew_at {
            return Ok(current.token.clone());
        }
        let refused = |reason: String| {
            self.scheduler.audit.record(Event {
                user: Some(self.identity.user.clone()),
                extension: Some(self.identity.extension.clone()),
                job: Some(self.job_id.clone()),
                gate: Some(Gate::Token.as_str().into()),
                reason: Some(format!("job token not renewed: {reason}")),
                ..Event::new(Category::MissingPrivileges, request_id)
            });
            GateError::Refused(Refusal::Gate(Denial::new(
                Gate::Token,
                format!("the job's token was not renewed: {reason}"),
            )))
        };
        let holds = self.scheduler.jobs.holds_lock(&self.job_id, &self.scheduler.holder, now_ms());
        match holds {
            Ok(true) => {}
            Ok(false) => {
                return Err(refused(
                    "this run no longer holds the job (it was removed or taken over)".into(),
                ));
            }
            Err(e) => return Err(GateError::Internal(e.to_string())),
        }
        let owner = self.scheduler.resolve_owner(&self.identity).map_err(|e| refused(e.to_string()))?;
        let token = mint(&self.scheduler, &self.job_id, &self.identity, &owner, self.lifetime)
            .map_err(|e| GateError::Internal(e.to_string()))?;
        tracing::info!(job = self.job_id, user = self.identity.user, "job token renewed for a long run");
        *current = Current { token: token.clone(), renew_at: renew_at(self.lifetime) };
        Ok(token)
    }
}

fn renew_at(lifetime: u64) -> u64 {
    now_secs() + (lifetime / 2).max(1)
}

/// A token for the owner as resolved now: their current roles and attributes.
fn mint(
    scheduler: &Scheduler,
    job_id: &str,
    identity: &JobIdentity,
    owner: &ResolvedOwner,
    lifetime: u64,
) -> Result<String, SessionError> {
    let holder = obo::TokenHolder {
        user: &identity.user,
        source: owner.source,
        roles: &owner.state.privileges.role_names(&owner.subject.roles),
        backend_roles: &owner.principal.backend_roles,
        attributes: &owner.principal.attributes,
    };
    scheduler.sessions.job_token(&holder, &identity.extension, job_id, lifetime)
}

impl ClusterAccess for RenewingClusterAccess {
    fn call(&self, call: &GuestCall<'_>) -> Result<Reply, GateError> {
        // Calls as the service account carry no user token to renew.
        let token = match call.identity {
            CallIdentity::User => Some(self.token(call.request_id)?),
            CallIdentity::Service => None,
        };
        self.inner.call(&GuestCall { token: token.as_deref(), ..call.clone() })
    }
}
