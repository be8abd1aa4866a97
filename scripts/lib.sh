# Shared by the load and soak scripts (sourced, not run).

# need_wrk <who>: Debian's wrk, installed when missing and possible.
need_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    else
        echo "$1: wrk is needed (apt-get install wrk)" >&2
        exit 1
    fi
}

# warden_address <log> [tenths-of-a-second]: waits for `warden serve` to log
# its address and prints it (host:port); prints the log and fails otherwise.
warden_address() {
    local log="$1" tries="${2:-100}" addr=""
    for _ in $(seq "$tries"); do
        addr="$(grep -o 'listening on http://[0-9.:]*' "$log" | sed 's|.*http://||' || true)"
        [ -n "$addr" ] && { echo "$addr"; return 0; }
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}
