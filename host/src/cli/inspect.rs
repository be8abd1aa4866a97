//! `warden inspect <file> [--json]`: what a component imports (grouped by
//! the capability each import needs) and exports.

use warden_host::runtime::{Runtime, RuntimeConfig};

pub fn run(file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    // A small engine: inspection instantiates nothing.
    let runtime = Runtime::new(RuntimeConfig { max_instances: 1, ..RuntimeConfig::default() })?;
    let report = warden_host::inspect::inspect(&runtime, file)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}
