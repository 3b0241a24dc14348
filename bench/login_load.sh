#!/usr/bin/env bash
# Does password hashing starve everything else? GET /api/hello latency measured alone, then while
# 64 connections hammer POST /api/auth/login, with wrk, against the release showcase.
#
#   bash bench/login_load.sh
#
# Three phases of $DURATION each, the hello measurement always `wrk -t1 -c8 --latency`:
#   1. hello alone;
#   2. hello + login load as shipped: the login route allows 10 attempts a minute per IP, and all
#      of wrk's connections come from 127.0.0.1, so almost every login is a cheap 429;
#   3. hello + login load "spread": the showcase trusts 127.0.0.1 as a proxy
#      (TRUSTED_PROXIES=127.0.0.1) and bench/login.lua gives every login its own
#      X-Forwarded-For address, so every login is a real Argon2id verification.
# For each login phase it prints how many logins were answered 200 (hashed), how many 429 and how
# many anything else (503 server_busy when a hash waited too long for its turn), and after each
# phase the server's resident memory (VmRSS): hashing's working memory is kept, one buffer per
# hash that may run at once, so it should not climb with the number of hashes.
#
# Knobs (environment): DURATION=15s, PORT=3100, LOGIN_CONNECTIONS=64, SKIP_BUILD=1 (reuse the
# binary in $CARGO_TARGET_DIR/release). Only 127.0.0.1 is used; the server is killed on exit;
# every wait and wrk run is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-15s}"
PORT="${PORT:-3100}"
LOGIN_CONNECTIONS="${LOGIN_CONNECTIONS:-64}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
EMAIL="bench@example.com"
PASSWORD="bench-password-123"
BASE="http://127.0.0.1:$PORT"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/waypost-login-bench.XXXXXX")"
SERVER_PID=""

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

cleanup() {
    stop "$SERVER_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_server() {
    ! curl -s -o /dev/null --max-time 1 "$BASE/" 2>/dev/null \
        || die "something already listens on 127.0.0.1:$PORT"
    HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="sqlite://$WORK/bench.db" RUST_LOG=warn \
        RATE_LIMIT_DEFAULT=100000000/1s TRUSTED_PROXIES=127.0.0.1 \
        "$TARGET_DIR/release/showcase" >"$WORK/showcase.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        curl -fsS -o /dev/null --max-time 1 "$BASE/api/hello" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$WORK/showcase.log" >&2; die "showcase exited"; }
        sleep 0.1
    done
    die "the showcase did not answer within 30 s"
}

register() {
    local status
    status="$(curl -sS -o "$WORK/register.json" -w '%{http_code}' --max-time 10 \
        -H 'content-type: application/json' \
        -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"name\":\"Bench\"}" \
        "$BASE/api/auth/register")"
    [[ "$status" == 201 ]] || die "register answered $status: $(cat "$WORK/register.json")"
    status="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
        -H 'content-type: application/json' -H 'x-forwarded-for: 192.0.2.1' \
        -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" "$BASE/api/auth/login")"
    [[ "$status" == 200 ]] || die "login answered $status"
}

hello_wrk() {
    local out="$1"
    timeout $(($(seconds "$DURATION") + 30)) \
        wrk -t1 -c8 -d"$DURATION" --timeout 5s --latency "$BASE/api/hello" >"$out" 2>&1 \
        || die "wrk on /api/hello failed (see $out)"
}

login_wrk() {
    local out="$1" mode="$2"
    timeout $(($(seconds "$DURATION") + 40)) \
        wrk -t2 -c"$LOGIN_CONNECTIONS" -d"$DURATION" --timeout 10s \
        -s "$ROOT/bench/login.lua" "$BASE/api/auth/login" -- "$EMAIL" "$PASSWORD" "$mode" \
        >"$out" 2>&1 || die "wrk on /api/auth/login failed (see $out)"
}

# "p50 p99 req/s" of a wrk --latency output, latencies in milliseconds.
summary() {
    awk '
        function ms(v,   unit) {
            unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            if (unit == "us") return v / 1000; if (unit == "s") return v * 1000
            if (unit == "m") return v * 60000; return v
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        END { printf "%.2f %.2f %.0f", p50, p99, rps }' "$1"
}

login_counts() { grep '^LOGIN_COUNTS' "$1" | sed 's/^LOGIN_COUNTS //'; }

phase_under_load() {
    local name="$1" mode="$2"
    log "phase $name: hello under $LOGIN_CONNECTIONS concurrent logins ($mode, $DURATION)"
    login_wrk "$WORK/login-$name.txt" "$mode" &
    local login_pid=$!
    sleep 1 # let the login load ramp up before measuring
    hello_wrk "$WORK/hello-$name.txt"
    wait "$login_pid" || die "login load failed: $(tail -n 5 "$WORK/login-$name.txt")"
    rss_mib >"$WORK/rss-$name.txt"
}

# The server's resident memory now, in MiB.
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

row() {
    local label="$1" hello="$2" login="${3:-}" rss="$4"
    local p50 p99 rps counts="" total ok limited other
    read -r p50 p99 rps <<<"$(summary "$hello")"
    if [[ -n "$login" ]]; then
        counts="$(login_counts "$login")"
        total="$(sed -E 's/.*total=([0-9]+).*/\1/' <<<"$counts")"
        ok="$(sed -E 's/.* ok=([0-9]+).*/\1/' <<<"$counts")"
        limited="$(sed -E 's/.*rate_limited=([0-9]+).*/\1/' <<<"$counts")"
        other="$(sed -E 's/.*other=([0-9]+).*/\1/' <<<"$counts")"
        counts="$(awk -v t="$total" -v o="$ok" -v l="$limited" -v x="$other" \
            'BEGIN { printf "%d logins: %d hashed (200, %.1f%%), %d refused 429, %d other", t, o, (t ? 100 * o / t : 0), l, x }')"
    fi
    printf '| %s | %s ms | %s ms | %s | %s | %s MiB |\n' "$label" "$p50" "$p99" "$rps" "${counts:-—}" "$(cat "$rss")"
}

main() {
    ensure_tools wrk
    build_release showcase
    log "starting the showcase on $BASE"
    start_server
    register

    log "phase alone: hello only ($DURATION)"
    hello_wrk "$WORK/hello-alone.txt"
    rss_mib >"$WORK/rss-alone.txt"
    phase_under_load limited plain
    phase_under_load spread spread

    echo
    echo "GET /api/hello, wrk -t1 -c8 -d$DURATION; login load wrk -t2 -c$LOGIN_CONNECTIONS;" \
        "$(nproc) CPUs shared by both wrk and the server"
    echo
    echo "| hello measured | p50 | p99 | hello req/s | login load | server RSS after |"
    echo "|---|---:|---:|---:|---|---:|"
    row "alone" "$WORK/hello-alone.txt" "" "$WORK/rss-alone.txt"
    row "under login load, 10/60s per-IP limit" "$WORK/hello-limited.txt" "$WORK/login-limited.txt" \
        "$WORK/rss-limited.txt"
    row "under login load, every login hashed" "$WORK/hello-spread.txt" "$WORK/login-spread.txt" \
        "$WORK/rss-spread.txt"
    local problems
    problems="$(grep -H -E 'Socket errors|Non-2xx' "$WORK"/hello-*.txt || true)"
    if [[ -n "$problems" ]]; then
        echo
        echo "hello runs with errors:"
        echo "$problems"
    fi
}

main "$@"
