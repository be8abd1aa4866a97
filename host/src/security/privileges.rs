//! Privilege evaluation, compiled from a [`SecurityConfig`] whenever it
//! changes. A check answers (subject, action, indices) → allowed, or denied
//! with the reason.
//!
//! Why it costs the same with 10 roles or 1,000 and 10 indices or 100,000:
//! roles are numbered and a subject's roles are a bitset; for each action
//! the roles granting it are computed once (then memoised) as a bitset, and
//! for index actions as lookup tables keyed by exact index name and by
//! index-pattern prefix. A check is a few hash lookups and bitset ANDs; it
//! never loops over roles or over the cluster's indices.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use super::config::{EXTENSION_POLICY_PREFIX, SecurityConfig};
use super::pattern::Pattern;

/// A set of compiled roles, as bits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RoleSet(Vec<u64>);

#[cfg(test)]
mod tests {
    use super::RoleSet;

    #[test]
    fn role_sets() {
        let mut a = RoleSet::default();
        for id in [0, 5, 63, 64, 700] {
            a.insert(id);
        }
        assert_eq!(a.ids().collect::<Vec<_>>(), [0, 5, 63, 64, 700]);
        assert!(a.contains(700) && !a.contains(701));
        let mut b = RoleSet::default();
        b.insert(701);
        assert!(!a.intersects(&b));
        b.insert(64);
        assert!(a.intersects(&b));
        b.union_with(&a);
        assert_eq!(b.ids().count(), 6);
    }
}

impl RoleSet {
    pub fn insert(&mut self, id: usize) {
        let word = id / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (id % 64);
    }

    pub fn contains(&self, id: usize) -> bool {
        self.0.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub fn union_with(&mut self, other: &RoleSet) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    pub fn intersects(&self, other: &RoleSet) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The members, visiting only set bits.
    pub fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(i * 64 + bit)
            })
        })
    }
}

/// Who is being checked: a user (with resolved roles) or an extension's policy.
#[derive(Debug, Clone)]
pub struct Subject {
    pub name: String,
    pub roles: RoleSet,
    /// For `${user_name}`, `${attr.internal.<key>}`, `${attr.jwt.<claim>}` in index patterns.
    pub attributes: HashMap<String, String>,
}

/// Why a check said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("no role of `{subject}` grants `{action}`")]
    Action { subject: String, action: String },
    #[error("no role of `{subject}` grants `{action}` on index `{index}`")]
    Index { subject: String, action: String, index: String },
}

const MEMO_CAP: usize = 16_384;

/// Memoised per-key computation; past the cap, computed without caching
/// (so a flood of distinct keys costs time, never memory).
#[derive(Debug, Default)]
struct Memo<T> {
    map: RwLock<HashMap<String, Arc<T>>>,
}

impl<T> Memo<T> {
    fn get_or(&self, key: &str, compute: impl FnOnce() -> T) -> Arc<T> {
        if let Ok(map) = self.map.read()
            && let Some(v) = map.get(key)
        {
            return v.clone();
        }
        let value = Arc::new(compute());
        if let Ok(mut map) = self.map.write()
            && map.len() < MEMO_CAP
        {
            map.insert(key.to_owned(), value.clone());
        }
        value
    }
}

#[derive(Debug)]
struct CompiledRole {
    cluster: Vec<Pattern>,
    extension: Vec<Pattern>,
    /// (index patterns as written, allowed action patterns).
    index: Vec<(Vec<String>, Vec<Pattern>)>,
}

/// For one index action: which roles grant it on which indices.
#[derive(Debug, Default)]
struct IndexGrants {
    everywhere: RoleSet,
    exact: HashMap<String, RoleSet>,
    prefixes: HashMap<String, RoleSet>,
    prefix_lengths: BTreeSet<usize>,
    /// Globs and regexes, by role: a check walks only the subject's roles,
    /// so their number in the configuration does not matter.
    other: HashMap<usize, Vec<Pattern>>,
    /// Patterns with `${...}`, by role: substituted per subject.
    templated: HashMap<usize, Vec<String>>,
}

/// The compiled form of a configuration.
#[derive(Debug)]
pub struct Privileges {
    role_ids: HashMap<String, usize>,
    role_names: Vec<String>,
    roles: Vec<CompiledRole>,
    cluster: Memo<RoleSet>,
    extension: Memo<RoleSet>,
    index: Memo<IndexGrants>,
}

impl Privileges {
    pub fn compile(config: &SecurityConfig) -> Privileges {
        let groups = &config.action_groups;
        let mut role_ids = HashMap::new();
        let mut role_names = Vec::new();
        let mut roles = Vec::new();
        for (name, role) in &config.roles {
            role_ids.insert(name.clone(), roles.len());
            role_names.push(name.clone());
            let patterns = |actions: &[String]| -> Vec<Pattern> {
                expand_action_groups(actions, groups).iter().filter_map(|a| Pattern::parse(a).ok()).collect()
            };
            roles.push(CompiledRole {
                cluster: patterns(&role.cluster_permissions),
                extension: role.extension_permissions.iter().filter_map(|p| Pattern::parse(p).ok()).collect(),
                index: role
                    .index_permissions
                    .iter()
                    .map(|p| (p.index_patterns.clone(), patterns(&p.allowed_actions)))
                    .collect(),
            });
        }
        Privileges {
            role_ids,
            role_names,
            roles,
            cluster: Memo::default(),
            extension: Memo::default(),
            index: Memo::default(),
        }
    }

    pub fn role_id(&self, name: &str) -> Option<usize> {
        self.role_ids.get(name).copied()
    }

    pub fn role_names(&self, set: &RoleSet) -> Vec<String> {
        set.ids().filter_map(|id| self.role_names.get(id).cloned()).collect()
    }

    /// The subject for an extension's policy role (`extension:<id>`), the
    /// service gate. An extension without a policy gets no privileges.
    pub fn extension_policy(&self, extension_id: &str) -> Subject {
        let mut roles = RoleSet::default();
        if let Some(id) = self.role_id(&format!("{EXTENSION_POLICY_PREFIX}{extension_id}")) {
            roles.insert(id);
        }
        Subject { name: format!("extension `{extension_id}`"), roles, attributes: HashMap::new() }
    }

    /// A cluster-level action, e.g. `cluster:monitor/health` or `restapi:admin/roles`.
    pub fn check_cluster(&self, subject: &Subject, action: &str) -> Result<(), Denied> {
        let granting = self
            .cluster
            .get_or(action, || self.granting(|role| role.cluster.iter().any(|p| p.matches(action))));
        if granting.intersects(&subject.roles) {
            Ok(())
        } else {
            Err(Denied::Action { subject: subject.name.clone(), action: action.to_owned() })
        }
    }

    /// An extension permission, e.g. `extension:hello/greet`: granted by a
    /// role's `extension_permissions` or by a matching cluster permission.
    pub fn check_extension(&self, subject: &Subject, permission: &str) -> Result<(), Denied> {
        let granting = self.extension.get_or(permission, || {
            // As in OpenSearch's extension demo, a cluster permission can
            // grant an extension action too (`*` in all_access does).
            self.granting(|role| role.extension.iter().chain(&role.cluster).any(|p| p.matches(permission)))
        });
        if granting.intersects(&subject.roles) {
            Ok(())
        } else {
            Err(Denied::Action { subject: subject.name.clone(), action: permission.to_owned() })
        }
    }

    /// An index action on every one of `indices`; the first index not
    /// allowed is named.
    pub fn check_indices<'a>(
        &self,
        subject: &Subject,
        action: &str,
        indices: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Denied> {
        let grants = self.index.get_or(action, || self.index_grants(action));
        for index in indices {
            if !self.index_allowed(&grants, subject, index) {
                return Err(Denied::Index {
                    subject: subject.name.clone(),
                    action: action.to_owned(),
                    index: index.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn granting(&self, grants: impl Fn(&CompiledRole) -> bool) -> RoleSet {
        let mut set = RoleSet::default();
        for (id, role) in self.roles.iter().enumerate() {
            if grants(role) {
                set.insert(id);
            }
        }
        set
    }

    fn index_grants(&self, action: &str) -> IndexGrants {
        let mut g = IndexGrants::default();
        for (id, role) in self.roles.iter().enumerate() {
            for (index_patterns, actions) in &role.index {
                if !actions.iter().any(|a| a.matches(action)) {
                    continue;
                }
                for source in index_patterns {
                    if source.contains("${") {
                        g.templated.entry(id).or_default().push(source.clone());
                        continue;
                    }
                    match Pattern::parse(source) {
                        Ok(Pattern::Exact(name)) => g.exact.entry(name).or_default().insert(id),
                        Ok(Pattern::Prefix(p)) if p.is_empty() => g.everywhere.insert(id),
                        Ok(Pattern::Prefix(p)) => {
                            g.prefix_lengths.insert(p.len());
                            g.prefixes.entry(p).or_default().insert(id);
                        }
                        Ok(other) => g.other.entry(id).or_default().push(other),
                        Err(_) => {} // validated at load; unreachable in practice
                    }
                }
            }
        }
        g
    }

    fn index_allowed(&self, g: &IndexGrants, subject: &Subject, index: &str) -> bool {
        let roles = &subject.roles;
        if g.everywhere.intersects(roles) || g.exact.get(index).is_some_and(|s| s.intersects(roles)) {
            return true;
        }
        for &len in &g.prefix_lengths {
            if len > index.len() {
                break;
            }
            if index.is_char_boundary(len)
                && g.prefixes.get(&index[..len]).is_some_and(|s| s.intersects(roles))
            {
                return true;
            }
        }
        if g.other.is_empty() && g.templated.is_empty() {
            return false;
        }
        roles.ids().any(|id| {
            g.other.get(&id).is_some_and(|patterns| patterns.iter().any(|p| p.matches(index)))
                || g.templated.get(&id).is_some_and(|templates| {
                    templates
                        .iter()
                        .any(|t| Pattern::parse(&substitute(t, subject)).is_ok_and(|p| p.matches(index)))
                })
        })
    }
}

/// `${user.name}` and `${<attribute>}` → the subject's values. Attribute
/// keys carry their source: `user_name`, `attr.internal.<key>` (internal
/// users), `attr.jwt.<claim>` (JWT users).
fn substitute(template: &str, subject: &Subject) -> String {
    let mut out = template.replace("${user.name}", &subject.name);
    for (key, value) in &subject.attributes {
        out = out.replace(&format!("${{{key}}}"), value);
    }
    out
}

/// Replaces action group names by their actions, recursively; anything not
/// a group name is an action pattern. Cycles are cut, not followed.
pub fn expand_action_groups(
    actions: &[String],
    groups: &std::collections::BTreeMap<String, super::config::ActionGroup>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&String> = actions.iter().collect();
    while let Some(action) = stack.pop() {
        match groups.get(action) {
            Some(group) => {
                if seen.insert(action.clone()) {
                    stack.extend(group.allowed_actions.iter());
                }
            }
            None => {
                out.insert(action.clone());
            }
        }
    }
    out
}
