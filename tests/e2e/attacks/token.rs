//! Attacks of class `token`: a holder of an API token or an OBO token tries
//! to get more than the token was given — mint another token, outlive the
//! user's credentials, hold more tokens than allowed, or turn a short-lived
//! token into standing background work.

use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::GUEST_HOST_CALLS;

use crate::support::{
    ADMIN_PASSWORD, API, Deployment, Error, MINT, Reply, Server, TestResult, api_key, basic, bearer,
};

pub const TOKENS: &str = "/_plugins/_security/api/apitokens";
const ANA: (&str, &str) = ("ana", "Ana-Password-1");

/// Mints an OBO token with `authorization`; the token.
pub fn mint_obo(server: &Server, authorization: &str, seconds: u64) -> Result<String, Error> {
    let reply = server.send_with_authorization(
        Method::POST,
        MINT,
        Some(authorization),
        &json!({"service": "attack-suite", "durationSeconds": seconds}),
    )?;
    assert_eq!(reply.status, 200, "minting: {reply:?}");
    Ok(reply.json()["authenticationToken"].as_str().ok_or("no token")?.to_owned())
}

/// Creates an API token with `authorization`; the reply.
pub fn create_api_token(
    server: &Server,
    authorization: &str,
    name: &str,
    permissions: Value,
) -> Result<Reply, Error> {
    let mut body = json!({"name": name, "duration_seconds": 3600});
    if let Some(fields) = permissions.as_object() {
        for (k, v) in fields {
            body[k] = v.clone();
        }
    }
    Ok(server.send_with_authorization(Method::POST, TOKENS, Some(authorization), &body)?)
}

fn status_of(server: &Server, authorization: &str) -> Result<u16, Error> {
    Ok(server.get_with_authorization("/_plugins/_security/authinfo", Some(authorization))?.status)
}

/// A server with user ana (reads `logs`).
fn with_ana() -> Result<(Deployment, Server), Error> {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    for (path, body) in [
        (
            format!("{API}/roles/logs_reader"),
            json!({"index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]}),
        ),
        (format!("{API}/internalusers/{}", ANA.0), json!({"password": ANA.1})),
        (format!("{API}/rolesmapping/logs_reader"), json!({"users": [ANA.0]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    Ok((deployment, server))
}

/// Hole 1: a read-only API token minted an OBO token carrying its creator's
/// `all_access`. No token mints, extends or replaces a token, nor changes
/// the password behind it; a user's own REST-minted OBO token lives at most
/// 600 s, as OpenSearch caps it.
#[test]
fn a_token_never_mints_a_token() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let admin = basic("admin", ADMIN_PASSWORD);
    let read_only = json!({"index_permissions": [{"index_patterns": ["logs"], "allowed_actions": ["read"]}]});
    let created = create_api_token(&server, &admin, "read-only", read_only)?;
    assert_eq!(created.status, 200, "{created:?}");
    let key = api_key(created.json()["token"].as_str().ok_or("no token")?);
    let obo = bearer(&mint_obo(&server, &admin, 120)?);
    assert_eq!(status_of(&server, &key)?, 200, "the API token itself works");
    assert_eq!(status_of(&server, &obo)?, 200, "the OBO token itself works");

    let account = json!({"current_password": ADMIN_PASSWORD, "password": "Another-Admin-Pass-2"});
    let mint_body = json!({"service": "x", "durationSeconds": 60});
    let token_body = json!({"name": "child", "duration_seconds": 60});
    for (holder, authorization, says) in
        [("API token", &key, "an API token cannot"), ("OBO token", &obo, "on-behalf-of token cannot")]
    {
        for (method, path, body) in [
            (Method::POST, MINT, &mint_body),
            (Method::POST, TOKENS, &token_body),
            (Method::PUT, &format!("{API}/account") as &str, &account),
        ] {
            let reply = server.send_with_authorization(method.clone(), path, Some(authorization), body)?;
            assert_eq!(reply.status, 403, "{holder} {method} {path}: {reply:?}");
            assert!(reply.message().contains(says), "{holder} {method} {path}: {}", reply.message());
        }
    }
    // Nothing was made: still one API token, and admin's password is unchanged.
    let listed = server.send_with_authorization(Method::GET, TOKENS, Some(&admin), &Value::Null)?;
    assert_eq!(field_of_each(&listed.json(), "name"), ["read-only"], "{listed:?}");
    assert_eq!(status_of(&server, &admin)?, 200);

    // Lifetimes: at most 600 s; the legitimate mint at the cap still works.
    for refused in [0u64, 601, 3600, 86_400] {
        let reply = server.send_with_authorization(
            Method::POST,
            MINT,
            Some(&admin),
            &json!({"service": "x", "durationSeconds": refused}),
        )?;
        assert_eq!(reply.status, 400, "{refused} s: {reply:?}");
        assert!(reply.message().contains("1..=600"), "{refused} s: {}", reply.message());
    }
    let capped = mint_obo(&server, &admin, 600)?;
    let claims = payload(&capped)?;
    assert_eq!(claims["exp"].as_u64().zip(claims["iat"].as_u64()).map(|(e, i)| e - i), Some(600));
    assert_eq!(claims["src"], "internal", "the token names who vouches for its user");
    Ok(())
}

/// `field` of each object in the array `list`, as strings.
pub fn field_of_each(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .map(|a| a.iter().filter_map(|item| item[field].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The JSON payload of a JWT (not verified: the test reads its own token).
pub fn payload(token: &str) -> Result<Value, Error> {
    use base64::Engine as _;
    let part = token.split('.').nth(1).ok_or("not a JWT")?;
    Ok(serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?)?)
}

/// Weaknesses: OBO tokens of a disabled or deleted user still worked, and
/// a password change (REST, own account, or `reset-password`) left the
/// user's OBO and API tokens valid. A token dies with its user's
/// credentials; tokens made afterwards work.
#[test]
fn tokens_die_with_the_users_credentials() -> TestResult {
    let (deployment, server) = with_ana()?;
    let admin = basic("admin", ADMIN_PASSWORD);
    let mut password = ANA.1.to_owned();
    let tokens_of_ana = |server: &Server, password: &str, name: &str| -> Result<(String, String), Error> {
        let ana = basic(ANA.0, password);
        let obo = bearer(&mint_obo(server, &ana, 300)?);
        let created = create_api_token(server, &ana, name, json!({}))?;
        assert_eq!(created.status, 200, "{created:?}");
        let key = api_key(created.json()["token"].as_str().ok_or("no token")?);
        assert_eq!((status_of(server, &obo)?, status_of(server, &key)?), (200, 200), "fresh tokens work");
        Ok((obo, key))
    };

    // 0. A jti revocation dated in the past still takes effect.
    let (obo, _) = tokens_of_ana(&server, &password, "t0")?;
    let jti = payload(obo.trim_start_matches("Bearer "))?["jti"].as_str().ok_or("no jti")?.to_owned();
    let reply =
        server.send(Method::POST, "/_warden/tokens/_revoke", &json!({"jti": jti, "expires_at": 1}))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(status_of(&server, &obo)?, 401, "a jti revocation with expires_at in the past was pruned");

    // 1. An administrator sets a new password over REST.
    let (obo, key) = tokens_of_ana(&server, &password, "t1")?;
    password = "Ana-Password-2".into();
    let reply =
        server.send(Method::PUT, &format!("{API}/internalusers/ana"), &json!({"password": password}))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (status_of(&server, &obo)?, status_of(&server, &key)?),
        (401, 401),
        "after a REST password change"
    );

    // 2. Ana changes her own password.
    let (obo, key) = tokens_of_ana(&server, &password, "t2")?;
    let reply = server.send_with_authorization(
        Method::PUT,
        &format!("{API}/account"),
        Some(&basic(ANA.0, &password)),
        &json!({"current_password": password, "password": "Ana-Password-3"}),
    )?;
    assert_eq!(reply.status, 200, "{reply:?}");
    password = "Ana-Password-3".into();
    assert_eq!((status_of(&server, &obo)?, status_of(&server, &key)?), (401, 401), "after her own change");

    // 3. Disabled, then enabled again: tokens are refused while disabled.
    let (obo, key) = tokens_of_ana(&server, &password, "t3")?;
    let mut record = server.get(&format!("{API}/internalusers/ana"))?.json()["ana"].clone();
    record["password"] = password.clone().into();
    record.as_object_mut().map(|o| o.remove("hash"));
    record["disabled"] = true.into();
    let reply = server.send(Method::PUT, &format!("{API}/internalusers/ana"), &record)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!((status_of(&server, &obo)?, status_of(&server, &key)?), (401, 401), "while disabled");

    // 4. Deleted: nothing of hers authenticates.
    let reply = server.request(Method::DELETE, &format!("{API}/internalusers/ana"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!((status_of(&server, &obo)?, status_of(&server, &key)?), (401, 401), "after deletion");

    // 5. `reset-password` on a stopped server revokes too.
    let reply =
        server.send(Method::PUT, &format!("{API}/internalusers/ana"), &json!({"password": password}))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let (obo, key) = tokens_of_ana(&server, &password, "t5")?;
    drop(server.stop());
    let reset = crate::support::warden()
        .args(["reset-password", "ana", "--data-dir"])
        .arg(deployment.data_dir())
        .env("WARDEN_NEW_PASSWORD", "Ana-Password-4")
        .output()?;
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
    let server = deployment.start()?;
    assert_eq!((status_of(&server, &obo)?, status_of(&server, &key)?), (401, 401), "after reset-password");
    // The legitimate path: new credentials, new tokens.
    tokens_of_ana(&server, "Ana-Password-4", "t6")?;
    assert_eq!(status_of(&server, &admin)?, 200, "nobody else's tokens or logins were touched");
    Ok(())
}

/// Weakness: API tokens had no cap per user, and creating or deleting one
/// scanned every token. At most 100 per user (OpenSearch's cap), names
/// unique per user; another user is not affected by ana's count.
#[test]
fn api_tokens_are_capped_per_user() -> TestResult {
    let (_deployment, server) = with_ana()?;
    let ana = basic(ANA.0, ANA.1);
    for i in 0..100 {
        let reply = create_api_token(&server, &ana, &format!("t{i}"), json!({}))?;
        assert_eq!(reply.status, 200, "token {i}: {reply:?}");
    }
    let over = create_api_token(&server, &ana, "t100", json!({}))?;
    assert_eq!(over.status, 400, "{over:?}");
    assert!(over.message().contains("already has 100"), "{}", over.message());
    let duplicate = create_api_token(&server, &basic("admin", ADMIN_PASSWORD), "t0", json!({}))?;
    assert_eq!(duplicate.status, 200, "admin's count and names are his own: {duplicate:?}");
    let reply =
        server.send_with_authorization(Method::DELETE, &format!("{TOKENS}/t7"), Some(&ana), &Value::Null)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let again = create_api_token(&server, &ana, "t0", json!({}))?;
    assert_eq!(again.status, 400, "a name is unique per user: {again:?}");
    assert!(again.message().contains("already exists"), "{}", again.message());
    assert_eq!(create_api_token(&server, &ana, "t7", json!({}))?.status, 200, "a freed slot is usable");
    let listed = server.send_with_authorization(Method::GET, TOKENS, Some(&ana), &Value::Null)?;
    assert_eq!(listed.json().as_array().map(Vec::len), Some(100), "ana sees exactly her own");
    Ok(())
}

/// Hole 6 (decided: registration through a token is refused): a job
/// registered during an API-token request ran with the creator's full
/// roles and outlived the token. Background work is consented to with the
/// user's own credentials only. Weakness: an API token without any
/// permission managed its creator's jobs.
#[test]
fn background_work_needs_the_users_own_credentials() -> TestResult {
    let deployment = Deployment::new()?;
    deployment.install("probe", GUEST_HOST_CALLS, "capabilities = [\"cluster\", \"scheduler\"]")?;
    let server = deployment.start()?;
    for (path, body) in [
        (
            format!("{API}/roles/scheduling"),
            json!({"extension_permissions": ["extension:probe/*", "schedule:probe"]}),
        ),
        (format!("{API}/internalusers/{}", ANA.0), json!({"password": ANA.1})),
        (format!("{API}/rolesmapping/scheduling"), json!({"users": [ANA.0]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    let ana = basic(ANA.0, ANA.1);
    assert_eq!(server.consent(ANA.0, ANA.1, "probe")?.status, 201);
    let schedule = |authorization: &str, name: &str| -> Result<Value, Error> {
        let reply = server.send_with_authorization(
            Method::POST,
            "/_extensions/probe/schedule",
            Some(authorization),
            &json!({"name": name, "schedule": {"interval": 3600}, "params": {}}),
        )?;
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
        Ok(reply.json())
    };
    // The token may call the extension's routes, nothing else.
    let created =
        create_api_token(&server, &ana, "routes", json!({"cluster_permissions": ["extension:probe/*"]}))?;
    assert_eq!(created.status, 200, "{created:?}");
    let key = api_key(created.json()["token"].as_str().ok_or("no token")?);
    let obo = bearer(&mint_obo(&server, &ana, 300)?);
    for (via, authorization, says) in
        [("API token", &key, "through an API token"), ("OBO token", &obo, "through an on-behalf-of token")]
    {
        let answer = schedule(authorization, via)?;
        assert_eq!(
            (answer["outcome"].as_str(), answer["kind"].as_str()),
            (Some("error"), Some("denied")),
            "{via}: {answer}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| m.contains(says)), "{via}: {answer}");
    }
    let answer = schedule(&ana, "own")?;
    assert_eq!(answer["outcome"], "ok", "with her own credentials: {answer}");

    // Only the job made with her own credentials exists.
    let jobs = server.send_with_authorization(Method::GET, "/_warden/jobs", Some(&ana), &Value::Null)?;
    assert_eq!(jobs.status, 200, "{jobs:?}");
    assert_eq!(field_of_each(&jobs.json()["jobs"], "name"), ["own"], "{jobs:?}");
    // The permission-less token cannot list, run, disable or remove them.
    let id = jobs.json()["jobs"][0]["id"].as_str().ok_or("no id")?.to_owned();
    for (method, path) in [
        (Method::GET, "/_warden/jobs".to_owned()),
        (Method::POST, format!("/_warden/jobs/{id}/_disable")),
        (Method::POST, format!("/_warden/jobs/{id}/_run")),
        (Method::DELETE, format!("/_warden/jobs/{id}")),
    ] {
        let reply = server.send_with_authorization(method.clone(), &path, Some(&key), &Value::Null)?;
        assert_eq!(reply.status, 403, "{method} {path}: {reply:?}");
        assert!(reply.reason().contains("restapi:admin/jobs"), "{method} {path}: {}", reply.reason());
    }
    let job = server.send_with_authorization(
        Method::GET,
        &format!("/_warden/jobs/{id}"),
        Some(&ana),
        &Value::Null,
    )?;
    assert_eq!((job.status, job.json()["enabled"].as_bool()), (200, Some(true)), "untouched: {job:?}");

    // Nor through the extension: listing, reading and removing jobs there
    // is refused to a token just as registering is.
    for (method, path) in [
        (Method::GET, "/_extensions/probe/jobs".to_owned()),
        (Method::GET, format!("/_extensions/probe/jobs/{id}")),
        (Method::DELETE, format!("/_extensions/probe/jobs/{id}")),
    ] {
        for authorization in [&key, &obo] {
            let reply =
                server.send_with_authorization(method.clone(), &path, Some(authorization), &Value::Null)?;
            let answer = reply.json();
            assert_eq!(
                (answer["outcome"].as_str(), answer["kind"].as_str()),
                (Some("error"), Some("denied")),
                "{method} {path}: {answer}"
            );
        }
    }
    let job = server.get(&format!("/_warden/jobs/{id}"))?;
    assert_eq!(job.status, 200, "the job survived: {job:?}");

    // A token granted the jobs permission still cannot start standing work:
    // giving a job to another user or resuming one needs own credentials.
    let admin = basic("admin", ADMIN_PASSWORD);
    let jobs_admin =
        create_api_token(&server, &admin, "jobs", json!({"cluster_permissions": ["restapi:admin/jobs"]}))?;
    let jobs_admin = api_key(jobs_admin.json()["token"].as_str().ok_or("no token")?);
    let listed =
        server.send_with_authorization(Method::GET, "/_warden/jobs", Some(&jobs_admin), &Value::Null)?;
    assert_eq!(listed.status, 200, "the permission lets it read: {listed:?}");
    for (method, path, body) in [
        (Method::PUT, format!("/_warden/jobs/{id}/_owner"), json!({"user": "admin"})),
        (Method::POST, format!("/_warden/jobs/{id}/_enable"), Value::Null),
    ] {
        let reply = server.send_with_authorization(method, &path, Some(&jobs_admin), &body)?;
        assert_eq!(reply.status, 403, "{path}: {reply:?}");
        assert!(reply.reason().contains("a token cannot"), "{path}: {}", reply.reason());
    }
    let job = server.get(&format!("/_warden/jobs/{id}"))?.json();
    assert_eq!((job["user"].as_str(), job["auth_source"].as_str()), (Some(ANA.0), Some("internal")), "{job}");
    assert_eq!(server.consent("admin", crate::support::ADMIN_PASSWORD, "probe")?.status, 201);
    let moved = server.send(Method::PUT, &format!("/_warden/jobs/{id}/_owner"), &json!({"user": "admin"}))?;
    assert_eq!(moved.status, 200, "an administrator with own credentials may: {moved:?}");
    Ok(())
}

/// A token holding `restapi:admin/internalusers` could set its creator's
/// password and so turn itself into a permanent credential. No token sets
/// a password or a hash — its creator's, another user's or a new user's,
/// by PUT or PATCH; the same administrator with own credentials can.
#[test]
fn a_token_never_becomes_a_password() -> TestResult {
    let (_deployment, server) = with_ana()?;
    // eve administers users (not reserved, so her own record can change).
    for (path, body) in [
        (format!("{API}/roles/user_admin"), json!({"cluster_permissions": ["*"]})),
        (format!("{API}/internalusers/eve"), json!({"password": "Eve-Password-1"})),
        (format!("{API}/rolesmapping/user_admin"), json!({"users": ["eve"]})),
    ] {
        let reply = server.send(Method::PUT, &path, &body)?;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
    }
    let eve = basic("eve", "Eve-Password-1");
    let created = create_api_token(
        &server,
        &eve,
        "users",
        json!({"cluster_permissions": ["restapi:admin/internalusers"]}),
    )?;
    assert_eq!(created.status, 200, "{created:?}");
    let key = api_key(created.json()["token"].as_str().ok_or("no token")?);
    let obo = bearer(&mint_obo(&server, &eve, 120)?);
    let hash = warden_host::security::password::hash("Token-Chosen-Pass-1")?;
    let users = format!("{API}/internalusers");
    for (what, method, path, body) in [
        (
            "the creator's password",
            Method::PUT,
            format!("{users}/eve"),
            json!({"password": "Token-Chosen-Pass-1"}),
        ),
        (
            "another's password",
            Method::PUT,
            format!("{users}/ana"),
            json!({"password": "Token-Chosen-Pass-1"}),
        ),
        ("another's hash", Method::PUT, format!("{users}/ana"), json!({"hash": hash})),
        (
            "a new user",
            Method::PUT,
            format!("{users}/mallory"),
            json!({"password": "Token-Chosen-Pass-1", "backend_roles": ["admin"]}),
        ),
        (
            "by PATCH",
            Method::PATCH,
            users.clone(),
            json!([{"op": "add", "path": "/ana/password", "value": "Token-Chosen-Pass-1"}]),
        ),
    ] {
        let reply = server.send_with_authorization(method.clone(), &path, Some(&key), &body)?;
        assert_eq!(reply.status, 403, "{what}: {reply:?}");
        assert!(reply.message().contains("a token cannot set a password"), "{what}: {}", reply.message());
    }
    // Nothing changed: the old passwords still work, no mallory.
    assert_eq!(status_of(&server, &eve)?, 200);
    assert_eq!(status_of(&server, &basic(ANA.0, ANA.1))?, 200);
    assert_eq!(status_of(&server, &basic("mallory", "Token-Chosen-Pass-1"))?, 401);
    assert_eq!(server.get(&format!("{users}/mallory"))?.status, 404);
    // The token keeps what it was granted that is not a credential.
    let reply = server.send_with_authorization(
        Method::PUT,
        &format!("{users}/ana"),
        Some(&key),
        &json!({"backend_roles": ["team"]}),
    )?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(status_of(&server, &basic(ANA.0, ANA.1))?, 200, "her password was kept");
    // An OBO token reaches none of it; eve's own login does.
    let set = json!({"password": "Eve-Chosen-Pass-1"});
    let reply = server.send_with_authorization(Method::PUT, &format!("{users}/ana"), Some(&obo), &set)?;
    assert_eq!(reply.status, 403, "{reply:?}");
    let reply = server.send_with_authorization(Method::PUT, &format!("{users}/ana"), Some(&eve), &set)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(())
}
