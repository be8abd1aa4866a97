//! Test guest for the `cluster` and `scheduler` capabilities: each route
//! makes one host call and reports the outcome as JSON, so tests can see the
//! host's typed answer (and, without a grant, the load-time refusal).

use std::collections::BTreeMap;

use warden_guest::cluster::Client;
use warden_guest::http::{Request, Response};
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
    fn handle(request: Request) -> Response {
        match request.path_segments().as_slice() {
            ["cluster"] => report(Client::as_user().call("GET", "/_cluster/health", None)),
            ["schedule"] => report(scheduler::register("probe", Schedule::Interval(60), "{}")),
            ["jobs"] => report(scheduler::list()),
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
                Response::json(200, &body)
            }
            _ => Response::not_found(),
        }
    }
}

export_extension!(HostCalls);
