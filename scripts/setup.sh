#!/usr/bin/env bash
# Installs what building Warden and its guests needs, if missing:
# the Rust toolchain's wasm32-wasip2 target (guests build straight to components).
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi

if rustc --print target-libdir --target wasm32-wasip2 >/dev/null 2>&1 \
    && [ -d "$(rustc --print target-libdir --target wasm32-wasip2)" ]; then
    echo "setup: wasm32-wasip2 target present"
elif command -v rustup >/dev/null 2>&1; then
    echo "setup: installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
else
    echo "setup: the wasm32-wasip2 target is missing and rustup is not available to install it" >&2
    exit 1
fi

# The end-to-end suite drives warden with the real opensearch-py client.
if ! python3 -c "import opensearchpy" >/dev/null 2>&1; then
    echo "setup: installing opensearch-py (PyPI) for the client tests"
    python3 -m pip install --quiet --disable-pip-version-check opensearch-py \
        || { echo "setup: cannot install opensearch-py" >&2; exit 1; }
fi

# The console's end-to-end tests drive a real headless Chromium through
# chromedriver (Debian's `chromium` and `chromium-driver`).
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "setup: chromium and chromedriver present"
elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing chromium and chromium-driver for the console tests"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
        || { echo "setup: cannot install chromium and chromium-driver" >&2; exit 1; }
else
    echo "setup: chromium and chromedriver are missing; install Debian's chromium and chromium-driver as root" >&2
    exit 1
fi
