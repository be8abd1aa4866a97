//! The security configuration in OpenSearch security's own formats:
//! `internal_users.yml`, `roles.yml`, `roles_mapping.yml`,
//! `action_groups.yml`, each with its `_meta` header. Files written for
//! OpenSearch load unchanged; Warden adds `extension_permissions` to roles.
//!
//! Built-in static action groups and roles (OpenSearch's
//! `static_config`) are always present and cannot be changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `_meta` of every file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    #[serde(rename = "type")]
    pub kind: String,
    pub config_version: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InternalUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default)]
    pub reserved: bool,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default, rename = "static", skip_serializing_if = "is_false")]
    pub is_static: bool,
    #[serde(default)]
    pub backend_roles: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Roles given directly (OpenSearch's legacy name for it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opendistro_security_roles: Vec<String>,
    /// Warden extension: a disabled user cannot authenticate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IndexPermission {
    #[serde(default)]
    pub index_patterns: Vec<String>,
    #[serde(default)]
    pub allowed_actions: Vec<String>,
    /// Document-level security query. Accepted for compatibility; not enforced yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dls: Option<String>,
    /// Field-level security. Accepted for compatibility; not enforced yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_fields: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantPermission {
    #[serde(default)]
    pub tenant_patterns: Vec<String>,
    #[serde(default)]
    pub allowed_actions: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Role {
    #[serde(default)]
    pub reserved: bool,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default, rename = "static", skip_serializing_if = "is_false")]
    pub is_static: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub cluster_permissions: Vec<String>,
    #[serde(default)]
    pub index_permissions: Vec<IndexPermission>,
    /// Dashboards tenants: accepted, not used by Warden.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenant_permissions: Vec<TenantPermission>,
    /// `extension:<id>/<route>` patterns (Warden).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension_permissions: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    #[serde(default)]
    pub reserved: bool,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub backend_roles: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub and_backend_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// OpenSearch's proposed `services_mappings` (seed 003), by extension
    /// id: for the users an entry matches, this mapping's role widens that
    /// extension's policy at the service gate. It never gives the role to
    /// the users themselves (the user gate), nor to the extension's calls
    /// `as service`, nor to any other extension.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services_mappings: BTreeMap<String, ServiceMapping>,
}

/// One extension's entry under a role mapping's `services_mappings`: whom
/// the mapping's role is added to the extension's policy for. `users`
/// patterns match the user's name, `backend_roles` the user's backend
/// roles (`*` matches everyone), as in the mapping itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceMapping {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub backend_roles: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionGroup {
    #[serde(default)]
    pub reserved: bool,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default, rename = "static", skip_serializing_if = "is_false")]
    pub is_static: bool,
    #[serde(default)]
    pub allowed_actions: Vec<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Service accounts' names start with this (see
/// [`super::service_accounts`]): a naming rule of the user database, so
/// validation here knows it without depending on the accounts' module.
pub const SERVICE_ACCOUNT_PREFIX: &str = "service:";
/// The attribute that marks a service account, and the one naming its extension.
pub(super) const SERVICE_MARKER: &str = "service";
pub(super) const SERVICE_EXTENSION: &str = "extension";

/// Whether `user` names a service account.
pub fn is_service_account(user: &str) -> bool {
    user.starts_with(SERVICE_ACCOUNT_PREFIX)
}

/// What is wrong with the record of service account `user`, if anything:
/// no password, and the marker attributes naming its extension.
fn service_account_problem(user: &str, record: &InternalUser) -> Option<String> {
    let extension = user.strip_prefix(SERVICE_ACCOUNT_PREFIX).unwrap_or_default();
    if record.hash.is_some() {
        return Some("a service account has no password".into());
    }
    if record.attributes.get(SERVICE_MARKER).map(String::as_str) != Some("true")
        || record.attributes.get(SERVICE_EXTENSION).map(String::as_str) != Some(extension)
    {
        return Some(format!(
            "a service account keeps its attributes `{SERVICE_MARKER}: \"true\"` and `{SERVICE_EXTENSION}: \"{extension}\"`"
        ));
    }
    None
}

/// Roles whose name starts with this are extension policies (the service
/// gate): they hold what an extension was granted and cannot be mapped to users.
pub const EXTENSION_POLICY_PREFIX: &str = "extension:";

/// Whether `id` is a well-formed extension id: 1-64 characters of `a-z`,
/// `0-9` and `-`, starting with a letter (the manifest's rule; security
/// sits below the manifest, so the rule is stated here too).
pub fn is_extension_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The whole configuration. Static (built-in) entries are merged in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityConfig {
    pub internal_users: BTreeMap<String, InternalUser>,
    pub roles: BTreeMap<String, Role>,
    pub roles_mapping: BTreeMap<String, RoleMapping>,
    pub action_groups: BTreeMap<String, ActionGroup>,
}

/// Why a configuration was refused. Names the file (or document) and the entry.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: _meta.type is `{found}`, expected `{expected}`")]
    WrongType { file: String, found: String, expected: &'static str },
    #[error("{file}: entry `{entry}`: {message}")]
    Invalid { file: String, entry: String, message: String },
}

impl crate::error::HasKind for ConfigError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            ConfigError::Read { .. } => crate::error::ErrorKind::Internal,
            ConfigError::Parse { .. } | ConfigError::WrongType { .. } | ConfigError::Invalid { .. } => {
                crate::error::ErrorKind::Invalid
            }
        }
    }
}

/// The four files, their `_meta.type`, and the built-in static sets.
pub const INTERNAL_USERS: &str = "internal_users.yml";
pub const ROLES: &str = "roles.yml";
pub const ROLES_MAPPING: &str = "roles_mapping.yml";
pub const ACTION_GROUPS: &str = "action_groups.yml";

const STATIC_ACTION_GROUPS: &str = include_str!("static/static_action_groups.yml");
const STATIC_ROLES: &str = include_str!("static/static_roles.yml");

/// Parses one file's text: a `_meta` header plus named entries.
pub fn parse_document<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    expected_type: &'static str,
) -> Result<BTreeMap<String, T>, ConfigError> {
    let parse_error =
        |e: serde_norway::Error| ConfigError::Parse { file: file.to_owned(), message: e.to_string() };
    let mut raw: BTreeMap<String, serde_norway::Value> = serde_norway::from_str(text).map_err(parse_error)?;
    if let Some(meta) = raw.remove("_meta") {
        let meta: Meta = serde_norway::from_value(meta)
            .map_err(|e| ConfigError::Parse { file: file.to_owned(), message: format!("_meta: {e}") })?;
        if meta.kind != expected_type {
            return Err(ConfigError::WrongType {
                file: file.to_owned(),
                found: meta.kind,
                expected: expected_type,
            });
        }
    }
    raw.into_iter()
        .map(|(name, value)| {
            let entry = serde_norway::from_value(value).map_err(|e| ConfigError::Invalid {
                file: file.to_owned(),
                entry: name.clone(),
                message: e.to_string(),
            })?;
            Ok((name, entry))
        })
        .collect()
}

impl SecurityConfig {
    /// Loads a directory of OpenSearch security files. A missing file is an
    /// empty one; the static built-ins are merged in.
    pub fn load_dir(dir: &Path) -> Result<SecurityConfig, ConfigError> {
        let mut texts = BTreeMap::new();
        for name in [INTERNAL_USERS, ROLES, ROLES_MAPPING, ACTION_GROUPS] {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    texts.insert(name, text);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ConfigError::Read { path, source }),
            }
        }
        SecurityConfig::from_texts(&dir.display().to_string(), &texts)
    }

    /// Parses the four files from their texts (file name → YAML); `origin`
    /// prefixes file names in errors. Missing files are empty.
    pub fn from_texts(origin: &str, texts: &BTreeMap<&str, String>) -> Result<SecurityConfig, ConfigError> {
        let text = |name: &str| texts.get(name).map(String::as_str).unwrap_or("");
        let name = |file: &str| if origin.is_empty() { file.to_owned() } else { format!("{origin}/{file}") };
        let config = SecurityConfig {
            internal_users: parse_or_empty(&name(INTERNAL_USERS), text(INTERNAL_USERS), "internalusers")?,
            roles: parse_or_empty(&name(ROLES), text(ROLES), "roles")?,
            roles_mapping: parse_or_empty(&name(ROLES_MAPPING), text(ROLES_MAPPING), "rolesmapping")?,
            action_groups: parse_or_empty(&name(ACTION_GROUPS), text(ACTION_GROUPS), "actiongroups")?,
        };
        config.with_static()
    }

    /// Adds the built-in static action groups and roles. A file may not
    /// redefine them.
    pub fn with_static(mut self) -> Result<SecurityConfig, ConfigError> {
        let groups: BTreeMap<String, ActionGroup> =
            parse_document("static_action_groups.yml", STATIC_ACTION_GROUPS, "actiongroups")?;
        let roles: BTreeMap<String, Role> = parse_document("static_roles.yml", STATIC_ROLES, "roles")?;
        // Only the built-ins are static: a file's own entry marked so would
        // be left out of every export (fuzzing found a backup losing it).
        for (name, group) in &mut self.action_groups {
            group.is_static &= groups.contains_key(name);
        }
        for (name, role) in &mut self.roles {
            role.is_static &= roles.contains_key(name);
        }
        for (name, group) in groups {
            if let Some(existing) = self.action_groups.get(&name)
                && *existing != group
            {
                return Err(ConfigError::Invalid {
                    file: ACTION_GROUPS.into(),
                    entry: name,
                    message: "redefines a built-in static action group".into(),
                });
            }
            self.action_groups.insert(name, group);
        }
        for (name, role) in roles {
            if let Some(existing) = self.roles.get(&name)
                && *existing != role
            {
                return Err(ConfigError::Invalid {
                    file: ROLES.into(),
                    entry: name,
                    message: "redefines a built-in static role".into(),
                });
            }
            self.roles.insert(name, role);
        }
        self.validate()?;
        Ok(self)
    }

    /// Cross-file checks: mappings name existing roles, extension policies
    /// are not mapped, patterns compile.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, mapping) in &self.roles_mapping {
            let invalid = |message: String| ConfigError::Invalid {
                file: ROLES_MAPPING.into(),
                entry: name.clone(),
                message,
            };
            if name.starts_with(EXTENSION_POLICY_PREFIX) {
                return Err(invalid("extension policies cannot be mapped to users".into()));
            }
            for (field, patterns) in [
                ("users", &mapping.users),
                ("backend_roles", &mapping.backend_roles),
                ("hosts", &mapping.hosts),
                ("and_backend_roles", &mapping.and_backend_roles),
            ] {
                super::pattern::PatternSet::parse(patterns).map_err(|e| invalid(format!("{field}: {e}")))?;
            }
            // OpenSearch ignores a mapping whose role does not exist; one
            // that widens an extension's policy must name a role, or the
            // operator believes a grant is in force that is not.
            if !mapping.services_mappings.is_empty() && !self.roles.contains_key(name) {
                let extensions: Vec<&str> = mapping.services_mappings.keys().map(String::as_str).collect();
                return Err(invalid(format!(
                    "services_mappings map extension(s) `{}` to role `{name}`, which does not exist \
                     (create the role, or remove the mapping first)",
                    extensions.join("`, `")
                )));
            }
            for (extension, entry) in &mapping.services_mappings {
                if !is_extension_id(extension) {
                    return Err(invalid(format!(
                        "services_mappings: `{}` is not an extension id (1-64 characters of a-z, 0-9 \
                         and `-`, starting with a letter)",
                        extension.escape_debug()
                    )));
                }
                for (field, patterns) in [("users", &entry.users), ("backend_roles", &entry.backend_roles)] {
                    super::pattern::PatternSet::parse(patterns)
                        .map_err(|e| invalid(format!("services_mappings.{extension}.{field}: {e}")))?;
                }
            }
        }
        for (name, user) in &self.internal_users {
            // Names key stored identities (tokens, jobs) with a control
            // character as separator, and appear in logs: none inside.
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(ConfigError::Invalid {
                    file: INTERNAL_USERS.into(),
                    entry: name.escape_debug().to_string(),
                    message: "a user name must be non-empty and hold no control characters".into(),
                });
            }
            // A costlier hash would let one login attempt hold a core for
            // seconds to days.
            if let Some(cost) = user.hash.as_deref().and_then(super::password::cost)
                && cost > super::password::MAX_BCRYPT_COST
            {
                return Err(ConfigError::Invalid {
                    file: INTERNAL_USERS.into(),
                    entry: name.clone(),
                    message: format!(
                        "bcrypt cost {cost} of user `{name}` is above the maximum {}: hash the password again with a lower cost (Warden uses {})",
                        super::password::MAX_BCRYPT_COST,
                        super::password::BCRYPT_COST
                    ),
                });
            }
            if is_service_account(name)
                && let Some(message) = service_account_problem(name, user)
            {
                return Err(ConfigError::Invalid {
                    file: INTERNAL_USERS.into(),
                    entry: name.clone(),
                    message,
                });
            }
            if user.opendistro_security_roles.iter().any(|r| r.starts_with(EXTENSION_POLICY_PREFIX)) {
                return Err(ConfigError::Invalid {
                    file: INTERNAL_USERS.into(),
                    entry: name.clone(),
                    message: "extension policies cannot be given to users".into(),
                });
            }
        }
        for (name, role) in &self.roles {
            let invalid =
                |message: String| ConfigError::Invalid { file: ROLES.into(), entry: name.clone(), message };
            super::pattern::PatternSet::parse(&role.cluster_permissions)
                .map_err(|e| invalid(format!("cluster_permissions: {e}")))?;
            super::pattern::PatternSet::parse(&role.extension_permissions)
                .map_err(|e| invalid(format!("extension_permissions: {e}")))?;
            for permission in &role.index_permissions {
                super::pattern::PatternSet::parse(&permission.index_patterns)
                    .map_err(|e| invalid(format!("index_patterns: {e}")))?;
                super::pattern::PatternSet::parse(&permission.allowed_actions)
                    .map_err(|e| invalid(format!("allowed_actions: {e}")))?;
            }
        }
        Ok(())
    }
}

fn parse_or_empty<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    expected_type: &'static str,
) -> Result<BTreeMap<String, T>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    parse_document(file, text, expected_type)
}

/// The configuration as the four OpenSearch files (built-in static entries
/// left out), ready to write or to import into OpenSearch.
pub fn export(config: &SecurityConfig) -> Vec<(&'static str, String)> {
    fn document<T: Serialize>(kind: &str, entries: impl Iterator<Item = (String, T)>) -> String {
        let mut map = serde_norway::Mapping::new();
        let meta = Meta { kind: kind.to_owned(), config_version: 2 };
        map.insert("_meta".into(), serde_norway::to_value(meta).unwrap_or_default());
        for (name, entry) in entries {
            map.insert(name.into(), serde_norway::to_value(entry).unwrap_or_default());
        }
        format!("---\n{}", serde_norway::to_string(&map).unwrap_or_default())
    }
    vec![
        (INTERNAL_USERS, document("internalusers", config.internal_users.clone().into_iter())),
        (ROLES, document("roles", config.roles.clone().into_iter().filter(|(_, r)| !r.is_static))),
        (ROLES_MAPPING, document("rolesmapping", config.roles_mapping.clone().into_iter())),
        (
            ACTION_GROUPS,
            document("actiongroups", config.action_groups.clone().into_iter().filter(|(_, g)| !g.is_static)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costly_bcrypt_hashes_are_refused_naming_the_user_and_the_cost() {
        let salt_and_hash = "VcCDgh2NDk07JGN0rjGbM.Ad41qVR/YFJcgHp0UGns5JDymv..TOG";
        let with_hash = |hash: String| {
            let mut config = SecurityConfig::default();
            config
                .internal_users
                .insert("slow".into(), InternalUser { hash: Some(hash), ..InternalUser::default() });
            config.validate()
        };
        let refused =
            with_hash(format!("$2y$15${salt_and_hash}")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("bcrypt cost 15 of user `slow` is above the maximum 14"), "{refused}");
        assert!(with_hash(format!("$2b$31${salt_and_hash}")).is_err());
        assert!(with_hash(format!("$2a$14${salt_and_hash}")).is_ok());
        assert!(with_hash(format!("$2a$12${salt_and_hash}")).is_ok());
    }
}

#[cfg(test)]
mod services_mappings_tests {
    use super::*;

    const ACT_AS: &str = "act_as_original_user:\n  cluster_permissions: [\"cluster:monitor/health\"]\n";

    fn load(mapping: &str) -> Result<SecurityConfig, ConfigError> {
        let texts = BTreeMap::from([(ROLES, ACT_AS.to_owned()), (ROLES_MAPPING, mapping.to_owned())]);
        SecurityConfig::from_texts("", &texts)
    }

    fn refusal(mapping: &str) -> String {
        match load(mapping) {
            Ok(config) => panic!("accepted: {:?}", config.roles_mapping),
            Err(e) => e.to_string(),
        }
    }

    /// OpenSearch's shape (seed 003), read and written back unchanged.
    #[test]
    fn services_mappings_round_trip_through_the_files() -> Result<(), Box<dyn std::error::Error>> {
        let config = load(
            "_meta:\n  type: rolesmapping\n  config_version: 2\nact_as_original_user:\n  reserved: false\n  \
             description: \"Maps reporter to act_as_original_user\"\n  services_mappings:\n    reporter:\n      \
             users: [\"*\"]\n      backend_roles: [\"audit*\"]\n",
        )?;
        let entry = &config.roles_mapping["act_as_original_user"].services_mappings["reporter"];
        assert_eq!(entry.users, ["*"]);
        assert_eq!(entry.backend_roles, ["audit*"]);
        let files: BTreeMap<&str, String> = export(&config).into_iter().collect();
        assert!(files[ROLES_MAPPING].contains("services_mappings"), "{}", files[ROLES_MAPPING]);
        assert_eq!(SecurityConfig::from_texts("", &files)?, config);
        // A mapping without any is written as before, without the key.
        let plain = load("act_as_original_user:\n  users: [ana]\n")?;
        let files: BTreeMap<&str, String> = export(&plain).into_iter().collect();
        assert!(!files[ROLES_MAPPING].contains("services_mappings"), "{}", files[ROLES_MAPPING]);
        Ok(())
    }

    #[test]
    fn bad_services_mappings_are_refused_naming_the_problem() {
        // A role that does not exist (a plain mapping to it is ignored, as
        // in OpenSearch; one that widens an extension is refused).
        assert!(load("ghost:\n  users: [ana]\n").is_ok());
        let message = refusal("ghost:\n  services_mappings:\n    reporter:\n      users: [ana]\n");
        assert!(message.contains("entry `ghost`") && message.contains("role `ghost`, which does not exist"));
        assert!(message.contains("`reporter`"), "{message}");
        // A pattern that does not parse, named with its place.
        let message =
            refusal("act_as_original_user:\n  services_mappings:\n    reporter:\n      users: [\"/[/\"]\n");
        assert!(message.contains("services_mappings.reporter.users"), "{message}");
        let message = refusal(
            "act_as_original_user:\n  services_mappings:\n    reporter:\n      backend_roles: [\"/(/\"]\n",
        );
        assert!(message.contains("services_mappings.reporter.backend_roles"), "{message}");
        // Unknown keys, inside an entry and beside it.
        let message =
            refusal("act_as_original_user:\n  services_mappings:\n    reporter:\n      hosts: [x]\n");
        assert!(message.contains("unknown field `hosts`"), "{message}");
        let message =
            refusal("act_as_original_user:\n  service_mappings:\n    reporter:\n      users: [a]\n");
        assert!(message.contains("unknown field `service_mappings`"), "{message}");
        // Not an extension id.
        for id in ["Reporter", "re porter", "-r", "", "r_1"] {
            let message = refusal(&format!(
                "act_as_original_user:\n  services_mappings:\n    \"{id}\":\n      users: [ana]\n"
            ));
            assert!(message.contains("is not an extension id"), "{id}: {message}");
        }
        // An extension's policy can be given to no one, not even to
        // another extension through services_mappings.
        let texts = BTreeMap::from([
            (ROLES, "extension:other:\n  cluster_permissions: [\"*\"]\n".to_owned()),
            (
                ROLES_MAPPING,
                "extension:other:\n  services_mappings:\n    reporter:\n      users: [\"*\"]\n".to_owned(),
            ),
        ]);
        let message = SecurityConfig::from_texts("", &texts).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("extension policies cannot be mapped"), "{message}");
    }

    #[test]
    fn extension_ids_follow_the_manifest_rule() {
        for id in ["a", "reporter", "hc-2", &"a".repeat(64)] {
            assert!(is_extension_id(id), "{id}");
        }
        for id in ["", "2a", "A", "a_b", "a.b", &"a".repeat(65), "é"] {
            assert!(!is_extension_id(id), "{id}");
        }
    }
}
