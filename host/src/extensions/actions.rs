//! The action vocabulary a manifest may name: the OpenSearch actions this
//! host knows and the built-in static action groups (`read`, `indices_all`,
//! `cluster_composite_ops_ro`, ...). A manifest's permission must name one of
//! them, or be a wildcard or `/regex/` that matches at least one known
//! action or group; anything else is a typo that would silently grant
//! nothing.
//!
//! The actions are those the action layer resolves (`cluster::actions`;
//! a test keeps the two lists together, since this layer may not import the
//! cluster) and those the static action groups name literally.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use crate::security::config::{ActionGroup, SecurityConfig};
use crate::security::pattern::Pattern;

/// Every action name this host knows, sorted.
pub const KNOWN_ACTIONS: &[&str] = &[
    "cluster:monitor/health",
    "cluster:monitor/main",
    "indices:admin/aliases",
    "indices:admin/aliases/exists",
    "indices:admin/aliases/get",
    "indices:admin/create",
    "indices:admin/delete",
    "indices:admin/get",
    "indices:admin/mapping/put",
    "indices:admin/mappings/fields/get",
    "indices:admin/refresh",
    "indices:admin/resolve/index",
    "indices:data/read/get",
    "indices:data/read/mget",
    "indices:data/read/msearch",
    "indices:data/read/mtv",
    "indices:data/read/point_in_time/create",
    "indices:data/read/point_in_time/delete",
    "indices:data/read/point_in_time/readall",
    "indices:data/read/scroll",
    "indices:data/read/search",
    "indices:data/read/suggest",
    "indices:data/write/bulk",
    "indices:data/write/delete",
    "indices:data/write/index",
    "indices:data/write/reindex",
    "indices:data/write/update",
    "indices:monitor/data_stream/stats",
    "indices:monitor/point_in_time/segments",
];

static STATIC_GROUPS: LazyLock<BTreeMap<String, ActionGroup>> = LazyLock::new(|| {
    // The built-ins are compiled in and checked by security's own tests: an
    // empty map here would only make every group name unknown, never grant.
    SecurityConfig::default().with_static().map(|c| c.action_groups).unwrap_or_default()
});

/// The built-in static action groups.
pub fn static_groups() -> &'static BTreeMap<String, ActionGroup> {
    &STATIC_GROUPS
}

/// Whether `name` is a built-in action group.
pub fn is_group(name: &str) -> bool {
    STATIC_GROUPS.contains_key(name)
}

/// Whether `permission` is a wildcard or a `/regex/` (rather than one name).
pub fn is_pattern(permission: &str) -> bool {
    Pattern::is_regex_source(permission) || permission.contains(['*', '?'])
}

/// Whether `permission` stays within cluster and index actions: what an
/// extension's roles may hold. Anything else a role's cluster permissions
/// could reach at run time (`restapi:*`, `extension:*`, `schedule:*`) is
/// the operator's to grant, never a manifest's.
fn within_actions(permission: &str) -> bool {
    permission.starts_with("cluster:") || permission.starts_with("indices:")
}

/// Checks one permission of a manifest; the message says what is wrong.
///
/// Exact known actions and action groups that expand only to cluster and
/// index actions are accepted, and wildcards only inside `cluster:` or
/// `indices:` (`indices:data/read/*`). A regular expression or a bare
/// wildcard (`re*`, `*`) is refused: at run time it would match every
/// permission, `restapi:admin/*`, other extensions' routes and consents
/// included — whatever a known action it happens to match.
pub fn check_permission(permission: &str) -> Result<(), String> {
    if permission.is_empty() {
        return Err("an empty permission names nothing".into());
    }
    if KNOWN_ACTIONS.contains(&permission) && within_actions(permission) {
        return Ok(());
    }
    if is_group(permission) {
        if let Some(beyond) = expand(permission).into_iter().find(|p| !within_actions(p)) {
            return Err(format!(
                "action group `{permission}` reaches `{beyond}`, beyond cluster and index actions"
            ));
        }
        return Ok(());
    }
    if Pattern::is_regex_source(permission) {
        return Err(format!(
            "`{permission}`: regular expressions are not accepted in a manifest (they match permissions beyond actions); name actions, action groups, or `cluster:`/`indices:` wildcards"
        ));
    }
    if is_pattern(permission) {
        if !within_actions(permission) {
            return Err(format!(
                "`{permission}`: a wildcard must stay inside `cluster:` or `indices:` (like `indices:data/read/*`); this one would match permissions beyond actions"
            ));
        }
        let pattern = Pattern::parse(permission).map_err(|e| e.to_string())?;
        if KNOWN_ACTIONS.iter().any(|a| pattern.matches(a)) {
            return Ok(());
        }
        return Err(format!("`{permission}` matches no known action"));
    }
    Err(format!(
        "`{permission}` names no known action or action group (actions look like `indices:data/read/search`, groups like `read`, `indices_all`, `cluster_composite_ops_ro`)"
    ))
}

/// `permission` with action groups replaced by what they allow, recursively
/// (a group naming itself, directly or not, stops the descent).
pub fn expand(permission: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    expand_into(permission, &mut seen, &mut out);
    out
}

fn expand_into(permission: &str, seen: &mut BTreeSet<String>, out: &mut BTreeSet<String>) {
    match STATIC_GROUPS.get(permission) {
        Some(group) => {
            if seen.insert(permission.to_owned()) {
                for inner in &group.allowed_actions {
                    expand_into(inner, seen, out);
                }
            }
        }
        None => {
            out.insert(permission.to_owned());
        }
    }
}

/// The known actions `list` names: the configuration's action groups
/// (`groups`) and the built-in ones expanded, action patterns replaced by
/// the known actions they match. What a permission list allows, as
/// concrete actions to check one by one.
pub fn concrete(list: &[String], groups: &BTreeMap<String, ActionGroup>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for action in crate::security::privileges::expand_action_groups(list, groups) {
        for action in expand(&action) {
            if is_pattern(&action) {
                out.extend(known_matches(&action).into_iter().map(str::to_owned));
            } else {
                out.insert(action);
            }
        }
    }
    out
}

/// The known actions a (group-free) permission covers.
pub fn known_matches(permission: &str) -> Vec<&'static str> {
    match Pattern::parse(permission) {
        Ok(pattern) => KNOWN_ACTIONS.iter().copied().filter(|a| pattern.matches(a)).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_holds_every_action_the_action_layer_resolves() {
        use crate::cluster::actions as a;
        for action in [
            a::CLUSTER_HEALTH,
            a::CLUSTER_MAIN,
            a::CREATE_INDEX,
            a::DELETE_INDEX,
            a::GET_INDEX,
            a::REFRESH,
            a::WRITE_INDEX,
            a::WRITE_DELETE,
            a::WRITE_UPDATE,
            a::WRITE_BULK,
            a::READ_GET,
            a::READ_SEARCH,
        ] {
            assert!(KNOWN_ACTIONS.contains(&action), "{action} missing from KNOWN_ACTIONS");
        }
        let mut sorted = KNOWN_ACTIONS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, KNOWN_ACTIONS);
    }

    #[test]
    fn permissions_are_known_actions_groups_or_patterns_that_match_one() {
        for ok in [
            "read",
            "indices_all",
            "cluster_composite_ops_ro",
            "indices:data/read/search",
            "indices:data/read/*",
            "cluster:*",
        ] {
            assert_eq!(check_permission(ok), Ok(()), "{ok}");
        }
        for bad in ["", "reed", "indices:data/read/serch", "indices:nothing/*", "/(/"] {
            assert!(check_permission(bad).is_err(), "{bad} accepted");
        }
    }

    /// A manifest's role reaches cluster and index actions only: a wildcard
    /// or regex that happens to match a known action or group (`re*`
    /// matches `read`) would, at run time, match `restapi:admin/*`, other
    /// extensions' routes and their consents too.
    #[test]
    fn nothing_beyond_cluster_and_index_actions() {
        for bad in [
            "*",
            "re*",
            "/(cluster_monitor|extension:.*|schedule:.*)/",
            "/indices:data/.*/get/",
            "restapi:admin/*",
            "extension:other/*",
            "schedule:other",
            "*:*",
        ] {
            let refused = check_permission(bad);
            assert!(refused.is_err(), "{bad} accepted");
        }
        let reason = check_permission("re*").err().unwrap_or_default();
        assert!(reason.contains("inside `cluster:` or `indices:`"), "{reason}");
    }

    #[test]
    fn groups_expand_recursively() {
        let crud = expand("crud");
        assert!(crud.contains("indices:data/read*"), "{crud:?}");
        assert!(crud.contains("indices:data/write*"), "{crud:?}");
        assert!(!crud.contains("read"));
        assert_eq!(expand("indices:data/read/get"), BTreeSet::from(["indices:data/read/get".to_owned()]));
        assert!(known_matches("indices:data/read*").contains(&"indices:data/read/search"));
    }
}
