//! Warden's host: loads extensions (WebAssembly components), checks what
//! they import against what an operator granted, and serves their REST
//! routes with each invocation in a fresh, limited sandbox.
//!
//! Start at [`registry::Registry`] (loading a directory of extensions),
//! [`runtime`] (the engine and the invocation path) and [`api`] (every REST
//! surface, the only module that speaks HTTP). [`config`] reads the
//! operator's environment settings.
//!
//! The layers, from the ground up (enforced by a test that reads the
//! `crate::` paths of every file; see docs/architecture.md):
//!
//! 1. [`metrics`], [`store`], [`time`], [`error`]: the process's counters,
//!    the embedded store, the clock and calendar, the error vocabulary. The
//!    store imports nothing of the crate but the metrics.
//! 2. [`capability`], [`audit`], then [`security`]
//!    (authentication, roles, tokens): security asks nothing above it;
//!    [`extensions`] (the manifest, the roles it brings, the permission
//!    review and delta) asks nothing above security.
//! 3. [`cluster`] (action layer, gates, backends) and [`scheduler`] (jobs):
//!    domain services with domain types; neither imports the WIT bindings,
//!    the capabilities or the API.
//! 4. [`runtime`]: the engine, the sandbox, the sessions (the one place that
//!    mints tokens) and the capabilities, which convert between WIT and the
//!    domain services' types.
//! 5. [`api`]: every REST surface, the only module that imports axum.

pub mod api;
pub mod audit;
pub mod capability;
pub mod cluster;
pub mod config;
pub mod error;
pub mod extensions;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod inspect;
pub mod metrics;
/// The manifest's old path, kept for its importers.
pub use extensions::manifest;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod security;
pub mod store;
pub mod time;

#[cfg(test)]
mod layering;
