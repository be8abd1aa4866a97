//! Which authentication methods are on, from OpenSearch's `config.yml`
//! (`config.dynamic.authc` and `config.dynamic.http.anonymous_auth_enabled`):
//! HTTP Basic against internal users, Bearer JWT from an external identity
//! provider ([`super::jwt`]), and anonymous access (off unless configured).
//!
//! `config.dynamic.auth_failure_listeners` throttles failed Basic logins as
//! OpenSearch's listeners do ([`super::throttle`]): `type: ip` counts
//! failures per client address, `type: username` (backend `internal`) per
//! user name; `allowed_tries` failures within `time_window_seconds` block
//! the address or name for `block_expiry_seconds`;
//! `max_tracked_clients`/`max_blocked_clients` bound the tables. Without the
//! key Warden applies [`FailureListener::defaults`]; an empty
//! `auth_failure_listeners: {}` turns throttling off.

use std::time::Duration;

use serde_norway::Value;

use super::AuthcError;
use super::jwt::JwtDomain;
use super::throttle::{FailureListener, ListenerKind};

/// The authentication methods in force.
#[derive(Clone)]
pub struct Authc {
    pub basic: bool,
    pub anonymous: bool,
    pub jwt: Option<JwtDomain>,
    /// How failed logins are throttled (`auth_failure_listeners`).
    pub failure_listeners: Vec<FailureListener>,
}

impl std::fmt::Debug for Authc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authc")
            .field("basic", &self.basic)
            .field("anonymous", &self.anonymous)
            .field("jwt", &self.jwt.is_some())
            .field("failure_listeners", &self.failure_listeners)
            .finish()
    }
}

impl Default for Authc {
    /// Basic only, no anonymous access: what Warden does without a config.yml.
    fn default() -> Self {
        Authc { basic: true, anonymous: false, jwt: None, failure_listeners: FailureListener::defaults() }
    }
}

impl Authc {
    /// Parses `config.yml` text. Domains with `http_enabled: false` are off.
    pub fn parse(text: &str) -> Result<Authc, AuthcError> {
        let root: Value = serde_norway::from_str(text).map_err(|e| AuthcError::new(e.to_string()))?;
        let dynamic = &root["config"]["dynamic"];
        let anonymous = dynamic["http"]["anonymous_auth_enabled"].as_bool().unwrap_or(false);
        let failure_listeners = match dynamic["auth_failure_listeners"].as_mapping() {
            None => FailureListener::defaults(),
            Some(listeners) => listeners
                .iter()
                .map(|(name, value)| {
                    let name = name.as_str().unwrap_or("?");
                    listener(name, value).map_err(|e| e.within(&format!("auth_failure_listeners.{name}")))
                })
                .collect::<Result<_, _>>()?,
        };
        let mut authc = Authc { basic: false, anonymous, jwt: None, failure_listeners };
        let Some(domains) = dynamic["authc"].as_mapping() else {
            return Ok(Authc { basic: true, ..authc });
        };
        for (name, domain) in domains {
            let name = name.as_str().unwrap_or("?");
            if !domain["http_enabled"].as_bool().unwrap_or(false) {
                continue;
            }
            match domain["http_authenticator"]["type"].as_str() {
                Some("basic") => authc.basic = true,
                Some("jwt") => {
                    let config = &domain["http_authenticator"]["config"];
                    authc.jwt = Some(JwtDomain::parse(config).map_err(|e| e.within(name))?);
                }
                Some(other) => {
                    return Err(AuthcError::new(format!(
                        "{name}: authenticator type `{other}` is not supported"
                    )));
                }
                None => return Err(AuthcError::new(format!("{name}: no http_authenticator.type"))),
            }
        }
        Ok(authc)
    }
}

/// One entry of `auth_failure_listeners`; absent values take
/// OpenSearch's defaults (10 tries, 3600 s window, 600 s block, 100,000
/// clients).
fn listener(name: &str, value: &Value) -> Result<FailureListener, AuthcError> {
    let kind = match value["type"].as_str() {
        Some("ip") => ListenerKind::Ip,
        Some("username") => {
            match value["authentication_backend"].as_str() {
                None | Some("internal" | "intern") => {}
                Some(other) => {
                    return Err(AuthcError::new(format!(
                        "authentication_backend `{other}`: only `internal` is supported"
                    )));
                }
            }
            ListenerKind::Username
        }
        Some(other) => {
            return Err(AuthcError::new(format!("type `{other}` is not supported (use `ip` or `username`)")));
        }
        None => return Err(AuthcError::new("no type (`ip` or `username`)")),
    };
    let number = |key: &str, default: u64| -> Result<u64, AuthcError> {
        match &value[key] {
            Value::Null => Ok(default),
            v => v
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| AuthcError::new(format!("{key} must be a positive whole number"))),
        }
    };
    Ok(FailureListener {
        name: name.to_owned(),
        kind,
        allowed_tries: u32::try_from(number("allowed_tries", 10)?).unwrap_or(u32::MAX),
        time_window: Duration::from_secs(number("time_window_seconds", 3600)?),
        block_expiry: Duration::from_secs(number("block_expiry_seconds", 600)?),
        max_blocked_clients: usize::try_from(number("max_blocked_clients", 100_000)?).unwrap_or(usize::MAX),
        max_tracked_clients: usize::try_from(number("max_tracked_clients", 100_000)?).unwrap_or(usize::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn opensearch_demo_config_means_basic_only() -> Result<(), Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/opensearch-demo/config.yml"
        ))?;
        let authc = Authc::parse(&text)?;
        assert!(authc.basic && !authc.anonymous && authc.jwt.is_none(), "{authc:?}");
        Ok(())
    }

    #[test]
    fn failure_listeners_follow_opensearch() -> Result<(), Box<dyn std::error::Error>> {
        let text = "config:\n  dynamic:\n    auth_failure_listeners:\n      ip_rate_limiting:\n        type: ip\n        allowed_tries: 3\n        time_window_seconds: 5\n      user_limiting:\n        type: username\n        authentication_backend: internal\n        block_expiry_seconds: 7\n";
        let authc = Authc::parse(text)?;
        let [ip, user] = authc.failure_listeners.as_slice() else { panic!("{authc:?}") };
        assert_eq!(
            (ip.kind, ip.allowed_tries, ip.time_window, ip.block_expiry),
            (ListenerKind::Ip, 3, Duration::from_secs(5), Duration::from_secs(600))
        );
        assert_eq!(
            (user.kind, user.allowed_tries, user.block_expiry),
            (ListenerKind::Username, 10, Duration::from_secs(7))
        );
        // Absent: Warden's defaults; empty: off.
        assert_eq!(Authc::parse("config:\n  dynamic: {}\n")?.failure_listeners, FailureListener::defaults());
        assert!(
            Authc::parse("config:\n  dynamic:\n    auth_failure_listeners: {}\n")?
                .failure_listeners
                .is_empty()
        );
        let bad =
            Authc::parse("config:\n  dynamic:\n    auth_failure_listeners:\n      x:\n        type: ldap\n");
        assert!(bad.is_err_and(|e| e.to_string().contains("auth_failure_listeners.x")));
        let zero = Authc::parse(
            "config:\n  dynamic:\n    auth_failure_listeners:\n      x:\n        type: ip\n        allowed_tries: 0\n",
        );
        assert!(zero.is_err_and(|e| e.to_string().contains("allowed_tries must be a positive")));
        Ok(())
    }

    #[test]
    fn weak_or_malformed_jwt_keys_are_refused() {
        let config = |key: &str| {
            format!(
                "config:\n  dynamic:\n    authc:\n      jwt:\n        http_enabled: true\n        http_authenticator:\n          type: jwt\n          config:\n            signing_key: \"{key}\"\n"
            )
        };
        let short = base64::engine::general_purpose::STANDARD.encode("short");
        let e = Authc::parse(&config(&short)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("at least 256 bits"), "{e}");
        let e = Authc::parse(&config("%%%")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("neither a PEM key nor base64"), "{e}");
    }
}
