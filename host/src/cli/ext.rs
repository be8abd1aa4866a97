//! `warden ext install|approve|ls|show|check|rm`: the extension lifecycle of a
//! running server, over its REST API (`/_warden/extensions`), with the same
//! server URL and credentials as `warden jobs`. `install` reads
//! `extension.toml` and the component it names from a directory, sends
//! both (the component in base64), prints the pending record, then asks
//! "approve? [y/N]" at a terminal (`--yes` approves without asking; not at
//! a terminal and without `--yes`, it stays pending).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::manage::{Client, segment};
use warden_host::manifest::{MANIFEST_FILE, Manifest};

pub fn install(client: &Client, dir: &Path, yes: bool) -> anyhow::Result<()> {
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
    let record = client.send(Method::POST, "/_warden/extensions", Some(&body))?;
    print_record(&record);
    // The permission review, in plain words, before anyone approves.
    if let Some(review) = record["review_text"].as_str() {
        println!("\n{review}");
    }
    // What its routes and jobs would be denied once approved.
    if let Some(check) = record["check_text"].as_str() {
        println!("\n{check}");
    }
    let id = record["id"].as_str().unwrap_or(&manifest.id).to_owned();
    let approve = if yes {
        true
    } else if std::io::stdin().is_terminal() {
        print!("approve extension `{id}` with the permissions above? [y/N] ");
        std::io::stdout().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).context("cannot read the answer")?;
        matches!(answer.trim(), "y" | "Y" | "yes")
    } else {
        false
    };
    if approve {
        self::approve(client, &id)
    } else {
        println!("left pending; approve it with `warden ext approve {id}`");
        Ok(())
    }
}

pub fn approve(client: &Client, id: &str) -> anyhow::Result<()> {
    let record = client.send(Method::POST, &format!("/_warden/extensions/{}/_approve", segment(id)), None)?;
    print_record(&record);
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
