//! HTTP Basic against internal users, with a verified-credential cache so
//! a request does not pay bcrypt each time.
//!
//! bcrypt never runs on the request executor: a verification waits for one
//! of a few permits (one per core) and runs on tokio's blocking pool, so a
//! flood of wrong passwords queues behind those permits while cached
//! credentials, tokens and everything else keep being served. Failed logins
//! are throttled per client address and per user name as OpenSearch's
//! `auth_failure_listeners` do ([`super::throttle`]): a blocked
//! address or name is refused before any hash is checked.
//!
//! The cache maps a user name to a keyed digest of the password that last
//! verified and the stored hash it verified against. A password change
//! (new hash) or a removed or disabled user fails the lookup at once: the
//! cache is consulted only after the user record is read from the current
//! configuration.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::AuthnError;
use super::throttle::{FailureListener, Throttle, ThrottleKeys};
use crate::security::config::{InternalUser, SecurityConfig};
use crate::security::mapping::Principal;
use crate::security::password;

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
    /// Bounds bcrypt work running at once (one permit per core).
    hashing: Arc<tokio::sync::Semaphore>,
    /// How long a verification waits for a permit before `Busy`.
    queue_timeout: Duration,
    throttle: Mutex<Throttle>,
    /// bcrypt verifications started (tests count cache hits by it).
    bcrypt_runs: std::sync::atomic::AtomicU64,
}

/// A cost-12 ([`password::BCRYPT_COST`]) bcrypt hash of a random string
/// nobody kept, verified against when the user does not exist or has no
/// password, so that timing does not tell those apart from a wrong password.
pub(crate) const TIMING_DUMMY_HASH: &str = "$2b$12$bpP2LBbX9E03GaSROtLCG.QNh/5StPAAw2nDUGKLGDaowtVp3mR3.";

/// Cached credentials kept at most (then the cache starts over).
const CACHE_CAP: usize = 100_000;

/// Default wait for a hashing permit: past it the login answers 503 rather
/// than queueing without end.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

impl BasicAuthenticator {
    pub fn new() -> BasicAuthenticator {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Without randomness the cache key is the zero key: digests stay
            // process-local (never written anywhere), only less opaque.
            tracing::warn!("no system randomness for the credential cache key");
        }
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        BasicAuthenticator {
            key,
            cache: Mutex::new(HashMap::new()),
            hashing: Arc::new(tokio::sync::Semaphore::new(cores)),
            queue_timeout: QUEUE_TIMEOUT,
            throttle: Mutex::new(Throttle::default()),
            bcrypt_runs: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many bcrypt verifications this authenticator has run.
    pub fn bcrypt_runs(&self) -> u64 {
        self.bcrypt_runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Checks `user`/`password` from `remote` against `config`, throttled by
    /// `listeners`; returns the user's record. A cached credential answers
    /// at once; otherwise bcrypt runs off the executor.
    pub async fn verify<'c>(
        &self,
        config: &'c SecurityConfig,
        listeners: &[FailureListener],
        user: &str,
        password: &str,
        remote: Option<IpAddr>,
    ) -> Result<&'c InternalUser, AuthnError> {
        let keys = ThrottleKeys::new(user, remote);
        let record = config.internal_users.get(user);
        let stored = record.and_then(|r| r.hash.as_deref());
        let digest = self.digest(user, password);
        let deadline = Instant::now() + self.queue_timeout;
        let cached = loop {
            // A blocked address or name is refused before anything else,
            // cached credentials included: otherwise a guess made while
            // blocked would still tell right from wrong.
            self.lock_throttle().admit(listeners, &keys, Instant::now()).map_err(|(listener, wait)| {
                AuthnError::Throttled { user: user.to_owned(), listener, retry_after_secs: ceil_secs(wait) }
            })?;
            let cached = stored.is_some_and(|stored| {
                self.cache
                    .lock()
                    .ok()
                    .and_then(|c| c.get(user).cloned())
                    .is_some_and(|v| v.stored_hash == stored && constant_time_eq(&v.digest, &digest))
            });
            if cached {
                break true;
            }
            // Guesses already being checked count against the allowance, so
            // a burst of concurrent guesses cannot overrun it. A check that
            // finds the allowance taken by checks under way waits for them
            // (a burst of clients with the right password, on a cold cache,
            // then finds the credential cached) instead of being refused.
            // (The throttle's lock is released before any await.)
            let reserved = self.lock_throttle().reserve(listeners, &keys, Instant::now());
            match reserved {
                Ok(()) => break false,
                Err((listener, wait)) if Instant::now() >= deadline => {
                    return Err(AuthnError::Throttled {
                        user: user.to_owned(),
                        listener,
                        retry_after_secs: ceil_secs(wait),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        if !cached {
            // Unknown users and users without a password pay the same bcrypt
            // cost as a wrong password, so timing does not tell them apart.
            let against = stored.unwrap_or(TIMING_DUMMY_HASH);
            let checked = self.bcrypt(user, password, against).await;
            let matched = match checked {
                Ok(matched) => matched,
                Err(busy) => {
                    self.lock_throttle().settle(listeners, &keys, false, Instant::now());
                    return Err(busy);
                }
            };
            let failure = match (record, stored) {
                (None, _) => Some(AuthnError::UnknownUser(user.to_owned())),
                (Some(_), None) => Some(AuthnError::NoPassword(user.to_owned())),
                (Some(_), Some(_)) if !matched => Some(AuthnError::WrongPassword(user.to_owned())),
                _ => None,
            };
            self.lock_throttle().settle(listeners, &keys, failure.is_some(), Instant::now());
            if let Some(failure) = failure {
                return Err(failure);
            }
            if let (Ok(mut cache), Some(stored)) = (self.cache.lock(), stored) {
                if cache.len() >= CACHE_CAP {
                    cache.clear();
                }
                cache.insert(user.to_owned(), Verified { stored_hash: stored.to_owned(), digest });
            }
        }
        let Some(record) = record else { return Err(AuthnError::UnknownUser(user.to_owned())) };
        // Checked after the password so a disabled account is only revealed
        // (in the audit log) to someone who knows its password.
        if record.disabled {
            return Err(AuthnError::Disabled(user.to_owned()));
        }
        Ok(record)
    }

    /// bcrypt on the blocking pool, at most one per core at once.
    async fn bcrypt(&self, user: &str, password: &str, hash: &str) -> Result<bool, AuthnError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.hashing.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| AuthnError::Busy(user.to_owned()))?;
        self.bcrypt_runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (password, hash) = (password.to_owned(), hash.to_owned());
        let checked = tokio::task::spawn_blocking(move || {
            let matched = password::verify(&password, &hash);
            drop(permit);
            matched
        })
        .await;
        // A panicked verification is a failed one.
        Ok(checked.unwrap_or(false))
    }

    fn lock_throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for BasicAuthenticator {
    fn default() -> Self {
        BasicAuthenticator::new()
    }
}

/// The principal of an internal user, as Basic authentication makes it
/// (also how a scheduled job's owner is resolved again at each run).
pub fn internal_principal(user: &str, record: &InternalUser) -> Principal {
    let mut attributes: HashMap<String, String> =
        record.attributes.iter().map(|(k, v)| (format!("attr.internal.{k}"), v.clone())).collect();
    attributes.insert("user_name".into(), user.to_owned());
    Principal {
        name: user.to_owned(),
        backend_roles: record.backend_roles.clone(),
        direct_roles: record.opendistro_security_roles.clone(),
        attributes,
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
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

    fn verify<'c>(
        auth: &BasicAuthenticator,
        config: &'c SecurityConfig,
        user: &str,
        password: &str,
    ) -> Result<&'c InternalUser, AuthnError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|_| AuthnError::Missing)?;
        rt.block_on(auth.verify(config, &[], user, password, None))
    }

    #[test]
    fn cache_is_invalidated_by_password_change_and_removal() -> Result<(), Box<dyn std::error::Error>> {
        let auth = BasicAuthenticator::new();
        // bcrypt runs made by one verification.
        let runs = |user: &str, password: &str, config: &SecurityConfig| {
            let before = auth.bcrypt_runs();
            let outcome = verify(&auth, config, user, password).map(|_| ());
            (outcome, auth.bcrypt_runs() - before)
        };
        let mut config = SecurityConfig::default();
        let first = password::hash("First-password-1")?;
        config
            .internal_users
            .insert("ana".into(), InternalUser { hash: Some(first), ..InternalUser::default() });
        assert_eq!(runs("ana", "First-password-1", &config), (Ok(()), 1));
        assert_eq!(runs("ana", "First-password-1", &config), (Ok(()), 0), "answered from the cache");
        assert_eq!(runs("ana", "wrong", &config), (Err(AuthnError::WrongPassword("ana".into())), 1));

        let second = password::hash("Second-password-2")?;
        if let Some(user) = config.internal_users.get_mut("ana") {
            user.hash = Some(second);
        }
        // The old password no longer hits the cache: bcrypt runs, and says no.
        assert_eq!(
            runs("ana", "First-password-1", &config),
            (Err(AuthnError::WrongPassword("ana".into())), 1)
        );
        assert_eq!(runs("ana", "Second-password-2", &config), (Ok(()), 1));
        assert_eq!(runs("ana", "Second-password-2", &config), (Ok(()), 0), "the new one is cached");

        if let Some(user) = config.internal_users.get_mut("ana") {
            user.disabled = true;
        }
        assert_eq!(runs("ana", "Second-password-2", &config), (Err(AuthnError::Disabled("ana".into())), 0));
        config.internal_users.remove("ana");
        // Removed: the cache is not consulted; only the dummy hash is checked.
        assert_eq!(
            runs("ana", "Second-password-2", &config),
            (Err(AuthnError::UnknownUser("ana".into())), 1)
        );
        Ok(())
    }

    #[test]
    fn a_user_without_a_password_never_logs_in_and_pays_the_dummy_bcrypt() {
        let auth = BasicAuthenticator::new();
        let mut config = SecurityConfig::default();
        config.internal_users.insert("service:probe".into(), InternalUser::default());
        for password in ["", "probe", "anything"] {
            let before = auth.bcrypt_runs();
            assert_eq!(
                verify(&auth, &config, "service:probe", password).map(|_| ()),
                Err(AuthnError::NoPassword("service:probe".into())),
                "{password:?}"
            );
            assert_eq!(auth.bcrypt_runs() - before, 1, "timing like a wrong password");
        }
        // `service:probe:` as a Basic header is user `service` (the first `:`
        // splits): no Basic header can name the account, so only `verify` can.
        assert_eq!(parse_basic(&basic("service:probe:")), Ok(("service".into(), "probe:".into())));
    }

    #[test]
    fn unknown_users_take_as_long_as_wrong_passwords() -> Result<(), Box<dyn std::error::Error>> {
        let auth = BasicAuthenticator::new();
        let mut config = SecurityConfig::default();
        let hash = password::hash("Right-password-1")?;
        config
            .internal_users
            .insert("ana".into(), InternalUser { hash: Some(hash), ..InternalUser::default() });
        let time = |user: &str| {
            let started = Instant::now();
            let outcome = verify(&auth, &config, user, "Wrong-password-9");
            (started.elapsed(), outcome.map(|_| ()))
        };
        let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
        // Interleaved, so a busy machine slows both the same.
        for _ in 0..5 {
            let (t, outcome) = time("nobody");
            assert_eq!(outcome, Err(AuthnError::UnknownUser("nobody".into())));
            unknown.push(t);
            let (t, outcome) = time("ana");
            assert_eq!(outcome, Err(AuthnError::WrongPassword("ana".into())));
            wrong.push(t);
        }
        unknown.sort();
        wrong.sort();
        let ratio = unknown[2].as_secs_f64() / wrong[2].as_secs_f64();
        assert!((0.5..=2.0).contains(&ratio), "unknown {unknown:?} vs wrong password {wrong:?}");
        Ok(())
    }

    #[test]
    fn timing_dummy_hash_is_a_valid_hash_of_the_configured_cost() {
        // It must run the full bcrypt (a malformed hash would fail fast and
        // tell unknown users apart), at the cost new hashes get.
        assert_eq!(bcrypt::verify("anything", TIMING_DUMMY_HASH).ok(), Some(false));
        assert!(bcrypt::verify("x", TIMING_DUMMY_HASH).is_ok());
        assert_eq!(password::cost(TIMING_DUMMY_HASH), Some(password::BCRYPT_COST));
        // And `password::verify` runs it in full (a cost it refuses would be free).
        assert!(password::cost(TIMING_DUMMY_HASH).is_some_and(|c| c <= password::MAX_BCRYPT_COST));
    }
}
