//! Capabilities: the WIT interfaces beyond the baseline that an operator can
//! grant an extension, and the classification of a component's imports into
//! the capability each one needs.

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

impl FromStr for Capability {
    type Err = String;

    /// Accepts the short name (`cluster`) or the interface name
    /// (`warden:extension/cluster`, with or without `@version`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = s.split('@').next().unwrap_or(s);
        let short = bare.strip_prefix("warden:extension/").unwrap_or(bare);
        Capability::ALL.into_iter().find(|c| c.name() == short).ok_or_else(|| {
            format!("unknown capability `{s}` (known: {})", Capability::ALL.map(Capability::name).join(", "))
        })
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

const BASELINE_CLI: [&str; 10] = [
    "environment",
    "exit",
    "stdin",
    "stdout",
    "stderr",
    "terminal-input",
    "terminal-output",
    "terminal-stdin",
    "terminal-stdout",
    "terminal-stderr",
];

/// Classifies an import by its instance name, e.g. `wasi:io/streams@0.2.6`.
pub fn classify_import(name: &str) -> ImportClass {
    let (interface, version) = match name.split_once('@') {
        Some((interface, version)) => (interface, Some(version)),
        None => (name, None),
    };
    let Some((package, item)) = interface.split_once('/') else {
        return ImportClass::Unknown;
    };
    let wasi_02 = version.is_some_and(|v| v.starts_with("0.2."));
    let ours = version.is_some_and(|v| v.starts_with("0.1."));
    match (package, item) {
        ("wasi:io", "error" | "poll" | "streams") if wasi_02 => ImportClass::Baseline,
        ("wasi:clocks", "wall-clock" | "monotonic-clock") if wasi_02 => ImportClass::Baseline,
        ("wasi:random", "random" | "insecure" | "insecure-seed") if wasi_02 => ImportClass::Baseline,
        ("wasi:cli", item) if wasi_02 && BASELINE_CLI.contains(&item) => ImportClass::Baseline,
        ("wasi:filesystem", "types" | "preopens") if wasi_02 => ImportClass::Filesystem,
        ("wasi:sockets" | "wasi:http", _) => ImportClass::Needs(Capability::Network),
        ("warden:extension", "log" | "types") if ours => ImportClass::Baseline,
        ("warden:extension", "cluster") if ours => ImportClass::Needs(Capability::Cluster),
        ("warden:extension", "scheduler") if ours => ImportClass::Needs(Capability::Scheduler),
        _ => ImportClass::Unknown,
    }
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
    fn capability_names_parse_both_ways() {
        assert_eq!("cluster".parse(), Ok(Capability::Cluster));
        assert_eq!("warden:extension/scheduler@0.1.0".parse(), Ok(Capability::Scheduler));
        assert!("root".parse::<Capability>().is_err_and(|e| e.contains("unknown capability `root`")));
    }
}
