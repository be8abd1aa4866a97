//! The permission review: everything a manifest asks for, in plain words,
//! for the operator to read before approving an install. `Display` gives
//! the text for a terminal; `Serialize` the same content for REST.
//!
//! Action groups are expanded to what they allow, each index pattern is
//! explained (exact, prefix, glob, regex) and flagged when it could name a
//! system index — which extensions are refused anyway.

use std::fmt;

use serde::Serialize;

use super::actions;
use super::manifest::{IndexPermission, LimitOverrides, Manifest};
use crate::capability::Capability;
use crate::security::pattern::Pattern;

/// The review of one manifest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Review {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub capabilities: Vec<CapabilityLine>,
    /// The policy role `extension:<id>`.
    pub policy_role: String,
    pub policy: PermissionsReview,
    pub roles: Vec<RoleReview>,
    pub routes: Vec<RouteReview>,
    pub jobs: Vec<JobReview>,
    pub limits: Vec<LimitLine>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CapabilityLine {
    pub name: String,
    /// What it lets the extension do.
    pub meaning: String,
}

/// Cluster and index permissions, explained.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PermissionsReview {
    pub cluster: Vec<ActionLine>,
    pub indices: Vec<IndexLine>,
}

/// One permission as written, and what it allows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ActionLine {
    pub permission: String,
    /// An action group (`read`): what it expands to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Vec<String>>,
    /// The actions this host knows that it covers, for wildcards and groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub known_actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IndexLine {
    pub patterns: Vec<PatternLine>,
    pub actions: Vec<ActionLine>,
}

/// One index pattern, explained.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PatternLine {
    pub pattern: String,
    /// `exact`, `prefix`, `glob` or `regex`.
    pub kind: &'static str,
    pub meaning: String,
    /// Could name a system index (`.warden*`, `.ext-*`); such calls are
    /// refused to extensions anyway.
    pub could_reach_system_indices: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoleReview {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub extension_permissions: Vec<String>,
    pub permissions: PermissionsReview,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RouteReview {
    pub method: String,
    pub path: String,
    pub permission: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What it performs on the caller's behalf.
    pub performs: Vec<ActionLine>,
    pub on: Vec<PatternLine>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobReview {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub performs: Vec<ActionLine>,
    pub on: Vec<PatternLine>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LimitLine {
    pub name: &'static str,
    /// The manifest's value, else the host default when known.
    pub value: Option<u64>,
    /// `manifest` or `host default`.
    pub source: &'static str,
}

/// What a capability lets an extension do, in one line.
pub fn capability_meaning(capability: Capability, id: &str) -> String {
    match capability {
        Capability::Cluster => format!(
            "call the cluster (search, read, write indices) on behalf of the user who made the request or owns the job — within that user's roles AND the policy role `extension:{id}` — and reach its own `.ext-{id}` indices as its service account `service:{id}`"
        ),
        Capability::Scheduler => format!(
            "register background jobs that run later as the user who asked, with that user's roles at each run (only users holding `schedule:{id}` can consent)"
        ),
        Capability::Files => {
            "a private directory on the host's disk, seen as `/data`, within the `files_mib` quota".into()
        }
        Capability::Network => {
            "outbound network access (not available yet: such an extension is refused at load)".into()
        }
    }
}

fn action_line(permission: &str) -> ActionLine {
    let group =
        actions::is_group(permission).then(|| actions::expand(permission).into_iter().collect::<Vec<_>>());
    let leaves: Vec<String> = match &group {
        Some(expanded) => expanded.clone(),
        None => vec![permission.to_owned()],
    };
    let mut known: Vec<String> =
        leaves.iter().flat_map(|leaf| actions::known_matches(leaf)).map(str::to_owned).collect();
    known.sort();
    known.dedup();
    // A plain known action needs no list of itself.
    if group.is_none() && !actions::is_pattern(permission) {
        known.clear();
    }
    ActionLine { permission: permission.to_owned(), group, known_actions: known }
}

/// Names a system index might have, to test patterns against.
const SYSTEM_SAMPLES: &[&str] =
    &[".warden", ".warden-security", ".warden-jobs", ".ext-", ".ext-a", ".ext-a_x"];

/// Explains one index pattern.
pub fn pattern_line(source: &str) -> PatternLine {
    match Pattern::parse(source) {
        Ok(Pattern::Exact(name)) => PatternLine {
            pattern: source.to_owned(),
            kind: "exact",
            meaning: format!("the index `{name}` only"),
            could_reach_system_indices: name.starts_with(".warden") || name.starts_with(".ext-"),
        },
        Ok(Pattern::Prefix(prefix)) => PatternLine {
            pattern: source.to_owned(),
            kind: "prefix",
            meaning: if prefix.is_empty() {
                "every index".to_owned()
            } else {
                format!("every index whose name starts with `{prefix}`")
            },
            could_reach_system_indices: [".warden", ".ext-"]
                .iter()
                .any(|system| system.starts_with(prefix.as_str()) || prefix.starts_with(system)),
        },
        Ok(pattern @ Pattern::Glob(_)) => PatternLine {
            pattern: source.to_owned(),
            kind: "glob",
            meaning: format!("every index matching `{source}` (`*` any characters, `?` one)"),
            could_reach_system_indices: source.starts_with(['*', '?', '.'])
                || SYSTEM_SAMPLES.iter().any(|s| pattern.matches(s)),
        },
        Ok(pattern @ Pattern::Regex(_)) => PatternLine {
            pattern: source.to_owned(),
            kind: "regex",
            meaning: format!("every index whose whole name matches the regular expression {source}"),
            // A regex is hard to bound: any sample or a leading `.` reach counts.
            could_reach_system_indices: SYSTEM_SAMPLES.iter().any(|s| pattern.matches(s))
                || source.starts_with("/.")
                || source.starts_with("/\\."),
        },
        Err(e) => PatternLine {
            pattern: source.to_owned(),
            kind: "invalid",
            meaning: e.to_string(),
            could_reach_system_indices: false,
        },
    }
}

fn permissions_review(cluster: &[String], indices: &[IndexPermission]) -> PermissionsReview {
    PermissionsReview {
        cluster: cluster.iter().map(|p| action_line(p)).collect(),
        indices: indices
            .iter()
            .map(|p| IndexLine {
                patterns: p.index_patterns.iter().map(|s| pattern_line(s)).collect(),
                actions: p.allowed_actions.iter().map(|a| action_line(a)).collect(),
            })
            .collect(),
    }
}

impl Review {
    /// The review of `manifest`; `defaults` are the host's limits when the
    /// caller can reach them (unset limits then show their value).
    pub fn new(manifest: &Manifest, defaults: Option<&LimitOverrides>) -> Review {
        let l = &manifest.limits;
        let d = defaults.copied().unwrap_or_default();
        let limit = |name, own: Option<u64>, default: Option<u64>| match own {
            Some(v) => LimitLine { name, value: Some(v), source: "manifest" },
            None => LimitLine { name, value: default, source: "host default" },
        };
        Review {
            id: manifest.id.clone(),
            name: manifest.display_name().to_owned(),
            version: manifest.version.clone(),
            description: manifest.description.clone(),
            capabilities: manifest
                .capabilities
                .iter()
                .map(|c| CapabilityLine {
                    name: c.name().to_owned(),
                    meaning: capability_meaning(*c, &manifest.id),
                })
                .collect(),
            policy_role: manifest.policy_role(),
            policy: permissions_review(
                &manifest.policy.cluster_permissions,
                &manifest.policy.index_permissions,
            ),
            roles: manifest
                .roles
                .iter()
                .map(|r| RoleReview {
                    name: r.name.clone(),
                    description: r.description.clone(),
                    extension_permissions: r.extension_permissions.clone(),
                    permissions: permissions_review(&r.cluster_permissions, &r.index_permissions),
                })
                .collect(),
            routes: manifest
                .routes
                .iter()
                .map(|r| RouteReview {
                    method: r.method.clone(),
                    path: r.path.clone(),
                    permission: r.permission.clone(),
                    description: r.description.clone(),
                    performs: r.cluster_actions.iter().map(|a| action_line(a)).collect(),
                    on: r.index_patterns.iter().map(|p| pattern_line(p)).collect(),
                })
                .collect(),
            jobs: manifest
                .jobs
                .iter()
                .map(|j| JobReview {
                    name: j.name.clone(),
                    description: j.description.clone(),
                    performs: j.cluster_actions.iter().map(|a| action_line(a)).collect(),
                    on: j.index_patterns.iter().map(|p| pattern_line(p)).collect(),
                })
                .collect(),
            limits: vec![
                limit("memory_mib", l.memory_mib, d.memory_mib),
                limit("cpu_ms", l.cpu_ms, d.cpu_ms),
                limit("timeout_ms", l.timeout_ms, d.timeout_ms),
                limit("max_concurrency", l.max_concurrency.map(u64::from), d.max_concurrency.map(u64::from)),
                limit("queue_timeout_ms", l.queue_timeout_ms, d.queue_timeout_ms),
                limit("files_mib", l.files_mib, d.files_mib),
            ],
        }
    }
}

impl fmt::Display for ActionLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.permission)?;
        if let Some(expanded) = &self.group {
            write!(f, " (action group: {})", expanded.join(", "))?;
        }
        if !self.known_actions.is_empty() {
            write!(f, " — covers {}", self.known_actions.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Display for PatternLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {} ({})", self.pattern, self.meaning, self.kind)?;
        if self.could_reach_system_indices {
            write!(
                f,
                " — could name system indices (.warden*, .ext-*), which are refused to extensions anyway"
            )?;
        }
        Ok(())
    }
}

fn write_permissions(f: &mut fmt::Formatter<'_>, p: &PermissionsReview, indent: &str) -> fmt::Result {
    if p.cluster.is_empty() && p.indices.is_empty() {
        return writeln!(f, "{indent}nothing");
    }
    for line in &p.cluster {
        writeln!(f, "{indent}cluster: {line}")?;
    }
    for index in &p.indices {
        writeln!(f, "{indent}on indices:")?;
        for pattern in &index.patterns {
            writeln!(f, "{indent}  {pattern}")?;
        }
        writeln!(f, "{indent}  may:")?;
        for action in &index.actions {
            writeln!(f, "{indent}    {action}")?;
        }
    }
    Ok(())
}

fn write_performs(
    f: &mut fmt::Formatter<'_>,
    performs: &[ActionLine],
    on: &[PatternLine],
    whom: &str,
) -> fmt::Result {
    if performs.is_empty() {
        return writeln!(f, "      performs no cluster action (declared)");
    }
    writeln!(f, "      performs on {whom} behalf:")?;
    for action in performs {
        writeln!(f, "        {action}")?;
    }
    for pattern in on {
        writeln!(f, "        on {pattern}")?;
    }
    Ok(())
}

impl fmt::Display for Review {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Extension `{}` ({}) version {}", self.id, self.name, self.version)?;
        if let Some(description) = &self.description {
            writeln!(f, "  {description}")?;
        }
        writeln!(f, "\nCapabilities:")?;
        if self.capabilities.is_empty() {
            writeln!(f, "  none (it can only answer requests and log)")?;
        }
        for c in &self.capabilities {
            writeln!(f, "  {}: {}", c.name, c.meaning)?;
        }
        writeln!(
            f,
            "\nPolicy (role `{}`: the most the extension may do, whoever it acts for):",
            self.policy_role
        )?;
        write_permissions(f, &self.policy, "  ")?;
        writeln!(f, "\nRoles it adds (for your users; map them to grant access):")?;
        if self.roles.is_empty() {
            writeln!(f, "  none")?;
        }
        for role in &self.roles {
            write!(f, "  {}", role.name)?;
            match &role.description {
                Some(d) => writeln!(f, ": {d}")?,
                None => writeln!(f)?,
            }
            for permission in &role.extension_permissions {
                writeln!(f, "    extension: {permission}")?;
            }
            if !role.permissions.cluster.is_empty() || !role.permissions.indices.is_empty() {
                write_permissions(f, &role.permissions, "    ")?;
            }
        }
        writeln!(f, "\nRoutes (under /_extensions/{}):", self.id)?;
        if self.routes.is_empty() {
            writeln!(f, "  none declared")?;
        }
        for route in &self.routes {
            write!(f, "  {} {} — needs {}", route.method, route.path, route.permission)?;
            match &route.description {
                Some(d) => writeln!(f, ": {d}")?,
                None => writeln!(f)?,
            }
            write_performs(f, &route.performs, &route.on, "the caller's")?;
        }
        writeln!(f, "\nJob types:")?;
        if self.jobs.is_empty() {
            writeln!(f, "  none declared")?;
        }
        for job in &self.jobs {
            write!(f, "  {}", job.name)?;
            match &job.description {
                Some(d) => writeln!(f, ": {d}")?,
                None => writeln!(f)?,
            }
            write_performs(f, &job.performs, &job.on, "its owner's")?;
        }
        writeln!(f, "\nLimits:")?;
        for limit in &self.limits {
            match limit.value {
                Some(v) => writeln!(f, "  {}: {v} ({})", limit.name, limit.source)?,
                None => writeln!(f, "  {}: host default", limit.name)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn manifest() -> Manifest {
        let text = r#"
            id = "reporter"
            name = "Reporter"
            version = "1.0.0"
            description = "Periodic summaries"
            component = "reporter.wasm"
            capabilities = ["cluster", "scheduler"]
            [limits]
            memory_mib = 32
            [policy]
            index_permissions = [
                { index_patterns = ["logs-*", "reports"], allowed_actions = ["read", "indices:data/write/index"] },
                { index_patterns = ["*", "/\\.w.*/"], allowed_actions = ["indices:data/read/*"] },
            ]
            [[roles]]
            name = "reporter_user"
            extension_permissions = ["extension:reporter/summaries", "schedule:reporter"]
            [[routes]]
            method = "get"
            path = "/summaries/{name}/reports"
            description = "the latest reports"
            cluster_actions = ["indices:data/read/search"]
            index_patterns = ["reports"]
            [[jobs]]
            name = "summary"
            cluster_actions = ["read", "indices:data/write/index"]
            index_patterns = ["logs-*", "reports"]
        "#;
        match Manifest::parse(text, Path::new("/e"), Path::new("/e/extension.toml")) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_review_says_everything_in_plain_words() {
        let defaults = LimitOverrides { cpu_ms: Some(1000), ..LimitOverrides::default() };
        let review = Review::new(&manifest(), Some(&defaults));
        let text = review.to_string();
        for expected in [
            "Extension `reporter` (Reporter) version 1.0.0",
            "cluster: call the cluster",
            "scheduler: register background jobs",
            "Policy (role `extension:reporter`",
            "read (action group: indices:admin/mappings/fields/get*, indices:admin/resolve/index, indices:data/read*)",
            "covers indices:data/read/get",
            "`logs-*`: every index whose name starts with `logs-` (prefix)",
            "`reports`: the index `reports` only (exact)",
            "`*`: every index (prefix) — could name system indices (.warden*, .ext-*), which are refused to extensions anyway",
            "(regex) — could name system indices",
            "reporter_user",
            "extension: schedule:reporter",
            "GET /summaries/{name}/reports — needs extension:reporter/summaries: the latest reports",
            "summary\n      performs on its owner's behalf:",
            "memory_mib: 32 (manifest)",
            "cpu_ms: 1000 (host default)",
            "timeout_ms: host default",
        ] {
            assert!(text.contains(expected), "review lacks {expected:?}:\n{text}");
        }
        assert!(
            !text.contains("`logs-*`: every index whose name starts with `logs-` (prefix) — could"),
            "{text}"
        );
        let json = serde_json::to_value(&review).unwrap_or_default();
        assert_eq!(json["policy_role"], "extension:reporter");
        assert_eq!(json["routes"][0]["permission"], "extension:reporter/summaries");
        assert_eq!(json["policy"]["indices"][1]["patterns"][0]["could_reach_system_indices"], true);
        assert_eq!(json["limits"][1]["source"], "host default");
    }

    #[test]
    fn patterns_are_explained_by_kind() {
        assert_eq!(pattern_line("logs").kind, "exact");
        assert_eq!(pattern_line("logs-*").kind, "prefix");
        assert_eq!(pattern_line("l?gs-*x").kind, "glob");
        assert_eq!(pattern_line("/logs-[0-9]+/").kind, "regex");
        assert!(pattern_line(".warden-jobs").could_reach_system_indices);
        assert!(pattern_line(".e*").could_reach_system_indices);
        assert!(pattern_line("*-x").could_reach_system_indices);
        assert!(!pattern_line("logs-?").could_reach_system_indices);
        assert!(!pattern_line("/logs-.*/").could_reach_system_indices);
    }
}
