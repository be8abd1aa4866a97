//! The operator console (`/_warden/console`) against the real binary: the
//! embedded page and its security headers; sign-in through the Basic
//! authenticator (throttled and audited alike) giving an HttpOnly,
//! SameSite=Strict cookie; the session resolved afresh on every request (a
//! changed password, a disabled or deleted user, a revocation end it;
//! expiry and idle timeout); CSRF and origin rules on every
//! cookie-authenticated change, with nothing half-done when refused; and
//! requests with `Authorization` unaffected. The pages themselves are
//! driven in headless Chromium in [`browser`].

mod browser;

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

use crate::support::{self, ADMIN_PASSWORD, API, Deployment, Error, Server, TestResult};

pub(crate) const ANA: (&str, &str) = ("ana", "Ana-Password-1");
const CONSOLE: &str = "/_warden/console";

/// A browser's view of one signed-in session: its cookie and CSRF token.
pub(crate) struct Session {
    pub cookie: String,
    pub csrf: String,
    pub set_cookie: String,
    pub body: Value,
}

pub(crate) fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(60)).build().unwrap_or_else(|_| Client::new())
}

/// `POST /_warden/console/_login` as a browser on this server's page would.
pub(crate) fn login_raw(
    server: &Server,
    user: &str,
    password: &str,
) -> Result<reqwest::blocking::Response, Error> {
    Ok(client()
        .post(server.url(&format!("{CONSOLE}/_login")))
        .header("content-type", "application/json")
        .header("origin", &server.base)
        .body(json!({"user": user, "password": password}).to_string())
        .send()?)
}

pub(crate) fn login(server: &Server, user: &str, password: &str) -> Result<Session, Error> {
    let response = login_raw(server, user, password)?;
    assert_eq!(response.status(), 200, "sign-in of {user}");
    let set_cookie =
        response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).ok_or("no Set-Cookie")?.to_owned();
    let cookie = set_cookie.split(';').next().ok_or("empty cookie")?.trim().to_owned();
    let body: Value = response.json()?;
    let csrf = body["csrf_token"].as_str().ok_or("no csrf_token")?.to_owned();
    Ok(Session { cookie, csrf, set_cookie, body })
}

impl Session {
    /// A request carrying this session's cookie only.
    pub(crate) fn request(&self, server: &Server, method: Method, path: &str) -> RequestBuilder {
        client().request(method, server.url(path)).header("cookie", &self.cookie)
    }

    /// A change as the console's script sends it: cookie, CSRF token, origin.
    pub(crate) fn change(&self, server: &Server, method: Method, path: &str, body: &Value) -> RequestBuilder {
        let request = self
            .request(server, method, path)
            .header("x-csrf-token", &self.csrf)
            .header("origin", &server.base);
        if body.is_null() {
            request
        } else {
            request.header("content-type", "application/json").body(body.to_string())
        }
    }
}

fn add_user(server: &Server, user: (&str, &str)) -> TestResult {
    let reply =
        server.send(Method::PUT, &format!("{API}/internalusers/{}", user.0), &json!({"password": user.1}))?;
    assert!(reply.status == 200 || reply.status == 201, "{reply:?}");
    Ok(())
}

fn token_names(server: &Server, user: (&str, &str)) -> Result<Vec<String>, Error> {
    let reply = server.get_as(user.0, user.1, &format!("{API}/apitokens"))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(reply
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|t| t["created_by"] == user.0)
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect())
}

fn reason(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn the_page_is_embedded_and_hardened() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let mut weight = 0;
    for (path, kind) in [
        (CONSOLE.to_owned(), "text/html"),
        (format!("{CONSOLE}/app.js"), "text/javascript"),
        (format!("{CONSOLE}/app.css"), "text/css"),
    ] {
        let response = client().get(server.url(&path)).send()?;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let header =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(header("content-type").starts_with(kind), "{path}: {headers:?}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
        let body = response.text()?;
        weight += body.len();
        // Nothing inline, nothing from elsewhere, no HTML from strings.
        assert!(
            !body.contains("innerHTML")
                && !body.contains("outerHTML")
                && !body.contains("insertAdjacentHTML"),
            "{path}"
        );
        // SVG's namespace is a name, not a place anything is loaded from.
        let outside = body.replace("'http://www.w3.org/2000/svg'", "");
        assert!(
            !outside.contains("http://") && !outside.contains("https://"),
            "{path} loads nothing from elsewhere"
        );
        if kind == "text/html" {
            assert!(!body.contains("style="), "no inline style");
            assert!(
                body.matches("<script").count() == 1 && body.contains("<script type=\"module\" src="),
                "no inline script"
            );
        }
    }
    println!("console page weight: {weight} bytes (HTML + JS + CSS, uncompressed)");
    // No session: `_session` says so without asking the browser for Basic.
    let response = client().get(server.url(&format!("{CONSOLE}/_session"))).send()?;
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("www-authenticate").is_none());
    // The REST API is not opened by the console's routes.
    assert_eq!(client().get(server.url("/_warden/extensions")).send()?.status(), 401);
    Ok(())
}

#[test]
fn sign_in_gives_a_strict_cookie_and_sign_out_ends_it() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    add_user(&server, ANA)?;

    let admin = login(&server, "admin", ADMIN_PASSWORD)?;
    let attributes: Vec<String> =
        admin.set_cookie.split(';').map(|a| a.trim().to_ascii_lowercase()).collect();
    for wanted in ["httponly", "samesite=strict", "path=/"] {
        assert!(attributes.iter().any(|a| a == wanted), "{}", admin.set_cookie);
    }
    assert!(attributes.iter().any(|a| a.starts_with("max-age=") && a != "max-age=0"), "{}", admin.set_cookie);
    // Plain HTTP: not Secure (the browser would drop it); over a TLS proxy it is.
    assert!(!attributes.iter().any(|a| a == "secure"), "{}", admin.set_cookie);
    let id = admin.cookie.trim_start_matches("warden_session=");
    assert_eq!(id.len(), 64, "256 random bits, hex");
    assert_eq!(admin.body["user"], "admin");
    assert_eq!(admin.body["can"]["manage_extensions"], true, "{}", admin.body);

    let behind_tls = client()
        .post(server.url(&format!("{CONSOLE}/_login")))
        .header("content-type", "application/json")
        .header("x-forwarded-proto", "https")
        .body(json!({"user": ANA.0, "password": ANA.1}).to_string())
        .send()?;
    let set_cookie = behind_tls.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(set_cookie.to_ascii_lowercase().contains("; secure"), "{set_cookie}");

    // The cookie authenticates REST calls; `_session` names the user.
    let (status, session) =
        reason(admin.request(&server, Method::GET, &format!("{CONSOLE}/_session")).send()?);
    assert_eq!(status, 200);
    assert_eq!(session["csrf_token"], admin.csrf.as_str());
    assert_eq!(admin.request(&server, Method::GET, "/_warden/extensions").send()?.status(), 200);
    let ana = login(&server, ANA.0, ANA.1)?;
    assert_eq!(ana.body["can"]["manage_extensions"], false, "{}", ana.body);
    assert_eq!(
        ana.request(&server, Method::GET, "/_warden/audit").send()?.status(),
        403,
        "ana is not an admin"
    );

    // A cookie the server never issued is a failed login, not anonymous.
    let forged = client()
        .get(server.url("/_warden/extensions"))
        .header("cookie", format!("warden_session={}", "0".repeat(64)));
    assert_eq!(forged.send()?.status(), 401);

    // Sign-out is a change: without the token it is refused and the session lives.
    let response = admin.request(&server, Method::POST, &format!("{CONSOLE}/_logout")).send()?;
    assert_eq!(response.status(), 403);
    assert_eq!(admin.request(&server, Method::GET, "/_warden/extensions").send()?.status(), 200);
    let response = admin.change(&server, Method::POST, &format!("{CONSOLE}/_logout"), &Value::Null).send()?;
    assert_eq!(response.status(), 200);
    let cleared =
        response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = admin.request(&server, Method::GET, "/_warden/extensions").send()?;
    assert_eq!(after.status(), 401);
    assert!(after.headers().get("www-authenticate").is_none(), "no Basic dialog over the page");
    // Ana's session is another: still good.
    assert_eq!(ana.request(&server, Method::GET, "/_warden/extensions").send()?.status(), 403);
    assert_eq!(ana.request(&server, Method::GET, &format!("{CONSOLE}/_session")).send()?.status(), 200);

    // Sign-in refuses a form post (only the console's JSON) and another site's page.
    let form = client()
        .post(server.url(&format!("{CONSOLE}/_login")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user=admin&password={ADMIN_PASSWORD}"))
        .send()?;
    assert_eq!(form.status(), 415);
    assert!(form.headers().get("set-cookie").is_none());
    let cross = client()
        .post(server.url(&format!("{CONSOLE}/_login")))
        .header("content-type", "application/json")
        .header("origin", "http://evil.example")
        .body(json!({"user": "admin", "password": ADMIN_PASSWORD}).to_string())
        .send()?;
    assert_eq!(cross.status(), 403);
    assert!(cross.headers().get("set-cookie").is_none());
    Ok(())
}

#[test]
fn changes_need_the_sessions_csrf_token_and_origin() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    add_user(&server, ANA)?;
    let admin = login(&server, "admin", ADMIN_PASSWORD)?;
    let ana = login(&server, ANA.0, ANA.1)?;
    let tokens = format!("{API}/apitokens");
    let create = |name: &str| json!({"name": name, "cluster_permissions": ["cluster:monitor/health"], "duration_seconds": 3600});

    // No token.
    let request = admin.request(&server, Method::POST, &tokens).header("content-type", "application/json");
    let (status, body) = reason(request.body(create("none").to_string()).send()?);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "security_exception", "{body}");
    // Another user's token with admin's cookie.
    let request = admin.request(&server, Method::POST, &tokens).header("x-csrf-token", &ana.csrf);
    let (status, _) =
        reason(request.header("content-type", "application/json").body(create("other").to_string()).send()?);
    assert_eq!(status, 403);
    // The right token from another origin, or a cross-site fetch.
    let request = admin
        .request(&server, Method::POST, &tokens)
        .header("x-csrf-token", &admin.csrf)
        .header("origin", "http://evil.example");
    let (status, _) =
        reason(request.header("content-type", "application/json").body(create("cross").to_string()).send()?);
    assert_eq!(status, 403);
    let request = admin
        .request(&server, Method::POST, &tokens)
        .header("x-csrf-token", &admin.csrf)
        .header("sec-fetch-site", "cross-site");
    let (status, _) =
        reason(request.header("content-type", "application/json").body(create("site").to_string()).send()?);
    assert_eq!(status, 403);
    // A DELETE is a change too.
    let (status, _) = reason(admin.request(&server, Method::DELETE, "/_warden/consents/nope").send()?);
    assert_eq!(status, 403);
    // Nothing was created by any of them.
    assert!(token_names(&server, ("admin", ADMIN_PASSWORD))?.is_empty());

    // Done right, it is done.
    let (status, body) = reason(admin.change(&server, Method::POST, &tokens, &create("console")).send()?);
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()), "the secret, once");
    assert_eq!(token_names(&server, ("admin", ADMIN_PASSWORD))?, ["console"]);

    // Authorization wins over the cookie and needs no CSRF token (not ambient).
    let reply = client()
        .post(server.url(&tokens))
        .basic_auth(ANA.0, Some(ANA.1))
        .header("cookie", &admin.cookie)
        .header("content-type", "application/json")
        // Ana holds no permission: her token may hold none either (a key
        // is never wider than its creator).
        .body(json!({"name": "basic", "duration_seconds": 3600}).to_string())
        .send()?;
    assert_eq!(reply.status(), 200);
    assert_eq!(token_names(&server, ANA)?, ["basic"], "created as ana, not as the cookie's admin");
    assert_eq!(token_names(&server, ("admin", ADMIN_PASSWORD))?, ["console"]);
    Ok(())
}

#[test]
fn a_session_ends_with_the_users_password_account_or_tokens() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    add_user(&server, ANA)?;
    let alive = |s: &Session| -> Result<u16, Error> {
        Ok(s.request(&server, Method::GET, &format!("{CONSOLE}/_session")).send()?.status().as_u16())
    };
    let user_path = format!("{API}/internalusers/{}", ANA.0);

    // A changed password.
    let session = login(&server, ANA.0, ANA.1)?;
    assert_eq!(alive(&session)?, 200);
    let new_password = "Ana-Password-2";
    let reply = server.send(Method::PUT, &user_path, &json!({"password": new_password}))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(alive(&session)?, 401);
    assert_eq!(session.request(&server, Method::GET, "/_plugins/_security/authinfo").send()?.status(), 401);

    // Roles are read afresh: mapped to all_access, ana may read the audit log at once.
    let session = login(&server, ANA.0, new_password)?;
    assert_eq!(session.request(&server, Method::GET, "/_warden/audit").send()?.status(), 403);
    let reply = server.send(
        Method::PUT,
        &format!("{API}/rolesmapping/all_access"),
        &json!({"users": ["admin", ANA.0], "backend_roles": ["admin"]}),
    )?;
    assert!(reply.status == 200 || reply.status == 201, "{reply:?}");
    assert_eq!(session.request(&server, Method::GET, "/_warden/audit").send()?.status(), 200);

    // A revocation of the user's tokens.
    let reply = server.send(Method::POST, "/_warden/tokens/_revoke", &json!({"user": ANA.0}))?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(alive(&session)?, 401);
    // Signing in again right after works (issued after the revocation).
    let session = login(&server, ANA.0, new_password)?;
    assert_eq!(alive(&session)?, 200);

    // A disabled, then a deleted user.
    let reply = server.send(
        Method::PATCH,
        &user_path,
        &json!([{"op": "add", "path": "/disabled", "value": true}]),
    )?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(alive(&session)?, 401);
    let reply = server.send(
        Method::PATCH,
        &user_path,
        &json!([{"op": "add", "path": "/disabled", "value": false}]),
    )?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let session = login(&server, ANA.0, new_password)?;
    let reply = server.send(Method::DELETE, &user_path, &Value::Null)?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(alive(&session)?, 401);
    // Recreated with the same password: the old session does not come back.
    add_user(&server, (ANA.0, new_password))?;
    assert_eq!(alive(&session)?, 401);
    Ok(())
}

#[test]
fn sessions_expire_when_idle() -> TestResult {
    let deployment = Deployment::new()?;
    let mut command = support::warden();
    command.env("WARDEN_CONSOLE_IDLE_SECS", "1");
    let server = Server::start_command(command, &deployment.extensions_dir(), &deployment.data_dir(), &[])?;
    let session = login(&server, "admin", ADMIN_PASSWORD)?;
    assert_eq!(session.request(&server, Method::GET, "/_warden/extensions").send()?.status(), 200);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(session.request(&server, Method::GET, "/_warden/extensions").send()?.status(), 401);
    // Gone for good, even if used again at once.
    assert_eq!(session.request(&server, Method::GET, &format!("{CONSOLE}/_session")).send()?.status(), 401);
    Ok(())
}

#[test]
fn wrong_passwords_at_sign_in_are_throttled_and_audited_like_basic() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    add_user(&server, ANA)?;
    // Opened before the address is blocked: a session is not a password check.
    let admin = login(&server, "admin", ADMIN_PASSWORD)?;
    // OpenSearch's default listeners allow 10 failures.
    for _ in 0..10 {
        let response = login_raw(&server, ANA.0, "wrong")?;
        assert_eq!(response.status(), 401);
        assert!(response.headers().get("set-cookie").is_none());
        assert!(response.headers().get("www-authenticate").is_none());
    }
    let response = login_raw(&server, ANA.0, ANA.1)?;
    assert_eq!(response.status(), 429, "blocked even with the right password");
    assert!(response.headers().get("retry-after").is_some());
    assert!(response.headers().get("set-cookie").is_none());
    // The same throttle as Basic: the name is blocked there too.
    assert_eq!(server.get_as(ANA.0, ANA.1, "/_plugins/_security/authinfo")?.status, 429);
    let (status, failed) =
        reason(admin.request(&server, Method::GET, "/_warden/audit?category=FAILED_LOGIN").send()?);
    assert_eq!(status, 200, "{failed}");
    let failed = failed["events"].as_array().cloned().unwrap_or_default();
    let console_failures = failed
        .iter()
        .filter(|e| e["user"] == ANA.0 && e["path"] == format!("{CONSOLE}/_login").as_str())
        .count();
    assert!(console_failures >= 10, "{failed:?}");
    Ok(())
}
