//! Service accounts: one per extension granted `cluster`, named
//! `service:<id>`, created by the host when it loads the extension and kept
//! in the security configuration beside the other internal users, where
//! operators see them and can disable them (`"disabled": true`), which stops
//! every call the extension makes `as service`.
//!
//! A service account has no password — nobody logs in as it — and the host
//! alone acts as it, on the extension's behalf; what it reaches is fixed:
//! the extension's own indices `.ext-<id>` and `.ext-<id>_<suffix>` (see
//! `cluster::gateway::is_own_index`; ids cannot contain `_`, so one
//! extension's namespace never holds another's). The security API cannot
//! create one, give it a password, or strip its marker attribute.

use std::collections::BTreeMap;

use super::config::{InternalUser, SecurityConfig};

/// Service accounts' names start with this.
pub const PREFIX: &str = "service:";
/// The attribute that marks a service account, and the one naming its extension.
const MARKER: &str = "service";
const EXTENSION: &str = "extension";

/// The service account of extension `id`.
pub fn name(extension: &str) -> String {
    format!("{PREFIX}{extension}")
}

pub fn is_service_account(user: &str) -> bool {
    user.starts_with(PREFIX)
}

/// A fresh account record for `extension`.
pub fn record(extension: &str) -> InternalUser {
    InternalUser {
        attributes: BTreeMap::from([
            (MARKER.to_owned(), "true".to_owned()),
            (EXTENSION.to_owned(), extension.to_owned()),
        ]),
        description: Some(format!("service account of extension `{extension}` (managed by Warden)")),
        ..InternalUser::default()
    }
}

/// What is wrong with the record of service account `user`, if anything.
pub fn check_record(user: &str, record: &InternalUser) -> Result<(), String> {
    let extension = user.strip_prefix(PREFIX).unwrap_or_default();
    if record.hash.is_some() {
        return Err("a service account has no password".into());
    }
    if record.attributes.get(MARKER).map(String::as_str) != Some("true")
        || record.attributes.get(EXTENSION).map(String::as_str) != Some(extension)
    {
        return Err(format!(
            "a service account keeps its attributes `{MARKER}: \"true\"` and `{EXTENSION}: \"{extension}\"`"
        ));
    }
    Ok(())
}

/// Whether `extension` may act as its service account now: the account
/// exists and is not disabled.
pub fn check_usable(config: &SecurityConfig, extension: &str) -> Result<(), String> {
    let account = name(extension);
    match config.internal_users.get(&account) {
        None => Err(format!(
            "service account `{account}` does not exist (it is created when the extension loads)"
        )),
        Some(user) if user.disabled => Err(format!("service account `{account}` is disabled")),
        Some(_) => Ok(()),
    }
}

/// Adds the missing accounts of `extensions` to `config`; returns their names.
pub fn add_missing<'a>(
    config: &mut SecurityConfig,
    extensions: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    let mut created = Vec::new();
    for extension in extensions {
        let account = name(extension);
        if !config.internal_users.contains_key(&account) {
            config.internal_users.insert(account.clone(), record(extension));
            created.push(account);
        }
    }
    created
}
