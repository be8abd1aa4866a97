//! On-behalf-of (OBO) tokens: short-lived JWTs the host mints for one
//! invocation (a request or a job run) and checks on every cluster call the
//! guest makes. The guest never sees them.
//!
//! Format (claim names follow OpenSearch's OBO tokens): HS512 with a `kid`
//! header; claims `iss` (cluster name), `sub` (user), `aud` (extension id),
//! `iat`, `nbf`, `exp`, `jti`, `typ` (`obo`), `scope` ([`Scope`]:
//! `request:<id>`, `job:<id>` or `user:<description>`), `src` (who vouches
//! for `sub`: `internal` or `jwt` — a name alone is not an identity), and
//! `er` / `br` / `ea` — the user's roles, backend roles and attributes,
//! encrypted with AES-256-GCM under a fresh nonce ([`seal`]) so the token
//! leaks nothing and any tampering fails authentication.
//!
//! Verification pins the algorithm, checks the signature with the key named
//! by `kid` (the current key, or a previous one within its grace window:
//! [`keys`]), `iss`, `aud` == the calling extension, `exp`/`nbf` with a
//! small leeway, `typ`, and revocation (by `jti`, by user, by extension:
//! [`revocations`]). Keys and revocations are kept in the store
//! ([`persist`]).
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`TokenService`]: mint, verify, re-check; the claims |
//! | `scope.rs` | [`Scope`]: what a token was minted for |
//! | `keys.rs` | the key ring and its rotation |
//! | `seal.rs` | the encrypted claims |
//! | `revocations.rs` | revocation by token, user, extension; deletions |
//! | `persist.rs` | keys and revocations in `.warden-tokens` |
//! | `attacks.rs` | hostile tokens for the attack suites (test-only) |

mod keys;
mod persist;
mod revocations;
mod scope;
mod seal;

#[cfg(test)]
pub(crate) mod attacks;

use crate::metrics::{self, TokenEvent, TokenKind};
use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use self::keys::{KeyPair, KeyRing};
pub use self::persist::STORE_INDEX;
pub use self::revocations::Revocations;
pub use self::scope::{Scope, UnknownScope};
use self::seal::{open, seal};
use crate::error::{ErrorKind, HasKind};
use crate::security::IdentitySource;
use crate::time::now_secs;

/// Default and maximum token lifetimes, in seconds.
pub const DEFAULT_LIFETIME: u64 = 300;
pub const MAX_LIFETIME: u64 = 3600;
/// The longest lifetime of a token a user mints over REST
/// (`generateonbehalfoftoken`), as OpenSearch caps it.
pub const MAX_REST_LIFETIME: u64 = 600;
/// Clock leeway when checking `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 5;
const TYP: &str = "obo";

/// Whom a token is minted for.
#[derive(Debug, Clone, Copy)]
pub struct TokenHolder<'a> {
    pub user: &'a str,
    /// Who vouches for `user`: identity is the name *and* its source.
    pub source: IdentitySource,
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
    pub scope: Scope,
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
    /// How `er` and `br` hold their names: [`LISTS_AS_JSON`], or absent in
    /// a token minted before it was (comma-joined, which split a name
    /// holding a comma into two: fuzzing found it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rv: Option<u32>,
}

/// `rv`: the role lists are JSON arrays of names.
const LISTS_AS_JSON: u32 = 2;

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

impl HasKind for TokenError {
    fn kind(&self) -> ErrorKind {
        match self {
            TokenError::LifetimeTooLong { .. } => ErrorKind::Invalid,
            TokenError::Internal(_) => ErrorKind::Internal,
            TokenError::Malformed(_)
            | TokenError::UnknownKey(_)
            | TokenError::Invalid(_)
            | TokenError::WrongAudience { .. }
            | TokenError::WrongType(_)
            | TokenError::Tampered(_)
            | TokenError::Revoked(_) => ErrorKind::Denied,
        }
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
    /// Held from a revocation's edit to its write: the list is one stored
    /// document, and two revocations writing their snapshots in the other
    /// order would leave the older on disk.
    persisting: std::sync::Mutex<()>,
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

impl TokenService {
    pub fn new(issuer: &str, keys: KeyRing, revocations: Revocations) -> TokenService {
        TokenService {
            issuer: issuer.to_owned(),
            keys: RwLock::new(keys),
            revocations: RwLock::new(revocations),
            store: None,
            persisting: std::sync::Mutex::new(()),
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

    /// Revoking a user's or an extension's tokens covers those issued at or
    /// before that second (`iat` has whole seconds); a token minted later
    /// in the same second is stamped with the next one, so a fresh token is
    /// never caught by a revocation that came before it. API tokens (no
    /// extension) take their creation time from here too.
    pub fn issue_time(&self, user: &str, extension: Option<&str>) -> u64 {
        let now = now_secs();
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
        scope: &Scope,
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
        // `iat` orders the token after every revocation of its user or
        // extension, and runs ahead of the clock after a burst of them
        // (each moves the revocation a second on): validity is counted from
        // the clock, or a token minted after ten revocations in one second
        // would be "not valid yet" for five seconds past the leeway (the
        // soak found it), and would outlive its lifetime by as much.
        let issued = self.issue_time(user, Some(extension));
        let now = now_secs();
        let claims = RawClaims {
            iss: self.issuer.clone(),
            sub: user.to_owned(),
            aud: extension.to_owned(),
            iat: issued,
            nbf: now,
            exp: now + lifetime,
            jti: hex::encode(jti),
            typ: TYP.into(),
            scope: scope.to_string(),
            src: source.as_str().to_owned(),
            er: seal(&encryption, &list(roles)?)?,
            br: seal(&encryption, &list(backend_roles)?)?,
            ea: seal(&encryption, &attributes)?,
            rv: Some(LISTS_AS_JSON),
        };
        let mut header = Header::new(Algorithm::HS512);
        header.kid = Some(keys.current.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&signing))
            .map_err(|e| TokenError::Internal(e.to_string()))?;
        metrics::token(TokenKind::Obo, TokenEvent::Minted);
        Ok(token)
    }

    /// Verifies `token` for a call from `extension`.
    pub fn verify(&self, token: &str, extension: &str) -> Result<OboClaims, TokenError> {
        counted(self.verify_uncounted(token, extension))
    }

    fn verify_uncounted(&self, token: &str, extension: &str) -> Result<OboClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::HS512 {
            return Err(TokenError::Invalid(format!("algorithm {:?} is not allowed", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| TokenError::Malformed("no `kid`".into()))?;
        let keys = self.keys();
        let now = now_secs();
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
        let names = |sealed: &str, claim: &'static str| -> Result<Vec<String>, TokenError> {
            let text = open(&encryption, sealed).ok_or(TokenError::Tampered(claim))?;
            match claims.rv {
                Some(LISTS_AS_JSON) => serde_json::from_str(&text).map_err(|_| TokenError::Tampered(claim)),
                None => Ok(text.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()),
                Some(other) => Err(TokenError::Malformed(format!("unknown role list encoding `rv` {other}"))),
            }
        };
        Ok(OboClaims {
            roles: names(&claims.er, "er")?,
            backend_roles: names(&claims.br, "br")?,
            attributes: serde_json::from_str(
                &open(&encryption, &claims.ea).ok_or(TokenError::Tampered("ea"))?,
            )
            .map_err(|_| TokenError::Tampered("ea"))?,
            user: claims.sub,
            source: claims.src,
            extension: claims.aud,
            scope: claims.scope.parse().map_err(|e: UnknownScope| TokenError::Malformed(e.to_string()))?,
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
        header.kid.is_some_and(|kid| keys.find(&kid, now_secs()).is_some())
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
        counted(self.recheck_uncounted(claims, extension))
    }

    fn recheck_uncounted(&self, claims: &OboClaims, extension: &str) -> Result<(), TokenError> {
        if claims.extension != extension {
            return Err(TokenError::WrongAudience {
                expected: extension.to_owned(),
                found: claims.extension.clone(),
            });
        }
        if now_secs() > claims.expires_at + LEEWAY {
            return Err(TokenError::Invalid("token has expired (exp)".into()));
        }
        self.revocations
            .read()
            .map_err(|_| TokenError::Internal("revocation list unavailable".into()))?
            .check(&claims.jti, &claims.user, &claims.extension, claims.issued_at)
    }
}

/// Counts a verification's result (`warden_tokens_total`).
fn counted<T>(result: Result<T, TokenError>) -> Result<T, TokenError> {
    let event = if result.is_ok() { TokenEvent::Verified } else { TokenEvent::Rejected };
    metrics::token(TokenKind::Obo, event);
    result
}

/// A list of role names as sealed in `er`/`br`: a JSON array, so a name
/// holding a comma stays one name.
fn list(names: &[String]) -> Result<String, TokenError> {
    serde_json::to_string(names).map_err(|e| TokenError::Internal(e.to_string()))
}

/// Used by tests and tools: the claims of a token without verifying it.
pub fn peek_claims(token: &str) -> Option<HashMap<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
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
        assert_eq!(claims.scope, Scope::request("r1", None));
        assert_eq!(claims_of(&token)["scope"], "request:r1", "the claim keeps its string");
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

        // A burst of revocations moves the revocation time past the clock
        // (one second on each): a token minted after it is still valid now.
        for _ in 0..20 {
            s.revoke_user("ana")?;
        }
        let fresh = mint(&s)?;
        assert_eq!(s.verify(&fresh, "reporter")?.user, "ana", "valid at once after a burst");
        let claims = claims_of(&fresh);
        assert!(claims["nbf"].as_u64() <= Some(now_secs()), "{claims}");
        assert!(claims["exp"].as_u64() <= Some(now_secs() + MAX_LIFETIME), "{claims}");
        // That token, stamped ahead of the clock by its user's revocations,
        // dies with its extension's revocation, and the reverse.
        s.revoke_extension("reporter")?;
        assert!(matches!(s.verify(&fresh, "reporter"), Err(TokenError::Revoked(_))), "{claims}");
        for _ in 0..20 {
            s.revoke_extension("reporter")?;
        }
        let ahead = mint(&s)?;
        assert_eq!(s.verify(&ahead, "reporter")?.user, "ana");
        s.revoke_user("ana")?;
        assert!(matches!(s.verify(&ahead, "reporter"), Err(TokenError::Revoked(_))));
        // Another user's revocation is not moved ahead by ana's burst.
        let s = service()?;
        for _ in 0..20 {
            s.revoke_user("ana")?;
        }
        s.revoke_user("bob")?;
        let at = |user: &str| s.revocations().users_before.get(user).copied().unwrap_or(0);
        assert!(at("bob") <= now_secs() && at("ana") > now_secs() + 10, "{:?}", s.revocations());

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
        ring.rotate(now_secs(), 600)?;
        s.set_keys(ring.clone());
        assert!(s.verify(&old, "reporter").is_ok(), "old key verifies in its grace window");
        let new = mint(&s)?;
        assert_ne!(jsonwebtoken::decode_header(&new)?.kid, jsonwebtoken::decode_header(&old)?.kid);
        // Past the grace window the old key is gone.
        ring.previous[0].retire_after = Some(now_secs() - 1);
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

    /// A token minted before scopes were typed carries the same claim
    /// string, so it reads as the same scope (and its API token id).
    #[test]
    fn a_scope_claim_is_read_back_typed() -> R {
        let s = service()?;
        let none = HashMap::new();
        let holder = TokenHolder {
            user: "ana",
            source: IdentitySource::Internal,
            roles: &[],
            backend_roles: &[],
            attributes: &none,
        };
        let scope = Scope::request("r9", Some("0123abcd"));
        let token = s.mint(&holder, "reporter", &scope, 60)?;
        assert_eq!(claims_of(&token)["scope"], "request:r9;apitoken:0123abcd");
        let claims = s.verify(&token, "reporter")?;
        assert_eq!(claims.scope, scope);
        assert_eq!(claims.scope.api_token(), Some("0123abcd"));
        Ok(())
    }

    #[test]
    fn lifetimes_are_capped() -> R {
        let s = service()?;
        let none = HashMap::new();
        let holder = TokenHolder {
            user: "ana",
            source: IdentitySource::Internal,
            roles: &[],
            backend_roles: &[],
            attributes: &none,
        };
        let e = s.mint(&holder, "reporter", &Scope::request("x", None), MAX_LIFETIME + 1);
        assert!(matches!(e, Err(TokenError::LifetimeTooLong { .. })));
        Ok(())
    }
}
