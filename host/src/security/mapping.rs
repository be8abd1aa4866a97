//! Role resolution: which roles a user holds, from `roles_mapping.yml`
//! (by user name, backend role, client host, and `and_backend_roles` where
//! all must match) plus roles given directly to an internal user. The
//! user's roles are the union.

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
        let mut m = Mappings::default();
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
