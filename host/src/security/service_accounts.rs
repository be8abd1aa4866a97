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

use super::config::{InternalUser, SERVICE_EXTENSION as EXTENSION, SERVICE_MARKER as MARKER, SecurityConfig};
use crate::error::{Denial, Gate};

pub use super::config::{SERVICE_ACCOUNT_PREFIX as PREFIX, is_service_account};

/// The service account of extension `id`.
pub fn name(extension: &str) -> String {
    format!("{PREFIX}{extension}")
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

/// Whether `extension` may act as its service account now: the account
/// exists and is not disabled. A refusal is the service-account gate's.
pub fn check_usable(config: &SecurityConfig, extension: &str) -> Result<(), Denial> {
    let account = name(extension);
    match config.internal_users.get(&account) {
        None => Err(Denial::new(
            Gate::ServiceAccount,
            format!("service account `{account}` does not exist (it is created when the extension loads)"),
        )),
        Some(user) if user.disabled => {
            Err(Denial::new(Gate::ServiceAccount, format!("service account `{account}` is disabled")))
        }
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
