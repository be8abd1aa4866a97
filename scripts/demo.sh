#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, builds Warden and
# the example guests, installs hello-world into ./extensions and serves it on
# 127.0.0.1:9200 (override with WARDEN_LISTEN).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
unset RUST_BACKTRACE

echo "building warden and the example guests..."
cargo build --release --locked -p warden-host
cargo build --release --locked --target wasm32-wasip2 --target-dir target/guests -p hello-world

mkdir -p extensions/hello
cp target/guests/wasm32-wasip2/release/hello_world.wasm extensions/hello/hello-world.wasm
cp examples/hello-world/extension.toml extensions/hello/extension.toml

listen="${WARDEN_LISTEN:-127.0.0.1:9200}"
cat <<EOT

warden is starting on http://$listen with hello-world. Every request needs
credentials: user \`admin\`, with the password printed below on the first start
(or the one in WARDEN_INITIAL_ADMIN_PASSWORD when ./data was first created).
In another terminal:

    curl -u admin:<password> http://$listen/_extensions/hello/greet/world
    curl -u admin:<password> http://$listen/_warden/health
    curl -u admin:<password> http://$listen/_plugins/_security/authinfo
    target/release/warden inspect extensions/hello/hello-world.wasm

Stop it with Ctrl-C.
EOT
exec target/release/warden serve --listen "$listen" --data-dir ./data --extensions-dir ./extensions
