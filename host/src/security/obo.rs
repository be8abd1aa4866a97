//! On-behalf-of (OBO) tokens: short-lived JWTs the host mints for one
//! invocation (a request or a job run) and checks on every cluster call the
//! guest makes. The guest never sees them.
//!
//! Format (claim names follow OpenSearch's OBO tokens): HS512 with a `kid`
//! header; claims `iss` (cluster name), `sub` (user), `aud` (extension id),
//! `iat`, `nbf`, `exp`, `jti`, `typ` (`obo`), `scope` (`request:<id>` or
//! `job:<id>`), `src` (who vouches for `sub`: `internal` or `jwt` — a name
//! alone is not an identity), and `er` / `br` / `ea` — the user's roles,
//! backend roles and attributes,
//! encrypted with AES-256-GCM under a fresh nonce so the token leaks nothing
//! and any tampering fails authentication.
//!
//! Verification pins the algorithm, checks the signature with the key named
//! by `kid` (the current key, or a previous one within its grace window),
//! `iss`, `aud` == the calling extension, `exp`/`nbf` with a small leeway,
//! `typ`, and revocation (by `jti`, by user, by extension).

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Default and maximum token lifetimes, in seconds.
pub const DEFAULT_LIFETIME: u64 = 300;
pub const MAX_LIFETIME: u64 = 3600;
/// The longest lifetime of a token a user mints over REST
/// (`generateonbehalfoftoken`), as OpenSearch caps it.
pub const MAX_REST_LIFETIME: u64 = 600;
/// Clock leeway when checking `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 5;
const TYP: &str = "obo";

/// One signing + encryption key pair.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyPair {
    pub kid: String,
    /// 64 bytes for HS512, base64.
    signing: String,
    /// 32 bytes for AES-256-GCM, base64.
    encryption: String,
    /// Unix seconds after which a retired key no longer verifies.
    #[serde(default)]
    pub retire_after: Option<u64>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("kid", &self.kid).field("retire_after", &self.retire_after).finish()
    }
}

impl KeyPair {
    pub fn generate() -> Result<KeyPair, TokenError> {
        let mut signing = [0u8; 64];
        let mut encryption = [0u8; 32];
        let mut kid = [0u8; 8];
        for buf in [&mut signing[..], &mut encryption[..], &mut kid[..]] {
            getrandom::fill(buf).map_err(|e| TokenError::Internal(format!("no randomness: {e}")))?;
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(KeyPair {
            kid: hex::encode(kid),
            signing: b64.encode(signing),
            encryption: b64.encode(encryption),
            retire_after: None,
        })
    }

    fn bytes(&self) -> Result<(Vec<u8>, Vec<u8>), TokenError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let bad = |_| TokenError::Internal(format!("key {} is corrupt", self.kid));
        Ok((b64.decode(&self.signing).map_err(bad)?, b64.decode(&self.encryption).map_err(bad)?))
    }
}

/// The keys: one current (signs and verifies), older ones verifying until
/// their `retire_after`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRing {
    pub current: KeyPair,
    #[serde(default)]
    pub previous: Vec<KeyPair>,
}

impl KeyRing {
    pub fn generate() -> Result<KeyRing, TokenError> {
        Ok(KeyRing { current: KeyPair::generate()?, previous: Vec::new() })
    }

    /// A new current key; the old one verifies for `grace` more seconds
    /// (at least the longest token lifetime, so no live token breaks).
    pub fn rotate(&mut self, now: u64, grace: u64) -> Result<(), TokenError> {
        let mut old = std::mem::replace(&mut self.current, KeyPair::generate()?);
        old.retire_after = Some(now + grace);
        self.previous.retain(|k| k.retire_after.is_some_and(|t| t > now));
        self.previous.push(old);
        Ok(())
    }

    fn find(&self, kid: &str, now: u64) -> Option<&KeyPair> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid == kid && k.retire_after.is_none_or(|t| now <= t))
    }
}

/// Whom a token is minted for.
#[derive(Debug, Clone, Copy)]
pub struct TokenHolder<'a> {
    pub user: &'a str,
    /// Who vouches for `user` (`internal`, `jwt`, `anonymous`): identity is
    /// the name *and* its source.
    pub source: &'a str,
    pub roles: &'a [String],
    pub backend_roles: &'a [String],
    /// The user's attributes (`user_name`, `attr.internal.*`, `attr.jwt.*`),
    /// for `${...}` substitution in index patterns when the token is used.
    pub attributes: &'a HashMap<String, String>,
}

/// What a token says once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OboClaims {
    pub user: String,
    /// Who vouched for `user` when the token was minted.
    pub source: String,
    pub extension: String,
    pub roles: Vec<String>,
    pub backend_roles: Vec<String>,
    pub attributes: HashMap<String, String>,
    pub scope: String,
    pub jti: String,
    pub issued_at: u64,
    pub expires_at: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    typ: String,
    scope: String,
    /// The user's identity source: a name alone is not an identity.
    src: String,
    er: String,
    br: String,
    /// The user's attributes as JSON, encrypted like `er`.
    ea: String,
}

/// Why a token was not minted or not accepted. The message goes to the
/// audit log; the guest only learns that the call was denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unknown or retired signing key `{0}`")]
    UnknownKey(String),
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("token is for extension `{found}`, not `{expected}`")]
    WrongAudience { expected: String, found: String },
    #[error("token `typ` is `{0}`, not `obo`")]
    WrongType(String),
    #[error("encrypted claim `{0}` does not decrypt (tampered or foreign)")]
    Tampered(&'static str),
    #[error("token {0} is revoked")]
    Revoked(String),
    #[error("lifetime {requested}s is above the maximum of {max}s")]
    LifetimeTooLong { requested: u64, max: u64 },
    #[error("{0}")]
    Internal(String),
}

/// Revocations: by token id, and "everything issued before T" by user and
/// by extension.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Revocations {
    pub jtis: BTreeMap<String, u64>,
    pub users_before: BTreeMap<String, u64>,
    pub extensions_before: BTreeMap<String, u64>,
    /// When an internal user of this name was last deleted (milliseconds):
    /// whatever was made for them before — tokens, jobs — belongs to
    /// someone else than a new user who takes the name later.
    #[serde(default)]
    pub users_deleted: BTreeMap<String, u64>,
}

impl Revocations {
    fn check(&self, jti: &str, user: &str, extension: &str, issued_at: u64) -> Result<(), TokenError> {
        if self.jtis.contains_key(jti) {
            return Err(TokenError::Revoked(format!("`{jti}`")));
        }
        if self.users_before.get(user).is_some_and(|t| issued_at <= *t) {
            return Err(TokenError::Revoked(format!("for user `{user}`")));
        }
        if self.extensions_before.get(extension).is_some_and(|t| issued_at <= *t) {
            return Err(TokenError::Revoked(format!("for extension `{extension}`")));
        }
        Ok(())
    }

    /// Drops jti entries of tokens that have expired anyway.
    pub fn prune(&mut self, now: u64) {
        self.jtis.retain(|_, exp| *exp + LEEWAY >= now);
    }
}

/// Mints and verifies OBO tokens.
#[derive(Debug)]
pub struct TokenService {
    issuer: String,
    keys: RwLock<KeyRing>,
    revocations: RwLock<Revocations>,
    /// Where revocations are persisted (none in unit tests).
    store: Option<std::sync::Arc<crate::store::Store>>,
}

/// An operator-readable reason for a JWT validation failure.
fn reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => "signature does not verify".into(),
        K::ExpiredSignature => "token has expired (exp)".into(),
        K::ImmatureSignature => "token is not valid yet (nbf)".into(),
        K::InvalidIssuer => "issuer (iss) is not this cluster".into(),
        K::MissingRequiredClaim(claim) => format!("required claim `{claim}` is missing"),
        K::Json(e) => format!("claims do not parse: {e}"),
        other => format!("{other:?}"),
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Moves `key`'s revocation time to now, or one past the previous one: a
/// token minted after an earlier revocation in this same second carries
/// that next second as its `iat`, and a second revocation must cover it.
fn revoke_before(map: &mut BTreeMap<String, u64>, key: &str) {
    let at = map.get(key).map_or(now(), |previous| now().max(previous + 1));
    map.insert(key.to_owned(), at);
}

impl TokenService {
    pub fn new(issuer: &str, keys: KeyRing, revocations: Revocations) -> TokenService {
        TokenService {
            issuer: issuer.to_owned(),
            keys: RwLock::new(keys),
            revocations: RwLock::new(revocations),
            store: None,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn keys(&self) -> KeyRing {
        self.keys.read().map(|k| k.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn set_keys(&self, ring: KeyRing) {
        match self.keys.write() {
            Ok(mut k) => *k = ring,
            Err(p) => *p.into_inner() = ring,
        }
    }

    pub fn revocations(&self) -> Revocations {
        self.revocations.read().map(|r| r.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn set_revocations(&self, revocations: Revocations) {
        match self.revocations.write() {
            Ok(mut r) => *r = revocations,
            Err(p) => *p.into_inner() = revocations,
        }
    }

    /// Revoking a user's or an extension's tokens covers those issued at or
    /// before that second (`iat` has whole seconds); a token minted later
    /// in the same second is stamped with the next one, so a fresh token is
    /// never caught by a revocation that came before it. API tokens (no
    /// extension) take their creation time from here too.
    pub fn issue_time(&self, user: &str, extension: Option<&str>) -> u64 {
        let now = now();
        let Ok(revocations) = self.revocations.read() else { return now };
        let by_extension = extension.and_then(|e| revocations.extensions_before.get(e));
        let floor = [revocations.users_before.get(user), by_extension]
            .into_iter()
            .flatten()
            .max()
            .map_or(0, |t| t + 1);
        now.max(floor)
    }

    /// A token for `holder` calling through `extension`, for `scope`.
    pub fn mint(
        &self,
        holder: &TokenHolder<'_>,
        extension: &str,
        scope: &str,
        lifetime: u64,
    ) -> Result<String, TokenError> {
        let TokenHolder { user, source, roles, backend_roles, attributes } = *holder;
        let attributes =
            serde_json::to_string(attributes).map_err(|e| TokenError::Internal(e.to_string()))?;
        if lifetime > MAX_LIFETIME {
            return Err(TokenError::LifetimeTooLong { requested: lifetime, max: MAX_LIFETIME });
        }
        let keys = self.keys();
        let (signing, encryption) = keys.current.bytes()?;
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|e| TokenError::Internal(format!("no randomness: {e}")))?;
        let now = self.issue_time(user, Some(extension));
        let claims = RawClaims {
            iss: self.issuer.clone(),
            sub: user.to_owned(),
            aud: extension.to_owned(),
            iat: now,
            nbf: now,
            exp: now + lifetime,
            jti: hex::encode(jti),
            typ: TYP.into(),
            scope: scope.to_owned(),
            src: source.to_owned(),
            er: seal(&encryption, &roles.join(","))?,
            br: seal(&encryption, &backend_roles.join(","))?,
            ea: seal(&encryption, &attributes)?,
        };
        let mut header = Header::new(Algorithm::HS512);
        header.kid = Some(keys.current.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&signing))
            .map_err(|e| TokenError::Internal(e.to_string()))
    }

    /// Verifies `token` for a call from `extension`.
    pub fn verify(&self, token: &str, extension: &str) -> Result<OboClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::HS512 {
            return Err(TokenError::Invalid(format!("algorithm {:?} is not allowed", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| TokenError::Malformed("no `kid`".into()))?;
        let keys = self.keys();
        let now = now();
        let pair = keys.find(&kid, now).ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
        let (signing, encryption) = pair.bytes()?;
        let mut validation = Validation::new(Algorithm::HS512);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        // aud is compared below, to name the extension in the error.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub", "aud"]);
        let claims =
            jsonwebtoken::decode::<RawClaims>(token, &DecodingKey::from_secret(&signing), &validation)
                .map_err(|e| TokenError::Invalid(reason(&e)))?
                .claims;
        if claims.aud != extension {
            return Err(TokenError::WrongAudience { expected: extension.to_owned(), found: claims.aud });
        }
        if claims.typ != TYP {
            return Err(TokenError::WrongType(claims.typ));
        }
        self.revocations
            .read()
            .map_err(|_| TokenError::Internal("revocation list unavailable".into()))?
            .check(&claims.jti, &claims.sub, &claims.aud, claims.iat)?;
        let split = |s: String| -> Vec<String> {
            s.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
        };
        Ok(OboClaims {
            roles: split(open(&encryption, &claims.er).ok_or(TokenError::Tampered("er"))?),
            backend_roles: split(open(&encryption, &claims.br).ok_or(TokenError::Tampered("br"))?),
            attributes: serde_json::from_str(
                &open(&encryption, &claims.ea).ok_or(TokenError::Tampered("ea"))?,
            )
            .map_err(|_| TokenError::Tampered("ea"))?,
            user: claims.sub,
            source: claims.src,
            extension: claims.aud,
            scope: claims.scope,
            jti: claims.jti,
            issued_at: claims.iat,
            expires_at: claims.exp,
        })
    }

    /// Whether `token` names one of this service's keys (so it is meant
    /// to be checked here rather than by an external identity provider).
    pub fn is_ours(&self, token: &str) -> bool {
        let Ok(header) = jsonwebtoken::decode_header(token) else { return false };
        let keys = self.keys();
        header.kid.is_some_and(|kid| keys.find(&kid, now()).is_some())
    }

    /// Verifies a token presented over REST as Bearer: every check of
    /// [`TokenService::verify`], with the audience taken from the token
    /// (a REST call is not made by an extension).
    pub fn verify_presented(&self, token: &str) -> Result<OboClaims, TokenError> {
        let audience = peek_claims(token)
            .and_then(|c| c.get("aud").and_then(|a| a.as_str().map(str::to_owned)))
            .ok_or_else(|| TokenError::Malformed("no `aud`".into()))?;
        self.verify(token, &audience)
    }

    /// Re-checks what can change after a token was verified: its audience
    /// against the caller, its expiry, and revocation. For claims kept from
    /// an earlier full [`TokenService::verify`] of the same token.
    pub fn recheck(&self, claims: &OboClaims, extension: &str) -> Result<(), TokenError> {
        if claims.extension != extension {
            return Err(TokenError::WrongAudience {
                expected: extension.to_owned(),
                found: claims.extension.clone(),
            });
        }
        if now() > claims.expires_at + LEEWAY {
            return Err(TokenError::Invalid("token has expired (exp)".into()));
        }
        self.revocations
            .read()
            .map_err(|_| TokenError::Internal("revocation list unavailable".into()))?
            .check(&claims.jti, &claims.user, &claims.extension, claims.issued_at)
    }

    /// Up to when `user`'s tokens are revoked (API tokens check this too).
    pub fn revoked_user_before(&self, user: &str) -> Option<u64> {
        match self.revocations.read() {
            Ok(r) => r.users_before.get(user).copied(),
            Err(p) => p.into_inner().users_before.get(user).copied(),
        }
    }

    /// Revokes one token (until it would have expired anyway).
    pub fn revoke_jti(&self, jti: &str, expires_at: u64) -> Result<(), TokenError> {
        self.edit_revocations(|r| {
            r.jtis.insert(jti.to_owned(), expires_at);
        })
    }

    /// Revokes every token issued to `user` up to now — including those
    /// stamped with the next second after an earlier revocation in this
    /// one (see [`TokenService::issue_time`]).
    pub fn revoke_user(&self, user: &str) -> Result<(), TokenError> {
        self.edit_revocations(|r| revoke_before(&mut r.users_before, user))
    }

    /// Revokes every token of `user` and records the deletion: a new user
    /// who takes the name later inherits nothing.
    pub fn record_deletion(&self, user: &str) -> Result<(), TokenError> {
        let at = now_ms();
        self.edit_revocations(|r| {
            revoke_before(&mut r.users_before, user);
            r.users_deleted.insert(user.to_owned(), at);
        })
    }

    /// When an internal user named `user` was last deleted (milliseconds).
    pub fn deleted_at(&self, user: &str) -> Option<u64> {
        match self.revocations.read() {
            Ok(r) => r.users_deleted.get(user).copied(),
            Err(p) => p.into_inner().users_deleted.get(user).copied(),
        }
    }

    /// Revokes every token issued for `extension` up to now.
    pub fn revoke_extension(&self, extension: &str) -> Result<(), TokenError> {
        self.edit_revocations(|r| revoke_before(&mut r.extensions_before, extension))
    }

    /// Applies a revocation now, then persists the list; an error means
    /// it holds in this process but would not survive a restart.
    fn edit_revocations(&self, edit: impl FnOnce(&mut Revocations)) -> Result<(), TokenError> {
        match self.revocations.write() {
            Ok(mut r) => {
                edit(&mut r);
                r.prune(now());
            }
            Err(p) => edit(&mut p.into_inner()),
        }
        match &self.store {
            Some(store) => self.persist_revocations(store),
            None => Ok(()),
        }
    }
}

/// base64(nonce ‖ AES-256-GCM(plaintext)).
fn seal(key: &[u8], plaintext: &str) -> Result<String, TokenError> {
    let cipher =
        Aes256Gcm::new_from_slice(key).map_err(|_| TokenError::Internal("bad encryption key".into()))?;
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| TokenError::Internal(format!("no randomness: {e}")))?;
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
        .map_err(|_| TokenError::Internal("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

fn open(key: &[u8], sealed: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let plain = cipher.decrypt(Nonce::from_slice(&bytes[..12]), &bytes[12..]).ok()?;
    String::from_utf8(plain).ok()
}

/// Used by tests and tools: the claims of a token without verifying it.
pub fn peek_claims(token: &str) -> Option<HashMap<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where keys and revocations are kept.
pub const STORE_INDEX: &str = ".warden-tokens";

impl TokenService {
    /// Loads the key ring and revocations from the store, generating and
    /// keeping a key ring on first start.
    pub fn load_or_create(
        store: &std::sync::Arc<crate::store::Store>,
        issuer: &str,
    ) -> Result<TokenService, TokenError> {
        use crate::store::{Expect, Write};
        let internal = |e: crate::store::StoreError| TokenError::Internal(e.to_string());
        let keys = match store.get(STORE_INDEX, "keys").map_err(internal)? {
            Some(doc) => serde_json::from_slice(&doc.source)
                .map_err(|e| TokenError::Internal(format!("stored token keys are corrupt: {e}")))?,
            None => {
                let ring = KeyRing::generate()?;
                let source = serde_json::to_vec(&ring).map_err(|e| TokenError::Internal(e.to_string()))?;
                store
                    .write(&[Write {
                        index: STORE_INDEX,
                        id: "keys",
                        source: Some(source),
                        expect: Expect::Absent,
                    }])
                    .map_err(internal)?;
                ring
            }
        };
        let revocations = match store.get(STORE_INDEX, "revocations").map_err(internal)? {
            Some(doc) => serde_json::from_slice(&doc.source)
                .map_err(|e| TokenError::Internal(format!("stored revocations are corrupt: {e}")))?,
            None => Revocations::default(),
        };
        let mut service = TokenService::new(issuer, keys, revocations);
        service.store = Some(store.clone());
        Ok(service)
    }

    /// A new signing key; the old one still verifies for the longest token
    /// lifetime, so no live token breaks. Kept in the store when there is one.
    pub fn rotate_keys(&self) -> Result<String, TokenError> {
        let mut ring = self.keys();
        ring.rotate(now(), MAX_LIFETIME + LEEWAY)?;
        if let Some(store) = &self.store {
            use crate::store::{Expect, Write};
            let source = serde_json::to_vec(&ring).map_err(|e| TokenError::Internal(e.to_string()))?;
            store
                .write(&[Write { index: STORE_INDEX, id: "keys", source: Some(source), expect: Expect::Any }])
                .map_err(|e| TokenError::Internal(e.to_string()))?;
        }
        let kid = ring.current.kid.clone();
        self.set_keys(ring);
        Ok(kid)
    }

    /// Writes the revocation list to the store.
    fn persist_revocations(&self, store: &crate::store::Store) -> Result<(), TokenError> {
        use crate::store::{Expect, Write};
        let source =
            serde_json::to_vec(&self.revocations()).map_err(|e| TokenError::Internal(e.to_string()))?;
        store
            .write(&[Write {
                index: STORE_INDEX,
                id: "revocations",
                source: Some(source),
                expect: Expect::Any,
            }])
            .map_err(|e| TokenError::Internal(e.to_string()))?;
        Ok(())
    }
}

/// Hostile tokens for the attack suites (here and in the gateway): each
/// with what it tries and a fragment of the reason it must be refused with.
#[cfg(test)]
pub(crate) mod attacks {
    use super::*;

    pub type Case = (&'static str, String, &'static str);

    /// A genuine token: `ana` (roles `analyst_role`, backend role
    /// `analyst`) for extension `reporter`.
    pub fn mint(s: &TokenService) -> Result<String, TokenError> {
        let attributes = HashMap::from([("attr.internal.team".to_owned(), "red".to_owned())]);
        let holder = TokenHolder {
            user: "ana",
            source: "internal",
            roles: &["analyst_role".into()],
            backend_roles: &["analyst".into()],
            attributes: &attributes,
        };
        s.mint(&holder, "reporter", "request:r1", 60)
    }

    pub fn b64(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// Re-signs arbitrary claims with the service's real key (an insider
    /// forging claims the host would never mint).
    pub fn resign(
        s: &TokenService,
        claims: &serde_json::Value,
        alg: Algorithm,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let keys = s.keys();
        let (signing, _) = keys.current.bytes()?;
        sign(&signing, &keys.current.kid, claims, alg)
    }

    pub fn sign(
        key: &[u8],
        kid: &str,
        claims: &serde_json::Value,
        alg: Algorithm,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key))?)
    }

    pub fn claims_of(token: &str) -> serde_json::Value {
        serde_json::to_value(peek_claims(token).unwrap_or_default()).unwrap_or_default()
    }

    /// Every forgery and misuse of a token of `s`'s that verification must
    /// refuse, for extension `reporter`.
    pub fn cases(s: &TokenService) -> Result<Vec<Case>, Box<dyn std::error::Error>> {
        let good = mint(s)?;
        let other = TokenService::new("warden-test", KeyRing::generate()?, Revocations::default()); // different keys
        let c = claims_of(&good);
        let now = now();
        let with = |k: &str, v: serde_json::Value| {
            let mut c = c.clone();
            c[k] = v;
            c
        };
        let (head, rest) = good.split_once('.').ok_or("no dot")?;
        let kid = s.keys().current.kid;
        let cases: Vec<(&'static str, String, &'static str)> = vec![
            (
                "forged signature",
                sign(&other.keys().current.bytes()?.0, &kid, &c, Algorithm::HS512)?,
                "signature does not verify",
            ),
            (
                "alg none",
                format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "kid": kid})), b64(&c)),
                "malformed token",
            ),
            ("alg swapped to HS256", resign(s, &c, Algorithm::HS256)?, "algorithm"),
            ("expired", resign(s, &with("exp", (now - 120).into()), Algorithm::HS512)?, "has expired"),
            (
                "not yet valid",
                resign(s, &with("nbf", (now + 120).into()), Algorithm::HS512)?,
                "not valid yet",
            ),
            ("wrong issuer", resign(s, &with("iss", "evil".into()), Algorithm::HS512)?, "issuer (iss)"),
            (
                "other extension (replay)",
                resign(s, &with("aud", "hello".into()), Algorithm::HS512)?,
                "not `reporter`",
            ),
            ("wrong typ", resign(s, &with("typ", "access".into()), Algorithm::HS512)?, "`typ`"),
            (
                "tampered er",
                resign(s, &with("er", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()), Algorithm::HS512)?,
                "`er`",
            ),
            (
                "tampered ea",
                resign(s, &with("ea", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()), Algorithm::HS512)?,
                "`ea`",
            ),
            ("truncated", good[..good.len() - 12].to_owned(), "signature does not verify"),
            (
                "payload swapped",
                format!(
                    "{head}.{}",
                    b64(&with("sub", "admin".into())) + &rest[rest.find('.').unwrap_or(0)..]
                ),
                "signature does not verify",
            ),
            ("garbage", "not.a.token".to_owned(), "malformed token"),
            (
                "missing exp",
                resign(
                    s,
                    &{
                        let mut x = c.clone();
                        x.as_object_mut().map(|o| o.remove("exp"));
                        x
                    },
                    Algorithm::HS512,
                )?,
                "`exp`",
            ),
            (
                "missing identity source (a token minted before sources)",
                resign(
                    s,
                    &{
                        let mut x = c.clone();
                        x.as_object_mut().map(|o| o.remove("src"));
                        x
                    },
                    Algorithm::HS512,
                )?,
                "`src`",
            ),
        ];
        Ok(cases)
    }
}

#[cfg(test)]
mod tests {
    use super::attacks::{claims_of, mint};
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn service() -> Result<TokenService, TokenError> {
        Ok(TokenService::new("warden-test", KeyRing::generate()?, Revocations::default()))
    }

    #[test]
    fn a_minted_token_verifies_and_hides_roles() -> R {
        let s = service()?;
        let token = mint(&s)?;
        let claims = s.verify(&token, "reporter")?;
        assert_eq!(claims.user, "ana");
        assert_eq!(claims.source, "internal");
        assert_eq!(claims.attributes.get("attr.internal.team").map(String::as_str), Some("red"));
        assert_eq!(claims.roles, ["analyst_role"]);
        assert_eq!(claims.backend_roles, ["analyst"]);
        assert_eq!(claims.scope, "request:r1");
        assert!(!token.contains("analyst") && !claims_of(&token).to_string().contains("analyst"));
        Ok(())
    }

    #[test]
    fn attacks_are_rejected_with_a_reason() -> R {
        let s = service()?;
        for (what, token, reason) in attacks::cases(&s)? {
            match s.verify(&token, "reporter") {
                Ok(claims) => panic!("{what}: accepted as {claims:?}"),
                Err(e) => assert!(e.to_string().contains(reason), "{what}: {e}"),
            }
        }
        Ok(())
    }

    #[test]
    fn revocation_by_jti_user_and_extension() -> R {
        let s = service()?;
        let token = mint(&s)?;
        let claims = s.verify(&token, "reporter")?;
        s.revoke_jti(&claims.jti, claims.expires_at)?;
        assert!(matches!(s.verify(&token, "reporter"), Err(TokenError::Revoked(_))));

        let s = service()?;
        let token = mint(&s)?;
        s.revoke_user("ana")?;
        assert!(
            matches!(s.verify(&token, "reporter"), Err(TokenError::Revoked(m)) if m.contains("user `ana`"))
        );
        // A token minted right after the revocation (same second) is valid.
        let fresh = mint(&s)?;
        assert_eq!(s.verify(&fresh, "reporter")?.user, "ana");

        let s = service()?;
        let token = mint(&s)?;
        s.revoke_extension("reporter")?;
        assert!(
            matches!(s.verify(&token, "reporter"), Err(TokenError::Revoked(m)) if m.contains("extension `reporter`"))
        );
        assert!(s.verify(&mint(&s)?, "reporter").is_ok(), "minted after the revocation");
        Ok(())
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_for_the_grace_window() -> R {
        let s = service()?;
        let old = mint(&s)?;
        let mut ring = s.keys();
        ring.rotate(now(), 600)?;
        s.set_keys(ring.clone());
        assert!(s.verify(&old, "reporter").is_ok(), "old key verifies in its grace window");
        let new = mint(&s)?;
        assert_ne!(jsonwebtoken::decode_header(&new)?.kid, jsonwebtoken::decode_header(&old)?.kid);
        // Past the grace window the old key is gone.
        ring.previous[0].retire_after = Some(now() - 1);
        s.set_keys(ring);
        assert!(matches!(s.verify(&old, "reporter"), Err(TokenError::UnknownKey(_))));
        assert!(s.verify(&new, "reporter").is_ok());
        Ok(())
    }

    /// Revoke, mint, revoke again within one second: the second
    /// revocation covers the token minted between the two.
    #[test]
    fn a_second_revocation_in_the_same_second_covers_tokens_minted_between() -> R {
        let s = service()?;
        s.revoke_user("ana")?;
        let between = mint(&s)?;
        assert!(s.verify(&between, "reporter").is_ok(), "minted after the first revocation");
        s.revoke_user("ana")?;
        assert!(matches!(s.verify(&between, "reporter"), Err(TokenError::Revoked(_))));
        s.record_deletion("ana")?;
        assert!(s.deleted_at("ana").is_some() && s.deleted_at("bob").is_none());
        Ok(())
    }

    #[test]
    fn lifetimes_are_capped() -> R {
        let s = service()?;
        let none = HashMap::new();
        let holder = TokenHolder {
            user: "ana",
            source: "internal",
            roles: &[],
            backend_roles: &[],
            attributes: &none,
        };
        let e = s.mint(&holder, "reporter", "request:x", MAX_LIFETIME + 1);
        assert!(matches!(e, Err(TokenError::LifetimeTooLong { .. })));
        Ok(())
    }
}
