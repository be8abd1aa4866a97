#!/usr/bin/env bash
# Load run: hello-world through the release `warden` binary over loopback,
# driven by wrk (Debian package; installed here if missing and possible).
# Usage: scripts/load.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-15}"
connections="${2:-32}"

scripts/setup.sh
unset RUST_BACKTRACE
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    else
        echo "load: wrk is needed (apt-get install wrk)" >&2
        exit 1
    fi
fi

cargo build --release --locked -p warden-host
cargo build --release --locked --target wasm32-wasip2 --target-dir target/guests -p hello-world

work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/extensions/hello"
cp target/guests/wasm32-wasip2/release/hello_world.wasm "$work/extensions/hello/hello-world.wasm"
cp examples/hello-world/extension.toml "$work/extensions/hello/extension.toml"
# Guest log lines at info would make this a benchmark of the log writer.
password="Load-Test-Pass-1"
auth="Authorization: Basic $(printf 'admin:%s' "$password" | base64)"
WARDEN_INITIAL_ADMIN_PASSWORD="$password" WARDEN_LOG=warn,warden=info,warden_host=info \
    target/release/warden serve --listen 127.0.0.1:0 \
    --data-dir "$work/data" --extensions-dir "$work/extensions" 2> "$work/warden.log" &
pid=$!
for _ in $(seq 100); do
    addr="$(grep -o 'listening on http://[0-9.:]*' "$work/warden.log" | sed 's|.*http://||' || true)"
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { cat "$work/warden.log"; exit 1; }
curl -fsS -H "$auth" "http://$addr/_extensions/hello/greet/load" && echo
# Authenticated requests: the first pays bcrypt, the rest hit the credential cache.
wrk -t2 -c"$connections" -d"${duration}s" --latency -H "$auth" "http://$addr/_extensions/hello/greet/load"
