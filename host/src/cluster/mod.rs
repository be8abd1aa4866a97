//! The cluster: the action layer ([`actions`]) that names what a call does,
//! and the embedded backend ([`embedded`]) that does it on the store.

pub mod actions;
pub mod aggregations;
pub mod embedded;
pub mod gateway;
