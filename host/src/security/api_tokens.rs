//! API tokens (OpenSearch 3.7 shapes): opaque `wdn_…` secrets sent as
//! `Authorization: ApiKey <token>`, shown once at creation; only their
//! SHA-256 is kept (in the store, `.warden-api-tokens`, keyed by it).
//! A token's public `id` is the first 16 hex digits of that hash, the same
//! id the audit log names it by ([`audit_id`]); `.warden-api-token-ids`
//! maps it to the record, so a revocation by id is one read.
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

use super::SecurityState;
use super::config::{IndexPermission, Role, SecurityConfig};
use super::privileges::{Privileges, RoleSet, Subject, expand_action_groups};
use crate::error::{ErrorKind, HasKind};
use crate::store::{Expect, Store, StoreError, Write};

pub const STORE_INDEX: &str = ".warden-api-tokens";
/// `<creator>\u{1f}<name>` → the token's hash: a creator's tokens without
/// a scan, and one name per creator by compare-and-set.
pub const NAMES_INDEX: &str = ".warden-api-token-names";
/// A token's public id (its [`audit_id`]) → its hash: revocation by id.
pub const IDS_INDEX: &str = ".warden-api-token-ids";
/// Tokens one user may hold at once, as OpenSearch caps them.
pub const MAX_PER_USER: usize = 100;
/// Every token expires, at most this far away (90 days, OpenSearch's
/// `max_duration_seconds`); a request without `duration_seconds` gets it.
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
    pub index_permissions: Vec<NewIndexPermission>,
    pub duration_seconds: Option<u64>,
}

/// One index permission of a creation request: OpenSearch 3.7 names its
/// patterns `index_pattern` (a string or a list); the roles' own
/// `index_patterns` is accepted too, as Warden took it before.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIndexPermission {
    #[serde(default)]
    pub index_pattern: Option<OneOrMany>,
    #[serde(default)]
    pub index_patterns: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_actions: Option<Vec<String>>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl NewIndexPermission {
    /// The permission as a role holds it; each part is required, once.
    fn resolve(self) -> Result<IndexPermission, ApiTokenError> {
        let patterns = match (self.index_pattern, self.index_patterns) {
            (Some(OneOrMany::One(p)), None) => vec![p],
            (Some(OneOrMany::Many(p)), None) | (None, Some(p)) => p,
            (Some(_), Some(_)) => {
                return Err(ApiTokenError::Invalid(
                    "give `index_pattern` or `index_patterns` in an index permission, not both".into(),
                ));
            }
            (None, None) => {
                return Err(ApiTokenError::Invalid(
                    "each index permission must contain `index_pattern`".into(),
                ));
            }
        };
        let allowed_actions = self.allowed_actions.ok_or_else(|| {
            ApiTokenError::Invalid("each index permission must contain `allowed_actions`".into())
        })?;
        if patterns.is_empty() {
            return Err(ApiTokenError::Invalid("`index_pattern` must name at least one index".into()));
        }
        Ok(IndexPermission { index_patterns: patterns, allowed_actions, ..IndexPermission::default() })
    }
}

/// A token as the list answers it: OpenSearch 3.7's fields (`iat` and
/// `expires_at` in epoch milliseconds, `index_pattern`, `created_by`).
#[derive(Debug, Clone, Serialize)]
pub struct ListedApiToken {
    pub id: String,
    pub name: String,
    pub iat: u64,
    pub expires_at: u64,
    pub cluster_permissions: Vec<String>,
    pub index_permissions: Vec<ListedIndexPermission>,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListedIndexPermission {
    pub index_pattern: Vec<String>,
    pub allowed_actions: Vec<String>,
}

impl ListedApiToken {
    fn of(hash: &str, record: ApiTokenRecord) -> ListedApiToken {
        ListedApiToken {
            id: audit_id(hash),
            name: record.name,
            iat: record.created_at.saturating_mul(1000),
            expires_at: record.expires_at.saturating_mul(1000),
            cluster_permissions: record.cluster_permissions,
            index_permissions: record
                .index_permissions
                .into_iter()
                .map(|p| ListedIndexPermission {
                    index_pattern: p.index_patterns,
                    allowed_actions: p.allowed_actions,
                })
                .collect(),
            created_by: record.creator,
        }
    }
}

/// What a revocation removed.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub id: String,
    pub name: String,
    pub creator: String,
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
    /// A token may not hold what its creator does not: the first such
    /// permission is named.
    #[error("an API token cannot hold what its creator does not: {0}")]
    Wider(String),
    /// Another user's token: only `restapi:admin/apitokens` revokes it.
    #[error("API token `{0}` is not yours; revoking another user's token needs `restapi:admin/apitokens`")]
    NotYours(String),
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
            ApiTokenError::Wider(_) | ApiTokenError::NotYours(_) => ErrorKind::Denied,
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

/// A name as OpenSearch 3.7 takes it: `[a-zA-Z0-9_-]+`, at most 256 bytes.
fn check_name(name: &str) -> Result<(), ApiTokenError> {
    if name.is_empty()
        || name.len() > 256
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ApiTokenError::Invalid(format!(
            "`name` must match [a-zA-Z0-9_-]+ and be at most 256 bytes, not `{}`",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// Refuses a token wider than its creator holds now: every cluster
/// permission and every (index pattern, action) it asks for, action groups
/// expanded, must be one the creator holds. A pattern is checked as the
/// literal name it is (`logs-*` is allowed by a role on `logs-*` or `*`,
/// not by one on `logs-a`), so a grant is never guessed wider than it is.
/// Tokens stay limited by their creator at every use too: this check makes
/// the refusal visible at once instead of a token that silently can less.
pub fn check_within(
    request: &NewApiToken,
    state: &SecurityState,
    subject: &Subject,
) -> Result<(), ApiTokenError> {
    let groups = &state.config.action_groups;
    for action in expand_action_groups(&request.cluster_permissions, groups) {
        // An extension permission (`extension:<id>/…`, `schedule:<id>`) in
        // a token's cluster permissions is held as a role holds it: in its
        // extension permissions or its cluster ones.
        if state.privileges.check_cluster(subject, &action).is_err()
            && state.privileges.check_extension(subject, &action).is_err()
        {
            return Err(ApiTokenError::Wider(format!("cluster permission `{action}`")));
        }
    }
    for permission in &request.index_permissions {
        let patterns: Vec<&str> = match (&permission.index_pattern, &permission.index_patterns) {
            (Some(OneOrMany::One(p)), _) => vec![p.as_str()],
            (Some(OneOrMany::Many(p)), _) | (None, Some(p)) => p.iter().map(String::as_str).collect(),
            (None, None) => Vec::new(),
        };
        let actions = expand_action_groups(permission.allowed_actions.as_deref().unwrap_or_default(), groups);
        for action in &actions {
            for pattern in &patterns {
                if state.privileges.check_indices(subject, action, [*pattern]).is_err() {
                    return Err(ApiTokenError::Wider(format!("`{action}` on `{pattern}`")));
                }
            }
        }
    }
    Ok(())
}

impl ApiTokens {
    pub fn new(store: Arc<Store>) -> ApiTokens {
        ApiTokens { store, compiled: Mutex::new(HashMap::new()) }
    }

    /// Creates a token for `creator`; returns the secret (shown once), the
    /// token's id and the record. Without `duration_seconds` the token
    /// lives the longest a token may ([`MAX_DURATION`]), as OpenSearch does.
    pub fn create(
        &self,
        creator: &str,
        request: NewApiToken,
        now: u64,
    ) -> Result<(String, String, ApiTokenRecord), ApiTokenError> {
        let duration = request.duration_seconds.unwrap_or(MAX_DURATION);
        if duration == 0 || duration > MAX_DURATION {
            return Err(ApiTokenError::Invalid(format!(
                "`duration_seconds` must be 1..={MAX_DURATION} (the maximum is the default), not {duration}"
            )));
        }
        check_name(&request.name)?;
        let index_permissions = request
            .index_permissions
            .into_iter()
            .map(NewIndexPermission::resolve)
            .collect::<Result<Vec<_>, _>>()?;
        let mut role = Role { cluster_permissions: request.cluster_permissions.clone(), ..Role::default() };
        role.index_permissions = index_permissions.clone();
        let mut check = SecurityConfig::default();
        check.roles.insert("api-token".into(), role);
        check.validate().map_err(|e| ApiTokenError::Invalid(e.to_string()))?;
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
            index_permissions,
            created_at: now,
            expires_at: now + duration,
        };
        let source = serde_json::to_vec(&record).map_err(|e| ApiTokenError::Invalid(e.to_string()))?;
        let hash = hash(&token);
        let id = audit_id(&hash);
        // The name and id entries are created with the record,
        // compare-and-set: of two creations racing for one name, one wins.
        let written = self.store.write(&[
            Write {
                index: NAMES_INDEX,
                id: &name_key(creator, &record.name),
                source: Some(hash.clone().into_bytes()),
                expect: Expect::Absent,
            },
            Write {
                index: IDS_INDEX,
                id: &id,
                source: Some(hash.clone().into_bytes()),
                expect: Expect::Absent,
            },
            Write { index: STORE_INDEX, id: &hash, source: Some(source), expect: Expect::Absent },
        ]);
        match written {
            Ok(_) => {
                crate::metrics::token(
                    crate::metrics::TokenKind::ApiToken,
                    crate::metrics::TokenEvent::Minted,
                );
                Ok((token, id, record))
            }
            Err(StoreError::Conflict { .. }) => Err(ApiTokenError::Duplicate(record.name)),
            Err(e) => Err(e.into()),
        }
    }

    /// Tokens of `creator` (all when `None`), each with its id.
    fn records(&self, creator: Option<&str>) -> Result<Vec<(String, ApiTokenRecord)>, ApiTokenError> {
        let parse = |(hash, doc): (String, crate::store::Versioned)| {
            serde_json::from_slice::<ApiTokenRecord>(&doc.source).ok().map(|r| (hash, r))
        };
        let Some(creator) = creator else {
            return Ok(self.store.list(STORE_INDEX)?.into_iter().filter_map(parse).collect());
        };
        let hashes = self
            .store
            .list_prefix(NAMES_INDEX, &owner_prefix(creator))?
            .into_iter()
            .filter_map(|(_, v)| String::from_utf8(v.source).ok())
            .collect::<Vec<_>>();
        Ok(self.store.get_many(STORE_INDEX, &hashes)?.into_iter().filter_map(parse).collect())
    }

    /// Tokens of `creator` (all when `None`), as the list answers them.
    pub fn list(&self, creator: Option<&str>) -> Result<Vec<ListedApiToken>, ApiTokenError> {
        Ok(self.records(creator)?.into_iter().map(|(hash, r)| ListedApiToken::of(&hash, r)).collect())
    }

    /// The hash of the token whose id is `id`, if there is one.
    fn hash_of_id(&self, id: &str) -> Result<Option<String>, ApiTokenError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        if let Some(doc) = self.store.get(IDS_INDEX, id)? {
            return Ok(String::from_utf8(doc.source).ok());
        }
        // Tokens made before the ids index have no entry there.
        Ok(self.store.list(STORE_INDEX)?.into_iter().map(|(hash, _)| hash).find(|hash| hash.starts_with(id)))
    }

    /// Revokes the token `key` names, as OpenSearch's
    /// `DELETE …/apitokens/{id}`: `key` is a token id, or the name of one
    /// of `caller`'s own tokens (Warden's earlier form). Another user's
    /// token is revoked only for a security manager (`admin`); for anyone
    /// else it is refused, and nothing changes.
    pub fn revoke(&self, caller: &str, admin: bool, key: &str) -> Result<Revoked, ApiTokenError> {
        let mut not_yours = false;
        if let Some(hash) = self.hash_of_id(key)?
            && let Some(record) = self.get(&hash)?
        {
            if admin || record.creator == caller {
                self.delete(&record.creator, &record.name)?;
                return Ok(Revoked { id: audit_id(&hash), name: record.name, creator: record.creator });
            }
            not_yours = true;
        }
        match self.delete(caller, key) {
            Ok(hash) => Ok(Revoked { id: audit_id(&hash), name: key.to_owned(), creator: caller.to_owned() }),
            Err(ApiTokenError::NotFound(_)) if not_yours => Err(ApiTokenError::NotYours(key.to_owned())),
            Err(e) => Err(e),
        }
    }

    /// Deletes `creator`'s token `name`; it fails on its next use. Returns its hash.
    pub fn delete(&self, creator: &str, name: &str) -> Result<String, ApiTokenError> {
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
            Write { index: IDS_INDEX, id: &audit_id(&id), source: None, expect: Expect::Any },
            Write { index: STORE_INDEX, id: &id, source: None, expect: Expect::Any },
        ])?;
        crate::metrics::token(crate::metrics::TokenKind::ApiToken, crate::metrics::TokenEvent::Revoked);
        if let Ok(mut compiled) = self.compiled.lock() {
            compiled.remove(&id);
        }
        Ok(id)
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
