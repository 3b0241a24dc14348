#!/usr/bin/env bash
# Soak test: the release showcase under a steady mix of every kind of request for $DURATION,
# watched for what a short benchmark cannot see — memory that keeps growing, a 5xx or a dropped
# connection after the first minutes, a server that stops answering.
#
#   bash bench/soak.sh                 # 60 s
#   DURATION=10m bash bench/soak.sh    # a real soak
#
# The mix (bench/soak.lua), cycled by every wrk thread over its connections: hello, a page of posts, a cached docs
# page, an unknown path (404), a contact message stored in the database, bad JSON (400), a
# wrong Content-Type (415), a method the route lacks (405), OPTIONS (204), an authenticated
# `GET /api/auth/me` with a bearer token, and a request carrying a client `X-Waypost-*` header.
#
# The server's resident memory (VmRSS) is sampled every 2 s. The run fails (exit 1) when:
#   - any answer has a status the mix does not ask for (anything but 200, 204, 400, 404, 405,
#     415: a 5xx, but also a 401 or 429 where the mix expects to be let in), or wrk reports
#     socket errors or timeouts;
#   - the server exits, or `/api/health` does not answer 200 afterwards;
#   - memory grows in the second half of the run by more than RSS_NOISE_MB (8) and by more than
#     MAX_BYTES_PER_REQUEST (32) per request of that half: caches and pools fill early, so the
#     second half of a healthy run is flat up to the allocator's noise, and a leak of 100 bytes a
#     request fails at any rate and length.
#
# Knobs (environment): DURATION=60s, CONNECTIONS=32, THREADS=2, PORT=3100, RSS_NOISE_MB=8,
# MAX_BYTES_PER_REQUEST=32, SKIP_BUILD=1 (reuse target/release/showcase). DATABASE_URL (a fresh SQLite
# file by default) and REDIS_URL reach the showcase, to soak it on Postgres and Redis. Only
# 127.0.0.1 is used; the server is stopped on exit; every wait and wrk run is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-60s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
PORT="${PORT:-3100}"
RSS_NOISE_MB="${RSS_NOISE_MB:-8}"
MAX_BYTES_PER_REQUEST="${MAX_BYTES_PER_REQUEST:-32}"
EXPECTED_STATUSES=" 200 204 400 404 405 415 "
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BASE="http://127.0.0.1:$PORT"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/waypost-soak.XXXXXX")"
SERVER_PID=""
SAMPLER_PID=""

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

cleanup() {
    [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null || true
    stop "$SERVER_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_tools wrk
build_release showcase

! curl -s -o /dev/null --max-time 1 "$BASE/" 2>/dev/null \
    || die "something already listens on 127.0.0.1:$PORT"
HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="${DATABASE_URL:-sqlite://$WORK/soak.db}" UPLOAD_DIR="$WORK/uploads" \
    RUST_LOG=warn RATE_LIMIT_DEFAULT=100000000/1s \
    "$TARGET_DIR/release/showcase" >"$WORK/showcase.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
    curl -fsS -o /dev/null --max-time 1 "$BASE/api/hello" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$WORK/showcase.log" >&2; die "showcase exited"; }
    sleep 0.1
done
curl -fsS -o /dev/null --max-time 1 "$BASE/api/hello" || die "the showcase did not answer within 30 s"

# A user for the authenticated part of the mix (a new address each run: the database may be
# a shared Postgres one).
EMAIL="soak-$(date +%s)-$$@example.com"
curl -fsS -o /dev/null --max-time 10 -H 'content-type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"soak-password-1\",\"name\":\"Soak\"}" \
    "$BASE/api/auth/register" || die "register failed"
TOKEN="$( (curl -fsS --max-time 10 -H 'content-type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"soak-password-1\"}" "$BASE/api/auth/login" || true) \
    | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')"
[[ -n "$TOKEN" ]] || die "login gave no token"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
(
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        echo "$(date +%s) $(rss_kib)"
        sleep 2
    done
) >"$WORK/rss.txt" &
SAMPLER_PID=$!

log "soaking $BASE for $DURATION with $CONNECTIONS connections (start RSS $(( $(rss_kib) / 1024 )) MiB)"
timeout $(($(seconds "$DURATION") + 60)) \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s -s "$ROOT/bench/soak.lua" \
    "$BASE" -- "$TOKEN" >"$WORK/wrk.txt" 2>&1 || { cat "$WORK/wrk.txt" >&2; die "wrk failed"; }
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""

failures=()
kill -0 "$SERVER_PID" 2>/dev/null || failures+=("the showcase exited during the run")
health="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/api/health" || true)"
[[ "$health" == 200 ]] || failures+=("/api/health answered '$health' after the run")

statuses="$(sed -n 's/^SOAK_STATUSES //p' "$WORK/wrk.txt")"
requests="$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")"
rate="$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")"
[[ -n "$statuses" ]] || failures+=("wrk printed no status counts")
for pair in $statuses; do
    [[ "$EXPECTED_STATUSES" == *" ${pair%%=*} "* ]] \
        || failures+=("${pair#*=} answers with status ${pair%%=*}, which the mix does not ask for")
done
if grep -q 'Socket errors' "$WORK/wrk.txt"; then
    failures+=("wrk: $(grep 'Socket errors' "$WORK/wrk.txt" | sed 's/^ *//')")
fi

# Memory: the sample nearest the middle of the run against the last one.
read -r first_kib middle_kib last_kib peak_kib samples < <(awk '
    { t[NR] = $1; r[NR] = $2; if ($2 > peak) peak = $2 }
    END { m = int((NR + 1) / 2); print r[1], r[m], r[NR], peak, NR }' "$WORK/rss.txt")
growth_kib=$((last_kib - middle_kib))
# wrk's rate is steady, so half the requests fall in the second half.
second_half_requests=$(( ${requests:-0} / 2 ))
bytes_per_request=$(( growth_kib * 1024 / (second_half_requests > 0 ? second_half_requests : 1) ))
if ((growth_kib > RSS_NOISE_MB * 1024 && bytes_per_request > MAX_BYTES_PER_REQUEST)); then
    failures+=("memory grew by $((growth_kib / 1024)) MiB in the second half, $bytes_per_request bytes a request (limits $RSS_NOISE_MB MiB and $MAX_BYTES_PER_REQUEST bytes a request)")
fi

cat <<REPORT

| duration | requests | req/s | statuses | RSS start | RSS middle | RSS end | RSS peak | 2nd-half growth |
|---|---:|---:|---|---:|---:|---:|---:|---:|
| $DURATION | $requests | $rate | $statuses | $((first_kib / 1024)) MiB | $((middle_kib / 1024)) MiB | $((last_kib / 1024)) MiB | $((peak_kib / 1024)) MiB | $((growth_kib / 1024)) MiB ($bytes_per_request B/request) |

($samples memory samples; the start is after the first requests, the middle and end are
sampled under load.)
REPORT

if ((${#failures[@]})); then
    printf 'FAILED:\n' >&2
    printf '  - %s\n' "${failures[@]}" >&2
    tail -n 20 "$WORK/showcase.log" >&2
    exit 1
fi
log "passed: only the statuses asked for, no socket errors, memory flat in the second half"
