//! `manifest`: `extension.toml` as an extension's author (anyone) writes it.
//!
//! Properties: a manifest that parses, written back as TOML, reparses to
//! the same manifest; and it grants nothing it does not declare: its
//! capabilities are exactly those listed, its policy is the one written,
//! every predefined role is `<id>_…` and holds only this extension's own
//! permissions, every route's permission is `extension:<id>/<first
//! segment>`.

use std::collections::BTreeSet;
use std::path::Path;

use crate::capability::Capability;
use crate::manifest::{Manifest, Policy};
use crate::security::permissions::{consent_permission, route_permission};

const DIR: &str = "/ext/fuzz";

pub fn check_manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new(DIR).join("extension.toml");
    let Ok(manifest) = Manifest::parse(text, Path::new(DIR), &path) else { return };
    grants_only_what_it_declares(text, &manifest);
    let written = write(&manifest);
    let again = match Manifest::parse(&written, Path::new(DIR), &path) {
        Ok(again) => again,
        Err(e) => panic!("a manifest written back does not parse: {e}\n{written}"),
    };
    assert_eq!(fields(&again), fields(&manifest), "written back:\n{written}");
}

/// Everything a manifest says, comparable.
fn fields(m: &Manifest) -> String {
    format!(
        "{:?}",
        (
            &m.id,
            &m.name,
            &m.version,
            &m.description,
            &m.component,
            &m.capabilities,
            &m.limits,
            &m.policy,
            &m.roles,
            &m.routes,
            &m.jobs,
        )
    )
}

/// The manifest as `extension.toml` text.
fn write(m: &Manifest) -> String {
    let mut table = toml::Table::new();
    table.insert("id".into(), m.id.clone().into());
    if let Some(name) = &m.name {
        table.insert("name".into(), name.clone().into());
    }
    table.insert("version".into(), m.version.clone().into());
    if let Some(description) = &m.description {
        table.insert("description".into(), description.clone().into());
    }
    let component = m.component.strip_prefix(DIR).unwrap_or(&m.component);
    table.insert("component".into(), component.to_string_lossy().into_owned().into());
    let capabilities: Vec<toml::Value> = m.capabilities.iter().map(|c| c.name().into()).collect();
    table.insert("capabilities".into(), capabilities.into());
    table.insert("limits".into(), value(&m.limits));
    table.insert("policy".into(), value(&m.policy));
    table.insert("roles".into(), value(&m.roles));
    table.insert("routes".into(), value(&m.routes));
    table.insert("jobs".into(), value(&m.jobs));
    match toml::to_string(&table) {
        Ok(text) => text,
        Err(e) => panic!("a parsed manifest does not serialise: {e}"),
    }
}

/// A manifest part as TOML (every part is plain data: it always serialises).
fn value<T: serde::Serialize>(part: &T) -> toml::Value {
    match toml::Value::try_from(part) {
        Ok(v) => v,
        Err(e) => panic!("a manifest part does not serialise: {e}"),
    }
}

fn grants_only_what_it_declares(text: &str, m: &Manifest) {
    let Ok(raw) = toml::from_str::<toml::Table>(text) else { panic!("parsed, but is not a TOML table") };
    let declared: BTreeSet<Capability> = raw
        .get("capabilities")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str()?.parse().ok())
        .collect();
    assert_eq!(m.capabilities, declared, "capabilities beyond those declared");
    let policy: Policy = match raw.get("policy") {
        Some(p) => match p.clone().try_into() {
            Ok(p) => p,
            Err(e) => panic!("parsed, but its policy does not read alone: {e}"),
        },
        None => Policy::default(),
    };
    assert_eq!(m.policy, policy, "a policy other than the one written");
    let own_all = format!("extension:{}/*", m.id);
    let consent = consent_permission(&m.id);
    let route_permissions: BTreeSet<String> = m.routes.iter().map(|r| r.permission.clone()).collect();
    for route in &m.routes {
        assert_eq!(route.permission, route_permission(&m.id, &route.path), "route {}", route.path);
        assert!(route.permission.starts_with(&format!("extension:{}/", m.id)), "{}", route.permission);
    }
    for role in &m.roles {
        assert!(role.name.starts_with(&format!("{}_", m.id)), "role `{}` outside the extension", role.name);
        assert!(!crate::extensions::policy::reserved_role(&role.name), "built-in role `{}`", role.name);
        for permission in &role.extension_permissions {
            assert!(
                *permission == own_all || *permission == consent || route_permissions.contains(permission),
                "role `{}` grants `{permission}`, not this extension's",
                role.name
            );
        }
    }
}
