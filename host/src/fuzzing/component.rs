//! `component`: the bytes of an extension's component (anyone's) and the
//! capabilities its manifest asks for (the first byte, a bit per
//! capability), through the whole load: header, compile, import check,
//! linking, exports.
//!
//! Properties: what loads imports nothing outside the interfaces Warden
//! provides, and nothing needing a capability the manifest did not ask
//! for (nor `network`, which no host provides yet); what does not compile
//! never loads; a compiled component's imports and their classification
//! are the same on a second compile.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use crate::capability::{Capability, ImportClass};
use crate::manifest::Manifest;
use crate::runtime::capabilities::classify_import;
use crate::runtime::{LoadedExtension, Runtime, RuntimeConfig};

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        // A small pool: one extension at a time is loaded here.
        let config = RuntimeConfig { max_instances: 8, ..RuntimeConfig::default() };
        match Runtime::new(config) {
            Ok(runtime) => runtime,
            Err(e) => panic!("no engine: {e}"),
        }
    })
}

fn manifest(grants: &BTreeSet<Capability>) -> Manifest {
    let capabilities: Vec<String> = grants.iter().map(|c| format!("\"{}\"", c.name())).collect();
    let text = format!(
        "id = \"fuzz\"\nversion = \"1\"\ncomponent = \"fuzz.wasm\"\ncapabilities = [{}]\n[limits]\nmax_concurrency = 1\n",
        capabilities.join(", ")
    );
    let dir = Path::new("/ext/fuzz");
    match Manifest::parse(&text, dir, &dir.join("extension.toml")) {
        Ok(m) => m,
        Err(e) => panic!("the fixed manifest does not parse: {e}"),
    }
}

/// Each import's name and class.
fn imports(runtime: &Runtime, bytes: &[u8]) -> Option<Vec<(String, ImportClass)>> {
    let (component, _) = runtime.load_component_bytes(Path::new("fuzz.wasm"), bytes).ok()?;
    Some(
        component
            .component_type()
            .imports(runtime.engine())
            .map(|(name, _)| (name.to_owned(), classify_import(name)))
            .collect(),
    )
}

pub fn check_component(data: &[u8]) {
    let Some((&mask, bytes)) = data.split_first() else { return };
    let grants: BTreeSet<Capability> = Capability::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, c)| c)
        .collect();
    let runtime = runtime();
    let data_dir = super::scratch_dir("component");
    let loaded = LoadedExtension::from_bytes(runtime, manifest(&grants), bytes, &data_dir).is_ok();
    let Some(first) = imports(runtime, bytes) else {
        assert!(!loaded, "loaded, but does not compile");
        return;
    };
    assert_eq!(imports(runtime, bytes).as_ref(), Some(&first), "a second compile reads other imports");
    for (name, class) in &first {
        assert_eq!(classify_import(name), *class, "`{name}` classified two ways");
    }
    if !loaded {
        return;
    }
    for (name, class) in &first {
        match class {
            ImportClass::Baseline | ImportClass::Filesystem => {}
            ImportClass::Needs(Capability::Network) => panic!("loaded importing `{name}` (network)"),
            ImportClass::Needs(c) => assert!(grants.contains(c), "loaded importing `{name}` without `{c}`"),
            ImportClass::Unknown => panic!("loaded importing `{name}`, which Warden does not provide"),
        }
    }
}
