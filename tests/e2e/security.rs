//! Authentication and authorization through the real `warden` binary:
//! every route authenticates, failures are indistinguishable 401s, the
//! route's extension permission is enforced, the user's name reaches the
//! guest, and an OpenSearch security directory imports unchanged.

use warden_test_artifacts::{GUEST_HOST_CALLS, HELLO_WORLD};

use crate::support::{self, ADMIN_PASSWORD, Deployment, TestResult, basic, now_ms, now_secs};

#[test]
fn failures_are_uniform_401s() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    let server = deployment.start()?;
    let attempts = [
        None,
        Some(basic("admin", "wrong-password")),
        Some(basic("nobody", ADMIN_PASSWORD)),
        Some("Basic !!!not-base64".to_owned()),
        Some("Bearer whatever".to_owned()),
        Some("Basic".to_owned()),
    ];
    let mut bodies = Vec::new();
    for attempt in &attempts {
        for path in ["/_extensions/hello/greet/x", "/_warden/health", "/_plugins/_security/authinfo", "/nope"]
        {
            let reply = server.get_with_authorization(path, attempt.as_deref())?;
            assert_eq!(reply.status, 401, "{path} with {attempt:?}: {reply:?}");
            assert_eq!(
                reply.headers.get("www-authenticate").map(|v| v.as_bytes()),
                Some(b"Basic realm=\"warden\"".as_slice())
            );
            bodies.push(reply.body);
        }
    }
    bodies.dedup();
    assert_eq!(bodies.len(), 1, "one answer for every failure: {bodies:?}");
    // The log (not the client) says which failure it was. Lines can lag
    // the answers: wait for each reason, the last attempt's included, before
    // the negative scan, so it scans a log that has them all.
    for reason in [
        "wrong password for user `admin`",
        "unknown user `nobody`",
        "malformed Authorization header: not base64",
        "malformed Authorization header: no scheme",
    ] {
        assert!(server.wait_for_log(reason), "{reason}: {}", server.logs());
    }
    let logs = server.logs();
    assert!(!logs.contains(ADMIN_PASSWORD), "passwords never reach the log");
    Ok(())
}

#[test]
fn admin_is_created_from_the_initial_password_and_is_all_access() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let info = server.get("/_plugins/_security/authinfo")?;
    assert_eq!(info.status, 200, "{info:?}");
    let info = info.json();
    assert_eq!(info["user_name"], "admin");
    let roles: Vec<String> = serde_json::from_value(info["roles"].clone())?;
    assert!(
        roles.contains(&"all_access".to_owned()) && roles.contains(&"security_manager".to_owned()),
        "{roles:?}"
    );
    // The password is kept only as a bcrypt hash, in a store only the owner reads.
    let store_file = deployment.data_dir().join("store/warden.redb");
    let bytes = std::fs::read(&store_file)?;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("hash: $2") && !text.contains(ADMIN_PASSWORD));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&store_file)?.permissions().mode() & 0o777, 0o600);
    }
    Ok(())
}

#[test]
fn weak_initial_password_is_refused() -> TestResult {
    let deployment = Deployment::new()?;
    let output = support::warden()
        .env("WARDEN_INITIAL_ADMIN_PASSWORD", "admin")
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(deployment.data_dir())
        .arg("--extensions-dir")
        .arg(deployment.extensions_dir())
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WARDEN_INITIAL_ADMIN_PASSWORD refused: password is too weak"), "{stderr}");
    Ok(())
}

#[test]
fn generated_admin_password_is_printed_once_and_works() -> TestResult {
    let deployment = Deployment::new()?;
    let mut command = support::warden();
    command.env_remove("WARDEN_INITIAL_ADMIN_PASSWORD");
    let server =
        support::Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])?;
    let logs = server.logs();
    let password = logs
        .split("the password of user `admin` is")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or("no generated password printed")?
        .to_owned();
    assert_eq!(server.get_as("admin", &password, "/_plugins/_security/authinfo")?.status, 200);
    let logs = server.stop();
    let restarted = deployment.start()?;
    assert!(!restarted.logs().contains("the password of user `admin` is"), "printed only on first start");
    assert_eq!(restarted.get_as("admin", &password, "/_plugins/_security/authinfo")?.status, 200);
    assert_eq!(logs.matches(&password).count(), 1, "shown once: {logs}");
    Ok(())
}

#[test]
fn opensearch_config_imports_and_gates_extension_routes() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    deployment.install("probe", GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
    let config = tempfile::tempdir()?;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/opensearch-demo");
    for file in ["internal_users.yml", "roles.yml", "roles_mapping.yml", "action_groups.yml"] {
        std::fs::copy(fixture.join(file), config.path().join(file))?;
    }
    // A role granting one route of hello, mapped to OpenSearch's demo user kibanaro.
    let mut roles = std::fs::read_to_string(config.path().join("roles.yml"))?;
    roles.push_str("\nhello_greeter:\n  extension_permissions:\n    - \"extension:hello/greet\"\n    - \"extension:probe/*\"\n");
    std::fs::write(config.path().join("roles.yml"), roles)?;
    let mut mapping = std::fs::read_to_string(config.path().join("roles_mapping.yml"))?;
    mapping.push_str("\nhello_greeter:\n  users:\n  - \"kibanaro\"\n");
    std::fs::write(config.path().join("roles_mapping.yml"), mapping)?;

    let config_arg = config.path().display().to_string();
    let server = deployment.start_with(&["--security-config", &config_arg])?;
    // OpenSearch's demo passwords (bcrypt $2a$/$2y$ hashes) work as they are.
    assert_eq!(server.get_as("admin", "admin", "/_extensions/hello/greet/x")?.status, 200);
    assert_eq!(server.get_as("kibanaro", "kibanaro", "/_extensions/hello/greet/x")?.status, 200);
    let denied = server.get_as("kibanaro", "kibanaro", "/_extensions/hello/other")?;
    assert_eq!(denied.status, 403, "{denied:?}");
    assert!(denied.reason().contains("no role of `kibanaro` grants `extension:hello/other`"), "{denied:?}");
    let denied = server.get_as("readall", "readall", "/_extensions/hello/greet/x")?;
    assert_eq!(denied.status, 403, "{denied:?}");
    assert_eq!(server.get_as("readall", "readall", "/_warden/health")?.status, 403);
    // The authenticated user's name reaches the guest; credentials do not.
    let whoami = server.get_as("kibanaro", "kibanaro", "/_extensions/probe/whoami")?;
    assert_eq!(whoami.status, 200, "{whoami:?}");
    assert_eq!(whoami.json()["user"], "kibanaro");
    assert_eq!(whoami.json()["saw_authorization"], "false");
    Ok(())
}

/// A security directory with a JWT domain (HMAC) and a role for `analysts`.
fn jwt_config(dir: &std::path::Path, secret: &[u8], anonymous: bool) -> std::io::Result<()> {
    use base64::Engine as _;
    jwt_config_with_key(dir, &base64::engine::general_purpose::STANDARD.encode(secret), anonymous)
}

/// [`jwt_config`] with `signing_key` as given: base64 HMAC secret or a PEM
/// public key.
fn jwt_config_with_key(dir: &std::path::Path, signing_key: &str, anonymous: bool) -> std::io::Result<()> {
    let key = signing_key.trim().replace('\n', "\\n");
    std::fs::write(
        dir.join("config.yml"),
        format!(
            r#"_meta:
  type: "config"
  config_version: 2
config:
  dynamic:
    http:
      anonymous_auth_enabled: {anonymous}
    authc:
      basic_internal_auth_domain:
        http_enabled: true
        order: 1
        http_authenticator:
          type: basic
          challenge: true
        authentication_backend:
          type: intern
      jwt_auth_domain:
        http_enabled: true
        order: 0
        http_authenticator:
          type: jwt
          challenge: false
          config:
            signing_key: "{key}"
            jwt_header: "Authorization"
            jwt_clock_skew_tolerance_seconds: 5
            roles_key: "roles"
            subject_key: "preferred_username"
            required_issuer: "https://idp.example"
            required_audience: "warden"
        authentication_backend:
          type: noop
"#
        ),
    )?;
    std::fs::write(
        dir.join("roles.yml"),
        "_meta:\n  type: roles\n  config_version: 2\nhello_users:\n  extension_permissions: [\"extension:hello/*\"]\n",
    )?;
    std::fs::write(
        dir.join("roles_mapping.yml"),
        "_meta:\n  type: rolesmapping\n  config_version: 2\nhello_users:\n  backend_roles: [\"analysts\", \"opendistro_security_anonymous_backendrole\"]\nall_access:\n  users: [\"admin\"]\n",
    )?;
    std::fs::write(
        dir.join("internal_users.yml"),
        "_meta:\n  type: internalusers\n  config_version: 2\nadmin:\n  reserved: true\n",
    )
}

fn token(
    secret: &[u8],
    claims: serde_json::Value,
    algorithm: jsonwebtoken::Algorithm,
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
}

#[test]
fn external_jwt_users_get_backend_roles_through_mappings() -> TestResult {
    use base64::Engine as _;
    use jsonwebtoken::Algorithm::{HS256, HS512};
    let secret = b"0123456789abcdef0123456789abcdef-idp-secret";
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    let config = tempfile::tempdir()?;
    jwt_config(config.path(), secret, false)?;
    let config_arg = config.path().display().to_string();
    let server = deployment.start_with(&["--security-config", &config_arg])?;

    let claims = |exp: u64, iss: &str, aud: &str| serde_json::json!({"preferred_username": "erin", "roles": ["analysts", "viewers"], "iss": iss, "aud": aud, "exp": exp, "nbf": now_secs() - 10});
    let good = token(secret, claims(now_secs() + 300, "https://idp.example", "warden"), HS512)?;
    let bearer = |t: &str| format!("Bearer {t}");
    let reply = server.get_with_authorization("/_extensions/hello/greet/erin", Some(&bearer(&good)))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let info = server.get_with_authorization("/_plugins/_security/authinfo", Some(&bearer(&good)))?.json();
    assert_eq!(info["user_name"], "erin");
    assert_eq!(info["backend_roles"], serde_json::json!(["analysts", "viewers"]));
    assert_eq!(info["roles"], serde_json::json!(["hello_users"]));

    let forged = token(
        b"another-secret-another-secret-another!!",
        claims(now_secs() + 300, "https://idp.example", "warden"),
        HS256,
    )?;
    let expired = token(secret, claims(now_secs() - 600, "https://idp.example", "warden"), HS256)?;
    let wrong_issuer = token(secret, claims(now_secs() + 300, "https://evil.example", "warden"), HS256)?;
    let wrong_audience = token(secret, claims(now_secs() + 300, "https://idp.example", "other"), HS256)?;
    let early = {
        let mut c = claims(now_secs() + 600, "https://idp.example", "warden");
        c["nbf"] = serde_json::json!(now_secs() + 300);
        token(secret, c, HS256)?
    };
    let unsigned = {
        let b64 =
            |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = claims(now_secs() + 300, "https://idp.example", "warden");
        format!("{}.{}.", b64(serde_json::json!({"alg": "none", "typ": "JWT"})), b64(claims))
    };
    let truncated = good[..good.len() - 10].to_owned();
    for (what, bad) in [
        ("forged", forged),
        ("expired", expired),
        ("wrong issuer", wrong_issuer),
        ("wrong audience", wrong_audience),
        ("not yet valid", early),
        ("alg none", unsigned),
        ("truncated", truncated),
    ] {
        let reply = server.get_with_authorization("/_extensions/hello/greet/x", Some(&bearer(&bad)))?;
        assert_eq!(reply.status, 401, "{what}: {reply:?}");
    }
    // Basic stays on beside JWT: admin got the initial password.
    assert_eq!(server.get("/_warden/health")?.status, 200);
    assert!(server.wait_for_log("invalid bearer token: ExpiredSignature"), "{}", server.logs());
    Ok(())
}

#[test]
fn anonymous_access_only_when_configured() -> TestResult {
    let secret = b"0123456789abcdef0123456789abcdef-idp-secret";
    for anonymous in [false, true] {
        let deployment = Deployment::new()?;
        deployment.install("hello", HELLO_WORLD, "")?;
        let config = tempfile::tempdir()?;
        jwt_config(config.path(), secret, anonymous)?;
        let config_arg = config.path().display().to_string();
        let server = deployment.start_with(&["--security-config", &config_arg])?;
        let reply = server.get_with_authorization("/_extensions/hello/greet/anon", None)?;
        if anonymous {
            assert_eq!(reply.status, 200, "{reply:?}");
            let info = server.get_with_authorization("/_plugins/_security/authinfo", None)?.json();
            assert_eq!(info["user_name"], "opendistro_security_anonymous");
        } else {
            assert_eq!(reply.status, 401, "{reply:?}");
        }
    }
    Ok(())
}

/// A fixed test key pair under tests/e2e/fixtures (made with openssl for
/// these tests only; no crate in the build generates RSA keys).
fn fixture(name: &str) -> Result<String, std::io::Error> {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/fixtures").join(name),
    )
}

fn pem_token(
    private_pem: &str,
    claims: &serde_json::Value,
    algorithm: jsonwebtoken::Algorithm,
) -> Result<String, Box<dyn std::error::Error>> {
    use jsonwebtoken::Algorithm::{ES256, ES384};
    let key = if matches!(algorithm, ES256 | ES384) {
        jsonwebtoken::EncodingKey::from_ec_pem(private_pem.as_bytes())?
    } else {
        jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes())?
    };
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), claims, &key)?)
}

/// RSA and EC public keys (PEM) verify their own family's tokens only: the
/// algorithm is pinned to the key, so a token cannot pick HMAC with the
/// public key as its secret (or another family); `exp` is required.
#[test]
fn jwt_pem_keys_pin_their_algorithm_family_and_require_exp() -> TestResult {
    use jsonwebtoken::Algorithm::{ES256, HS256, PS256, RS256, RS512};
    let rsa = (fixture("jwt-rsa-private.pem")?, fixture("jwt-rsa-public.pem")?);
    let ec = (fixture("jwt-ec-private.pem")?, fixture("jwt-ec-public.pem")?);
    let claims = |exp: Option<u64>| {
        let mut c = serde_json::json!({"preferred_username": "erin", "roles": ["analysts"], "iss": "https://idp.example", "aud": "warden"});
        if let Some(exp) = exp {
            c["exp"] = serde_json::json!(exp);
        }
        c
    };
    let valid = claims(Some(now_secs() + 300));
    for (family, public_pem, good, crossed) in [
        (
            "RSA",
            &rsa.1,
            vec![
                pem_token(&rsa.0, &valid, RS256)?,
                pem_token(&rsa.0, &valid, RS512)?,
                pem_token(&rsa.0, &valid, PS256)?,
            ],
            vec![
                ("ES256 from another key family", pem_token(&ec.0, &valid, ES256)?),
                ("HS256 keyed with the public PEM", token(rsa.1.as_bytes(), valid.clone(), HS256)?),
                ("RS256 without exp", pem_token(&rsa.0, &claims(None), RS256)?),
            ],
        ),
        (
            "EC",
            &ec.1,
            vec![pem_token(&ec.0, &valid, ES256)?],
            vec![
                ("RS256 from another key family", pem_token(&rsa.0, &valid, RS256)?),
                ("HS256 keyed with the public PEM", token(ec.1.as_bytes(), valid.clone(), HS256)?),
                ("ES256 without exp", pem_token(&ec.0, &claims(None), ES256)?),
            ],
        ),
    ] {
        let deployment = Deployment::new()?;
        deployment.install("hello", HELLO_WORLD, "")?;
        let config = tempfile::tempdir()?;
        jwt_config_with_key(config.path(), public_pem, false)?;
        let config_arg = config.path().display().to_string();
        let server = deployment.start_with(&["--security-config", &config_arg])?;
        for t in &good {
            let reply = server
                .get_with_authorization("/_plugins/_security/authinfo", Some(&format!("Bearer {t}")))?;
            assert_eq!(reply.status, 200, "{family}: {reply:?}");
            assert_eq!(reply.json()["user_name"], "erin");
        }
        for (what, bad) in &crossed {
            let reply = server
                .get_with_authorization("/_extensions/hello/greet/x", Some(&format!("Bearer {bad}")))?;
            assert_eq!(reply.status, 401, "{family}, {what}: {reply:?}");
        }
        assert!(server.wait_for_log("invalid bearer token: InvalidAlgorithm"), "{family}: {}", server.logs());
        assert!(server.wait_for_log("Missing required claim: exp"), "{family}: {}", server.logs());
    }

    // An HMAC domain refuses an RSA-signed token, and a token without `exp`.
    let secret = b"0123456789abcdef0123456789abcdef-idp-secret";
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    let config = tempfile::tempdir()?;
    jwt_config(config.path(), secret, false)?;
    let config_arg = config.path().display().to_string();
    let server = deployment.start_with(&["--security-config", &config_arg])?;
    let good = token(secret, valid.clone(), HS256)?;
    assert_eq!(
        server.get_with_authorization("/_extensions/hello/greet/x", Some(&format!("Bearer {good}")))?.status,
        200
    );
    for (what, bad) in [
        ("RS256 against an HMAC domain", pem_token(&rsa.0, &valid, RS256)?),
        ("HS256 without exp", token(secret, claims(None), HS256)?),
    ] {
        let reply =
            server.get_with_authorization("/_extensions/hello/greet/x", Some(&format!("Bearer {bad}")))?;
        assert_eq!(reply.status, 401, "{what}: {reply:?}");
    }
    Ok(())
}

/// Neither `Authorization` nor `Cookie` reaches the guest; other headers do.
#[test]
fn credentials_headers_never_reach_the_guest() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install("probe", GUEST_HOST_CALLS, r#"capabilities = ["cluster", "scheduler"]"#)?;
    let server = deployment.start()?;
    let reply = reqwest::blocking::Client::new()
        .get(server.url("/_extensions/probe/whoami"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("cookie", "session=secret-session-cookie")
        .header("x-probe-control", "1")
        .send()?;
    assert_eq!(reply.status().as_u16(), 200);
    let body: serde_json::Value = reply.json()?;
    let headers: Vec<&str> = body["headers"].as_str().unwrap_or_default().split(',').collect();
    assert!(headers.contains(&"x-probe-control"), "other headers pass (the control): {body}");
    assert!(!headers.iter().any(|h| h.eq_ignore_ascii_case("cookie")), "{body}");
    assert!(!headers.iter().any(|h| h.eq_ignore_ascii_case("authorization")), "{body}");
    assert_eq!(body["saw_authorization"], "false");
    assert_eq!(body["user"], "admin");
    Ok(())
}

/// Audit events of `category` (query over REST, as admin).
fn audit_events(
    server: &support::Server,
    query: &str,
) -> Result<Vec<serde_json::Value>, Box<dyn std::error::Error>> {
    let reply = server.get(&format!("/_warden/audit?{query}&size=1000"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply.json()["events"].as_array().cloned().unwrap_or_default())
}

/// AUTHENTICATED and GRANTED_PRIVILEGES are off by default (as in
/// OpenSearch) and on with `WARDEN_AUDIT_DISABLED_CATEGORIES=""`; the
/// query's `from` and `to` bound the events over REST.
#[test]
fn audit_categories_default_off_and_time_filters() -> TestResult {
    for all_on in [false, true] {
        let deployment = Deployment::new()?;
        deployment.install("hello", HELLO_WORLD, "")?;
        let mut command = support::warden();
        if all_on {
            command.env("WARDEN_AUDIT_DISABLED_CATEGORIES", "");
        }
        let server = support::Server::start_command(
            command,
            &deployment.extensions_dir(),
            &deployment.data_dir(),
            &[],
        )?;
        assert_eq!(server.get("/_extensions/hello/greet/x")?.status, 200);
        assert_eq!(server.get_as("admin", "Wrong-Password-9", "/_warden/health")?.status, 401);
        // FAILED_LOGIN is recorded either way (the control).
        let failed = audit_events(&server, "category=FAILED_LOGIN")?;
        assert!(failed.iter().any(|e| e["reason"] == "wrong password for user `admin`"), "{failed:?}");
        let authenticated = audit_events(&server, "category=AUTHENTICATED&user=admin")?;
        let granted = audit_events(&server, "category=GRANTED_PRIVILEGES&user=admin")?;
        if all_on {
            assert!(!authenticated.is_empty(), "AUTHENTICATED on");
            assert!(
                granted.iter().any(|e| e["action"] == "extension:hello/greet"),
                "GRANTED_PRIVILEGES names the route: {granted:?}"
            );
        } else {
            assert!(authenticated.is_empty(), "AUTHENTICATED off by default: {authenticated:?}");
            assert!(granted.is_empty(), "GRANTED_PRIVILEGES off by default: {granted:?}");
        }
    }

    // `from` / `to` over REST: two failures a few milliseconds apart.
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    assert_eq!(server.get_as("early", "Wrong-Password-9", "/_warden/health")?.status, 401);
    let early = audit_events(&server, "category=FAILED_LOGIN&user=early")?;
    let at = early.first().and_then(|e| e["time_ms"].as_u64()).ok_or("no event for `early`")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while now_ms() <= at + 2 {
        assert!(std::time::Instant::now() < deadline, "the clock does not move");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(server.get_as("late", "Wrong-Password-9", "/_warden/health")?.status, 401);
    let users = |events: Vec<serde_json::Value>| -> Vec<String> {
        events.iter().filter_map(|e| e["user"].as_str().map(str::to_owned)).collect()
    };
    let both = users(audit_events(&server, "category=FAILED_LOGIN")?);
    assert!(both.contains(&"early".to_owned()) && both.contains(&"late".to_owned()), "{both:?}");
    let until = users(audit_events(&server, &format!("category=FAILED_LOGIN&to={at}"))?);
    assert!(until.contains(&"early".to_owned()) && !until.contains(&"late".to_owned()), "to={at}: {until:?}");
    let since = users(audit_events(&server, &format!("category=FAILED_LOGIN&from={}", at + 1))?);
    assert!(since.contains(&"late".to_owned()) && !since.contains(&"early".to_owned()), "from: {since:?}");
    Ok(())
}

/// `--security-config` is imported on the first start only: later starts
/// keep the store's copy (and its changes) whatever the directory says.
#[test]
fn security_config_is_ignored_once_the_store_has_one() -> TestResult {
    let secret = b"0123456789abcdef0123456789abcdef-idp-secret";
    let deployment = Deployment::new()?;
    deployment.install("hello", HELLO_WORLD, "")?;
    let config = tempfile::tempdir()?;
    jwt_config(config.path(), secret, false)?;
    let config_arg = config.path().display().to_string();
    let server = deployment.start_with(&["--security-config", &config_arg])?;
    assert_eq!(server.get("/_plugins/_security/api/roles/hello_users")?.status, 200, "imported");
    let role = serde_json::json!({"cluster_permissions": ["cluster_monitor"]});
    assert_eq!(
        server.send(reqwest::Method::PUT, "/_plugins/_security/api/roles/made_by_api", &role)?.status,
        201
    );
    drop(server);

    // The directory changes: a new role, anonymous access on.
    jwt_config(config.path(), secret, true)?;
    let mut roles = std::fs::read_to_string(config.path().join("roles.yml"))?;
    roles.push_str("second_start_role:\n  cluster_permissions: [\"cluster_monitor\"]\n");
    std::fs::write(config.path().join("roles.yml"), roles)?;
    let server = deployment.start_with(&["--security-config", &config_arg])?;
    assert!(server.wait_for_log("security configuration loaded from the store"), "{}", server.logs());
    assert_eq!(server.get("/_plugins/_security/api/roles/second_start_role")?.status, 404);
    assert_eq!(server.get("/_plugins/_security/api/roles/made_by_api")?.status, 200, "the store's copy");
    assert_eq!(server.get("/_plugins/_security/api/roles/hello_users")?.status, 200);
    assert_eq!(
        server.get_with_authorization("/_extensions/hello/greet/anon", None)?.status,
        401,
        "still no anonymous"
    );
    Ok(())
}
