//! `tokens`: the credentials a request or a guest call presents — Warden's
//! own OBO tokens, an identity provider's JWTs, API tokens (`ApiKey`) and
//! `Basic` headers.
//!
//! Properties: a token minted (OBO) or signed (JWT) from arbitrary claims
//! verifies, and what it says round-trips exactly (user, source, roles,
//! backend roles, attributes, scope, lifetime); the same token altered at
//! any one byte never verifies; as an `Authorization` header (`ApiKey`,
//! `Bearer` OBO or JWT; the scheme in any case, blanks around) a
//! credential authenticates as whom it names, and altered never does;
//! arbitrary text is never a credential; a `Basic` header that parses
//! re-encodes to the same user and password.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;

use crate::security::api_tokens::{ApiTokens, NewApiToken};
use crate::security::authn::{Authc, AuthnError, JwtDomain, parse_basic};
use crate::security::config::{InternalUser, SecurityConfig};
use crate::security::obo::{KeyRing, MAX_LIFETIME, Revocations, Scope, TokenHolder, TokenService};
use crate::security::{AuthenticatedUser, IdentitySource, Security};
use crate::store::Store;
use crate::time::now_secs;

/// The HMAC secret of the external identity provider the checks trust.
const JWT_SECRET: [u8; 32] = [0x5a; 32];
const JWT_ISSUER: &str = "fuzz-idp";

pub fn check_tokens(data: &[u8]) {
    let mut u = Unstructured::new(data);
    match u.arbitrary::<u8>().unwrap_or(0) % 4 {
        0 => obo(&mut u),
        1 => jwt(&mut u),
        2 => headers(&mut u),
        _ => raw(&mut u),
    }
}

fn service() -> &'static Arc<TokenService> {
    static SERVICE: OnceLock<Arc<TokenService>> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let b64 = base64::engine::general_purpose::STANDARD;
        // Fixed keys: a run is reproducible from its input alone.
        let ring = serde_json::json!({
            "current": { "kid": "fuzz-key", "signing": b64.encode([0x11u8; 64]), "encryption": b64.encode([0x22u8; 32]) },
        });
        match serde_json::from_value::<KeyRing>(ring) {
            Ok(keys) => Arc::new(TokenService::new("warden-fuzz", keys, Revocations::default())),
            Err(e) => panic!("the fixed key ring does not parse: {e}"),
        }
    })
}

fn jwt_domain() -> &'static JwtDomain {
    static DOMAIN: OnceLock<JwtDomain> = OnceLock::new();
    DOMAIN.get_or_init(|| {
        let key = base64::engine::general_purpose::STANDARD.encode(JWT_SECRET);
        let config = format!(
            "config:\n  dynamic:\n    authc:\n      jwt:\n        http_enabled: true\n        http_authenticator:\n          type: jwt\n          config:\n            signing_key: \"{key}\"\n            roles_key: roles\n            required_issuer: {JWT_ISSUER}\n"
        );
        match Authc::parse(&config).map(|a| a.jwt) {
            Ok(Some(domain)) => domain,
            other => panic!("the fixed JWT domain does not parse: {other:?}"),
        }
    })
}

/// A host-made id (request and job ids are hex the host generates).
fn host_id(u: &mut Unstructured<'_>) -> String {
    format!("{:x}", u.arbitrary::<u64>().unwrap_or(0))
}

/// `token` with byte `at` replaced by `with` (a different byte), if it
/// stays text.
fn altered(token: &str, at: usize, with: u8) -> Option<String> {
    let mut bytes = token.as_bytes().to_vec();
    let at = at % bytes.len().max(1);
    let old = *bytes.get(at)?;
    let new = if with == old { with.wrapping_add(1) } else { with };
    bytes[at] = new;
    String::from_utf8(bytes).ok()
}

fn obo(u: &mut Unstructured<'_>) {
    let user = String::arbitrary(u).unwrap_or_default();
    let source =
        if bool::arbitrary(u).unwrap_or(false) { IdentitySource::Jwt } else { IdentitySource::Internal };
    // Role names are whatever a configuration may hold: anything but empty.
    let names = |u: &mut Unstructured<'_>| -> Vec<String> {
        Vec::<String>::arbitrary(u).unwrap_or_default().into_iter().filter(|r| !r.is_empty()).collect()
    };
    let roles = names(u);
    let backend_roles = names(u);
    let attributes = HashMap::<String, String>::arbitrary(u).unwrap_or_default();
    let extension = String::arbitrary(u).unwrap_or_default();
    let scope = match u.arbitrary::<u8>().unwrap_or(0) % 3 {
        0 => {
            let token = bool::arbitrary(u).unwrap_or(false).then(|| host_id(u));
            Scope::request(host_id(u), token.as_deref())
        }
        1 => Scope::Job(host_id(u)),
        _ => Scope::User(String::arbitrary(u).unwrap_or_default()),
    };
    let lifetime = u.arbitrary::<u64>().unwrap_or(60) % (MAX_LIFETIME + 1);
    let holder = TokenHolder {
        user: &user,
        source,
        roles: &roles,
        backend_roles: &backend_roles,
        attributes: &attributes,
    };
    let s = service();
    let token = match s.mint(&holder, &extension, &scope, lifetime) {
        Ok(token) => token,
        Err(e) => panic!("a token within the lifetime cap was not minted: {e}"),
    };
    let claims = match s.verify(&token, &extension) {
        Ok(claims) => claims,
        Err(e) => panic!("a token just minted does not verify: {e}"),
    };
    assert_eq!(claims.user, user, "user");
    assert_eq!(claims.source, source.as_str(), "source");
    assert_eq!(claims.extension, extension, "extension");
    assert_eq!(claims.roles, roles, "roles");
    assert_eq!(claims.backend_roles, backend_roles, "backend roles");
    assert_eq!(claims.attributes, attributes, "attributes");
    assert_eq!(claims.scope, scope, "scope");
    assert_eq!(claims.expires_at - claims.issued_at, lifetime, "lifetime");
    // Presented over REST, the audience is read from the token: the same.
    assert_eq!(s.verify_presented(&token).ok().as_ref(), Some(&claims), "presented");
    // Another extension's call never accepts it.
    let other = format!("{extension}x");
    assert!(s.verify(&token, &other).is_err(), "accepted for another extension");
    // Altered anywhere, it never verifies.
    let (at, with) = (usize::arbitrary(u).unwrap_or(0), u8::arbitrary(u).unwrap_or(b'A'));
    if let Some(bad) = altered(&token, at, with) {
        if let Ok(c) = s.verify(&bad, &extension) {
            panic!("a token altered at byte {at} verifies: {bad} as {c:?}");
        }
        assert!(s.verify_presented(&bad).is_err(), "an altered token verifies over REST: {bad}");
    }
}

#[derive(serde::Serialize)]
struct JwtClaims {
    sub: String,
    iss: String,
    exp: u64,
    roles: Vec<String>,
    #[serde(flatten)]
    extra: HashMap<String, String>,
}

fn jwt(u: &mut Unstructured<'_>) {
    let sub = String::arbitrary(u).unwrap_or_default();
    let roles = Vec::<String>::arbitrary(u).unwrap_or_default();
    let mut extra = HashMap::<String, String>::arbitrary(u).unwrap_or_default();
    for reserved in ["sub", "iss", "exp", "roles", "nbf", "aud", "iat"] {
        extra.remove(reserved);
    }
    let algorithm = match u.arbitrary::<u8>().unwrap_or(0) % 3 {
        0 => jsonwebtoken::Algorithm::HS256,
        1 => jsonwebtoken::Algorithm::HS384,
        _ => jsonwebtoken::Algorithm::HS512,
    };
    let claims = JwtClaims { sub: sub.clone(), iss: JWT_ISSUER.into(), exp: now_secs() + 600, roles, extra };
    let header = jsonwebtoken::Header::new(algorithm);
    let token =
        match jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&JWT_SECRET)) {
            Ok(token) => token,
            Err(e) => panic!("cannot sign a test JWT: {e}"),
        };
    let domain = jwt_domain();
    match domain.authenticate(&token) {
        Ok(principal) => {
            assert!(!sub.is_empty(), "a JWT with an empty subject was accepted");
            assert_eq!(principal.name, sub, "subject");
            assert_eq!(principal.backend_roles, claims.roles, "backend roles");
            assert_eq!(principal.attributes.get("user_name"), Some(&sub), "user_name");
            for (key, value) in &claims.extra {
                assert_eq!(principal.attributes.get(&format!("attr.jwt.{key}")), Some(value), "claim {key}");
            }
        }
        Err(e) => assert!(sub.is_empty(), "a well-signed JWT was refused: {e}"),
    }
    let (at, with) = (usize::arbitrary(u).unwrap_or(0), u8::arbitrary(u).unwrap_or(b'A'));
    if let Some(bad) = altered(&token, at, with)
        && let Ok(p) = domain.authenticate(&bad)
    {
        panic!("a JWT altered at byte {at} verifies: {bad} as {p:?}");
    }
}

/// A host's authentication as `serve` builds it: Basic, JWT, OBO and API
/// tokens, with one internal user (`fuzzer`, no password) who holds one
/// API token.
struct Gate {
    security: Security,
    secret: String,
    executor: tokio::runtime::Runtime,
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let dir = super::scratch_dir("api-tokens");
        let store = match Store::open(&dir.join("warden.redb")) {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("cannot open the scratch store: {e}"),
        };
        let tokens = Arc::new(ApiTokens::new(store));
        let request = NewApiToken {
            name: "fuzz".into(),
            cluster_permissions: vec!["cluster:monitor/health".into()],
            index_permissions: Vec::new(),
            duration_seconds: Some(3600),
        };
        let secret = match tokens.create(USER, request, now_secs()) {
            Ok((secret, _, _)) => secret,
            Err(e) => panic!("cannot create the API token: {e}"),
        };
        let mut config = SecurityConfig::default();
        config.internal_users.insert(USER.into(), InternalUser::default());
        let mut authc = Authc { jwt: Some(jwt_domain().clone()), ..Authc::default() };
        authc.failure_listeners.clear();
        let security =
            Security::new(config).with_api_tokens(tokens).with_obo(service().clone()).with_authc(authc);
        let executor = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(executor) => executor,
            Err(e) => panic!("no executor: {e}"),
        };
        Gate { security, secret, executor }
    })
}

/// The internal user of [`gate`].
const USER: &str = "fuzzer";

fn authenticate(header: &str) -> Result<AuthenticatedUser, AuthnError> {
    let gate = gate();
    gate.executor.block_on(gate.security.authenticate(Some(header), None))
}

/// A credential presented in an `Authorization` header, its scheme in any
/// case and padded with blanks, as clients send them: accepted as whom it
/// names; altered at any byte, refused.
fn headers(u: &mut Unstructured<'_>) {
    let gate = gate();
    let kind = u.arbitrary::<u8>().unwrap_or(0) % 3;
    let (scheme, credential, name) = match kind {
        0 => ("ApiKey", gate.secret.clone(), USER.to_owned()),
        1 => {
            let none = HashMap::new();
            let holder = TokenHolder {
                user: USER,
                source: IdentitySource::Internal,
                roles: &[],
                backend_roles: &[],
                attributes: &none,
            };
            match service().mint(&holder, "ext", &Scope::User("fuzz".into()), 60) {
                Ok(token) => ("Bearer", token, USER.to_owned()),
                Err(e) => panic!("cannot mint: {e}"),
            }
        }
        _ => {
            let sub = format!("{}x", String::arbitrary(u).unwrap_or_default());
            let claims = JwtClaims {
                sub: sub.clone(),
                iss: JWT_ISSUER.into(),
                exp: now_secs() + 600,
                roles: Vec::new(),
                extra: HashMap::new(),
            };
            let key = jsonwebtoken::EncodingKey::from_secret(&JWT_SECRET);
            match jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key) {
                Ok(token) => ("Bearer", token, sub),
                Err(e) => panic!("cannot sign: {e}"),
            }
        }
    };
    let case = u.arbitrary::<u8>().unwrap_or(0);
    let scheme: String = scheme
        .chars()
        .enumerate()
        .map(
            |(i, c)| if case & (1 << (i % 8)) != 0 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() },
        )
        .collect();
    let pad = " ".repeat(usize::from(u.arbitrary::<u8>().unwrap_or(0) % 3));
    let header = format!("{scheme} {pad}{credential}{pad}");
    match authenticate(&header) {
        Ok(user) => {
            assert_eq!(user.principal.name, name, "{header}");
            assert_eq!(user.api_token.is_some(), kind == 0, "ApiKey");
            assert_eq!(user.via_obo, kind == 1, "OBO");
            let source = if kind == 2 { IdentitySource::Jwt } else { IdentitySource::Internal };
            assert_eq!(user.source, source, "source");
        }
        Err(e) => panic!("`{header}` was refused: {e}"),
    }
    let (at, with) = (usize::arbitrary(u).unwrap_or(0), u8::arbitrary(u).unwrap_or(b'A'));
    if let Some(bad) = altered(&credential, at, with)
        && bad.trim() == bad
        && let Ok(user) = authenticate(&format!("{scheme} {bad}"))
    {
        panic!("`{scheme} {bad}` (altered at byte {at}) authenticates as `{}`", user.principal.name);
    }
}

fn raw(u: &mut Unstructured<'_>) {
    let text = String::arbitrary_take_rest(std::mem::replace(u, Unstructured::new(&[]))).unwrap_or_default();
    let s = service();
    let _ = crate::security::obo::peek_claims(&text);
    let _ = s.is_ours(&text);
    assert!(s.verify(&text, "x").is_err() && s.verify_presented(&text).is_err(), "forged OBO token: {text}");
    assert!(jwt_domain().authenticate(&text).is_err(), "forged JWT: {text}");
    // As a whole header: nothing but a real credential authenticates
    // (`fuzzer` has no password; anonymous access is off).
    if let Ok(user) = authenticate(&text) {
        panic!("the header `{text}` authenticates as `{}`", user.principal.name);
    }
    if let Ok((user, password)) = parse_basic(&text) {
        assert!(!user.is_empty() && !user.contains(':'), "Basic user `{user}`");
        let again = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        assert_eq!(parse_basic(&again).ok(), Some((user, password)), "Basic re-encoded");
    }
}
