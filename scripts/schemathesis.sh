#!/usr/bin/env bash
# Property-based tests of the REST API with schemathesis, against a running api on the fakes.
#
# 1. installs schemathesis (pinned) into a virtualenv cached under /var/tmp;
# 2. builds (debug) and starts `integrations-fakes` (Jira, GitHub, Slack) and `integrations-api` on
#    SQLite in a temporary directory, its connections pointed at the fakes through the environment;
# 3. creates an API key with every scope (`integrations-api keys create`);
# 4. runs `st run` on /api/openapi.json with the key: no 5xx (not_a_server_error), every response
#    as documented (response_schema_conformance, status_code_conformance, content_type_conformance);
# 5. runs it again without a key: every non-public operation must answer 401 with the standard
#    error body (custom check `only_unauthorized` in scripts/schemathesis/hooks.py; a method the
#    route does not have at all answers 405), checked again from the HAR report (summary.py).
# Exits non-zero on any failure. Reports (JUnit, HAR) are left in $SCHEMATHESIS_OUT.
#
# Bounds: at most SCHEMATHESIS_MAX_EXAMPLES test cases per operation and phase (default 30; phases
# examples, coverage, fuzzing; no stateful phase: the document has no links), and each `st run` is
# killed after SCHEMATHESIS_MAX_TIME + 120 seconds (default 600). (`st run --max-time` is not used:
# it makes fuzzing repeat until the time is spent.) About 3 minutes per run on 2 busy cores.
# Every operation of the document is tested, the destructive ones included: DELETE
# /api/integrations/{name} and configure get generated connection names, and the connections to
# the fakes come from the environment (a stored `jira` would take precedence; no run generated
# one). Key management, MCP and the webhook routes are not in the document.
#
# Knobs (environment): CARGO_TARGET_DIR (default ./target), SCHEMATHESIS_VENV, SCHEMATHESIS_MAX_EXAMPLES,
# SCHEMATHESIS_MAX_TIME, SCHEMATHESIS_SEED (default random, printed), SCHEMATHESIS_WORKERS (default 2),
# SCHEMATHESIS_OUT (reports; default: a temporary directory, kept), SKIP_BUILD=1.
#
#   scripts/schemathesis.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCHEMATHESIS_VERSION="4.32.5"
VENV="${SCHEMATHESIS_VENV:-/var/tmp/schemathesis-venv-${SCHEMATHESIS_VERSION}}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-30}"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-600}"
WORKERS="${SCHEMATHESIS_WORKERS:-2}"
SEED="${SCHEMATHESIS_SEED:-$RANDOM}"

log() { printf '== %s\n' "$*" >&2; }

# --- schemathesis in a cached virtualenv ------------------------------------------------------------
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$VENV/bin/st" --version >&2

# --- binaries -----------------------------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building integrations-api and integrations-fakes (debug) in $TARGET"
    (cd "$ROOT" && cargo build --locked -p integrations-api -p integration-testkit --bins)
fi
API_BIN="$TARGET/debug/integrations-api"
FAKES_BIN="$TARGET/debug/integrations-fakes"
[[ -x "$API_BIN" && -x "$FAKES_BIN" ]] || { echo "missing $API_BIN or $FAKES_BIN" >&2; exit 1; }

WORK="$(mktemp -d /tmp/schemathesis.XXXXXX)"
OUT="${SCHEMATHESIS_OUT:-$WORK/reports}"
mkdir -p "$OUT"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -z "${SCHEMATHESIS_OUT:-}" ]]; then
        log "reports and logs: $WORK (kept)"
    else
        rm -rf "$WORK/data"
    fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() {
    local url="$1"
    for _ in $(seq 1 200); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$url did not answer" >&2
    return 1
}

# --- fakes and api ----------------------------------------------------------------------------------
JIRA_PORT="$(free_port)"; GITHUB_PORT="$(free_port)"; SLACK_PORT="$(free_port)"; API_PORT="$(free_port)"
"$FAKES_BIN" --jira "127.0.0.1:$JIRA_PORT" --github "127.0.0.1:$GITHUB_PORT" --slack "127.0.0.1:$SLACK_PORT" \
    --github-rate-limit 10000000 >"$WORK/fakes.log" 2>&1 &
PIDS+=($!)

export INTEGRATIONS_DATA_DIR="$WORK/data"
KEY="$("$API_BIN" keys create --name schemathesis --scopes admin,tools:read,tools:write 2>>"$WORK/api.log")"
[[ "$KEY" == isk_* ]] || { echo "could not create an API key" >&2; exit 1; }

# Limits raised so that the run tests the API, not the rate limiters (429 would hide the handlers).
env INTEGRATIONS_BIND="127.0.0.1:$API_PORT" LOG_LEVEL=warn \
    RATE_LIMIT_PER_MINUTE=10000000 API_KEY_RATE_LIMIT_PER_MINUTE=0 MAX_RETRY_ATTEMPTS=0 \
    JIRA_BASE_URL="http://127.0.0.1:$JIRA_PORT" JIRA_USERNAME=bot@example.com JIRA_API_TOKEN=fake-api-token \
    GITHUB_API_URL="http://127.0.0.1:$GITHUB_PORT" GITHUB_TOKEN=ghp_fakeOctocatToken0000000000000000000 \
    SLACK_API_URL="http://127.0.0.1:$SLACK_PORT/api/" SLACK_BOT_TOKEN=xoxb-fake-bot-token \
    SLACK_SIGNING_SECRET=schemathesis-signing-secret \
    "$API_BIN" serve >>"$WORK/api.log" 2>&1 &
PIDS+=($!)
BASE="http://127.0.0.1:$API_PORT"
wait_http "$BASE/healthz"
for _ in $(seq 1 200); do grep -q '^slack=' "$WORK/fakes.log" && break; sleep 0.1; done
grep -q '^slack=' "$WORK/fakes.log" || { echo "the fakes did not start" >&2; cat "$WORK/fakes.log" >&2; exit 1; }
for provider in jira github slack; do
    curl -fsS -H "Authorization: Bearer $KEY" "$BASE/api/integrations/$provider/status" \
        | grep -q '"configured":true' || { echo "$provider is not configured" >&2; exit 1; }
done

COMMON=(
    --phases examples,coverage,fuzzing
    --max-examples "$MAX_EXAMPLES"
    --seed "$SEED"
    --workers "$WORKERS"
    --request-timeout 40
    --generation-database none
    --no-color
)
log "seed $SEED, $MAX_EXAMPLES examples per operation, reports in $OUT"

# --- 1: with a key ----------------------------------------------------------------------------------
status=0
log "run 1: with an API key holding every scope"
(cd "$WORK" && timeout "$((MAX_TIME + 120))" "$VENV/bin/st" run "$BASE/api/openapi.json" "${COMMON[@]}" \
    -H "Authorization: Bearer $KEY" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --report junit,har --report-junit-path "$OUT/with-key.junit.xml" --report-har-path "$OUT/with-key.har") \
    || status=1
"$VENV/bin/python" "$ROOT/scripts/schemathesis/summary.py" "$OUT/with-key.har" || status=1

# --- 2: without a key -------------------------------------------------------------------------------
log "run 2: without a key (every non-public operation must answer 401)"
(cd "$WORK" && SCHEMATHESIS_HOOKS="$ROOT/scripts/schemathesis/hooks.py" \
    timeout "$((MAX_TIME + 120))" "$VENV/bin/st" run "$BASE/api/openapi.json" "${COMMON[@]}" \
    --exclude-operation-id healthz --exclude-operation-id readyz \
    --exclude-operation-id openapi --exclude-operation-id docs \
    --checks only_unauthorized \
    --report junit,har --report-junit-path "$OUT/no-key.junit.xml" --report-har-path "$OUT/no-key.har") \
    || status=1
curl -fsS "$BASE/api/openapi.json" -o "$OUT/openapi.json"
"$VENV/bin/python" "$ROOT/scripts/schemathesis/summary.py" "$OUT/no-key.har" --unauthorized "$OUT/openapi.json" \
    || status=1

if grep -qiE 'panicked|panic' "$WORK/api.log"; then
    echo "the api panicked, see $WORK/api.log" >&2
    status=1
fi
if [[ $status -eq 0 ]]; then log "schemathesis: no failure"; else log "schemathesis: FAILURES (see above)"; fi
exit $status
