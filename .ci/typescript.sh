#!/usr/bin/env bash
# The TypeScript client, end to end: generate it from the showcase's live OpenAPI document with
# `waypost client --ts`, compile it (strict) together with clients/typescript/exercise.ts, and run
# the exercise against the showcase. Also compiles the client of the hand-written sample document,
# which has the shapes the showcase lacks (form bodies, header parameters, inline objects).
# First, the showcase's committed OpenAPI document (examples/showcase/openapi.json) is checked
# against the live one with `waypost openapi --check`: an API change lands with its document.
# Builds nothing but uses target/debug/showcase and target/debug/waypost (built by
# `cargo test --workspace`); only a missing `waypost` is built here.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
showcase="$target/debug/showcase"
waypost="$target/debug/waypost"
client_dir=clients/typescript

if [ ! -x "$waypost" ]; then
  cargo build -p waypost-cli
fi
if [ ! -x "$showcase" ]; then
  echo "error: $showcase is missing; run \`cargo test --workspace\` (or \`cargo build -p showcase\`) first" >&2
  exit 1
fi

work=$(mktemp -d)
cleanup() {
  if [ -n "${server_pid:-}" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A port nobody is using right now (other checks and sessions share the machine).
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
base_url="http://127.0.0.1:$port"

HOST=127.0.0.1 PORT="$port" DATABASE_URL="sqlite://$work/showcase.db" UPLOAD_DIR="$work/uploads" \
  RATE_LIMIT_DEFAULT="1000000/1s" JWT_SECRET="typescript-client-secret-that-is-long-enough-0123" \
  RUST_LOG=warn "$showcase" >"$work/showcase.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  curl -sf "$base_url/api/health" >/dev/null && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: the showcase exited:" >&2
    cat "$work/showcase.log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -sf "$base_url/api/health" >/dev/null || {
  echo "error: the showcase did not answer /api/health within 10s:" >&2
  cat "$work/showcase.log" >&2
  exit 1
}

"$waypost" openapi --spec "$base_url/api/openapi.json" --check examples/showcase/openapi.json
"$waypost" client --ts --spec "$base_url/api/openapi.json" -o "$client_dir/client.ts"
"$waypost" client --ts --spec crates/waypost-build/tests/fixtures/openapi/sample.json \
  -o "$client_dir/sample-client.ts"

(
  cd "$client_dir"
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund
  else
    npm install --no-audit --no-fund
  fi
  rm -rf dist
  # The local compiler, never `npx tsc` unresolved: the npm package named `tsc` is not TypeScript.
  ./node_modules/.bin/tsc -p .
)

BASE_URL="$base_url" node "$client_dir/dist/exercise.js"
