//! REST requests to an extension and the responses it gives.

use crate::bindings::exports::warden::extension::http_handler as wit;
use crate::bindings::warden::extension::types::Header;

/// One request to `/_extensions/<id>/<path>`.
#[derive(Debug, Clone)]
pub struct Request {
    /// Upper-case HTTP method.
    pub method: String,
    /// The path below the extension's prefix, starting with `/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names are lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The authenticated user; empty when the request is anonymous.
    pub user: String,
}

impl Request {
    /// The non-empty segments of the path: `/greet/ana` → `["greet", "ana"]`.
    pub fn path_segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

impl From<wit::Request> for Request {
    fn from(r: wit::Request) -> Self {
        Request {
            method: r.method,
            path: r.path,
            query: r.query.into_iter().map(|q| (q.name, q.value)).collect(),
            headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: r.body,
            user: r.user,
        }
    }
}

/// A response to the REST caller.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with this status.
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// A JSON response. Serialising a value that cannot be JSON yields a 500.
    pub fn json<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                Response { status, headers: vec![("content-type".into(), "application/json".into())], body }
            }
            Err(e) => Response::error(500, &format!("response is not JSON: {e}")),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, text: &str) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    /// `{"error": message}` with this status.
    pub fn error(status: u16, message: &str) -> Self {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    /// 404 with a JSON error body.
    pub fn not_found() -> Self {
        Response::error(404, "no such route")
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl From<Response> for wit::Response {
    fn from(r: Response) -> Self {
        wit::Response {
            status: r.status,
            headers: r.headers.into_iter().map(|(name, value)| Header { name, value }).collect(),
            body: r.body,
        }
    }
}
