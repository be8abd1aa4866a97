//! The console driven in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by scripts/setup.sh) against the real
//! binary. The WebDriver client is the few W3C WebDriver calls the tests
//! need, spoken over the blocking `reqwest` the e2e tests already use (no
//! async WebDriver crate and its dependency tree for a dozen endpoints).
//! chromedriver runs on a free loopback port and is killed when the test
//! ends. On failure, a screenshot of the page is saved under
//! `target/tmp/console-screenshots/`; with `WARDEN_CONSOLE_SCREENSHOTS=<dir>`
//! the main pages are saved there as they pass (how docs/console/ is made).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use warden_test_artifacts::HELLO_WORLD;

use super::{ANA, add_user};
use crate::lifecycle::{EXTENSIONS, install, start};
use crate::support::{ADMIN_PASSWORD, Deployment, Error, Server, TestResult};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session in it.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    name: &'static str,
    passed: bool,
}

fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Browser {
    fn start(name: &'static str) -> Result<Browser, Error> {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or("no chromium: run scripts/setup.sh (apt-get install chromium chromium-driver)")?;
        let port = free_port()?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start chromedriver (scripts/setup.sh installs it): {e}"))?;
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build()?;
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            http,
            name,
            passed: false,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while browser.http.get(format!("{}/status", browser.base)).send().is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not answer".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900"],
            },
        }}});
        let created = browser.call(Method::POST, "/session", &capabilities)?;
        browser.session = created["sessionId"].as_str().ok_or(format!("no session: {created}"))?.to_owned();
        Ok(browser)
    }

    fn call(&self, method: Method, path: &str, body: &Value) -> Result<Value, Error> {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut request = self.http.request(method, url);
        if !body.is_null() {
            request = request.json(body);
        }
        let answer: Value = request.send()?.json()?;
        if let Some(error) = answer["value"]["error"].as_str() {
            return Err(format!("webdriver {path}: {error}: {}", answer["value"]["message"]).into());
        }
        Ok(answer["value"].clone())
    }

    fn goto(&self, url: &str) -> Result<(), Error> {
        self.call(Method::POST, "/url", &json!({"url": url}))?;
        Ok(())
    }

    fn script(&self, script: &str, args: Value) -> Result<Value, Error> {
        self.call(Method::POST, "/execute/sync", &json!({"script": script, "args": args}))
    }

    /// The element `css` names, waited for (the page renders after fetches).
    fn find(&self, css: &str) -> Result<String, Error> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.call(Method::POST, "/element", &json!({"using": "css selector", "value": css}));
            match found {
                Ok(element) => {
                    return Ok(element[ELEMENT]
                        .as_str()
                        .ok_or(format!("no element id for {css}: {element}"))?
                        .to_owned());
                }
                Err(e) if Instant::now() > deadline => return Err(format!("{css}: {e}").into()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn exists(&self, css: &str) -> Result<bool, Error> {
        let found = self.call(Method::POST, "/elements", &json!({"using": "css selector", "value": css}))?;
        Ok(found.as_array().is_some_and(|a| !a.is_empty()))
    }

    fn click(&self, css: &str) -> Result<(), Error> {
        let element = self.find(css)?;
        self.call(Method::POST, &format!("/element/{element}/click"), &json!({}))?;
        Ok(())
    }

    fn type_into(&self, css: &str, text: &str) -> Result<(), Error> {
        let element = self.find(css)?;
        self.call(Method::POST, &format!("/element/{element}/clear"), &json!({}))?;
        self.call(Method::POST, &format!("/element/{element}/value"), &json!({"text": text}))?;
        Ok(())
    }

    fn text(&self, css: &str) -> Result<String, Error> {
        let element = self.find(css)?;
        Ok(self
            .call(Method::GET, &format!("/element/{element}/text"), &Value::Null)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Waits until the page has rendered `hash` (the app marks it).
    fn loaded(&self, hash: &str) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let at = self.script("return document.getElementById('view').dataset.loaded || ''", json!([]))?;
            if at == hash {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("page {hash} not rendered (at {at})").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Loads the page afresh at `hash` (through a blank page: navigating to
    /// the same URL would only change the fragment) and waits for it.
    fn open(&self, server: &Server, hash: &str) -> Result<(), Error> {
        self.goto("about:blank")?;
        self.goto(&format!("{}/_warden/console{hash}", server.base))?;
        self.loaded(hash)
    }

    fn accept_alert(&self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.call(Method::POST, "/alert/accept", &json!({})).is_err() {
            if Instant::now() > deadline {
                return Err("no confirmation dialog".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn screenshot(&self, dir: &std::path::Path, name: &str) -> Result<PathBuf, Error> {
        let png = self.call(Method::GET, "/screenshot", &Value::Null)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default())?;
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }

    /// Saves page `name` to `WARDEN_CONSOLE_SCREENSHOTS` when set.
    fn keep(&self, name: &str) -> TestResult {
        if let Some(dir) = std::env::var_os("WARDEN_CONSOLE_SCREENSHOTS") {
            self.screenshot(std::path::Path::new(&dir), name)?;
        }
        Ok(())
    }

    fn sign_in(&self, server: &Server, user: &str, password: &str) -> TestResult {
        self.goto(&format!("{}/_warden/console#/extensions", server.base))?;
        self.find("#login:not([hidden])")?;
        self.type_into("#login-user", user)?;
        self.type_into("#login-password", password)?;
        self.click("#login-submit")?;
        self.loaded("#/extensions")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.passed && !self.session.is_empty() {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
            if let Ok(path) = self.screenshot(&dir, self.name) {
                eprintln!("console test failed: screenshot at {}", path.display());
            }
        }
        if !self.session.is_empty() {
            let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// hello-world as `greeter`, with a description no page may run as markup.
fn greeter(version: &str, capabilities: &str, policy: &str) -> String {
    format!(
        r#"id = "greeter"
version = "{version}"
description = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
component = "c.wasm"
capabilities = [{capabilities}]
{policy}
[[routes]]
method = "GET"
path = "/greet/{{name}}"
"#
    )
}

#[test]
fn an_admin_reviews_approves_and_upgrades_and_the_audit_finds_it() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    add_user(&server, ANA)?;
    let mut browser = Browser::start("admin-review")?;

    // Sign in through the page.
    browser.sign_in(&server, "admin", ADMIN_PASSWORD)?;
    assert!(browser.text("#who")?.starts_with("admin"));

    // A pending install: listed with its state; its review page approves it.
    assert_eq!(install(&server, &greeter("1.0.0", "", ""), &hello)?.status, 201);
    assert_eq!(server.get("/_extensions/greeter/greet/x")?.status, 404, "pending serves nothing");
    browser.open(&server, "#/extensions")?;
    assert!(browser.text("#extensions tr[data-ext=greeter]")?.contains("pending"));
    browser.click("a.ext-link[data-ext=greeter]")?;
    browser.loaded("#/extensions/greeter")?;
    // The hostile description is shown as text, and ran nothing.
    assert!(browser.text("#review-description")?.contains("<img src=x onerror="));
    assert!(!browser.exists("#review img")? && !browser.exists("#view script")?);
    assert_ne!(browser.script("return document.title", json!([]))?, "pwned");
    assert!(browser.text("#routes")?.contains("GET /greet/{name}"));
    browser.keep("review")?;
    browser.click("#approve")?;
    browser.find("#flash-ok")?;
    browser.loaded("#/extensions/greeter")?;
    assert!(
        browser.text("#ext-state")?.contains("approved") || browser.text("#ext-state")?.contains("active")
    );
    let reply = server.get("/_extensions/greeter/greet/console")?;
    assert_eq!(reply.status, 200, "its route answers once approved: {reply:?}");
    // Its answers run sandboxed, away from the console's origin.
    let sandbox =
        reply.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(sandbox.starts_with("sandbox") && !sandbox.contains("allow-same-origin"), "{sandbox}");

    // An upgrade that widens waits; its delta is shown with the addition
    // highlighted; approving it from the page swaps the version.
    let v2 =
        greeter("2.0.0", "\"cluster\"", "[policy]\ncluster_permissions = [\"cluster:monitor/health\"]\n");
    assert_eq!(install(&server, &v2, &hello)?.status, 202);
    browser.open(&server, "#/extensions/greeter")?;
    let added = browser.text("#delta li.added[data-kind=capabilities]")?;
    assert!(added.contains("cluster"), "{added}");
    assert!(browser.text("#delta")?.contains("cluster:monitor/health"));
    assert_eq!(browser.text("#ext-version")?, "1.0.0");
    browser.keep("delta")?;
    browser.click("#approve")?;
    browser.find("#flash-ok")?;
    browser.loaded("#/extensions/greeter")?;
    assert_eq!(browser.text("#ext-version")?, "2.0.0");
    assert!(!browser.exists("#upgrade")?);
    let record = server.get(&format!("{EXTENSIONS}/greeter"))?.json();
    assert_eq!(record["version"], "2.0.0", "{record}");
    browser.open(&server, "#/extensions")?;
    browser.keep("extensions")?;

    // The audit search finds the approval.
    browser.open(&server, "#/audit")?;
    browser.script("document.getElementById('audit-category').value = 'EXTENSION_APPROVE'", json!([]))?;
    browser.type_into("input[name=extension]", "greeter")?;
    browser.click("#audit-search")?;
    browser.loaded("#/audit?category=EXTENSION_APPROVE&extension=greeter")?;
    let found = browser.text("#audit")?;
    assert!(
        found.contains("EXTENSION_APPROVE") && found.contains("greeter") && found.contains("admin"),
        "{found}"
    );
    browser.keep("audit")?;
    browser.open(&server, "#/overview")?;
    assert!(browser.text("#view")?.contains("Failing extensions"));
    browser.find("#denials")?;

    // Reject a pending install: confirmed, it is gone.
    let spare = "id = \"spare\"\nversion = \"1.0.0\"\ncomponent = \"c.wasm\"\ncapabilities = []\n";
    assert_eq!(install(&server, spare, &hello)?.status, 201);
    browser.open(&server, "#/extensions/spare")?;
    browser.click("#reject")?;
    browser.accept_alert()?;
    browser.loaded("#/extensions")?;
    assert_eq!(server.get(&format!("{EXTENSIONS}/spare"))?.status, 404);

    // An API token made on the page: its secret shown once, then listed without it.
    browser.open(&server, "#/tokens")?;
    browser.type_into("#token-form input[name=name]", "from-console")?;
    browser.type_into("#token-form input[name=cluster]", "cluster:monitor/health")?;
    browser.click("#token-form button[type=submit]")?;
    let secret = browser.text("#token-secret .secret")?;
    assert!(secret.len() > 20, "{secret}");
    let reply = server.get_with_authorization("/_cluster/health", Some(&crate::support::api_key(&secret)))?;
    assert_eq!(reply.status, 200, "the secret shown works: {reply:?}");
    browser.open(&server, "#/tokens")?;
    assert!(browser.text("#tokens")?.contains("from-console"));
    assert!(!browser.text("#view")?.contains(&secret), "shown once");
    assert!(browser.exists("#obo-revoke")?, "an admin may revoke OBO tokens");

    // Sign out: the page asks for sign-in again, the session is gone.
    browser.click("#logout")?;
    browser.find("#login:not([hidden])")?;
    browser.passed = true;
    drop(browser);

    // A non-admin sees the review but no admin action, and cannot approve.
    let mut browser = Browser::start("non-admin")?;
    assert_eq!(install(&server, &greeter("3.0.0", "\"cluster\", \"scheduler\"", ""), &hello)?.status, 202);
    browser.sign_in(&server, ANA.0, ANA.1)?;
    browser.open(&server, "#/extensions/greeter")?;
    // ana may not read the lifecycle API at all: the page says so.
    assert!(browser.text("#page-error")?.contains("403"));
    assert!(!browser.exists("#approve")? && !browser.exists("#remove")?);
    browser.open(&server, "#/audit")?;
    assert!(browser.text("#page-error")?.contains("403"));
    browser.open(&server, "#/tokens")?;
    assert!(browser.exists("#token-form")? && !browser.exists("#obo-revoke")?);
    browser.passed = true;
    let record = server.get(&format!("{EXTENSIONS}/greeter"))?.json();
    assert_eq!(record["upgrade"]["version"], "3.0.0", "still waiting: {record}");
    Ok(())
}

#[test]
fn a_user_revokes_their_consent_and_sees_the_job_suspended() -> TestResult {
    let (_deployment, server) = crate::jobs::setup()?;
    let ana = crate::jobs::ANA;
    let scopes = json!({"index_permissions": [{"index_patterns": ["job-*"], "allowed_actions": ["crud", "create_index"]}]});
    let reply = server.send_as(
        ana.0,
        ana.1,
        Method::POST,
        "/_warden/consents",
        &json!({"extension": "probe", "scopes": scopes}),
    )?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let spec =
        json!({"name": "nightly", "schedule": {"interval": 3600}, "params": {"index": "job-ana", "doc": {}}});
    let reply = server.send_as(ana.0, ana.1, Method::POST, "/_extensions/probe/schedule", &spec)?;
    assert_eq!(reply.json()["outcome"], "ok", "{reply:?}");

    let mut browser = Browser::start("consent-revoke")?;
    browser.sign_in(&server, ana.0, ana.1)?;
    // Her job, enabled; disabling and enabling it from the page works.
    browser.open(&server, "#/jobs")?;
    assert!(browser.text("#jobs .job-state")?.contains("enabled"));
    browser.click("#jobs .job-disable")?;
    browser.find("#flash-ok")?;
    browser.open(&server, "#/jobs")?;
    assert!(browser.text("#jobs .job-state")?.contains("disabled"));
    browser.click("#jobs .job-enable")?;
    browser.find("#flash-ok")?;
    browser.open(&server, "#/jobs")?;
    assert!(browser.text("#jobs .job-state")?.contains("enabled"));
    browser.keep("jobs")?;
    // Run now, from the job's page: its run history shows the run.
    browser.click("#jobs a")?;
    browser.find("#runs")?;
    assert!(!browser.exists("#job-owner")?, "re-associating an owner is the admins'");
    browser.click(".job-run")?;
    browser.find("#flash-ok")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let hash = browser.script("return location.hash", json!([]))?.as_str().unwrap_or_default().to_owned();
    loop {
        browser.open(&server, &hash)?;
        if browser.exists("#runs tbody tr")? {
            break;
        }
        assert!(Instant::now() < deadline, "no run in the history");
        std::thread::sleep(Duration::from_millis(300));
    }
    // The chart over the history: one dot per run in the table.
    let counted = browser.script(
        "return [document.querySelectorAll('#runs-chart circle.run-dot').length, \
         document.querySelectorAll('#runs tbody tr').length]",
        json!([]),
    )?;
    assert!(counted[0].as_u64().is_some_and(|n| n >= 1) && counted[0] == counted[1], "{counted}");
    browser.keep("job-runs")?;

    // Her consent, revoked from the page: the job shows as suspended.
    browser.open(&server, "#/consents")?;
    assert!(browser.text("#consents")?.contains("probe"));
    browser.keep("consents")?;
    assert!(!browser.exists("#consents-filter")?, "everyone's consents are the admins'");
    browser.click("#consents .consent-revoke")?;
    browser.find("#flash-ok")?;
    browser.open(&server, "#/jobs")?;
    assert!(browser.text("#jobs .job-state")?.contains("suspended"));
    let listed = server.get_as(ana.0, ana.1, "/_warden/consents")?.json();
    assert_eq!(listed["consents"][0]["live"], false, "{listed}");
    // Nothing of the admin's is offered to her.
    browser.open(&server, "#/extensions")?;
    assert!(browser.text("#page-error")?.contains("403"));
    browser.passed = true;
    Ok(())
}

/// Not a check (no timed assertions in tests): prints the time to first
/// paint of the extensions page with 100 extensions installed, from
/// Chromium's performance timing. `cargo test -p warden-host --test e2e
/// console::browser::first_paint -- --ignored --nocapture`.
#[test]
#[ignore]
fn first_paint_of_the_extensions_page_with_100_extensions() -> TestResult {
    let deployment = Deployment::new()?;
    let server = start(&deployment)?;
    let hello = std::fs::read(HELLO_WORLD)?;
    let mut browser = Browser::start("first-paint")?;
    browser.sign_in(&server, "admin", ADMIN_PASSWORD)?;
    measure(&browser, &server, "0 extensions (baseline)")?;
    for n in 0..100 {
        let manifest = format!(
            "id = \"ext{n:03}\"\nversion = \"1.0.{n}\"\ncomponent = \"c.wasm\"\ncapabilities = []\n\
             [[routes]]\nmethod = \"GET\"\npath = \"/hello\"\n"
        );
        assert_eq!(install(&server, &manifest, &hello)?.status, 201);
    }
    measure(&browser, &server, "100 extensions")?;
    browser.passed = true;
    Ok(())
}

/// Loads the extensions page three times and prints Chromium's timings.
fn measure(browser: &Browser, server: &Server, what: &str) -> TestResult {
    for run in 0..3 {
        let started = Instant::now();
        browser.open(server, "#/extensions")?;
        let rendered = started.elapsed();
        let rows =
            browser.script("return document.querySelectorAll('#extensions tbody tr').length", json!([]))?;
        let paint = browser.script(
            "const p = performance.getEntriesByType('paint').map(e => [e.name, Math.round(e.startTime)]); \
             const n = performance.getEntriesByType('navigation')[0]; \
             return {paint: p, table_rendered: Number(document.getElementById('view').dataset.renderedMs), dom_content_loaded: Math.round(n.domContentLoadedEventEnd), load: Math.round(n.loadEventEnd)};",
            json!([]),
        )?;
        println!(
            "{what}, run {run}: {rows} rows; rendered (WebDriver, incl. fetch) {} ms; {paint}",
            rendered.as_millis()
        );
    }
    Ok(())
}
