//! User-minted on-behalf-of tokens (OpenSearch's generateonbehalfoftoken):
//! they authenticate as the user, but can never mint tokens, change a
//! password or call the security API; tampered or revoked ones fail.

use reqwest::Method;
use serde_json::json;

use crate::support::{self, Deployment, MINT, TestResult};

#[test]
fn obo_tokens_act_for_the_user_within_limits() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let minted = server.send(
        Method::POST,
        MINT,
        &json!({"service": "reporting", "durationSeconds": 120, "description": "nightly"}),
    )?;
    assert_eq!(minted.status, 200, "{minted:?}");
    assert_eq!(minted.json()["user"], "admin");
    assert_eq!(minted.json()["durationSeconds"], "120");
    let token = minted.json()["authenticationToken"].as_str().unwrap_or_default().to_owned();
    let bearer = format!("Bearer {token}");

    let info = server.get_with_authorization("/_plugins/_security/authinfo", Some(&bearer))?;
    assert_eq!(info.status, 200, "{info:?}");
    assert_eq!(info.json()["user_name"], "admin");
    assert_eq!(server.get_with_authorization("/_cluster/health", Some(&bearer))?.status, 200);

    // Never: minting, the security API, password changes, token administration.
    let client = reqwest::blocking::Client::new();
    let with_obo = |method: Method, path: &str, body: serde_json::Value| {
        client
            .request(method, server.url(path))
            .header("authorization", &bearer)
            .json(&body)
            .send()
            .map(|r| r.status().as_u16())
    };
    assert_eq!(with_obo(Method::POST, MINT, json!({"service": "x"}))?, 403, "OBO minting OBO");
    assert_eq!(with_obo(Method::GET, "/_plugins/_security/api/internalusers", json!(null))?, 403);
    assert_eq!(with_obo(Method::PUT, "/_plugins/_security/api/roles/evil", json!({}))?, 403);
    assert_eq!(server.get("/_plugins/_security/api/roles/evil")?.status, 404, "nothing was written");
    let change = json!({"current_password": support::ADMIN_PASSWORD, "password": "Another-Pass-123"});
    assert_eq!(with_obo(Method::PUT, "/_plugins/_security/api/account", change)?, 403);
    assert_eq!(with_obo(Method::POST, "/_warden/tokens/_revoke", json!({"user": "admin"}))?, 403);
    assert_eq!(with_obo(Method::GET, "/_warden/security/_export", json!(null))?, 403);

    // Lifetimes are capped; tampered tokens fail.
    let long = server.send(Method::POST, MINT, &json!({"service": "x", "durationSeconds": 100_000}))?;
    assert_eq!(long.status, 400, "{long:?}");
    let mut tampered = token.clone();
    let last = tampered.pop().map(|c| if c == 'A' { 'B' } else { 'A' }).unwrap_or('A');
    tampered.push(last);
    let reply =
        server.get_with_authorization("/_plugins/_security/authinfo", Some(&format!("Bearer {tampered}")))?;
    assert_eq!(reply.status, 401);

    // Key rotation: tokens minted before still work (grace window), new ones too.
    let rotated = server.request(Method::POST, "/_warden/tokens/_rotate_keys", "")?;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    assert_eq!(server.get_with_authorization("/_plugins/_security/authinfo", Some(&bearer))?.status, 200);
    let fresh =
        server.send(Method::POST, MINT, &json!({"service": "reporting"}))?.json()["authenticationToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    assert_eq!(
        server.get_with_authorization("/_cluster/health", Some(&format!("Bearer {fresh}")))?.status,
        200
    );

    // Revoking the user's tokens takes effect on the next request.
    assert_eq!(server.send(Method::POST, "/_warden/tokens/_revoke", &json!({"user": "admin"}))?.status, 200);
    assert_eq!(server.get_with_authorization("/_plugins/_security/authinfo", Some(&bearer))?.status, 401);
    let fresh_bearer = format!("Bearer {fresh}");
    assert_eq!(server.get_with_authorization("/_cluster/health", Some(&fresh_bearer))?.status, 401);
    assert!(server.wait_for_log("is revoked"), "{}", server.logs());

    // Every refusal above is in the audit log with its reason.
    let reasons = |category: &str| -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let audit = server.get(&format!("/_warden/audit?category={category}&size=1000"))?.json();
        Ok(audit["events"]
            .as_array()
            .map(|events| events.iter().filter_map(|e| e["reason"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    };
    let refused = reasons("MISSING_PRIVILEGES")?;
    let obo_refusals = refused.iter().filter(|r| r.contains("on-behalf-of token cannot")).count();
    assert_eq!(obo_refusals, 6, "mint, security API ×2, password, revoke, export: {refused:?}");
    let failed = reasons("FAILED_LOGIN")?;
    assert!(failed.iter().any(|r| r.contains("signature does not verify")), "tampered: {failed:?}");
    assert!(failed.iter().any(|r| r.contains("token for user `admin` is revoked")), "revoked: {failed:?}");
    Ok(())
}

/// The OBO endpoint's newer path, `/_plugins/_security/api/obo/token`, and
/// the body OpenSearch's documentation sends (`durationSeconds` as a
/// string, `roleSecurityMode`), are served as `generateonbehalfoftoken` is;
/// a malformed duration is refused in the plugin's shape, and an OBO token
/// still cannot mint through the new path.
#[test]
fn the_obo_token_path_and_documented_body_are_served() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    const OBO_TOKEN: &str = "/_plugins/_security/api/obo/token";
    let minted = server.send(Method::POST, OBO_TOKEN, &json!({"description": "test"}))?;
    assert_eq!(minted.status, 200, "{minted:?}");
    assert_eq!(minted.json()["user"], "admin");
    let bearer = support::bearer(minted.json()["authenticationToken"].as_str().unwrap_or_default());
    assert_eq!(server.get_with_authorization("/_cluster/health", Some(&bearer))?.status, 200);
    // The documentation's example request.
    let documented =
        json!({"description": "Reason for token", "service": "self-issued", "durationSeconds": "300"});
    for path in [MINT, OBO_TOKEN] {
        let reply = server.send(Method::POST, path, &documented)?;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert_eq!(reply.json()["durationSeconds"], "300");
    }
    let mode = json!({"description": "x", "roleSecurityMode": false});
    assert_eq!(server.send(Method::POST, OBO_TOKEN, &mode)?.status, 200);
    let bad = server.send(Method::POST, OBO_TOKEN, &json!({"durationSeconds": "soon"}))?;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(
        bad.json(),
        json!({"status": "BAD_REQUEST", "message": "durationSeconds must be an integer."})
    );
    let unknown = server.send(Method::POST, OBO_TOKEN, &json!({"lifetime": 5}))?;
    assert_eq!(unknown.status, 400, "{unknown:?}");
    assert_eq!(unknown.json()["status"], "BAD_REQUEST");
    // Never through a token, on either path.
    let reply = server.send_with_authorization(Method::POST, OBO_TOKEN, Some(&bearer), &json!({}))?;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(reply.json()["status"], "FORBIDDEN", "{reply:?}");
    let anonymous = server.send_with_authorization(Method::POST, OBO_TOKEN, None, &json!({}))?;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    Ok(())
}

/// `whoami` and `authinfo` answer as OpenSearch's plugin does, on GET and
/// POST, for the caller only, and never without authentication.
#[test]
fn whoami_and_authinfo_answer_as_opensearch() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    for method in [Method::GET, Method::POST] {
        let who = server.send(method.clone(), "/_plugins/_security/whoami", &json!(null))?;
        assert_eq!(who.status, 200, "{who:?}");
        assert_eq!(who.json(), json!({"dn": null, "is_admin": false, "is_node_certificate_request": false}));
        let info = server.send(method, "/_plugins/_security/authinfo", &json!(null))?;
        assert_eq!(info.status, 200, "{info:?}");
        let info = info.json();
        assert_eq!(info["user_name"], "admin");
        assert!(
            info["user"].as_str().unwrap_or_default().starts_with("User [name=admin, backend_roles=["),
            "{info}"
        );
        assert_eq!(info["remote_address"], "127.0.0.1", "{info}");
        assert!(info["roles"].as_array().is_some_and(|r| r.iter().any(|r| r == "all_access")), "{info}");
    }
    assert_eq!(server.get_with_authorization("/_plugins/_security/whoami", None)?.status, 401);
    Ok(())
}
