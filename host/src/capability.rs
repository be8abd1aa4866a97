//! Capabilities: the WIT interfaces beyond the baseline that an operator can
//! grant an extension, and what an import needs ([`ImportClass`]). Which
//! import names each capability covers is its module's to say: the table in
//! `runtime::capabilities` (`classify_import`).

use std::fmt;
use std::str::FromStr;

/// A grantable capability. The baseline (WASI io, clocks, random, cli with an
/// empty environment, filesystem with no directory, and `warden:extension`
/// log/types) needs no grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `warden:extension/cluster`: cluster calls on behalf of users.
    Cluster,
    /// `warden:extension/scheduler`: scheduled jobs.
    Scheduler,
    /// A private directory, preopened as `/data`, for `wasi:filesystem`.
    Files,
    /// `wasi:sockets` / `wasi:http` outbound network access.
    Network,
}

impl Capability {
    pub const ALL: [Capability; 4] =
        [Capability::Cluster, Capability::Scheduler, Capability::Files, Capability::Network];

    /// The name used in `extension.toml` and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Cluster => "cluster",
            Capability::Scheduler => "scheduler",
            Capability::Files => "files",
            Capability::Network => "network",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability name this host does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability `{0}` (known: {known})", known = Capability::ALL.map(Capability::name).join(", "))]
pub struct UnknownCapability(pub String);

impl crate::error::HasKind for UnknownCapability {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Invalid
    }
}

impl FromStr for Capability {
    type Err = UnknownCapability;

    /// Accepts the short name (`cluster`) or the interface name
    /// (`warden:extension/cluster`, with or without `@version`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = s.split('@').next().unwrap_or(s);
        let short = bare.strip_prefix("warden:extension/").unwrap_or(bare);
        Capability::ALL.into_iter().find(|c| c.name() == short).ok_or_else(|| UnknownCapability(s.to_owned()))
    }
}

/// What an import needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImportClass {
    /// Always linked; needs no grant.
    Baseline,
    /// Linked without any directory unless `files` is granted (adapter-built
    /// guests import the filesystem interfaces even for `println!`).
    Filesystem,
    /// Needs this capability.
    Needs(Capability),
    /// Nothing this host provides.
    Unknown,
}

impl ImportClass {
    /// The group `warden inspect` shows it under.
    pub fn group(self) -> &'static str {
        match self {
            ImportClass::Baseline => "baseline",
            ImportClass::Filesystem => "files",
            ImportClass::Needs(c) => c.name(),
            ImportClass::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_parse_both_ways() {
        assert_eq!("cluster".parse(), Ok(Capability::Cluster));
        assert_eq!("warden:extension/scheduler@0.1.0".parse(), Ok(Capability::Scheduler));
        assert!(
            "root".parse::<Capability>().is_err_and(|e| e.to_string().contains("unknown capability `root`"))
        );
    }
}
