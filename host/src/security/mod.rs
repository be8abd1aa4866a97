//! The security core: OpenSearch-compatible users, roles, role mappings and
//! action groups ([`config`]); patterns ([`pattern`]); authentication
//! ([`authn`]: one file per method, [`password`]); role resolution
//! ([`mapping`]) and compiled privilege evaluation ([`privileges`]); the
//! token service ([`obo`]), API tokens ([`api_tokens`]), service accounts
//! ([`service_accounts`]) and the names of extension permissions
//! ([`permissions`]).
//!
//! [`Security`] holds the current configuration as one immutable snapshot
//! ([`SecurityState`]); a change builds a new snapshot and swaps it in, so
//! no request ever sees half a change.

pub mod api_tokens;
pub mod authn;
pub mod config;
pub mod consents;
pub mod mapping;
pub mod obo;
pub mod password;
pub mod pattern;
pub mod permissions;
pub mod privileges;
pub mod service_accounts;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, HasKind};
use crate::store::{Expect, Store, StoreError, Write};

use self::authn::{Authc, BasicAuthenticator};
pub use self::authn::{internal_principal, token_holder};
use self::config::{ConfigError, SecurityConfig};
use self::mapping::{Mappings, Principal};
pub use self::permissions::{consent_permission, route_permission};
use self::privileges::{Privileges, ServicePolicy, Subject};

/// OpenSearch's authentication settings file, copied as it is.
pub const AUTHC_FILE: &str = "config.yml";

/// The shipped default configuration (admin without a password yet).
const DEFAULT_FILES: [(&str, &str); 4] = [
    (config::INTERNAL_USERS, include_str!("default/internal_users.yml")),
    (config::ROLES, include_str!("default/roles.yml")),
    (config::ROLES_MAPPING, include_str!("default/roles_mapping.yml")),
    (config::ACTION_GROUPS, include_str!("default/action_groups.yml")),
];

/// One immutable, compiled configuration.
#[derive(Debug)]
pub struct SecurityState {
    pub config: SecurityConfig,
    pub privileges: Privileges,
    pub mappings: Mappings,
    /// Grows with every compiled configuration (caches key on it).
    pub generation: u64,
}

impl SecurityState {
    pub fn compile(config: SecurityConfig) -> SecurityState {
        let privileges = Privileges::compile(&config);
        let mappings = Mappings::compile(&config, &privileges);
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        SecurityState { config, privileges, mappings, generation }
    }

    /// The service gate of `extension` calling as `user` (name and backend
    /// roles as the call's token carries them): the extension's policy role
    /// widened by the roles `services_mappings` map this (extension, user)
    /// to. Only the service gate of calls as a user asks for it: never the
    /// user gate, never calls `as service`.
    pub fn service_policy(&self, extension: &str, user: &str, backend_roles: &[String]) -> ServicePolicy {
        let mapped = self.mappings.services().resolve(extension, user, backend_roles);
        self.privileges.service_policy(extension, mapped.as_ref())
    }

    /// The subject for `principal` connecting from `host`, roles resolved now.
    pub fn subject(&self, principal: &Principal, host: Option<IpAddr>) -> Subject {
        let roles = self.mappings.resolve(&self.privileges, principal, host);
        Subject { name: principal.name.clone(), roles, attributes: principal.attributes.clone() }
    }
}

/// Who vouches for a user's name. Identity is (name, source): a JWT whose
/// subject is `admin` is not the internal user `admin`, and nothing stored
/// or resolved by name may confuse the two.
///
/// Stored (job identities, API-token records, OBO tokens' `src`) as
/// `internal` / `jwt` / `anonymous`: serde, `Display` and `FromStr` all use
/// those strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// The internal user database (Basic authentication).
    Internal,
    /// An external identity provider's JWT.
    Jwt,
    /// Anonymous access.
    Anonymous,
}

impl IdentitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySource::Internal => "internal",
            IdentitySource::Jwt => "jwt",
            IdentitySource::Anonymous => "anonymous",
        }
    }

    /// The source a stored string names, if any (see [`FromStr`](std::str::FromStr)).
    pub fn parse(s: &str) -> Option<IdentitySource> {
        s.parse().ok()
    }
}

impl std::fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored identity source of none of the known names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown identity source `{0}`")]
pub struct UnknownIdentitySource(pub String);

impl HasKind for UnknownIdentitySource {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl std::str::FromStr for IdentitySource {
    type Err = UnknownIdentitySource;

    fn from_str(s: &str) -> Result<IdentitySource, UnknownIdentitySource> {
        match s {
            "internal" => Ok(IdentitySource::Internal),
            "jwt" => Ok(IdentitySource::Jwt),
            "anonymous" => Ok(IdentitySource::Anonymous),
            _ => Err(UnknownIdentitySource(s.to_owned())),
        }
    }
}

/// A request's authenticated user.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    pub principal: Principal,
    /// Who vouches for `principal.name` (carried through OBO tokens).
    pub source: IdentitySource,
    pub subject: Subject,
    /// Authenticated by an on-behalf-of token: such a caller can never mint
    /// tokens, change a password or call the security API.
    pub via_obo: bool,
    /// Authenticated by an API token: its id and its own permissions, which
    /// every check must also pass (limited-by).
    pub api_token: Option<(String, Arc<api_tokens::TokenLimit>)>,
    /// The configuration the decision was made under.
    pub state: Arc<SecurityState>,
}

impl AuthenticatedUser {
    /// Signed in with their own credentials: neither an OBO token nor an
    /// API token stands in for them. Only such a caller may create
    /// credentials or consent to work that outlives the request.
    pub fn with_own_credentials(&self) -> bool {
        !self.via_obo && self.api_token.is_none()
    }

    /// Whether this caller is the user `name` of `source`.
    pub fn is(&self, name: &str, source: IdentitySource) -> bool {
        self.principal.name == name && self.source == source
    }

    pub fn role_names(&self) -> Vec<String> {
        self.state.privileges.role_names(&self.subject.roles)
    }

    /// The user as an OBO token carries them, with `roles` (their
    /// [`Self::role_names`]) resolved by the caller, who keeps them alive.
    pub fn token_holder<'a>(&'a self, roles: &'a [String]) -> obo::TokenHolder<'a> {
        obo::TokenHolder {
            user: &self.principal.name,
            source: self.source,
            roles,
            backend_roles: &self.principal.backend_roles,
            attributes: &self.principal.attributes,
        }
    }

    /// The user's roles, and an API token's own permissions when there is one.
    pub fn check_cluster(&self, action: &str) -> Result<(), privileges::Denied> {
        self.state.privileges.check_cluster(&self.subject, action)?;
        match &self.api_token {
            Some((_, limit)) => limit.privileges.check_cluster(&limit.subject, action),
            None => Ok(()),
        }
    }

    pub fn check_extension(&self, permission: &str) -> Result<(), privileges::Denied> {
        self.state.privileges.check_extension(&self.subject, permission)?;
        match &self.api_token {
            Some((_, limit)) => limit.privileges.check_extension(&limit.subject, permission),
            None => Ok(()),
        }
    }
}

/// Why the security core did not start ([`Security::bootstrap`]).
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Authc(#[from] authn::AuthcError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("WARDEN_INITIAL_ADMIN_PASSWORD refused: {0}")]
    WeakInitialPassword(password::PasswordError),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
}

impl HasKind for BootstrapError {
    fn kind(&self) -> ErrorKind {
        match self {
            BootstrapError::Config(e) => e.kind(),
            BootstrapError::Io { .. } => ErrorKind::Internal,
            BootstrapError::Authc(e) => e.kind(),
            BootstrapError::Store(e) => e.kind(),
            BootstrapError::WeakInitialPassword(_) => ErrorKind::Invalid,
            BootstrapError::Password(e) => e.kind(),
        }
    }
}

/// Why a change of the security configuration was not made
/// ([`Security::update`], [`Security::replace`]); nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum SecurityWriteError {
    /// The changed configuration is not valid (the message names the file
    /// and the entry).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// Another writer changed the stored configuration first.
    #[error(transparent)]
    Conflict(StoreError),
    /// The store could not keep the change.
    #[error(transparent)]
    Store(StoreError),
    /// A change that must land with other writes, on a configuration kept
    /// in memory only.
    #[error("this security configuration is not kept in a store: the change cannot be written")]
    NotPersisted,
}

impl From<StoreError> for SecurityWriteError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => SecurityWriteError::Conflict(e),
            other => SecurityWriteError::Store(other),
        }
    }
}

impl HasKind for SecurityWriteError {
    fn kind(&self) -> ErrorKind {
        match self {
            SecurityWriteError::Invalid(_) => ErrorKind::Invalid,
            SecurityWriteError::Conflict(_) => ErrorKind::Conflict,
            SecurityWriteError::Store(_) | SecurityWriteError::NotPersisted => ErrorKind::Internal,
        }
    }
}

/// What [`Security::bootstrap`] did, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// Loaded the configuration kept in the data directory.
    Existing,
    /// First start: imported, with the admin password from the environment.
    Initialised,
    /// First start: imported, with this generated admin password (print it once).
    GeneratedAdminPassword(String),
}

/// Which changes of a user revoke every token issued to them before the
/// change (`WARDEN_REVOKE_TOKENS_ON`, comma-separated, default
/// `password,disable`). A deletion always does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokeOn {
    pub password: bool,
    pub disable: bool,
    pub roles: bool,
}

impl Default for RevokeOn {
    fn default() -> Self {
        RevokeOn { password: true, disable: true, roles: false }
    }
}

impl std::str::FromStr for RevokeOn {
    type Err = String;

    fn from_str(list: &str) -> Result<RevokeOn, String> {
        let mut on = RevokeOn { password: false, disable: false, roles: false };
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "password" => on.password = true,
                "disable" => on.disable = true,
                "roles" => on.roles = true,
                other => return Err(format!("unknown cause `{other}` (password, disable, roles)")),
            }
        }
        Ok(on)
    }
}

/// The live security core.
#[derive(Debug)]
pub struct Security {
    current: RwLock<Arc<SecurityState>>,
    /// Serialises read-modify-write changes so none is lost.
    writer: std::sync::Mutex<()>,
    basic: BasicAuthenticator,
    authc: Authc,
    /// Verifies Warden's own OBO tokens presented as Bearer.
    obo: Option<Arc<obo::TokenService>>,
    /// API tokens presented as `ApiKey`.
    api_tokens: Option<Arc<api_tokens::ApiTokens>>,
    consents: Option<Arc<consents::Consents>>,
    /// Which changes of a user revoke their outstanding tokens.
    revoke_on: RevokeOn,
    /// Where revocations are recorded, with their cause.
    audit: Option<Arc<crate::audit::AuditLog>>,
    /// Where the configuration is kept (none: in memory only, for tests).
    store: Option<Arc<Store>>,
    /// The stored version of each configuration document, for CAS writes.
    versions: std::sync::Mutex<BTreeMap<String, Expect>>,
}

impl Security {
    pub fn new(config: SecurityConfig) -> Security {
        Security {
            current: RwLock::new(Arc::new(SecurityState::compile(config))),
            writer: std::sync::Mutex::new(()),
            basic: BasicAuthenticator::new(),
            authc: Authc::default(),
            obo: None,
            api_tokens: None,
            consents: None,
            revoke_on: RevokeOn::default(),
            audit: None,
            store: None,
            versions: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Accepts API tokens as `ApiKey` credentials.
    pub fn with_api_tokens(mut self, tokens: Arc<api_tokens::ApiTokens>) -> Security {
        self.api_tokens = Some(tokens);
        self
    }

    pub fn api_tokens(&self) -> Option<&Arc<api_tokens::ApiTokens>> {
        self.api_tokens.as_ref()
    }

    /// Revokes a user's outstanding tokens on the changes `revoke_on` names.
    pub fn with_revoke_on(mut self, revoke_on: RevokeOn) -> Security {
        self.revoke_on = revoke_on;
        self
    }

    /// Records token revocations (and their cause) in `audit`.
    pub fn with_audit(mut self, audit: Arc<crate::audit::AuditLog>) -> Security {
        self.audit = Some(audit);
        self
    }

    pub fn with_consents(mut self, consents: Arc<consents::Consents>) -> Security {
        self.consents = Some(consents);
        self
    }

    /// Users' consents to extensions running work for them.
    pub fn consents(&self) -> Option<&Arc<consents::Consents>> {
        self.consents.as_ref()
    }

    /// The OBO token service, when this host has one: the security API's
    /// token endpoints and the invocation sessions reach it here, never
    /// through the cluster.
    pub fn tokens(&self) -> Option<&Arc<obo::TokenService>> {
        self.obo.as_ref()
    }

    /// Accepts Warden's own OBO tokens as Bearer credentials.
    pub fn with_obo(mut self, tokens: Arc<obo::TokenService>) -> Security {
        self.obo = Some(tokens);
        self
    }

    /// Sets the authentication methods (from `config.yml`).
    pub fn with_authc(mut self, authc: Authc) -> Security {
        self.authc = authc;
        self
    }

    pub fn authc(&self) -> &Authc {
        &self.authc
    }

    /// Loads the configuration kept in `store`; on first start (nothing
    /// kept yet) imports `import_from` (an OpenSearch security config
    /// directory, `config.yml` included) or the shipped default, giving a
    /// password-less `admin` the initial password (`initial_password`,
    /// refused if weak, else generated and returned to print once).
    pub fn bootstrap(
        store: Arc<Store>,
        import_from: Option<&Path>,
        initial_password: Option<&str>,
    ) -> Result<(Security, Bootstrap), BootstrapError> {
        let mut outcome = Bootstrap::Existing;
        if store.get(STORE_INDEX, config::INTERNAL_USERS)?.is_none() {
            let (mut config, authc_text) = match import_from {
                Some(source) => {
                    let authc = match std::fs::read_to_string(source.join(AUTHC_FILE)) {
                        Ok(text) => Some(text),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(e) => {
                            return Err(BootstrapError::Io { path: source.join(AUTHC_FILE), source: e });
                        }
                    };
                    (SecurityConfig::load_dir(source)?, authc)
                }
                None => {
                    let texts =
                        DEFAULT_FILES.iter().map(|(name, text)| (*name, (*text).to_owned())).collect();
                    (SecurityConfig::from_texts("default", &texts)?, None)
                }
            };
            outcome = Bootstrap::Initialised;
            if let Some(admin) = config.internal_users.get_mut("admin")
                && admin.hash.is_none()
            {
                let chosen = match initial_password {
                    Some(p) => {
                        password::check_strength("admin", p).map_err(BootstrapError::WeakInitialPassword)?;
                        p.to_owned()
                    }
                    None => {
                        let p = password::generate()?;
                        outcome = Bootstrap::GeneratedAdminPassword(p.clone());
                        p
                    }
                };
                admin.hash = Some(password::hash(&chosen)?);
            }
            if let Some(text) = &authc_text {
                Authc::parse(text)?; // refuse a bad config.yml before keeping it
            }
            let mut writes = config_writes(&config, Expect::Absent);
            if let Some(text) = authc_text {
                writes.push(Write {
                    index: STORE_INDEX,
                    id: AUTHC_FILE,
                    source: Some(text.into_bytes()),
                    expect: Expect::Absent,
                });
            }
            store.write(&writes)?;
        }
        let mut texts = BTreeMap::new();
        let mut versions = BTreeMap::new();
        for (id, doc) in store.list(STORE_INDEX)? {
            versions
                .insert(id.clone(), Expect::Version { seq_no: doc.seq_no, primary_term: doc.primary_term });
            texts.insert(id, String::from_utf8_lossy(&doc.source).into_owned());
        }
        let by_name: BTreeMap<&str, String> = texts.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let config = SecurityConfig::from_texts("store", &by_name)?;
        let authc = match texts.get(AUTHC_FILE) {
            Some(text) => Authc::parse(text)?,
            None => Authc::default(),
        };
        let mut security = Security::new(config).with_authc(authc);
        security.store = Some(store);
        security.versions = std::sync::Mutex::new(versions);
        Ok((security, outcome))
    }

    /// The current snapshot.
    pub fn state(&self) -> Arc<SecurityState> {
        match self.current.read() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in a new configuration atomically (and persists it when the
    /// core was bootstrapped from a data directory).
    pub fn replace(&self, config: SecurityConfig) -> Result<(), SecurityWriteError> {
        self.replace_with(config, &[])
    }

    /// [`Security::replace`], with `also` written in the same transaction:
    /// both land or neither (a lifecycle change keeps an extension's record
    /// and the roles it brings in one compare-and-set write).
    fn replace_with(&self, config: SecurityConfig, also: &[Write<'_>]) -> Result<(), SecurityWriteError> {
        config.validate()?;
        if self.store.is_none() && !also.is_empty() {
            return Err(SecurityWriteError::NotPersisted);
        }
        if let Some(store) = &self.store {
            // All four documents in one transaction, each compare-and-set
            // against the version this node last read or wrote: a crash keeps
            // the old configuration or the new one, and a concurrent writer
            // elsewhere makes this fail with a conflict instead of losing it.
            let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            let mut writes: Vec<Write<'_>> = config_writes(&config, Expect::Absent);
            for w in &mut writes {
                w.expect = versions.get(w.id).copied().unwrap_or(Expect::Absent);
            }
            let config_count = writes.len();
            writes.extend(also.iter().cloned());
            let mut written = store.write(&writes)?;
            written.truncate(config_count);
            writes.truncate(config_count);
            for (w, v) in writes.iter().zip(written) {
                versions.insert(
                    w.id.to_owned(),
                    Expect::Version { seq_no: v.seq_no, primary_term: v.primary_term },
                );
            }
        }
        let state = Arc::new(SecurityState::compile(config));
        let previous = match self.current.write() {
            Ok(mut current) => std::mem::replace(&mut *current, state.clone()),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), state.clone()),
        };
        self.revoke_changed_credentials(&previous, &state);
        Ok(())
    }

    /// A user whose password changed loses every token issued before the
    /// change: OBO tokens (revoked by user) and API tokens (which check the
    /// same revocation time). Whatever path changed it — the REST API, an
    /// import, `reset-password`. So does one disabled, and, when
    /// `revoke_on.roles`, one whose roles changed (resolved through the
    /// mappings before and after). Each revocation is audited with its cause.
    ///
    /// A deleted user loses them too, always, and the deletion is recorded:
    /// a new user who later takes the name is someone else, and inherits
    /// none of the old one's tokens or jobs.
    fn revoke_changed_credentials(&self, before: &SecurityState, after: &SecurityState) {
        let Some(tokens) = &self.obo else { return };
        let roles = |state: &SecurityState, name: &str, user: &config::InternalUser| {
            let subject = state.subject(&internal_principal(name, user), None);
            let mut names = state.privileges.role_names(&subject.roles);
            names.sort();
            names
        };
        for (name, old) in &before.config.internal_users {
            let (cause, outcome) = match after.config.internal_users.get(name) {
                None => {
                    // Their consents go with them: a later user of the name
                    // consents for themselves.
                    if let Some(consents) = &self.consents {
                        let by = "security: user deleted";
                        match consents.revoke_all_of(
                            IdentitySource::Internal,
                            name,
                            by,
                            crate::time::now_ms(),
                        ) {
                            Ok(revoked) => self.audit_revoked_consents(&revoked, by),
                            Err(e) => {
                                tracing::error!(user = name, "a deleted user's consents are not revoked: {e}")
                            }
                        }
                    }
                    ("user deleted", tokens.record_deletion(name))
                }
                Some(user) if user.disabled && !old.disabled && self.revoke_on.disable => {
                    ("user disabled", tokens.revoke_user(name))
                }
                Some(user) if user.hash != old.hash && self.revoke_on.password => {
                    ("password changed", tokens.revoke_user(name))
                }
                Some(user)
                    if self.revoke_on.roles && roles(before, name, old) != roles(after, name, user) =>
                {
                    ("roles changed", tokens.revoke_user(name))
                }
                Some(_) => continue,
            };
            match outcome {
                Ok(()) => {
                    if let Some(audit) = &self.audit
                        && audit.enabled(crate::audit::Category::TokensRevoked)
                    {
                        audit.record(crate::audit::Event {
                            user: Some(name.clone()),
                            reason: Some(format!(
                                "every token issued to `{name}` before now revoked: {cause}"
                            )),
                            ..crate::audit::Event::new(crate::audit::Category::TokensRevoked, "security")
                        });
                    }
                }
                Err(e) => {
                    tracing::error!(
                        user = name,
                        cause,
                        "credentials changed but the revocation is not persisted: {e}"
                    )
                }
            }
        }
    }

    /// Records consents revoked by the host itself (a user deleted, an
    /// extension removed), naming why.
    pub fn audit_revoked_consents(&self, revoked: &[consents::Consent], why: &str) {
        let Some(audit) = &self.audit else { return };
        if !audit.enabled(crate::audit::Category::ConsentWrite) {
            return;
        }
        for consent in revoked {
            audit.record(crate::audit::Event {
                user: Some(consent.user.clone()),
                extension: Some(consent.extension.clone()),
                reason: Some(format!("revoked consent {} of `{}`: {why}", consent.id, consent.user)),
                ..crate::audit::Event::new(crate::audit::Category::ConsentWrite, "security")
            });
        }
    }

    /// Role mappings that name an internal user under `users:` while a JWT
    /// domain is on: as in OpenSearch, `users:` matches the name whatever
    /// its source, so a JWT whose subject is that name gets the role too.
    /// Said at start, so an operator can map external users by backend role.
    pub fn shared_name_warnings(&self) -> Vec<String> {
        if self.authc.jwt.is_none() {
            return Vec::new();
        }
        let state = self.state();
        let mut warnings = Vec::new();
        for (role, mapping) in &state.config.roles_mapping {
            for user in mapping.users.iter().filter(|u| state.config.internal_users.contains_key(*u)) {
                warnings.push(format!(
                    "role mapping `{role}` lists `{user}` under `users:` and a JWT domain is on: a JWT whose \
                     subject is `{user}` gets `{role}` too (role mappings match names whatever their \
                     source); map external users by backend role"
                ));
            }
            for (extension, entry) in &mapping.services_mappings {
                for user in entry.users.iter().filter(|u| state.config.internal_users.contains_key(*u)) {
                    warnings.push(format!(
                        "role mapping `{role}` lists `{user}` under `services_mappings.{extension}.users` and \
                         a JWT domain is on: extension `{extension}` acting for a JWT whose subject is \
                         `{user}` gets `{role}` at the service gate too; map external users by backend role"
                    ));
                }
            }
        }
        warnings
    }

    /// When an internal user of this name was last deleted (milliseconds).
    pub fn user_deleted_at(&self, user: &str) -> Option<u64> {
        self.obo.as_ref().and_then(|tokens| tokens.deleted_at(user))
    }

    /// Up to when `user`'s tokens are revoked (seconds).
    pub fn user_revoked_before(&self, user: &str) -> Option<u64> {
        self.obo.as_ref().and_then(|tokens| tokens.revoked_user_before(user))
    }

    /// Applies `change` to a copy of the current configuration and, if it
    /// succeeds and the result is valid, swaps the result in. Concurrent
    /// changes are serialised; readers see the old or the new snapshot.
    pub fn update<R, E>(&self, change: impl FnOnce(&mut SecurityConfig) -> Result<R, E>) -> Result<R, E>
    where
        E: From<SecurityWriteError>,
    {
        self.update_with(&[], change)
    }

    /// [`Security::update`], with `also` (writes outside the security
    /// configuration, each with its own expectation) in the same
    /// transaction: a conflict on any of them writes nothing.
    pub fn update_with<R, E>(
        &self,
        also: &[Write<'_>],
        change: impl FnOnce(&mut SecurityConfig) -> Result<R, E>,
    ) -> Result<R, E>
    where
        E: From<SecurityWriteError>,
    {
        let _guard = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut config = self.state().config.clone();
        let result = change(&mut config)?;
        self.replace_with(config, also)?;
        Ok(result)
    }

    /// Creates the service accounts that `extensions` lack (persisted);
    /// returns the names created. Existing ones are left as they are, so an
    /// operator's `disabled` survives restarts.
    pub fn ensure_service_accounts<'a>(
        &self,
        extensions: impl Iterator<Item = &'a str>,
    ) -> Result<Vec<String>, SecurityWriteError> {
        let missing: Vec<&str> = {
            let state = self.state();
            extensions
                .filter(|id| !state.config.internal_users.contains_key(&service_accounts::name(id)))
                .collect()
        };
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        self.update(|config| Ok(service_accounts::add_missing(config, missing.into_iter())))
    }
}

/// The system index holding the configuration: one document per file.
pub const STORE_INDEX: &str = ".warden-security";

/// The writes that keep `config` in the store (static entries left out).
fn config_writes(config: &SecurityConfig, expect: Expect) -> Vec<Write<'static>> {
    config::export(config)
        .into_iter()
        .map(|(name, text)| Write { index: STORE_INDEX, id: name, source: Some(text.into_bytes()), expect })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `update_with`: the configuration and the other writes land together
    /// or not at all (a lifecycle change's record and its roles).
    #[test]
    fn a_change_and_its_other_writes_land_together() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("s.redb"))?);
        let (security, _) = Security::bootstrap(store.clone(), None, Some("Initial-Password-1"))?;
        let add_role = |config: &mut SecurityConfig| {
            config.roles.insert("together".into(), config::Role::default());
            Ok::<_, SecurityWriteError>(())
        };
        // The other write expects a document that is not there: nothing lands.
        let stale = [Write {
            index: "other",
            id: "x",
            source: Some(b"{}".to_vec()),
            expect: Expect::Version { seq_no: 7, primary_term: 1 },
        }];
        let refused = security.update_with(&stale, add_role);
        assert!(matches!(refused, Err(SecurityWriteError::Conflict(_))), "{refused:?}");
        assert!(!security.state().config.roles.contains_key("together"));
        assert!(store.get("other", "x")?.is_none());
        // Expecting what is there: both land.
        let fresh = [Write { expect: Expect::Absent, ..stale[0].clone() }];
        security.update_with(&fresh, add_role)?;
        assert!(security.state().config.roles.contains_key("together"));
        assert!(store.get("other", "x")?.is_some());
        let (reloaded, _) = Security::bootstrap(store, None, None)?;
        assert!(reloaded.state().config.roles.contains_key("together"));
        Ok(())
    }

    /// Stored identities (job identities, API-token records, tokens' `src`)
    /// keep reading: serde, `Display` and `FromStr` use the same strings.
    #[test]
    fn identity_sources_keep_their_stored_strings() -> Result<(), Box<dyn std::error::Error>> {
        for (source, text) in [
            (IdentitySource::Internal, "internal"),
            (IdentitySource::Jwt, "jwt"),
            (IdentitySource::Anonymous, "anonymous"),
        ] {
            assert_eq!(source.to_string(), text);
            assert_eq!(text.parse::<IdentitySource>()?, source);
            assert_eq!(IdentitySource::parse(text), Some(source));
            assert_eq!(serde_json::to_string(&source)?, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<IdentitySource>(&format!("\"{text}\""))?, source);
        }
        assert!("Internal".parse::<IdentitySource>().is_err_and(|e| e.kind() == ErrorKind::Invalid));
        assert_eq!(IdentitySource::parse("ldap"), None);
        Ok(())
    }

    /// With a JWT domain on, a services mapping naming an internal user
    /// is said at start, as a plain mapping is: a JWT of that subject
    /// would widen the extension too.
    #[test]
    fn services_mappings_naming_internal_users_are_warned_about_with_jwt()
    -> Result<(), Box<dyn std::error::Error>> {
        let texts = BTreeMap::from([
            (config::INTERNAL_USERS, "ana: {}\n".to_owned()),
            (config::ROLES, "act_as_original_user: {}\n".to_owned()),
            (
                config::ROLES_MAPPING,
                "act_as_original_user:\n  services_mappings:\n    reporter:\n      users: [ana, \"ext-*\"]\n"
                    .to_owned(),
            ),
        ]);
        let config = SecurityConfig::from_texts("test", &texts)?;
        assert!(Security::new(config.clone()).shared_name_warnings().is_empty(), "no JWT domain, no warning");
        let jwt = "config:\n  dynamic:\n    authc:\n      jwt_auth_domain:\n        http_enabled: true\n        \
                   order: 0\n        http_authenticator:\n          type: jwt\n          config:\n            \
                   signing_key: \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\"\n        \
                   authentication_backend:\n          type: noop\n";
        let warnings = Security::new(config).with_authc(Authc::parse(jwt)?).shared_name_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("services_mappings.reporter.users") && warnings[0].contains("`ana`"));
        Ok(())
    }

    #[test]
    fn write_errors_report_their_kind() {
        let conflict =
            StoreError::Conflict { index: STORE_INDEX.into(), id: "roles.yml".into(), message: "x".into() };
        assert_eq!(SecurityWriteError::from(conflict).kind(), ErrorKind::Conflict);
        assert_eq!(SecurityWriteError::from(StoreError::Io("disk".into())).kind(), ErrorKind::Internal);
        let invalid =
            ConfigError::Invalid { file: "roles.yml".into(), entry: "r".into(), message: "m".into() };
        let error = SecurityWriteError::from(invalid);
        assert_eq!(error.kind(), ErrorKind::Invalid);
        assert_eq!(error.to_string(), "roles.yml: entry `r`: m", "the message is the config error's");
    }
}
