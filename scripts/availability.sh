#!/usr/bin/env bash
# Availability figures for issue #10, before/after in one run on one machine:
#   1. latency of a correct-password (cached) request while 16 clients send
#      wrong passwords (median, p95, max of 20 requests; 40 idle first);
#   2. audit-log growth under 1,000 unauthenticated requests with 60 KB paths.
#
# usage: scripts/availability.sh [BASELINE_WARDEN] [NEW_WARDEN]
#   defaults: /work/main/target/debug/warden (the base commit) and
#   ./target/debug/warden (this tree; build it first).
# The new binary is measured twice for (1): with its default throttling, and
# with throttling off (auth_failure_listeners: {}) to show what moving bcrypt
# off the executor does alone.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
baseline="${1:-/work/main/target/debug/warden}"
new="${2:-$root/target/debug/warden}"
password="Avail-Admin-Pass-1"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME BINARY [config.yml text]: sets $url (not in a subshell, so
# that $pids keeps the server's pid).
start() {
    local name="$1" bin="$2" config="${3:-}"
    mkdir -p "$work/$name/extensions"
    local args=(serve --listen 127.0.0.1:0 --data-dir "$work/$name/data" --extensions-dir "$work/$name/extensions")
    if [[ -n "$config" ]]; then
        mkdir -p "$work/$name/security"
        cp "$root"/host/src/security/default/*.yml "$work/$name/security/"
        printf '%s\n' "$config" > "$work/$name/security/config.yml"
        args+=(--security-config "$work/$name/security")
    fi
    WARDEN_INITIAL_ADMIN_PASSWORD="$password" WARDEN_LOG=info "$bin" "${args[@]}" > /dev/null 2> "$work/$name/log" &
    pids+=($!)
    for _ in $(seq 1 600); do
        if grep -q "warden listening on http://" "$work/$name/log"; then
            url=$(grep -o "warden listening on http://[0-9.:]*" "$work/$name/log" | head -1 | sed 's/warden listening on //')
            return
        fi
        sleep 0.1
    done
    echo "server $name did not start" >&2
    cat "$work/$name/log" >&2
    exit 1
}

measure_latency() {
    python3 - "$1" "$password" <<'EOF'
import base64, http.client, statistics, sys, threading, time, urllib.parse
base, password = sys.argv[1], sys.argv[2]
host = urllib.parse.urlparse(base)
def auth(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
good = auth("admin", password)
def timed(conn):
    t = time.perf_counter()
    conn.request("GET", "/_plugins/_security/authinfo", headers={"Authorization": good})
    r = conn.getresponse(); r.read()
    assert r.status == 200, r.status
    return time.perf_counter() - t
conn = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
timed(conn)  # fills the credential cache
idle = [timed(conn) for _ in range(40)]
stop = False
answered = [0]
def attacker(i):
    c = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
    user = "admin" if i % 2 == 0 else f"nobody-{i}"
    while not stop:
        try:
            c.request("GET", "/_plugins/_security/authinfo", headers={"Authorization": auth(user, "wrong")})
            r = c.getresponse(); r.read(); answered[0] += 1
        except Exception:
            c = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
threads = [threading.Thread(target=attacker, args=(i,)) for i in range(16)]
for t in threads: t.start()
time.sleep(1.0)
attack = []
for _ in range(20):  # spread over a few seconds of flood
    attack.append(timed(conn))
    time.sleep(0.1)
stop = True
for t in threads: t.join()
def fmt(xs):
    xs = sorted(xs)
    return f"p50 {statistics.median(xs)*1000:8.1f} ms  p95 {xs[int(len(xs)*0.95)-1]*1000:8.1f} ms  max {xs[-1]*1000:8.1f} ms"
print(f"    idle:         {fmt(idle)}")
print(f"    under attack: {fmt(attack)}  ({answered[0]} wrong-password answers)")
EOF
}

measure_audit() {
    local name="$1" url="$2" dir="$work/$1/data/audit"
    local before after
    before=$(du -sb "$dir" | cut -f1)
    python3 - "$url" <<'EOF'
import http.client, sys, urllib.parse
host = urllib.parse.urlparse(sys.argv[1])
conn = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
path = "/" + "a" * 60_000
for i in range(1000):
    conn.request("GET", path)
    r = conn.getresponse(); r.read()
    assert r.status in (401, 429), r.status
EOF
    sleep 1
    after=$(du -sb "$dir" | cut -f1)
    echo "    audit log grew $((after - before)) bytes ($(( (after - before) / 1024 )) KiB) for 1,000 requests"
}

echo "baseline: $baseline"
echo "new:      $new"
echo
echo "1. correct-password request latency while 16 clients send wrong passwords"
for case in "baseline|$baseline|" "new (default throttling)|$new|" "new (throttling off)|$new|_meta:
  type: \"config\"
  config_version: 2
config:
  dynamic:
    auth_failure_listeners: {}"; do
    IFS='|' read -r label bin config <<< "$case"
    # `read` stops at the first newline: take the config from the case itself.
    config="${case#*|*|}"
    name="lat-$(echo "$label" | tr -c 'a-z' '-')"
    start "$name" "$bin" "$config"
    echo "  $label"
    measure_latency "$url"
    kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done
echo
echo "2. audit log growth, 1,000 unauthenticated requests with 60 KB paths"
for case in "baseline|$baseline" "new|$new"; do
    IFS='|' read -r label bin <<< "$case"
    name="audit-$label"
    start "$name" "$bin"
    echo "  $label"
    measure_audit "$name" "$url"
    kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done
