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
    // The password is kept only as a bcrypt hash.
    let users = std::fs::read_to_string(deployment.data_dir().join("security/internal_users.yml"))?;
    assert!(users.contains("hash: $2") && !users.contains(ADMIN_PASSWORD), "{users}");
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
