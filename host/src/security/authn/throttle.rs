//! Failed-login throttling, as OpenSearch's `auth_failure_listeners` do:
//! `type: ip` counts failures per client address, `type: username` per user
//! name; `allowed_tries` failures within the window block the address or
//! name for `block_expiry`. A blocked address or name is refused before any
//! hash is checked ([`super::basic::BasicAuthenticator`]); the tables stay
//! bounded by `max_tracked_clients`/`max_blocked_clients`. What
//! `config.yml` says is read in [`super::settings`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// What a failure listener counts failures by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// The client address (OpenSearch `type: ip`).
    Ip,
    /// The claimed internal user name (OpenSearch `type: username`).
    Username,
}

/// One `auth_failure_listeners` entry, with OpenSearch's semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureListener {
    pub name: String,
    pub kind: ListenerKind,
    /// Failures tolerated within `time_window`; the next one blocks.
    pub allowed_tries: u32,
    pub time_window: Duration,
    /// How long a blocked address or name is refused without checking.
    pub block_expiry: Duration,
    pub max_blocked_clients: usize,
    pub max_tracked_clients: usize,
}

impl FailureListener {
    /// Warden's throttling when `config.yml` does not configure any: 10
    /// failures a minute per address block that address for a minute.
    /// (OpenSearch ships none; without a limit every guess costs a bcrypt.)
    /// Not per user name by default: a name listener lets anyone who knows
    /// a name — `admin` — lock that user out from everywhere; an operator
    /// who wants it configures a `username` listener.
    pub fn defaults() -> Vec<FailureListener> {
        let listener = |name: &str, kind| FailureListener {
            name: name.to_owned(),
            kind,
            allowed_tries: 10,
            time_window: Duration::from_secs(60),
            block_expiry: Duration::from_secs(60),
            max_blocked_clients: 100_000,
            max_tracked_clients: 100_000,
        };
        vec![listener("ip_rate_limiting", ListenerKind::Ip)]
    }
}

/// A fixed-size key per address and per name: a 60 KB user name costs the
/// tables no more than a short one.
type Key = [u8; 16];

pub(super) struct ThrottleKeys {
    ip: Option<Key>,
    username: Key,
}

impl ThrottleKeys {
    pub(super) fn new(user: &str, remote: Option<IpAddr>) -> ThrottleKeys {
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
pub(super) struct Throttle {
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
    pub(super) fn admit(
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
    pub(super) fn reserve(
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
    pub(super) fn settle(
        &mut self,
        listeners: &[FailureListener],
        keys: &ThrottleKeys,
        failed: bool,
        now: Instant,
    ) {
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
