#!/usr/bin/env bash
# Fuzzes every parser of untrusted input (the targets in fuzz/fuzz_targets,
# whose properties are host/src/fuzzing/*.rs) for a bounded time each, with
# libFuzzer through cargo-fuzz on the nightly toolchain.
#
#   scripts/fuzz.sh [minutes] [target...]     # default: 2 minutes, every target
#   scripts/fuzz.sh --minimise [target...]    # fold what the runs found into
#                                             # fuzz/corpus/<target> (as cargo fuzz cmin)
#   scripts/fuzz.sh --seed                    # regenerate fuzz/seeds (fuzz/seed.py)
#
# Prints, per target, the seconds run, executions and executions per second
# and the new crashing inputs, which it copies to fuzz/regressions/<target>/
# (the lib test `fuzzing::replay` runs them on stable from then on, so give
# each a name that says what it found and fix it in host/src).
#
# New inputs go to fuzz/target/corpus/<target> (not committed); the
# committed corpus and the regressions are read, never written, by a run.
#
# Built without a sanitizer (`-s none`): Warden forbids unsafe code, so
# AddressSanitizer would watch only the dependencies at half the speed,
# and wasmtime's pooling allocator reserves more address space than ASan
# allows. Debug assertions and overflow checks are on (`-a`).
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PATH:$HOME/.cargo/bin:/work/tools/bin"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs a nightly toolchain and cargo-fuzz:" >&2
    echo "  rustup toolchain install nightly && cargo install cargo-fuzz --locked" >&2
    exit 2
fi
FLAGS=(-s none -a --codegen-units 16)
TRIPLE=x86_64-unknown-linux-gnu
ALL=(tokens manifest component actions query dates schedule security_config bulk)

if [[ "${1:-}" == "--seed" ]]; then
    exec python3 fuzz/seed.py
fi

if [[ "${1:-}" == "--minimise" ]]; then
    shift
    targets=("$@")
    [[ ${#targets[@]} -gt 0 ]] || targets=("${ALL[@]}")
    if [[ -z "${FUZZ_NO_BUILD:-}" ]]; then
        cargo +nightly fuzz build "${FLAGS[@]}" >/dev/null
    fi
    # What `cargo fuzz cmin` does (libFuzzer's -merge=1 into a fresh
    # directory), over the committed corpus, the runs' finds and the seeds.
    for t in "${targets[@]}"; do
        fresh="fuzz/target/cmin/$t"
        rm -rf "$fresh" && mkdir -p "$fresh" "fuzz/corpus/$t" "fuzz/target/corpus/$t" "fuzz/seeds/$t"
        scratch="$(mktemp -d "${TMPDIR:-/tmp}/warden-fuzz-$t.XXXXXX")"
        WARDEN_FUZZ_SCRATCH="$scratch" "fuzz/target/$TRIPLE/release/$t" -merge=1 -timeout=10 -rss_limit_mb=3072 \
            "$fresh" "fuzz/corpus/$t" "fuzz/target/corpus/$t" "fuzz/seeds/$t" >"fuzz/target/cmin-$t.log" 2>&1 \
            || { echo "minimising $t failed: see fuzz/target/cmin-$t.log" >&2; exit 1; }
        rm -rf "$scratch" "fuzz/corpus/$t"
        mv "$fresh" "fuzz/corpus/$t"
        echo "$t: $(ls "fuzz/corpus/$t" | wc -l) inputs, $(du -sk --apparent-size "fuzz/corpus/$t" | cut -f1) KiB"
    done
    exit 0
fi

minutes="${1:-2}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL[@]}")
seconds=$((minutes * 60))

# FUZZ_NO_BUILD=1: run the binaries as last built.
if [[ -z "${FUZZ_NO_BUILD:-}" ]]; then
    cargo +nightly fuzz build "${FLAGS[@]}" >/dev/null
fi

printf '%-16s %8s %12s %10s  %s\n' target seconds execs execs/s "new crashes"
found=0
for t in "${targets[@]}"; do
    work="fuzz/target/corpus/$t"
    artifacts="fuzz/artifacts/$t"
    mkdir -p "$work" "$artifacts" "fuzz/regressions/$t"
    log="fuzz/target/run-$t.log"
    # A whole component load compiles it (three times, in the check) with
    # debug assertions on: seconds for the larger test guests.
    timeout=10
    if [[ "$t" == component ]]; then timeout=60; fi
    before=$(ls "$artifacts" | sort)
    start=$(date +%s)
    # A crash ends this target's run (libFuzzer stops at the first); the
    # others still run.
    # The checks' scratch stores: on tmpfs when there is one (they fsync).
    base="${TMPDIR:-/tmp}"
    if [[ -d /dev/shm ]]; then base=/dev/shm; fi
    scratch="$(mktemp -d "$base/warden-fuzz-$t.XXXXXX")"
    # The binary itself, built above: a source edited while the runs go
    # on does not rebuild (and wait for) it in the middle of them.
    WARDEN_FUZZ_SCRATCH="$scratch" \
    "fuzz/target/$TRIPLE/release/$t" "$work" "fuzz/corpus/$t" "fuzz/regressions/$t" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout="$timeout" -rss_limit_mb=3072 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1 || true
    rm -rf "$scratch"
    took=$(($(date +%s) - start))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
    # A crash ends the run before libFuzzer's final stats: count from its
    # last status line instead.
    if [[ -z "$execs" || "$execs" == 0 ]]; then
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
    fi
    if [[ -z "$rate" || "$rate" == 0 ]] && [[ "$took" -gt 0 ]]; then
        rate=$(( ${execs:-0} / took ))
    fi
    # libFuzzer also writes its slowest input (`slow-unit-`): not a finding.
    new=$(comm -13 <(echo "$before") <(ls "$artifacts" | sort) | grep -E '^(crash|timeout|oom|leak)-' || true)
    crashes=""
    for f in $new; do
        cp "$artifacts/$f" "fuzz/regressions/$t/$f"
        crashes="$crashes fuzz/regressions/$t/$f"
        found=$((found + 1))
    done
    printf '%-16s %8s %12s %10s  %s\n' "$t" "$took" "${execs:-0}" "${rate:-0}" "${crashes:-none}"
done
if [[ $found -gt 0 ]]; then
    echo "fuzz.sh: $found new crashing input(s), copied to fuzz/regressions (logs: fuzz/target/run-<target>.log)" >&2
    exit 1
fi
