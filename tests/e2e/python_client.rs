//! The real `opensearch-py` client (PyPI; scripts/setup.sh installs it)
//! against a running warden: create index, index, get, bulk, search with a
//! bool query and aggregations, delete — with Basic auth and an API token;
//! and the document API (create conflicts, versions, upserts, mget, msearch,
//! helpers.bulk with a failing item, helpers.scan and search_after paging).

use crate::support::{ADMIN_PASSWORD, Deployment, TestResult};

#[test]
fn opensearch_py_works_against_warden() -> TestResult {
    let probe = std::process::Command::new("python3").args(["-c", "import opensearchpy"]).output()?;
    assert!(
        probe.status.success(),
        "opensearch-py is missing: run scripts/setup.sh ({})",
        String::from_utf8_lossy(&probe.stderr)
    );
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/opensearch_py_client.py");
    // The script's checks raise explicitly, and `-O` must not be able to
    // turn anything off either.
    let output = std::process::Command::new("python3")
        .env_remove("PYTHONOPTIMIZE")
        .arg(script)
        .args([&server.base, "admin", ADMIN_PASSWORD])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "opensearch-py scenario failed:\n{stdout}\n{stderr}\n{}", server.logs());
    assert!(stdout.contains("basic auth: ok") && stdout.contains("api token: ok"), "{stdout}");
    Ok(())
}

/// opensearch-py's document calls (`create`, versions, `update` with
/// upserts, `get_source`, `exists`, `mget`, `msearch`, `helpers.bulk`
/// with a failing item, `helpers.scan` over the scroll API, `search_after`
/// paging) get OpenSearch's answers and exceptions.
#[test]
fn opensearch_py_document_api() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/opensearch_py_documents.py");
    let output = std::process::Command::new("python3")
        .env_remove("PYTHONOPTIMIZE")
        .arg(script)
        .args([&server.base, "admin", ADMIN_PASSWORD])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "opensearch-py documents failed:\n{stdout}\n{stderr}\n{}",
        server.logs()
    );
    assert!(stdout.contains("documents: ok"), "{stdout}");
    Ok(())
}
