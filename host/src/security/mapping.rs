//! Role resolution: which roles a user holds, from `roles_mapping.yml`
//! (by user name, backend role, client host, and `and_backend_roles` where
//! all must match) plus roles given directly to an internal user. The
//! user's roles are the union.
//!
//! Also the `services_mappings` of the same file ([`ServiceMappings`]):
//! which roles widen an extension's policy at the service gate for which
//! users. They are compiled apart and never enter a user's own roles.

use std::collections::HashMap;
use std::net::IpAddr;

use super::config::SecurityConfig;
use super::pattern::{Pattern, PatternSet};
use super::privileges::{Privileges, RoleSet};

/// An authenticated principal before role resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub backend_roles: Vec<String>,
    /// Roles given directly (internal users' `opendistro_security_roles`).
    pub direct_roles: Vec<String>,
    pub attributes: HashMap<String, String>,
}

#[derive(Debug)]
struct PatternMapping {
    role: usize,
    users: PatternSet,
    backend_roles: PatternSet,
    hosts: PatternSet,
    and_backend_roles: Vec<Pattern>,
}

/// Compiled mappings: exact names in hash maps, patterns in a list.
#[derive(Debug, Default)]
pub struct Mappings {
    by_user: HashMap<String, RoleSet>,
    by_backend_role: HashMap<String, RoleSet>,
    patterned: Vec<PatternMapping>,
    /// `services_mappings`: for the service gate only.
    services: ServiceMappings,
}

/// `services_mappings`, compiled: per extension id, the roles that widen
/// its policy for the users they match. Looking up an extension no entry
/// names is one probe of an (often empty) hash map; one that has entries
/// costs a hash lookup by user name, one per backend role, and the
/// patterned entries of that extension only — never a walk over the
/// mappings, so it is resolved on every call rather than memoised.
#[derive(Debug, Default)]
pub struct ServiceMappings {
    by_extension: HashMap<String, ExtensionMappings>,
}

/// One extension's `services_mappings`.
#[derive(Debug, Default)]
struct ExtensionMappings {
    by_user: HashMap<String, RoleSet>,
    by_backend_role: HashMap<String, RoleSet>,
    /// (role, user patterns, backend role patterns).
    patterned: Vec<(usize, PatternSet, PatternSet)>,
}

impl ServiceMappings {
    fn compile(config: &SecurityConfig, privileges: &Privileges) -> ServiceMappings {
        let mut m = ServiceMappings::default();
        for (role_name, mapping) in &config.roles_mapping {
            if mapping.services_mappings.is_empty() {
                continue;
            }
            // Validation refuses a services mapping to a missing role.
            let Some(role) = privileges.role_id(role_name) else { continue };
            for (extension, entry) in &mapping.services_mappings {
                let compiled = m.by_extension.entry(extension.clone()).or_default();
                let users = index_exact(&entry.users, &mut compiled.by_user, role);
                let backend = index_exact(&entry.backend_roles, &mut compiled.by_backend_role, role);
                if !users.is_empty() || !backend.is_empty() {
                    // Patterns were validated when the configuration was loaded.
                    compiled.patterned.push((
                        role,
                        PatternSet::parse(&users).unwrap_or_default(),
                        PatternSet::parse(&backend).unwrap_or_default(),
                    ));
                }
            }
        }
        m
    }

    /// The roles `services_mappings` add to `extension`'s policy when it
    /// calls as `user` holding `backend_roles`; `None` when none do.
    pub fn resolve(&self, extension: &str, user: &str, backend_roles: &[String]) -> Option<RoleSet> {
        let mappings = self.by_extension.get(extension)?;
        let mut roles = RoleSet::default();
        if let Some(set) = mappings.by_user.get(user) {
            roles.union_with(set);
        }
        for backend in backend_roles {
            if let Some(set) = mappings.by_backend_role.get(backend) {
                roles.union_with(set);
            }
        }
        for (role, users, backend) in &mappings.patterned {
            if users.matches(user) || backend_roles.iter().any(|b| backend.matches(b)) {
                roles.insert(*role);
            }
        }
        (!roles.is_empty()).then_some(roles)
    }
}

/// Puts the exact names of `sources` into `index` for `role`; returns the
/// patterns, which need matching.
fn index_exact(sources: &[String], index: &mut HashMap<String, RoleSet>, role: usize) -> Vec<String> {
    let mut patterns = Vec::new();
    for source in sources {
        if matches!(Pattern::parse(source), Ok(Pattern::Exact(_))) {
            index.entry(source.clone()).or_default().insert(role);
        } else {
            patterns.push(source.clone());
        }
    }
    patterns
}

impl Mappings {
    pub fn compile(config: &SecurityConfig, privileges: &Privileges) -> Mappings {
        let mut m =
            Mappings { services: ServiceMappings::compile(config, privileges), ..Mappings::default() };
        for (role_name, mapping) in &config.roles_mapping {
            // OpenSearch ignores mappings to roles that do not exist.
            let Some(role) = privileges.role_id(role_name) else { continue };
            let patterned_users = index_exact(&mapping.users, &mut m.by_user, role);
            let patterned_backend = index_exact(&mapping.backend_roles, &mut m.by_backend_role, role);
            if !patterned_users.is_empty()
                || !patterned_backend.is_empty()
                || !mapping.hosts.is_empty()
                || !mapping.and_backend_roles.is_empty()
            {
                // Patterns were validated when the configuration was loaded.
                m.patterned.push(PatternMapping {
                    role,
                    users: PatternSet::parse(&patterned_users).unwrap_or_default(),
                    backend_roles: PatternSet::parse(&patterned_backend).unwrap_or_default(),
                    hosts: PatternSet::parse(&mapping.hosts).unwrap_or_default(),
                    and_backend_roles: mapping
                        .and_backend_roles
                        .iter()
                        .filter_map(|p| Pattern::parse(p).ok())
                        .collect(),
                });
            }
        }
        m
    }

    /// The `services_mappings` (the service gate's, never a user's roles).
    pub fn services(&self) -> &ServiceMappings {
        &self.services
    }

    /// The roles of `principal` connecting from `host`.
    pub fn resolve(&self, privileges: &Privileges, principal: &Principal, host: Option<IpAddr>) -> RoleSet {
        let mut roles = RoleSet::default();
        if let Some(set) = self.by_user.get(&principal.name) {
            roles.union_with(set);
        }
        for backend in &principal.backend_roles {
            if let Some(set) = self.by_backend_role.get(backend) {
                roles.union_with(set);
            }
        }
        let host = host.map(|h| h.to_string());
        for m in &self.patterned {
            let by_user = m.users.matches(&principal.name);
            let by_backend = principal.backend_roles.iter().any(|b| m.backend_roles.matches(b));
            let by_host = host.as_deref().is_some_and(|h| m.hosts.matches(h));
            let by_all_backend = !m.and_backend_roles.is_empty()
                && m.and_backend_roles.iter().all(|p| principal.backend_roles.iter().any(|b| p.matches(b)));
            if by_user || by_backend || by_host || by_all_backend {
                roles.insert(m.role);
            }
        }
        for direct in &principal.direct_roles {
            if let Some(id) = privileges.role_id(direct) {
                roles.insert(id);
            }
        }
        roles
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::security::SecurityState;

    type R = Result<(), Box<dyn std::error::Error>>;

    const ROLES: &str = r#"
extension:reporter:
  index_permissions:
    - index_patterns: ["logs"]
      allowed_actions: ["read"]
extension:other:
  index_permissions:
    - index_patterns: ["logs"]
      allowed_actions: ["read"]
act_as_original_user:
  index_permissions:
    - index_patterns: ["reports-*"]
      allowed_actions: ["crud"]
auditing:
  cluster_permissions: ["cluster:monitor/health"]
home:
  index_permissions:
    - index_patterns: ["home-${user_name}"]
      allowed_actions: ["crud"]
analyst:
  index_permissions:
    - index_patterns: ["logs"]
      allowed_actions: ["read"]
"#;

    const MAPPINGS: &str = r#"
act_as_original_user:
  services_mappings:
    reporter:
      users: ["ana", "ops-*"]
      backend_roles: ["auditors"]
auditing:
  users: ["carl"]
  services_mappings:
    reporter:
      backend_roles: ["audit*"]
home:
  services_mappings:
    reporter:
      users: ["*"]
analyst:
  users: ["*"]
"#;

    fn state() -> Result<SecurityState, Box<dyn std::error::Error>> {
        let texts =
            BTreeMap::from([("roles.yml", ROLES.to_owned()), ("roles_mapping.yml", MAPPINGS.to_owned())]);
        Ok(SecurityState::compile(SecurityConfig::from_texts("test", &texts)?))
    }

    fn names(state: &SecurityState, roles: Option<RoleSet>) -> Vec<String> {
        roles.map(|r| state.privileges.role_names(&r)).unwrap_or_default()
    }

    /// Users by name (exact and pattern), backend roles (exact and
    /// pattern), `*` for everyone; only for the extension named.
    #[test]
    fn services_mappings_resolve_per_extension_and_user() -> R {
        let state = state()?;
        let services = state.mappings.services();
        let resolve = |ext: &str, user: &str, backend: &[&str]| {
            let backend: Vec<String> = backend.iter().map(|b| (*b).to_owned()).collect();
            names(&state, services.resolve(ext, user, &backend))
        };
        assert_eq!(resolve("reporter", "ana", &[]), ["act_as_original_user", "home"]);
        assert_eq!(resolve("reporter", "ops-1", &[]), ["act_as_original_user", "home"]);
        assert_eq!(resolve("reporter", "bob", &[]), ["home"], "`*` maps everyone, nothing more");
        assert_eq!(resolve("reporter", "bob", &["auditors"]), ["act_as_original_user", "auditing", "home"]);
        assert_eq!(resolve("reporter", "bob", &["audit-eu"]), ["auditing", "home"]);
        // `carl` is mapped to `auditing` as a user, not for the extension.
        assert_eq!(resolve("reporter", "carl", &[]), ["home"]);
        // Another extension, or one no entry names: nothing.
        assert!(services.resolve("other", "ana", &["auditors".into()]).is_none());
        assert!(services.resolve("nobody", "ana", &[]).is_none());
        Ok(())
    }

    /// A services mapping never reaches the user's own roles: `ana` and
    /// the backend role `auditors` get no role from it at the user gate.
    #[test]
    fn services_mappings_never_widen_the_user() -> R {
        let state = state()?;
        let principal =
            Principal { name: "ana".into(), backend_roles: vec!["auditors".into()], ..Principal::default() };
        let roles = state.mappings.resolve(&state.privileges, &principal, None);
        assert_eq!(state.privileges.role_names(&roles), ["analyst"]);
        let carl = Principal { name: "carl".into(), ..Principal::default() };
        let roles = state.mappings.resolve(&state.privileges, &carl, None);
        assert_eq!(state.privileges.role_names(&roles), ["analyst", "auditing"]);
        Ok(())
    }

    /// The service gate's subject: the policy plus the mapped roles for
    /// this (extension, user); the description names them for the audit.
    #[test]
    fn the_service_policy_is_widened_for_the_mapped_user_only() -> R {
        let state = state()?;
        let p = &state.privileges;
        let ana = state.service_policy("reporter", "ana", &[]);
        assert_eq!(ana.description, "extension:reporter + act_as_original_user + home");
        assert_eq!(ana.subject.name, "extension `reporter`");
        assert!(p.check_indices(&ana.subject, "indices:data/write/index", ["reports-q3"]).is_ok());
        assert!(p.check_indices(&ana.subject, "indices:data/read/search", ["logs"]).is_ok());
        let bob = state.service_policy("reporter", "bob", &[]);
        assert_eq!(bob.description, "extension:reporter + home");
        let denied = p.check_indices(&bob.subject, "indices:data/write/index", ["reports-q3"]);
        assert!(denied.is_err_and(|d| d.to_string().contains("`reports-q3`")));
        // Templated patterns match nothing at the service gate.
        assert!(p.check_indices(&bob.subject, "indices:data/read/search", ["home-bob"]).is_err());
        // Another extension's policy is not widened by reporter's mappings.
        let other = state.service_policy("other", "ana", &[]);
        assert_eq!(other.description, "extension:other");
        assert!(p.check_indices(&other.subject, "indices:data/write/index", ["reports-q3"]).is_err());
        assert_eq!(other.subject.roles, p.extension_policy("other").roles);
        // No policy role at all: mapped roles alone, still named.
        let ghost = state.service_policy("ghost", "ana", &[]);
        assert_eq!(ghost.description, "extension:ghost");
        assert!(ghost.subject.roles.is_empty());
        Ok(())
    }
}
