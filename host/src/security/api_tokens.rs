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
use crate::store::{Expect, Store, StoreError, Write};

pub const STORE_INDEX: &str = ".warden-api-tokens";
/// Expiry is required and at most this far away (90 days).
pub const MAX_DURATION: u64 = 90 * 86_400;
const PREFIX: &str = "wdn_";

/// What is kept of a token (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiTokenRecord {
    pub name: String,
    pub creator: String,
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
    #[error("no API token named `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token's own permissions, compiled (against the action groups of the
/// configuration it was compiled under).
#[derive(Debug)]
pub struct TokenLimit {
    pub privileges: Privileges,
    pub subject: Subject,
}

#[derive(Debug)]
pub struct ApiTokens {
    store: Arc<Store>,
    /// Compiled limits by token hash, for the configuration snapshot they
    /// were compiled under (by pointer); a config change recompiles.
    compiled: Mutex<HashMap<String, (usize, Arc<TokenLimit>)>>,
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
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
        if self.list(Some(creator))?.iter().any(|r| r.name == request.name) {
            return Err(ApiTokenError::Duplicate(request.name));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| ApiTokenError::Invalid(format!("no randomness: {e}")))?;
        let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
        let record = ApiTokenRecord {
            name: request.name,
            creator: creator.to_owned(),
            cluster_permissions: request.cluster_permissions,
            index_permissions: request.index_permissions,
            created_at: now,
            expires_at: now + duration,
        };
        let source = serde_json::to_vec(&record).map_err(|e| ApiTokenError::Invalid(e.to_string()))?;
        self.store.write(&[Write {
            index: STORE_INDEX,
            id: &hash(&token),
            source: Some(source),
            expect: Expect::Absent,
        }])?;
        Ok((token, record))
    }

    /// Tokens of `creator` (all when `None`).
    pub fn list(&self, creator: Option<&str>) -> Result<Vec<ApiTokenRecord>, ApiTokenError> {
        Ok(self
            .store
            .list(STORE_INDEX)?
            .into_iter()
            .filter_map(|(_, doc)| serde_json::from_slice::<ApiTokenRecord>(&doc.source).ok())
            .filter(|r| creator.is_none_or(|c| r.creator == c))
            .collect())
    }

    /// Deletes `creator`'s token `name`; it fails on its next use.
    pub fn delete(&self, creator: &str, name: &str) -> Result<(), ApiTokenError> {
        for (id, doc) in self.store.list(STORE_INDEX)? {
            let Ok(record) = serde_json::from_slice::<ApiTokenRecord>(&doc.source) else { continue };
            if record.creator == creator && record.name == name {
                self.store.write(&[Write {
                    index: STORE_INDEX,
                    id: &id,
                    source: None,
                    expect: Expect::Any,
                }])?;
                if let Ok(mut compiled) = self.compiled.lock() {
                    compiled.remove(&id);
                }
                return Ok(());
            }
        }
        Err(ApiTokenError::NotFound(name.to_owned()))
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
        let limit = Arc::new(TokenLimit { privileges, subject });
        if let Ok(mut map) = self.compiled.lock() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(id.to_owned(), (snapshot, limit.clone()));
        }
        limit
    }
}
