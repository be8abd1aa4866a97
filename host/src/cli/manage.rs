//! Management commands of the `warden` binary that talk to a running
//! server over its REST API: `security import|export`, `user add|passwd|rm`,
//! `jobs list|show|enable|disable|run|rm|owner|runs`.
//! Credentials: `--user`/`WARDEN_USER`, password from `WARDEN_PASSWORD` or
//! a prompt. New passwords are read from `WARDEN_NEW_PASSWORD` or a prompt,
//! never from the command line (where `ps` would show them).

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use warden_host::security::config::{ACTION_GROUPS, INTERNAL_USERS, ROLES, ROLES_MAPPING};

const FILES: [&str; 4] = [INTERNAL_USERS, ROLES, ROLES_MAPPING, ACTION_GROUPS];

/// A logged-in client of one server.
pub struct Client {
    url: String,
    user: String,
    password: String,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn connect(url: &str, user: &str) -> anyhow::Result<Client> {
        let password = match std::env::var("WARDEN_PASSWORD") {
            Ok(p) => p,
            Err(_) => rpassword::prompt_password(format!("password for {user}: "))
                .context("cannot read the password")?,
        };
        Ok(Client {
            url: url.trim_end_matches('/').to_owned(),
            user: user.to_owned(),
            password,
            http: reqwest::blocking::Client::new(),
        })
    }

    pub(crate) fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .basic_auth(&self.user, Some(&self.password));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().with_context(|| format!("cannot reach {}", self.url))?;
        let status = response.status();
        let body: Value = response.json().unwrap_or(Value::Null);
        if !status.is_success() {
            let reason =
                body["message"].as_str().or(body["error"]["reason"].as_str()).unwrap_or("no details");
            bail!("{method} {path}: {status}: {reason}");
        }
        Ok(body)
    }
}

/// `value` as one URL path segment or query value: a user named `a/b`,
/// `x?y` or `../roles` stays that one name.
pub(crate) fn segment(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// New password: `WARDEN_NEW_PASSWORD`, or asked twice.
pub fn new_password(user: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("WARDEN_NEW_PASSWORD") {
        return Ok(p);
    }
    let first = rpassword::prompt_password(format!("new password for {user}: "))?;
    let second = rpassword::prompt_password("again: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

pub fn security_import(client: &Client, dir: &Path) -> anyhow::Result<()> {
    let mut files = serde_json::Map::new();
    for name in FILES {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                files.insert(name.to_owned(), Value::String(text));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    if files.is_empty() {
        bail!("{} holds none of {}", dir.display(), FILES.join(", "));
    }
    client.send(reqwest::Method::PUT, "/_warden/security/_import", Some(&Value::Object(files)))?;
    println!("imported {}", dir.display());
    Ok(())
}

pub fn security_export(client: &Client, dir: &Path) -> anyhow::Result<()> {
    let files = client.send(reqwest::Method::GET, "/_warden/security/_export", None)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for name in FILES {
        let text = files[name].as_str().with_context(|| format!("the server sent no {name}"))?;
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    println!("exported to {}", dir.display());
    Ok(())
}

pub fn user_add(
    client: &Client,
    name: &str,
    backend_roles: &[String],
    roles: &[String],
) -> anyhow::Result<()> {
    let password = new_password(name)?;
    let body =
        json!({ "password": password, "backend_roles": backend_roles, "opendistro_security_roles": roles });
    let answer = client.send(
        reqwest::Method::PUT,
        &format!("/_plugins/_security/api/internalusers/{}", segment(name)),
        Some(&body),
    )?;
    println!("{}", answer["message"].as_str().unwrap_or("done"));
    Ok(())
}

pub fn user_passwd(client: &Client, name: &str) -> anyhow::Result<()> {
    let password = new_password(name)?;
    let path = format!("/_plugins/_security/api/internalusers/{}", segment(name));
    let mut current = client.send(reqwest::Method::GET, &path, None)?[name].take();
    let Some(doc) = current.as_object_mut() else { bail!("no user `{name}`") };
    doc.insert("password".into(), Value::String(password));
    let answer = client.send(reqwest::Method::PUT, &path, Some(&current))?;
    println!("{}", answer["message"].as_str().unwrap_or("done"));
    Ok(())
}

pub fn user_rm(client: &Client, name: &str) -> anyhow::Result<()> {
    let answer = client.send(
        reqwest::Method::DELETE,
        &format!("/_plugins/_security/api/internalusers/{}", segment(name)),
        None,
    )?;
    println!("{}", answer["message"].as_str().unwrap_or("done"));
    Ok(())
}

/// What `warden jobs` does to one job.
#[derive(Debug, Clone, Copy)]
pub enum JobAction {
    Show,
    Enable,
    Disable,
    Run,
    Remove,
}

/// `warden jobs list`: one line per job the caller may see.
pub fn jobs_list(client: &Client, extension: Option<&str>, user: Option<&str>) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(extension) = extension {
        query.push(format!("extension={}", segment(extension)));
    }
    if let Some(user) = user {
        query.push(format!("user={}", segment(user)));
    }
    let path = format!("/_warden/jobs?{}", query.join("&"));
    let answer = client.send(reqwest::Method::GET, &path, None)?;
    let jobs = answer["jobs"].as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        println!("no jobs");
        return Ok(());
    }
    println!(
        "{:<32}  {:<12}  {:<20}  {:<12}  {:<18}  {:<24}  last run",
        "id", "extension", "name", "user", "schedule", "state / next run"
    );
    for job in &jobs {
        let state = match (&job["suspended"], job["enabled"].as_bool()) {
            (Value::String(_), _) => "suspended".to_owned(),
            (_, Some(false)) => "disabled".to_owned(),
            _ => job["next_run_at"].as_str().unwrap_or("never again").to_owned(),
        };
        let last = match &job["last_run"] {
            Value::Object(run) => format!(
                "{} (attempt {}): {}",
                run.get("status").and_then(Value::as_str).unwrap_or("?"),
                run.get("attempt").and_then(Value::as_u64).unwrap_or(0),
                run.get("message").and_then(Value::as_str).unwrap_or("")
            ),
            _ => "-".to_owned(),
        };
        println!(
            "{:<32}  {:<12}  {:<20}  {:<12}  {:<18}  {:<24}  {last}",
            job["id"].as_str().unwrap_or(""),
            job["extension"].as_str().unwrap_or(""),
            job["name"].as_str().unwrap_or(""),
            job["user"].as_str().unwrap_or(""),
            job["schedule"].to_string(),
            state,
        );
    }
    Ok(())
}

/// `warden jobs show|enable|disable|run|rm <id>`: prints the job after.
pub fn jobs_act(client: &Client, id: &str, action: JobAction) -> anyhow::Result<()> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("`{id}` is not a job id (hex, as `warden jobs list` shows)");
    }
    let (method, path) = match action {
        JobAction::Show => (reqwest::Method::GET, format!("/_warden/jobs/{}", segment(id))),
        JobAction::Enable => (reqwest::Method::POST, format!("/_warden/jobs/{}/_enable", segment(id))),
        JobAction::Disable => (reqwest::Method::POST, format!("/_warden/jobs/{}/_disable", segment(id))),
        JobAction::Run => (reqwest::Method::POST, format!("/_warden/jobs/{}/_run", segment(id))),
        JobAction::Remove => (reqwest::Method::DELETE, format!("/_warden/jobs/{}", segment(id))),
    };
    let answer = client.send(method, &path, None)?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// `warden jobs owner <id> <user>`: gives the job to another user.
pub fn jobs_owner(client: &Client, id: &str, user: &str) -> anyhow::Result<()> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("`{id}` is not a job id (hex, as `warden jobs list` shows)");
    }
    let answer = client.send(
        reqwest::Method::PUT,
        &format!("/_warden/jobs/{}/_owner", segment(id)),
        Some(&json!({ "user": user })),
    )?;
    println!("job {id} now runs as `{}`", answer["user"].as_str().unwrap_or(user));
    Ok(())
}

/// `warden jobs runs <id>`: the job's last runs, newest first, one line
/// each (or the answer as JSON).
pub fn jobs_runs(client: &Client, id: &str, as_json: bool) -> anyhow::Result<()> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("`{id}` is not a job id (hex, as `warden jobs list` shows)");
    }
    let answer = client.send(reqwest::Method::GET, &format!("/_warden/jobs/{}/runs", segment(id)), None)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let runs = answer["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        println!("no runs yet");
        return Ok(());
    }
    println!(
        "{:>5}  {:<24}  {:<24}  {:>9}  {:>9}  {:>7}  {:<8}  message",
        "seq", "scheduled", "started", "late ms", "took ms", "attempt", "outcome"
    );
    for run in &runs {
        println!(
            "{:>5}  {:<24}  {:<24}  {:>9}  {:>9}  {:>7}  {:<8}  {}",
            run["seq"].as_u64().unwrap_or(0),
            run["scheduled_at_iso"].as_str().unwrap_or(""),
            run["started_at_iso"].as_str().unwrap_or(""),
            run["lateness_ms"].as_u64().unwrap_or(0),
            run["duration_ms"].as_u64().unwrap_or(0),
            run["attempt"].as_u64().unwrap_or(0),
            run["outcome"].as_str().unwrap_or("?"),
            run["message"].as_str().unwrap_or(""),
        );
    }
    Ok(())
}
