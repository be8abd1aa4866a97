//! Authentication of REST requests: HTTP Basic against internal users, with
//! a verified-credential cache so a request does not pay bcrypt each time.
//!
//! The cache maps a user name to a keyed digest of the password that last
//! verified and the stored hash it verified against. A password change
//! (new hash) or a removed or disabled user fails the lookup at once: the
//! cache is consulted only after the user record is read from the current
//! configuration.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::config::{InternalUser, SecurityConfig};
use super::password;

/// Why a request was not authenticated. The HTTP answer is the same 401 for
/// all of them; the audit log gets the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    #[error("no credentials")]
    Missing,
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    #[error("user `{0}` is disabled")]
    Disabled(String),
    #[error("wrong password for user `{0}`")]
    WrongPassword(String),
    #[error("user `{0}` has no password")]
    NoPassword(String),
    #[error("invalid bearer token: {0}")]
    InvalidToken(String),
    #[error("{0} authentication is not enabled")]
    NotEnabled(&'static str),
}

impl AuthnError {
    /// The user the request claimed to be, for the audit log.
    pub fn claimed_user(&self) -> Option<&str> {
        match self {
            AuthnError::UnknownUser(u)
            | AuthnError::Disabled(u)
            | AuthnError::WrongPassword(u)
            | AuthnError::NoPassword(u) => Some(u),
            AuthnError::Missing
            | AuthnError::Malformed(_)
            | AuthnError::InvalidToken(_)
            | AuthnError::NotEnabled(_) => None,
        }
    }
}

/// `Authorization: Basic base64(user:password)` → (user, password).
pub fn parse_basic(header: &str) -> Result<(String, String), AuthnError> {
    let (scheme, value) = header.trim().split_once(' ').ok_or(AuthnError::Malformed("no scheme"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthnError::Malformed("unsupported scheme"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| AuthnError::Malformed("not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| AuthnError::Malformed("not UTF-8"))?;
    let (user, password) =
        text.split_once(':').ok_or(AuthnError::Malformed("no `:` between user and password"))?;
    if user.is_empty() {
        return Err(AuthnError::Malformed("empty user name"));
    }
    Ok((user.to_owned(), password.to_owned()))
}

#[derive(Debug, Clone)]
struct Verified {
    stored_hash: String,
    digest: [u8; 32],
}

/// Verifies Basic credentials against internal users.
#[derive(Debug)]
pub struct BasicAuthenticator {
    /// Per-process key so cached digests are useless outside this process.
    key: [u8; 32],
    cache: Mutex<HashMap<String, Verified>>,
}

/// A cost-12 bcrypt hash of a random string nobody kept, verified against
/// when the user does not exist.
const TIMING_DUMMY_HASH: &str = "$2b$12$bpP2LBbX9E03GaSROtLCG.QNh/5StPAAw2nDUGKLGDaowtVp3mR3.";

/// Cached credentials kept at most (then the cache starts over).
const CACHE_CAP: usize = 100_000;

impl BasicAuthenticator {
    pub fn new() -> BasicAuthenticator {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Without randomness the cache key is the zero key: digests stay
            // process-local (never written anywhere), only less opaque.
            tracing::warn!("no system randomness for the credential cache key");
        }
        BasicAuthenticator { key, cache: Mutex::new(HashMap::new()) }
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Checks `user`/`password` against `config`; returns the user's record.
    pub fn verify<'c>(
        &self,
        config: &'c SecurityConfig,
        user: &str,
        password: &str,
    ) -> Result<&'c InternalUser, AuthnError> {
        // Unknown users and users without a password pay the same bcrypt
        // cost as a wrong password, so timing does not tell them apart.
        let Some(record) = config.internal_users.get(user) else {
            password::verify(password, TIMING_DUMMY_HASH);
            return Err(AuthnError::UnknownUser(user.to_owned()));
        };
        let Some(stored) = record.hash.as_deref() else {
            password::verify(password, TIMING_DUMMY_HASH);
            return Err(AuthnError::NoPassword(user.to_owned()));
        };
        let digest = self.digest(user, password);
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(user).cloned())
            .is_some_and(|v| v.stored_hash == stored && constant_time_eq(&v.digest, &digest));
        if !cached {
            if !password::verify(password, stored) {
                return Err(AuthnError::WrongPassword(user.to_owned()));
            }
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() >= CACHE_CAP {
                    cache.clear();
                }
                cache.insert(user.to_owned(), Verified { stored_hash: stored.to_owned(), digest });
            }
        }
        // Checked after the password so a disabled account is only revealed
        // (in the audit log) to someone who knows its password.
        if record.disabled {
            return Err(AuthnError::Disabled(user.to_owned()));
        }
        Ok(record)
    }
}

impl Default for BasicAuthenticator {
    fn default() -> Self {
        BasicAuthenticator::new()
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::config::InternalUser;

    fn basic(s: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s))
    }

    #[test]
    fn parses_basic_headers() {
        assert_eq!(parse_basic(&basic("ana:pa:ss")), Ok(("ana".into(), "pa:ss".into())));
        assert_eq!(parse_basic("Bearer abc"), Err(AuthnError::Malformed("unsupported scheme")));
        assert_eq!(parse_basic("Basic !!!"), Err(AuthnError::Malformed("not base64")));
        assert_eq!(
            parse_basic(&basic("nocolon")),
            Err(AuthnError::Malformed("no `:` between user and password"))
        );
        assert_eq!(parse_basic(&basic(":pw")), Err(AuthnError::Malformed("empty user name")));
        assert_eq!(parse_basic("Basic"), Err(AuthnError::Malformed("no scheme")));
    }

    #[test]
    fn cache_is_invalidated_by_password_change_and_removal() -> Result<(), Box<dyn std::error::Error>> {
        let auth = BasicAuthenticator::new();
        let mut config = SecurityConfig::default();
        let first = password::hash("First-password-1")?;
        config
            .internal_users
            .insert("ana".into(), InternalUser { hash: Some(first), ..InternalUser::default() });
        assert_eq!(auth.verify(&config, "ana", "First-password-1").map(|_| ()), Ok(()));
        assert_eq!(auth.verify(&config, "ana", "First-password-1").map(|_| ()), Ok(())); // cached
        assert_eq!(
            auth.verify(&config, "ana", "wrong").map(|_| ()),
            Err(AuthnError::WrongPassword("ana".into()))
        );

        let second = password::hash("Second-password-2")?;
        if let Some(user) = config.internal_users.get_mut("ana") {
            user.hash = Some(second);
        }
        assert_eq!(
            auth.verify(&config, "ana", "First-password-1").map(|_| ()),
            Err(AuthnError::WrongPassword("ana".into()))
        );
        assert_eq!(auth.verify(&config, "ana", "Second-password-2").map(|_| ()), Ok(()));

        if let Some(user) = config.internal_users.get_mut("ana") {
            user.disabled = true;
        }
        assert_eq!(
            auth.verify(&config, "ana", "Second-password-2").map(|_| ()),
            Err(AuthnError::Disabled("ana".into()))
        );
        config.internal_users.remove("ana");
        assert_eq!(
            auth.verify(&config, "ana", "Second-password-2").map(|_| ()),
            Err(AuthnError::UnknownUser("ana".into()))
        );
        Ok(())
    }
}
