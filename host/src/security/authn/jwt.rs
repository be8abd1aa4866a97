//! Bearer JWTs from an external identity provider (a `jwt` domain of
//! `config.yml`): the domain reads `signing_key` (base64 HMAC secret, or an
//! RSA/EC public key in PEM), `jwt_header`, `jwt_clock_skew_tolerance_seconds`,
//! `subject_key`, `roles_key`, `required_issuer` and `required_audience`,
//! and pins the algorithm to the key's family.

use std::collections::HashMap;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_norway::Value;

use super::{AuthcError, AuthnError};
use crate::security::mapping::Principal;

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

impl JwtDomain {
    /// A domain from its `http_authenticator.config`.
    pub(super) fn parse(config: &Value) -> Result<JwtDomain, AuthcError> {
        let key_text =
            config["signing_key"].as_str().ok_or_else(|| AuthcError::new("signing_key is required"))?;
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
                return Err(AuthcError::new("signing_key is a PEM but neither an RSA nor an EC public key"));
            }
        } else {
            let secret = base64::engine::general_purpose::STANDARD
                .decode(key_text.trim())
                .map_err(|_| AuthcError::new("signing_key is neither a PEM key nor base64"))?;
            if secret.len() < 32 {
                return Err(AuthcError::new("HMAC signing_key must be at least 256 bits"));
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
            return Err(AuthcError::new(format!("jwt_header `{header}`: only Authorization is supported")));
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
