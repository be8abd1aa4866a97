//! Warden's host: loads extensions (WebAssembly components), checks what
//! they import against what an operator granted, and serves their REST
//! routes with each invocation in a fresh, limited sandbox.
//!
//! Start at [`registry::Registry`] (loading a directory of extensions),
//! [`runtime`] (the engine and the invocation path) and [`api`] (every REST
//! surface, the only module that speaks HTTP). [`config`] reads the
//! operator's environment settings.

pub mod api;
pub mod audit;
pub mod capability;
pub mod cluster;
pub mod config;
pub mod error;
pub mod inspect;
pub mod manifest;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod security;
pub mod store;
pub mod time;
