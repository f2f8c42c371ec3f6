#!/usr/bin/env bash
# Orchard's whole test suite: unit and property tests, the storage conformance story and the
# HTTP tests on SQLite AND PostgreSQL, the workers, requests generated from the OpenAPI document
# against a real server (schemathesis), and the browser tests in Debian's Chromium. It fails
# (never skips) when PostgreSQL, Node, Chromium or schemathesis is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export ORCHARD_TEST_POSTGRES_URL="${ORCHARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

fail() { echo "test.sh: $*" >&2; exit 1; }

command -v psql >/dev/null || fail "psql is missing (apt-get install -y postgresql-client)"
psql "$ORCHARD_TEST_POSTGRES_URL" -qtAc 'SELECT 1' >/dev/null 2>&1 \
  || fail "PostgreSQL is not reachable at $ORCHARD_TEST_POSTGRES_URL (start it, or set ORCHARD_TEST_POSTGRES_URL)"
command -v node >/dev/null || fail "node is missing (apt-get install -y nodejs npm)"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || fail "Chromium is missing at $CHROMIUM (apt-get install -y chromium)"
command -v schemathesis >/dev/null || fail "schemathesis is missing (pip install schemathesis==4.32.5)"

echo "== cargo test: everything, storage conformance on SQLite and PostgreSQL"
cargo test --workspace --all-targets

echo "== HTTP tests again, on PostgreSQL"
ORCHARD_TEST_BACKEND=postgres cargo test -p orchard-web --test http

cargo build -p orchard
export ORCHARD_BIN="${ORCHARD_BIN:-$(realpath "${CARGO_TARGET_DIR:-target}")/debug/orchard}"

echo "== API fuzzing (schemathesis, from the OpenAPI document)"
bash scripts/api-fuzz.sh

echo "== browser tests (Playwright + $CHROMIUM)"
(cd e2e && npm ci --no-audit --no-fund --silent && CHROMIUM="$CHROMIUM" npm test)
