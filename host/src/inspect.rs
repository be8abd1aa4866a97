//! `warden inspect`: what a component imports, grouped by the capability
//! each import needs, and what it exports — what an author checks before
//! shipping and an operator before granting.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use wasmtime::component::types::ComponentItem;

use crate::capability::{Capability, ImportClass};
use crate::runtime::capabilities::classify_import;
use crate::runtime::{Runtime, RuntimeError};

/// The inspection of one component.
#[derive(Debug, Serialize)]
pub struct Report {
    pub file: String,
    pub size_bytes: u64,
    /// Group (`baseline`, `cluster`, `scheduler`, `files`, `network`,
    /// `unknown`) → import names.
    pub imports: BTreeMap<&'static str, Vec<String>>,
    pub exports: Vec<String>,
    /// Capabilities to grant in `extension.toml` for it to load.
    pub required_capabilities: Vec<&'static str>,
    /// Imports no grant can satisfy; the component will not load.
    pub unsatisfiable: Vec<String>,
}

pub fn inspect(runtime: &Runtime, file: &Path) -> Result<Report, RuntimeError> {
    let (component, _) = runtime.load_component(file)?;
    let size_bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let ty = component.component_type();
    let mut imports: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut required = Vec::new();
    let mut unsatisfiable = Vec::new();
    for (name, _) in ty.imports(runtime.engine()) {
        let class = classify_import(name);
        imports.entry(class.group()).or_default().push(name.to_owned());
        match class {
            ImportClass::Needs(Capability::Network) | ImportClass::Unknown => {
                unsatisfiable.push(name.to_owned())
            }
            ImportClass::Needs(c) if !required.contains(&c.name()) => required.push(c.name()),
            _ => {}
        }
    }
    let exports = ty
        .exports(runtime.engine())
        .map(|(name, item)| match item.ty {
            ComponentItem::ComponentInstance(_) => name.to_owned(),
            _ => format!("{name} (not an interface)"),
        })
        .collect();
    required.sort_unstable();
    Ok(Report {
        file: file.display().to_string(),
        size_bytes,
        imports,
        exports,
        required_capabilities: required,
        unsatisfiable,
    })
}

impl Report {
    /// The human-readable form `warden inspect` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} ({} bytes)", self.file, self.size_bytes);
        let _ = writeln!(out, "\nexports:");
        if self.exports.is_empty() {
            let _ = writeln!(out, "  (nothing) - Warden cannot call this component");
        }
        for export in &self.exports {
            let role = match export.split('@').next() {
                Some("warden:extension/http-handler") => "  <- serves REST routes",
                Some("warden:extension/job-runner") => "  <- runs scheduled jobs",
                _ => "",
            };
            let _ = writeln!(out, "  {export}{role}");
        }
        let _ = writeln!(out, "\nimports by capability:");
        for group in ["baseline", "files", "cluster", "scheduler", "network", "unknown"] {
            let Some(names) = self.imports.get(group) else { continue };
            let note = match group {
                "baseline" => "always available",
                "files" => "linked with no directory unless `files` is granted",
                "cluster" | "scheduler" => "needs a grant",
                "network" => "not provided by this host",
                _ => "not provided by Warden; the component will not load",
            };
            let _ = writeln!(out, "  {group} ({note}):");
            for name in names {
                let _ = writeln!(out, "    {name}");
            }
        }
        let grant =
            self.required_capabilities.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(out, "\nextension.toml needs: capabilities = [{grant}]");
        if !self.unsatisfiable.is_empty() {
            let _ = writeln!(out, "will not load: {} cannot be granted", self.unsatisfiable.join(", "));
        }
        out
    }
}
