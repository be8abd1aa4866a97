//! Tokens die with the credentials they came from (seed 000): a password
//! change, disabling and deleting a user revoke their outstanding OBO and
//! API tokens — re-enabling revives none — and, when
//! `WARDEN_REVOKE_TOKENS_ON` names `roles`, so does a change of the roles
//! they resolve to. Each revocation is audited (TOKENS_REVOKED) with its
//! cause.

use reqwest::Method;
use serde_json::{Value, json};

use crate::attacks::token::{create_api_token, mint_obo};
use crate::support::{self, API, Deployment, Error, Server, TestResult};

const ANA: (&str, &str) = ("ana", "Ana-Password-1");

fn start(deployment: &Deployment, revoke_on: Option<&str>) -> Result<Server, String> {
    let mut command = support::warden();
    if let Some(list) = revoke_on {
        command.env("WARDEN_REVOKE_TOKENS_ON", list);
    }
    Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])
}

/// An OBO token and an API token of ana, both working now.
fn tokens(server: &Server) -> Result<(String, String), Error> {
    let ana = support::basic(ANA.0, ANA.1);
    let obo = format!("Bearer {}", mint_obo(server, &ana, 300)?);
    let created = create_api_token(server, &ana, &format!("t{}", support::now_ms()), json!({}))?;
    assert_eq!(created.status, 200, "{created:?}");
    let key = support::api_key(created.json()["token"].as_str().ok_or("no api token")?);
    for token in [&obo, &key] {
        assert_eq!(authinfo(server, token)?, 200);
    }
    Ok((obo, key))
}

fn authinfo(server: &Server, authorization: &str) -> Result<u16, Error> {
    Ok(server.get_with_authorization("/_plugins/_security/authinfo", Some(authorization))?.status)
}

fn revocations(server: &Server) -> Result<Vec<String>, Error> {
    let events = server.get("/_warden/audit?category=TOKENS_REVOKED")?.json();
    Ok(events["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["user"] == ANA.0)
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect())
}

fn put_user(server: &Server, body: Value) -> TestResult {
    let reply = server.send(Method::PUT, &format!("{API}/internalusers/{}", ANA.0), &body)?;
    assert!(reply.status == 200 || reply.status == 201, "{reply:?}");
    Ok(())
}

#[test]
fn disabling_or_a_new_password_kills_outstanding_tokens_for_good() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment, None)?;
    put_user(&server, json!({"password": ANA.1}))?;

    // Disabled, then enabled again (the password untouched): the tokens
    // issued before stay dead.
    let (obo, key) = tokens(&server)?;
    let path = format!("{API}/internalusers/{}", ANA.0);
    for disabled in [true, false] {
        let patch = json!([{"op": "add", "path": "/disabled", "value": disabled}]);
        let reply = server.send(Method::PATCH, &path, &patch)?;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(authinfo(&server, &support::basic(ANA.0, ANA.1))?, 200, "enabled again");
    for token in [&obo, &key] {
        assert_eq!(authinfo(&server, token)?, 401, "{token}");
    }
    assert!(revocations(&server)?.iter().any(|r| r.contains("user disabled")), "{:?}", revocations(&server)?);

    // A new password: the tokens issued before it die too.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (obo, key) = tokens(&server)?;
    put_user(&server, json!({"password": "Ana-Password-2"}))?;
    for token in [&obo, &key] {
        assert_eq!(authinfo(&server, token)?, 401, "{token}");
    }
    assert!(
        revocations(&server)?.iter().any(|r| r.contains("password changed")),
        "{:?}",
        revocations(&server)?
    );
    // By default a change of roles revokes nothing.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let fresh = support::basic(ANA.0, "Ana-Password-2");
    let obo = format!("Bearer {}", mint_obo(&server, &fresh, 300)?);
    let mapping = json!({"users": [ANA.0]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/rolesmapping/readall"), &mapping)?.status, 201);
    assert_eq!(authinfo(&server, &obo)?, 200);
    Ok(())
}

#[test]
fn a_change_of_roles_kills_tokens_when_configured() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment, Some("password,disable,roles"))?;
    put_user(&server, json!({"password": ANA.1}))?;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (obo, key) = tokens(&server)?;
    // Another user's change leaves ana's tokens alone.
    let bob = json!({"password": "Bob-Password-1"});
    assert_eq!(server.send(Method::PUT, &format!("{API}/internalusers/bob"), &bob)?.status, 201);
    assert_eq!(authinfo(&server, &obo)?, 200);
    // Ana gets a role through a mapping: her tokens die.
    let mapping = json!({"users": [ANA.0]});
    assert_eq!(server.send(Method::PUT, &format!("{API}/rolesmapping/readall"), &mapping)?.status, 201);
    for token in [&obo, &key] {
        assert_eq!(authinfo(&server, token)?, 401, "{token}");
    }
    assert!(revocations(&server)?.iter().any(|r| r.contains("roles changed")), "{:?}", revocations(&server)?);
    // A bad list is refused at start, naming the variable.
    drop(server.stop());
    match start(&deployment, Some("password,sometimes")) {
        Ok(_) => return Err("a bad WARDEN_REVOKE_TOKENS_ON was accepted".into()),
        Err(e) => assert!(e.contains("WARDEN_REVOKE_TOKENS_ON") && e.contains("sometimes"), "{e}"),
    }
    Ok(())
}
