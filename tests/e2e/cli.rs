//! The management CLI against a running server: `warden hash`,
//! `warden user add|passwd|rm`, `warden security export|import`, `warden jobs`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{ADMIN_PASSWORD, Deployment, Server, TestResult, warden};

/// `warden <args>` logged in as admin against `server`; (success, stdout, stderr).
fn run(
    server: &Server,
    args: &[&str],
    new_password: Option<&str>,
) -> Result<(bool, String, String), std::io::Error> {
    let mut command: Command = warden();
    command
        .args(args)
        .env("WARDEN_URL", &server.base)
        .env("WARDEN_USER", "admin")
        .env("WARDEN_PASSWORD", ADMIN_PASSWORD);
    if let Some(p) = new_password {
        command.env("WARDEN_NEW_PASSWORD", p);
    }
    let output = command.stdin(Stdio::null()).output()?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[test]
fn hash_prints_a_bcrypt_hash_of_stdin() -> TestResult {
    let mut child = warden().arg("hash").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    child.stdin.take().ok_or("no stdin")?.write_all(b"Some-Password-1\n")?;
    let output = child.wait_with_output()?;
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout)?.trim().to_owned();
    assert!(hash.starts_with("$2"), "{hash}");
    assert!(warden_host::security::password::verify("Some-Password-1", &hash));
    assert!(!warden_host::security::password::verify("Some-Password-2", &hash));
    Ok(())
}

#[test]
fn users_and_whole_config_are_managed_remotely() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let (ok, out, err) =
        run(&server, &["user", "add", "ana", "--backend-role", "analyst"], Some("Ana-Password-1"))?;
    assert!(ok, "{err}");
    assert!(out.contains("'ana' created."), "{out}");
    let info = server.get_as("ana", "Ana-Password-1", "/_plugins/_security/authinfo")?.json();
    assert_eq!(info["backend_roles"], serde_json::json!(["analyst"]));

    let (ok, _, err) = run(&server, &["user", "passwd", "ana"], Some("Ana-Password-2"))?;
    assert!(ok, "{err}");
    assert_eq!(server.get_as("ana", "Ana-Password-1", "/_plugins/_security/authinfo")?.status, 401);
    assert_eq!(server.get_as("ana", "Ana-Password-2", "/_plugins/_security/authinfo")?.status, 200);
    let info = server.get_as("ana", "Ana-Password-2", "/_plugins/_security/authinfo")?.json();
    assert_eq!(info["backend_roles"], serde_json::json!(["analyst"]), "passwd keeps the rest of the user");

    let (ok, _, err) = run(&server, &["user", "add", "weak"], Some("weak"))?;
    assert!(!ok);
    assert!(err.contains("password is too weak"), "{err}");
    assert_eq!(server.get("/_plugins/_security/api/internalusers/weak")?.status, 404, "nothing created");

    // Export, edit as an operator would, import.
    let dir = tempfile::tempdir()?;
    let dir_arg = dir.path().display().to_string();
    let (ok, _, err) = run(&server, &["security", "export", &dir_arg], None)?;
    assert!(ok, "{err}");
    let users = std::fs::read_to_string(dir.path().join("internal_users.yml"))?;
    assert!(users.contains("ana:") && users.contains("_meta:"), "{users}");
    let mut roles = std::fs::read_to_string(dir.path().join("roles.yml"))?;
    assert!(!roles.contains("all_access"), "static roles are not exported");
    roles.push_str("analyst_greeter:\n  extension_permissions: [\"extension:hello/*\"]\n");
    std::fs::write(dir.path().join("roles.yml"), roles)?;
    let (ok, out, err) = run(&server, &["security", "import", &dir_arg], None)?;
    assert!(ok, "{err}");
    assert!(out.contains("imported"), "{out}");
    assert_eq!(server.get("/_plugins/_security/api/roles/analyst_greeter")?.status, 200);
    assert_eq!(
        server.get_as("ana", "Ana-Password-2", "/_plugins/_security/authinfo")?.status,
        200,
        "users survive"
    );

    // A broken file is refused with its name, and nothing changes: not the
    // files beside it either (a new role and a new user, both valid), so an
    // import that applied some files before failing on another would show.
    let before = server.get("/_warden/security/_export")?;
    assert_eq!(before.status, 200, "{before:?}");
    let mut roles = std::fs::read_to_string(dir.path().join("roles.yml"))?;
    roles.push_str("brand_new_role:\n  cluster_permissions: [\"cluster_monitor\"]\n");
    std::fs::write(dir.path().join("roles.yml"), roles)?;
    let new_hash = warden_host::security::password::hash("Newcomer-Pass-1")?;
    let mut users = std::fs::read_to_string(dir.path().join("internal_users.yml"))?;
    users.push_str(&format!("newcomer:\n  hash: \"{new_hash}\"\n"));
    std::fs::write(dir.path().join("internal_users.yml"), users)?;
    let mapping = std::fs::read_to_string(dir.path().join("roles_mapping.yml"))?;
    std::fs::write(
        dir.path().join("roles_mapping.yml"),
        "_meta:\n  type: rolesmapping\n  config_version: 2\nx:\n  userz: [a]\n",
    )?;
    let (ok, _, err) = run(&server, &["security", "import", &dir_arg], None)?;
    assert!(!ok);
    assert!(err.contains("roles_mapping.yml: entry `x`") && err.contains("unknown field `userz`"), "{err}");
    assert_eq!(server.get("/_plugins/_security/api/roles/analyst_greeter")?.status, 200);
    assert_eq!(server.get("/_plugins/_security/api/roles/brand_new_role")?.status, 404);
    assert_eq!(server.get("/_plugins/_security/api/internalusers/newcomer")?.status, 404);
    assert_eq!(server.get_as("newcomer", "Newcomer-Pass-1", "/_plugins/_security/authinfo")?.status, 401);
    let after = server.get("/_warden/security/_export")?;
    assert_eq!(after.body, before.body, "the configuration is byte-identical");
    // The same files with the mapping fixed import whole (the positive control).
    std::fs::write(dir.path().join("roles_mapping.yml"), mapping)?;
    let (ok, _, err) = run(&server, &["security", "import", &dir_arg], None)?;
    assert!(ok, "{err}");
    assert_eq!(server.get("/_plugins/_security/api/roles/brand_new_role")?.status, 200);
    assert_eq!(server.get_as("newcomer", "Newcomer-Pass-1", "/_plugins/_security/authinfo")?.status, 200);

    let (ok, _, err) = run(&server, &["user", "rm", "ana"], None)?;
    assert!(ok, "{err}");
    assert_eq!(server.get_as("ana", "Ana-Password-2", "/_plugins/_security/authinfo")?.status, 401);
    Ok(())
}

/// A lost admin password: stop the server, `warden reset-password admin
/// --data-dir …`, start again. Refused while the server runs (the store is
/// locked), for unknown users, for service accounts and for weak passwords.
#[test]
fn reset_password_recovers_a_stopped_server() -> TestResult {
    let deployment = Deployment::new()?;
    let data_dir = deployment.data_dir();
    let reset = |user: &str, password: &str| -> Result<(bool, String), std::io::Error> {
        let output = warden()
            .args(["reset-password", user, "--data-dir"])
            .arg(&data_dir)
            .env("WARDEN_NEW_PASSWORD", password)
            .stdin(Stdio::null())
            .output()?;
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        Ok((output.status.success(), text))
    };
    deployment.install(
        "probe",
        warden_test_artifacts::GUEST_HOST_CALLS,
        r#"capabilities = ["cluster", "scheduler"]"#,
    )?;
    let server = deployment.start()?;
    assert_eq!(server.get("/_plugins/_security/api/internalusers/service:probe")?.status, 200);
    let (ok, text) = reset("admin", "Recovered-Pass-42")?;
    assert!(!ok && text.contains("stop the server"), "refused while running: {text}");
    drop(server);

    let (ok, text) = reset("service:probe", "Recovered-Pass-42")?;
    assert!(!ok && text.contains("`service:probe` is a service account"), "{text}");

    let (ok, text) = reset("nobody", "Recovered-Pass-42")?;
    assert!(!ok && text.contains("no internal user `nobody`"), "{text}");
    let (ok, text) = reset("admin", "short")?;
    assert!(!ok && text.contains("12 characters"), "{text}");
    let (ok, text) = reset("admin", "Recovered-Pass-42")?;
    assert!(ok, "{text}");

    let server = deployment.start()?;
    assert_eq!(server.get_as("admin", "Recovered-Pass-42", "/_plugins/_security/authinfo")?.status, 200);
    assert_eq!(server.get_as("admin", ADMIN_PASSWORD, "/_plugins/_security/authinfo")?.status, 401);
    // The service account still has no hash; admin has one (the control).
    let export = server.get_as("admin", "Recovered-Pass-42", "/_warden/security/_export")?;
    assert_eq!(export.status, 200, "{export:?}");
    let users: serde_norway::Value =
        serde_norway::from_str(export.json()["internal_users.yml"].as_str().unwrap_or_default())?;
    assert!(users["admin"]["hash"].as_str().is_some_and(|h| h.starts_with("$2")), "{users:?}");
    assert!(users["service:probe"].is_mapping(), "{users:?}");
    assert!(users["service:probe"]["hash"].is_null(), "{users:?}");
    Ok(())
}

#[test]
fn jobs_are_listed_and_managed_remotely() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install(
        "probe",
        warden_test_artifacts::GUEST_HOST_CALLS,
        r#"capabilities = ["cluster", "scheduler"]"#,
    )?;
    let server = deployment.start()?;
    let (ok, out, err) = run(&server, &["jobs", "list"], None)?;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "no jobs");
    // The probe registers a job `probe` (every 60 s) for admin, who consents.
    assert_eq!(server.consent("admin", crate::support::ADMIN_PASSWORD, "probe")?.status, 201);
    let registered = server.get("/_extensions/probe/schedule")?.json();
    assert_eq!(registered["outcome"], "ok", "{registered}");
    let (ok, out, err) = run(&server, &["jobs", "list", "--extension", "probe", "--owner", "admin"], None)?;
    assert!(ok, "{err}");
    let line = out.lines().nth(1).ok_or("no job line")?;
    assert!(line.contains("probe") && line.contains("admin") && line.contains(r#"{"interval":60}"#), "{out}");
    let id = line.split_whitespace().next().ok_or("no id")?.to_owned();

    let (ok, out, err) = run(&server, &["jobs", "disable", &id], None)?;
    assert!(ok, "{err}");
    assert!(out.contains(r#""enabled": false"#), "{out}");
    let (ok, out, _) = run(&server, &["jobs", "list"], None)?;
    assert!(ok && out.contains("disabled"), "{out}");
    // Refusals name the problem.
    let (ok, _, err) = run(&server, &["jobs", "owner", &id, "nobody"], None)?;
    assert!(!ok && err.contains("no internal user `nobody`"), "{err}");
    let (ok, _, err) = run(&server, &["jobs", "show", "../_enable"], None)?;
    assert!(!ok && err.contains("is not a job id"), "{err}");
    let (ok, _, err) = run(&server, &["jobs", "run", &id], None)?;
    assert!(!ok && err.contains("disabled or suspended"), "{err}");

    let (ok, _, err) = run(&server, &["jobs", "rm", &id], None)?;
    assert!(ok, "{err}");
    let (ok, out, _) = run(&server, &["jobs", "list"], None)?;
    assert!(ok && out.trim() == "no jobs", "{out}");
    Ok(())
}
