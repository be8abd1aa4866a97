//! Test guest for the `cluster` and `scheduler` capabilities: each route
//! makes one host call and reports the outcome as JSON, so tests can see the
//! host's typed answer (and, without a grant, the load-time refusal).

use std::collections::BTreeMap;

use warden_guest::cluster::Client;
use warden_guest::http::{Request, Response};
use warden_guest::job::{JobContext, Outcome};
use warden_guest::scheduler::{self, Schedule};
use warden_guest::{Error, Extension, export_extension};

struct HostCalls;

/// `{"outcome":"ok"|"error", "kind": <error variant>, "message": ...}`.
fn report<T: std::fmt::Debug>(result: Result<T, Error>) -> Response {
    let mut body = BTreeMap::new();
    match result {
        Ok(value) => {
            body.insert("outcome", "ok".to_owned());
            body.insert("message", format!("{value:?}"));
        }
        Err(error) => {
            body.insert("outcome", "error".to_owned());
            body.insert("kind", error.kind().to_owned());
            body.insert("message", error.message().to_owned());
        }
    }
    Response::json(200, &body)
}

impl Extension for HostCalls {
    fn run_job(context: JobContext) -> Outcome {
        run(context)
    }

    fn handle(request: Request) -> Response {
        match request.path_segments().as_slice() {
            ["cluster"] => report(Client::as_user().call("GET", "/_cluster/health", None)),
            ["schedule"] if request.method == "GET" => {
                report(scheduler::register("probe", Schedule::Interval(60), "{}"))
            }
            // {"name", "schedule": {"interval": s} | {"once": ms} | {"cron": ".."}, "params", "options"?}
            ["schedule"] => {
                let Ok(spec) = request.json::<serde_json::Value>() else {
                    return Response::error(400, "body must be JSON");
                };
                let schedule = match &spec["schedule"] {
                    s if s["interval"].is_u64() => Schedule::Interval(s["interval"].as_u64().unwrap_or(0)),
                    s if s["once"].is_u64() => Schedule::Once(s["once"].as_u64().unwrap_or(0)),
                    s => Schedule::Cron(s["cron"].as_str().unwrap_or_default().to_owned()),
                };
                let name = spec["name"].as_str().unwrap_or_default();
                // {"options": {"jitter": f, "catch_up": "skip" | "once"}}: register-with.
                let registered = match &spec["options"] {
                    serde_json::Value::Object(options) => {
                        let options = scheduler::JobOptions {
                            jitter: options.get("jitter").and_then(|j| j.as_f64()).unwrap_or(0.0),
                            catch_up: match options.get("catch_up").and_then(|c| c.as_str()) {
                                Some("once") => scheduler::CatchUp::Once,
                                _ => scheduler::CatchUp::Skip,
                            },
                        };
                        scheduler::register_with(name, schedule, &spec["params"], options)
                    }
                    _ => scheduler::register(name, schedule, &spec["params"]),
                };
                match registered {
                    Ok(id) => Response::json(200, &serde_json::json!({ "outcome": "ok", "id": id })),
                    Err(e) => report::<()>(Err(e)),
                }
            }
            ["jobs"] => report(scheduler::list()),
            ["jobs", id] if request.method == "DELETE" => report(scheduler::unregister(id)),
            ["jobs", id] => report(scheduler::get(id)),
            // {"method", "path", "body"?, "identity": "user"|"service"} → one raw call.
            ["call"] => {
                let Ok(spec) = request.json::<serde_json::Value>() else {
                    return Response::error(400, "body must be JSON");
                };
                let client =
                    if spec["identity"] == "service" { Client::as_service() } else { Client::as_user() };
                let body = (!spec["body"].is_null()).then(|| match &spec["body"] {
                    serde_json::Value::String(ndjson) => ndjson.clone().into_bytes(),
                    other => other.to_string().into_bytes(),
                });
                let method = spec["method"].as_str().unwrap_or("GET");
                let path = spec["path"].as_str().unwrap_or("/");
                match client.call(method, path, body.as_deref()) {
                    Ok(r) => Response::json(
                        200,
                        &serde_json::json!({
                            "outcome": "ok",
                            "status": r.status,
                            "body": serde_json::from_slice::<serde_json::Value>(&r.body).unwrap_or_default(),
                        }),
                    ),
                    Err(e) => Response::json(
                        200,
                        &serde_json::json!({ "outcome": "error", "kind": e.kind(), "message": e.message() }),
                    ),
                }
            }
            ["whoami"] => {
                let mut body = BTreeMap::new();
                body.insert("user", request.user.clone());
                body.insert("saw_authorization", request.header("authorization").is_some().to_string());
                // Every header name the host let through, comma-separated.
                let names: Vec<&str> = request.headers.iter().map(|(name, _)| name.as_str()).collect();
                body.insert("headers", names.join(","));
                Response::json(200, &body)
            }
            // {"status", "headers": [[name, value]...]} → answered as asked.
            ["answer"] => {
                let Ok(spec) = request.json::<serde_json::Value>() else {
                    return Response::error(400, "body must be JSON");
                };
                let status = u16::try_from(spec["status"].as_u64().unwrap_or(200)).unwrap_or(200);
                let mut response = Response::json(status, &serde_json::json!({"answered": status}));
                for pair in spec["headers"].as_array().into_iter().flatten() {
                    if let (Some(name), Some(value)) = (pair[0].as_str(), pair[1].as_str()) {
                        response.headers.push((name.to_owned(), value.to_owned()));
                    }
                }
                response
            }
            _ => Response::not_found(),
        }
    }
}

/// The job runner: `params` say what to do — `{"index": i, "doc": d,
/// "calls"?: n, "pause_ms"?: ms}` indexes `d` (plus the run's context) as
/// the job's user, n times; `{"fail": m}`
/// reports failure; `{"panic": m}` traps; `{"spin": true}` never returns;
/// `{"register": name}` registers another job from inside the run.
fn run(context: JobContext) -> Outcome {
    let Ok(params) = context.params_json::<serde_json::Value>() else {
        return Outcome::Failure(format!("params are not JSON: {}", context.params));
    };
    if let Some(message) = params["fail"].as_str() {
        return Outcome::Failure(message.to_owned());
    }
    if let Some(message) = params["panic"].as_str() {
        panic!("{message}");
    }
    if params["spin"] == true {
        #[allow(clippy::empty_loop)]
        loop {}
    }
    if let Some(name) = params["register"].as_str() {
        return match scheduler::register(name, Schedule::Interval(3600), &serde_json::json!({})) {
            Ok(id) => Outcome::Success(format!("registered {id}")),
            Err(e) => Outcome::Failure(format!("{}: {}", e.kind(), e.message())),
        };
    }
    let Some(index) = params["index"].as_str() else {
        return Outcome::Success(format!("nothing to do, attempt {}", context.attempt));
    };
    let mut doc = params["doc"].clone();
    doc["job_id"] = context.job_id.clone().into();
    doc["attempt"] = context.attempt.into();
    doc["scheduled_at"] = context.scheduled_at.into();
    // `calls` writes (default 1), `pause_ms` apart: a long run.
    let calls = params["calls"].as_u64().unwrap_or(1);
    let pause = std::time::Duration::from_millis(params["pause_ms"].as_u64().unwrap_or(0));
    for call in 1..=calls {
        if call > 1 {
            std::thread::sleep(pause);
        }
        doc["call"] = call.into();
        let body = doc.to_string();
        match Client::as_user().call("POST", &format!("/{index}/_doc?refresh=true"), Some(body.as_bytes())) {
            Ok(r) if r.status < 300 => {}
            Ok(r) => {
                let body = String::from_utf8_lossy(&r.body);
                return Outcome::Failure(format!("call {call}: cluster answered {}: {body}", r.status));
            }
            Err(e) => return Outcome::Failure(format!("call {call}: {}: {}", e.kind(), e.message())),
        }
    }
    Outcome::Success(format!("indexed {calls} into {index}"))
}

export_extension!(HostCalls);
