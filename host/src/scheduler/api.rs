//! `/_warden/jobs`: users list and manage their own jobs; holders of
//! `restapi:admin/jobs` manage everyone's and may give a job to another
//! user. A job someone may not see answers 404, as if it did not exist.
//! Every change is audited (JOB_WRITE). Callers holding an on-behalf-of
//! token are refused: job identities belong to security.
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/_warden/jobs[?extension=&user=]` | list |
//! | GET / DELETE | `/_warden/jobs/{id}` | show / remove |
//! | POST | `/_warden/jobs/{id}/_enable`, `_disable`, `_run` | resume (owner re-checked), pause, run now |
//! | PUT | `/_warden/jobs/{id}/_owner` `{"user": ..}` | re-associate (admins) |

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::jobs::{Job, JobError, JobIdentity};
use super::{ADMIN_PERMISSION, Scheduler, now_ms};
use crate::audit::{Category, Event, rfc3339};
use crate::security::{AuthenticatedUser, IdentitySource};
use crate::server::{AppState, RequestId, error};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/_warden/jobs", get(list))
        .route("/_warden/jobs/{id}", get(show).delete(remove))
        .route("/_warden/jobs/{id}/_enable", post(enable))
        .route("/_warden/jobs/{id}/_disable", post(disable))
        .route("/_warden/jobs/{id}/_run", post(run_now))
        .route("/_warden/jobs/{id}/_owner", put(set_owner))
}

#[derive(Debug, Deserialize)]
struct ListFilter {
    extension: Option<String>,
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOwner {
    user: String,
}

/// A refusal, already in OpenSearch's error shape.
type Refusal = Box<Response>;

fn refuse(status: StatusCode, kind: &str, reason: &str) -> Refusal {
    Box::new(error(status, kind, reason))
}

/// The scheduler, for a caller allowed to use this API at all.
fn scheduler<'a>(state: &'a AppState, user: &AuthenticatedUser) -> Result<&'a Arc<Scheduler>, Refusal> {
    if user.via_obo {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "security_exception",
            "an on-behalf-of token cannot manage jobs",
        ));
    }
    // An API token acts only within its own permissions: one that was not
    // granted the jobs permission does not manage even its creator's jobs.
    if user.api_token.is_some() && !is_admin(user) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "security_exception",
            &format!("an API token manages jobs only when it is granted `{ADMIN_PERMISSION}`"),
        ));
    }
    state
        .scheduler
        .as_ref()
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "not_found", "this host runs no scheduler"))
}

/// Starting standing work — resuming a job, giving it to someone whose
/// roles it will then run with — is consent, given only with one's own
/// credentials, never through a token.
fn own_credentials(user: &AuthenticatedUser, what: &str) -> Result<(), Refusal> {
    if user.with_own_credentials() {
        return Ok(());
    }
    Err(refuse(
        StatusCode::FORBIDDEN,
        "security_exception",
        &format!("a token cannot {what}: sign in as the user"),
    ))
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
fn visible(scheduler: &Scheduler, user: &AuthenticatedUser, id: &str) -> Result<(Job, JobIdentity), Refusal> {
    let not_found =
        || refuse(StatusCode::NOT_FOUND, "resource_not_found_exception", &format!("no job `{id}`"));
    let identity = scheduler.jobs.identity(id).map_err(store_error)?.ok_or_else(not_found)?.0;
    if !owns(scheduler, user, &identity) && !is_admin(user) {
        return Err(not_found());
    }
    let job = scheduler.jobs.get(id).map_err(store_error)?.ok_or_else(not_found)?.0;
    Ok((job, identity))
}

fn store_error(e: JobError) -> Refusal {
    let status = match e {
        JobError::NotFound(_) => StatusCode::NOT_FOUND,
        JobError::Invalid(_) | JobError::Schedule(_) | JobError::Limit(_) => StatusCode::BAD_REQUEST,
        JobError::Contended(_) => StatusCode::CONFLICT,
        JobError::Store(_) | JobError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    refuse(status, "job_exception", &e.to_string())
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
        "next_run": job.next_run,
        "next_run_at": job.next_run.map(rfc3339),
        "attempt": job.attempt,
        "last_run": job.last_run,
        "runs": job.runs,
        "failures": job.failures,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    })
}

fn audit_change(
    state: &AppState,
    user: &AuthenticatedUser,
    request: &RequestId,
    id: &str,
    identity: &JobIdentity,
    what: String,
) {
    state.audit.record(Event {
        user: Some(user.principal.name.clone()),
        extension: Some(identity.extension.clone()),
        job: Some(id.to_owned()),
        method: Some(request.method.clone()),
        path: Some(request.path.clone()),
        reason: Some(what),
        ..Event::new(Category::JobWrite, &request.id).remote(request.remote)
    });
}

fn respond(result: Result<Response, Refusal>) -> Response {
    result.unwrap_or_else(|refusal| *refusal)
}

async fn list(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Query(filter): Query<ListFilter>,
) -> Response {
    respond((|| {
        let scheduler = scheduler(&state, &user)?;
        let admin = is_admin(&user);
        let jobs: Vec<Value> = scheduler
            .jobs
            .list()
            .map_err(store_error)?
            .iter()
            .filter(|(_, _, who)| admin || owns(scheduler, &user, who))
            .filter(|(_, job, _)| filter.extension.as_ref().is_none_or(|e| *e == job.extension))
            .filter(|(_, _, who)| filter.user.as_ref().is_none_or(|u| *u == who.user))
            .map(|(id, job, who)| view(id, job, who))
            .collect();
        Ok(axum::Json(json!({ "total": jobs.len(), "jobs": jobs })).into_response())
    })())
}

async fn show(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        let scheduler = scheduler(&state, &user)?;
        let (job, identity) = visible(scheduler, &user, &id)?;
        Ok(axum::Json(view(&id, &job, &identity)).into_response())
    })())
}

async fn remove(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        let scheduler = scheduler(&state, &user)?;
        let (job, identity) = visible(scheduler, &user, &id)?;
        scheduler.jobs.remove(&id).map_err(store_error)?;
        audit_change(&state, &user, &request, &id, &identity, format!("removed `{}`", job.name));
        Ok(axum::Json(json!({ "result": "deleted", "id": id })).into_response())
    })())
}

/// Applies `edit` to a job the caller may see (found by [`visible`]),
/// audits `what`, answers with the job.
fn change(
    state: &AppState,
    user: &AuthenticatedUser,
    request: &RequestId,
    (scheduler, id, identity): (&Scheduler, &str, &JobIdentity),
    what: &str,
    edit: impl FnMut(&mut Job) -> Result<(), JobError>,
) -> Result<Response, Refusal> {
    let job = scheduler.jobs.update(id, edit).map_err(store_error)?;
    audit_change(state, user, request, id, identity, format!("{what} `{}`", job.name));
    Ok(axum::Json(view(id, &job, identity)).into_response())
}

async fn enable(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        let scheduler = scheduler(&state, &user)?;
        own_credentials(&user, "resume a job")?;
        let (_, identity) = visible(scheduler, &user, &id)?;
        // A suspended job resumes only if its owner can be run for again.
        if let Err(reason) = scheduler.resolve_owner(&identity) {
            return Err(refuse(
                StatusCode::CONFLICT,
                "job_exception",
                &format!("cannot enable job `{id}`: {reason}"),
            ));
        }
        let now = now_ms();
        change(&state, &user, &request, (scheduler, &id, &identity), "enabled", |job| {
            job.enabled = true;
            job.suspended = None;
            if job.next_run.is_none() && !matches!(job.schedule, super::schedule::Schedule::Once(_)) {
                job.next_run = job.schedule.first_run(now);
                job.due = job.next_run;
            }
            job.updated_at = now;
            Ok(())
        })
    })())
}

async fn disable(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        let scheduler = scheduler(&state, &user)?;
        let (_, identity) = visible(scheduler, &user, &id)?;
        let now = now_ms();
        change(&state, &user, &request, (scheduler, &id, &identity), "disabled", |job| {
            job.enabled = false;
            job.updated_at = now;
            Ok(())
        })
    })())
}

async fn run_now(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        let scheduler = scheduler(&state, &user)?;
        let (_, identity) = visible(scheduler, &user, &id)?;
        let now = now_ms();
        change(&state, &user, &request, (scheduler, &id, &identity), "asked to run now", |job| {
            if !job.enabled || job.suspended.is_some() {
                return Err(JobError::Invalid(format!(
                    "job `{id}` is disabled or suspended; enable it first"
                )));
            }
            job.next_run = Some(now);
            job.due = Some(now);
            job.attempt = 1;
            job.updated_at = now;
            Ok(())
        })
    })())
}

async fn set_owner(
    State(state): State<Arc<AppState>>,
    Extension(user): Extension<AuthenticatedUser>,
    Extension(request): Extension<RequestId>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    respond((|| {
        let scheduler = scheduler(&state, &user)?;
        own_credentials(&user, "give a job to another user")?;
        if let Err(denied) = user.check_cluster(ADMIN_PERMISSION) {
            state.audit.record(Event {
                user: Some(user.principal.name.clone()),
                action: Some(ADMIN_PERMISSION.into()),
                job: Some(id.clone()),
                reason: Some(denied.to_string()),
                ..Event::new(Category::MissingPrivileges, &request.id).remote(request.remote)
            });
            return Err(refuse(StatusCode::FORBIDDEN, "security_exception", &denied.to_string()));
        }
        let new: NewOwner = serde_json::from_slice(&body).map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                "parse_exception",
                &format!("body must be {{\"user\": \"<name>\"}}: {e}"),
            )
        })?;
        let (_, old) = visible(scheduler, &user, &id)?;
        // The new owner must be someone the job can run for.
        let candidate = JobIdentity {
            user: new.user.clone(),
            auth_source: "internal".into(),
            backend_roles: Vec::new(),
            ..old.clone()
        };
        if !state.security.state().config.internal_users.contains_key(&new.user) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "job_exception",
                &format!("no internal user `{}`", new.user),
            ));
        }
        if let Err(reason) = scheduler.resolve_owner(&candidate) {
            return Err(refuse(StatusCode::BAD_REQUEST, "job_exception", &reason.to_string()));
        }
        let now = now_ms();
        let (job, identity) =
            scheduler.jobs.set_owner(&id, &new.user, "internal", now).map_err(store_error)?;
        audit_change(
            &state,
            &user,
            &request,
            &id,
            &identity,
            format!("owner of `{}` changed from `{}` to `{}`", job.name, old.user, new.user),
        );
        Ok(axum::Json(view(&id, &job, &identity)).into_response())
    })())
}
