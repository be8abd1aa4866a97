//! `extension.toml`: what an extension directory declares about itself —
//! its id, version, component file, the capabilities an operator granted it,
//! and optional resource limits.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::capability::Capability;

/// The file every extension directory must hold.
pub const MANIFEST_FILE: &str = "extension.toml";

/// A parsed and validated `extension.toml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub id: String,
    pub version: String,
    /// Absolute path of the component file.
    pub component: PathBuf,
    pub capabilities: BTreeSet<Capability>,
    pub limits: LimitOverrides,
}

/// Per-extension limits; anything unset takes the host's default.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    pub memory_mib: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_concurrency: Option<u32>,
    pub queue_timeout_ms: Option<u64>,
    /// Disk quota of the `files` directory (all of it, not per file).
    pub files_mib: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    id: String,
    version: String,
    component: String,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    limits: LimitOverrides,
}

/// Why an `extension.toml` was refused. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid manifest: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: invalid {field}: {message}")]
    Field { path: PathBuf, field: &'static str, message: String },
}

impl crate::error::HasKind for ManifestError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            ManifestError::Read { .. } => crate::error::ErrorKind::NotFound,
            ManifestError::Syntax { .. } | ManifestError::Field { .. } => crate::error::ErrorKind::Invalid,
        }
    }
}

impl Manifest {
    /// Reads `<dir>/extension.toml`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ManifestError::Read { path: path.clone(), source })?;
        Manifest::parse(&text, dir, &path)
    }

    /// Parses manifest text; `dir` resolves the component path, `path` names
    /// the file in errors.
    pub fn parse(text: &str, dir: &Path, path: &Path) -> Result<Manifest, ManifestError> {
        let raw: RawManifest = toml::from_str(text)
            .map_err(|e| ManifestError::Syntax { path: path.to_owned(), message: e.message().to_owned() })?;
        let field = |field: &'static str, message: String| ManifestError::Field {
            path: path.to_owned(),
            field,
            message,
        };

        validate_id(&raw.id).map_err(|m| field("id", m))?;
        if raw.version.trim().is_empty() {
            return Err(field("version", "must not be empty".into()));
        }
        let component = Path::new(&raw.component);
        if raw.component.is_empty()
            || component.is_absolute()
            || component.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(field(
                "component",
                format!("`{}` must be a file name inside the extension directory", raw.component),
            ));
        }
        let mut capabilities = BTreeSet::new();
        for name in &raw.capabilities {
            let capability: Capability = name
                .parse()
                .map_err(|e: crate::capability::UnknownCapability| field("capabilities", e.to_string()))?;
            capabilities.insert(capability);
        }
        let limits = raw.limits;
        for (name, value) in [
            ("limits.memory_mib", limits.memory_mib),
            ("limits.cpu_ms", limits.cpu_ms),
            ("limits.timeout_ms", limits.timeout_ms),
            ("limits.queue_timeout_ms", limits.queue_timeout_ms),
            ("limits.files_mib", limits.files_mib),
            ("limits.max_concurrency", limits.max_concurrency.map(u64::from)),
        ] {
            if value == Some(0) {
                return Err(field("limits", format!("{name} must be greater than 0")));
            }
        }
        Ok(Manifest {
            id: raw.id,
            version: raw.version,
            component: dir.join(component),
            capabilities,
            limits,
        })
    }
}

/// Ids appear in URLs and index names: lower-case letters, digits and `-`,
/// starting with a letter, at most 64 characters.
fn validate_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!("`{id}` must be 1-64 characters of a-z, 0-9 and `-`, starting with a letter"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("/ext/hello"), Path::new("/ext/hello/extension.toml"))
    }

    #[test]
    fn reads_a_full_manifest() -> Result<(), ManifestError> {
        let m = parse(
            r#"
            id = "hello"
            version = "1.2.0"
            component = "hello.wasm"
            capabilities = ["cluster", "warden:extension/scheduler"]
            [limits]
            memory_mib = 32
            max_concurrency = 2
            files_mib = 5
            "#,
        )?;
        assert_eq!(m.id, "hello");
        assert_eq!(m.component, Path::new("/ext/hello/hello.wasm"));
        assert_eq!(m.capabilities, BTreeSet::from([Capability::Cluster, Capability::Scheduler]));
        assert_eq!(m.limits.memory_mib, Some(32));
        assert_eq!(m.limits.max_concurrency, Some(2));
        assert_eq!(m.limits.files_mib, Some(5));
        Ok(())
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let cases = [
            ("id = \"Hello\"\nversion = \"1\"\ncomponent = \"a.wasm\"", "invalid id"),
            ("id = \"a\"\nversion = \"1\"\ncomponent = \"../a.wasm\"", "invalid component"),
            (
                "id = \"a\"\nversion = \"1\"\ncomponent = \"a.wasm\"\ncapabilities = [\"telepathy\"]",
                "telepathy",
            ),
            ("id = \"a\"\nversion = \"1\"", "missing field `component`"),
            ("id = \"a\"\nversion = \"1\"\ncomponent = \"a.wasm\"\ncolour = 1", "unknown field `colour`"),
            ("id = \"a\"\nversion = \"1\"\ncomponent = \"a.wasm\"\n[limits]\ncpu_ms = 0", "limits.cpu_ms"),
            (
                "id = \"a\"\nversion = \"1\"\ncomponent = \"a.wasm\"\n[limits]\nfiles_mib = 0",
                "limits.files_mib",
            ),
            ("id = ", "not a valid manifest"),
        ];
        for (text, expected) in cases {
            match parse(text) {
                Ok(m) => panic!("accepted {text:?} as {m:?}"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(message.starts_with("/ext/hello/extension.toml: "), "{message}");
                    assert!(message.contains(expected), "{message} should mention {expected}");
                }
            }
        }
    }
}
