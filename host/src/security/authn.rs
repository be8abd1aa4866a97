//! Authentication of REST requests: HTTP Basic against internal users, with
//! a verified-credential cache so a request does not pay bcrypt each time.
//!
//! bcrypt never runs on the request executor: a verification waits for one
//! of a few permits (one per core) and runs on tokio's blocking pool, so a
//! flood of wrong passwords queues behind those permits while cached
//! credentials, tokens and everything else keep being served. Failed logins
//! are throttled per client address and per user name as OpenSearch's
//! `auth_failure_listeners` do ([`super::authc::FailureListener`]): a blocked
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

use super::authc::{FailureListener, ListenerKind};
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
    /// Too many failed logins from this address or for this name: refused
    /// without checking the password until the block expires.
    #[error("too many failed logins ({listener}) for user `{user}`: blocked for {retry_after_secs} s")]
    Throttled { user: String, listener: String, retry_after_secs: u64 },
    /// Every password-verification permit stayed busy for the queue timeout.
    #[error("password verification is saturated; user `{0}` not checked")]
    Busy(String),
}

impl AuthnError {
    /// The user the request claimed to be, for the audit log.
    pub fn claimed_user(&self) -> Option<&str> {
        match self {
            AuthnError::UnknownUser(u)
            | AuthnError::Disabled(u)
            | AuthnError::WrongPassword(u)
            | AuthnError::NoPassword(u)
            | AuthnError::Busy(u)
            | AuthnError::Throttled { user: u, .. } => Some(u),
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

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A fixed-size key per address and per name: a 60 KB user name costs the
/// tables no more than a short one.
type Key = [u8; 16];

struct ThrottleKeys {
    ip: Option<Key>,
    username: Key,
}

impl ThrottleKeys {
    fn new(user: &str, remote: Option<IpAddr>) -> ThrottleKeys {
        // An IPv6 client holds a whole /64: it counts as one address.
        let ip = remote.map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                octets
            }
        });
        let hashed: [u8; 32] = Sha256::digest(user.as_bytes()).into();
        let mut username = [0u8; 16];
        username.copy_from_slice(&hashed[..16]);
        ThrottleKeys { ip, username }
    }

    fn for_kind(&self, kind: ListenerKind) -> Option<&Key> {
        match kind {
            ListenerKind::Ip => self.ip.as_ref(),
            ListenerKind::Username => Some(&self.username),
        }
    }
}

/// The failure tables of every listener, rebuilt when the listeners change.
#[derive(Debug, Default)]
struct Throttle {
    tables: Vec<Table>,
}

#[derive(Debug)]
struct Table {
    listener: FailureListener,
    /// Failures in the current window, per key.
    tracked: HashMap<Key, Window>,
    /// Blocked keys and until when.
    blocked: HashMap<Key, Instant>,
    last_sweep: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
    /// Verifications under way for this key.
    pending: u32,
}

impl Throttle {
    fn tables_for(&mut self, listeners: &[FailureListener]) -> &mut [Table] {
        let same = self.tables.len() == listeners.len()
            && self.tables.iter().zip(listeners).all(|(t, l)| t.listener == *l);
        if !same {
            self.tables = listeners
                .iter()
                .map(|listener| Table {
                    listener: listener.clone(),
                    tracked: HashMap::new(),
                    blocked: HashMap::new(),
                    last_sweep: Instant::now(),
                })
                .collect();
        }
        &mut self.tables
    }

    /// `Err((listener, remaining))` when a key is blocked.
    fn admit(
        &mut self,
        listeners: &[FailureListener],
        keys: &ThrottleKeys,
        now: Instant,
    ) -> Result<(), (String, Duration)> {
        for table in self.tables_for(listeners) {
            let Some(key) = keys.for_kind(table.listener.kind) else { continue };
            match table.blocked.get(key) {
                Some(until) if *until > now => return Err((table.listener.name.clone(), *until - now)),
                Some(_) => {
                    table.blocked.remove(key);
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Takes a verification slot for each key; `Err` when the failures and
    /// verifications under way already reach a listener's `allowed_tries`.
    fn reserve(
        &mut self,
        listeners: &[FailureListener],
        keys: &ThrottleKeys,
        now: Instant,
    ) -> Result<(), (String, Duration)> {
        let tables = self.tables_for(listeners);
        for table in tables.iter() {
            let Some(key) = keys.for_kind(table.listener.kind) else { continue };
            if let Some(w) = table.tracked.get(key)
                && now.duration_since(w.start) <= table.listener.time_window
                && w.failures.saturating_add(w.pending) >= table.listener.allowed_tries
            {
                // Retry once the verifications under way have settled.
                return Err((table.listener.name.clone(), Duration::from_secs(1)));
            }
        }
        for table in tables.iter_mut() {
            let Some(key) = keys.for_kind(table.listener.kind) else { continue };
            table.window(*key, now).pending += 1;
        }
        Ok(())
    }

    /// Releases the slots [`Throttle::reserve`] took, counting a failure.
    fn settle(&mut self, listeners: &[FailureListener], keys: &ThrottleKeys, failed: bool, now: Instant) {
        for table in self.tables_for(listeners) {
            let Some(key) = keys.for_kind(table.listener.kind) else { continue };
            if let Some(w) = table.tracked.get_mut(key) {
                w.pending = w.pending.saturating_sub(1);
            }
            if failed {
                table.failed(*key, now);
            }
        }
    }
}

impl Table {
    /// The key's current window (a new one once the last has ended).
    fn window(&mut self, key: Key, now: Instant) -> &mut Window {
        if !self.tracked.contains_key(&key) && self.tracked.len() >= self.listener.max_tracked_clients {
            self.sweep(now);
            if self.tracked.len() >= self.listener.max_tracked_clients {
                // Still full of live windows: forget one rather than grow.
                if let Some(victim) = self.tracked.keys().next().copied() {
                    self.tracked.remove(&victim);
                }
            }
        }
        let time_window = self.listener.time_window;
        let window = self.tracked.entry(key).or_insert(Window { start: now, failures: 0, pending: 0 });
        if now.duration_since(window.start) > time_window {
            *window = Window { start: now, failures: 0, pending: window.pending };
        }
        window
    }

    fn failed(&mut self, key: Key, now: Instant) {
        let allowed = self.listener.allowed_tries;
        let window = self.window(key, now);
        window.failures += 1;
        if window.failures < allowed {
            return;
        }
        self.tracked.remove(&key);
        if self.blocked.len() >= self.listener.max_blocked_clients {
            self.sweep(now);
            if self.blocked.len() >= self.listener.max_blocked_clients
                && let Some(victim) = self.blocked.keys().next().copied()
            {
                self.blocked.remove(&victim);
            }
        }
        self.blocked.insert(key, now + self.listener.block_expiry);
    }

    /// Drops ended windows and expired blocks, at most once a second (a
    /// table kept full would otherwise be swept on every failure).
    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) < Duration::from_secs(1) {
            return;
        }
        self.last_sweep = now;
        let window = self.listener.time_window;
        self.tracked.retain(|_, w| now.duration_since(w.start) <= window);
        self.blocked.retain(|_, until| *until > now);
    }
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

    fn listener(kind: ListenerKind, tries: u32, max_tracked: usize) -> FailureListener {
        FailureListener {
            name: format!("{kind:?}"),
            kind,
            allowed_tries: tries,
            time_window: Duration::from_secs(60),
            block_expiry: Duration::from_secs(30),
            max_blocked_clients: 4,
            max_tracked_clients: max_tracked,
        }
    }

    #[test]
    fn throttle_blocks_per_address_and_per_name_then_expires() {
        let listeners = [listener(ListenerKind::Ip, 3, 100), listener(ListenerKind::Username, 5, 100)];
        let mut throttle = Throttle::default();
        let t0 = Instant::now();
        let attacker = ThrottleKeys::new("ana", Some("10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]))));
        let other_address =
            ThrottleKeys::new("bob", Some("10.0.0.2".parse().unwrap_or(IpAddr::from([0; 4]))));
        for _ in 0..3 {
            assert!(throttle.admit(&listeners, &attacker, t0).is_ok());
            assert!(throttle.reserve(&listeners, &attacker, t0).is_ok());
            throttle.settle(&listeners, &attacker, true, t0);
        }
        // The address is blocked; another address and name are not.
        assert!(
            throttle
                .admit(&listeners, &attacker, t0)
                .is_err_and(|(l, wait)| l == "Ip" && wait == Duration::from_secs(30))
        );
        assert!(throttle.admit(&listeners, &other_address, t0).is_ok());
        // The block expires.
        assert!(throttle.admit(&listeners, &attacker, t0 + Duration::from_secs(31)).is_ok());
        // Name `ana` from elsewhere: 3 failures counted so far, 2 more block the name.
        let ana_elsewhere =
            ThrottleKeys::new("ana", Some("10.0.0.3".parse().unwrap_or(IpAddr::from([0; 4]))));
        for _ in 0..2 {
            assert!(throttle.reserve(&listeners, &ana_elsewhere, t0).is_ok());
            throttle.settle(&listeners, &ana_elsewhere, true, t0);
        }
        assert!(throttle.admit(&listeners, &ana_elsewhere, t0).is_err_and(|(l, _)| l == "Username"));
        // Verifications under way count: a burst cannot overrun the allowance.
        let burst = ThrottleKeys::new("carl", Some("10.0.0.4".parse().unwrap_or(IpAddr::from([0; 4]))));
        for _ in 0..3 {
            assert!(throttle.reserve(&listeners, &burst, t0).is_ok());
        }
        assert!(throttle.reserve(&listeners, &burst, t0).is_err());
        for _ in 0..3 {
            throttle.settle(&listeners, &burst, false, t0);
        }
        assert!(throttle.reserve(&listeners, &burst, t0).is_ok());
    }

    #[test]
    fn throttle_tables_stay_bounded() {
        let listeners = [listener(ListenerKind::Ip, 1_000, 8), listener(ListenerKind::Username, 1, 8)];
        let mut throttle = Throttle::default();
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let keys = ThrottleKeys::new(&format!("user-{i}"), Some(IpAddr::from(i.to_be_bytes())));
            let _ = throttle.reserve(&listeners, &keys, t0);
            throttle.settle(&listeners, &keys, true, t0);
        }
        for table in &throttle.tables {
            assert!(
                table.tracked.len() <= 8 && table.blocked.len() <= 4,
                "{} {}",
                table.tracked.len(),
                table.blocked.len()
            );
        }
    }
}
