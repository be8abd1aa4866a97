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

/// The service gate's subject for one call, and what it is made of.
#[derive(Debug, Clone)]
pub struct ServicePolicy {
    pub subject: Subject,
    /// For the audit: `extension:<id>`, then ` + <role>` for each role
    /// `services_mappings` added (`extension:reporter + act_as_original_user`).
    pub description: String,
}

/// Why a check said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("no role of `{subject}` grants `{action}`")]
    Action { subject: String, action: String },
    #[error("no role of `{subject}` grants `{action}` on index `{index}`")]
    Index { subject: String, action: String, index: String },
}

impl crate::error::HasKind for Denied {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Denied
    }
}

/// What one memo may hold: keys plus values, in bytes (estimated from
/// their heap sizes plus a fixed per-entry overhead).
const MEMO_BUDGET_BYTES: usize = 4 << 20;
/// Keys longer than this (an extension permission names a route's first
/// path segment, which a client chooses) are computed, never kept.
const MEMO_MAX_KEY_BYTES: usize = 1024;
/// Hash-map slot, queue slot and `Arc` headers of one entry.
const MEMO_ENTRY_OVERHEAD: usize = 96;

/// The heap a memoised value holds, for the memo's byte budget.
trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for RoleSet {
    fn weight(&self) -> usize {
        std::mem::size_of::<RoleSet>() + self.0.capacity() * 8
    }
}

/// Memoised per-key computation, bounded in bytes (keys + values): the
/// oldest entries are evicted first when a new one would pass the budget,
/// so a flood of distinct keys costs time, never memory, and the keys in
/// steady use come back after one recomputation.
#[derive(Debug)]
struct Memo<T> {
    inner: RwLock<MemoInner<T>>,
    /// Bytes (keys + values) the memo may hold.
    budget: usize,
    /// Entries the memo may hold.
    max_entries: usize,
}

impl<T> Default for Memo<T> {
    /// For keys a client chooses (an extension permission names a route's
    /// first path segment): bounded in bytes.
    fn default() -> Self {
        Memo { inner: RwLock::new(MemoInner::default()), budget: MEMO_BUDGET_BYTES, max_entries: usize::MAX }
    }
}

impl<T> Memo<T> {
    /// For keys from a fixed vocabulary (index action names from the action
    /// layer) whose values grow with the configuration, not with requests:
    /// a table for 100,000 indices outweighs any byte budget and must stay
    /// cached, so only the number of entries is bounded.
    fn for_fixed_keys(max_entries: usize) -> Self {
        Memo { inner: RwLock::new(MemoInner::default()), budget: usize::MAX, max_entries }
    }
}

#[derive(Debug)]
struct MemoInner<T> {
    map: HashMap<Arc<str>, (Arc<T>, usize)>,
    /// Insertion order, for eviction.
    order: std::collections::VecDeque<Arc<str>>,
    bytes: usize,
}

impl<T> Default for MemoInner<T> {
    fn default() -> Self {
        MemoInner { map: HashMap::new(), order: Default::default(), bytes: 0 }
    }
}

impl<T: Weigh> Memo<T> {
    fn get_or(&self, key: &str, compute: impl FnOnce() -> T) -> Arc<T> {
        if let Ok(inner) = self.inner.read()
            && let Some((v, _)) = inner.map.get(key)
        {
            return v.clone();
        }
        let value = Arc::new(compute());
        let weight = key.len() + value.weight() + MEMO_ENTRY_OVERHEAD;
        if key.len() > MEMO_MAX_KEY_BYTES || weight > self.budget {
            return value;
        }
        if let Ok(mut inner) = self.inner.write() {
            if inner.map.contains_key(key) {
                return value;
            }
            while inner.bytes.saturating_add(weight) > self.budget || inner.map.len() >= self.max_entries {
                let Some(oldest) = inner.order.pop_front() else { break };
                if let Some((_, w)) = inner.map.remove(&oldest) {
                    inner.bytes -= w;
                }
            }
            let key: Arc<str> = Arc::from(key);
            inner.order.push_back(key.clone());
            inner.map.insert(key, (value.clone(), weight));
            inner.bytes += weight;
        }
        value
    }

    /// The bytes held now (keys + values, as budgeted).
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.read().map(|i| i.bytes).unwrap_or(0)
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

impl Weigh for IndexGrants {
    fn weight(&self) -> usize {
        let set = |s: &RoleSet| s.weight();
        let pattern = |p: &Pattern| match p {
            Pattern::Exact(s) | Pattern::Prefix(s) | Pattern::Glob(s) => 32 + s.len(),
            // The compiled program is shared with the role (an `Arc` inside).
            Pattern::Regex(r) => 32 + r.as_str().len(),
        };
        set(&self.everywhere)
            + self.exact.iter().map(|(k, v)| 48 + k.len() + set(v)).sum::<usize>()
            + self.prefixes.iter().map(|(k, v)| 48 + k.len() + set(v)).sum::<usize>()
            + self.prefix_lengths.len() * 32
            + self.other.values().flatten().map(pattern).sum::<usize>()
            + self.templated.values().flatten().map(|t| 32 + t.len()).sum::<usize>()
    }
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
            index: Memo::for_fixed_keys(1024),
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
        self.service_policy(extension_id, None).subject
    }

    /// The service gate of one call of `extension_id` as a user: its
    /// policy role plus `mapped`, the roles `services_mappings` add for
    /// that user (see `SecurityState::service_policy`, which resolves them).
    /// The subject has no attributes: `${user_name}` and `${attr.*}` in
    /// these roles' index patterns match nothing at the service gate (an
    /// extension's limits do not move with the name of the user it serves).
    pub fn service_policy(&self, extension_id: &str, mapped: Option<&RoleSet>) -> ServicePolicy {
        let policy = format!("{EXTENSION_POLICY_PREFIX}{extension_id}");
        let mut roles = RoleSet::default();
        if let Some(id) = self.role_id(&policy) {
            roles.insert(id);
        }
        let mut description = policy;
        if let Some(mapped) = mapped {
            roles.union_with(mapped);
            for name in mapped.ids().filter_map(|id| self.role_names.get(id)) {
                description.push_str(" + ");
                description.push_str(name);
            }
        }
        let subject =
            Subject { name: format!("extension `{extension_id}`"), roles, attributes: HashMap::new() };
        ServicePolicy { subject, description }
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
                    templates.iter().any(|t| templated_pattern(t, subject).is_some_and(|p| p.matches(index)))
                })
        })
    }
}

/// An index pattern with `${user.name}` and `${<attribute>}` replaced by
/// the subject's values. Attribute keys carry their source: `user_name`,
/// `attr.internal.<key>` (internal users), `attr.jwt.<claim>` (JWT users).
///
/// A substituted value only ever matches itself: the template's kind
/// (`/regex/` or glob) is decided before substitution, so a user named
/// `/.*/` cannot turn a glob into a regex; in a regex the value is
/// escaped; a glob cannot escape `*` or `?`, so a value holding one (a
/// user named `l*`) makes the pattern match nothing. One pass over the
/// template: a value is never itself searched for placeholders. A
/// placeholder the subject has no value for matches nothing (left
/// literal, every such user would share one index).
fn templated_pattern(template: &str, subject: &Subject) -> Option<Pattern> {
    let is_regex = Pattern::is_regex_source(template);
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let key = &after[..end];
        let value = match key {
            "user.name" => subject.name.as_str(),
            key => subject.attributes.get(key)?.as_str(),
        };
        if is_regex {
            out.push_str(&regex::escape(value));
        } else if value.contains(['*', '?']) {
            return None;
        } else {
            out.push_str(value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if is_regex { Pattern::parse(&out).ok() } else { Some(Pattern::parse_glob(&out)) }
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

#[cfg(test)]
mod template_and_memo_tests {
    use super::*;

    fn subject(name: &str, attributes: &[(&str, &str)]) -> Subject {
        Subject {
            name: name.to_owned(),
            roles: RoleSet::default(),
            attributes: attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    fn allows(template: &str, who: &Subject, index: &str) -> bool {
        templated_pattern(template, who).is_some_and(|p| p.matches(index))
    }

    /// Substituted values match only literally, whatever they hold.
    #[test]
    fn substituted_values_never_become_patterns() {
        let ana = subject("ana", &[("user_name", "ana"), ("attr.internal.team", "red")]);
        assert!(allows("home-${user_name}", &ana, "home-ana"));
        assert!(allows("team-${attr.internal.team}-*", &ana, "team-red-logs"));
        assert!(allows("/home-${user_name}-\\d+/", &ana, "home-ana-7"));
        assert!(!allows("home-${user_name}", &ana, "home-bob"));

        // A glob in a value: the pattern matches nothing, not everything.
        let star = subject("l*", &[("user_name", "l*")]);
        for index in ["home-l*", "home-logs", "home-l"] {
            assert!(!allows("home-${user_name}", &star, index), "{index}");
        }
        assert!(!allows("${user_name}", &star, "logs"));
        let question = subject("a?", &[("user_name", "a?")]);
        assert!(!allows("home-${user_name}", &question, "home-ab"));

        // A value shaped like a regex stays text in a glob template...
        let regex_user = subject("/.*/", &[("user_name", "/.*/")]);
        assert!(!allows("${user_name}", &regex_user, "logs"));
        // ...and is escaped in a regex template.
        let dot = subject("a.b", &[("user_name", "a.b")]);
        assert!(allows("/home-${user_name}/", &dot, "home-a.b"));
        assert!(!allows("/home-${user_name}/", &dot, "home-axb"));
        let alternation = subject("x|.*", &[("user_name", "x|.*")]);
        assert!(!allows("/home-${user_name}/", &alternation, "home-anything"));

        // A value is not searched for placeholders again.
        let nested = subject("n", &[("user_name", "${attr.internal.team}"), ("attr.internal.team", "red")]);
        assert!(!allows("home-${user_name}", &nested, "home-red"));
        // No value for a placeholder: nothing, not the literal text.
        let bare = subject("bo", &[]);
        assert!(!allows("home-${user_name}", &bare, "home-${user_name}"));
        assert!(allows("home-${user.name}", &bare, "home-bo"));
    }

    #[derive(Debug)]
    struct Blob(usize);
    impl Weigh for Blob {
        fn weight(&self) -> usize {
            self.0
        }
    }

    /// 8,192 distinct long keys (long route paths) stay within the byte
    /// budget; keys in use are still answered right, and recent ones cached.
    #[test]
    fn memo_is_bounded_in_bytes() {
        let memo: Memo<RoleSet> = Memo::default();
        let mut unbounded = 0usize;
        for n in 0..8_192 {
            let key = format!("extension:hello/{n}-{}", "x".repeat(990));
            unbounded += key.len() + MEMO_ENTRY_OVERHEAD;
            let value = memo.get_or(&key, || {
                let mut set = RoleSet::default();
                set.insert(n % 7);
                set
            });
            assert!(value.contains(n % 7));
            assert!(memo.bytes() <= MEMO_BUDGET_BYTES, "{} > budget after {n}", memo.bytes());
        }
        assert!(unbounded > 2 * MEMO_BUDGET_BYTES, "the flood would have passed the budget");
        // The newest key is cached: computing it again is not asked for.
        let last = format!("extension:hello/8191-{}", "x".repeat(990));
        let cached = memo.get_or(&last, RoleSet::default);
        assert!(cached.contains(8191 % 7));
        // Keys past the key limit and values past the budget are never kept.
        let long = "k".repeat(MEMO_MAX_KEY_BYTES + 1);
        let before = memo.bytes();
        memo.get_or(&long, RoleSet::default);
        assert_eq!(memo.bytes(), before);
        let blobs: Memo<Blob> = Memo::default();
        blobs.get_or("big", || Blob(MEMO_BUDGET_BYTES + 1));
        assert_eq!(blobs.bytes(), 0);
    }
}
