//! Registers jobs that run later for the current user. Capability: `scheduler`.
//!
//! The host keeps who a job runs as; this extension sees only job ids,
//! schedules and its own parameters. The user must consent — hold
//! `schedule:<extension-id>` — or `register` is `denied`. Registering a
//! name again updates that job. Runs arrive at [`crate::Extension::run_job`]
//! with the same user's authority, as it stands at each run.
//!
//! ```ignore
//! use warden_guest::scheduler::{self, Schedule};
//! let id = scheduler::register("nightly", Schedule::Cron("0 3 * * *".into()), &serde_json::json!({"index": "logs-*"}))?;
//! // 03:00 in Berlin, spread over up to a tenth of the day, one catch-up run after downtime:
//! let options = scheduler::JobOptions { jitter: 0.1, catch_up: scheduler::CatchUp::Once };
//! let cron = Schedule::Cron("CRON_TZ=Europe/Berlin 0 3 * * *".into());
//! let id = scheduler::register_with("nightly", cron, &serde_json::json!({}), options)?;
//! ```

use crate::Error;
use crate::bindings::warden::extension::scheduler as wit;

pub use wit::{CatchUp, JobInfo, JobOptions, Schedule};

/// Registers a job named `name` (unique per extension and user) with JSON
/// parameters; returns the job id.
pub fn register<T: serde::Serialize + ?Sized>(
    name: &str,
    schedule: Schedule,
    params: &T,
) -> Result<String, Error> {
    let params = serde_json::to_string(params)
        .map_err(|e| Error::Invalid(format!("job parameters are not JSON: {e}")))?;
    wit::register(&wit::JobSpec { name: name.to_owned(), schedule, params })
}

/// [`register`] with options: jitter (a fraction of the interval, 0 to
/// 0.95) and what becomes of runs missed while no node was up.
pub fn register_with<T: serde::Serialize + ?Sized>(
    name: &str,
    schedule: Schedule,
    params: &T,
    options: JobOptions,
) -> Result<String, Error> {
    let params = serde_json::to_string(params)
        .map_err(|e| Error::Invalid(format!("job parameters are not JSON: {e}")))?;
    wit::register_with(&wit::JobSpec { name: name.to_owned(), schedule, params }, options)
}

/// Removes a job.
pub fn unregister(id: &str) -> Result<(), Error> {
    wit::unregister(id)
}

/// One job, by id.
pub fn get(id: &str) -> Result<JobInfo, Error> {
    wit::get(id)
}

/// This extension's jobs that the current user may see.
pub fn list() -> Result<Vec<JobInfo>, Error> {
    wit::list_jobs()
}
