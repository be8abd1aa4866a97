#!/usr/bin/env bash
# Load run over loopback against the release `warden` binary, driven by wrk
# (Debian package; installed here if missing and possible): an extension
# call (hello-world), then the cluster's REST API (a document GET and a term
# search over 10,000 documents), all authenticated with Basic.
# Usage: scripts/load.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
duration="${1:-15}"
connections="${2:-32}"

scripts/setup.sh
unset RUST_BACKTRACE
need_wrk load

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
addr="$(warden_address "$work/warden.log")"
curl -fsS -H "$auth" "http://$addr/_extensions/hello/greet/load" && echo
# Authenticated requests: the first pays bcrypt, the rest hit the credential cache.
echo "--- GET /_extensions/hello/greet/load"
wrk -t2 -c"$connections" -d"${duration}s" --latency -H "$auth" "http://$addr/_extensions/hello/greet/load"

# The cluster over REST.
for batch in $(seq 0 9); do
    for i in $(seq 0 999); do
        n=$((batch * 1000 + i))
        printf '{"index":{"_index":"logs","_id":"%d"}}\n{"n":%d,"user":"u%d","level":"info","message":"request %d served"}\n' \
            "$n" "$n" $((n % 50)) "$n"
    done > "$work/bulk.ndjson"
    curl -fsS -o /dev/null -H "$auth" -H 'content-type: application/x-ndjson' \
        --data-binary @"$work/bulk.ndjson" "http://$addr/_bulk"
done
echo "--- GET /logs/_doc/42"
wrk -t2 -c"$connections" -d"${duration}s" --latency -H "$auth" "http://$addr/logs/_doc/42"
cat > "$work/search.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"query":{"term":{"user":"u7"}},"size":10}'
wrk.headers["Content-Type"] = "application/json"
LUA
echo "--- POST /logs/_search (term matching 200 of 10,000 documents)"
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/search.lua" -H "$auth" "http://$addr/logs/_search"
