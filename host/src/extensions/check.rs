//! The missing-permission report (seed 004's second method): what an
//! extension declares it does (its routes' and job types' `cluster_actions`
//! on their `index_patterns`) against what the security configuration
//! allows now, evaluated by the real privilege evaluator
//! ([`crate::security::privileges`]), never by comparing strings:
//!
//! - **the service gate**: each declared action its policy role
//!   `extension:<id>` (as granted now: the operator may have narrowed or
//!   widened it) does not allow — every such call of the extension would be
//!   refused;
//! - **the user gate**, for routes: who may call a route (holds
//!   `extension:<id>/<segment>` through a role) but does not hold what the
//!   route then does on their behalf — such a caller is refused mid-request.
//!   Callers are found by role mapping (users, backend roles,
//!   `and_backend_roles`, exact hosts) and by internal users' direct roles;
//!   each is resolved to a subject the way the gateway and the scheduler do
//!   (`SecurityState::subject` over the principal an internal user or a JWT
//!   user would have), so every role the caller gets counts.
//! - **the user gate**, for job types: the extension's existing jobs that
//!   will run (enabled, not suspended) whose owner, resolved by the
//!   scheduler as a run resolves them ([`ScheduledJob`], passed in by the
//!   lifecycle: this module reads no job store), does not hold what a job
//!   type does — such runs are refused mid-run. A job records no type, so
//!   every job is checked against every job type the extension declares.
//!
//! Index patterns in a manifest are patterns, not indices: the evaluator
//! answers for concrete indices, so a pattern is checked on one
//! representative index, the pattern with each `*` and `?` replaced by
//! `x` (`logs-*` → `logs-x`). A role granting all of `logs-*` (or `*`)
//! allows it; a role granting only part (`logs-2024*`) does not, and the
//! report says the pattern lacks it — the route would be refused on some
//! of the indices it names. A `/regex/` or `${...}` pattern has no such
//! representative and is listed as not checked, as is an index action a
//! route declares without any index pattern.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::actions;
use super::manifest::Manifest;
use super::policy;
use crate::security::SecurityState;
use crate::security::config::SecurityConfig;
use crate::security::mapping::Principal;
use crate::security::pattern::Pattern;
use crate::security::privileges::{RoleSet, Subject};

/// Which policy the report checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    /// The policy role as it is in the security configuration now.
    Granted,
    /// A pending extension: the roles its approval would write.
    OnApproval,
}

/// The report for one extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub id: String,
    pub policy_role: String,
    pub policy_source: PolicySource,
    pub routes: Vec<RouteCheck>,
    pub jobs: Vec<JobCheck>,
}

/// One route: what its policy lacks, who may call it without holding what
/// it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteCheck {
    pub method: String,
    pub path: String,
    /// The extension permission a caller needs.
    pub permission: String,
    /// Declared actions the policy role does not allow.
    pub policy_lacks: Vec<Missing>,
    /// Callers allowed to call the route who lack what it does.
    pub callers_lacking: Vec<CallerGap>,
    /// What could not be checked, and why.
    pub not_checked: Vec<String>,
}

/// One job type: what its policy lacks, which existing jobs' owners lack
/// what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobCheck {
    pub name: String,
    pub policy_lacks: Vec<Missing>,
    /// Existing jobs whose owner does not hold what the job type does.
    pub owners_lacking: Vec<JobOwnerGap>,
    pub not_checked: Vec<String>,
}

/// An existing job whose owner, as a run resolves them now, lacks what a
/// job type does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobOwnerGap {
    pub job_id: String,
    pub job_name: String,
    pub owner: String,
    pub lacks: Vec<Missing>,
}

/// One of the extension's jobs that will run, with its owner resolved the
/// way a run resolves them (by the scheduler, `Scheduler::resolve_owner`):
/// the roles they hold now, in the configuration they were resolved in.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub state: Arc<SecurityState>,
    pub subject: Subject,
}

/// Actions not allowed: cluster-wide (no pattern) or on one index pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_pattern: Option<String>,
    /// The representative index the pattern was checked on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_on: Option<String>,
}

/// Callers who hold a route's permission through `role`, reached `via`, and
/// lack what the route does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerGap {
    pub role: String,
    pub via: Holder,
    pub lacks: Vec<Missing>,
}

/// How a role reaches its holders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Holder {
    /// `roles_mapping.<role>.users` (a name or a pattern).
    User(String),
    /// `roles_mapping.<role>.backend_roles`.
    BackendRole(String),
    /// `roles_mapping.<role>.and_backend_roles` (all of them).
    AndBackendRoles(Vec<String>),
    /// `roles_mapping.<role>.hosts` (an exact address).
    Host(String),
    /// An internal user holding the role directly (`opendistro_security_roles`).
    InternalUser(String),
}

impl CheckReport {
    /// Whether nothing is missing (things not checked aside).
    pub fn is_clean(&self) -> bool {
        self.routes.iter().all(|r| r.policy_lacks.is_empty() && r.callers_lacking.is_empty())
            && self.jobs.iter().all(|j| j.policy_lacks.is_empty() && j.owners_lacking.is_empty())
    }

    /// Adds, per job type of `manifest`, the existing `jobs` whose owner
    /// does not hold what the job type does (each evaluated in the
    /// configuration its owner was resolved in). When the jobs could not be
    /// read, each job type says so among what was not checked.
    pub fn with_jobs<E: fmt::Display>(
        mut self,
        manifest: &Manifest,
        jobs: Result<Vec<ScheduledJob>, E>,
    ) -> CheckReport {
        let jobs = match jobs {
            Ok(jobs) => jobs,
            Err(e) => {
                for check in &mut self.jobs {
                    check.not_checked.push(format!("the owners of existing jobs: {e}"));
                }
                return self;
            }
        };
        for (check, job_type) in self.jobs.iter_mut().zip(&manifest.jobs) {
            for job in &jobs {
                let (performs, _) =
                    performed(&job.state, &job_type.cluster_actions, &job_type.index_patterns);
                let lacking = lacks(&job.state, &job.subject, &performs);
                if !lacking.is_empty() {
                    check.owners_lacking.push(JobOwnerGap {
                        job_id: job.id.clone(),
                        job_name: job.name.clone(),
                        owner: job.owner.clone(),
                        lacks: lacking,
                    });
                }
            }
        }
        self
    }
}

/// One check the route or job implies: an action, cluster-wide or on one
/// index pattern's representative.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Performed {
    action: String,
    on: Option<(String, String)>,
}

/// The report of `manifest` against `state`, the policy role as it is there.
pub fn report(manifest: &Manifest, state: &SecurityState) -> CheckReport {
    report_with(manifest, state, PolicySource::Granted)
}

/// The report of a pending `manifest`: against `config` with the roles its
/// approval would write ([`policy::roles_of`]) in place.
pub fn report_on_approval(manifest: &Manifest, config: &SecurityConfig) -> CheckReport {
    let mut config = config.clone();
    config.roles.extend(policy::roles_of(manifest));
    let state = SecurityState::compile(config);
    report_with(manifest, &state, PolicySource::OnApproval)
}

fn report_with(manifest: &Manifest, state: &SecurityState, source: PolicySource) -> CheckReport {
    let service = state.privileges.extension_policy(&manifest.id);
    let routes = manifest
        .routes
        .iter()
        .map(|route| {
            let (performs, not_checked) = performed(state, &route.cluster_actions, &route.index_patterns);
            RouteCheck {
                method: route.method.clone(),
                path: route.path.clone(),
                permission: route.permission.clone(),
                policy_lacks: lacks(state, &service, &performs),
                callers_lacking: callers_lacking(state, &route.permission, &performs),
                not_checked,
            }
        })
        .collect();
    let jobs = manifest
        .jobs
        .iter()
        .map(|job| {
            let (performs, not_checked) = performed(state, &job.cluster_actions, &job.index_patterns);
            JobCheck {
                name: job.name.clone(),
                policy_lacks: lacks(state, &service, &performs),
                owners_lacking: Vec::new(),
                not_checked,
            }
        })
        .collect();
    CheckReport {
        id: manifest.id.clone(),
        policy_role: policy::policy_role_name(&manifest.id),
        policy_source: source,
        routes,
        jobs,
    }
}

/// The index a pattern is checked on: `*` and `?` become `x`; `None` for a
/// `/regex/` or a `${...}` template, which have no such representative.
pub fn representative_index(pattern: &str) -> Option<String> {
    if Pattern::is_regex_source(pattern) || pattern.contains("${") {
        return None;
    }
    let index = pattern.replace(['*', '?'], "x");
    // The glob must match its own representative; it always does, this
    // only guards a pattern syntax this function does not know.
    Pattern::parse(pattern).ok().filter(|p| p.matches(&index)).map(|_| index)
}

/// The concrete checks `declared` actions on `patterns` imply, and what
/// cannot be checked. Action groups are expanded (the configuration's and
/// the built-in ones), action patterns become the known actions they match.
fn performed(
    state: &SecurityState,
    declared: &[String],
    patterns: &[String],
) -> (Vec<Performed>, Vec<String>) {
    let concrete = actions::concrete(declared, &state.config.action_groups);
    let mut performs = BTreeSet::new();
    let mut not_checked = Vec::new();
    let representatives: Vec<(String, String)> = patterns
        .iter()
        .filter_map(|p| match representative_index(p) {
            Some(index) => Some((p.clone(), index)),
            None => {
                not_checked.push(format!(
                    "index pattern `{p}`: a regex or template has no representative index to check on"
                ));
                None
            }
        })
        .collect();
    let mut index_actions_without_pattern = Vec::new();
    for action in concrete {
        if action.starts_with("indices:") {
            if patterns.is_empty() {
                index_actions_without_pattern.push(action);
                continue;
            }
            for (pattern, index) in &representatives {
                performs
                    .insert(Performed { action: action.clone(), on: Some((pattern.clone(), index.clone())) });
            }
        } else {
            performs.insert(Performed { action, on: None });
        }
    }
    if !index_actions_without_pattern.is_empty() {
        not_checked.push(format!(
            "{}: index actions with no index pattern declared",
            index_actions_without_pattern.join(", ")
        ));
    }
    (performs.into_iter().collect(), not_checked)
}

/// What of `performs` `subject` is not allowed, grouped by index pattern
/// (cluster-wide actions first).
fn lacks(state: &SecurityState, subject: &Subject, performs: &[Performed]) -> Vec<Missing> {
    let mut missing: Vec<Missing> = Vec::new();
    for p in performs {
        let allowed = match &p.on {
            None => state.privileges.check_cluster(subject, &p.action).is_ok(),
            Some((_, index)) => state.privileges.check_indices(subject, &p.action, [index.as_str()]).is_ok(),
        };
        if allowed {
            continue;
        }
        let pattern = p.on.as_ref().map(|(pattern, _)| pattern.clone());
        match missing.iter_mut().find(|m| m.index_pattern == pattern) {
            Some(m) => m.actions.push(p.action.clone()),
            None => missing.push(Missing {
                actions: vec![p.action.clone()],
                index_pattern: pattern,
                checked_on: p.on.as_ref().map(|(_, index)| index.clone()),
            }),
        }
    }
    missing.sort_by(|a, b| a.index_pattern.cmp(&b.index_pattern));
    missing
}

/// Every holder of a role that grants `permission`, resolved to its subject
/// as the gateway would, that lacks something of `performs`.
fn callers_lacking(state: &SecurityState, permission: &str, performs: &[Performed]) -> Vec<CallerGap> {
    let mut gaps = Vec::new();
    for role in state.config.roles.keys() {
        let Some(id) = state.privileges.role_id(role) else { continue };
        let mut only = RoleSet::default();
        only.insert(id);
        let alone = Subject { name: role.clone(), roles: only, attributes: Default::default() };
        if state.privileges.check_extension(&alone, permission).is_err() {
            continue;
        }
        for (via, subject) in holders(state, role) {
            // A role mapping by host pattern or a disabled user's direct
            // role gives nobody the route: only real callers count.
            if state.privileges.check_extension(&subject, permission).is_err() {
                continue;
            }
            let lacking = lacks(state, &subject, performs);
            if !lacking.is_empty() {
                gaps.push(CallerGap { role: role.clone(), via, lacks: lacking });
            }
        }
    }
    gaps
}

/// Who holds `role`, each with the subject a caller reached that way would
/// have (the least such a caller has: a user mapped by backend role is
/// checked with that backend role alone).
fn holders(state: &SecurityState, role: &str) -> Vec<(Holder, Subject)> {
    let config = &state.config;
    let mut out = Vec::new();
    let subject = |principal: Principal, host: Option<IpAddr>| state.subject(&principal, host);
    let named = |name: &str| Principal {
        name: name.to_owned(),
        attributes: [("user_name".to_owned(), name.to_owned())].into(),
        ..Principal::default()
    };
    if let Some(mapping) = config.roles_mapping.get(role) {
        for user in &mapping.users {
            match config.internal_users.get(user) {
                Some(record) if record.disabled => {}
                Some(record) => out.push((
                    Holder::User(user.clone()),
                    subject(crate::security::internal_principal(user, record), None),
                )),
                // A pattern, or a user of an external authenticator (JWT).
                None => {
                    let name = representative_index(user).unwrap_or_else(|| user.clone());
                    out.push((Holder::User(user.clone()), subject(named(&name), None)));
                }
            }
        }
        for backend in &mapping.backend_roles {
            let principal = Principal {
                backend_roles: vec![representative_index(backend).unwrap_or_else(|| backend.clone())],
                ..Principal::default()
            };
            out.push((Holder::BackendRole(backend.clone()), subject(principal, None)));
        }
        if !mapping.and_backend_roles.is_empty() {
            let principal = Principal {
                backend_roles: mapping
                    .and_backend_roles
                    .iter()
                    .map(|b| representative_index(b).unwrap_or_else(|| b.clone()))
                    .collect(),
                ..Principal::default()
            };
            out.push((Holder::AndBackendRoles(mapping.and_backend_roles.clone()), subject(principal, None)));
        }
        for host in &mapping.hosts {
            if let Ok(address) = host.parse::<IpAddr>() {
                out.push((Holder::Host(host.clone()), subject(Principal::default(), Some(address))));
            }
        }
    }
    for (user, record) in &config.internal_users {
        if !record.disabled && record.opendistro_security_roles.iter().any(|r| r == role) {
            out.push((
                Holder::InternalUser(user.clone()),
                subject(crate::security::internal_principal(user, record), None),
            ));
        }
    }
    out
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::User(u) => write!(f, "mapped to user `{u}`"),
            Holder::BackendRole(b) => write!(f, "mapped to backend role `{b}`"),
            Holder::AndBackendRoles(all) => {
                write!(f, "mapped to backend roles `{}` together", all.join("`, `"))
            }
            Holder::Host(h) => write!(f, "mapped to host `{h}`"),
            Holder::InternalUser(u) => write!(f, "held directly by internal user `{u}`"),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.actions.join(", "))?;
        match (&self.index_pattern, &self.checked_on) {
            (Some(pattern), Some(index)) => write!(f, " on `{pattern}` (checked on index `{index}`)"),
            _ => write!(f, " (cluster-wide)"),
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = match self.policy_source {
            PolicySource::Granted => format!("its policy role `{}` as granted now", self.policy_role),
            PolicySource::OnApproval => {
                format!("its policy role `{}` as approval would write it (pending)", self.policy_role)
            }
        };
        writeln!(f, "Permission check of extension `{}`, against {policy}:", self.id)?;
        if self.routes.is_empty() && self.jobs.is_empty() {
            writeln!(f, "  it declares no route and no job type: nothing to check")?;
        }
        for route in &self.routes {
            writeln!(f, "\nRoute {} {} (callers need `{}`):", route.method, route.path, route.permission)?;
            for m in &route.policy_lacks {
                writeln!(f, "  the policy does not allow {m}: the extension is refused it on every call")?;
            }
            for gap in &route.callers_lacking {
                writeln!(f, "  role `{}` ({}) may call the route but lacks:", gap.role, gap.via)?;
                for m in &gap.lacks {
                    writeln!(f, "    {m}: such a caller is refused mid-request")?;
                }
            }
            write_not_checked(f, &route.not_checked)?;
            if route.policy_lacks.is_empty() && route.callers_lacking.is_empty() {
                writeln!(f, "  nothing missing")?;
            }
        }
        for job in &self.jobs {
            writeln!(f, "\nJob type {}:", job.name)?;
            for m in &job.policy_lacks {
                writeln!(f, "  the policy does not allow {m}: the job is refused it on every run")?;
            }
            for gap in &job.owners_lacking {
                writeln!(f, "  job `{}` ({}) of user `{}` lacks:", gap.job_id, gap.job_name, gap.owner)?;
                for m in &gap.lacks {
                    writeln!(f, "    {m}: its runs are refused it mid-run")?;
                }
            }
            write_not_checked(f, &job.not_checked)?;
            if job.policy_lacks.is_empty() && job.owners_lacking.is_empty() {
                writeln!(f, "  nothing missing")?;
            }
        }
        if self.is_clean() {
            writeln!(f, "\nNothing the extension declares is missing.")?;
        }
        Ok(())
    }
}

fn write_not_checked(f: &mut fmt::Formatter<'_>, list: &[String]) -> fmt::Result {
    for reason in list {
        writeln!(f, "  not checked: {reason}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::security::config::{IndexPermission, Role, RoleMapping};

    const MANIFEST: &str = r#"
id = "sales"
version = "1.0.0"
component = "sales.wasm"
capabilities = ["cluster"]

[policy]
cluster_permissions = ["cluster:monitor/health"]

[[policy.index_permissions]]
index_patterns = ["sales-*"]
allowed_actions = ["indices:data/read/search"]

[[routes]]
method = "GET"
path = "/search"
cluster_actions = ["indices:data/read/search"]
index_patterns = ["sales-*"]

[[routes]]
method = "POST"
path = "/record"
cluster_actions = ["indices:data/write/index", "cluster:monitor/health"]
index_patterns = ["sales-*"]

[[jobs]]
name = "rollup"
cluster_actions = ["read"]
index_patterns = ["sales-*", "/sales-[0-9]+/"]
"#;

    fn manifest() -> Manifest {
        let dir = Path::new("sales");
        match Manifest::parse(MANIFEST, dir, &dir.join("extension.toml")) {
            Ok(m) => m,
            Err(e) => panic!("test manifest: {e}"),
        }
    }

    fn base() -> SecurityConfig {
        match SecurityConfig::default().with_static() {
            Ok(c) => c,
            Err(e) => panic!("static config: {e}"),
        }
    }

    fn role(extension: &[&str], patterns: &[&str], actions: &[&str]) -> Role {
        Role {
            extension_permissions: extension.iter().map(|s| (*s).to_owned()).collect(),
            index_permissions: if patterns.is_empty() {
                Vec::new()
            } else {
                vec![IndexPermission {
                    index_patterns: patterns.iter().map(|s| (*s).to_owned()).collect(),
                    allowed_actions: actions.iter().map(|s| (*s).to_owned()).collect(),
                    ..IndexPermission::default()
                }]
            },
            ..Role::default()
        }
    }

    fn route<'a>(report: &'a CheckReport, path: &str) -> &'a RouteCheck {
        match report.routes.iter().find(|r| r.path == path) {
            Some(r) => r,
            None => panic!("no route {path} in {report:?}"),
        }
    }

    #[test]
    fn a_declared_action_the_policy_lacks_is_listed_and_one_it_has_is_not() {
        let report = report_on_approval(&manifest(), &base());
        assert_eq!(report.policy_source, PolicySource::OnApproval);
        let search = route(&report, "/search");
        assert!(search.policy_lacks.is_empty(), "{search:?}");
        let record = route(&report, "/record");
        assert_eq!(
            record.policy_lacks,
            [Missing {
                actions: vec!["indices:data/write/index".into()],
                index_pattern: Some("sales-*".into()),
                checked_on: Some("sales-x".into()),
            }],
            "the health action is allowed, the write is not"
        );
        assert!(!report.is_clean());
        let text = report.to_string();
        assert!(
            text.contains(
                "the policy does not allow indices:data/write/index on `sales-*` (checked on index `sales-x`)"
            ),
            "{text}"
        );
    }

    #[test]
    fn groups_expand_and_a_regex_pattern_is_said_not_checked() {
        let report = report_on_approval(&manifest(), &base());
        let job = &report.jobs[0];
        // `read` holds more than search: the policy allows search alone.
        assert_eq!(job.policy_lacks.len(), 1, "{job:?}");
        assert!(job.policy_lacks[0].actions.contains(&"indices:data/read/get".to_owned()), "{job:?}");
        assert!(!job.policy_lacks[0].actions.contains(&"indices:data/read/search".to_owned()));
        assert!(job.not_checked.iter().any(|r| r.contains("/sales-[0-9]+/")), "{job:?}");
    }

    #[test]
    fn the_granted_policy_is_the_one_in_the_configuration_now() {
        let m = manifest();
        let mut config = base();
        config.roles.extend(policy::roles_of(&m));
        // The operator widened the policy role by hand.
        config.roles.insert(
            policy::policy_role_name("sales"),
            Role {
                cluster_permissions: vec!["cluster:monitor/health".into()],
                ..role(&[], &["sales-*"], &["indices:data/read/search", "indices:data/write/index"])
            },
        );
        let report = report(&m, &SecurityState::compile(config.clone()));
        assert_eq!(report.policy_source, PolicySource::Granted);
        assert!(route(&report, "/record").policy_lacks.is_empty(), "{report:?}");
        // Narrowed to a part of the pattern: the pattern as a whole lacks it.
        config.roles.insert(
            policy::policy_role_name("sales"),
            role(&[], &["sales-2024*"], &["indices:data/read/search"]),
        );
        let report = super::report(&m, &SecurityState::compile(config));
        assert_eq!(route(&report, "/search").policy_lacks.len(), 1, "{report:?}");
    }

    #[test]
    fn a_role_mapping_that_grants_the_route_but_not_its_index_access_is_named() {
        let m = manifest();
        let mut config = base();
        // Callers of /search: `searchers` (route only) mapped to a backend
        // role; `analysts` (route and read on sales-*) mapped to a user.
        config.roles.insert("searchers".into(), role(&["extension:sales/search"], &[], &[]));
        config.roles.insert(
            "analysts".into(),
            role(&["extension:sales/search"], &["sales-*"], &["indices:data/read/search"]),
        );
        config.roles_mapping.insert(
            "searchers".into(),
            RoleMapping { backend_roles: vec!["sales-team".into()], ..RoleMapping::default() },
        );
        config
            .roles_mapping
            .insert("analysts".into(), RoleMapping { users: vec!["ann".into()], ..RoleMapping::default() });
        let report = report_on_approval(&m, &config);
        let search = route(&report, "/search");
        assert_eq!(search.callers_lacking.len(), 1, "{search:?}");
        let gap = &search.callers_lacking[0];
        assert_eq!(gap.role, "searchers");
        assert_eq!(gap.via, Holder::BackendRole("sales-team".into()));
        assert_eq!(gap.lacks[0].actions, ["indices:data/read/search"]);
        let text = report.to_string();
        assert!(
            text.contains(
                "role `searchers` (mapped to backend role `sales-team`) may call the route but lacks:"
            ),
            "{text}"
        );
        // `ann` is not named: she holds what the route does.
        assert!(!text.contains("ann"), "{text}");
        // /record: nobody may call it, so no caller lacks anything.
        assert!(route(&report, "/record").callers_lacking.is_empty());
    }

    #[test]
    fn a_caller_is_checked_with_every_role_they_get() {
        let m = manifest();
        let mut config = base();
        config.roles.insert("searchers".into(), role(&["extension:sales/search"], &[], &[]));
        config.roles.insert("readers".into(), role(&[], &["sales-*"], &["read"]));
        config
            .roles_mapping
            .insert("searchers".into(), RoleMapping { users: vec!["bob".into()], ..RoleMapping::default() });
        // bob's other role (through a backend role as an internal user)
        // gives the index access: bob lacks nothing.
        config.roles_mapping.insert(
            "readers".into(),
            RoleMapping { backend_roles: vec!["ro".into()], ..RoleMapping::default() },
        );
        config.internal_users.insert(
            "bob".into(),
            crate::security::config::InternalUser { backend_roles: vec!["ro".into()], ..Default::default() },
        );
        let report = report_on_approval(&m, &config);
        assert!(route(&report, "/search").callers_lacking.is_empty(), "{report:?}");
        // Without the backend role, bob (by user name) lacks the read.
        if let Some(bob) = config.internal_users.get_mut("bob") {
            bob.backend_roles.clear();
        }
        let report = report_on_approval(&m, &config);
        let gaps = &route(&report, "/search").callers_lacking;
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].via, Holder::User("bob".into()));
        // Disabled, bob calls nothing: not listed.
        if let Some(bob) = config.internal_users.get_mut("bob") {
            bob.disabled = true;
        }
        let report = report_on_approval(&m, &config);
        assert!(route(&report, "/search").callers_lacking.is_empty(), "{report:?}");
    }

    /// An existing job whose owner (resolved as a run resolves them) does
    /// not hold what the job type does is named with its id, its owner and
    /// the missing action; one whose owner holds it is not.
    #[test]
    fn a_job_whose_owner_lacks_what_its_type_does_is_named() {
        let m = manifest();
        let mut config = base();
        config.roles.extend(policy::roles_of(&m));
        config.roles.insert("readers".into(), role(&[], &["sales-*"], &["read"]));
        config.roles.insert("searchers".into(), role(&[], &["sales-*"], &["indices:data/read/search"]));
        for (user, role) in [("ann", "readers"), ("bob", "searchers")] {
            config.internal_users.insert(user.into(), crate::security::config::InternalUser::default());
            config
                .roles_mapping
                .insert(role.into(), RoleMapping { users: vec![user.into()], ..RoleMapping::default() });
        }
        let state = Arc::new(SecurityState::compile(config));
        let job = |id: &str, owner: &str| {
            let record = &state.config.internal_users[owner];
            ScheduledJob {
                id: id.into(),
                name: format!("{owner}-nightly"),
                owner: owner.into(),
                state: state.clone(),
                subject: state.subject(&crate::security::internal_principal(owner, record), None),
            }
        };
        let jobs = vec![job("j-ann", "ann"), job("j-bob", "bob")];
        let report = report(&m, &state).with_jobs(&m, Ok::<_, String>(jobs));
        let rollup = &report.jobs[0];
        // `rollup` does `read` on sales-*: ann holds it, bob only searches.
        assert_eq!(rollup.owners_lacking.len(), 1, "{rollup:?}");
        let gap = &rollup.owners_lacking[0];
        assert_eq!((gap.job_id.as_str(), gap.owner.as_str()), ("j-bob", "bob"));
        assert_eq!(gap.lacks[0].index_pattern.as_deref(), Some("sales-*"));
        assert!(gap.lacks[0].actions.contains(&"indices:data/read/get".to_owned()), "{gap:?}");
        assert!(!gap.lacks[0].actions.contains(&"indices:data/read/search".to_owned()), "{gap:?}");
        assert!(!report.is_clean());
        let text = report.to_string();
        assert!(text.contains("job `j-bob` (bob-nightly) of user `bob` lacks:"), "{text}");
        assert!(!text.contains("j-ann"), "{text}");
        // Jobs that could not be read: said, not silently clean.
        let unread = super::report(&m, &state).with_jobs(&m, Err::<Vec<ScheduledJob>, _>("store down"));
        assert!(unread.jobs[0].not_checked.iter().any(|r| r.contains("store down")), "{unread:?}");
    }

    #[test]
    fn representative_indices() {
        assert_eq!(representative_index("logs-*").as_deref(), Some("logs-x"));
        assert_eq!(representative_index("a?c").as_deref(), Some("axc"));
        assert_eq!(representative_index("exact").as_deref(), Some("exact"));
        assert_eq!(representative_index("/logs-.*/"), None);
        assert_eq!(representative_index("logs-${user_name}"), None);
    }
}
