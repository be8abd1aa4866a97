//! Hostile tokens for the attack suites (the token tests beside this file
//! and the gateway's): each with what it tries and a fragment of the
//! reason it must be refused with. Test-only.

use std::collections::HashMap;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::{KeyRing, Revocations, Scope, TokenError, TokenHolder, TokenService, peek_claims};
use crate::time::now_secs;

pub type Case = (&'static str, String, &'static str);

/// A genuine token: `ana` (roles `analyst_role`, backend role
/// `analyst`) for extension `reporter`.
pub fn mint(s: &TokenService) -> Result<String, TokenError> {
    let attributes = HashMap::from([("attr.internal.team".to_owned(), "red".to_owned())]);
    let holder = TokenHolder {
        user: "ana",
        source: crate::security::IdentitySource::Internal,
        roles: &["analyst_role".into()],
        backend_roles: &["analyst".into()],
        attributes: &attributes,
    };
    s.mint(&holder, "reporter", &Scope::request("r1", None), 60)
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
    let now = now_secs();
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
        ("not yet valid", resign(s, &with("nbf", (now + 120).into()), Algorithm::HS512)?, "not valid yet"),
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
            format!("{head}.{}", b64(&with("sub", "admin".into())) + &rest[rest.find('.').unwrap_or(0)..]),
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
