//! The cluster: the action layer ([`actions`]) that names what a call does,
//! the [`Backend`] that does it — the embedded store ([`embedded`]) today, a
//! remote OpenSearch later — and the [`gateway`] that decides who may.

pub mod actions;
pub mod aggregations;
pub mod dates;
pub mod embedded;
pub mod gateway;
pub mod query;

use self::actions::ActionRequest;
use self::embedded::{Params, Reply};
use crate::store::StoreError;

/// Where documents live. Writes follow OpenSearch's optimistic concurrency
/// (`if_seq_no`/`if_primary_term` → 409), so locks and config writes built
/// on a backend are compare-and-set whatever implements it.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The names of the existing indices (system ones included).
    fn indices(&self) -> Result<Vec<String>, StoreError>;

    /// Performs an authorised request on concrete `indices`.
    fn execute(
        &self,
        request: &ActionRequest,
        indices: &[String],
        params: &Params,
        body: Option<&[u8]>,
    ) -> Reply;
}
