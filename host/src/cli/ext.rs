//! `warden ext install|diff|approve|discard|ls|show|check|rm`: the extension
//! lifecycle of a running server, over its REST API (`/_warden/extensions`),
//! with the same server URL and credentials as `warden jobs`. `install`
//! reads `extension.toml` and the component it names from a directory,
//! sends both (the component in base64), prints the pending record and its
//! review (or, for an upgrade, the permission delta), then asks "approve?
//! [y/N]" at a terminal (`--yes` approves without asking; not at a terminal
//! and without `--yes`, it stays waiting). An upgrade that only narrows
//! applies without asking. `diff` shows the delta and installs nothing.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::manage::{Client, segment};
use warden_host::manifest::{MANIFEST_FILE, Manifest};

/// The install body of the extension in `dir`: its manifest's text and its
/// component in base64; and its id.
fn install_body(dir: &Path) -> anyhow::Result<(Value, String)> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    // Parsed here only to find the component; the server checks it all.
    let manifest = Manifest::parse(&text, dir, &manifest_path)?;
    let component = std::fs::read(&manifest.component)
        .with_context(|| format!("cannot read {}", manifest.component.display()))?;
    let body = json!({
        "manifest": text,
        "component": base64::engine::general_purpose::STANDARD.encode(&component),
    });
    Ok((body, manifest.id))
}

pub fn install(client: &Client, dir: &Path, yes: bool) -> anyhow::Result<()> {
    let (body, id) = install_body(dir)?;
    let record = client.send(Method::POST, "/_warden/extensions", Some(&body))?;
    print_record(&record);
    let id = record["id"].as_str().unwrap_or(&id).to_owned();
    if let Some(upgraded) = record.get("upgraded") {
        // Only narrowed: applied, nothing to approve.
        if let Some(delta) = upgraded["delta_text"].as_str() {
            println!("\n{delta}");
        }
        println!(
            "upgraded from version {} to {}: serving",
            upgraded["from"].as_str().unwrap_or("?"),
            record["version"].as_str().unwrap_or("?")
        );
        return Ok(());
    }
    let question = match record.get("upgrade").filter(|u| !u.is_null()) {
        // Widens: the old version serves until the delta is approved.
        Some(upgrade) => {
            if let Some(delta) = upgrade["delta_text"].as_str() {
                println!("\n{delta}");
            }
            format!(
                "upgrade extension `{id}` from version {} to {} with the changes above?",
                record["version"].as_str().unwrap_or("?"),
                upgrade["version"].as_str().unwrap_or("?")
            )
        }
        None => {
            // The permission review, in plain words, before anyone approves.
            if let Some(review) = record["review_text"].as_str() {
                println!("\n{review}");
            }
            // What its routes and jobs would be denied once approved.
            if let Some(check) = record["check_text"].as_str() {
                println!("\n{check}");
            }
            format!("approve extension `{id}` with the permissions above?")
        }
    };
    // Approve what was shown, not whatever waits by the time of the answer.
    let digest = record["review_digest"].as_str().map(str::to_owned);
    if yes || ask(&question)? {
        approve_reviewed(client, &id, digest.as_deref())
    } else {
        println!("left waiting; approve it with `warden ext approve {id}`");
        Ok(())
    }
}

/// Asks `question` at a terminal; not at a terminal, the answer is no.
fn ask(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).context("cannot read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `warden ext diff <dir>`: the permission delta installing would bring.
pub fn diff(client: &Client, dir: &Path) -> anyhow::Result<()> {
    let (body, _) = install_body(dir)?;
    let answer = client.send(Method::POST, "/_warden/extensions/_diff", Some(&body))?;
    let installed = answer["installed_version"].as_str().unwrap_or("none (not installed)");
    println!(
        "extension `{}`: installed version {installed}, new version {}",
        answer["id"].as_str().unwrap_or("?"),
        answer["version"].as_str().unwrap_or("?")
    );
    print!("{}", answer["delta_text"].as_str().unwrap_or(""));
    Ok(())
}

/// Approves `id`, only if what waits still has review digest `digest`
/// (when given).
pub fn approve_reviewed(client: &Client, id: &str, digest: Option<&str>) -> anyhow::Result<()> {
    let query = digest.map(|d| format!("?digest={}", segment(d))).unwrap_or_default();
    let record =
        client.send(Method::POST, &format!("/_warden/extensions/{}/_approve{query}", segment(id)), None)?;
    print_record(&record);
    Ok(())
}

/// `warden ext discard <id>`: refuses the upgrade waiting for approval.
pub fn discard(client: &Client, id: &str) -> anyhow::Result<()> {
    let record =
        client.send(Method::DELETE, &format!("/_warden/extensions/{}/upgrade", segment(id)), None)?;
    println!(
        "discarded version {}; version {} serves",
        record["discarded_version"].as_str().unwrap_or("?"),
        record["version"].as_str().unwrap_or("?")
    );
    Ok(())
}

pub fn list(client: &Client) -> anyhow::Result<()> {
    let answer = client.send(Method::GET, "/_warden/extensions", None)?;
    let Some(extensions) = answer["extensions"].as_array() else { bail!("the server sent no list") };
    if extensions.is_empty() {
        println!("no installed extensions");
    }
    for e in extensions {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            e["id"].as_str().unwrap_or("?"),
            e["version"].as_str().unwrap_or("?"),
            e["state"].as_str().unwrap_or("?"),
            if e["serving"].as_bool() == Some(true) { "serving" } else { "not serving" },
            e["component_sha256"].as_str().unwrap_or("?"),
        );
    }
    Ok(())
}

pub fn show(client: &Client, id: &str) -> anyhow::Result<()> {
    let record = client.send(Method::GET, &format!("/_warden/extensions/{}", segment(id)), None)?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(())
}

/// `warden ext check <id>`: the missing-permission report in plain words.
pub fn check(client: &Client, id: &str) -> anyhow::Result<()> {
    let answer = client.send(Method::GET, &format!("/_warden/extensions/{}/_check", segment(id)), None)?;
    match answer["report_text"].as_str() {
        Some(text) => print!("{text}"),
        None => println!("{}", serde_json::to_string_pretty(&answer)?),
    }
    Ok(())
}

pub fn remove(client: &Client, id: &str, purge: bool) -> anyhow::Result<()> {
    let query = if purge { "?purge=true" } else { "" };
    let answer = client.send(Method::DELETE, &format!("/_warden/extensions/{}{query}", segment(id)), None)?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

fn print_record(record: &Value) {
    println!(
        "extension `{}` version {}: {}\n  capabilities: {}\n  component sha256: {} ({} bytes)",
        record["id"].as_str().unwrap_or("?"),
        record["version"].as_str().unwrap_or("?"),
        record["state"].as_str().unwrap_or("?"),
        record["capabilities"],
        record["component_sha256"].as_str().unwrap_or("?"),
        record["component_bytes"],
    );
}
