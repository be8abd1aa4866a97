#!/usr/bin/env bash
# Runs every check a submission must pass: formatting, clippy with warnings
# as errors, and the whole test suite (unit tests, guest builds, end-to-end
# tests against the real `warden` binary).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# Guest traps would capture backtraces for nothing.
unset RUST_BACKTRACE

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
