//! Calls into the cluster. Capability: `cluster`.
//!
//! The host attaches an on-behalf-of token to every call; this extension
//! never handles credentials. [`Client::as_user`] acts with the invoking
//! user's authority (limited by what the extension was granted);
//! [`Client::as_service`] acts as the extension's own service account, which
//! reaches only the extension's own indices: `.ext-<id>` and
//! `.ext-<id>_<suffix>` (an `_`, which ids cannot contain, so extension
//! `hc` never reaches `.ext-hc-2`, the index of extension `hc-2`).
//!
//! Index names follow OpenSearch's rules; single-document calls and index
//! creation name one concrete index (no `*`, `?` or comma list; a path is
//! percent-decoded once, a `_bulk` body's `_index` never), or the cluster
//! answers 400 `invalid_index_name_exception`.

use crate::Error;
use crate::bindings::warden::extension::cluster::{self as wit, Identity};

/// What the cluster answered. Any HTTP status is a response; the host only
/// returns [`Error`] when it did not make the call at all.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// True for 2xx statuses.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// A handle for cluster calls under one identity.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    identity: Identity,
}

impl Client {
    /// Calls act for the user of the current request or job.
    pub fn as_user() -> Self {
        Client { identity: Identity::User }
    }

    /// Calls act as this extension's service account.
    pub fn as_service() -> Self {
        Client { identity: Identity::Service }
    }

    /// One raw call: `method` and `path` (with query) as in OpenSearch's REST API.
    pub fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Response, Error> {
        let response = wit::call(&wit::Request {
            method: method.to_owned(),
            path: path.to_owned(),
            body: body.map(<[u8]>::to_vec),
            identity: self.identity,
        })?;
        Ok(Response {
            status: response.status,
            headers: response.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: response.body,
        })
    }

    fn call_json<T: serde::Serialize + ?Sized>(
        &self,
        method: &str,
        path: &str,
        body: &T,
    ) -> Result<Response, Error> {
        let body =
            serde_json::to_vec(body).map_err(|e| Error::Invalid(format!("request body is not JSON: {e}")))?;
        self.call(method, path, Some(&body))
    }

    /// `GET /<index>/_doc/<id>`.
    pub fn get(&self, index: &str, id: &str) -> Result<Response, Error> {
        self.call("GET", &format!("/{index}/_doc/{}", encode(id)), None)
    }

    /// `PUT /<index>/_doc/<id>` with `id`, or `POST /<index>/_doc` without.
    pub fn index<T: serde::Serialize + ?Sized>(
        &self,
        index: &str,
        id: Option<&str>,
        document: &T,
    ) -> Result<Response, Error> {
        match id {
            Some(id) => self.call_json("PUT", &format!("/{index}/_doc/{}", encode(id)), document),
            None => self.call_json("POST", &format!("/{index}/_doc"), document),
        }
    }

    /// `POST /<index>/_search` with a query DSL body.
    pub fn search<T: serde::Serialize + ?Sized>(&self, index: &str, query: &T) -> Result<Response, Error> {
        self.call_json("POST", &format!("/{index}/_search"), query)
    }

    /// `DELETE /<index>/_doc/<id>`.
    pub fn delete(&self, index: &str, id: &str) -> Result<Response, Error> {
        self.call("DELETE", &format!("/{index}/_doc/{}", encode(id)), None)
    }

    /// `POST /_bulk`: each item is an action line followed by its source
    /// line where the action has one.
    pub fn bulk(&self, items: &[BulkItem<'_>]) -> Result<Response, Error> {
        let mut body = Vec::new();
        for item in items {
            let (action, source) = item.lines();
            push_line(&mut body, &action)?;
            if let Some(source) = source {
                push_line(&mut body, source)?;
            }
        }
        self.call("POST", "/_bulk", Some(&body))
    }
}

/// One operation of a [`Client::bulk`] request.
#[derive(Debug, Clone)]
pub enum BulkItem<'a> {
    Index { index: &'a str, id: Option<&'a str>, source: &'a serde_json::Value },
    Create { index: &'a str, id: &'a str, source: &'a serde_json::Value },
    Delete { index: &'a str, id: &'a str },
}

impl<'a> BulkItem<'a> {
    fn lines(&self) -> (serde_json::Value, Option<&'a serde_json::Value>) {
        use serde_json::json;
        match self {
            BulkItem::Index { index, id: Some(id), source } => {
                (json!({ "index": { "_index": index, "_id": id } }), Some(*source))
            }
            BulkItem::Index { index, id: None, source } => {
                (json!({ "index": { "_index": index } }), Some(*source))
            }
            BulkItem::Create { index, id, source } => {
                (json!({ "create": { "_index": index, "_id": id } }), Some(*source))
            }
            BulkItem::Delete { index, id } => (json!({ "delete": { "_index": index, "_id": id } }), None),
        }
    }
}

fn push_line(body: &mut Vec<u8>, value: &serde_json::Value) -> Result<(), Error> {
    serde_json::to_writer(&mut *body, value)
        .map_err(|e| Error::Invalid(format!("bulk line is not JSON: {e}")))?;
    body.push(b'\n');
    Ok(())
}

/// Percent-encodes a document id for use as one path segment.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_as_one_segment() {
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("plain-id_1.x"), "plain-id_1.x");
    }

    #[test]
    fn bulk_lines_follow_opensearch_ndjson() {
        let doc = serde_json::json!({"n": 1});
        let (action, source) = BulkItem::Index { index: "logs", id: Some("7"), source: &doc }.lines();
        assert_eq!(action, serde_json::json!({"index": {"_index": "logs", "_id": "7"}}));
        assert_eq!(source, Some(&doc));
        let (action, source) = BulkItem::Delete { index: "logs", id: "7" }.lines();
        assert_eq!(action, serde_json::json!({"delete": {"_index": "logs", "_id": "7"}}));
        assert!(source.is_none());
    }
}
