//! Hello world for Warden: `GET /_extensions/hello/greet/{name}` answers
//! `{"greeting":"Hello, {name}!"}` and writes one log line.

use warden_guest::http::{Request, Response};
use warden_guest::{Extension, export_extension, log};

struct Hello;

impl Extension for Hello {
    fn handle(request: Request) -> Response {
        match (request.method.as_str(), request.path_segments().as_slice()) {
            ("GET", ["greet", name]) => {
                log::info(&format!("greeting {name}"));
                Response::json(200, &serde_json::json!({ "greeting": format!("Hello, {name}!") }))
            }
            (_, ["greet", _]) => Response::error(405, "use GET"),
            _ => Response::not_found(),
        }
    }
}

export_extension!(Hello);
