//! Consent records (seed 000, seed 001): a user's standing "yes" to one
//! extension running background work on their behalf, with the scopes that
//! work may use — a subset of the user's permissions, or all of them. Owned
//! by security, kept in the system index `.warden-consents`, which no
//! cluster call reaches.
//!
//! One record per (identity source, user, extension): its id is derived
//! from the three, so the per-run lookup is one GET, and consenting again
//! replaces the scopes (the id stays). Revoking keeps the record, marked,
//! for the audit trail and listing.
//!
//! The `schedule:<id>` permission stays the operator's "this user may
//! consent"; a consent record is the user's own act, and `*` never implies
//! one. At every run the user gate is the owner's current roles, and the
//! consent gate ([`Consents::limit`]) the scopes: the run may do only what
//! both allow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::IdentitySource;
use super::api_tokens::TokenLimit;
use super::config::{IndexPermission, Role, SecurityConfig};
use super::privileges::{Privileges, RoleSet, Subject};
use crate::error::{ErrorKind, HasKind};
use crate::store::{Expect, Store, StoreError, Write};

/// The system index of consent records.
pub const INDEX: &str = ".warden-consents";

/// How long an external (JWT) user's consent lasts by default: their
/// backend roles were seen at consent and no identity provider can be asked
/// again, so they consent again, with a fresh login, after this.
pub const DEFAULT_EXTERNAL_MAX_AGE_MS: u64 = 30 * 86_400_000;

/// What the consented work may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scopes {
    /// Everything the user may do at each run (`"all"`).
    All(AllScopes),
    /// Only these, and only as far as the user's roles allow at each run.
    Limited(LimitedScopes),
}

/// The `"all"` marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllScopes {
    #[serde(rename = "all")]
    All,
}

/// Scopes in OpenSearch's role shape (cluster actions; index patterns with
/// their actions; action groups allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitedScopes {
    #[serde(default)]
    pub cluster_permissions: Vec<String>,
    #[serde(default)]
    pub index_permissions: Vec<ScopeIndexPermission>,
}

/// The most entries scopes may hold, counted over the whole (every
/// pattern and action of every entry): a consent is checked entry by entry
/// against the user's roles and compiled for every run, so its size is
/// bounded, not only the body's.
pub const MAX_SCOPE_ENTRIES: usize = 256;
/// The longest pattern or action in scopes.
pub const MAX_SCOPE_ITEM_BYTES: usize = 256;

impl LimitedScopes {
    fn check_size(&self) -> Result<(), ConsentError> {
        let items = self.cluster_permissions.iter().chain(
            self.index_permissions.iter().flat_map(|p| p.index_patterns.iter().chain(&p.allowed_actions)),
        );
        let mut count = 0;
        for item in items {
            count += 1;
            if item.len() > MAX_SCOPE_ITEM_BYTES {
                return Err(ConsentError::Invalid(format!(
                    "scopes: `{}…` is longer than {MAX_SCOPE_ITEM_BYTES} bytes",
                    item.chars().take(32).collect::<String>()
                )));
            }
        }
        if count > MAX_SCOPE_ENTRIES {
            return Err(ConsentError::Invalid(format!(
                "scopes: {count} patterns and actions in all; at most {MAX_SCOPE_ENTRIES}"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeIndexPermission {
    pub index_patterns: Vec<String>,
    pub allowed_actions: Vec<String>,
}

impl Scopes {
    /// Parses a request's `scopes`: `"all"` or `{"cluster_permissions":
    /// [..], "index_permissions": [{"index_patterns": [..],
    /// "allowed_actions": [..]}]}`; the error says which shape was expected.
    pub fn from_json(value: &serde_json::Value) -> Result<Scopes, ConsentError> {
        match value {
            serde_json::Value::String(s) if s == "all" => Ok(Scopes::All(AllScopes::All)),
            serde_json::Value::Object(_) => {
                let limited: LimitedScopes = serde_json::from_value(value.clone())
                    .map_err(|e| ConsentError::Invalid(format!("scopes: {e}")))?;
                if limited.cluster_permissions.is_empty() && limited.index_permissions.is_empty() {
                    return Err(ConsentError::Invalid(
                        "scopes: empty; name cluster_permissions or index_permissions, or give \"all\""
                            .into(),
                    ));
                }
                for (i, p) in limited.index_permissions.iter().enumerate() {
                    if p.index_patterns.is_empty() || p.allowed_actions.is_empty() {
                        return Err(ConsentError::Invalid(format!(
                            "scopes.index_permissions[{i}]: needs index_patterns and allowed_actions"
                        )));
                    }
                }
                limited.check_size()?;
                Ok(Scopes::Limited(limited))
            }
            other => Err(ConsentError::Invalid(format!(
                "scopes must be \"all\" or {{\"cluster_permissions\": [..], \"index_permissions\": [..]}}, got {other}"
            ))),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Scopes::All(_))
    }
}

/// One consent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub id: String,
    pub user: String,
    /// Where the user's identity came from: a JWT `ana` is not internal `ana`.
    pub auth_source: IdentitySource,
    pub extension: String,
    /// The extension's version (and, when installed through the lifecycle,
    /// component digest) consented to.
    #[serde(default)]
    pub extension_version: Option<String>,
    #[serde(default)]
    pub component_sha256: Option<String>,
    pub scopes: Scopes,
    /// An external user's backend roles, as seen at consent: their jobs run
    /// with these until the consent expires.
    #[serde(default)]
    pub backend_roles: Vec<String>,
    /// The API token the consent was given through, if one was: the scopes
    /// stay within its limits.
    #[serde(default)]
    pub via_api_token: Option<String>,
    pub created_at: u64,
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub revoked_at: Option<u64>,
    #[serde(default)]
    pub revoked_by: Option<String>,
}

impl Consent {
    /// Not revoked and not expired at `now` (ms).
    pub fn is_live(&self, now: u64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }

    /// Why it is not live at `now`, in words; `None` when it is.
    pub fn not_live(&self, now: u64) -> Option<String> {
        if let Some(at) = self.revoked_at {
            let by = self.revoked_by.as_deref().unwrap_or("?");
            return Some(format!(
                "consent `{}` of `{}` to extension `{}` was revoked by `{by}` at {}",
                self.id,
                self.user,
                self.extension,
                crate::time::rfc3339(i64::try_from(at).unwrap_or(i64::MAX))
            ));
        }
        match self.expires_at {
            Some(at) if now >= at => Some(format!(
                "consent `{}` of `{}` to extension `{}` expired at {}; the user consents again with a fresh login",
                self.id,
                self.user,
                self.extension,
                crate::time::rfc3339(i64::try_from(at).unwrap_or(i64::MAX))
            )),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("{0}")]
    Invalid(String),
    #[error("no consent `{0}`")]
    NotFound(String),
    #[error("consent record [{0}] is corrupt: {1}")]
    Corrupt(String, String),
    #[error("consent `{0}` changed concurrently; retry")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ConsentError {
    fn from(e: StoreError) -> Self {
        ConsentError::Store(e)
    }
}

impl HasKind for ConsentError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConsentError::Invalid(_) => ErrorKind::Invalid,
            ConsentError::NotFound(_) => ErrorKind::NotFound,
            ConsentError::Conflict(_) => ErrorKind::Conflict,
            ConsentError::Corrupt(..) => ErrorKind::Internal,
            ConsentError::Store(e) => e.kind(),
        }
    }
}

/// The id of the consent of (`source`, `user`) to `extension`. The three
/// are joined with a separator none of them can hold (user names are
/// free of control characters; ids and sources are plain words).
pub fn id_for(source: IdentitySource, user: &str, extension: &str) -> String {
    let digest = Sha256::digest(format!("{source}\u{1f}{user}\u{1f}{extension}").as_bytes());
    hex::encode(&digest[..12])
}

/// A consent's gate, with the (configuration generation, record
/// `created_at`) it was compiled for.
type Compiled = (u64, u64, Arc<TokenLimit>);

/// The consent records.
#[derive(Debug)]
pub struct Consents {
    store: Arc<Store>,
    /// How long an external (JWT) user's consent lasts.
    external_max_age_ms: u64,
    /// Compiled scopes by consent id, for the (configuration generation,
    /// record created_at) they were compiled under.
    compiled: Mutex<HashMap<String, Compiled>>,
}

impl Consents {
    pub fn new(store: Arc<Store>) -> Consents {
        Consents {
            store,
            external_max_age_ms: DEFAULT_EXTERNAL_MAX_AGE_MS,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// With external users' consents lasting `ms`.
    pub fn with_external_max_age(mut self, ms: u64) -> Consents {
        self.external_max_age_ms = ms;
        self
    }

    pub fn external_max_age_ms(&self) -> u64 {
        self.external_max_age_ms
    }

    fn decode(id: &str, source: &[u8]) -> Result<Consent, ConsentError> {
        serde_json::from_slice(source).map_err(|e| ConsentError::Corrupt(id.to_owned(), e.to_string()))
    }

    pub fn get(&self, id: &str) -> Result<Option<Consent>, ConsentError> {
        self.store.get(INDEX, id)?.map(|doc| Self::decode(id, &doc.source)).transpose()
    }

    /// The live consent of (`source`, `user`) to `extension` at `now`, or
    /// why there is none (in words).
    pub fn live(
        &self,
        source: IdentitySource,
        user: &str,
        extension: &str,
        now: u64,
    ) -> Result<Result<Consent, String>, ConsentError> {
        Ok(match self.get(&id_for(source, user, extension))? {
            None => Err(format!(
                "user `{user}` has not consented to extension `{extension}` running work for them"
            )),
            Some(consent) => match consent.not_live(now) {
                None => Ok(consent),
                Some(why) => Err(why),
            },
        })
    }

    /// Every record (revoked and expired ones too).
    pub fn list(&self) -> Result<Vec<Consent>, ConsentError> {
        self.store.list(INDEX)?.iter().map(|(id, doc)| Self::decode(id, &doc.source)).collect()
    }

    /// Keeps `consent` (a new one, or the user's new answer replacing
    /// their earlier one: same id).
    pub fn put(&self, consent: &Consent) -> Result<(), ConsentError> {
        let source = serde_json::to_vec(consent)
            .map_err(|e| ConsentError::Corrupt(consent.id.clone(), e.to_string()))?;
        self.store.write(&[Write {
            index: INDEX,
            id: &consent.id,
            source: Some(source),
            expect: Expect::Any,
        }])?;
        if let Ok(mut compiled) = self.compiled.lock() {
            compiled.remove(&consent.id);
        }
        Ok(())
    }

    /// Marks consent `id` revoked by `by` at `now` (compare-and-set). A
    /// revoked one is returned as it was: a repeated DELETE changes nothing.
    pub fn revoke(&self, id: &str, by: &str, now: u64) -> Result<Consent, ConsentError> {
        let doc = self.store.get(INDEX, id)?.ok_or_else(|| ConsentError::NotFound(id.to_owned()))?;
        let mut consent = Self::decode(id, &doc.source)?;
        if consent.revoked_at.is_some() {
            return Ok(consent);
        }
        consent.revoked_at = Some(now);
        consent.revoked_by = Some(by.to_owned());
        let source =
            serde_json::to_vec(&consent).map_err(|e| ConsentError::Corrupt(id.to_owned(), e.to_string()))?;
        let expect = Expect::Version { seq_no: doc.seq_no, primary_term: doc.primary_term };
        match self.store.write(&[Write { index: INDEX, id, source: Some(source), expect }]) {
            Ok(_) => Ok(consent),
            Err(StoreError::Conflict { .. }) => Err(ConsentError::Conflict(id.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes every live consent of (`source`, `user`), by `by`: the user
    /// was deleted, and a later user who takes the name is someone else.
    /// Returns the consents revoked.
    pub fn revoke_all_of(
        &self,
        source: IdentitySource,
        user: &str,
        by: &str,
        now: u64,
    ) -> Result<Vec<Consent>, ConsentError> {
        self.revoke_where(|c| c.user == user && c.auth_source == source, by, now)
    }

    /// Revokes every live consent to `extension`, by `by`: it was removed,
    /// and another extension installed later under the id is other code.
    pub fn revoke_all_to(&self, extension: &str, by: &str, now: u64) -> Result<Vec<Consent>, ConsentError> {
        self.revoke_where(|c| c.extension == extension, by, now)
    }

    fn revoke_where(
        &self,
        which: impl Fn(&Consent) -> bool,
        by: &str,
        now: u64,
    ) -> Result<Vec<Consent>, ConsentError> {
        let mut revoked = Vec::new();
        for consent in self.list()? {
            if consent.revoked_at.is_none() && which(&consent) {
                revoked.push(self.revoke(&consent.id, by, now)?);
            }
        }
        Ok(revoked)
    }

    /// The consent gate of `consent` compiled against the action groups of
    /// configuration `generation`: `None` for `"all"` (the user gate alone
    /// decides).
    pub fn limit(
        &self,
        consent: &Consent,
        config: &SecurityConfig,
        generation: u64,
    ) -> Option<Arc<TokenLimit>> {
        let Scopes::Limited(scopes) = &consent.scopes else { return None };
        let cached = self.compiled.lock().unwrap_or_else(PoisonError::into_inner).get(&consent.id).cloned();
        if let Some((at, created, limit)) = cached
            && at == generation
            && created == consent.created_at
        {
            return Some(limit);
        }
        let limit = Arc::new(compile(
            &format!("consent of `{}` to `{}`", consent.user, consent.extension),
            scopes,
            config,
        ));
        let mut compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if compiled.len() > 10_000 {
            compiled.clear();
        }
        compiled.insert(consent.id.clone(), (generation, consent.created_at, limit.clone()));
        Some(limit)
    }
}

/// Scopes as one role of their own, compiled with the configuration's
/// action groups.
pub fn compile(name: &str, scopes: &LimitedScopes, config: &SecurityConfig) -> TokenLimit {
    let mut own = SecurityConfig { action_groups: config.action_groups.clone(), ..SecurityConfig::default() };
    own.roles.insert(
        "consent".into(),
        Role {
            cluster_permissions: scopes.cluster_permissions.clone(),
            index_permissions: scopes
                .index_permissions
                .iter()
                .map(|p| IndexPermission {
                    index_patterns: p.index_patterns.clone(),
                    allowed_actions: p.allowed_actions.clone(),
                    ..IndexPermission::default()
                })
                .collect(),
            ..Role::default()
        },
    );
    let privileges = Privileges::compile(&own);
    let mut roles = RoleSet::default();
    if let Some(id) = privileges.role_id("consent") {
        roles.insert(id);
    }
    let subject = Subject { name: name.to_owned(), roles, attributes: HashMap::new() };
    TokenLimit { privileges, subject, name: name.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn consent(user: &str, scopes: Scopes) -> Consent {
        Consent {
            id: id_for(IdentitySource::Internal, user, "reporter"),
            user: user.into(),
            auth_source: IdentitySource::Internal,
            extension: "reporter".into(),
            extension_version: Some("1".into()),
            component_sha256: None,
            scopes,
            backend_roles: vec![],
            via_api_token: None,
            created_at: 1,
            expires_at: None,
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn scopes_parse_all_or_the_role_shape_and_say_what_is_wrong() -> TestResult {
        assert!(Scopes::from_json(&json!("all"))?.is_all());
        let limited = Scopes::from_json(&json!({
            "index_permissions": [{"index_patterns": ["logs-*"], "allowed_actions": ["read"]}]
        }))?;
        assert!(!limited.is_all());
        for (bad, says) in [
            (json!("everything"), "must be \"all\""),
            (json!({}), "empty"),
            (json!({"cluster": ["x"]}), "unknown field `cluster`"),
            (
                json!({"index_permissions": [{"index_patterns": ["a"], "allowed_actions": []}]}),
                "index_permissions[0]",
            ),
            (
                json!({"index_permissions": [{"index_patterns": vec!["p*"; 300], "allowed_actions": ["read"]}]}),
                "at most 256",
            ),
            (json!({"cluster_permissions": ["x".repeat(300)]}), "longer than 256 bytes"),
        ] {
            let error = Scopes::from_json(&bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(says), "{bad}: {error}");
        }
        // Stored and read back in the request's own shapes.
        assert_eq!(serde_json::to_value(Scopes::All(AllScopes::All))?, json!("all"));
        let back: Scopes = serde_json::from_value(serde_json::to_value(&limited)?)?;
        assert_eq!(back, limited);
        Ok(())
    }

    #[test]
    fn ids_tell_identities_and_extensions_apart() {
        let internal = id_for(IdentitySource::Internal, "ana", "reporter");
        assert_eq!(internal, id_for(IdentitySource::Internal, "ana", "reporter"));
        assert_ne!(internal, id_for(IdentitySource::Jwt, "ana", "reporter"));
        assert_ne!(internal, id_for(IdentitySource::Internal, "ana", "reporter2"));
        // The separator keeps `a` + `b_c` apart from `a_b` + `c`.
        assert_ne!(
            id_for(IdentitySource::Internal, "a", "b"),
            id_for(IdentitySource::Internal, "a\u{1f}b", "")
        );
    }

    #[test]
    fn consents_live_until_revoked_or_expired() -> TestResult {
        let dir = tempfile::tempdir()?;
        let consents = Consents::new(Arc::new(Store::open(&dir.path().join("s.redb"))?));
        let mut ana = consent("ana", Scopes::All(AllScopes::All));
        ana.expires_at = Some(100);
        consents.put(&ana)?;
        assert!(consents.live(IdentitySource::Internal, "ana", "reporter", 50)?.is_ok());
        // Someone else of the same name from another source has none.
        assert!(consents.live(IdentitySource::Jwt, "ana", "reporter", 50)?.is_err());
        let expired = consents.live(IdentitySource::Internal, "ana", "reporter", 100)?;
        assert!(expired.is_err_and(|why| why.contains("expired")));
        ana.expires_at = None;
        consents.put(&ana)?;
        let revoked = consents.revoke(&ana.id, "admin", 60)?;
        assert_eq!(revoked.revoked_by.as_deref(), Some("admin"));
        let why = consents.live(IdentitySource::Internal, "ana", "reporter", 70)?;
        assert!(why.is_err_and(|why| why.contains("revoked by `admin`")));
        // Revoking again changes nothing; an unknown id is not found.
        assert_eq!(consents.revoke(&ana.id, "bob", 80)?.revoked_by.as_deref(), Some("admin"));
        assert!(matches!(consents.revoke("nope", "admin", 80), Err(ConsentError::NotFound(_))));
        Ok(())
    }

    #[test]
    fn limited_scopes_compile_to_a_gate_that_allows_only_them() -> TestResult {
        let dir = tempfile::tempdir()?;
        let consents = Consents::new(Arc::new(Store::open(&dir.path().join("s.redb"))?));
        let scopes = Scopes::from_json(&json!({
            "index_permissions": [{"index_patterns": ["logs-*"], "allowed_actions": ["indices:data/read/*"]}]
        }))?;
        let config = SecurityConfig::default();
        let limit = consents.limit(&consent("ana", scopes), &config, 1).ok_or("no limit")?;
        let search = "indices:data/read/search";
        assert!(limit.privileges.check_indices(&limit.subject, search, ["logs-1"]).is_ok());
        assert!(limit.privileges.check_indices(&limit.subject, search, ["other"]).is_err());
        assert!(
            limit.privileges.check_indices(&limit.subject, "indices:data/write/index", ["logs-1"]).is_err()
        );
        assert!(consents.limit(&consent("ana", Scopes::All(AllScopes::All)), &config, 1).is_none());
        Ok(())
    }
}
