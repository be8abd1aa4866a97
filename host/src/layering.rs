//! The layering rule, enforced: a lower layer never imports a higher one.
//!
//! Read from the source: every `crate::a::b`
//! path in a file (in `use` lines and inline) is an import of module `a::b`.
//! The rule is the one docs/architecture.md draws, from the ground up:
//!
//! | layer | may import from the crate |
//! |---|---|
//! | `metrics`, `time` | nothing |
//! | `store` | `metrics` (it counts its transactions) |
//! | `error` | `store` (to give its error a kind) |
//! | `capability`, `audit` | the vocabulary below them |
//! | `extensions::{manifest,actions,policy,review,delta}` (what an extension asks for) | `capability`, `security`, `error`, each other |
//! | `extensions::installed` (the store of installed extensions) | `store`, `error`, `time`, the manifest |
//! | `extensions::lifecycle` | anything below `api` |
//! | `extensions::check` (the missing-permission report, pure) | `security`, `error`, the pure half of `extensions` |
//! | `security` | `store`, `error`, `time`, `audit`, `metrics` |
//! | `cluster` | the above: never `runtime`, `scheduler` or `api` |
//! | `scheduler` | anything below `api`, but never the WIT bindings or the capabilities (domain types only) |
//! | `runtime` | anything below `api` (its capabilities call the domain services through their traits) |
//! | `api` | anything; it is the only module that imports axum |
//! | `fuzzing` (property checks for the fuzz targets; tests and the `fuzzing` feature only) | anything below `api` |
//!
//! A failure names the file, the line and the import, so the fix is plain.

use std::path::{Path, PathBuf};

/// What a layer may import: only the listed modules, or anything but them.
enum Rule {
    Only(&'static [&'static str]),
    Never(&'static [&'static str]),
}

/// What the pure half of `extensions` (what an extension asks for) may use.
const PURE_EXTENSIONS: &[&str] = &[
    "manifest",
    "capability",
    "security",
    "error",
    "extensions::actions",
    "extensions::manifest",
    "extensions::policy",
    "extensions::review",
    "extensions::delta",
];

const RULES: &[(&str, Rule)] = &[
    ("metrics", Rule::Only(&[])),
    ("store", Rule::Only(&["metrics"])),
    ("time", Rule::Only(&[])),
    ("error", Rule::Only(&["store"])),
    ("capability", Rule::Only(&["error"])),
    ("extensions::actions", Rule::Only(PURE_EXTENSIONS)),
    ("extensions::manifest", Rule::Only(PURE_EXTENSIONS)),
    ("extensions::policy", Rule::Only(PURE_EXTENSIONS)),
    ("extensions::review", Rule::Only(PURE_EXTENSIONS)),
    ("extensions::delta", Rule::Only(PURE_EXTENSIONS)),
    (
        "extensions::installed",
        Rule::Only(&["store", "error", "time", "manifest", "extensions::manifest", "extensions::delta"]),
    ),
    ("audit", Rule::Only(&["time", "error"])),
    ("security", Rule::Only(&["store", "error", "time", "audit", "metrics"])),
    ("cluster", Rule::Only(&["store", "error", "time", "audit", "security", "metrics"])),
    ("scheduler", Rule::Never(&["api", "cli", "config", "runtime::bindings", "runtime::capabilities"])),
    ("runtime", Rule::Never(&["api", "cli", "config"])),
    ("registry", Rule::Never(&["api", "cli", "config"])),
    ("extensions::check", Rule::Only(PURE_EXTENSIONS)),
    ("extensions::lifecycle", Rule::Never(&["api", "cli", "config"])),
    ("inspect", Rule::Never(&["api", "cli", "config"])),
    ("fuzzing", Rule::Never(&["api", "cli", "config"])),
];

impl Rule {
    fn allows(&self, imported: &str) -> bool {
        match self {
            Rule::Only(allowed) => allowed.iter().any(|a| is_in(imported, a)),
            Rule::Never(forbidden) => !forbidden.iter().any(|f| is_in(imported, f)),
        }
    }
}

fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|part| part != "mod")
        .collect();
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The `crate::...` paths a piece of code names, in a `use` (groups
/// expanded, nested ones too) or inline, each with the byte offset where it
/// starts.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut paths = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("crate::") {
        let at = from + found;
        let after = &code[at + "crate::".len()..];
        expand("", after, &mut |path| paths.push((at, path)));
        from = at + "crate::".len();
    }
    paths
}

/// Expands one use tree (`a::b`, `a::{b, c::{d}}`) after `prefix`.
fn expand(prefix: &str, tree: &str, out: &mut dyn FnMut(String)) {
    let head: String = tree.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
    let rest = &tree[head.len()..];
    let path = format!("{prefix}{head}");
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut item_start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand_item(&path, &group[item_start..i], out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_item(&path, &group[item_start..i], out);
                    item_start = i + 1;
                }
                _ => {}
            }
        }
    } else {
        out(path.trim_end_matches(':').to_owned());
    }
}

fn expand_item(prefix: &str, item: &str, out: &mut dyn FnMut(String)) {
    let item = item.trim();
    if !item.is_empty() && item != "self" {
        expand(prefix, item, out);
    } else if item == "self" {
        out(prefix.trim_end_matches(':').to_owned());
    }
}

fn is_in(module: &str, prefix: &str) -> bool {
    module == prefix || module.starts_with(&format!("{prefix}::"))
}

/// The code outside the `#[cfg(test)]` module (tests may reach across),
/// with `//` comments blanked so a doc that names a module is not an import.
fn code_of(text: &str) -> String {
    let cut = text.find("#[cfg(test)]\nmod ").unwrap_or(text.len());
    text[..cut]
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn lower_layers_never_import_higher_ones() -> Result<(), Box<dyn std::error::Error>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files)?;
    assert!(files.len() > 40, "the source tree was not found under {}", src.display());
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let module = module_of(&src, file);
        if module == "layering" {
            continue; // this file names the paths it looks for
        }
        let code = code_of(&std::fs::read_to_string(file)?);
        let line_of = |at: usize| code[..at].matches('\n').count() + 1;
        if let Some(at) = code.find("axum::").filter(|_| !is_in(&module, "api")) {
            problems.push(format!("{}:{}: only `api` imports axum", file.display(), line_of(at)));
        }
        for (at, imported) in crate_paths(&code) {
            checked += 1;
            let own = |layer: &str| is_in(&module, layer) && is_in(&imported, layer);
            for (layer, rule) in RULES {
                if is_in(&module, layer) && !own(layer) && !rule.allows(&imported) {
                    problems.push(format!(
                        "{}:{}: `{module}` (layer `{layer}`) imports `crate::{imported}`, which it may not",
                        file.display(),
                        line_of(at)
                    ));
                }
            }
        }
    }
    assert!(checked > 100, "too few imports were read ({checked}): is the parser broken?");
    assert!(problems.is_empty(), "layering violations:\n{}", problems.join("\n"));
    Ok(())
}

#[test]
fn the_reader_sees_grouped_and_inline_imports() {
    let paths = |code: &str| crate_paths(code).into_iter().map(|(_, p)| p).collect::<Vec<_>>();
    assert_eq!(paths("use crate::{store::Store, error::ErrorKind};"), ["store::Store", "error::ErrorKind"]);
    assert_eq!(
        paths("use crate::{\n    runtime::{bindings::types, state},\n    time,\n};"),
        ["runtime::bindings::types", "runtime::state", "time"]
    );
    assert_eq!(paths("    let x = crate::api::router(state);"), ["api::router"]);
    assert_eq!(code_of("use a; // crate::api::x\nfn f() {}"), "use a; \nfn f() {}");
    assert!(is_in("cluster::embedded::search", "cluster"));
    assert!(!is_in("apis", "api"));
    // The rules themselves: a store importing anything, a domain service
    // importing the WIT bindings, are refused; the allowed imports pass.
    let rule = |layer: &str| RULES.iter().find(|(l, _)| *l == layer).map(|(_, r)| r);
    assert!(rule("store").is_some_and(|r| !r.allows("error")));
    assert!(rule("scheduler").is_some_and(|r| !r.allows("runtime::bindings::types")));
    assert!(rule("scheduler").is_some_and(|r| r.allows("runtime::session")));
    assert!(rule("cluster").is_some_and(|r| !r.allows("runtime::capabilities::cluster")));
    assert!(rule("security").is_some_and(|r| r.allows("store::Store") && !r.allows("cluster::gateway")));
}
