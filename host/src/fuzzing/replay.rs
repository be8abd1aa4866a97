//! The corpus replay: every committed input of every fuzz target
//! (`fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`) through its
//! check, on the stable toolchain, as part of the test command. A missing
//! corpus directory fails: an empty replay would pass silently.

use std::path::Path;

use super::TARGETS;

#[test]
fn every_corpus_and_regression_input_passes_its_check() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        let mut replayed = 0;
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(target);
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| format!("{}: {e} (every target keeps its {kind} here)", dir.display()))?;
            let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            // `.keep` holds an empty directory in git.
            let hidden = |f: &Path| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            for file in files.into_iter().filter(|f| f.is_file() && !hidden(f)) {
                let data = std::fs::read(&file)?;
                if std::panic::catch_unwind(|| check(&data)).is_err() {
                    failures.push(file.display().to_string());
                }
                if kind == "corpus" {
                    replayed += 1;
                }
            }
        }
        assert!(replayed > 0, "the corpus of `{target}` is empty: nothing would be replayed");
    }
    super::remove_scratch();
    assert!(failures.is_empty(), "inputs that fail their property:\n{}", failures.join("\n"));
    Ok(())
}
