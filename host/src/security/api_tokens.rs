//! API tokens (OpenSearch 3.7 shapes): opaque `wdn_…` secrets sent as
//! `Authorization: ApiKey <token>`, shown once at creation; only their
//! SHA-256 is kept (in the store, `.warden-api-tokens`, keyed by it).
//!
//! A token carries its own cluster and index permissions; what it may do is
//! that intersected with what its creator may do *now* (Elasticsearch's
//! "limited-by"): a creator who loses a role takes it from the token too,
//! and a removed or disabled creator ends all their tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::{IndexPermission, Role, SecurityConfig};
use super::privileges::{Privileges, RoleSet, Subject};
use crate::error::{ErrorKind, HasKind};
use crate::store::{Expect, Store, StoreError, Write};

pub const STORE_INDEX: &str = ".warden-api-tokens";
/// `<creator>\u{1f}<name>` → the token's hash: a creator's tokens without
/// a scan, and one name per creator by compare-and-set.
pub const NAMES_INDEX: &str = ".warden-api-token-names";
/// Tokens one user may hold at once, as OpenSearch caps them.
pub const MAX_PER_USER: usize = 100;
/// Expiry is required and at most this far away (90 days).
pub const MAX_DURATION: u64 = 90 * 86_400;
const PREFIX: &str = "wdn_";

/// What is kept of a token (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiTokenRecord {
    pub name: String,
    pub creator: String,
    /// Who vouched for the creator: always `internal` (only internal users
    /// create tokens). Records without it predate identity sources and are
    /// refused, since a JWT user of the same name could have made them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_source: Option<String>,
    #[serde(default)]
    pub cluster_permissions: Vec<String>,
    #[serde(default)]
    pub index_permissions: Vec<IndexPermission>,
    pub created_at: u64,
    pub expires_at: u64,
}

/// A creation request, as OpenSearch's API takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    pub name: String,
    #[serde(default)]
    pub cluster_permissions: Vec<String>,
    #[serde(default)]
    pub index_permissions: Vec<IndexPermission>,
    pub duration_seconds: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiTokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("an API token named `{0}` already exists for this user")]
    Duplicate(String),
    #[error("user `{0}` already has {MAX_PER_USER} API tokens; delete some first")]
    TooMany(String),
    #[error("no API token named `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HasKind for ApiTokenError {
    /// A taken name and a full allowance are `Invalid`: the request must
    /// change (the REST API has always answered them 400).
    fn kind(&self) -> ErrorKind {
        match self {
            ApiTokenError::Invalid(_) | ApiTokenError::Duplicate(_) | ApiTokenError::TooMany(_) => {
                ErrorKind::Invalid
            }
            ApiTokenError::NotFound(_) => ErrorKind::NotFound,
            ApiTokenError::Store(e) => e.kind(),
        }
    }
}

/// A token's own permissions, compiled (against the action groups of the
/// configuration it was compiled under).
#[derive(Debug)]
pub struct TokenLimit {
    pub privileges: Privileges,
    pub subject: Subject,
    /// The token's name, for the audit log.
    pub name: String,
}

#[derive(Debug)]
pub struct ApiTokens {
    store: Arc<Store>,
    /// Compiled limits by token hash, for the configuration snapshot they
    /// were compiled under (by pointer); a config change recompiles.
    compiled: Mutex<HashMap<String, (usize, Arc<TokenLimit>)>>,
}

/// Creator names are internal user names, which the security API keeps
/// free of control characters, so the separator is unambiguous.
fn owner_prefix(creator: &str) -> String {
    format!("{creator}\u{1f}")
}

fn name_key(creator: &str, name: &str) -> String {
    format!("{}{name}", owner_prefix(creator))
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How the audit log names the token of id `id` (its hash): the first 16
/// hex digits, enough to tell tokens apart, and neither the secret nor the
/// whole key it is kept under.
pub fn audit_id(id: &str) -> String {
    id.chars().take(16).collect()
}

/// The audit log's name for a token: its name and [`audit_id`].
pub fn audit_credential(id: &str, name: &str) -> crate::audit::Credential {
    crate::audit::Credential::ApiToken { name: name.to_owned(), id: audit_id(id) }
}

impl ApiTokens {
    pub fn new(store: Arc<Store>) -> ApiTokens {
        ApiTokens { store, compiled: Mutex::new(HashMap::new()) }
    }

    /// Creates a token for `creator`; returns the secret (shown once) and the record.
    pub fn create(
        &self,
        creator: &str,
        request: NewApiToken,
        now: u64,
    ) -> Result<(String, ApiTokenRecord), ApiTokenError> {
        let duration = request.duration_seconds.ok_or_else(|| {
            ApiTokenError::Invalid("`duration_seconds` is required: API tokens must expire".into())
        })?;
        if duration == 0 || duration > MAX_DURATION {
            return Err(ApiTokenError::Invalid(format!("`duration_seconds` must be 1..={MAX_DURATION}")));
        }
        if request.name.trim().is_empty() {
            return Err(ApiTokenError::Invalid("`name` must not be empty".into()));
        }
        let mut role = Role { cluster_permissions: request.cluster_permissions.clone(), ..Role::default() };
        role.index_permissions = request.index_permissions.clone();
        let mut check = SecurityConfig::default();
        check.roles.insert("api-token".into(), role);
        check.validate().map_err(|e| ApiTokenError::Invalid(e.to_string()))?;
        if request.name.chars().any(char::is_control) || request.name.len() > 256 {
            return Err(ApiTokenError::Invalid(
                "`name` must be at most 256 bytes without control characters".into(),
            ));
        }
        let owned = self.store.list_prefix(NAMES_INDEX, &owner_prefix(creator))?;
        if owned.len() >= MAX_PER_USER {
            return Err(ApiTokenError::TooMany(creator.to_owned()));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| ApiTokenError::Invalid(format!("no randomness: {e}")))?;
        let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
        let record = ApiTokenRecord {
            name: request.name,
            creator: creator.to_owned(),
            creator_source: Some("internal".to_owned()),
            cluster_permissions: request.cluster_permissions,
            index_permissions: request.index_permissions,
            created_at: now,
            expires_at: now + duration,
        };
        let source = serde_json::to_vec(&record).map_err(|e| ApiTokenError::Invalid(e.to_string()))?;
        let id = hash(&token);
        // The name entry is created with the record, compare-and-set: of
        // two creations racing for one name, one wins.
        let written = self.store.write(&[
            Write {
                index: NAMES_INDEX,
                id: &name_key(creator, &record.name),
                source: Some(id.clone().into_bytes()),
                expect: Expect::Absent,
            },
            Write { index: STORE_INDEX, id: &id, source: Some(source), expect: Expect::Absent },
        ]);
        match written {
            Ok(_) => {
                crate::metrics::token(
                    crate::metrics::TokenKind::ApiToken,
                    crate::metrics::TokenEvent::Minted,
                );
                Ok((token, record))
            }
            Err(StoreError::Conflict { .. }) => Err(ApiTokenError::Duplicate(record.name)),
            Err(e) => Err(e.into()),
        }
    }

    /// Tokens of `creator` (all when `None`).
    pub fn list(&self, creator: Option<&str>) -> Result<Vec<ApiTokenRecord>, ApiTokenError> {
        let parse = |(_, doc): (String, crate::store::Versioned)| {
            serde_json::from_slice::<ApiTokenRecord>(&doc.source).ok()
        };
        let Some(creator) = creator else {
            return Ok(self.store.list(STORE_INDEX)?.into_iter().filter_map(parse).collect());
        };
        let ids = self
            .store
            .list_prefix(NAMES_INDEX, &owner_prefix(creator))?
            .into_iter()
            .filter_map(|(_, v)| String::from_utf8(v.source).ok())
            .collect::<Vec<_>>();
        Ok(self.store.get_many(STORE_INDEX, &ids)?.into_iter().filter_map(parse).collect())
    }

    /// Deletes `creator`'s token `name`; it fails on its next use.
    pub fn delete(&self, creator: &str, name: &str) -> Result<(), ApiTokenError> {
        let key = name_key(creator, name);
        let id = match self.store.get(NAMES_INDEX, &key)? {
            Some(doc) => String::from_utf8(doc.source).ok(),
            None => None,
        };
        let id = match id {
            Some(id) => id,
            // Tokens made before the names index have no entry there.
            None => self
                .store
                .list(STORE_INDEX)?
                .into_iter()
                .find(|(_, doc)| {
                    serde_json::from_slice::<ApiTokenRecord>(&doc.source)
                        .is_ok_and(|r| r.creator == creator && r.name == name)
                })
                .map(|(id, _)| id)
                .ok_or_else(|| ApiTokenError::NotFound(name.to_owned()))?,
        };
        self.store.write(&[
            Write { index: NAMES_INDEX, id: &key, source: None, expect: Expect::Any },
            Write { index: STORE_INDEX, id: &id, source: None, expect: Expect::Any },
        ])?;
        crate::metrics::token(crate::metrics::TokenKind::ApiToken, crate::metrics::TokenEvent::Revoked);
        if let Ok(mut compiled) = self.compiled.lock() {
            compiled.remove(&id);
        }
        Ok(())
    }

    /// The record of a presented token, if it exists (expiry not checked).
    pub fn lookup(&self, token: &str) -> Result<Option<(String, ApiTokenRecord)>, ApiTokenError> {
        if !token.starts_with(PREFIX) {
            return Ok(None);
        }
        let id = hash(token);
        Ok(self
            .store
            .get(STORE_INDEX, &id)?
            .and_then(|doc| serde_json::from_slice::<ApiTokenRecord>(&doc.source).ok())
            .map(|r| (id, r)))
    }

    /// A record by its id (the token's hash).
    pub fn get(&self, id: &str) -> Result<Option<ApiTokenRecord>, ApiTokenError> {
        Ok(self.store.get(STORE_INDEX, id)?.and_then(|doc| serde_json::from_slice(&doc.source).ok()))
    }

    /// The token's own permissions, compiled against the action groups of
    /// configuration `generation` (cached until the configuration changes).
    pub fn limit(
        &self,
        id: &str,
        record: &ApiTokenRecord,
        config: &SecurityConfig,
        generation: u64,
    ) -> Arc<TokenLimit> {
        let snapshot = generation as usize;
        if let Some((at, limit)) = self.compiled.lock().ok().and_then(|m| m.get(id).cloned())
            && at == snapshot
        {
            return limit;
        }
        let mut own =
            SecurityConfig { action_groups: config.action_groups.clone(), ..SecurityConfig::default() };
        own.roles.insert(
            "api-token".into(),
            Role {
                cluster_permissions: record.cluster_permissions.clone(),
                index_permissions: record.index_permissions.clone(),
                ..Role::default()
            },
        );
        let privileges = Privileges::compile(&own);
        let mut roles = RoleSet::default();
        if let Some(rid) = privileges.role_id("api-token") {
            roles.insert(rid);
        }
        let subject = Subject {
            name: format!("API token `{}` of `{}`", record.name, record.creator),
            roles,
            attributes: HashMap::new(),
        };
        let limit = Arc::new(TokenLimit { privileges, subject, name: record.name.clone() });
        if let Ok(mut map) = self.compiled.lock() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(id.to_owned(), (snapshot, limit.clone()));
        }
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The audit log names a token by its name and the start of its hash:
    /// neither the secret nor the whole key it is kept under.
    #[test]
    fn the_audit_names_a_token_without_its_secret() -> Result<(), serde_json::Error> {
        let token = "wdn_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";
        let id = hash(token);
        let credential = audit_credential(&id, "ci-reader");
        let shown = serde_json::to_string(&credential)?;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&shown)?,
            serde_json::json!({"kind": "api_token", "name": "ci-reader", "id": &id[..16]})
        );
        assert!(!shown.contains(token) && !shown.contains(&token[4..]) && !shown.contains(&id));
        assert_eq!(serde_json::from_str::<crate::audit::Credential>(&shown)?, credential);
        Ok(())
    }
}
