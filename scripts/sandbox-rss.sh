#!/usr/bin/env bash
# Peak RSS of a `warden serve` process whose one hostile extension is a
# many-memories component (issue #10, hole 7): hello-world with COUNT extra
# core instances appended, each defining a memory of PAGES 64 KiB pages and
# touching every page from its start function. Sends REQUESTS requests to it
# (one at a time) and to hello-world beside it, then prints the statuses and
# the process's VmHWM. Run it with the binary before and after the fix:
#
#   scripts/sandbox-rss.sh /path/to/old/warden
#   scripts/sandbox-rss.sh target/debug/warden
#
# Env: COUNT (17), PAGES (1000 = 62.5 MiB), REQUESTS (5), MEMORY_MIB (64).
set -euo pipefail
cd "$(dirname "$0")/.."

warden="${1:-target/debug/warden}"
hello="${HELLO:-target/guests/wasm32-wasip2/release/hello_world.wasm}"
count="${COUNT:-17}"
pages="${PAGES:-1000}"
requests="${REQUESTS:-5}"
memory_mib="${MEMORY_MIB:-64}"
password="Rss-Admin-Pass-1"

work="$(mktemp -d)"
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/ext/many" "$work/ext/hello" "$work/data"
cp "$hello" "$work/ext/hello/component.wasm"
printf 'id = "hello"\nversion = "0.1.0"\ncomponent = "component.wasm"\n' >"$work/ext/hello/extension.toml"
printf 'id = "many"\nversion = "0.1.0"\ncomponent = "component.wasm"\n[limits]\nmemory_mib = %s\n' \
    "$memory_mib" >"$work/ext/many/extension.toml"

python3 - "$hello" "$work/ext/many/component.wasm" "$count" "$pages" <<'PY'
import sys

def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n == 0:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)

def sleb(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)

def section(i, payload):
    return bytes([i]) + leb(len(payload)) + payload

src, dst, count, pages = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
component = open(src, "rb").read()
# Index of the next core module: count the top-level module sections.
at, modules = 8, 0
while at < len(component):
    sid = component[at]
    at += 1
    size, shift = 0, 0
    while True:
        b = component[at]
        at += 1
        size |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            break
    at += size
    modules += sid == 1

# (module (memory PAGES) (func $touch (local i32)
#   (loop (i32.store (local.get 0) (i32.const 1))
#         (local.set 0 (i32.add (local.get 0) (i32.const 4096)))
#         (br_if 0 (i32.lt_u (local.get 0) (i32.const PAGES*65536)))))
#   (start $touch))
body = (b"\x01\x01\x7f" + b"\x03\x40"
        + b"\x20\x00\x41\x01\x36\x02\x00"
        + b"\x20\x00\x41" + sleb(4096) + b"\x6a\x21\x00"
        + b"\x20\x00\x41" + sleb(pages * 65536) + b"\x49\x0d\x00"
        + b"\x0b\x0b")
module = (b"\0asm\x01\0\0\0"
          + section(1, b"\x01\x60\x00\x00")
          + section(3, b"\x01\x00")
          + section(5, b"\x01\x00" + leb(pages))
          + section(8, b"\x00")
          + section(10, b"\x01" + leb(len(body)) + body))
instances = leb(count) + (b"\x00" + leb(modules) + b"\x00") * count
open(dst, "wb").write(component + section(1, module) + section(2, instances))
PY

WARDEN_INITIAL_ADMIN_PASSWORD="$password" "$warden" serve --listen 127.0.0.1:0 \
    --extensions-dir "$work/ext" --data-dir "$work/data" 2>"$work/log" &
pid=$!
base=""
for _ in $(seq 1 600); do
    base="$(grep -o 'warden listening on http://[0-9.:]*' "$work/log" | sed 's/.*on //' || true)"
    [ -n "$base" ] && break
    sleep 0.1
done
[ -n "$base" ] || { echo "warden did not start:"; cat "$work/log"; exit 1; }

rss() { awk -v k="$1:" '$1 == k { print $2 " " $3 }' "/proc/$pid/status"; }
echo "binary:        $warden"
echo "extension:     hello-world + $count memories of $pages pages (memory_mib = $memory_mib)"
echo "many loaded:   $(grep -q 'extension not loaded.*many' "$work/log" && echo "no (refused at load)" || echo yes)"
grep -o 'extension not loaded: .*many.*' "$work/log" | cut -c1-300 || true
echo "RSS idle:      $(rss VmRSS)"
codes=""
for _ in $(seq 1 "$requests"); do
    codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -u "admin:$password" "$base/_extensions/many/greet/x")"
done
echo "many:         $codes"
codes=""
for _ in $(seq 1 "$requests"); do
    codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -u "admin:$password" "$base/_extensions/hello/greet/x")"
done
echo "hello:        $codes"
echo "peak RSS:      $(rss VmHWM)"
