//! Host capabilities, one module per WIT interface group, in the manner of
//! Spin's factors: each module owns the import names it covers, its
//! load-time preparation, its linker wiring, its per-invocation context and
//! its conversion between the WIT types and the domain service it calls.
//!
//! | module | interfaces | grant | per-invocation context | load-time `prepare` |
//! |---|---|---|---|---|
//! | [`wasi`] | wasi:io, clocks, random, cli (empty env) | baseline | the store's `WasiCtx` | — |
//! | [`files`] | wasi:filesystem (no dirs without the grant; a private directory preopened as `/data` with it) | baseline / `files` | [`files::FilesCtx`] (the quota) | the directory and its quota |
//! | [`log`] | warden:extension/log, types | baseline | [`log::LogBudget`] | — |
//! | [`cluster`] | warden:extension/cluster | `cluster` | [`cluster::ClusterCtx`] (access, token) | service accounts, policy-role warning |
//! | [`scheduler`] | warden:extension/scheduler | `scheduler` | [`scheduler::JobsCtx`] (access, owner) | — |
//! | (none yet) | wasi:sockets, wasi:http | `network` | — | — (refused at load) |
//!
//! Each module's `IMPORTS` enters [`IMPORTS`], the one table
//! [`classify_import`] reads. Adding a capability is its module, its line
//! in [`IMPORTS`] and in [`linker_for`], and its context's field (and view)
//! in the store's data. Only granted interfaces are linked, so a component importing
//! anything else cannot even be instantiated; host functions check the
//! grant again on every call ([`not_granted`]).
//!
//! A capability's host functions see only their own context, through a
//! [`CapView`] reached by the module's `HasData` marker (as wasmtime-wasi's
//! `WasiClocks` / `WasiClocksCtx`); [`CapabilityViews`] is how the store's
//! data hands each view out. The modules never import the store's type
//! (`runtime::state`), which holds their contexts.

pub mod cluster;
pub mod files;
pub mod log;
pub mod scheduler;
pub mod wasi;

use std::collections::BTreeSet;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi::WasiView;

use super::bindings::types;
use crate::capability::{Capability, ImportClass};
use crate::error::ErrorKind;

/// What a capability's host functions see of one invocation: their own
/// context, and who calls.
#[derive(Debug)]
pub struct CapView<'a, C> {
    pub ctx: &'a mut C,
    pub extension: &'a Arc<str>,
    pub request_id: &'a str,
    /// Whether the capability is granted (checked again on every call).
    pub granted: bool,
}

/// How the store's data hands out each capability's view.
pub trait CapabilityViews: WasiView + Send + 'static {
    fn log_view(&mut self) -> log::LogView<'_>;
    fn files_view(&mut self) -> files::GuardedView<'_>;
    fn cluster_view(&mut self) -> cluster::ClusterView<'_>;
    fn jobs_view(&mut self) -> scheduler::JobsView<'_>;
}

/// Builds the linker for an extension holding `grants`.
pub fn linker_for<T: CapabilityViews>(
    engine: &wasmtime::Engine,
    grants: &BTreeSet<Capability>,
) -> wasmtime::Result<Linker<T>> {
    let mut linker = Linker::new(engine);
    wasi::link(&mut linker)?;
    files::link(&mut linker, T::files_view)?;
    log::link(&mut linker, T::log_view)?;
    if grants.contains(&Capability::Cluster) {
        cluster::link(&mut linker, T::cluster_view)?;
    }
    if grants.contains(&Capability::Scheduler) {
        scheduler::link(&mut linker, T::jobs_view)?;
    }
    Ok(linker)
}

/// Which versions of a package an import pattern covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// WASI 0.2.x.
    Wasi02,
    /// `warden:extension@0.1.x`.
    Ours01,
    /// Any version, or none.
    Any,
}

/// Imports a capability covers: a package, its interfaces (empty: all),
/// the versions, and what they need.
#[derive(Debug, Clone, Copy)]
pub struct Covers {
    pub package: &'static str,
    pub items: &'static [&'static str],
    pub versions: Versions,
    pub class: ImportClass,
}

/// Network access: not provided yet, so importing it is refused at load
/// with a message that says so (its module will own this line).
const NETWORK: &[Covers] = &[
    Covers {
        package: "wasi:sockets",
        items: &[],
        versions: Versions::Any,
        class: ImportClass::Needs(Capability::Network),
    },
    Covers {
        package: "wasi:http",
        items: &[],
        versions: Versions::Any,
        class: ImportClass::Needs(Capability::Network),
    },
];

/// Every import this host knows, by the module that covers it.
pub const IMPORTS: &[&[Covers]] =
    &[wasi::IMPORTS, files::IMPORTS, log::IMPORTS, cluster::IMPORTS, scheduler::IMPORTS, NETWORK];

/// Classifies an import by its instance name, e.g. `wasi:io/streams@0.2.6`.
pub fn classify_import(name: &str) -> ImportClass {
    let (interface, version) = match name.split_once('@') {
        Some((interface, version)) => (interface, Some(version)),
        None => (name, None),
    };
    let Some((package, item)) = interface.split_once('/') else {
        return ImportClass::Unknown;
    };
    let matches_version = |versions: Versions| match versions {
        Versions::Wasi02 => version.is_some_and(|v| v.starts_with("0.2.")),
        Versions::Ours01 => version.is_some_and(|v| v.starts_with("0.1.")),
        Versions::Any => true,
    };
    IMPORTS
        .iter()
        .flat_map(|covers| covers.iter())
        .find(|c| {
            c.package == package
                && (c.items.is_empty() || c.items.contains(&item))
                && matches_version(c.versions)
        })
        .map_or(ImportClass::Unknown, |c| c.class)
}

/// The WIT error for an error of `kind`: the one mapping from the host's
/// error vocabulary to what a guest sees. `Busy` and `Timeout` become
/// `unavailable` (retrying later may help).
pub fn to_wit(kind: ErrorKind, message: String) -> types::Error {
    match kind {
        ErrorKind::Denied => types::Error::Denied(message),
        ErrorKind::NotFound => types::Error::NotFound(message),
        ErrorKind::Invalid => types::Error::Invalid(message),
        ErrorKind::Conflict => types::Error::Conflict(message),
        ErrorKind::Busy | ErrorKind::Timeout | ErrorKind::Unavailable => types::Error::Unavailable(message),
        ErrorKind::Internal => types::Error::Internal(message),
    }
}

/// The `warden:extension/types` error a host function returns when the
/// capability behind it is not granted (reachable only if the linker and the
/// grant ever disagree: the second check at call time).
pub(crate) fn not_granted(capability: Capability) -> types::Error {
    to_wit(ErrorKind::Denied, format!("the `{capability}` capability is not granted to this extension"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_guests_import() {
        assert_eq!(classify_import("wasi:io/streams@0.2.6"), ImportClass::Baseline);
        assert_eq!(classify_import("wasi:cli/environment@0.2.0"), ImportClass::Baseline);
        assert_eq!(classify_import("wasi:filesystem/preopens@0.2.6"), ImportClass::Filesystem);
        assert_eq!(classify_import("warden:extension/log@0.1.0"), ImportClass::Baseline);
        assert_eq!(
            classify_import("warden:extension/cluster@0.1.0"),
            ImportClass::Needs(Capability::Cluster)
        );
        assert_eq!(
            classify_import("warden:extension/scheduler@0.1.3"),
            ImportClass::Needs(Capability::Scheduler)
        );
        assert_eq!(classify_import("wasi:sockets/tcp@0.2.6"), ImportClass::Needs(Capability::Network));
        assert_eq!(
            classify_import("wasi:http/outgoing-handler@0.2.6"),
            ImportClass::Needs(Capability::Network)
        );
        // Another major version of our package is not something we provide.
        assert_eq!(classify_import("warden:extension/cluster@2.0.0"), ImportClass::Unknown);
        assert_eq!(classify_import("acme:evil/backdoor"), ImportClass::Unknown);
        assert_eq!(classify_import("wasi:cli/run@0.2.6"), ImportClass::Unknown);
    }

    #[test]
    fn busy_and_timeout_are_unavailable_to_a_guest() {
        for kind in [ErrorKind::Busy, ErrorKind::Timeout, ErrorKind::Unavailable] {
            assert!(matches!(to_wit(kind, "x".into()), types::Error::Unavailable(m) if m == "x"));
        }
        assert!(matches!(to_wit(ErrorKind::Denied, "no".into()), types::Error::Denied(_)));
        assert!(matches!(to_wit(ErrorKind::Internal, "oops".into()), types::Error::Internal(_)));
    }
}
