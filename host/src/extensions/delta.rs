//! The permission delta: what a new manifest would add to and remove from
//! what an extension is granted now — capabilities, policy cluster actions,
//! index patterns with their actions, predefined roles and their
//! permissions, routes, job types. Shown before an upgrade or a grant
//! change; [`Delta::is_narrowing_only`] decides whether it may apply at once.
//!
//! Permissions are compared after expanding action groups, and an added
//! permission counts only when nothing granted already covers it
//! (`read` → `indices:data/read/search` narrows). Coverage is decided
//! conservatively: when in doubt (two globs, two regexes), an addition is
//! reported as widening.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::actions;
use super::manifest::{IndexPermission, JobType, LimitOverrides, Manifest, Policy, PredefinedRole, Route};
use crate::capability::Capability;
use crate::security::pattern::Pattern;

/// What an extension is granted: the manifest's requests as the operator
/// approved (and maybe narrowed) them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grants {
    /// Capability names (`cluster`, `scheduler`, ...).
    pub capabilities: BTreeSet<String>,
    pub policy: Policy,
    pub roles: Vec<PredefinedRole>,
    pub routes: Vec<Route>,
    pub jobs: Vec<JobType>,
    /// The manifest's resource limits (not narrowed by grants; compared so
    /// that raising one is a widening).
    #[serde(default)]
    pub limits: LimitOverrides,
}

impl Grants {
    /// Everything `manifest` requests, granted.
    pub fn of(manifest: &Manifest) -> Grants {
        Grants {
            capabilities: manifest.capabilities.iter().map(|c| c.name().to_owned()).collect(),
            policy: manifest.policy.clone(),
            roles: manifest.roles.clone(),
            routes: manifest.routes.clone(),
            jobs: manifest.jobs.clone(),
            limits: manifest.limits,
        }
    }

    /// The granted capabilities this host knows.
    pub fn capability_set(&self) -> BTreeSet<Capability> {
        self.capabilities.iter().filter_map(|c| c.parse().ok()).collect()
    }
}

/// Entries added and removed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change<T> {
    pub added: Vec<T>,
    pub removed: Vec<T>,
}

impl<T> Default for Change<T> {
    fn default() -> Self {
        Change { added: Vec::new(), removed: Vec::new() }
    }
}

impl<T> Change<T> {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// One action on one index pattern (groups expanded).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexGrant {
    pub index_pattern: String,
    pub action: String,
}

/// One permission of one predefined role, as text (`cluster: x`,
/// `index logs-*: y`, `extension: extension:id/route`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RolePermission {
    pub role: String,
    pub permission: String,
}

/// The delta between what is granted and a new manifest.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Delta {
    pub id: String,
    pub capabilities: Change<String>,
    pub cluster_permissions: Change<String>,
    pub index_permissions: Change<IndexGrant>,
    pub roles: Change<String>,
    pub role_permissions: Change<RolePermission>,
    /// `METHOD path` (a changed route is removed and added).
    pub routes: Change<String>,
    /// Job type names (a changed job type is removed and added).
    pub jobs: Change<String>,
    /// Resource limits: a raised one (or one set where the host default
    /// applied, or unset where one was set) is added, a lowered one
    /// removed, as `name: old -> new`.
    pub limits: Change<String>,
}

/// Whether granted permission `granted` covers `wanted` (both group-free):
/// every name `wanted` can match, `granted` matches too. Conservative: when
/// it cannot tell (two globs, two regexes), no.
pub fn covers(granted: &str, wanted: &str) -> bool {
    if granted == wanted || granted == "*" {
        return true;
    }
    let Ok(g) = Pattern::parse(granted) else { return false };
    if !actions::is_pattern(wanted) {
        return g.matches(wanted);
    }
    match (g, Pattern::parse(wanted)) {
        (Pattern::Prefix(gp), Ok(Pattern::Prefix(wp))) => wp.starts_with(gp.as_str()),
        _ => false,
    }
}

fn action_leaves(list: &[String]) -> BTreeSet<String> {
    list.iter().flat_map(|p| actions::expand(p)).collect()
}

fn index_leaves(list: &[IndexPermission]) -> BTreeSet<IndexGrant> {
    let mut out = BTreeSet::new();
    for permission in list {
        let actions = action_leaves(&permission.allowed_actions);
        for pattern in &permission.index_patterns {
            for action in &actions {
                out.insert(IndexGrant { index_pattern: pattern.clone(), action: action.clone() });
            }
        }
    }
    out
}

/// `wanted` entries no `held` entry covers.
fn uncovered_actions(held: &BTreeSet<String>, wanted: &BTreeSet<String>) -> Vec<String> {
    wanted.iter().filter(|w| !held.iter().any(|h| covers(h, w))).cloned().collect()
}

fn uncovered_grants(held: &BTreeSet<IndexGrant>, wanted: &BTreeSet<IndexGrant>) -> Vec<IndexGrant> {
    wanted
        .iter()
        .filter(|w| {
            !held.iter().any(|h| covers(&h.index_pattern, &w.index_pattern) && covers(&h.action, &w.action))
        })
        .cloned()
        .collect()
}

fn sets<T: Ord + Clone>(old: &BTreeSet<T>, new: &BTreeSet<T>) -> Change<T> {
    Change { added: new.difference(old).cloned().collect(), removed: old.difference(new).cloned().collect() }
}

/// A role's permissions as comparable text, per kind.
fn role_change(old: &PredefinedRole, new: &PredefinedRole) -> Change<RolePermission> {
    let text = |kind: &str, items: Vec<String>| {
        items.into_iter().map(|i| format!("{kind}: {i}")).collect::<Vec<_>>()
    };
    let index_text = |g: IndexGrant| format!("{}: {}", g.index_pattern, g.action);
    let (old_cluster, new_cluster) =
        (action_leaves(&old.cluster_permissions), action_leaves(&new.cluster_permissions));
    let (old_index, new_index) = (index_leaves(&old.index_permissions), index_leaves(&new.index_permissions));
    let old_ext: BTreeSet<String> = old.extension_permissions.iter().cloned().collect();
    let new_ext: BTreeSet<String> = new.extension_permissions.iter().cloned().collect();
    let ext = sets(&old_ext, &new_ext);
    let added = text("cluster", uncovered_actions(&old_cluster, &new_cluster))
        .into_iter()
        .chain(text("index", uncovered_grants(&old_index, &new_index).into_iter().map(index_text).collect()))
        .chain(text("extension", ext.added));
    let removed = text("cluster", uncovered_actions(&new_cluster, &old_cluster))
        .into_iter()
        .chain(text("index", uncovered_grants(&new_index, &old_index).into_iter().map(index_text).collect()))
        .chain(text("extension", ext.removed));
    let tag = |permission| RolePermission { role: new.name.clone(), permission };
    Change { added: added.map(tag).collect(), removed: removed.map(tag).collect() }
}

/// Limits compared one by one. Only a lower value where both are set
/// narrows: the host default is not known here, so setting, unsetting or
/// raising a limit is a widening (conservative, as coverage is).
fn limit_change(old: &LimitOverrides, new: &LimitOverrides) -> Change<String> {
    let pairs = [
        ("memory_mib", old.memory_mib, new.memory_mib),
        ("cpu_ms", old.cpu_ms, new.cpu_ms),
        ("timeout_ms", old.timeout_ms, new.timeout_ms),
        ("max_concurrency", old.max_concurrency.map(u64::from), new.max_concurrency.map(u64::from)),
        ("queue_timeout_ms", old.queue_timeout_ms, new.queue_timeout_ms),
        ("files_mib", old.files_mib, new.files_mib),
    ];
    let shown = |v: Option<u64>| v.map_or_else(|| "host default".to_owned(), |v| v.to_string());
    let mut change = Change::default();
    for (name, old, new) in pairs {
        if old == new {
            continue;
        }
        let line = format!("{name}: {} -> {}", shown(old), shown(new));
        match (old, new) {
            (Some(old), Some(new)) if new < old => change.removed.push(line),
            _ => change.added.push(line),
        }
    }
    change
}

fn route_key(route: &Route) -> String {
    format!("{} {}", route.method, route.path)
}

impl Delta {
    /// What `new` changes against `granted`.
    pub fn between(granted: &Grants, new: &Manifest) -> Delta {
        Delta::of(&new.id, granted, &Grants::of(new))
    }

    /// What `new` changes against `granted`, both as grants.
    pub fn of(id: &str, granted: &Grants, new: &Grants) -> Delta {
        let (old_cluster, new_cluster) = (
            action_leaves(&granted.policy.cluster_permissions),
            action_leaves(&new.policy.cluster_permissions),
        );
        let (old_index, new_index) =
            (index_leaves(&granted.policy.index_permissions), index_leaves(&new.policy.index_permissions));
        let names = |roles: &[PredefinedRole]| roles.iter().map(|r| r.name.clone()).collect::<BTreeSet<_>>();
        let mut role_permissions = Change::default();
        for old in &granted.roles {
            if let Some(now) = new.roles.iter().find(|r| r.name == old.name) {
                let change = role_change(old, now);
                role_permissions.added.extend(change.added);
                role_permissions.removed.extend(change.removed);
            }
        }
        // Same key, other content: removed and added.
        // Descriptions are words, not permissions: left out of the comparison.
        let routes = |list: &[Route]| {
            list.iter()
                .map(|r| (route_key(r), Route { description: None, ..r.clone() }))
                .collect::<BTreeSet<_>>()
        };
        let (old_routes, new_routes) = (routes(&granted.routes), routes(&new.routes));
        let route_change = sets(&old_routes, &new_routes);
        let jobs = |list: &[JobType]| {
            list.iter().map(|j| JobType { description: None, ..j.clone() }).collect::<BTreeSet<_>>()
        };
        let job_change = sets(&jobs(&granted.jobs), &jobs(&new.jobs));
        let limits = limit_change(&granted.limits, &new.limits);
        Delta {
            id: id.to_owned(),
            capabilities: sets(&granted.capabilities, &new.capabilities),
            cluster_permissions: Change {
                added: uncovered_actions(&old_cluster, &new_cluster),
                removed: uncovered_actions(&new_cluster, &old_cluster),
            },
            index_permissions: Change {
                added: uncovered_grants(&old_index, &new_index),
                removed: uncovered_grants(&new_index, &old_index),
            },
            roles: sets(&names(&granted.roles), &names(&new.roles)),
            role_permissions,
            routes: Change {
                added: route_change.added.into_iter().map(|(k, _)| k).collect(),
                removed: route_change.removed.into_iter().map(|(k, _)| k).collect(),
            },
            jobs: Change {
                added: job_change.added.into_iter().map(|j| j.name).collect(),
                removed: job_change.removed.into_iter().map(|j| j.name).collect(),
            },
            limits,
        }
    }

    /// Nothing added anywhere: the change only takes away, so it may apply
    /// at once. A new or changed route or job type counts as an addition
    /// (it is new surface acting for users), as does a new role.
    pub fn is_narrowing_only(&self) -> bool {
        self.capabilities.added.is_empty()
            && self.cluster_permissions.added.is_empty()
            && self.index_permissions.added.is_empty()
            && self.roles.added.is_empty()
            && self.role_permissions.added.is_empty()
            && self.routes.added.is_empty()
            && self.jobs.added.is_empty()
            && self.limits.added.is_empty()
    }

    /// What it adds, on one line (for an audit record): `capabilities:
    /// +cluster; routes: +GET /x`.
    pub fn additions(&self) -> String {
        fn part<T: fmt::Display>(title: &str, added: &[T]) -> Option<String> {
            (!added.is_empty()).then(|| {
                let items: Vec<String> = added.iter().map(|a| format!("+{a}")).collect();
                format!("{title}: {}", items.join(", "))
            })
        }
        let parts: Vec<String> = [
            part("capabilities", &self.capabilities.added),
            part("cluster", &self.cluster_permissions.added),
            part("index", &self.index_permissions.added),
            part("roles", &self.roles.added),
            part("role permissions", &self.role_permissions.added),
            part("routes", &self.routes.added),
            part("job types", &self.jobs.added),
            part("limits", &self.limits.added),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() { "nothing".to_owned() } else { parts.join("; ") }
    }

    /// No change at all.
    pub fn is_empty(&self) -> bool {
        self.capabilities.is_empty()
            && self.cluster_permissions.is_empty()
            && self.index_permissions.is_empty()
            && self.roles.is_empty()
            && self.role_permissions.is_empty()
            && self.routes.is_empty()
            && self.jobs.is_empty()
            && self.limits.is_empty()
    }
}

fn write_change<T: fmt::Display>(f: &mut fmt::Formatter<'_>, title: &str, change: &Change<T>) -> fmt::Result {
    if change.is_empty() {
        return Ok(());
    }
    writeln!(f, "  {title}:")?;
    for added in &change.added {
        writeln!(f, "    + {added}")?;
    }
    for removed in &change.removed {
        writeln!(f, "    - {removed}")?;
    }
    Ok(())
}

impl fmt::Display for IndexGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on `{}`", self.action, self.index_pattern)
    }
}

impl fmt::Display for RolePermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.role, self.permission)
    }
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "Permission delta for `{}`: no change", self.id);
        }
        let verdict = if self.is_narrowing_only() {
            "narrowing only: applies at once"
        } else {
            "widens what is granted: needs approval"
        };
        writeln!(f, "Permission delta for `{}` ({verdict}):", self.id)?;
        write_change(f, "capabilities", &self.capabilities)?;
        write_change(f, "policy cluster permissions", &self.cluster_permissions)?;
        write_change(f, "policy index permissions", &self.index_permissions)?;
        write_change(f, "roles", &self.roles)?;
        write_change(f, "role permissions", &self.role_permissions)?;
        write_change(f, "routes", &self.routes)?;
        write_change(f, "job types", &self.jobs)?;
        write_change(f, "limits", &self.limits)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn manifest(body: &str) -> Manifest {
        let text = format!("id = \"reporter\"\nversion = \"1\"\ncomponent = \"r.wasm\"\n{body}");
        match Manifest::parse(&text, Path::new("/e"), Path::new("/e/extension.toml")) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    const V1: &str = r#"
        capabilities = ["cluster"]
        [policy]
        cluster_permissions = ["cluster:monitor/health"]
        index_permissions = [{ index_patterns = ["logs-*"], allowed_actions = ["read"] }]
        [[roles]]
        name = "reporter_user"
        extension_permissions = ["extension:reporter/summaries"]
        [[routes]]
        method = "GET"
        path = "/summaries"
        [[jobs]]
        name = "summary"
        cluster_actions = ["indices:data/read/search"]
        index_patterns = ["logs-*"]
    "#;

    #[test]
    fn the_same_manifest_changes_nothing() {
        let v1 = manifest(V1);
        let delta = Delta::between(&Grants::of(&v1), &v1);
        assert!(delta.is_empty() && delta.is_narrowing_only(), "{delta}");
        assert!(delta.to_string().contains("no change"));
        // New words are no new permission.
        let mut reworded = v1.clone();
        reworded.routes[0].description = Some("now described".into());
        reworded.jobs[0].description = Some("now described".into());
        assert!(Delta::between(&Grants::of(&v1), &reworded).is_empty());
        // A route that now does more is a changed route: removed and added.
        let mut busier = v1.clone();
        busier.routes[0].cluster_actions.push("indices:data/write/index".into());
        let delta = Delta::between(&Grants::of(&v1), &busier);
        assert_eq!(delta.routes.added, ["GET /summaries"]);
        assert_eq!(delta.routes.removed, ["GET /summaries"]);
        assert!(!delta.is_narrowing_only());
    }

    #[test]
    fn a_widening_upgrade_lists_every_addition() {
        let v2 = manifest(
            r#"
            capabilities = ["cluster", "scheduler"]
            [policy]
            cluster_permissions = ["cluster:monitor/health", "cluster_monitor"]
            index_permissions = [
                { index_patterns = ["logs-*"], allowed_actions = ["read"] },
                { index_patterns = ["reports"], allowed_actions = ["indices:data/write/index"] },
            ]
            [[roles]]
            name = "reporter_user"
            extension_permissions = ["extension:reporter/summaries", "schedule:reporter"]
            [[roles]]
            name = "reporter_admin"
            extension_permissions = ["extension:reporter/*"]
            [[routes]]
            method = "GET"
            path = "/summaries"
            [[routes]]
            method = "PUT"
            path = "/summaries/{name}"
            [[jobs]]
            name = "summary"
            cluster_actions = ["indices:data/read/search"]
            index_patterns = ["logs-*"]
        "#,
        );
        let delta = Delta::between(&Grants::of(&manifest(V1)), &v2);
        assert!(!delta.is_narrowing_only());
        assert_eq!(delta.capabilities.added, ["scheduler"]);
        assert_eq!(delta.cluster_permissions.added, ["cluster:monitor/*"]);
        assert!(delta.cluster_permissions.removed.is_empty(), "health is covered by cluster:monitor/*");
        assert_eq!(
            delta.index_permissions.added,
            [IndexGrant { index_pattern: "reports".into(), action: "indices:data/write/index".into() }]
        );
        assert_eq!(delta.roles.added, ["reporter_admin"]);
        assert_eq!(
            delta.role_permissions.added,
            [RolePermission {
                role: "reporter_user".into(),
                permission: "extension: schedule:reporter".into()
            }]
        );
        assert_eq!(delta.routes.added, ["PUT /summaries/{name}"]);
        assert!(delta.jobs.is_empty());
        let text = delta.to_string();
        assert!(text.contains("widens what is granted: needs approval"), "{text}");
        assert!(text.contains("+ indices:data/write/index on `reports`"), "{text}");
        assert!(text.contains("+ PUT /summaries/{name}"), "{text}");
        let json = serde_json::to_value(&delta).unwrap_or_default();
        assert_eq!(json["capabilities"]["added"][0], "scheduler");
    }

    #[test]
    fn a_narrowing_upgrade_is_narrowing_only() {
        let v2 = manifest(
            r#"
            capabilities = ["cluster"]
            [policy]
            index_permissions = [{ index_patterns = ["logs-app*"], allowed_actions = ["indices:data/read/search"] }]
            [[routes]]
            method = "GET"
            path = "/summaries"
        "#,
        );
        let delta = Delta::between(&Grants::of(&manifest(V1)), &v2);
        assert!(delta.is_narrowing_only(), "{delta}");
        assert!(!delta.is_empty());
        assert_eq!(delta.cluster_permissions.removed, ["cluster:monitor/health"]);
        assert!(delta.index_permissions.added.is_empty(), "{delta}");
        assert!(delta.index_permissions.removed.iter().any(|g| g.index_pattern == "logs-*"));
        assert_eq!(delta.roles.removed, ["reporter_user"]);
        assert_eq!(delta.jobs.removed, ["summary"]);
        assert!(delta.to_string().contains("narrowing only: applies at once"));
    }

    #[test]
    fn granted_narrower_than_requested_compares_against_the_grant() {
        // The operator narrowed v1's policy; the same v1 manifest again
        // asks for more than is granted now.
        let v1 = manifest(V1);
        let mut granted = Grants::of(&v1);
        granted.policy.index_permissions.clear();
        granted.capabilities.clear();
        let delta = Delta::between(&granted, &v1);
        assert!(!delta.is_narrowing_only());
        assert_eq!(delta.capabilities.added, ["cluster"]);
        assert!(!delta.index_permissions.added.is_empty());
        assert_eq!(granted.capability_set(), BTreeSet::new());
    }
}
