//! Scheduled jobs (DESIGN.md, "A scheduled job, end to end").
//!
//! An extension registers a job during a user's request; the user must
//! hold the consent permission `schedule:<extension>`. The definition goes
//! to `.warden-jobs`, the identity — who it runs as — to
//! `.warden-job-identities`, which only this module and the security code
//! read ([`jobs`]). When a job is due, [`dispatch`] takes its lease
//! (compare-and-set), resolves the user *now* (gone, disabled or no longer
//! consenting: the job is suspended and audited; changed roles apply),
//! mints a fresh OBO token scoped `job:<id>` and calls the component's
//! `job-runner` export in a fresh instance. Users manage their own jobs
//! over `/_warden/jobs` (`api::jobs`); holders of `restapi:admin/jobs` manage
//! all of them, including giving a job to another user.

pub mod dispatch;
pub mod extension_api;
pub mod jobs;
pub mod refresh;
pub mod schedule;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::{AuditLog, Category, Event};
use crate::error::{Denial, ErrorKind, Gate, HasKind};
use crate::extensions::check::ScheduledJob;
use crate::registry::Registry;
use crate::runtime::session::Sessions;
use crate::security::mapping::Principal;
use crate::security::privileges::Subject;
use crate::security::{IdentitySource, Security, SecurityState, service_accounts};

use self::jobs::{JobIdentity, JobStore};

pub use crate::security::consent_permission;

/// The cluster permission that manages every user's jobs.
pub const ADMIN_PERMISSION: &str = "restapi:admin/jobs";

/// Failed attempts in a row that suspend a job unless
/// `WARDEN_JOB_MAX_FAILURES` says otherwise.
pub const DEFAULT_MAX_FAILURES: u32 = 5;

/// Runs whose dispatch lateness health reports percentiles of.
pub const LATENESS_SAMPLES: usize = 1000;

/// How the dispatcher behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often due jobs are looked for.
    pub tick: Duration,
    /// A failed run is retried after `retry_delay × attempt`…
    pub retry_delay: Duration,
    /// …until this many attempts; then the job waits for its next slot.
    pub max_attempts: u32,
    /// How long a run's OBO token lives (capped at the OBO maximum); a
    /// longer run gets a new one, checked afresh, at half-life.
    pub token_lifetime: Duration,
    /// Runs kept in each job's history (`GET /_warden/jobs/{id}/runs`).
    pub history: usize,
    /// Failed attempts in a row that suspend a job (a success resets it).
    pub max_failures: u32,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick: Duration::from_millis(500),
            retry_delay: Duration::from_secs(5),
            max_attempts: 3,
            token_lifetime: Duration::from_secs(crate::security::obo::DEFAULT_LIFETIME),
            history: jobs::DEFAULT_HISTORY,
            max_failures: DEFAULT_MAX_FAILURES,
        }
    }
}

/// The scheduler: job store, dispatcher and the services a run needs.
#[derive(Debug)]
pub struct Scheduler {
    pub(crate) jobs: JobStore,
    security: Arc<Security>,
    /// Builds the runs' sessions: mints job tokens, carries the runs'
    /// cluster calls.
    sessions: Arc<Sessions>,
    audit: Arc<AuditLog>,
    registry: Arc<Registry>,
    config: SchedulerConfig,
    /// This node's name on the leases it takes.
    holder: String,
    /// Jobs this node is running now (never dispatched twice at once).
    running: Mutex<HashSet<String>>,
    /// Dispatcher ticks done since start (health: shows it is alive, and
    /// lets an observer wait for N looks at the due jobs).
    ticks: AtomicU64,
    /// How late this node started its last runs (ms after they were
    /// planned), the newest last; at most [`LATENESS_SAMPLES`].
    lateness: Mutex<VecDeque<u64>>,
    /// When this node started (ms): runs planned before it were missed
    /// while no node was up, and go by their job's catch-up policy.
    started_at: u64,
}

/// A job's owner as resolved now: the configuration, principal and roles.
#[derive(Debug)]
pub struct ResolvedOwner {
    pub state: Arc<SecurityState>,
    /// Where the owner's identity comes from (their stored job identity).
    pub source: IdentitySource,
    pub principal: Principal,
    pub subject: Subject,
}

impl Scheduler {
    pub fn new(
        jobs: JobStore,
        security: Arc<Security>,
        sessions: Arc<Sessions>,
        audit: Arc<AuditLog>,
        registry: Arc<Registry>,
        config: SchedulerConfig,
    ) -> Scheduler {
        let mut bytes = [0u8; 6];
        let _ = getrandom::fill(&mut bytes);
        let holder = format!("node-{}", hex::encode(bytes));
        Scheduler {
            jobs,
            security,
            sessions,
            audit,
            registry,
            config,
            holder,
            running: Mutex::new(HashSet::new()),
            ticks: AtomicU64::new(0),
            lateness: Mutex::new(VecDeque::with_capacity(LATENESS_SAMPLES)),
            started_at: crate::time::now_ms(),
        }
    }

    pub fn jobs(&self) -> &JobStore {
        &self.jobs
    }

    /// How many runs each job's history keeps.
    pub fn history_len(&self) -> usize {
        self.config.history
    }

    /// For `GET /_warden/health`: runs under way on this node, jobs due
    /// but not started (a number that keeps growing means runs fall
    /// behind), how late the oldest of those is now, and the dispatch
    /// lateness (start − planned start) of this node's last runs.
    pub fn status(&self) -> serde_json::Value {
        let running = self.running.lock().map(|r| r.clone()).unwrap_or_default();
        let now = crate::time::now_ms();
        let due = self.jobs.due_at(now);
        let waiting = due.as_ref().ok().map(|due| {
            let waiting: Vec<&(u64, String)> = due.iter().filter(|(_, id)| !running.contains(id)).collect();
            (waiting.len(), waiting.first().map(|(at, _)| now.saturating_sub(*at)))
        });
        let samples: Vec<u64> = self.lateness.lock().map(|l| l.iter().copied().collect()).unwrap_or_default();
        let lateness = Lateness::of(samples);
        serde_json::json!({
            "runs_in_progress": running.len(),
            "jobs_waiting": waiting.map(|(n, _)| n),
            "oldest_waiting_ms": waiting.and_then(|(_, oldest)| oldest),
            "lateness_ms": {
                "samples": lateness.samples,
                "p50": lateness.p50,
                "p99": lateness.p99,
                "max": lateness.max,
            },
            "tick_ms": crate::time::millis(self.config.tick),
            "ticks": self.ticks.load(Ordering::Relaxed),
        })
    }

    /// Notes how late a run started (for health's percentiles).
    fn note_lateness(&self, late_ms: u64) {
        if let Ok(mut lateness) = self.lateness.lock() {
            if lateness.len() == LATENESS_SAMPLES {
                lateness.pop_front();
            }
            lateness.push_back(late_ms);
        }
    }

    /// Resolves a job's owner now: the user must exist (or have come from
    /// an external authenticator), be enabled and still consent to the
    /// extension scheduling work. The error names what failed.
    ///
    /// The owner is resolved from where their identity came from, never by
    /// name alone: a JWT user named `admin` is not the internal `admin`.
    pub fn resolve_owner(&self, identity: &JobIdentity) -> Result<ResolvedOwner, OwnerError> {
        let state = self.security.state();
        let user = &identity.user;
        if service_accounts::is_service_account(user) {
            return Err(OwnerError::ServiceAccount(user.clone()));
        }
        let (source, principal) = match IdentitySource::parse(&identity.auth_source) {
            Some(IdentitySource::Internal) => match state.config.internal_users.get(user) {
                Some(record) if record.disabled => return Err(OwnerError::Disabled(user.clone())),
                Some(record) => (IdentitySource::Internal, crate::security::internal_principal(user, record)),
                None => return Err(OwnerError::Gone(user.clone())),
            },
            // Users of an external authenticator (JWT) are not in the
            // internal database: their roles are those they registered with.
            Some(IdentitySource::Jwt) => (
                IdentitySource::Jwt,
                Principal {
                    name: user.clone(),
                    backend_roles: identity.backend_roles.clone(),
                    direct_roles: Vec::new(),
                    attributes: [("user_name".to_owned(), user.clone())].into(),
                },
            ),
            // Registrations through tokens (`obo`, `api-token:…`) are
            // refused now; such jobs from before stay suspended.
            _ => {
                return Err(OwnerError::NotOwnCredentials {
                    user: user.clone(),
                    through: identity.auth_source.clone(),
                });
            }
        };
        if let Some(stale) = self.stale_owner(identity) {
            return Err(OwnerError::Stale(stale));
        }
        let consent = consent_permission(&identity.extension);
        let may_consent = |principal: &Principal| {
            let subject = state.subject(principal, None);
            match state.privileges.check_extension(&subject, &consent) {
                Ok(()) => Ok(subject),
                Err(_) => Err(OwnerError::NoConsent {
                    user: user.clone(),
                    extension: identity.extension.clone(),
                    consent: consent.clone(),
                }),
            }
        };
        // May consent (the operator's word), then did (the user's own).
        let subject = may_consent(&principal)?;
        let record = self
            .live_consent(source, user, &identity.extension)
            .map_err(|denial| OwnerError::ConsentNotLive(denial.reason))?;
        // An external user's roles are those seen when they last consented
        // (with a fresh login), not those of the registration.
        let (principal, subject) = match source {
            IdentitySource::Jwt => {
                let principal = Principal { backend_roles: record.backend_roles, ..principal };
                let subject = may_consent(&principal)?;
                (principal, subject)
            }
            _ => (principal, subject),
        };
        Ok(ResolvedOwner { state, source, principal, subject })
    }

    /// The jobs of `extension` that will run (enabled, not suspended), each
    /// with its owner resolved as a run resolves them now
    /// ([`Self::resolve_owner`]), for the missing-permission report. A job
    /// whose owner cannot be run for is left out: its next run suspends it
    /// (audited, and shown by `/_warden/jobs`).
    pub fn job_owners(&self, extension: &str) -> Result<Vec<ScheduledJob>, jobs::JobError> {
        Ok(self
            .jobs
            .list()?
            .into_iter()
            .filter(|(_, job, _)| {
                job.extension == extension
                    && job.enabled
                    && job.suspended.is_none()
                    && job.extension_removed.is_none()
            })
            .filter_map(|(id, job, identity)| {
                let owner = self.resolve_owner(&identity).ok()?;
                Some(ScheduledJob {
                    id,
                    name: job.name,
                    owner: identity.user,
                    state: owner.state,
                    subject: owner.subject,
                })
            })
            .collect())
    }

    /// Suspends, now, the jobs of `consent`'s user in its extension (its
    /// revocation: they would stop at their next run anyway, and a run
    /// under way is refused at its next cluster call). Audited per job;
    /// returns their ids.
    pub fn suspend_for_consent(&self, consent: &crate::security::consents::Consent) -> Vec<String> {
        let reason = consent
            .not_live(crate::time::now_ms())
            .unwrap_or_else(|| format!("consent `{}` was revoked", consent.id));
        self.change_consented_jobs(
            consent,
            |job| {
                if job.suspended.is_some() {
                    return false;
                }
                job.suspended = Some(reason.clone());
                job.consent_revoked = true;
                true
            },
            "suspended",
        )
    }

    /// Resumes the jobs of `consent`'s user in its extension that were
    /// suspended for want of consent (and only those): the user consented
    /// again. Audited per job; returns their ids.
    pub fn resume_after_consent(&self, consent: &crate::security::consents::Consent) -> Vec<String> {
        self.change_consented_jobs(
            consent,
            |job| {
                if !job.consent_revoked || job.extension_removed.is_some() {
                    return false;
                }
                job.suspended = None;
                job.consent_revoked = false;
                true
            },
            "resumed: consented again",
        )
    }

    fn change_consented_jobs(
        &self,
        consent: &crate::security::consents::Consent,
        mut edit: impl FnMut(&mut jobs::Job) -> bool,
        what: &str,
    ) -> Vec<String> {
        let owner = (consent.user.as_str(), consent.auth_source.as_str());
        let ids = match self.jobs.ids_of(&consent.extension, owner) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(consent = consent.id, "cannot list the jobs of a consent: {e}");
                return Vec::new();
            }
        };
        let now = crate::time::now_ms();
        let mut changed = Vec::new();
        for id in ids {
            let mut did = false;
            let updated = self.jobs.update(&id, |job| {
                did = edit(job);
                if did {
                    job.updated_at = now;
                }
                Ok(())
            });
            match updated {
                Ok(_) if did => {
                    let who = Some((consent.user.as_str(), consent.extension.as_str()));
                    let request = format!("consent-{}", consent.id);
                    self.audit(
                        Category::JobWrite,
                        &request,
                        &id,
                        who,
                        format!("{what} (consent `{}`)", consent.id),
                    );
                    changed.push(id);
                }
                Ok(_) => {}
                Err(e) => tracing::error!(job = id, "cannot change a job for its consent: {e}"),
            }
        }
        changed
    }

    /// The live consent of (`source`, `user`) to `extension`, or the
    /// consent gate's refusal naming why there is none.
    pub fn live_consent(
        &self,
        source: IdentitySource,
        user: &str,
        extension: &str,
    ) -> Result<crate::security::consents::Consent, Denial> {
        let consents = self
            .security
            .consents()
            .ok_or_else(|| Denial::new(Gate::Consent, "consents are not kept by this host"))?;
        match consents.live(source, user, extension, crate::time::now_ms()) {
            Ok(Ok(consent)) => Ok(consent),
            Ok(Err(why)) => Err(Denial::new(
                Gate::Consent,
                format!("{why}; the user grants it with POST /_warden/consents"),
            )),
            Err(e) => Err(Denial::new(Gate::Consent, format!("cannot read consents: {e}"))),
        }
    }

    /// Why the user a job was registered for is no longer the one of that
    /// name, if so: an internal user deleted since (a new user who takes
    /// the name is someone else), or an external user whose tokens an
    /// operator revoked since (no identity provider can be asked again, so
    /// revocation is how their standing work is stopped).
    pub fn stale_owner(&self, identity: &JobIdentity) -> Option<StaleOwner> {
        let user = &identity.user;
        // `updated_at` is when the job got this owner (registration or re-association).
        let since = identity.updated_at;
        match IdentitySource::parse(&identity.auth_source) {
            Some(IdentitySource::Internal) => self
                .security
                .user_deleted_at(user)
                .filter(|deleted| *deleted >= since)
                .map(|_| StaleOwner::Deleted(user.clone())),
            Some(IdentitySource::Jwt) => self
                .security
                .user_revoked_before(user)
                .filter(|revoked| revoked.saturating_mul(1000) >= since)
                .map(|_| StaleOwner::Revoked(user.clone())),
            _ => None,
        }
    }

    /// Records a job event in the audit log; `who` is (user, extension).
    fn audit(
        &self,
        category: Category,
        request_id: &str,
        job: &str,
        who: Option<(&str, &str)>,
        what: String,
    ) {
        if !self.audit.enabled(category) {
            return;
        }
        self.audit.record(Event {
            user: who.map(|(user, _)| user.to_owned()),
            extension: who.map(|(_, extension)| extension.to_owned()),
            job: Some(job.to_owned()),
            reason: Some(what),
            ..Event::new(category, request_id)
        });
    }
}

/// Dispatch lateness over some runs: nearest-rank percentiles (`None`
/// before any run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lateness {
    pub samples: usize,
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

impl Lateness {
    pub fn of(mut samples: Vec<u64>) -> Lateness {
        samples.sort_unstable();
        // Nearest rank: the smallest value with at least p% at or below it.
        let rank = |p: usize| {
            let n = samples.len();
            (n > 0).then(|| samples[(n * p).div_ceil(100).clamp(1, n) - 1])
        };
        Lateness { samples: samples.len(), p50: rank(50), p99: rank(99), max: samples.last().copied() }
    }
}

/// Why a job's owner cannot be run for now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    #[error("`{0}` is a service account; jobs run for users")]
    ServiceAccount(String),
    #[error("user `{0}` is disabled")]
    Disabled(String),
    #[error("user `{0}` no longer exists")]
    Gone(String),
    #[error(
        "job was registered through `{through}`, not with the user's own credentials; \
         `{user}` must register it again"
    )]
    NotOwnCredentials { user: String, through: String },
    #[error(transparent)]
    Stale(#[from] StaleOwner),
    #[error("user `{user}` does not consent to extension `{extension}` scheduling work (needs `{consent}`)")]
    NoConsent { user: String, extension: String, consent: String },
    /// The owner's consent record is missing, revoked or expired.
    #[error("{0}")]
    ConsentNotLive(String),
}

impl HasKind for OwnerError {
    fn kind(&self) -> ErrorKind {
        match self {
            OwnerError::Gone(_) => ErrorKind::NotFound,
            _ => ErrorKind::Denied,
        }
    }
}

/// Why the user a job was registered for is no longer the one of that name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaleOwner {
    #[error("the user `{0}` who owned the job was deleted; a later `{0}` is someone else")]
    Deleted(String),
    #[error("the tokens of external user `{0}` were revoked after the job was registered")]
    Revoked(String),
}

impl HasKind for StaleOwner {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_percentiles_are_nearest_rank() {
        assert_eq!(Lateness::of(vec![]), Lateness { samples: 0, p50: None, p99: None, max: None });
        assert_eq!(Lateness::of(vec![7]), Lateness { samples: 1, p50: Some(7), p99: Some(7), max: Some(7) });
        let hundred: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(
            Lateness::of(hundred),
            Lateness { samples: 100, p50: Some(50), p99: Some(99), max: Some(100) }
        );
        // One slow run in a thousand shows in max, not in p99.
        let mut mostly_fast = vec![2u64; 999];
        mostly_fast.push(5_000);
        assert_eq!(
            Lateness::of(mostly_fast),
            Lateness { samples: 1000, p50: Some(2), p99: Some(2), max: Some(5_000) }
        );
    }
}
