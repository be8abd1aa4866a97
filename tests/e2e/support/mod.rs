//! Runs the real `warden` binary for end-to-end tests: on 127.0.0.1 with a
//! port the OS picks, in a temporary directory, stopped when dropped; and
//! the small helpers more than one area needs (credentials headers, the
//! security API's paths, the wall clock), kept here once.

pub mod probe;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type Error = Box<dyn std::error::Error>;
pub type TestResult = Result<(), Error>;

/// The admin password every test server starts with.
pub const ADMIN_PASSWORD: &str = "Test-Admin-Pass-1";

/// The security plugin's REST API (OpenSearch's path).
pub const API: &str = "/_plugins/_security/api";

/// OpenSearch's path for minting an on-behalf-of token.
pub const MINT: &str = "/_plugins/_security/api/generateonbehalfoftoken";

/// An `Authorization` header value for Basic credentials.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// An `Authorization` header value for a JWT or an OBO token.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// An `Authorization` header value for an API token.
pub fn api_key(token: &str) -> String {
    format!("ApiKey {token}")
}

/// Seconds since the Unix epoch (token claims).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Milliseconds since the Unix epoch (document timestamps, job schedules).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The `warden` binary under test.
/// The `warden` CLI with `args` against `server`, logged in as `who`,
/// stdin not a terminal: (success, stdout, stderr).
pub fn cli_as(server: &Server, who: (&str, &str), args: &[&str]) -> std::io::Result<(bool, String, String)> {
    let output = warden()
        .args(args)
        .env("WARDEN_URL", &server.base)
        .env("WARDEN_USER", who.0)
        .env("WARDEN_PASSWORD", who.1)
        .stdin(std::process::Stdio::null())
        .output()?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

pub fn warden() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    // Backtraces on every guest trap would only slow the tests down.
    command
        .env_remove("RUST_BACKTRACE")
        .env("WARDEN_LOG", "info,warden::guest=debug")
        .env("WARDEN_INITIAL_ADMIN_PASSWORD", ADMIN_PASSWORD);
    command
}

/// A directory of extensions plus a data directory, in a temp dir.
pub struct Deployment {
    root: tempfile::TempDir,
}

impl Deployment {
    pub fn new() -> std::io::Result<Deployment> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir_all(root.path().join("extensions"))?;
        Ok(Deployment { root })
    }

    pub fn extensions_dir(&self) -> PathBuf {
        self.root.path().join("extensions")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Installs `component` as extension `id` with this manifest tail
    /// (capabilities line, `[limits]` table...).
    pub fn install(&self, id: &str, component: &str, manifest_tail: &str) -> std::io::Result<PathBuf> {
        let dir = self.extensions_dir().join(id);
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(component, dir.join("component.wasm"))?;
        std::fs::write(
            dir.join("extension.toml"),
            format!("id = \"{id}\"\nversion = \"0.1.0\"\ncomponent = \"component.wasm\"\n{manifest_tail}\n"),
        )?;
        Ok(dir)
    }

    /// Installs a directory with arbitrary files (for malformed extensions).
    pub fn install_raw(&self, dir_name: &str, files: &[(&str, &[u8])]) -> std::io::Result<PathBuf> {
        let dir = self.extensions_dir().join(dir_name);
        std::fs::create_dir_all(&dir)?;
        for (name, content) in files {
            std::fs::write(dir.join(name), content)?;
        }
        Ok(dir)
    }

    pub fn start(&self) -> Result<Server, String> {
        Server::start(&self.extensions_dir(), &self.data_dir(), &[])
    }

    /// Starts with extra `warden serve` arguments.
    pub fn start_with(&self, args: &[&str]) -> Result<Server, String> {
        Server::start(&self.extensions_dir(), &self.data_dir(), args)
    }
}

/// A running `warden serve`.
pub struct Server {
    child: Child,
    pub base: String,
    log: Arc<Mutex<String>>,
    client: reqwest::blocking::Client,
}

impl Server {
    pub fn start(extensions_dir: &Path, data_dir: &Path, args: &[&str]) -> Result<Server, String> {
        Server::start_command(warden(), extensions_dir, data_dir, args)
    }

    /// Starts `command` (a [`warden`] command to adjust) as `serve`.
    pub fn start_command(
        mut command: Command,
        extensions_dir: &Path,
        data_dir: &Path,
        args: &[&str],
    ) -> Result<Server, String> {
        let mut child = command
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--extensions-dir")
            .arg(extensions_dir)
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start warden: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut log) = sink.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let mut server = Server { child, base: String::new(), log, client: reqwest::blocking::Client::new() };
        let marker = "warden listening on http://";
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let logs = server.logs();
            if let Some(at) = logs.find(marker) {
                let addr: String =
                    logs[at + marker.len()..].chars().take_while(|c| !c.is_whitespace()).collect();
                server.base = format!("http://{addr}");
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("warden exited with {status} before listening:\n{logs}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("warden did not start listening in time:\n{}", server.logs()))
    }

    pub fn logs(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the log contains `needle`: the server's stderr is read
    /// by another thread, so a line logged while answering may not be in
    /// [`Server::logs`] yet when the response arrives (and guest stdio is
    /// logged after the response is sent).
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET as `admin`.
    pub fn get(&self, path: &str) -> Result<Reply, reqwest::Error> {
        self.get_as("admin", ADMIN_PASSWORD, path)
    }

    pub fn get_as(&self, user: &str, password: &str, path: &str) -> Result<Reply, reqwest::Error> {
        let request = self.client.get(self.url(path)).basic_auth(user, Some(password));
        Reply::from(request.timeout(Duration::from_secs(60)).send()?)
    }

    /// GET with no credentials, or with a raw Authorization header.
    pub fn get_with_authorization(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self.client.get(self.url(path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        Reply::from(request.send()?)
    }

    /// Any method with a raw Authorization header (none: unauthenticated)
    /// and a JSON body (`Null`: none).
    pub fn send_with_authorization(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self.client.request(method, self.url(path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if !body.is_null() {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        Reply::from(request.timeout(Duration::from_secs(60)).send()?)
    }

    /// Any method with a JSON body as `user`.
    pub fn send_as(
        &self,
        user: &str,
        password: &str,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Reply, reqwest::Error> {
        let request = self.client.request(method, self.url(path)).basic_auth(user, Some(password));
        Reply::from(request.header("content-type", "application/json").body(body.to_string()).send()?)
    }

    /// `user` consents to `extension` running background work for them
    /// with all their permissions (`POST /_warden/consents`): registering
    /// a job needs it. The answer, whatever it is.
    pub fn consent(&self, user: &str, password: &str, extension: &str) -> Result<Reply, reqwest::Error> {
        let body = serde_json::json!({"extension": extension, "scopes": "all"});
        self.send_as(user, password, reqwest::Method::POST, "/_warden/consents", &body)
    }

    /// Any method with a JSON body as `admin`.
    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Reply, reqwest::Error> {
        self.send_as("admin", ADMIN_PASSWORD, method, path, body)
    }

    /// Any method as `admin`.
    pub fn request(&self, method: reqwest::Method, path: &str, body: &str) -> Result<Reply, reqwest::Error> {
        let request = self.client.request(method, self.url(path)).basic_auth("admin", Some(ADMIN_PASSWORD));
        Reply::from(request.body(body.to_owned()).send()?)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would: no shutdown code runs.
    pub fn kill_hard(&self) {
        let _ = Command::new("kill").args(["-9", &self.child.id().to_string()]).status();
    }

    /// Stops the server (SIGTERM-free: kill) and waits for it.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.logs()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, read fully.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    fn from(response: reqwest::blocking::Response) -> Result<Reply, reqwest::Error> {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text()?;
        Ok(Reply { status, headers, body })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `error.reason` of a Warden error body.
    pub fn reason(&self) -> String {
        self.json()["error"]["reason"].as_str().unwrap_or_default().to_owned()
    }

    /// The `message` of a security API answer.
    pub fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or_default().to_owned()
    }
}

impl Server {
    /// SIGTERM, as an orderly stop: waits (at most `within`) for the
    /// process to exit; its exit status and the whole log. An error if it
    /// is still running then (it is killed by the drop).
    pub fn terminate(mut self, within: Duration) -> Result<(std::process::ExitStatus, String), String> {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        if !sent.as_ref().is_ok_and(|s| s.success()) {
            return Err(format!("cannot send SIGTERM: {sent:?}"));
        }
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // The log reader ends with the pipe; give it a moment to catch up.
                    let reader_deadline = Instant::now() + Duration::from_secs(5);
                    while !self.logs().contains("warden stopped") && Instant::now() < reader_deadline {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    return Ok((status, self.logs()));
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => return Err(format!("still running {within:?} after SIGTERM:\n{}", self.logs())),
                Err(e) => return Err(format!("cannot wait for warden: {e}")),
            }
        }
    }

    /// The scheduler's part of `GET /_warden/health`.
    pub fn scheduler_health(&self) -> Result<serde_json::Value, reqwest::Error> {
        Ok(self.get("/_warden/health")?.json()["scheduler"].clone())
    }

    /// Waits until the job dispatcher has looked for due jobs `n` more
    /// times (`scheduler.ticks` in the health report).
    pub fn wait_for_ticks(&self, n: u64) -> Result<(), String> {
        let ticks = |server: &Server| -> Result<u64, String> {
            let health = server.scheduler_health().map_err(|e| e.to_string())?;
            health["ticks"].as_u64().ok_or_else(|| format!("no scheduler.ticks in {health}"))
        };
        let target = ticks(self)? + n;
        let deadline = Instant::now() + Duration::from_secs(60);
        while ticks(self)? < target {
            if Instant::now() > deadline {
                return Err(format!("the dispatcher did not tick {n} times in 60 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}
