//! The console's sign-in sessions: in memory, per process (a restart signs
//! everyone out). A session is a random 256-bit id the browser holds in an
//! HttpOnly cookie; the store keeps only its SHA-256, with the user's name,
//! the password hash they signed in against, when it was made (for the OBO
//! revocation rule), its absolute expiry, its idle deadline and the CSRF
//! token the page must echo on every change.
//!
//! A session is never a second source of rights: [`ConsoleSessions::resolve`]
//! reads the user afresh from the current security configuration on every
//! request, so current roles apply, and a disabled or deleted user, a
//! changed password or a revocation of the user's tokens ends it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::security::authn::{AuthnError, internal_principal};
use crate::security::{AuthenticatedUser, IdentitySource, Security};

/// How long a session lasts at most, how long it may sit unused, how many
/// one user and everyone may hold, and whether its cookie is `Secure`
/// whatever the request says.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub lifetime: Duration,
    pub idle: Duration,
    pub per_user: usize,
    pub total: usize,
    pub secure_cookie: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            lifetime: Duration::from_secs(8 * 3600),
            idle: Duration::from_secs(30 * 60),
            per_user: 10,
            total: 10_000,
            secure_cookie: false,
        }
    }
}

impl ConsoleSettings {
    /// The defaults, changed by `WARDEN_CONSOLE_SESSION_SECS`,
    /// `WARDEN_CONSOLE_IDLE_SECS`, `WARDEN_CONSOLE_MAX_SESSIONS` and
    /// `WARDEN_CONSOLE_SECURE_COOKIE` (`true`/`1`). A value that does not
    /// parse keeps the default and says so in the log.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> ConsoleSettings {
        let mut settings = ConsoleSettings::default();
        let number = |name: &str| -> Option<u64> {
            let text = env(name)?;
            match text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!("{name}={text:?} is not a positive whole number: the default applies");
                    None
                }
            }
        };
        if let Some(secs) = number("WARDEN_CONSOLE_SESSION_SECS") {
            settings.lifetime = Duration::from_secs(secs);
        }
        if let Some(secs) = number("WARDEN_CONSOLE_IDLE_SECS") {
            settings.idle = Duration::from_secs(secs);
        }
        if let Some(n) = number("WARDEN_CONSOLE_MAX_SESSIONS") {
            settings.total = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(text) = env("WARDEN_CONSOLE_SECURE_COOKIE") {
            settings.secure_cookie =
                matches!(text.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes");
        }
        settings
    }
}

#[derive(Debug, Clone)]
struct Session {
    user: String,
    /// The stored password hash the user signed in against: a changed
    /// password ends the session.
    password_hash: Option<String>,
    /// Seconds since the epoch, compared with the user's token revocations.
    created_secs: u64,
    created: Instant,
    last_seen: Instant,
    csrf: String,
}

/// A session found for a request: who, and the CSRF token it must carry.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub user: AuthenticatedUser,
    pub csrf: String,
    /// The cookie's value, to end this very session at sign-out.
    pub id: String,
}

/// Why a new session was not made.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("too many console sessions are open: try again later")]
    Full,
    #[error("no system randomness for a session id")]
    NoRandomness,
}

/// Every open session of this process.
#[derive(Debug)]
pub struct ConsoleSessions {
    pub settings: ConsoleSettings,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn random_hex() -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| SessionError::NoRandomness)?;
    Ok(hex::encode(bytes))
}

/// Equal, in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ConsoleSessions {
    pub fn new(settings: ConsoleSettings) -> ConsoleSessions {
        ConsoleSessions { settings, sessions: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        match self.sessions.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn live(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.created) < self.settings.lifetime
            && now.duration_since(session.last_seen) < self.settings.idle
    }

    /// Opens a session for internal user `user`, who just proved
    /// `password_hash`'s password; returns (id, CSRF token). The user's
    /// oldest session goes when they hold the most they may; when everyone
    /// together does, expired ones are swept and then the sign-in is refused.
    /// `created_secs` is the session's issue time for the revocation rule
    /// (from `issue_time`, so a sign-in right after a revocation lives).
    pub fn open(
        &self,
        user: &str,
        password_hash: Option<String>,
        created_secs: u64,
    ) -> Result<(String, String), SessionError> {
        let (id, csrf) = (random_hex()?, random_hex()?);
        let now = Instant::now();
        let mut sessions = self.lock();
        let mut own: Vec<([u8; 32], Instant)> =
            sessions.iter().filter(|(_, s)| s.user == user).map(|(k, s)| (*k, s.created)).collect();
        if own.len() >= self.settings.per_user {
            own.sort_by_key(|(_, created)| *created);
            for (k, _) in own.iter().take(own.len() + 1 - self.settings.per_user) {
                sessions.remove(k);
            }
        }
        if sessions.len() >= self.settings.total {
            sessions.retain(|_, s| {
                now.duration_since(s.created) < self.settings.lifetime
                    && now.duration_since(s.last_seen) < self.settings.idle
            });
            if sessions.len() >= self.settings.total {
                return Err(SessionError::Full);
            }
        }
        sessions.insert(
            key(&id),
            Session {
                user: user.to_owned(),
                password_hash,
                created_secs,
                created: now,
                last_seen: now,
                csrf: csrf.clone(),
            },
        );
        Ok((id, csrf))
    }

    /// Ends the session `id` (nothing when there is none).
    pub fn close(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    /// How many sessions are open (expired ones not yet swept included).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// The user behind session `id`, read afresh from the current
    /// configuration, from `remote`. An unknown, expired or idle session,
    /// or one whose user is gone, disabled, has another password or had
    /// their tokens revoked since it was opened, is ended and refused.
    pub fn resolve(
        &self,
        security: &Security,
        id: &str,
        remote: Option<IpAddr>,
    ) -> Result<ConsoleSession, AuthnError> {
        let k = key(id);
        let now = Instant::now();
        let session = {
            let mut sessions = self.lock();
            let Some(session) = sessions.get_mut(&k) else {
                return Err(AuthnError::InvalidToken("unknown or ended console session".into()));
            };
            if !self.live(session, now) {
                sessions.remove(&k);
                return Err(AuthnError::InvalidToken("the console session has expired".into()));
            }
            session.last_seen = now;
            session.clone()
        };
        let ended = |e: AuthnError| {
            self.close(id);
            e
        };
        let state = security.state();
        let record = state.config.internal_users.get(&session.user).ok_or_else(|| {
            ended(AuthnError::InvalidToken(format!("the console user `{}` no longer exists", session.user)))
        })?;
        if record.disabled {
            return Err(ended(AuthnError::Disabled(session.user.clone())));
        }
        if record.hash != session.password_hash {
            return Err(ended(AuthnError::InvalidToken(format!(
                "the password of `{}` changed since the console session began",
                session.user
            ))));
        }
        // The OBO revocation rule: whatever was issued at or before the
        // user's revocation is dead.
        if security.user_revoked_before(&session.user).is_some_and(|t| session.created_secs <= t) {
            return Err(ended(AuthnError::InvalidToken(format!(
                "the tokens of `{}` were revoked after the console session began",
                session.user
            ))));
        }
        let principal = internal_principal(&session.user, record);
        let subject = state.subject(&principal, remote);
        let user = AuthenticatedUser {
            principal,
            source: IdentitySource::Internal,
            subject,
            via_obo: false,
            api_token: None,
            state: state.clone(),
        };
        Ok(ConsoleSession { user, csrf: session.csrf, id: id.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_stored_hashed() -> Result<(), SessionError> {
        let sessions = ConsoleSessions::new(ConsoleSettings::default());
        let (a, csrf_a) = sessions.open("ana", None, 0)?;
        let (b, _) = sessions.open("ana", None, 0)?;
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(a, csrf_a);
        assert!(!sessions.lock().keys().any(|k| hex::encode(k) == a));
        Ok(())
    }

    #[test]
    fn per_user_cap_drops_the_oldest() -> Result<(), SessionError> {
        let settings = ConsoleSettings { per_user: 2, ..ConsoleSettings::default() };
        let sessions = ConsoleSessions::new(settings);
        let (first, _) = sessions.open("ana", None, 0)?;
        std::thread::sleep(Duration::from_millis(2));
        sessions.open("ana", None, 0)?;
        sessions.open("ana", None, 0)?;
        sessions.open("bob", None, 0)?;
        assert_eq!(sessions.len(), 3);
        assert!(!sessions.lock().contains_key(&key(&first)));
        Ok(())
    }

    #[test]
    fn total_cap_refuses() -> Result<(), SessionError> {
        let settings = ConsoleSettings { total: 2, ..ConsoleSettings::default() };
        let sessions = ConsoleSessions::new(settings);
        sessions.open("a", None, 0)?;
        sessions.open("b", None, 0)?;
        assert!(matches!(sessions.open("c", None, 0), Err(SessionError::Full)));
        Ok(())
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
