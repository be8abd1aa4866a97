#!/usr/bin/env bash
# Soak run (issue #17 item 2): the release `warden` on 127.0.0.1 (a free
# port, a temporary data directory) under a mixed load for a bounded time,
# driven by host/examples/soak.rs: extension calls (hello-world), the
# host-calls guest's cluster reads and writes, `_bulk`, searches, security
# configuration writes, whole-config export/import, API token mints and
# revocations, OBO mints and revocations (by user, jti, extension), job
# registrations and runs, and a hostile guest (infinite loop, memory bomb,
# trap, stack overflow, resource hog) every two seconds.
#
# Writes to target/soak/ (or $SOAK_OUT): samples.csv (every $SOAK_SAMPLE_SECS
# seconds, default 10), summary.txt, warden.log and rss-p99.png.
#
# Needs: cargo with the wasm32-wasip2 target (scripts/setup.sh), and for the
# plot python3 with matplotlib: installed from PyPI into target/soak/.venv if
# python3 lacks it (skipped, with a message, when that is impossible).
# Usage: scripts/soak.sh [minutes]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
minutes="${1:-5}"
out="${SOAK_OUT:-target/soak}"
sample="${SOAK_SAMPLE_SECS:-10}"
mkdir -p "$out"

scripts/setup.sh
unset RUST_BACKTRACE

cargo build --release --locked -p warden-host --bin warden --example soak
cargo build --release --locked --target wasm32-wasip2 --target-dir target/guests \
    -p hello-world -p guest-host-calls -p guest-infinite-loop -p guest-memory-bomb \
    -p guest-trap -p guest-stack-overflow -p guest-resource-hog
guests=target/guests/wasm32-wasip2/release

work="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
ext="$work/extensions"
install_ext() { # id wasm manifest-tail
    mkdir -p "$ext/$1"
    cp "$guests/$2" "$ext/$1/component.wasm"
    printf 'id = "%s"\nversion = "0.1.0"\ncomponent = "component.wasm"\n%b\n' "$1" "$3" > "$ext/$1/extension.toml"
}
mkdir -p "$ext/hello"
cp "$guests/hello_world.wasm" "$ext/hello/hello-world.wasm"
cp examples/hello-world/extension.toml "$ext/hello/extension.toml"
install_ext probe guest_host_calls.wasm 'capabilities = ["cluster", "scheduler"]\n[limits]\ncpu_ms = 300\ntimeout_ms = 10000\nmax_concurrency = 16\n[[jobs]]\nname = "write"\ncluster_actions = ["indices:data/write/index"]\nindex_patterns = ["job-*"]'
install_ext spin guest_infinite_loop.wasm '[limits]\ncpu_ms = 200'
install_ext bomb guest_memory_bomb.wasm '[limits]\nmemory_mib = 16'
install_ext trap guest_trap.wasm ''
install_ext deep guest_stack_overflow.wasm ''
install_ext hog guest_resource_hog.wasm 'capabilities = []\n[limits]\nmemory_mib = 4'

# Guest log lines at info would make this a benchmark of the log writer.
WARDEN_INITIAL_ADMIN_PASSWORD="Soak-Admin-Pass-1" WARDEN_LOG=warn,warden=info,warden_host=info \
    WARDEN_SCHEDULER_TICK_MS=200 \
    target/release/warden serve --listen 127.0.0.1:0 \
    --data-dir "$work/data" --extensions-dir "$ext" 2> "$out/warden.log" &
pid=$!
addr="$(warden_address "$out/warden.log" 300)"
echo "soak: warden pid $pid on $addr for $minutes minutes; samples every ${sample}s to $out/samples.csv"

status=0
target/release/examples/soak "http://$addr" "$pid" "$work/data" "$((minutes * 60))" \
    "$out/samples.csv" "$sample" | tee "$out/run.txt" || status=$?
sed -n '/== soak summary/,$p' "$out/run.txt" > "$out/summary.txt"
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=""
grep -c ' ERROR ' "$out/warden.log" | xargs printf 'soak: %s ERROR lines in the server log\n' || true

# The plot: RSS and p99 over time.
python=python3
if ! python3 -c 'import matplotlib' >/dev/null 2>&1; then
    if [ ! -x "$out/.venv/bin/python" ]; then
        echo "soak: installing matplotlib (PyPI) into $out/.venv for the plot"
        python3 -m venv "$out/.venv" && "$out/.venv/bin/pip" install --quiet --disable-pip-version-check matplotlib \
            || echo "soak: cannot install matplotlib; no plot (the CSV is there)" >&2
    fi
    python="$out/.venv/bin/python"
fi
if "$python" -c 'import matplotlib' >/dev/null 2>&1; then
    "$python" - "$out/samples.csv" "$out/rss-p99.png" <<'PY'
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
t = [float(r["t_s"]) / 60 for r in rows]
fig, (a, b, c) = plt.subplots(3, 1, sharex=True, figsize=(9, 8))
a.plot(t, [int(r["rss_kib"]) / 1024 for r in rows], color="tab:blue")
a.set_ylabel("RSS (MiB)")
a.set_ylim(bottom=0)
a2 = a.twinx()
a2.plot(t, [int(r["fds"]) for r in rows], color="tab:gray", linestyle=":")
a2.set_ylabel("open fds (dotted)")
a2.set_ylim(bottom=0)
for kind, colour in [("hello", "tab:green"), ("bulk", "tab:orange"), ("search", "tab:purple"),
                     ("guest_write", "tab:brown"), ("security", "tab:red"), ("apitoken", "tab:pink")]:
    b.plot(t, [float(r[kind + "_p99_ms"]) for r in rows], label=kind, color=colour)
b.plot(t, [float(r["p99_ms"]) for r in rows], label="all", color="black", linewidth=2)
b.set_ylabel("p99 latency (ms)")
b.set_yscale("log")
b.legend(loc="upper left", ncol=4, fontsize=8)
c.plot(t, [float(r["requests_per_s"]) for r in rows], color="tab:blue", label="req/s")
c.set_ylabel("requests/s")
c.set_ylim(bottom=0)
c.set_xlabel("minutes")
fig.suptitle("warden soak: RSS, p99 and throughput under mixed load")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=90)
PY
    echo "soak: plot in $out/rss-p99.png"
fi
exit "$status"
