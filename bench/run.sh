#!/usr/bin/env bash
# Load benchmark: the Waypost showcase against a plain axum server (bench/axum-baseline) doing
# the same work — the same answers, header for header, with the contract's request id, nosniff
# and per-route rate limit hand-written in tower (BASELINE_SAME_ANSWERS=1) — and, for scale,
# against the bare axum server (the same bodies, none of those headers or counts) and the same
# server with protections from tower-http and tower_governor (BASELINE_PROTECTIONS=1), on the
# same SQLite file, measured with wrk in one run, interleaved.
#
#   bash bench/run.sh
#
# Endpoints: GET /api/hello, GET /api/posts/{id}, GET /api/posts?page=2.
# Prints a markdown table (median req/s of the rounds, the median of the rounds' ratios, median
# p99, each server's CPU time per request) and writes it, the raw wrk outputs and the server
# logs to bench/results/<UTC time>/ (gitignored).
#
# Knobs (environment):
#   DURATION=8s         length of each measured wrk run (wrk syntax: 10, 10s, 1m)
#   WARMUP=2s           unmeasured wrk run per server and endpoint before the rounds; 0 skips it
#   CONNECTIONS=64      wrk -c
#   THREADS=2           wrk -t
#   ROUNDS=5            measured runs per server and endpoint, interleaved waypost, axum (same
#                       answers), axum (bare), axum+protections, waypost, …
#   POSTS=200           published posts seeded into the fresh database
#   SHOWCASE_PORT=3000  BASELINE_PORT=3001  PROTECTED_PORT=3002  SAME_PORT=3003
#                       (127.0.0.1 only)
#   SKIP_BUILD=1        reuse the release binaries already in target/release
#   RATE_LIMIT_DEFAULT  passed to the showcase and the same-answers baseline; defaults here to
#                       100000000/1s so the per-IP rate limit (300/60s by default) never answers
#                       wrk with 429s.
#                       Every other variable set in the caller's environment reaches the servers
#                       unchanged too, except HOST, PORT, DATABASE_URL and RUST_LOG (set to warn
#                       for the showcase), and BASELINE_SAME_ANSWERS and BASELINE_PROTECTIONS,
#                       set for the one axum server each is for.
#
# Only 127.0.0.1 is used; the servers are killed on exit; every wait and wrk run is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-8s}"
WARMUP="${WARMUP:-2s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-5}"
POSTS="${POSTS:-200}"
SHOWCASE_PORT="${SHOWCASE_PORT:-3000}"
BASELINE_PORT="${BASELINE_PORT:-3001}"
PROTECTED_PORT="${PROTECTED_PORT:-3002}"
SAME_PORT="${SAME_PORT:-3003}"
export RATE_LIMIT_DEFAULT="${RATE_LIMIT_DEFAULT:-100000000/1s}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

RESULTS="$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/waypost-bench.XXXXXX")"
DB="$WORK/bench.db"
DATABASE_URL="sqlite://$DB"
SHOWCASE_PID=""
BASELINE_PID=""
PROTECTED_PID=""
SAME_PID=""
STARTED_PID=""

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

cleanup() {
    stop "$SHOWCASE_PID"
    stop "$BASELINE_PID"
    stop "$PROTECTED_PID"
    stop "$SAME_PID"
    # A server whose start was interrupted before its pid was kept under its own name.
    stop "$STARTED_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits (at most 30 s) until `url` answers 2xx; fails early if the server process died.
wait_ready() {
    local url="$1" pid="$2" name="$3"
    for _ in $(seq 300); do
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$RESULTS/$name.log" >&2; die "$name exited"; }
        sleep 0.1
    done
    tail -n 20 "$RESULTS/$name.log" >&2
    die "$name did not answer $url within 30 s"
}

port_free() {
    ! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null \
        || die "something already listens on 127.0.0.1:$1"
}

start_showcase() {
    port_free "$SHOWCASE_PORT"
    HOST=127.0.0.1 PORT="$SHOWCASE_PORT" DATABASE_URL="$DATABASE_URL" RUST_LOG=warn \
        "$TARGET_DIR/release/showcase" >>"$RESULTS/showcase.log" 2>&1 &
    SHOWCASE_PID=$!
    wait_ready "http://127.0.0.1:$SHOWCASE_PORT/api/hello" "$SHOWCASE_PID" showcase
}

# Starts axum-baseline on 127.0.0.1:$1, logging to $RESULTS/$2.log, with the environment
# assignments $3… (none: the bare server; the caller's own mode variables never reach it); its
# pid goes to STARTED_PID.
start_axum() {
    local port="$1" name="$2"
    shift 2
    port_free "$port"
    env -u BASELINE_SAME_ANSWERS -u BASELINE_PROTECTIONS \
        "$@" HOST=127.0.0.1 PORT="$port" DATABASE_URL="$DATABASE_URL" \
        "$TARGET_DIR/release/axum-baseline" >>"$RESULTS/$name.log" 2>&1 &
    STARTED_PID=$!
    wait_ready "http://127.0.0.1:$port/api/hello" "$STARTED_PID" "$name"
}

# The head GET $1 answers with, without its status line and `date`, one header per line.
response_head() {
    local head
    head="$(curl -fsS --max-time 5 -o /dev/null -D - "$1")" || die "GET $1 failed"
    printf '%s\n' "$head" | tr -d '\r' | awk 'NR > 1 && NF > 0' | grep -iv '^date:'
}

# The names of the headers GET $1 answers with, sorted, one per line.
header_names() { response_head "$1" | awk -F: '{ print tolower($1) }' | sort; }

# The `RateLimit-Policy` and `RateLimit` headers GET $1 answers with, the count and the seconds
# left (which move between requests) left out.
rate_limit_headers() {
    response_head "$1" | { grep -i '^ratelimit' || true; } | sed -E 's/;r=[0-9]+;t=[0-9]+$/;r=N;t=T/' | sort
}

# Seeds $POSTS published posts straight into the migrated schema, in the showcase's formats:
# id 32 lowercase hex, unique titles of 5–200 chars, RFC 3339 UTC with 6 fraction digits, one
# second apart. (Seeding through `POST /api/posts` would depend on whatever auth/CSRF the
# showcase requires for writes at the time; this does not.)
seed_posts() {
    sqlite3 -cmd ".timeout 5000" "$DB" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $POSTS),
stamped(i, at) AS (
    SELECT i, strftime('%Y-%m-%dT%H:%M:%S', 'now', printf('-%d seconds', $POSTS - i))
              || printf('.%06dZ', (i * 7919) % 1000000)
    FROM n
)
INSERT INTO posts (id, title, content, category, published, author_id, created_at, updated_at)
SELECT lower(hex(randomblob(16))),
       printf('Benchmark post number %04d', i),
       printf('Post %d. ', i) || 'Waypost brings the Next.js API route handler model to Rust: '
           || 'a folder tree of route.rs files is the API, with body limits, CSRF, CORS, '
           || 'rate limits, sessions, validation and storage switched on by default. '
           || 'This paragraph only gives the post a realistic size for the benchmark.',
       CASE i % 3 WHEN 0 THEN 'rust' WHEN 1 THEN 'web' ELSE NULL END,
       1, NULL, at, at
FROM stamped;
SQL
    local count
    count="$(sqlite3 "$DB" 'SELECT COUNT(*) FROM posts WHERE published = 1')"
    [[ "$count" -eq "$POSTS" ]] || die "seeded $count posts, expected $POSTS"
}

# All servers must answer every benchmarked path with 200 and the same body, and the showcase and
# the same-answers baseline with the same headers (`RateLimit` values too, but for the count), or
# the comparison is not of the same work.
check_same_answers() {
    local path a b
    for path in "${PATHS[@]}"; do
        a="$(curl -fsS --max-time 5 "http://127.0.0.1:$SAME_PORT$path")" \
            || die "axum-baseline (same answers): GET $path failed"
        [[ "$a" == "$(curl -fsS --max-time 5 "http://127.0.0.1:$BASELINE_PORT$path")" ]] \
            || die "GET $path differs between axum-baseline with and without the contract's headers"
        a="$(header_names "http://127.0.0.1:$SHOWCASE_PORT$path")"
        b="$(header_names "http://127.0.0.1:$SAME_PORT$path")"
        [[ "$a" == "$b" ]] || die "GET $path: the showcase and axum-baseline (same answers) send different headers:
  showcase: $(echo $a)
  axum:     $(echo $b)"
        a="$(rate_limit_headers "http://127.0.0.1:$SHOWCASE_PORT$path")"
        b="$(rate_limit_headers "http://127.0.0.1:$SAME_PORT$path")"
        [[ -n "$a" && "$a" == "$b" ]] || die "GET $path: the RateLimit headers differ: showcase $(echo $a), axum $(echo $b)"
        a="$(curl -fsS --max-time 5 "http://127.0.0.1:$SHOWCASE_PORT$path")" \
            || die "showcase: GET $path failed"
        b="$(curl -fsS --max-time 5 "http://127.0.0.1:$BASELINE_PORT$path")" \
            || die "axum-baseline: GET $path failed"
        [[ "$(curl -fsS --max-time 5 "http://127.0.0.1:$PROTECTED_PORT$path")" == "$b" ]] \
            || die "GET $path differs between axum-baseline with and without protections"
        [[ "$a" == "$b" ]] || die "GET $path differs between the servers:
  showcase: ${a:0:300}
  axum:     ${b:0:300}"
    done
}

# One wrk run, bounded by `timeout`; the raw output goes to $2.
run_wrk() {
    local url="$1" out="$2" duration="$3"
    timeout $(($(seconds "$duration") + 30)) \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --timeout 5s --latency "$url" >"$out" 2>&1 \
        || die "wrk failed on $url (see $out)"
}

req_per_sec() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }

# The 99th percentile of the latency distribution, in milliseconds.
p99_ms() {
    awk '$1 == "99%" {
        v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
        if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000; else if (unit == "m") v *= 60000
        printf "%.2f", v
    }' "$1"
}

# Counts of non-2xx/3xx responses and socket errors in one wrk output ("" when clean).
problems() {
    awk '/Non-2xx or 3xx responses:/ { printf "%s non-2xx; ", $NF }
         /Socket errors:/ { sub(/^ *Socket errors: */, ""); printf "socket errors: %s; ", $0 }' "$1"
}

# The CPU time (user + system, in clock ticks) process $1 has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# The number of requests one wrk output reports.
requests_done() { awk '/ requests in / { print $1 }' "$1"; }

# The server's CPU per request of one run, saved beside its wrk output.
cpu_per_request() { cat "$1.cpu"; }

# The median over the rounds of `measure` (a function of one wrk output) for endpoint $1 on
# server $2.
column_median() {
    local name="$1" server="$2" measure="$3" r
    for r in $(seq "$ROUNDS"); do "$measure" "$RESULTS/$name-$server-$r.txt"; echo; done \
        | grep -v '^$' | median
}

# The median of the rounds' waypost/<server $2> req/s ratios for endpoint $1: a round's runs are
# neighbours in time, so a slow spell of the machine (they come and go) mostly hits all of them.
ratio_median() {
    local name="$1" server="$2" r
    for r in $(seq "$ROUNDS"); do
        awk -v w="$(req_per_sec "$RESULTS/$name-waypost-$r.txt")" \
            -v a="$(req_per_sec "$RESULTS/$name-$server-$r.txt")" 'BEGIN { printf "%.4f\n", w / a }'
    done | median | xargs printf '%.3f'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

main() {
    ensure_tools wrk sqlite3
    build_release showcase axum-baseline
    mkdir -p "$RESULTS"
    log "results: $RESULTS"

    log "migrating a fresh database ($DB) by starting the showcase once"
    start_showcase
    stop "$SHOWCASE_PID"
    SHOWCASE_PID=""
    log "seeding $POSTS published posts"
    seed_posts

    local post_id
    post_id="$(sqlite3 "$DB" "SELECT id FROM posts ORDER BY created_at LIMIT 1 OFFSET $((POSTS / 2))")"
    NAMES=(hello post posts-page-2)
    PATHS=("/api/hello" "/api/posts/$post_id" "/api/posts?page=2")

    log "starting showcase (127.0.0.1:$SHOWCASE_PORT), axum-baseline with the same answers" \
        "(127.0.0.1:$SAME_PORT), bare (127.0.0.1:$BASELINE_PORT) and with protections" \
        "(127.0.0.1:$PROTECTED_PORT)"
    start_showcase
    # The same answers as the showcase: request id, nosniff, per-route rate limit.
    start_axum "$SAME_PORT" axum-same BASELINE_SAME_ANSWERS=1
    SAME_PID="$STARTED_PID"
    start_axum "$BASELINE_PORT" axum
    BASELINE_PID="$STARTED_PID"
    start_axum "$PROTECTED_PORT" axum-protected BASELINE_PROTECTIONS=1
    PROTECTED_PID="$STARTED_PID"
    check_same_answers

    local table="$RESULTS/table.md" notes="" slow="" i round server port out
    {
        echo "| endpoint | waypost req/s | axum req/s | ratio waypost/axum | bare axum req/s | ratio waypost/bare axum | axum+protections req/s | ratio waypost/axum+protections | waypost p99 | axum p99 | waypost CPU/req | axum CPU/req | bare axum CPU/req | axum+protections CPU/req |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    } >"$table"
    for i in "${!PATHS[@]}"; do
        local name="${NAMES[$i]}" path="${PATHS[$i]}"
        if [[ "$(seconds "$WARMUP")" -gt 0 ]]; then
            log "GET $path: warm-up ($WARMUP each)"
            run_wrk "http://127.0.0.1:$SHOWCASE_PORT$path" "$RESULTS/$name-waypost-warmup.txt" "$WARMUP"
            run_wrk "http://127.0.0.1:$SAME_PORT$path" "$RESULTS/$name-same-warmup.txt" "$WARMUP"
            run_wrk "http://127.0.0.1:$BASELINE_PORT$path" "$RESULTS/$name-axum-warmup.txt" "$WARMUP"
            run_wrk "http://127.0.0.1:$PROTECTED_PORT$path" "$RESULTS/$name-protected-warmup.txt" "$WARMUP"
        fi
        for round in $(seq "$ROUNDS"); do
            for server in waypost same axum protected; do
                local pid="$SHOWCASE_PID" before after
                port="$SHOWCASE_PORT"
                [[ "$server" == same ]] && port="$SAME_PORT" && pid="$SAME_PID"
                [[ "$server" == axum ]] && port="$BASELINE_PORT" && pid="$BASELINE_PID"
                [[ "$server" == protected ]] && port="$PROTECTED_PORT" && pid="$PROTECTED_PID"
                out="$RESULTS/$name-$server-$round.txt"
                log "GET $path: $server, round $round/$ROUNDS ($DURATION)"
                before="$(cpu_ticks "$pid")"
                run_wrk "http://127.0.0.1:$port$path" "$out" "$DURATION"
                after="$(cpu_ticks "$pid")"
                [[ -n "$(req_per_sec "$out")" ]] || die "could not read req/s from $out"
                # The server's own CPU time per request (µs), which wrk's share does not blur.
                awk -v b="$before" -v a="$after" -v t="$(getconf CLK_TCK)" -v n="$(requests_done "$out")" \
                    'BEGIN { printf "%.2f\n", (a - b) * 1e6 / t / n }' >"$out.cpu"
                local problem
                problem="$(problems "$out")"
                [[ -z "$problem" ]] || notes+="- $name, $server, round $round: ${problem%; }"$'\n'
            done
        done
        local wr sr ar pr wp sp wc sc ac pc ratio bare_ratio protected_ratio
        wr="$(column_median "$name" waypost req_per_sec)"
        sr="$(column_median "$name" same req_per_sec)"
        ar="$(column_median "$name" axum req_per_sec)"
        pr="$(column_median "$name" protected req_per_sec)"
        wp="$(column_median "$name" waypost p99_ms)"
        sp="$(column_median "$name" same p99_ms)"
        wc="$(column_median "$name" waypost cpu_per_request)"
        sc="$(column_median "$name" same cpu_per_request)"
        ac="$(column_median "$name" axum cpu_per_request)"
        pc="$(column_median "$name" protected cpu_per_request)"
        ratio="$(ratio_median "$name" same)"
        bare_ratio="$(ratio_median "$name" axum)"
        protected_ratio="$(ratio_median "$name" protected)"
        printf '| GET %s | %.0f | %.0f | %s | %.0f | %s | %.0f | %s | %.2f ms | %.2f ms | %.2f µs | %.2f µs | %.2f µs | %.2f µs |\n' \
            "${path/$post_id/{id\}}" "$wr" "$sr" "$ratio" "$ar" "$bare_ratio" "$pr" "$protected_ratio" \
            "$wp" "$sp" "$wc" "$sc" "$ac" "$pc" >>"$table"
        if awk -v r="$ratio" 'BEGIN { exit !(r < 0.95) }'; then
            slow+="GET ${path/$post_id/{id\}} ($ratio), "
        fi
    done
    {
        echo
        echo "req/s, p99 and CPU/req (the server process's user + system time per request): median" \
            "of $ROUNDS interleaved rounds; the ratio: median of the rounds' ratios; wrk" \
            "-t$THREADS -c$CONNECTIONS -d$DURATION, $POSTS posts, $(nproc) CPUs shared by wrk and" \
            "the server."
        echo "axum: the same answers, hand-written (BASELINE_SAME_ANSWERS=1); bare axum: the same" \
            "bodies without the contract's headers and counts; axum+protections: tower-http and" \
            "tower_governor (BASELINE_PROTECTIONS=1)."
        [[ -z "$slow" ]] || echo "Waypost below 0.95 of axum (same answers) on: ${slow%, }."
        if [[ -n "$notes" ]]; then
            echo
            echo "Runs with errors (their figures are not comparable):"
            printf '%s' "$notes"
        fi
    } >>"$table"
    echo
    cat "$table"
    echo
    log "raw wrk outputs and logs: $RESULTS"
}

main "$@"
