//! `warden consent grant|ls|revoke`: a user's consents to extensions'
//! background work on a running server, over `/_warden/consents`, with the
//! same server URL and credentials as `warden jobs`. `grant` takes the
//! scopes as JSON (`--scopes '{"index_permissions": [..]}'`) or `--all`.

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::manage::{Client, segment};

pub fn grant(client: &Client, extension: &str, scopes: Option<&str>, all: bool) -> anyhow::Result<()> {
    let scopes: Value = match (scopes, all) {
        (Some(_), true) => bail!("give --scopes or --all, not both"),
        (None, false) => {
            bail!("give the scopes: --scopes '<json>' (cluster_permissions, index_permissions) or --all")
        }
        (None, true) => json!("all"),
        (Some(text), false) => serde_json::from_str(text).context("--scopes is not JSON")?,
    };
    let answer = client.send(
        Method::POST,
        "/_warden/consents",
        Some(&json!({"extension": extension, "scopes": scopes})),
    )?;
    println!(
        "consented to `{extension}` (consent {}), scopes {}",
        answer["id"].as_str().unwrap_or("?"),
        answer["consent"]["scopes"]
    );
    Ok(())
}

pub fn list(client: &Client, user: Option<&str>, extension: Option<&str>) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(user) = user {
        query.push(format!("user={}", segment(user)));
    }
    if let Some(extension) = extension {
        query.push(format!("extension={}", segment(extension)));
    }
    let answer = client.send(Method::GET, &format!("/_warden/consents?{}", query.join("&")), None)?;
    let consents = answer["consents"].as_array().cloned().unwrap_or_default();
    if consents.is_empty() {
        println!("no consents");
    }
    for c in &consents {
        let state = if c["live"] == true {
            "live"
        } else if c["revoked_at"].is_number() {
            "revoked"
        } else {
            "expired"
        };
        println!(
            "{}\t{}\t{}\t{}\t{}",
            c["id"].as_str().unwrap_or("?"),
            c["user"].as_str().unwrap_or("?"),
            c["extension"].as_str().unwrap_or("?"),
            state,
            c["scopes"]
        );
    }
    Ok(())
}

pub fn revoke(client: &Client, id: &str) -> anyhow::Result<()> {
    let answer = client.send(Method::DELETE, &format!("/_warden/consents/{}", segment(id)), None)?;
    println!("revoked consent {id}; jobs suspended: {}", answer["suspended_jobs"]);
    Ok(())
}
