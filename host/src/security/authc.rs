//! Which authentication methods are on, from OpenSearch's `config.yml`
//! (`config.dynamic.authc` and `config.dynamic.http.anonymous_auth_enabled`):
//! HTTP Basic against internal users, Bearer JWT from an external identity
//! provider, and anonymous access (off unless configured).
//!
//! A JWT domain reads `signing_key` (base64 HMAC secret, or an RSA/EC
//! public key in PEM), `jwt_header`, `jwt_clock_skew_tolerance_seconds`,
//! `subject_key`, `roles_key`, `required_issuer` and `required_audience`.
//!
//! `config.dynamic.auth_failure_listeners` throttles failed Basic logins as
//! OpenSearch's listeners do: `type: ip` counts failures per client address,
//! `type: username` (backend `internal`) per user name; `allowed_tries`
//! failures within `time_window_seconds` block the address or name for
//! `block_expiry_seconds`; `max_tracked_clients`/`max_blocked_clients` bound
//! the tables. Without the key Warden applies [`FailureListener::defaults`];
//! an empty `auth_failure_listeners: {}` turns throttling off.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_yaml::Value;

use super::authn::AuthnError;
use super::mapping::Principal;

/// OpenSearch's names for the anonymous user and its backend role.
pub const ANONYMOUS_USER: &str = "opendistro_security_anonymous";
pub const ANONYMOUS_BACKEND_ROLE: &str = "opendistro_security_anonymous_backendrole";

/// The authentication methods in force.
#[derive(Clone)]
pub struct Authc {
    pub basic: bool,
    pub anonymous: bool,
    pub jwt: Option<JwtDomain>,
    /// How failed logins are throttled (`auth_failure_listeners`).
    pub failure_listeners: Vec<FailureListener>,
}

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

    /// One entry of `auth_failure_listeners`; absent values take
    /// OpenSearch's defaults (10 tries, 3600 s window, 600 s block, 100,000
    /// clients).
    fn parse(name: &str, value: &Value) -> Result<FailureListener, String> {
        let kind = match value["type"].as_str() {
            Some("ip") => ListenerKind::Ip,
            Some("username") => {
                match value["authentication_backend"].as_str() {
                    None | Some("internal" | "intern") => {}
                    Some(other) => {
                        return Err(format!(
                            "authentication_backend `{other}`: only `internal` is supported"
                        ));
                    }
                }
                ListenerKind::Username
            }
            Some(other) => return Err(format!("type `{other}` is not supported (use `ip` or `username`)")),
            None => return Err("no type (`ip` or `username`)".into()),
        };
        let number = |key: &str, default: u64| -> Result<u64, String> {
            match &value[key] {
                Value::Null => Ok(default),
                v => v
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{key} must be a positive whole number")),
            }
        };
        Ok(FailureListener {
            name: name.to_owned(),
            kind,
            allowed_tries: u32::try_from(number("allowed_tries", 10)?).unwrap_or(u32::MAX),
            time_window: Duration::from_secs(number("time_window_seconds", 3600)?),
            block_expiry: Duration::from_secs(number("block_expiry_seconds", 600)?),
            max_blocked_clients: usize::try_from(number("max_blocked_clients", 100_000)?)
                .unwrap_or(usize::MAX),
            max_tracked_clients: usize::try_from(number("max_tracked_clients", 100_000)?)
                .unwrap_or(usize::MAX),
        })
    }
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

/// A Bearer JWT domain.
#[derive(Clone)]
pub struct JwtDomain {
    key: DecodingKey,
    validation: Validation,
    pub header: String,
    subject_key: Option<String>,
    roles_key: Option<String>,
}

impl std::fmt::Debug for JwtDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtDomain").field("algorithms", &self.validation.algorithms).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("config.yml: {0}")]
pub struct AuthcError(String);

impl Authc {
    /// Parses `config.yml` text. Domains with `http_enabled: false` are off.
    pub fn parse(text: &str) -> Result<Authc, AuthcError> {
        let root: Value = serde_yaml::from_str(text).map_err(|e| AuthcError(e.to_string()))?;
        let dynamic = &root["config"]["dynamic"];
        let anonymous = dynamic["http"]["anonymous_auth_enabled"].as_bool().unwrap_or(false);
        let failure_listeners = match dynamic["auth_failure_listeners"].as_mapping() {
            None => FailureListener::defaults(),
            Some(listeners) => listeners
                .iter()
                .map(|(name, value)| {
                    let name = name.as_str().unwrap_or("?");
                    FailureListener::parse(name, value)
                        .map_err(|e| AuthcError(format!("auth_failure_listeners.{name}: {e}")))
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
                    authc.jwt =
                        Some(JwtDomain::parse(config).map_err(|e| AuthcError(format!("{name}: {e}")))?);
                }
                Some(other) => {
                    return Err(AuthcError(format!("{name}: authenticator type `{other}` is not supported")));
                }
                None => return Err(AuthcError(format!("{name}: no http_authenticator.type"))),
            }
        }
        Ok(authc)
    }
}

impl JwtDomain {
    fn parse(config: &Value) -> Result<JwtDomain, String> {
        let key_text = config["signing_key"].as_str().ok_or("signing_key is required")?;
        let (key, algorithms) = if key_text.contains("-----BEGIN") {
            let pem = key_text.as_bytes();
            if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                (
                    key,
                    vec![
                        Algorithm::RS256,
                        Algorithm::RS384,
                        Algorithm::RS512,
                        Algorithm::PS256,
                        Algorithm::PS384,
                        Algorithm::PS512,
                    ],
                )
            } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
                (key, vec![Algorithm::ES256, Algorithm::ES384])
            } else {
                return Err("signing_key is a PEM but neither an RSA nor an EC public key".into());
            }
        } else {
            let secret = base64::engine::general_purpose::STANDARD
                .decode(key_text.trim())
                .map_err(|_| "signing_key is neither a PEM key nor base64")?;
            if secret.len() < 32 {
                return Err("HMAC signing_key must be at least 256 bits".into());
            }
            (DecodingKey::from_secret(&secret), vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512])
        };
        let mut validation = Validation::new(algorithms[0]);
        // Pinned to the key's family: a token cannot pick another algorithm.
        validation.algorithms = algorithms;
        validation.leeway = config["jwt_clock_skew_tolerance_seconds"].as_u64().unwrap_or(30);
        validation.validate_nbf = true;
        match config["required_issuer"].as_str() {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match config["required_audience"].as_str() {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let header = config["jwt_header"].as_str().unwrap_or("Authorization").to_owned();
        if !header.eq_ignore_ascii_case("authorization") {
            return Err(format!("jwt_header `{header}`: only Authorization is supported"));
        }
        Ok(JwtDomain {
            key,
            validation,
            header,
            subject_key: config["subject_key"].as_str().map(str::to_owned),
            roles_key: config["roles_key"].as_str().map(str::to_owned),
        })
    }

    /// Verifies a token and makes the external user it names.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthnError> {
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|e| AuthnError::InvalidToken(e.to_string()))?
        .claims;
        let subject_key = self.subject_key.as_deref().unwrap_or("sub");
        let name = claims
            .get(subject_key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthnError::InvalidToken(format!("no `{subject_key}` claim")))?
            .to_owned();
        let backend_roles = match self.roles_key.as_deref().and_then(|k| claims.get(k)) {
            Some(serde_json::Value::String(s)) => {
                s.split(',').map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect()
            }
            Some(serde_json::Value::Array(a)) => {
                a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            _ => Vec::new(),
        };
        let mut attributes: HashMap<String, String> = claims
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (format!("attr.jwt.{k}"), s.to_owned())))
            .collect();
        attributes.insert("user_name".into(), name.clone());
        Ok(Principal { name, backend_roles, direct_roles: Vec::new(), attributes })
    }
}

/// The anonymous principal, when anonymous access is on.
pub fn anonymous() -> Principal {
    Principal {
        name: ANONYMOUS_USER.into(),
        backend_roles: vec![ANONYMOUS_BACKEND_ROLE.into()],
        direct_roles: Vec::new(),
        attributes: HashMap::from([("user_name".to_owned(), ANONYMOUS_USER.to_owned())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
