//! `warden inspect`: imports grouped by capability, exports, and clear
//! errors for files that are not components.

use warden_test_artifacts::{GUEST_HOST_CALLS, HELLO_WORLD};

use crate::support::{TestResult, warden};

fn inspect(args: &[&str]) -> Result<(bool, String, String), std::io::Error> {
    let output = warden().arg("inspect").args(args).output()?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// The lines listed under the `  <name>` heading of the imports.
fn section(out: &str, name: &str) -> Result<String, String> {
    let heading = format!("\n  {name} ");
    let at = out.find(&heading).ok_or_else(|| format!("no {name} section: {out}"))?;
    let lines = out[at + 1..].lines().skip(1).take_while(|line| line.starts_with("    "));
    Ok(lines.collect::<Vec<_>>().join("\n"))
}

#[test]
fn groups_imports_by_capability() -> TestResult {
    let (ok, out, err) = inspect(&[GUEST_HOST_CALLS])?;
    assert!(ok, "{err}");
    assert!(out.contains("warden:extension/http-handler@0.1.0  <- serves REST routes"), "{out}");
    assert!(out.contains("  cluster (needs a grant):\n    warden:extension/cluster@0.1.0"), "{out}");
    assert!(out.contains("  scheduler (needs a grant):\n    warden:extension/scheduler@0.1.0"), "{out}");
    // Everything is grouped: the always-available imports under baseline,
    // and no `unknown` section.
    let baseline = section(&out, "baseline")?;
    assert!(baseline.contains("warden:extension/types@0.1.0"), "types under baseline: {out}");
    assert!(baseline.contains("wasi:cli/stdout@0.2.6"), "stdout under baseline: {out}");
    assert!(!out.contains("unknown"), "no `unknown` section: {out}");
    assert!(out.contains(r#"extension.toml needs: capabilities = ["cluster", "scheduler"]"#), "{out}");

    // hello-world logs: the log import is listed under baseline.
    let (ok, out, err) = inspect(&[HELLO_WORLD])?;
    assert!(ok, "{err}");
    assert!(section(&out, "baseline")?.contains("warden:extension/log@0.1.0"), "log under baseline: {out}");
    assert!(!out.contains("unknown"), "no `unknown` section: {out}");

    let (ok, out, err) = inspect(&[HELLO_WORLD, "--json"])?;
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(report["required_capabilities"], serde_json::json!([]));
    let baseline = report["imports"]["baseline"].as_array().cloned().unwrap_or_default();
    assert!(baseline.iter().any(|i| i == "warden:extension/log@0.1.0"), "{report:#}");
    assert!(report["imports"].get("unknown").is_none(), "{report:#}");
    Ok(())
}

#[test]
fn refuses_what_is_not_a_component() -> TestResult {
    let dir = tempfile::tempdir()?;
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, "not wasm at all")?;
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0")?;
    for (file, expected) in
        [(&junk, "not a WebAssembly file"), (&core, "a core WebAssembly module, not a component")]
    {
        let (ok, _, err) = inspect(&[&file.display().to_string()])?;
        assert!(!ok);
        assert!(err.contains(&format!("error: {}: {expected}", file.display())), "{err}");
        assert!(!err.contains("Stack backtrace"), "{err}");
    }
    Ok(())
}
