//! Users' consent to an extension's background work (`/_warden/consents`,
//! the real binary): a job runs within its owner's consent scopes as well
//! as their roles; revoking suspends the user's jobs of that extension at
//! once (audited) and consenting again resumes them; an admin's
//! all_access lets them consent but is no consent; scopes wider than the
//! user holds, consent through a token, someone else's consent: refused.

use reqwest::Method;
use serde_json::{Value, json};

use crate::jobs::{ANA, BOB, admin_job, setup, setup_with, wait_for};
use crate::support::{self, Error, Server, TestResult};

const CONSENTS: &str = "/_warden/consents";

fn consent(server: &Server, who: (&str, &str), scopes: Value) -> Result<crate::support::Reply, Error> {
    Ok(server.send_as(
        who.0,
        who.1,
        Method::POST,
        CONSENTS,
        &json!({"extension": "probe", "scopes": scopes}),
    )?)
}

fn register(server: &Server, who: (&str, &str), name: &str, index: &str) -> Result<String, Error> {
    let spec = json!({"name": name, "schedule": {"interval": 1}, "params": {"index": index, "doc": {}}});
    let reply = server.send_as(who.0, who.1, Method::POST, "/_extensions/probe/schedule", &spec)?;
    let answer = reply.json();
    assert_eq!(answer["outcome"], "ok", "{answer}");
    Ok(answer["id"].as_str().ok_or("no id")?.to_owned())
}

fn runs(view: &Value) -> u64 {
    view["runs"].as_u64().unwrap_or(0)
}

#[test]
fn a_job_runs_within_its_consent_and_stops_when_it_is_revoked() -> TestResult {
    // The outside job fails at every attempt: it must still be running
    // (not suspended for its failures) when the consent is revoked, however
    // slow the machine.
    let (_deployment, server) = setup_with(&[("WARDEN_JOB_MAX_FAILURES", "100000")])?;
    // Without a consent record, registering is refused (ana may consent).
    let spec = json!({"name": "early", "schedule": {"interval": 1}, "params": {}});
    let early = server.send_as(ANA.0, ANA.1, Method::POST, "/_extensions/probe/schedule", &spec)?.json();
    assert_eq!(early["outcome"], "error", "{early}");
    assert!(early["message"].as_str().is_some_and(|m| m.contains("has not consented")), "{early}");

    // Ana's roles write `job-*`; she consents to `job-ok-*` only.
    let scopes = json!({"index_permissions": [{"index_patterns": ["job-ok-*"], "allowed_actions": ["crud", "create_index"]}]});
    let reply = consent(&server, ANA, scopes)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let consent_id = reply.json()["id"].as_str().ok_or("no id")?.to_owned();
    let inside = register(&server, ANA, "inside", "job-ok-1")?;
    let outside = register(&server, ANA, "outside", "job-other")?;
    let view =
        wait_for(&server, &inside, "a run inside the scopes", |v| v["last_run"]["status"] == "success")?;
    assert!(runs(&view) >= 1, "{view}");
    let view =
        wait_for(&server, &outside, "a run outside the scopes", |v| v["last_run"]["status"].is_string())?;
    let message = view["last_run"]["message"].as_str().unwrap_or_default();
    assert_eq!(view["last_run"]["status"], "failure", "{view}");
    assert!(message.contains("consent gate") && message.contains("job-other"), "{message}");
    // Her roles alone would have let her write there.
    let own = server.send_as(ANA.0, ANA.1, Method::POST, "/job-other/_doc", &json!({"by": "ana"}))?;
    assert_eq!(own.status, 201, "{own:?}");

    // She sees her consent; bob sees none of hers and cannot revoke it.
    let listed = server.get_as(ANA.0, ANA.1, CONSENTS)?.json();
    assert_eq!(listed["consents"][0]["id"], consent_id.as_str(), "{listed}");
    assert_eq!(listed["consents"][0]["live"], true, "{listed}");
    assert_eq!(server.get_as(BOB.0, BOB.1, CONSENTS)?.json()["consents"], json!([]));
    let by_bob =
        server.send_as(BOB.0, BOB.1, Method::DELETE, &format!("{CONSENTS}/{consent_id}"), &Value::Null)?;
    assert_eq!(by_bob.status, 404, "{by_bob:?}");

    // Revoked: both jobs suspended at once, audited; they stop running.
    let reply =
        server.send_as(ANA.0, ANA.1, Method::DELETE, &format!("{CONSENTS}/{consent_id}"), &Value::Null)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut suspended: Vec<String> = serde_json::from_value(reply.json()["suspended_jobs"].clone())?;
    suspended.sort();
    let mut both = vec![inside.clone(), outside.clone()];
    both.sort();
    assert_eq!(suspended, both, "{reply:?}");
    let view = admin_job(&server, &inside)?;
    assert!(view["suspended"].as_str().is_some_and(|s| s.contains("revoked by `ana`")), "{view}");
    let at = runs(&view);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(runs(&admin_job(&server, &inside)?), at, "a suspended job ran");
    let events = server.get("/_warden/audit?category=CONSENT_WRITE")?.json();
    assert!(
        events["events"].as_array().is_some_and(|e| e
            .iter()
            .any(|e| e["user"] == "ana" && e["reason"].as_str().is_some_and(|r| r.contains("revoked")))),
        "{events}"
    );
    let jobs = server.get("/_warden/audit?category=JOB_WRITE")?.json();
    assert!(jobs.to_string().contains("suspended (consent"), "{jobs}");

    // Consenting again resumes them; the job runs again.
    let reply = consent(&server, ANA, json!("all"))?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let view = wait_for(&server, &inside, "runs after consenting again", |v| runs(v) > at)?;
    assert!(view["suspended"].is_null(), "{view}");
    // With "all", the outside job now writes too: her roles allow it.
    wait_for(&server, &outside, "a run with all her permissions", |v| v["last_run"]["status"] == "success")?;
    Ok(())
}

#[test]
fn consents_are_refused_beyond_what_the_user_holds_or_through_tokens() -> TestResult {
    let (_deployment, server) = setup()?;
    // Wider than her roles: refused, naming what is missing.
    let wide = json!({"index_permissions": [{"index_patterns": ["secret-*"], "allowed_actions": ["write"]}]});
    let reply = consent(&server, ANA, wide)?;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(
        reply.reason().contains("on `secret-*`") && reply.reason().contains("indices:data/write/index"),
        "{reply:?}"
    );
    // Wider is decided by containment, not on a sample index: dora holds
    // `inbox` and `x` exactly, so neither `inbo*` nor `*` is hers to give
    // (both match the sample `x` / `inbox` a representative check uses).
    let dora = ("dora", "Dora-Password-1");
    let role = json!({
        "extension_permissions": ["extension:probe/*", "schedule:probe"],
        "index_permissions": [{"index_patterns": ["inbox", "x"], "allowed_actions": ["crud"]}],
    });
    for (path, body) in [
        (format!("{}/roles/inboxer", support::API), role),
        (format!("{}/internalusers/dora", support::API), json!({"password": dora.1})),
        (format!("{}/rolesmapping/inboxer", support::API), json!({"users": ["dora"]})),
    ] {
        assert_eq!(server.send(Method::PUT, &path, &body)?.status, 201, "{path}");
    }
    for pattern in ["inbo*", "*", "x*"] {
        let scopes =
            json!({"index_permissions": [{"index_patterns": [pattern], "allowed_actions": ["crud"]}]});
        let reply = consent(&server, dora, scopes)?;
        assert_eq!(reply.status, 403, "{pattern}: {reply:?}");
    }
    let exact = json!({"index_permissions": [{"index_patterns": ["inbox"], "allowed_actions": ["read"]}]});
    let reply = consent(&server, dora, exact)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let reply = server.send_as(
        dora.0,
        dora.1,
        Method::DELETE,
        &format!("{CONSENTS}/{}", reply.json()["id"].as_str().unwrap_or("")),
        &Value::Null,
    )?;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Too many entries: refused by the limit, before any check.
    let many =
        json!({"index_permissions": [{"index_patterns": vec!["job-*"; 300], "allowed_actions": ["read"]}]});
    let reply = consent(&server, ANA, many)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(reply.reason().contains("at most 256"), "{reply:?}");
    // Bad shapes and unknown extensions.
    let reply = consent(&server, ANA, json!("everything"))?;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reply = server.send_as(
        ANA.0,
        ANA.1,
        Method::POST,
        CONSENTS,
        &json!({"extension": "nope", "scopes": "all"}),
    )?;
    assert_eq!(reply.status, 403, "no schedule:nope: {reply:?}");
    let reply = server.send(Method::POST, CONSENTS, &json!({"extension": "nope", "scopes": "all"}))?;
    assert_eq!(reply.status, 404, "{reply:?}");
    // Carl may use the extension but may not consent.
    let reply = consent(&server, crate::jobs::CARL, json!("all"))?;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.reason().contains("schedule:probe"), "{reply:?}");
    // Through an on-behalf-of token: refused; through an API token, "all"
    // is refused (the token's limits would be outlived).
    let ana = support::basic(ANA.0, ANA.1);
    let token = crate::attacks::token::mint_obo(&server, &ana, 120)?;
    let reply = server.send_with_authorization(
        Method::POST,
        CONSENTS,
        Some(&format!("Bearer {token}")),
        &json!({"extension": "probe", "scopes": "all"}),
    )?;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.reason().contains("on-behalf-of"), "{reply:?}");
    let created = crate::attacks::token::create_api_token(
        &server,
        &ana,
        "c",
        json!({"cluster_permissions": ["extension:probe/*", "schedule:probe"]}),
    )?;
    let key = support::api_key(created.json()["token"].as_str().ok_or("no api token")?);
    let reply = server.send_with_authorization(
        Method::POST,
        CONSENTS,
        Some(&key),
        &json!({"extension": "probe", "scopes": "all"}),
    )?;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.reason().contains("API token"), "{reply:?}");
    // Nothing was kept by any refusal (dora's one consent is revoked).
    let kept = server.get(CONSENTS)?.json()["consents"].clone();
    assert!(
        kept.as_array().is_some_and(|all| all.iter().all(|c| c["user"] == "dora" && c["live"] == false)),
        "{kept}"
    );

    // Incremental: the probe's job type writes `job-*`; a consent to
    // `job-ok-*` says what it leaves out, and adding only that covers it.
    let narrow =
        json!({"index_permissions": [{"index_patterns": ["job-ok-*"], "allowed_actions": ["write"]}]});
    let reply = consent(&server, ANA, narrow)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let uncovered = reply.json()["consent"]["uncovered"].clone();
    assert_eq!(uncovered, json!(["job type `write`: `indices:data/write/index` on `job-*`"]), "{reply:?}");
    let more = json!({"index_permissions": [{"index_patterns": ["job-*"], "allowed_actions": ["write"]}]});
    let body = json!({"extension": "probe", "scopes": more, "add": true});
    let reply = server.send_as(ANA.0, ANA.1, Method::POST, CONSENTS, &body)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let shown = reply.json()["consent"].clone();
    assert_eq!(shown["uncovered"], json!([]), "{shown}");
    let patterns: Vec<Value> = shown["scopes"]["index_permissions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| p["index_patterns"][0].clone())
        .collect();
    assert_eq!(patterns, [json!("job-ok-*"), json!("job-*")], "{shown}");
    Ok(())
}

/// `warden consent grant|ls|revoke` as the user herself.
#[test]
fn the_cli_grants_lists_and_revokes() -> TestResult {
    let (_deployment, server) = setup()?;
    let cli = |args: &[&str]| -> Result<(bool, String), Error> {
        let args: Vec<&str> = std::iter::once("consent").chain(args.iter().copied()).collect();
        let (ok, out, err) = support::cli_as(&server, ANA, &args)?;
        Ok((ok, out + &err))
    };
    let scopes = r#"{"index_permissions":[{"index_patterns":["job-ok-*"],"allowed_actions":["crud"]}]}"#;
    let (ok, out) = cli(&["grant", "probe", "--scopes", scopes])?;
    assert!(ok && out.contains("consented to `probe`"), "{out}");
    let (ok, out) = cli(&["ls"])?;
    assert!(ok && out.contains("ana\tprobe\tlive"), "{out}");
    let id = out.split('\t').next().ok_or("no id")?.trim().to_owned();
    let (ok, out) = cli(&["grant", "probe"])?;
    assert!(!ok && out.contains("--scopes"), "{out}");
    let (ok, out) = cli(&["revoke", &id])?;
    assert!(ok && out.contains("revoked consent"), "{out}");
    let (ok, out) = cli(&["ls", "--extension", "probe"])?;
    assert!(ok && out.contains("ana\tprobe\trevoked"), "{out}");
    Ok(())
}

/// An external (JWT) user's consent keeps the roles seen at consent and
/// expires (`WARDEN_CONSENT_MAX_AGE_SECS`): their job is then suspended
/// until they consent again with a fresh login, which resumes it.
#[test]
fn an_external_users_consent_expires_and_a_fresh_one_resumes_the_job() -> TestResult {
    use crate::attacks::identity::{jwt, security_dir};
    let deployment = support::Deployment::new()?;
    deployment.install(
        "probe",
        warden_test_artifacts::GUEST_HOST_CALLS,
        "capabilities = [\"cluster\", \"scheduler\"]",
    )?;
    let config = tempfile::tempdir()?;
    security_dir(config.path())?;
    let mut command = support::warden();
    command
        .env("WARDEN_SCHEDULER_TICK_MS", "100")
        .env("WARDEN_JOB_RETRY_DELAY_MS", "200")
        .env("WARDEN_CONSENT_MAX_AGE_SECS", "3");
    let config = config.path().display().to_string();
    let server = Server::start_command(
        command,
        &deployment.extensions_dir(),
        &deployment.data_dir(),
        &["--security-config", &config],
    )?;
    let jay = support::bearer(&jwt("jay", &["schedulers"])?);
    let body = json!({"extension": "probe", "scopes": "all"});
    // A subject holding a control character cannot consent.
    let odd = support::bearer(&jwt("ja\u{1f}y", &["schedulers"])?);
    let reply = server.send_with_authorization(Method::POST, CONSENTS, Some(&odd), &body)?;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reply = server.send_with_authorization(Method::POST, CONSENTS, Some(&jay), &body)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let consent = reply.json();
    assert_eq!(consent["consent"]["auth_source"], "jwt", "{consent}");
    assert_eq!(consent["consent"]["backend_roles"], json!(["schedulers"]), "{consent}");
    assert!(consent["consent"]["expires_at"].is_number(), "{consent}");
    let spec = json!({"name": "n", "schedule": {"interval": 1}, "params": {"index": "job-jay", "doc": {}}});
    let reply =
        server.send_with_authorization(Method::POST, "/_extensions/probe/schedule", Some(&jay), &spec)?;
    let id = reply.json()["id"].as_str().ok_or_else(|| format!("no id: {reply:?}"))?.to_owned();
    wait_for(&server, &id, "a run", |v| v["last_run"]["status"] == "success")?;
    // Expired: suspended, saying so.
    let view = wait_for(&server, &id, "the consent to expire", |v| v["suspended"].is_string())?;
    assert!(view["suspended"].as_str().is_some_and(|s| s.contains("expired")), "{view}");
    // A fresh login consents again: the job resumes.
    let fresh = support::bearer(&jwt("jay", &["schedulers"])?);
    let reply = server.send_with_authorization(Method::POST, CONSENTS, Some(&fresh), &body)?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let at = runs(&admin_job(&server, &id)?);
    wait_for(&server, &id, "runs after consenting again", |v| runs(v) > at && v["suspended"].is_null())?;
    // The audit trail tells the JWT `jay` from any internal `jay`.
    let events = server.get("/_warden/audit?category=CONSENT_WRITE")?.json();
    let mine: Vec<&Value> =
        events["events"].as_array().into_iter().flatten().filter(|e| e["user"] == "jay").collect();
    assert!(!mine.is_empty() && mine.iter().all(|e| e["user_source"] == "jwt"), "{events}");
    Ok(())
}

/// A deleted user's consents die with them: a later user who takes the
/// name has consented to nothing.
#[test]
fn a_deleted_users_consent_is_not_the_next_users() -> TestResult {
    let (_deployment, server) = setup()?;
    assert_eq!(consent(&server, ANA, json!("all"))?.status, 201);
    let path = format!("{}/internalusers/{}", support::API, ANA.0);
    assert_eq!(server.request(Method::DELETE, &path, "")?.status, 200);
    assert_eq!(server.send(Method::PUT, &path, &json!({"password": ANA.1}))?.status, 201);
    let mapping = json!({"users": [ANA.0, BOB.0]});
    let reply = server.send(Method::PUT, &format!("{}/rolesmapping/scheduling", support::API), &mapping)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let spec = json!({"name": "n", "schedule": {"interval": 60}, "params": {}});
    let refused = server.send_as(ANA.0, ANA.1, Method::POST, "/_extensions/probe/schedule", &spec)?.json();
    assert_eq!(refused["outcome"], "error", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("revoked by `security: user deleted`"), "{message}");
    Ok(())
}

/// An admin revokes by user or by extension; nobody else may, and never
/// everything at once.
#[test]
fn admins_revoke_consents_by_user_or_extension() -> TestResult {
    let (_deployment, server) = setup()?;
    for who in [ANA, BOB] {
        assert_eq!(consent(&server, who, json!("all"))?.status, 201);
    }
    let by_bob =
        server.send_as(BOB.0, BOB.1, Method::DELETE, &format!("{CONSENTS}?user=ana"), &Value::Null)?;
    assert_eq!(by_bob.status, 403, "{by_bob:?}");
    assert_eq!(server.request(Method::DELETE, CONSENTS, "")?.status, 400);
    let reply = server.request(Method::DELETE, &format!("{CONSENTS}?user=ana"), "")?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["revoked"].as_array().map(Vec::len), Some(1), "{reply:?}");
    let live = |who: (&str, &str)| -> Result<Value, Error> {
        Ok(server.get_as(who.0, who.1, CONSENTS)?.json()["consents"][0]["live"].clone())
    };
    assert_eq!((live(ANA)?, live(BOB)?), (json!(false), json!(true)));
    let reply = server.request(Method::DELETE, &format!("{CONSENTS}?extension=probe"), "")?;
    assert_eq!(reply.json()["revoked"].as_array().map(Vec::len), Some(1), "{reply:?}");
    assert_eq!(live(BOB)?, json!(false));
    Ok(())
}

/// Removing an extension revokes the consents to it: another extension
/// installed later under the id is other code, consented to anew.
#[test]
fn removal_revokes_consents_to_the_extension() -> TestResult {
    let deployment = support::Deployment::new()?;
    let server = crate::lifecycle::start(&deployment)?;
    let probe = std::fs::read(warden_test_artifacts::GUEST_HOST_CALLS)?;
    let manifest = "id = \"probe\"\nversion = \"1\"\ncomponent = \"c.wasm\"\ncapabilities = [\"cluster\", \"scheduler\"]\n";
    let install_and_approve = || -> TestResult {
        assert_eq!(crate::lifecycle::install(&server, manifest, &probe)?.status, 201);
        let reply = server.request(Method::POST, "/_warden/extensions/probe/_approve", "")?;
        assert_eq!(reply.status, 200, "{reply:?}");
        Ok(())
    };
    install_and_approve()?;
    let role = json!({"extension_permissions": ["extension:probe/*", "schedule:probe"]});
    for (path, body) in [
        (format!("{}/roles/scheduling", support::API), role),
        (format!("{}/internalusers/ana", support::API), json!({"password": ANA.1})),
        (format!("{}/rolesmapping/scheduling", support::API), json!({"users": ["ana"]})),
    ] {
        assert_eq!(server.send(Method::PUT, &path, &body)?.status, 201, "{path}");
    }
    assert_eq!(consent(&server, ANA, json!("all"))?.status, 201);
    let removed = server.request(Method::DELETE, "/_warden/extensions/probe", "")?;
    assert_eq!(removed.status, 200, "{removed:?}");
    assert_eq!(removed.json()["consents_revoked"].as_array().map(Vec::len), Some(1), "{removed:?}");
    install_and_approve()?;
    let spec = json!({"name": "n", "schedule": {"interval": 60}, "params": {}});
    let refused = server.send_as(ANA.0, ANA.1, Method::POST, "/_extensions/probe/schedule", &spec)?.json();
    assert_eq!(refused["outcome"], "error", "{refused}");
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("was removed by `admin`")), "{refused}");
    let events = server.get("/_warden/audit?category=CONSENT_WRITE")?.json().to_string();
    assert!(events.contains("was removed by `admin`"), "{events}");
    Ok(())
}
