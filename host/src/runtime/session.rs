//! Invocation sessions: the one place that builds what an invocation's host
//! calls act with, and the one place that mints OBO tokens — for REST
//! requests ([`Sessions::for_request`]) and scheduled job runs
//! ([`Sessions::for_job`], [`Sessions::job_token`]) alike.
//!
//! A [`Session`] is the per-capability contexts of one invocation: the
//! request id, the `cluster` capability's [`ClusterCtx`] (the cluster
//! access and the invocation's token, which the guest never sees) and the
//! `scheduler` capability's [`JobsCtx`] (the scheduler and who jobs
//! registered now run as). Tokens come from security's [`TokenService`],
//! handed to [`Sessions`] directly; never through the cluster gateway.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::LoadedExtension;
use super::capabilities::cluster::ClusterCtx;
use super::capabilities::scheduler::JobsCtx;
use crate::capability::Capability;
use crate::cluster::gateway::ClusterAccess;
use crate::error::{Denial, ErrorKind, Gate, HasKind};
use crate::scheduler::extension_api::{JobAccess, JobOwner, NoJobOwner};
use crate::security::obo::{self, TokenError, TokenHolder, TokenService};
use crate::security::{AuthenticatedUser, IdentitySource};

/// What one invocation's host calls act with.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The request (or job run) id, in the audit log.
    pub request_id: String,
    /// The capabilities granted, read once when the session is built: the
    /// session's token and job access and every host call of the invocation
    /// see the same set, whatever a concurrent grant change does.
    pub grants: Arc<BTreeSet<Capability>>,
    pub cluster: ClusterCtx,
    pub jobs: JobsCtx,
}

/// Why no session could be built.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot mint the invocation's token: {0}")]
    RequestToken(TokenError),
    #[error("cannot mint the run's token: {0}")]
    JobToken(TokenError),
    /// A job token asked of a host that runs without a cluster.
    #[error("cannot mint the run's token: no cluster is configured")]
    NoCluster,
}

impl HasKind for SessionError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// The cluster a session's calls go to and the tokens they carry.
#[derive(Debug)]
struct ClusterService {
    access: Arc<dyn ClusterAccess>,
    tokens: Arc<TokenService>,
}

/// Builds sessions. Holds the cluster access and the token service (none
/// of either when the host runs without a cluster).
#[derive(Debug, Default)]
pub struct Sessions {
    cluster: Option<ClusterService>,
}

/// A job run, as the dispatcher resolved it now.
#[derive(Debug)]
pub struct JobRun<'a> {
    pub request_id: &'a str,
    /// The job's owner, resolved now (consent checked).
    pub owner: JobOwner,
    /// The scheduler, for jobs the run registers in turn.
    pub jobs: Arc<dyn JobAccess>,
    /// The run's cluster access (renewing its token) and its first token,
    /// when the extension is granted `cluster` and the host has one.
    pub cluster: Option<Arc<dyn ClusterAccess>>,
}

impl Sessions {
    /// Sessions whose cluster calls go to `access`, with tokens of `tokens`.
    pub fn new(access: Arc<dyn ClusterAccess>, tokens: Arc<TokenService>) -> Sessions {
        Sessions { cluster: Some(ClusterService { access, tokens }) }
    }

    /// Sessions of a host without a cluster (cluster calls: `unavailable`).
    pub fn without_cluster() -> Sessions {
        Sessions::default()
    }

    /// The cluster access, if the host has a cluster.
    pub fn cluster(&self) -> Option<Arc<dyn ClusterAccess>> {
        self.cluster.as_ref().map(|c| c.access.clone())
    }

    /// The session of one REST request: for extensions granted `cluster`, a
    /// fresh OBO token for this user, this extension and this request,
    /// living as long as the invocation may; for extensions granted
    /// `scheduler` (and a host with one, `jobs`), who jobs registered now
    /// would run as.
    pub fn for_request(
        &self,
        user: &AuthenticatedUser,
        extension: &LoadedExtension,
        request_id: &str,
        jobs: Option<Arc<dyn JobAccess>>,
    ) -> Result<Session, SessionError> {
        let grants = extension.grants();
        let mut session =
            Session { request_id: request_id.to_owned(), grants: grants.clone(), ..Session::default() };
        if let Some(access) = jobs.filter(|_| grants.contains(&Capability::Scheduler)) {
            session.jobs = JobsCtx::Available { access, owner: job_owner(extension.id(), user) };
        }
        let Some(cluster) = &self.cluster else { return Ok(session) };
        if !grants.contains(&Capability::Cluster) {
            return Ok(session);
        }
        let lifetime = (extension.limits.timeout.as_secs() + 5).min(obo::MAX_LIFETIME);
        let roles = user.role_names();
        let holder = user.token_holder(&roles);
        let scope =
            obo::Scope::request(request_id.to_owned(), user.api_token.as_ref().map(|(id, _)| id.as_str()));
        let token = cluster
            .tokens
            .mint(&holder, extension.id(), &scope, lifetime)
            .map_err(SessionError::RequestToken)?;
        session.cluster = ClusterCtx { token: Some(token), access: Some(cluster.access.clone()) };
        Ok(session)
    }

    /// The session of one job run: the scheduler for the extensions granted
    /// `scheduler` (always, since only they run jobs), the run's cluster
    /// access and token for those granted `cluster`.
    pub fn for_job(&self, extension: &LoadedExtension, run: JobRun<'_>) -> Session {
        let grants = extension.grants();
        let mut session =
            Session { request_id: run.request_id.to_owned(), grants: grants.clone(), ..Session::default() };
        if grants.contains(&Capability::Scheduler) {
            session.jobs = JobsCtx::Available { access: run.jobs, owner: Ok(run.owner) };
        }
        // No token here: the run's access (`RenewingClusterAccess`) puts its
        // own, renewed while the run holds its lease, on every user call.
        if let Some(access) = run.cluster.filter(|_| grants.contains(&Capability::Cluster)) {
            session.cluster = ClusterCtx { token: None, access: Some(access) };
        }
        session
    }

    /// A job run's token (`scope = job:<id>`) for its owner as resolved now:
    /// at dispatch, and again at each renewal.
    pub fn job_token(
        &self,
        holder: &TokenHolder<'_>,
        extension: &str,
        job_id: &str,
        lifetime: u64,
    ) -> Result<String, SessionError> {
        let cluster = self.cluster.as_ref().ok_or(SessionError::NoCluster)?;
        cluster
            .tokens
            .mint(holder, extension, &obo::Scope::Job(job_id.to_owned()), lifetime)
            .map_err(SessionError::JobToken)
    }
}

/// Who jobs registered during this request would run as: the caller, with
/// their consent to this extension (`schedule:<id>`) decided now; or why
/// nobody can act on jobs here.
///
/// Jobs are managed only with one's own credentials: a job outlives the
/// request and runs with its owner's roles resolved at every run, so an
/// API token (limited, revocable) or an OBO token (minutes long) must not
/// turn into standing work with the user's full roles — nor list or remove
/// the user's jobs behind the REST API's back.
pub fn job_owner(extension: &str, user: &AuthenticatedUser) -> Result<JobOwner, NoJobOwner> {
    if user.source == IdentitySource::Anonymous {
        return Err(NoJobOwner::Anonymous);
    }
    if !user.with_own_credentials() {
        let via = if user.via_obo { "an on-behalf-of token" } else { "an API token" };
        return Err(NoJobOwner::ThroughToken { via, user: user.principal.name.clone() });
    }
    if crate::security::service_accounts::is_service_account(&user.principal.name) {
        return Err(NoJobOwner::ServiceAccount(user.principal.name.clone()));
    }
    let consent = user.check_extension(&crate::security::consent_permission(extension)).map_err(|denied| {
        Denial::new(
            Gate::Consent,
            format!(
                "user `{}` has not consented to extension `{extension}` scheduling work: {denied}",
                user.principal.name
            ),
        )
    });
    Ok(JobOwner {
        user: user.principal.name.clone(),
        auth_source: user.source,
        backend_roles: user.principal.backend_roles.clone(),
        consent,
    })
}
