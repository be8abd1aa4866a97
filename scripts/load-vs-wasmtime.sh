#!/usr/bin/env bash
# Warden's hello-world against `wasmtime serve` on the same machine, in the
# same run, under the same wrk load (issue #18, goal 2):
#   - Warden: examples/hello-world, authenticated (Basic, from the
#     credential cache after the first request), a fresh instance per request;
#   - wasmtime serve: scripts/wasi-http-hello (a `wasi:http/proxy` component
#     answering the same JSON), unauthenticated, once with a fresh instance
#     per request and once reusing instances (`--max-instance-reuse-count
#     128`, or the spelling this wasmtime has for it; skipped, and said, if
#     it has none).
# wasmtime-cli is the version in Cargo.lock: $WASMTIME, then `wasmtime` on
# PATH, then $TOOLS/bin/wasmtime (default target/tools), else it is built
# there with `cargo install --locked` (a long build: ~10 min on 2 idle
# cores; run with BUILD_WASMTIME=0 to refuse and stop instead).
# Usage: scripts/load-vs-wasmtime.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
duration="${1:-15}"
connections="${2:-32}"
tools="${TOOLS:-$PWD/target/tools}"

scripts/setup.sh
unset RUST_BACKTRACE
need_wrk load-vs-wasmtime

# The wasmtime the host links: the `wasmtime` package's version in Cargo.lock.
version="$(awk '/^name = "wasmtime"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
[ -n "$version" ] || { echo "load-vs-wasmtime: no wasmtime in Cargo.lock" >&2; exit 1; }
wasmtime=""
for candidate in "${WASMTIME:-}" "$(command -v wasmtime || true)" "$tools/bin/wasmtime"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version | grep -q " $version"; then
        wasmtime="$candidate"
        break
    fi
done
if [ -z "$wasmtime" ]; then
    if [ "${BUILD_WASMTIME:-1}" = 0 ]; then
        echo "load-vs-wasmtime: no wasmtime $version found (set WASMTIME, or BUILD_WASMTIME=1)" >&2
        exit 1
    fi
    echo "--- building wasmtime-cli $version into $tools (long)"
    nice -n 19 cargo install wasmtime-cli --version "$version" --locked --root "$tools"
    wasmtime="$tools/bin/wasmtime"
fi
echo "--- $("$wasmtime" --version)"

cargo build --release --locked -p warden-host
cargo build --release --locked --target wasm32-wasip2 --target-dir target/guests -p hello-world
cargo build --release --locked --target wasm32-wasip2 --target-dir target/guests \
    --manifest-path scripts/wasi-http-hello/Cargo.toml
hello_http=target/guests/wasm32-wasip2/release/wasi_http_hello.wasm

work="$(mktemp -d)"
pids=()
# `serve` runs in a command substitution (a subshell): its servers' pids go
# to a file, or the trap would never see them and they would outlive the script.
trap 'for p in "${pids[@]}" $(cat "$work/pids" 2>/dev/null); do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# Warden, as scripts/load.sh starts it.
mkdir -p "$work/extensions/hello"
cp target/guests/wasm32-wasip2/release/hello_world.wasm "$work/extensions/hello/hello-world.wasm"
cp examples/hello-world/extension.toml "$work/extensions/hello/extension.toml"
password="Load-Test-Pass-1"
auth="Authorization: Basic $(printf 'admin:%s' "$password" | base64)"
WARDEN_INITIAL_ADMIN_PASSWORD="$password" WARDEN_LOG=warn,warden=info,warden_host=info \
    target/release/warden serve --listen 127.0.0.1:0 \
    --data-dir "$work/data" --extensions-dir "$work/extensions" 2> "$work/warden.log" &
pids+=($!)
addr="$(warden_address "$work/warden.log")"
curl -fsS -H "$auth" "http://$addr/_extensions/hello/greet/load" && echo

# A free loopback port for wasmtime serve (it does not print an ephemeral one).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# `wasmtime serve <options> hello`, waited for; prints the address.
serve() {
    local port log
    port="$(free_port)"
    log="$work/wasmtime-$port.log"
    # `-S cli`: the guest (like any wasi:http component built with the
    # standard tooling) imports wasi:cli, which `serve` links only when asked.
    "$wasmtime" serve -S cli --addr "127.0.0.1:$port" "$@" "$hello_http" > "$log" 2>&1 &
    echo $! >> "$work/pids"
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/greet/load" 2>/dev/null && { echo "127.0.0.1:$port"; return; }
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}

# The reuse option as this wasmtime spells it (a flag, or a -S setting).
help="$("$wasmtime" serve --help 2>&1 || true)"
reuse=()
if grep -q -- '--max-instance-reuse-count' <<< "$help"; then
    reuse=(--max-instance-reuse-count 128)
elif "$wasmtime" serve -S help 2>&1 | grep -q 'max-instance-reuse-count'; then
    reuse=(-S max-instance-reuse-count=128)
fi

fresh_addr="$(serve)"
curl -fsS "http://$fresh_addr/greet/load" && echo
reuse_addr=""
if [ "${#reuse[@]}" -gt 0 ]; then
    reuse_addr="$(serve "${reuse[@]}")"
else
    echo "--- this wasmtime serve has no instance-reuse option: the reuse run is skipped"
fi

rate() { awk '/^Requests\/sec:/ { print $2 }'; }
run() {
    local name="$1"
    shift
    echo "--- $name"
    wrk -t2 -c"$connections" -d"${duration}s" --latency "$@" | tee "$work/$name.txt"
}
run warden -H "$auth" "http://$addr/_extensions/hello/greet/load"
run wasmtime-fresh "http://$fresh_addr/greet/load"
[ -n "$reuse_addr" ] && run wasmtime-reuse "http://$reuse_addr/greet/load"

echo "=== req/s, same run (wrk -t2 -c$connections -d${duration}s)"
printf '%-40s %s\n' "warden (authenticated, fresh instance)" "$(rate < "$work/warden.txt")"
printf '%-40s %s\n' "wasmtime serve (fresh instance)" "$(rate < "$work/wasmtime-fresh.txt")"
[ -n "$reuse_addr" ] && printf '%-40s %s\n' "wasmtime serve (${reuse[*]})" "$(rate < "$work/wasmtime-reuse.txt")"
exit 0
