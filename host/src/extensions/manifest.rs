//! `extension.toml`: what an extension declares about itself — its id,
//! name, version, description, component file, the capabilities it asks
//! for, optional resource limits, and what it would do with them: its
//! **policy** (the starting permissions of its service gate, in OpenSearch's
//! role shapes), the **predefined roles** it registers for its users, its
//! **routes** (each with the permission a caller needs and what the route
//! performs on the caller's behalf) and its **job types**.
//!
//! Validated precisely: every error names the file, the key path
//! (`routes[2].path`) and what is wrong.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::actions;
use crate::capability::Capability;
use crate::security::config::EXTENSION_POLICY_PREFIX;
use crate::security::pattern::Pattern;
use crate::security::permissions::{consent_permission, route_permission};

/// The file every extension directory must hold.
pub const MANIFEST_FILE: &str = "extension.toml";

/// A parsed and validated `extension.toml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub id: String,
    /// A human name; the id when unset.
    pub name: Option<String>,
    pub version: String,
    pub description: Option<String>,
    /// Absolute path of the component file.
    pub component: PathBuf,
    pub capabilities: BTreeSet<Capability>,
    pub limits: LimitOverrides,
    /// The starting permissions of the policy role `extension:<id>`.
    pub policy: Policy,
    /// Roles the extension registers for its users (`<id>_...`).
    pub roles: Vec<PredefinedRole>,
    pub routes: Vec<Route>,
    pub jobs: Vec<JobType>,
}

/// Per-extension limits; anything unset takes the host's default.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    pub memory_mib: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_concurrency: Option<u32>,
    pub queue_timeout_ms: Option<u64>,
    /// Disk quota of the `files` directory (all of it, not per file).
    pub files_mib: Option<u64>,
}

/// `[policy]`: what the extension's service gate allows, in OpenSearch's
/// role shapes (actions, action groups, index patterns).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub cluster_permissions: Vec<String>,
    #[serde(default)]
    pub index_permissions: Vec<IndexPermission>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.cluster_permissions.is_empty() && self.index_permissions.is_empty()
    }
}

/// One `index_permissions` entry (no DLS/FLS: an extension's policy is
/// about which indices and actions, nothing finer).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IndexPermission {
    #[serde(default)]
    pub index_patterns: Vec<String>,
    #[serde(default)]
    pub allowed_actions: Vec<String>,
}

/// `[[roles]]`: a role the extension registers for its users.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PredefinedRole {
    /// `<id>_...`, e.g. `reporter_read_only`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `extension:<id>/<route>` (or `extension:<id>/*`) and `schedule:<id>`:
    /// this extension's own permissions only.
    #[serde(default)]
    pub extension_permissions: Vec<String>,
    #[serde(default)]
    pub cluster_permissions: Vec<String>,
    #[serde(default)]
    pub index_permissions: Vec<IndexPermission>,
}

/// `[[routes]]`: one route the extension serves under `/_extensions/<id>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Upper-case HTTP method.
    pub method: String,
    /// A template: `/summaries/{name}/reports`.
    pub path: String,
    /// The permission a caller needs: always `extension:<id>/<first
    /// segment>`, the one the route gate checks (computed when unset).
    #[serde(default)]
    pub permission: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the route does on the caller's behalf (actions or groups).
    #[serde(default)]
    pub cluster_actions: Vec<String>,
    /// On which indices.
    #[serde(default)]
    pub index_patterns: Vec<String>,
}

/// `[[jobs]]`: one kind of background job the extension runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct JobType {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub cluster_actions: Vec<String>,
    #[serde(default)]
    pub index_patterns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    id: String,
    #[serde(default)]
    name: Option<String>,
    version: String,
    #[serde(default)]
    description: Option<String>,
    component: String,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    limits: LimitOverrides,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    roles: Vec<PredefinedRole>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    jobs: Vec<JobType>,
}

/// Why an `extension.toml` was refused. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid manifest: {message}")]
    Syntax { path: PathBuf, message: String },
    /// `field` is the key path: `id`, `limits`, `routes[2].path`.
    #[error("{path}: invalid {field}: {message}")]
    Field { path: PathBuf, field: String, message: String },
}

impl crate::error::HasKind for ManifestError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            ManifestError::Read { .. } => crate::error::ErrorKind::NotFound,
            ManifestError::Syntax { .. } | ManifestError::Field { .. } => crate::error::ErrorKind::Invalid,
        }
    }
}

/// The keys each table may hold, for errors that name the key path (serde
/// names an unknown field, not where it is).
const TOP_KEYS: &[&str] = &[
    "id",
    "name",
    "version",
    "description",
    "component",
    "capabilities",
    "limits",
    "policy",
    "roles",
    "routes",
    "jobs",
];
const LIMIT_KEYS: &[&str] =
    &["memory_mib", "cpu_ms", "timeout_ms", "max_concurrency", "queue_timeout_ms", "files_mib"];
const POLICY_KEYS: &[&str] = &["cluster_permissions", "index_permissions"];
const INDEX_PERMISSION_KEYS: &[&str] = &["index_patterns", "allowed_actions"];
const ROLE_KEYS: &[&str] =
    &["name", "description", "extension_permissions", "cluster_permissions", "index_permissions"];
const ROUTE_KEYS: &[&str] =
    &["method", "path", "permission", "description", "cluster_actions", "index_patterns"];
const JOB_KEYS: &[&str] = &["name", "description", "cluster_actions", "index_patterns"];

/// Methods a route may declare.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// The first unknown key, as a key path, with the keys allowed there.
fn unknown_key(root: &toml::Table) -> Option<(String, &'static [&'static str])> {
    fn check(
        table: &toml::Table,
        at: &str,
        allowed: &'static [&'static str],
    ) -> Option<(String, &'static [&'static str])> {
        table.keys().find(|k| !allowed.contains(&k.as_str())).map(|k| (format!("{at}{k}"), allowed))
    }
    fn each(value: Option<&toml::Value>) -> impl Iterator<Item = (usize, &toml::Table)> {
        value
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, v)| Some((i, v.as_table()?)))
    }
    fn index_permissions(table: &toml::Table, at: &str) -> Option<(String, &'static [&'static str])> {
        each(table.get("index_permissions"))
            .find_map(|(i, t)| check(t, &format!("{at}index_permissions[{i}]."), INDEX_PERMISSION_KEYS))
    }
    check(root, "", TOP_KEYS)
        .or_else(|| {
            root.get("limits").and_then(toml::Value::as_table).and_then(|t| check(t, "limits.", LIMIT_KEYS))
        })
        .or_else(|| {
            let policy = root.get("policy").and_then(toml::Value::as_table)?;
            check(policy, "policy.", POLICY_KEYS).or_else(|| index_permissions(policy, "policy."))
        })
        .or_else(|| {
            each(root.get("roles")).find_map(|(i, t)| {
                let at = format!("roles[{i}].");
                check(t, &at, ROLE_KEYS).or_else(|| index_permissions(t, &at))
            })
        })
        .or_else(|| {
            each(root.get("routes")).find_map(|(i, t)| check(t, &format!("routes[{i}]."), ROUTE_KEYS))
        })
        .or_else(|| each(root.get("jobs")).find_map(|(i, t)| check(t, &format!("jobs[{i}]."), JOB_KEYS)))
}

impl Manifest {
    /// Reads `<dir>/extension.toml`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ManifestError::Read { path: path.clone(), source })?;
        Manifest::parse(&text, dir, &path)
    }

    /// The name to show: `name`, else the id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// The policy role's name: `extension:<id>`.
    pub fn policy_role(&self) -> String {
        format!("{EXTENSION_POLICY_PREFIX}{}", self.id)
    }

    /// Parses manifest text; `dir` resolves the component path, `path` names
    /// the file in errors.
    pub fn parse(text: &str, dir: &Path, path: &Path) -> Result<Manifest, ManifestError> {
        let syntax = |e: toml::de::Error| {
            let line = e.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let message = match line {
                Some(line) => format!("{} (line {line})", e.message()),
                None => e.message().to_owned(),
            };
            ManifestError::Syntax { path: path.to_owned(), message }
        };
        let field = |field: &str, message: String| ManifestError::Field {
            path: path.to_owned(),
            field: field.to_owned(),
            message,
        };
        let table: toml::Table = toml::from_str(text).map_err(syntax)?;
        if let Some((key, allowed)) = unknown_key(&table) {
            let name = key.rsplit('.').next().unwrap_or(&key);
            return Err(field(
                &key,
                format!("unknown field `{name}`, expected one of: {}", allowed.join(", ")),
            ));
        }
        let raw: RawManifest = toml::from_str(text).map_err(syntax)?;

        validate_id(&raw.id).map_err(|m| field("id", m))?;
        if raw.version.trim().is_empty() {
            return Err(field("version", "must not be empty".into()));
        }
        for (key, value) in [("name", &raw.name), ("description", &raw.description)] {
            if value
                .as_deref()
                .is_some_and(|v| v.trim().is_empty() || v.chars().any(|c| c.is_control() && c != '\n'))
            {
                return Err(field(key, "must be non-empty text without control characters".into()));
            }
        }
        let component = Path::new(&raw.component);
        if raw.component.is_empty()
            || component.is_absolute()
            || component.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(field(
                "component",
                format!("`{}` must be a file name inside the extension directory", raw.component),
            ));
        }
        let mut capabilities = BTreeSet::new();
        for (i, name) in raw.capabilities.iter().enumerate() {
            let capability: Capability =
                name.parse().map_err(|e: crate::capability::UnknownCapability| {
                    field(&format!("capabilities[{i}]"), e.to_string())
                })?;
            capabilities.insert(capability);
        }
        let limits = raw.limits;
        for (name, value) in [
            ("limits.memory_mib", limits.memory_mib),
            ("limits.cpu_ms", limits.cpu_ms),
            ("limits.timeout_ms", limits.timeout_ms),
            ("limits.queue_timeout_ms", limits.queue_timeout_ms),
            ("limits.files_mib", limits.files_mib),
            ("limits.max_concurrency", limits.max_concurrency.map(u64::from)),
        ] {
            if value == Some(0) {
                return Err(field(name, format!("{name} must be greater than 0")));
            }
        }

        let id = raw.id;
        permissions(&raw.policy.cluster_permissions, "policy.cluster_permissions")
            .map_err(|(k, m)| field(&k, m))?;
        index_permissions(&raw.policy.index_permissions, "policy.index_permissions")
            .map_err(|(k, m)| field(&k, m))?;

        let mut routes = raw.routes;
        let mut seen_routes = BTreeSet::new();
        for (i, route) in routes.iter_mut().enumerate() {
            let at = |key: &str| format!("routes[{i}].{key}");
            let method = route.method.to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                return Err(field(
                    &at("method"),
                    format!("`{}` is not one of {}", route.method, METHODS.join(", ")),
                ));
            }
            route.method = method;
            validate_template(&route.path).map_err(|m| field(&at("path"), m))?;
            let required = route_permission(&id, &route.path);
            if route.permission.is_empty() {
                route.permission = required;
            } else if route.permission != required {
                return Err(field(
                    &at("permission"),
                    format!(
                        "`{}`: the route gate checks `{required}` for this path (extension:<id>/<first segment>); leave it out or write that",
                        route.permission
                    ),
                ));
            }
            if !seen_routes.insert((route.method.clone(), route.path.clone())) {
                return Err(field(&at("path"), format!("{} {} is declared twice", route.method, route.path)));
            }
            permissions(&route.cluster_actions, &at("cluster_actions")).map_err(|(k, m)| field(&k, m))?;
            patterns(&route.index_patterns, &at("index_patterns")).map_err(|(k, m)| field(&k, m))?;
        }

        let route_permissions: BTreeSet<&str> = routes.iter().map(|r| r.permission.as_str()).collect();
        let mut seen_roles = BTreeSet::new();
        for (i, role) in raw.roles.iter().enumerate() {
            let at = |key: &str| format!("roles[{i}].{key}");
            validate_role_name(&id, &role.name).map_err(|m| field(&at("name"), m))?;
            if !seen_roles.insert(role.name.as_str()) {
                return Err(field(&at("name"), format!("`{}` is declared twice", role.name)));
            }
            let own_all = format!("extension:{id}/*");
            let consent = consent_permission(&id);
            for (j, permission) in role.extension_permissions.iter().enumerate() {
                let own = *permission == own_all
                    || *permission == consent
                    || route_permissions.contains(permission.as_str());
                if !own {
                    return Err(field(
                        &format!("roles[{i}].extension_permissions[{j}]"),
                        format!(
                            "`{permission}` is not one of this extension's own permissions ({})",
                            route_permissions
                                .iter()
                                .copied()
                                .chain([own_all.as_str(), consent.as_str()])
                                .collect::<BTreeSet<_>>()
                                .into_iter()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            permissions(&role.cluster_permissions, &at("cluster_permissions"))
                .map_err(|(k, m)| field(&k, m))?;
            index_permissions(&role.index_permissions, &at("index_permissions"))
                .map_err(|(k, m)| field(&k, m))?;
        }

        let mut seen_jobs = BTreeSet::new();
        for (i, job) in raw.jobs.iter().enumerate() {
            let at = |key: &str| format!("jobs[{i}].{key}");
            validate_job_name(&job.name).map_err(|m| field(&at("name"), m))?;
            if !seen_jobs.insert(job.name.as_str()) {
                return Err(field(&at("name"), format!("`{}` is declared twice", job.name)));
            }
            permissions(&job.cluster_actions, &at("cluster_actions")).map_err(|(k, m)| field(&k, m))?;
            patterns(&job.index_patterns, &at("index_patterns")).map_err(|(k, m)| field(&k, m))?;
        }

        Ok(Manifest {
            id,
            name: raw.name,
            version: raw.version,
            description: raw.description,
            component: dir.join(component),
            capabilities,
            limits,
            policy: raw.policy,
            roles: raw.roles,
            routes,
            jobs: raw.jobs,
        })
    }
}

/// A key path and what is wrong there.
type KeyError = (String, String);

/// Each entry a known action, group, or a pattern matching one.
fn permissions(list: &[String], at: &str) -> Result<(), KeyError> {
    for (i, permission) in list.iter().enumerate() {
        actions::check_permission(permission).map_err(|m| (format!("{at}[{i}]"), m))?;
    }
    Ok(())
}

/// Each entry a pattern that parses (exact, `prefix*`, glob, `/regex/`).
fn patterns(list: &[String], at: &str) -> Result<(), KeyError> {
    for (i, pattern) in list.iter().enumerate() {
        if pattern.is_empty() {
            return Err((format!("{at}[{i}]"), "an empty index pattern matches nothing".into()));
        }
        Pattern::parse(pattern).map_err(|e| (format!("{at}[{i}]"), e.to_string()))?;
    }
    Ok(())
}

fn index_permissions(list: &[IndexPermission], at: &str) -> Result<(), KeyError> {
    for (i, permission) in list.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if permission.index_patterns.is_empty() {
            return Err((format!("{at}.index_patterns"), "must name at least one index pattern".into()));
        }
        if permission.allowed_actions.is_empty() {
            return Err((format!("{at}.allowed_actions"), "must name at least one action".into()));
        }
        patterns(&permission.index_patterns, &format!("{at}.index_patterns"))?;
        permissions(&permission.allowed_actions, &format!("{at}.allowed_actions"))?;
    }
    Ok(())
}

/// A route template: `/`, or `/`-separated segments, each a literal
/// (letters, digits, `-`, `_`, `.`, `~`; never `.` or `..`) or a `{name}`
/// parameter; the first segment is literal, since it names the permission
/// the route gate checks.
fn validate_template(template: &str) -> Result<(), String> {
    let Some(rest) = template.strip_prefix('/') else {
        return Err(format!("`{template}` must start with `/`"));
    };
    if rest.is_empty() {
        return Ok(());
    }
    let mut names = BTreeSet::new();
    for (i, segment) in rest.split('/').enumerate() {
        if segment.is_empty() {
            return Err(format!("`{template}` has an empty segment"));
        }
        if segment == "." || segment == ".." {
            return Err(format!("`{template}`: `{segment}` is not a segment"));
        }
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if i == 0 {
                return Err(format!(
                    "`{template}`: the first segment names the route's permission and must be literal"
                ));
            }
            let valid = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(format!("`{template}`: parameter `{{{name}}}` must be a lower-case identifier"));
            }
            if !names.insert(name) {
                return Err(format!("`{template}`: parameter `{{{name}}}` appears twice"));
            }
        } else if !segment.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~')) {
            return Err(format!(
                "`{template}`: segment `{segment}` must be a literal (letters, digits, `-_.~`) or a `{{name}}` parameter"
            ));
        }
    }
    Ok(())
}

/// Predefined roles live beside everyone's roles: `<id>_` keeps them apart,
/// and the rest is a plain role name.
fn validate_role_name(id: &str, name: &str) -> Result<(), String> {
    let prefix = format!("{id}_");
    let Some(rest) = name.strip_prefix(&prefix) else {
        return Err(format!("`{name}` must start with `{prefix}`"));
    };
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(format!("`{name}`: after `{prefix}` come a-z, 0-9 and `_`"));
    }
    if super::policy::reserved_role(name) {
        return Err(format!("`{name}` is a built-in role"));
    }
    Ok(())
}

/// Job type names: what a job says it is.
fn validate_job_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid { Ok(()) } else { Err(format!("`{name}` must be 1-64 characters of a-z, 0-9, `-` and `_`")) }
}

/// Ids appear in URLs and index names: lower-case letters, digits and `-`,
/// starting with a letter, at most 64 characters.
fn validate_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!("`{id}` must be 1-64 characters of a-z, 0-9 and `-`, starting with a letter"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("/ext/hello"), Path::new("/ext/hello/extension.toml"))
    }

    #[test]
    fn reads_a_full_manifest() -> Result<(), ManifestError> {
        let m = parse(
            r#"
            id = "hello"
            version = "1.2.0"
            component = "hello.wasm"
            capabilities = ["cluster", "warden:extension/scheduler"]
            [limits]
            memory_mib = 32
            max_concurrency = 2
            files_mib = 5
            "#,
        )?;
        assert_eq!(m.id, "hello");
        assert_eq!(m.component, Path::new("/ext/hello/hello.wasm"));
        assert_eq!(m.capabilities, BTreeSet::from([Capability::Cluster, Capability::Scheduler]));
        assert_eq!(m.limits.memory_mib, Some(32));
        assert_eq!(m.limits.max_concurrency, Some(2));
        assert_eq!(m.limits.files_mib, Some(5));
        Ok(())
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let cases = [
            ("id = \"Hello\"\nversion = \"1\"\ncomponent = \"a.wasm\"", "invalid id"),
            ("id = \"a\"\nversion = \"1\"\ncomponent = \"../a.wasm\"", "invalid component"),
            (
                "id = \"a\"\nversion = \"1\"\ncomponent = \"a.wasm\"\ncapabilities = [\"telepathy\"]",
                "telepathy",
            ),
            ("id = \"a\"\nversion = \"1\"", "missing field `component`"),
            ("id = \"a\"\nversion = \"1\"\ncomponent = \"a.wasm\"\ncolour = 1", "unknown field `colour`"),
            ("id = \"a\"\nversion = \"1\"\ncomponent = \"a.wasm\"\n[limits]\ncpu_ms = 0", "limits.cpu_ms"),
            (
                "id = \"a\"\nversion = \"1\"\ncomponent = \"a.wasm\"\n[limits]\nfiles_mib = 0",
                "limits.files_mib",
            ),
            ("id = ", "not a valid manifest"),
        ];
        for (text, expected) in cases {
            refused(text, expected);
        }
    }

    /// `text` (after a valid head) is refused with a message holding each of `expected`.
    fn refused(text: &str, expected: &str) {
        match parse(text) {
            Ok(m) => panic!("accepted {text:?} as {m:?}"),
            Err(e) => {
                let message = e.to_string();
                assert!(message.starts_with("/ext/hello/extension.toml: "), "{message}");
                assert!(message.contains(expected), "{message} should mention {expected}");
            }
        }
    }

    const HEAD: &str = "id = \"hello\"\nversion = \"1\"\ncomponent = \"a.wasm\"\n";

    #[test]
    fn every_new_section_is_validated_naming_the_key_path() {
        let cases = [
            // Unknown keys, wherever they are.
            ("[policy]\ncluster = []", "invalid policy.cluster: unknown field `cluster`"),
            (
                "[[policy.index_permissions]]\nindex_patterns = [\"a\"]\nallowed_actions = [\"read\"]\ndls = \"{}\"",
                "policy.index_permissions[0].dls",
            ),
            (
                "[[routes]]\nmethod = \"GET\"\npath = \"/a\"\n[[routes]]\nmethod = \"GET\"\npath = \"/b\"\ncolour = 1",
                "invalid routes[1].colour: unknown field `colour`",
            ),
            ("[[jobs]]\nname = \"a\"\nschedule = \"x\"", "jobs[0].schedule"),
            ("[[roles]]\nname = \"hello_x\"\nusers = []", "roles[0].users"),
            ("[limits]\nmemory = 1", "limits.memory"),
            // Capabilities name the entry.
            (
                "capabilities = [\"cluster\", \"telepathy\"]",
                "invalid capabilities[1]: unknown capability `telepathy`",
            ),
            // Permissions: unknown actions and groups, patterns matching nothing.
            (
                "[policy]\ncluster_permissions = [\"cluster:monitor/health\", \"reed\"]",
                "invalid policy.cluster_permissions[1]: `reed` names no known action",
            ),
            (
                "[[policy.index_permissions]]\nindex_patterns = [\"a\"]\nallowed_actions = [\"indices:data/raed/*\"]",
                "policy.index_permissions[0].allowed_actions[0]: `indices:data/raed/*` matches no known action",
            ),
            (
                "[[policy.index_permissions]]\nindex_patterns = [\"/(/\"]\nallowed_actions = [\"read\"]",
                "policy.index_permissions[0].index_patterns[0]: invalid pattern",
            ),
            (
                "[[policy.index_permissions]]\nindex_patterns = []\nallowed_actions = [\"read\"]",
                "policy.index_permissions[0].index_patterns: must name",
            ),
            (
                "[[policy.index_permissions]]\nindex_patterns = [\"a\"]",
                "policy.index_permissions[0].allowed_actions: must name",
            ),
            // Route templates.
            ("[[routes]]\nmethod = \"GET\"\npath = \"a\"", "routes[0].path: `a` must start with `/`"),
            (
                "[[routes]]\nmethod = \"GET\"\npath = \"/a/../b\"",
                "routes[0].path: `/a/../b`: `..` is not a segment",
            ),
            ("[[routes]]\nmethod = \"GET\"\npath = \"/a//b\"", "empty segment"),
            ("[[routes]]\nmethod = \"GET\"\npath = \"/{x}\"", "first segment names the route's permission"),
            ("[[routes]]\nmethod = \"GET\"\npath = \"/a/{X-1}\"", "parameter `{X-1}`"),
            ("[[routes]]\nmethod = \"GET\"\npath = \"/a/{x}/{x}\"", "appears twice"),
            ("[[routes]]\nmethod = \"GET\"\npath = \"/a/b%2f\"", "must be a literal"),
            ("[[routes]]\nmethod = \"FETCH\"\npath = \"/a\"", "routes[0].method: `FETCH`"),
            (
                "[[routes]]\nmethod = \"GET\"\npath = \"/a\"\npermission = \"extension:hello/b\"",
                "routes[0].permission: `extension:hello/b`: the route gate checks `extension:hello/a`",
            ),
            (
                "[[routes]]\nmethod = \"GET\"\npath = \"/a\"\n[[routes]]\nmethod = \"get\"\npath = \"/a\"",
                "routes[1].path: GET /a is declared twice",
            ),
            (
                "[[routes]]\nmethod = \"GET\"\npath = \"/a\"\ncluster_actions = [\"everything\"]",
                "routes[0].cluster_actions[0]",
            ),
            (
                "[[routes]]\nmethod = \"GET\"\npath = \"/a\"\nindex_patterns = [\"\"]",
                "routes[0].index_patterns[0]: an empty index pattern",
            ),
            // Roles: prefix, reserved, own permissions only, duplicates.
            ("[[roles]]\nname = \"reader\"", "roles[0].name: `reader` must start with `hello_`"),
            ("[[roles]]\nname = \"hello_\"", "roles[0].name"),
            ("[[roles]]\nname = \"hello_X\"", "roles[0].name"),
            (
                "[[roles]]\nname = \"hello_a\"\n[[roles]]\nname = \"hello_a\"",
                "roles[1].name: `hello_a` is declared twice",
            ),
            (
                "[[roles]]\nname = \"hello_a\"\nextension_permissions = [\"extension:other/x\"]",
                "roles[0].extension_permissions[0]: `extension:other/x` is not one of this extension's own",
            ),
            (
                "[[routes]]\nmethod = \"GET\"\npath = \"/a\"\n[[roles]]\nname = \"hello_a\"\nextension_permissions = [\"extension:hello/b\"]",
                "`extension:hello/b` is not one of this extension's own permissions (extension:hello/*, extension:hello/a, schedule:hello)",
            ),
            (
                "[[roles]]\nname = \"hello_a\"\nextension_permissions = [\"extension:*\"]",
                "roles[0].extension_permissions[0]",
            ),
            (
                "[[roles]]\nname = \"hello_a\"\ncluster_permissions = [\"cluster:nothing\"]",
                "roles[0].cluster_permissions[0]",
            ),
            // Jobs.
            ("[[jobs]]\nname = \"A job\"", "jobs[0].name"),
            ("[[jobs]]\nname = \"a\"\n[[jobs]]\nname = \"a\"", "jobs[1].name: `a` is declared twice"),
            ("[[jobs]]\nname = \"a\"\nindex_patterns = [\"/[/\"]", "jobs[0].index_patterns[0]"),
            // Text fields.
            ("name = \"\"", "invalid name"),
            ("description = \"a\\u0007b\"", "invalid description"),
            // Wrong types name the line.
            ("[[routes]]\nmethod = 1\npath = \"/a\"", "line"),
        ];
        for (text, expected) in cases {
            refused(&format!("{HEAD}{text}"), expected);
        }
    }

    #[test]
    fn routes_roles_and_jobs_read_and_complete() -> Result<(), ManifestError> {
        let m = parse(&format!(
            "{HEAD}name = \"Hello\"\ndescription = \"Says hello\"\n\
             [[routes]]\nmethod = \"get\"\npath = \"/greet/{{name}}\"\ndescription = \"a greeting\"\n\
             [[routes]]\nmethod = \"GET\"\npath = \"/\"\n\
             [[roles]]\nname = \"hello_user\"\nextension_permissions = [\"extension:hello/greet\", \"extension:hello/\"]\n\
             [[jobs]]\nname = \"nightly\"\ncluster_actions = [\"indices:data/read/*\"]\nindex_patterns = [\"logs-*\"]"
        ))?;
        assert_eq!(m.display_name(), "Hello");
        assert_eq!(m.description.as_deref(), Some("Says hello"));
        assert_eq!(m.policy_role(), "extension:hello");
        assert!(m.policy.is_empty());
        assert_eq!(m.routes[0].method, "GET");
        assert_eq!(m.routes[0].permission, "extension:hello/greet");
        assert_eq!(m.routes[1].permission, "extension:hello/");
        assert_eq!(m.roles[0].name, "hello_user");
        assert_eq!(m.jobs[0].index_patterns, ["logs-*"]);
        Ok(())
    }

    #[test]
    fn the_examples_load_and_declare_what_they_do() -> Result<(), ManifestError> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let hello = Manifest::load(&root.join("hello-world"))?;
        assert_eq!(hello.routes.len(), 1);
        let reporter = Manifest::load(&root.join("reporter"))?;
        assert_eq!(reporter.routes.len(), 4);
        assert_eq!(reporter.jobs.len(), 1);
        assert!(!reporter.policy.is_empty());
        assert!(
            reporter.roles.iter().any(|r| r.extension_permissions.contains(&"schedule:reporter".to_owned()))
        );
        Ok(())
    }
}
