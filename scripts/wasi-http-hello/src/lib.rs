//! `wasi:http/proxy` hello-world: answers every request with
//! `{"greeting":"Hello, <last path segment>!"}`, as Warden's
//! examples/hello-world does for `/greet/<name>`, so that
//! scripts/load-vs-wasmtime.sh compares the two hosts on the same work.

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let name = path.split('?').next().unwrap_or_default().rsplit('/').next().unwrap_or("world");
        let body_text = format!("{{\"greeting\":\"Hello, {name}!\"}}");
        let headers = Fields::new();
        // A header the proxy world accepts; failing it only drops the header.
        let _ = headers.set("content-type", &[b"application/json".to_vec()]);
        let response = OutgoingResponse::new(headers);
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = body.write() {
            let _ = stream.blocking_write_and_flush(body_text.as_bytes());
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

wasip2::http::proxy::export!(Hello);
