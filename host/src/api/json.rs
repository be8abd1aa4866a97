//! The one JSON body extractor (after axum's examples/error-handling
//! `AppJson`): a malformed body becomes [`InvalidBody`], which each
//! envelope turns into its 400 (`api::error`), with the message each
//! endpoint has always given.
//!
//! Two differences from axum's `Json`, both to keep behaviour: the body is
//! parsed when the handler asks, after its permission checks (a caller who
//! may not act gets the 403, never a parse error, and no unauthorised body
//! is parsed), and no `Content-Type` is required (clients send none).

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

/// What a body was expected to be: the start of the 400's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// `invalid body: …` (the security plugin's endpoints).
    Body,
    /// `body is not JSON: …`
    Json,
    /// `body is not a JSON Patch: …`
    JsonPatch,
    /// `body must be <shape>: …`
    Shape(&'static str),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Body => f.write_str("invalid body"),
            Expected::Json => f.write_str("body is not JSON"),
            Expected::JsonPatch => f.write_str("body is not a JSON Patch"),
            Expected::Shape(shape) => write!(f, "body must be {shape}"),
        }
    }
}

/// A body that is not the JSON the endpoint takes.
#[derive(Debug, thiserror::Error)]
#[error("{expected}: {source}")]
pub struct InvalidBody {
    pub expected: Expected,
    pub source: serde_json::Error,
}

/// A request body holding JSON, parsed by [`JsonBody::parse`] (into what
/// the handler needs: one endpoint takes a document or a JSON Patch by method).
#[derive(Debug)]
pub struct JsonBody(Bytes);

impl JsonBody {
    /// The body as a `T`, or the 400 naming what was `expected`.
    pub fn parse<T: DeserializeOwned>(&self, expected: Expected) -> Result<T, InvalidBody> {
        serde_json::from_slice(&self.0).map_err(|source| InvalidBody { expected, source })
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = <Bytes as FromRequest<S>>::Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The authentication middleware has already read the body, within
        // its limit and timeout: this only takes the bytes.
        let bytes = Bytes::from_request(request, state).await?;
        Ok(JsonBody(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_was_expected() {
        let body = JsonBody(Bytes::from_static(b"{"));
        let message = |expected| {
            body.parse::<serde_json::Value>(expected).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
        };
        assert!(message(Expected::Body).starts_with("invalid body: EOF"));
        assert!(message(Expected::Json).starts_with("body is not JSON: "));
        assert!(message(Expected::JsonPatch).starts_with("body is not a JSON Patch: "));
        assert!(
            message(Expected::Shape("{\"user\": \"<name>\"}"))
                .starts_with("body must be {\"user\": \"<name>\"}: ")
        );
    }
}
