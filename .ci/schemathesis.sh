#!/usr/bin/env bash
# Runs schemathesis (default checks) against the showcase's own OpenAPI document: no server
# error, no response that violates the document. Needs target/debug/showcase (built by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# Call the installed script by its path: a fresh pip install may not have a PATH shim yet.
st="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/st"
if ! "$st" --version 2>/dev/null | grep -q "4.32.5"; then
  python3 -m pip install --quiet "schemathesis==4.32.5"
fi

work=$(mktemp -d)
port=3411
weather_port=3412
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "${weather_pid:-}" ] && kill "$weather_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 .ci/fake_weather.py "$weather_port" &
weather_pid=$!

DATABASE_URL="sqlite://$work/showcase.db" UPLOAD_DIR="$work/uploads" PORT="$port" \
  RATE_LIMIT_DEFAULT="1000000/1s" STRIPE_WEBHOOK_SECRET="whsec_schemathesis" \
  JWT_SECRET="schemathesis-secret-that-is-long-enough-0123456789" \
  WEATHER_API_URL="http://127.0.0.1:$weather_port/weather" RUST_LOG=warn \
  target/debug/showcase &
server_pid=$!

for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break
  sleep 0.1
done

# A signed-in user, so the authenticated operations are exercised past their 401.
curl -sf -X POST "http://127.0.0.1:$port/api/auth/register" -H 'content-type: application/json' \
  -d '{"email":"fuzz@example.com","password":"fuzz-password-1","name":"Fuzz"}' >/dev/null
token=$(curl -sf -X POST "http://127.0.0.1:$port/api/auth/login" -H 'content-type: application/json' \
  -d '{"email":"fuzz@example.com","password":"fuzz-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# One worker: schemathesis' workers are threads, and CPython 3.11.7's ast.parse (which hypothesis
# calls to describe a filter) keeps its recursion depth per interpreter, so two threads parsing at
# once fail with "AST constructor recursion depth mismatch" (python/cpython#106905).
"$st" --config-file .ci/schemathesis.toml run "http://127.0.0.1:$port/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --workers 1 \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
  --request-timeout 10 \
  --seed "${SCHEMATHESIS_SEED:-20261121}"
