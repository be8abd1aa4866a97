//! The cluster: the action layer ([`actions`]) that names what a call does,
//! the [`Backend`] that does it — the embedded store ([`embedded`]) today, a
//! remote OpenSearch later — and the [`gateway`] that decides who may.
//!
//! The backend's own vocabulary ([`Reply`], [`Params`], [`BackendError`])
//! lives beside the trait in [`backend`], so neither the gateway nor a
//! second backend imports the embedded one to speak it.

pub mod actions;
pub mod aggregations;
pub mod backend;
pub mod dates;
pub mod embedded;
pub mod gateway;
pub mod query;

pub use self::backend::{Backend, BackendError, Params, ParamsError, Reply};
