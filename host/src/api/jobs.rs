//! `/_warden/jobs`: users list and manage their own jobs; holders of
//! `restapi:admin/jobs` manage everyone's and may give a job to another
//! user. A job someone may not see answers 404, as if it did not exist.
//! Every change is audited (JOB_WRITE). Callers holding an on-behalf-of
//! token are refused: job identities belong to security. Errors are
//! OpenSearch-shaped ([`OpenSearchError`]).
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/_warden/jobs[?extension=&user=]` | list |
//! | GET / DELETE | `/_warden/jobs/{id}` | show / remove |
//! | POST | `/_warden/jobs/{id}/_enable`, `_disable`, `_run` | resume (owner re-checked), pause, run now |
//! | PUT | `/_warden/jobs/{id}/_owner` `{"user": ..}` | re-associate (admins) |
//! | GET | `/_warden/jobs/{id}/runs` | its last runs, newest first (owner or admin, as `GET …/{id}`) |
//!
//! A job whose extension was removed (`extension_removed_at`) is listed and
//! deleted, never resumed nor re-associated: the refusal says so.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::OpenSearchError;
use super::json::{Expected, JsonBody};
use super::{AppState, Caller};
use crate::audit::{Category, rfc3339};
use crate::scheduler::jobs::{Job, JobError, JobIdentity};
use crate::scheduler::{ADMIN_PERMISSION, Scheduler};
use crate::security::{AuthenticatedUser, IdentitySource};
use crate::time::now_ms;

#[derive(Debug, Deserialize)]
pub struct ListFilter {
    extension: Option<String>,
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOwner {
    user: String,
}

/// The scheduler, for a caller allowed to use this API at all.
fn scheduler<'a>(state: &'a AppState, caller: &Caller) -> Result<&'a Arc<Scheduler>, OpenSearchError> {
    caller.forbid_obo("manage jobs")?;
    // An API token acts only within its own permissions: one that was not
    // granted the jobs permission does not manage even its creator's jobs.
    if caller.user.api_token.is_some() && !is_admin(&caller.user) {
        return Err(OpenSearchError::forbidden(format!(
            "an API token manages jobs only when it is granted `{ADMIN_PERMISSION}`"
        )));
    }
    state.scheduler.as_ref().ok_or_else(|| {
        OpenSearchError::new(StatusCode::NOT_FOUND, "not_found", "this host runs no scheduler")
    })
}

/// Starting standing work — resuming a job, giving it to someone whose
/// roles it will then run with — is consent, given only with one's own
/// credentials, never through a token.
fn own_credentials(user: &AuthenticatedUser, what: &str) -> Result<(), OpenSearchError> {
    if user.with_own_credentials() {
        return Ok(());
    }
    Err(OpenSearchError::forbidden(format!("a token cannot {what}: sign in as the user")))
}

fn is_admin(user: &AuthenticatedUser) -> bool {
    user.check_cluster(ADMIN_PERMISSION).is_ok()
}

/// Whether the caller is the job's owner: the same name from the same
/// identity source (a JWT `admin` does not own the internal admin's jobs),
/// and not a later user who took a deleted owner's name.
fn owns(scheduler: &Scheduler, user: &AuthenticatedUser, identity: &JobIdentity) -> bool {
    IdentitySource::parse(&identity.auth_source).is_some_and(|source| user.is(&identity.user, source))
        && scheduler.stale_owner(identity).is_none()
}

/// The job and its identity, if the caller owns it or is an admin.
fn visible(
    scheduler: &Scheduler,
    user: &AuthenticatedUser,
    id: &str,
) -> Result<(Job, JobIdentity), OpenSearchError> {
    let not_found = || {
        OpenSearchError::new(StatusCode::NOT_FOUND, "resource_not_found_exception", format!("no job `{id}`"))
    };
    let identity = scheduler.jobs.identity(id)?.ok_or_else(not_found)?.0;
    if !owns(scheduler, user, &identity) && !is_admin(user) {
        return Err(not_found());
    }
    let job = scheduler.jobs.get(id)?.ok_or_else(not_found)?.0;
    Ok((job, identity))
}

fn view(id: &str, job: &Job, identity: &JobIdentity) -> Value {
    json!({
        "id": id,
        "extension": job.extension,
        "name": job.name,
        "user": identity.user,
        "auth_source": identity.auth_source,
        "schedule": job.schedule,
        "params": job.params,
        "enabled": job.enabled,
        "suspended": job.suspended,
        "extension_removed_at": job.extension_removed.as_ref().map(|removed| rfc3339(removed.at)),
        "next_run": job.next_run,
        "next_run_at": job.next_run.map(rfc3339),
        "attempt": job.attempt,
        "last_run": job.last_run,
        "runs": job.runs,
        "failures": job.failures,
        "consecutive_failures": job.consecutive_failures,
        "jitter": job.jitter,
        "catch_up": job.catch_up,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    })
}

/// Records a JOB_WRITE: who changed which job, and what.
fn audit_change(caller: &Caller, id: &str, identity: &JobIdentity, what: String) {
    caller.record(caller.event(Category::JobWrite).extension(&identity.extension).job(id).reason(what));
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(filter): Query<ListFilter>,
) -> Result<Json<Value>, OpenSearchError> {
    let scheduler = scheduler(&state, &caller)?;
    let user = &caller.user;
    let admin = is_admin(user);
    let jobs: Vec<Value> = scheduler
        .jobs
        .list()?
        .iter()
        .filter(|(_, _, who)| admin || owns(scheduler, user, who))
        .filter(|(_, job, _)| filter.extension.as_ref().is_none_or(|e| *e == job.extension))
        .filter(|(_, _, who)| filter.user.as_ref().is_none_or(|u| *u == who.user))
        .map(|(id, job, who)| view(id, job, who))
        .collect();
    Ok(Json(json!({ "total": jobs.len(), "jobs": jobs })))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let scheduler = scheduler(&state, &caller)?;
    let (job, identity) = visible(scheduler, &caller.user, &id)?;
    Ok(Json(view(&id, &job, &identity)))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let scheduler = scheduler(&state, &caller)?;
    let (job, identity) = visible(scheduler, &caller.user, &id)?;
    scheduler.jobs.remove(&id)?;
    audit_change(&caller, &id, &identity, format!("removed `{}`", job.name));
    Ok(Json(json!({ "result": "deleted", "id": id })))
}

/// Applies `edit` to a job the caller may see (found by [`visible`]),
/// audits `what`, answers with the job.
fn change(
    caller: &Caller,
    (scheduler, id, identity): (&Scheduler, &str, &JobIdentity),
    what: &str,
    edit: impl FnMut(&mut Job) -> Result<(), JobError>,
) -> Result<Json<Value>, OpenSearchError> {
    let job = scheduler.jobs.update(id, edit)?;
    audit_change(caller, id, identity, format!("{what} `{}`", job.name));
    Ok(Json(view(id, &job, identity)))
}

pub async fn enable(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let scheduler = scheduler(&state, &caller)?;
    own_credentials(&caller.user, "resume a job")?;
    let (job, identity) = visible(scheduler, &caller.user, &id)?;
    // A job whose extension was removed never resumes (checked again in
    // the compare-and-set below, should a removal come in between).
    job.check_resumable(&id)?;
    // A suspended job resumes only if its owner can be run for again.
    if let Err(reason) = scheduler.resolve_owner(&identity) {
        return Err(OpenSearchError::new(
            StatusCode::CONFLICT,
            "job_exception",
            format!("cannot enable job `{id}`: {reason}"),
        ));
    }
    let now = now_ms();
    change(&caller, (scheduler, &id, &identity), "enabled", |job| {
        job.check_resumable(&id)?;
        job.enabled = true;
        job.suspended = None;
        job.consent_revoked = false;
        if job.next_run.is_none() && !matches!(job.schedule, crate::scheduler::schedule::Schedule::Once(_)) {
            job.next_run = job.schedule.first_run(now);
            job.due = job.next_run;
        }
        job.updated_at = now;
        Ok(())
    })
}

pub async fn disable(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let scheduler = scheduler(&state, &caller)?;
    let (_, identity) = visible(scheduler, &caller.user, &id)?;
    let now = now_ms();
    change(&caller, (scheduler, &id, &identity), "disabled", |job| {
        job.enabled = false;
        job.updated_at = now;
        Ok(())
    })
}

pub async fn run_now(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let scheduler = scheduler(&state, &caller)?;
    let (_, identity) = visible(scheduler, &caller.user, &id)?;
    let now = now_ms();
    change(&caller, (scheduler, &id, &identity), "asked to run now", |job| {
        if !job.enabled || job.suspended.is_some() {
            return Err(JobError::Invalid(format!("job `{id}` is disabled or suspended; enable it first")));
        }
        job.next_run = Some(now);
        job.due = Some(now);
        job.attempt = 1;
        job.updated_at = now;
        Ok(())
    })
}

pub async fn set_owner(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, OpenSearchError> {
    let scheduler = scheduler(&state, &caller)?;
    own_credentials(&caller.user, "give a job to another user")?;
    if let Err(denied) = caller.require(ADMIN_PERMISSION) {
        caller.record(
            caller
                .user_event(Category::MissingPrivileges)
                .action(ADMIN_PERMISSION)
                .job(&id)
                .reason(denied.reason.clone()),
        );
        return Err(denied.into());
    }
    let new: NewOwner = body.parse(Expected::Shape("{\"user\": \"<name>\"}"))?;
    let (job, old) = visible(scheduler, &caller.user, &id)?;
    // Nobody is given a job whose extension was removed (checked again
    // in the store's compare-and-set).
    job.check_resumable(&id)?;
    // The new owner must be someone the job can run for.
    let candidate = JobIdentity {
        user: new.user.clone(),
        auth_source: "internal".into(),
        backend_roles: Vec::new(),
        ..old.clone()
    };
    if !state.security.state().config.internal_users.contains_key(&new.user) {
        return Err(OpenSearchError::new(
            StatusCode::BAD_REQUEST,
            "job_exception",
            format!("no internal user `{}`", new.user),
        ));
    }
    if let Err(reason) = scheduler.resolve_owner(&candidate) {
        return Err(OpenSearchError::new(StatusCode::BAD_REQUEST, "job_exception", reason.to_string()));
    }
    let now = now_ms();
    let (job, identity) = scheduler.jobs.set_owner(&id, &new.user, "internal", now)?;
    audit_change(
        &caller,
        &id,
        &identity,
        format!("owner of `{}` changed from `{}` to `{}`", job.name, old.user, new.user),
    );
    Ok(Json(view(&id, &job, &identity)))
}

/// `GET /_warden/jobs/{id}/runs`: the job's run history, newest first;
/// visible to whom the job is ([`visible`]: its owner or an admin; 404
/// for anyone else, as if it did not exist).
pub async fn runs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenSearchError> {
    let scheduler = scheduler(&state, &caller)?;
    let (job, _) = visible(scheduler, &caller.user, &id)?;
    let runs: Vec<Value> = scheduler
        .jobs
        .runs(&id, scheduler.history_len())?
        .iter()
        .map(|run| {
            json!({
                "seq": run.seq,
                "scheduled_at": run.scheduled_at,
                "scheduled_at_iso": rfc3339(run.scheduled_at),
                "planned_at": run.planned_at,
                "started_at": run.started_at,
                "started_at_iso": rfc3339(run.started_at),
                "lateness_ms": run.lateness_ms(),
                "duration_ms": run.duration_ms,
                "attempt": run.attempt,
                "outcome": run.outcome,
                "message": run.message,
            })
        })
        .collect();
    Ok(Json(json!({
        "id": id,
        "name": job.name,
        "kept": scheduler.history_len(),
        "total": runs.len(),
        "runs": runs,
    })))
}
