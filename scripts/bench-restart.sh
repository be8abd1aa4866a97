#!/usr/bin/env bash
# Restart → first successful response with N installed extensions (issue
# #12's benchmark): the compile cache warm, beside a cold start with the
# cache removed. Uses the release binary; prints the median of 3 runs each.
#   scripts/bench-restart.sh [N=20]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
cargo build --release --locked -p warden-host >/dev/null
cargo build --release --locked --target wasm32-wasip2 --target-dir target/guests -p hello-world >/dev/null
warden="$PWD/target/release/warden"
wasm="$PWD/target/guests/wasm32-wasip2/release/hello_world.wasm"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/empty"
export WARDEN_INITIAL_ADMIN_PASSWORD="Bench-Password-1"
auth="admin:$WARDEN_INITIAL_ADMIN_PASSWORD"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

start() {
  "$warden" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --extensions-dir "$work/empty" \
    >"$work/log" 2>&1 &
  pid=$!
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
# Milliseconds from the start of the process to the first 200 of the last
# extension installed.
first_response_ms() {
  local t0 t1
  t0=$(date +%s%N)
  start
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -u "$auth" "$base/_extensions/hello$n/greet/x")" = 200 ]; do
    sleep 0.005
  done
  t1=$(date +%s%N)
  stop
  echo $(( (t1 - t0) / 1000000 ))
}
median() { sort -n | sed -n 2p; }

start
until curl -s -o /dev/null -u "$auth" "$base/_warden/health"; do sleep 0.05; done
for i in $(seq 1 "$n"); do
  python3 - "$wasm" "hello$i" >"$work/body.json" <<'PY'
import base64, json, sys
wasm, id_ = sys.argv[1], sys.argv[2]
manifest = f'id = "{id_}"\nversion = "1.0.0"\ncomponent = "c.wasm"\ncapabilities = []\n'
print(json.dumps({"manifest": manifest, "component": base64.b64encode(open(wasm, "rb").read()).decode()}))
PY
  curl -sf -u "$auth" -XPOST "$base/_warden/extensions" -H 'content-type: application/json' \
    --data-binary @"$work/body.json" >/dev/null
  curl -sf -u "$auth" -XPOST "$base/_warden/extensions/hello$i/_approve" >/dev/null
done
stop

warm=$(for _ in 1 2 3; do first_response_ms; done | median)
cold=$(for _ in 1 2 3; do rm -rf "$work/data/cache"; first_response_ms; done | median)
echo "restart -> first response, $n installed extensions: warm cache ${warm} ms, cold (cache removed) ${cold} ms"
