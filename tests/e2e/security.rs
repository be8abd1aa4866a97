//! Authentication and authorization through the real `warden` binary:
//! every route authenticates, failures are indistinguishable 401s, the
//! route's extension permission is enforced, the user's name reaches the
//! guest, and an OpenSearch security directory imports unchanged.

mod support;

use support::{ADMIN_PASSWORD, Deployment, TestResult};
use warden_test_artifacts::{GUEST_HOST_CALLS, HELLO_WORLD};

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

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
    // The log (not the client) says which failure it was.
    let logs = server.logs();
    assert!(logs.contains("wrong password for user `admin`"), "{logs}");
    assert!(logs.contains("unknown user `nobody`"), "{logs}");
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
    let key = base64::engine::general_purpose::STANDARD.encode(secret);
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

fn token(secret: &[u8], claims: serde_json::Value, algorithm: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap_or_default()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
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

    let claims = |exp: u64, iss: &str, aud: &str| serde_json::json!({"preferred_username": "erin", "roles": ["analysts", "viewers"], "iss": iss, "aud": aud, "exp": exp, "nbf": now() - 10});
    let good = token(secret, claims(now() + 300, "https://idp.example", "warden"), HS512);
    let bearer = |t: &str| format!("Bearer {t}");
    let reply = server.get_with_authorization("/_extensions/hello/greet/erin", Some(&bearer(&good)))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let info = server.get_with_authorization("/_plugins/_security/authinfo", Some(&bearer(&good)))?.json();
    assert_eq!(info["user_name"], "erin");
    assert_eq!(info["backend_roles"], serde_json::json!(["analysts", "viewers"]));
    assert_eq!(info["roles"], serde_json::json!(["hello_users"]));

    let forged = token(
        b"another-secret-another-secret-another!!",
        claims(now() + 300, "https://idp.example", "warden"),
        HS256,
    );
    let expired = token(secret, claims(now() - 600, "https://idp.example", "warden"), HS256);
    let wrong_issuer = token(secret, claims(now() + 300, "https://evil.example", "warden"), HS256);
    let wrong_audience = token(secret, claims(now() + 300, "https://idp.example", "other"), HS256);
    let early = {
        let mut c = claims(now() + 600, "https://idp.example", "warden");
        c["nbf"] = serde_json::json!(now() + 300);
        token(secret, c, HS256)
    };
    let unsigned = {
        let b64 =
            |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = claims(now() + 300, "https://idp.example", "warden");
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
