//! Warden's host: loads extensions (WebAssembly components), checks what
//! they import against what an operator granted, and serves their REST
//! routes with each invocation in a fresh, limited sandbox.
//!
//! Start at [`registry::Registry`] (loading a directory of extensions),
//! [`runtime`] (the engine and the invocation path) and [`server`] (HTTP).

pub mod audit;
pub mod capability;
pub mod cluster;
pub mod error;
pub mod inspect;
pub mod manifest;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod security;
pub mod security_api;
pub mod server;
pub mod store;
pub mod time;
