//! `security_config`: OpenSearch's security files as an operator imports
//! them (`warden serve --security-config`, `PUT /_warden/security/_import`,
//! `warden security import`).
//!
//! The input is the import's JSON body (`{"roles.yml": "<yaml>", …}`); any
//! other bytes are one file's text, the first byte choosing which.
//! `config.yml` (authentication settings) is read too.
//!
//! Properties: nothing panics; a configuration that passes validation
//! exports to the four files, and those import back to the same
//! configuration (what `_export` gives, `_import` takes unchanged).

use std::collections::BTreeMap;

use crate::security::authn::Authc;
use crate::security::config::{ACTION_GROUPS, INTERNAL_USERS, ROLES, ROLES_MAPPING, SecurityConfig, export};

const FILES: [&str; 5] = [INTERNAL_USERS, ROLES, ROLES_MAPPING, ACTION_GROUPS, "config.yml"];

pub fn check_security_config(data: &[u8]) {
    let files: BTreeMap<String, String> = match serde_json::from_slice(data) {
        Ok(files) => files,
        Err(_) => {
            let Some((&which, text)) = data.split_first() else { return };
            let Ok(text) = std::str::from_utf8(text) else { return };
            BTreeMap::from([(FILES[usize::from(which) % FILES.len()].to_owned(), text.to_owned())])
        }
    };
    if let Some(text) = files.get("config.yml") {
        let _ = Authc::parse(text);
    }
    let texts: BTreeMap<&str, String> = files
        .iter()
        .filter(|(name, _)| FILES[..4].contains(&name.as_str()))
        .map(|(name, text)| (name.as_str(), text.clone()))
        .collect();
    let Ok(config) = SecurityConfig::from_texts("", &texts) else { return };
    if let Err(e) = config.validate() {
        panic!("imported, but does not validate: {e}");
    }
    let exported: BTreeMap<&str, String> = export(&config).into_iter().collect();
    match SecurityConfig::from_texts("", &exported) {
        Ok(again) => assert!(again == config, "exported and imported back, it differs:\n{exported:#?}"),
        Err(e) => panic!("exported, it does not import back: {e}\n{exported:#?}"),
    }
}
