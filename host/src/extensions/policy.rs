//! The security roles an extension brings, built from its manifest: the
//! policy role `extension:<id>` (its service gate: what it may do at most,
//! from `[policy]`) and its predefined roles (`<id>_...`, from `[[roles]]`),
//! as `security::config::Role` values ready to be written; and the check
//! that none of them takes the name of a role someone else owns.
//!
//! Both kinds are `reserved` (not editable through the roles API: the
//! manifest and the operator's grants own them). The policy role's name
//! carries the reserved prefix `extension:`, so it is the extension's by
//! definition (an operator's hand-written `extension:<id>` from before
//! install is replaced); a predefined role's name could have been taken by
//! an operator's own role, which install must not overwrite.
//!
//! A whole-configuration import replaces every role at once; the roles the
//! lifecycle owns ([`owned_roles`]) come through it unchanged
//! ([`keep_owned_roles`]), or an import redefining the policy role would
//! widen what the extension may do at its service gate past the grants.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use super::manifest::{self, Manifest, PredefinedRole};
use crate::security::config::{EXTENSION_POLICY_PREFIX, IndexPermission, Role, SecurityConfig};

static STATIC_ROLES: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    // Compiled in and checked by security's own tests; empty only if they
    // failed to parse, which those tests catch.
    SecurityConfig::default()
        .with_static()
        .map(|c| c.roles.into_iter().filter(|(_, r)| r.is_static).map(|(name, _)| name).collect())
        .unwrap_or_default()
});

/// Whether no extension may take `name`: a built-in static role, or an
/// extension policy's reserved prefix.
pub fn reserved_role(name: &str) -> bool {
    name.starts_with(EXTENSION_POLICY_PREFIX) || STATIC_ROLES.contains(name)
}

/// The policy role's name for extension `id`: `extension:<id>`.
pub fn policy_role_name(id: &str) -> String {
    format!("{EXTENSION_POLICY_PREFIX}{id}")
}

fn index_permissions(list: &[manifest::IndexPermission]) -> Vec<IndexPermission> {
    list.iter()
        .map(|p| IndexPermission {
            index_patterns: p.index_patterns.clone(),
            allowed_actions: p.allowed_actions.clone(),
            ..IndexPermission::default()
        })
        .collect()
}

/// The policy role `extension:<id>` from `[policy]`.
pub fn policy_role(manifest: &Manifest) -> (String, Role) {
    let role = Role {
        reserved: true,
        description: Some(format!(
            "Policy of extension `{}` {} (from its manifest): what its service gate allows",
            manifest.id, manifest.version
        )),
        cluster_permissions: manifest.policy.cluster_permissions.clone(),
        index_permissions: index_permissions(&manifest.policy.index_permissions),
        ..Role::default()
    };
    (policy_role_name(&manifest.id), role)
}

/// One predefined role as a security role.
pub fn predefined_role(manifest: &Manifest, role: &PredefinedRole) -> (String, Role) {
    let description =
        role.description.clone().unwrap_or_else(|| format!("Predefined by extension `{}`", manifest.id));
    let built = Role {
        reserved: true,
        description: Some(description),
        cluster_permissions: role.cluster_permissions.clone(),
        index_permissions: index_permissions(&role.index_permissions),
        extension_permissions: role.extension_permissions.clone(),
        ..Role::default()
    };
    (role.name.clone(), built)
}

/// Every role the extension brings: its policy role and its predefined roles.
pub fn roles_of(manifest: &Manifest) -> BTreeMap<String, Role> {
    std::iter::once(policy_role(manifest))
        .chain(manifest.roles.iter().map(|r| predefined_role(manifest, r)))
        .collect()
}

/// A role the extension would bring takes a name it may not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("extension `{extension}`: role `{role}` is a built-in role")]
    BuiltIn { extension: String, role: String },
    #[error(
        "extension `{extension}`: role `{role}` already exists and is not this extension's; rename the predefined role or remove the existing one"
    )]
    Clash { extension: String, role: String },
    #[error(
        "extension `{extension}`: a role mapping for `{role}` already exists (it would hand the new role to whoever it names); remove the mapping or rename the predefined role"
    )]
    MappedAlready { extension: String, role: String },
    /// An import defines a role the lifecycle owns differently from how it
    /// stands.
    #[error(
        "role `{role}` belongs to installed extension `{extension}`: the extension lifecycle owns it, so an import \
         cannot define or change it (leave it out, or keep it as exported); an extension's policy changes with \
         `PUT /_warden/extensions/{extension}/grants`, its predefined roles with its manifest"
    )]
    OwnedByExtension { extension: String, role: String },
}

impl crate::error::HasKind for PolicyError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            // As the roles API refuses a reserved role.
            PolicyError::OwnedByExtension { .. } => crate::error::ErrorKind::Denied,
            _ => crate::error::ErrorKind::Conflict,
        }
    }
}

/// The roles the lifecycle owns, each with the extension owning it, from
/// the installed extensions (`installed`: each id, with its manifest when
/// approved): every installed extension's policy role `extension:<id>` (a
/// pending one's too: approval writes it over whatever holds the name, so
/// nobody else may define it meanwhile), and the predefined roles an
/// approved extension's manifest brought (approval wrote them; a pending
/// extension's names may still be someone else's, and approval refuses those).
pub fn owned_roles<'a>(
    installed: impl IntoIterator<Item = (&'a str, Option<&'a Manifest>)>,
) -> BTreeMap<String, String> {
    let mut owned = BTreeMap::new();
    for (id, approved) in installed {
        owned.insert(policy_role_name(id), id.to_owned());
        for name in approved.into_iter().flat_map(|manifest| roles_of(manifest).into_keys()) {
            owned.insert(name, id.to_owned());
        }
    }
    owned
}

/// Carries the roles the lifecycle owns (`owned`, from [`owned_roles`])
/// from `current` into `imported`, a whole configuration about to replace
/// it: each stays as it is (or absent, if it is). An import that leaves one
/// out keeps it; one that defines one exactly as it stands (an export
/// imported back) is accepted; one that defines it otherwise is refused
/// naming the role, and nothing is imported.
pub fn keep_owned_roles(
    imported: &mut SecurityConfig,
    current: &SecurityConfig,
    owned: &BTreeMap<String, String>,
) -> Result<(), PolicyError> {
    for (role, extension) in owned {
        let now = current.roles.get(role);
        if let Some(new) = imported.roles.get(role)
            && Some(new) != now
        {
            return Err(PolicyError::OwnedByExtension { extension: extension.clone(), role: role.clone() });
        }
    }
    for role in owned.keys() {
        match current.roles.get(role) {
            Some(now) => drop(imported.roles.insert(role.clone(), now.clone())),
            None => drop(imported.roles.remove(role)),
        }
    }
    Ok(())
}

/// Checks that the roles `manifest` brings can be written into `config`:
/// none is built in, and each predefined role either does not exist yet or
/// is one this extension already owns (`owned`: the names its installed
/// version brought, from the installed-extension record).
pub fn check_clashes(
    manifest: &Manifest,
    config: &SecurityConfig,
    owned: &BTreeSet<String>,
) -> Result<(), PolicyError> {
    let policy = policy_role_name(&manifest.id);
    for name in roles_of(manifest).keys() {
        if *name == policy {
            continue; // the reserved prefix makes it this extension's
        }
        if reserved_role(name) || config.roles.get(name).is_some_and(|r| r.is_static) {
            return Err(PolicyError::BuiltIn { extension: manifest.id.clone(), role: name.clone() });
        }
        if config.roles.contains_key(name) && !owned.contains(name) {
            return Err(PolicyError::Clash { extension: manifest.id.clone(), role: name.clone() });
        }
        // A mapping waiting for a role of this name (imports accept those,
        // as OpenSearch does) would hand the extension's role to whoever it
        // names: the operator maps the role once it exists, knowingly.
        if config.roles_mapping.contains_key(name) && !owned.contains(name) {
            return Err(PolicyError::MappedAlready { extension: manifest.id.clone(), role: name.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn reporter() -> Manifest {
        let text = r#"
            id = "reporter"
            version = "1.0.0"
            component = "reporter.wasm"
            capabilities = ["cluster"]
            [policy]
            cluster_permissions = ["cluster_monitor"]
            [[policy.index_permissions]]
            index_patterns = ["logs-*"]
            allowed_actions = ["read"]
            [[routes]]
            method = "GET"
            path = "/summary/{index}"
            [[roles]]
            name = "reporter_read_only"
            extension_permissions = ["extension:reporter/summary"]
            [[roles]]
            name = "reporter_full_access"
            description = "everything"
            extension_permissions = ["extension:reporter/*", "schedule:reporter"]
            index_permissions = [{ index_patterns = ["reports"], allowed_actions = ["read"] }]
        "#;
        match Manifest::parse(text, Path::new("/e"), Path::new("/e/extension.toml")) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_roles_an_extension_brings() {
        let roles = roles_of(&reporter());
        assert_eq!(
            roles.keys().map(String::as_str).collect::<Vec<_>>(),
            ["extension:reporter", "reporter_full_access", "reporter_read_only"]
        );
        let policy = &roles["extension:reporter"];
        assert!(policy.reserved);
        assert_eq!(policy.cluster_permissions, ["cluster_monitor"]);
        assert_eq!(policy.index_permissions[0].index_patterns, ["logs-*"]);
        assert_eq!(policy.index_permissions[0].allowed_actions, ["read"]);
        assert!(policy.extension_permissions.is_empty());
        let full = &roles["reporter_full_access"];
        assert!(full.reserved);
        assert_eq!(full.description.as_deref(), Some("everything"));
        assert_eq!(full.extension_permissions, ["extension:reporter/*", "schedule:reporter"]);
        assert_eq!(full.index_permissions[0].index_patterns, ["reports"]);
        // Ready to be written: a configuration holding them validates.
        let mut config = SecurityConfig::default();
        config.roles.extend(roles);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_role_taken_by_someone_else_is_refused_naming_it() {
        let manifest = reporter();
        let Ok(mut config) = SecurityConfig::default().with_static() else { panic!("static config") };
        assert_eq!(check_clashes(&manifest, &config, &BTreeSet::new()), Ok(()));
        // A hand-written policy role from before install is replaced.
        config.roles.insert("extension:reporter".into(), Role::default());
        assert_eq!(check_clashes(&manifest, &config, &BTreeSet::new()), Ok(()));
        // An operator's own role of the same name is not overwritten...
        config.roles.insert("reporter_read_only".into(), Role::default());
        let refused = check_clashes(&manifest, &config, &BTreeSet::new());
        assert_eq!(
            refused,
            Err(PolicyError::Clash { extension: "reporter".into(), role: "reporter_read_only".into() })
        );
        assert!(refused.err().map(|e| e.to_string()).unwrap_or_default().contains("`reporter_read_only`"));
        // ... unless this extension brought it (an upgrade).
        let owned = BTreeSet::from(["reporter_read_only".to_owned()]);
        assert_eq!(check_clashes(&manifest, &config, &owned), Ok(()));
    }

    /// A mapping already waiting for a role of a predefined role's name
    /// (an import accepts one) would hand the new role to whoever it names.
    #[test]
    fn a_mapping_waiting_for_the_name_is_refused() {
        let manifest = reporter();
        let Ok(mut config) = SecurityConfig::default().with_static() else { panic!("static config") };
        config.roles_mapping.insert("reporter_full_access".into(), Default::default());
        let refused = check_clashes(&manifest, &config, &BTreeSet::new());
        assert_eq!(
            refused,
            Err(PolicyError::MappedAlready {
                extension: "reporter".into(),
                role: "reporter_full_access".into()
            })
        );
    }

    /// Every installed extension's policy role is the lifecycle's; an
    /// approved one's predefined roles too, a pending one's not yet.
    #[test]
    fn the_lifecycle_owns_policy_roles_and_approved_predefined_roles() {
        let approved = reporter();
        let owned = owned_roles([("reporter", Some(&approved)), ("other", None)]);
        assert_eq!(
            owned.iter().map(|(r, e)| (r.as_str(), e.as_str())).collect::<Vec<_>>(),
            [
                ("extension:other", "other"),
                ("extension:reporter", "reporter"),
                ("reporter_full_access", "reporter"),
                ("reporter_read_only", "reporter"),
            ]
        );
    }

    /// A whole-configuration import keeps the owned roles as they stand:
    /// one left out survives, one exported and imported back is accepted,
    /// one redefined (widened) or defined anew is refused naming it.
    #[test]
    fn an_import_cannot_redefine_or_drop_an_extensions_roles() -> Result<(), Box<dyn std::error::Error>> {
        let manifest = reporter();
        let mut current = SecurityConfig::default().with_static()?;
        current.roles.extend(roles_of(&manifest));
        current.roles.insert("operators_own".into(), Role::default());
        let owned = owned_roles([("reporter", Some(&manifest)), ("pending", None)]);

        // Left out (an import of OpenSearch's own files): kept unchanged.
        let mut imported = SecurityConfig::default().with_static()?;
        keep_owned_roles(&mut imported, &current, &owned)?;
        assert_eq!(imported.roles.get("extension:reporter"), current.roles.get("extension:reporter"));
        assert_eq!(imported.roles.get("reporter_read_only"), current.roles.get("reporter_read_only"));
        assert!(!imported.roles.contains_key("operators_own"), "the operator's own roles are the import's");

        // Imported back as exported: accepted.
        let mut imported = current.clone();
        keep_owned_roles(&mut imported, &current, &owned)?;
        assert_eq!(imported, current);

        // Widened, made unreserved, or defined for a pending extension:
        // refused naming the role and the way to change a policy.
        let mut widened = current.clone();
        if let Some(role) = widened.roles.get_mut("extension:reporter") {
            role.cluster_permissions.push("*".into());
        }
        let mut unreserved = current.clone();
        if let Some(role) = unreserved.roles.get_mut("reporter_read_only") {
            role.reserved = false;
        }
        let mut anew = current.clone();
        anew.roles.insert(
            "extension:pending".into(),
            Role { cluster_permissions: vec!["*".into()], ..Role::default() },
        );
        for (mut imported, role, extension) in [
            (widened, "extension:reporter", "reporter"),
            (unreserved, "reporter_read_only", "reporter"),
            (anew, "extension:pending", "pending"),
        ] {
            let refused = keep_owned_roles(&mut imported, &current, &owned);
            assert_eq!(
                refused,
                Err(PolicyError::OwnedByExtension { extension: extension.into(), role: role.into() })
            );
            let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains(&format!("`{role}`")) && message.contains("lifecycle owns it"),
                "{message}"
            );
            assert!(message.contains(&format!("PUT /_warden/extensions/{extension}/grants")), "{message}");
        }
        Ok(())
    }

    #[test]
    fn built_in_and_policy_names_are_reserved() {
        assert!(reserved_role("all_access"));
        assert!(reserved_role("kibana_user"));
        assert!(reserved_role("extension:other"));
        assert!(!reserved_role("reporter_read_only"));
        // An extension whose id makes a predefined role look like a
        // built-in one is refused when its manifest is read.
        let text =
            "id = \"kibana\"\nversion = \"1\"\ncomponent = \"k.wasm\"\n[[roles]]\nname = \"kibana_user\"";
        let refused = Manifest::parse(text, Path::new("/e"), Path::new("/e/extension.toml"));
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("roles[0].name") && message.contains("built-in"), "{message}");
    }
}
