//! Reporter: periodic summaries of an index, written to `reports`.
//!
//! A user asks for a summary; Warden runs it later as that user — with
//! their roles as they are at each run — and the extension never learns
//! more than the job's id, schedule and parameters.
//!
//! - `PUT /_extensions/reporter/summaries/{name}` with
//!   `{"source": "logs-*", "field": "level", "window": "1d", "every_secs": 3600}`
//!   (or `"cron": "0 6 * * *"` instead of `every_secs`) registers the job
//!   `{name}` (again: updates it).
//! - `GET /_extensions/reporter/summaries` lists the caller's summaries.
//! - `GET /_extensions/reporter/summaries/{name}/reports` the latest reports.
//! - `DELETE /_extensions/reporter/summaries/{name}` stops it.
//!
//! Each run counts the `source` documents of the last `window` (by
//! `@timestamp`) per value of `field` and indexes
//! `{"job_id", "summary", "source", "from", "scheduled_at", "total", "counts"}`
//! into `reports`.

use serde_json::{Value, json};
use warden_guest::cluster::Client;
use warden_guest::http::{Request, Response};
use warden_guest::job::{JobContext, Outcome};
use warden_guest::scheduler::{self, JobInfo, Schedule};
use warden_guest::{Error, Extension, export_extension, log};

const REPORTS: &str = "reports";

struct Reporter;

impl Extension for Reporter {
    fn handle(request: Request) -> Response {
        let result = match (request.method.as_str(), request.path_segments().as_slice()) {
            ("PUT", ["summaries", name]) => schedule_summary(name, &request),
            ("GET", ["summaries"]) => list_summaries(),
            ("GET", ["summaries", name, "reports"]) => latest_reports(name),
            ("DELETE", ["summaries", name]) => remove_summary(name),
            _ => return Response::not_found(),
        };
        result.unwrap_or_else(|e| {
            let status = match e {
                Error::Denied(_) => 403,
                Error::NotFound(_) => 404,
                Error::Invalid(_) => 400,
                Error::Conflict(_) => 409,
                Error::Unavailable(_) => 503,
                Error::Internal(_) => 500,
            };
            Response::json(status, &json!({ "error": e.kind(), "reason": e.message() }))
        })
    }

    fn run_job(context: JobContext) -> Outcome {
        match summarise(&context) {
            Ok(message) => Outcome::Success(message),
            Err(e) => Outcome::Failure(format!("{}: {}", e.kind(), e.message())),
        }
    }
}

fn schedule_summary(name: &str, request: &Request) -> Result<Response, Error> {
    let spec: Value = request.json().map_err(|e| Error::Invalid(format!("body must be JSON: {e}")))?;
    let source =
        spec["source"].as_str().ok_or_else(|| Error::Invalid("`source` (an index) is required".into()))?;
    let field = spec["field"].as_str().unwrap_or("level");
    let window = spec["window"].as_str().unwrap_or("1d");
    let schedule = match (spec["every_secs"].as_u64(), spec["cron"].as_str()) {
        (Some(secs), None) => Schedule::Interval(secs),
        (None, Some(cron)) => Schedule::Cron(cron.to_owned()),
        _ => return Err(Error::Invalid("give one of `every_secs` or `cron`".into())),
    };
    let params = json!({ "source": source, "field": field, "window": window });
    let id = scheduler::register(name, schedule, &params)?;
    log::info(&format!("summary {name} of {source} scheduled as job {id}"));
    Ok(Response::json(200, &json!({ "summary": name, "job_id": id })))
}

fn describe(job: &JobInfo) -> Value {
    let schedule = match &job.schedule {
        Schedule::Once(at) => json!({ "once": at }),
        Schedule::Interval(secs) => json!({ "every_secs": secs }),
        Schedule::Cron(expr) => json!({ "cron": expr }),
    };
    json!({
        "summary": job.name,
        "job_id": job.id,
        "schedule": schedule,
        "params": serde_json::from_str::<Value>(&job.params).unwrap_or(Value::Null),
        "enabled": job.enabled,
        "next_run": job.next_run,
        "last_run": job.last_run,
    })
}

fn list_summaries() -> Result<Response, Error> {
    let jobs: Vec<Value> = scheduler::list()?.iter().map(describe).collect();
    Ok(Response::json(200, &json!({ "summaries": jobs })))
}

fn find(name: &str) -> Result<JobInfo, Error> {
    scheduler::list()?
        .into_iter()
        .find(|job| job.name == name)
        .ok_or_else(|| Error::NotFound(format!("no summary `{name}`")))
}

fn remove_summary(name: &str) -> Result<Response, Error> {
    let job = find(name)?;
    scheduler::unregister(&job.id)?;
    Ok(Response::json(200, &json!({ "removed": name })))
}

fn latest_reports(name: &str) -> Result<Response, Error> {
    let job = find(name)?;
    let query = json!({
        "query": { "term": { "job_id": job.id } },
        "sort": [{ "scheduled_at": "desc" }],
        "size": 10,
    });
    let found = Client::as_user().search(REPORTS, &query)?;
    if found.status == 404 {
        return Ok(Response::json(200, &json!({ "summary": name, "reports": [] })));
    }
    let body: Value = found.json().map_err(|e| Error::Internal(format!("search answer: {e}")))?;
    if !found.is_success() {
        return Err(Error::Internal(format!("search of {REPORTS} answered {}: {body}", found.status)));
    }
    let reports: Vec<Value> =
        body["hits"]["hits"].as_array().into_iter().flatten().map(|hit| hit["_source"].clone()).collect();
    Ok(Response::json(200, &json!({ "summary": name, "reports": reports })))
}

/// One run: count the window's documents per value, index the report.
fn summarise(context: &JobContext) -> Result<String, Error> {
    let params: Value =
        context.params_json().map_err(|e| Error::Invalid(format!("job params are not JSON: {e}")))?;
    let (Some(source), Some(field), Some(window)) =
        (params["source"].as_str(), params["field"].as_str(), params["window"].as_str())
    else {
        return Err(Error::Invalid(format!("job params lack source, field or window: {params}")));
    };
    let from = format!("now-{window}");
    let query = json!({
        "size": 0,
        "query": { "range": { "@timestamp": { "gte": from } } },
        "aggs": { "by": { "terms": { "field": field, "size": 50 } } },
    });
    let answer = Client::as_user().search(source, &query)?;
    let body: Value = answer.json().map_err(|e| Error::Internal(format!("search answer: {e}")))?;
    if !answer.is_success() {
        return Err(Error::Invalid(format!("search of {source} answered {}: {body}", answer.status)));
    }
    let total = body["hits"]["total"]["value"].as_u64().unwrap_or(0);
    let counts: serde_json::Map<String, Value> = body["aggregations"]["by"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| Some((b["key"].as_str()?.to_owned(), b["doc_count"].clone())))
        .collect();
    let report = json!({
        "job_id": context.job_id,
        "summary": context.job_name,
        "source": source,
        "from": from,
        "scheduled_at": context.scheduled_at,
        "attempt": context.attempt,
        "total": total,
        "counts": counts,
    });
    let written = Client::as_user().call(
        "POST",
        &format!("/{REPORTS}/_doc?refresh=true"),
        Some(report.to_string().as_bytes()),
    )?;
    if !written.is_success() {
        return Err(Error::Internal(format!(
            "writing the report answered {}: {}",
            written.status,
            String::from_utf8_lossy(&written.body)
        )));
    }
    let documents = if total == 1 { "document" } else { "documents" };
    Ok(format!("{total} {documents} of {source} since {from} summarised"))
}

export_extension!(Reporter);
