//! The [`Backend`] trait and its own vocabulary: what a call brings
//! ([`Params`], the query-string options), what it answers ([`Reply`], in
//! OpenSearch's response shapes) and how it fails ([`BackendError`]). The
//! embedded backend implements it, and so would a remote OpenSearch: neither
//! the gateway nor a second backend imports an implementation to speak it.

use serde_json::{Value, json};

use super::actions::{ActionRequest, InvalidIndexName};
use crate::error::{ErrorKind, HasKind};
use crate::store::StoreError;

/// Where documents live. Writes follow OpenSearch's optimistic concurrency
/// (`if_seq_no`/`if_primary_term` → 409), so locks and config writes built
/// on a backend are compare-and-set whatever implements it.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The names of the existing indices (system ones included).
    fn indices(&self) -> Result<Vec<String>, BackendError>;

    /// Performs an authorised request on concrete `indices`.
    fn execute(
        &self,
        request: &ActionRequest,
        indices: &[String],
        params: &Params,
        body: Option<&[u8]>,
    ) -> Reply;
}

/// Why a backend could not answer at all (a failed request is a [`Reply`]
/// with OpenSearch's error body, not this).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The embedded store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HasKind for BackendError {
    fn kind(&self) -> ErrorKind {
        match self {
            BackendError::Store(e) => e.kind(),
        }
    }
}

/// A backend answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Reply {
        Reply { status, body }
    }

    /// OpenSearch's error body: `{"error":{"type","reason"},"status"}`.
    pub fn error(status: u16, error_type: &str, reason: String) -> Reply {
        Reply::new(status, json!({ "error": { "type": error_type, "reason": reason }, "status": status }))
    }

    /// OpenSearch's 404 for an index (or expression) that names no index.
    pub fn index_not_found(index: &str) -> Reply {
        Reply::error(404, "index_not_found_exception", format!("no such index [{index}]"))
    }

    /// OpenSearch's answer to a name that cannot be an index.
    pub fn invalid_index_name(e: &InvalidIndexName) -> Reply {
        let cause = json!({ "type": InvalidIndexName::TYPE, "reason": e.to_string(), "index": e.name, "index_uuid": "_na_" });
        Reply::new(
            400,
            json!({ "error": { "root_cause": [cause], "type": InvalidIndexName::TYPE, "reason": e.to_string(), "index": e.name, "index_uuid": "_na_" }, "status": 400 }),
        )
    }
}

/// Query-string options that matter to the backend.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub if_seq_no: Option<u64>,
    pub if_primary_term: Option<u64>,
    /// `_search?size=…&from=…` (clients send them so); they win over the body's.
    pub size: Option<u64>,
    pub from: Option<u64>,
}

/// Why a query string was refused (every one is the caller's mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// A numeric option that is not a non-negative integer.
    #[error("[{name}] must be a non-negative integer, not `{value}`")]
    NotANumber { name: &'static str, value: String },
    /// `q=`: a Lucene query string.
    #[error("[q] (query string search) is not supported; send a query body")]
    QueryString,
    /// One of `if_seq_no`/`if_primary_term` without the other.
    #[error("[{given}] needs [{missing}]")]
    Unpaired { given: &'static str, missing: &'static str },
}

impl HasKind for ParamsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl Params {
    /// The options in `path`'s query string. A CAS option that does not
    /// parse, or one without the other, is refused: ignoring it would turn
    /// a conditional write into an unconditional one.
    pub fn parse(path: &str) -> Result<Params, ParamsError> {
        let mut p = Params::default();
        if let Some((_, query)) = path.split_once('?') {
            for pair in query.split('&') {
                let number = |name: &'static str, v: &str| {
                    v.parse::<u64>().map_err(|_| ParamsError::NotANumber { name, value: v.to_owned() })
                };
                match pair.split_once('=') {
                    Some(("if_seq_no", v)) => p.if_seq_no = Some(number("if_seq_no", v)?),
                    Some(("if_primary_term", v)) => p.if_primary_term = Some(number("if_primary_term", v)?),
                    Some(("size", v)) => p.size = Some(number("size", v)?),
                    Some(("from", v)) => p.from = Some(number("from", v)?),
                    // Answering a Lucene query string with everything would be
                    // worse than refusing it.
                    Some(("q", _)) => return Err(ParamsError::QueryString),
                    _ => {}
                }
            }
        }
        match (p.if_seq_no, p.if_primary_term) {
            (Some(_), None) => Err(ParamsError::Unpaired { given: "if_seq_no", missing: "if_primary_term" }),
            (None, Some(_)) => Err(ParamsError::Unpaired { given: "if_primary_term", missing: "if_seq_no" }),
            _ => Ok(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query string's options, and the refusals that keep a
    /// conditional write from becoming an unconditional one.
    #[test]
    fn params_parse_or_say_why_not() {
        let p = Params::parse("/i/_doc/1?if_seq_no=3&if_primary_term=2&routing=x");
        assert!(p.as_ref().is_ok_and(|p| p.if_seq_no == Some(3) && p.if_primary_term == Some(2)), "{p:?}");
        let refused = |path: &str| Params::parse(path).err().map(|e| (e.kind(), e.to_string()));
        assert_eq!(
            refused("/i/_search?size=-1"),
            Some((ErrorKind::Invalid, "[size] must be a non-negative integer, not `-1`".into()))
        );
        assert_eq!(
            refused("/i/_doc/1?if_seq_no=1"),
            Some((ErrorKind::Invalid, "[if_seq_no] needs [if_primary_term]".into()))
        );
        assert_eq!(
            refused("/i/_search?q=a:1"),
            Some((
                ErrorKind::Invalid,
                "[q] (query string search) is not supported; send a query body".into()
            ))
        );
    }

    #[test]
    fn a_lost_compare_and_set_is_a_conflict() {
        let lost = BackendError::from(StoreError::Conflict {
            index: "i/logs".into(),
            id: "1".into(),
            message: "document already exists".into(),
        });
        assert_eq!(lost.kind(), ErrorKind::Conflict);
        assert_eq!(BackendError::from(StoreError::Io("disk".into())).kind(), ErrorKind::Internal);
    }
}
