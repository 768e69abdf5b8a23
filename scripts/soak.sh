#!/usr/bin/env bash
# Soak: steady, bounded load on the REST API against the testkit fakes, watching for memory growth and
# error growth (docs/reliability.md).
#
#   scripts/soak.sh                                   # release build, 10 minutes, verdict at the end
#   SOAK_SECONDS=300 SKIP_BUILD=1 scripts/soak.sh      # reuse the binaries, 5 minutes
#
# Knobs: SOAK_SECONDS (600), SOAK_CONNECTIONS (8 wrk connections), SOAK_THREADS (2), SOAK_DELAY_MS (20:
# each connection pauses this long between requests, so the rate stays bounded instead of saturating
# the machine), SOAK_SAMPLE_SECONDS (10), SOAK_OUT (directory for the CSV and the logs), PROFILE
# (release), CARGO_TARGET_DIR, SOAK_REDIS_URL (unset: in-process cache and limiter).
#
# Every SOAK_SAMPLE_SECONDS the api's resident memory (VmRSS of /proc/PID/status) and its request and
# error counts (from /metrics) go to soak.csv. Verdict: memory is flat when the average RSS of the last
# third is within 10% of the middle third's (the first third is warm-up: caches and pools fill); the
# error rate is not growing when the share of failed requests in the last third is at most the middle
# third's plus 0.1 percentage point. Exit status 0 only when both hold.
#
# Needs wrk (Debian: apt-get install -y wrk), curl and python3. Everything binds to 127.0.0.1; every
# process started here is stopped on exit.
set -euo pipefail

SOAK_SECONDS=${SOAK_SECONDS:-600}
CONNS=${SOAK_CONNECTIONS:-8}
THREADS=${SOAK_THREADS:-2}
DELAY_MS=${SOAK_DELAY_MS:-20}
SAMPLE=${SOAK_SAMPLE_SECONDS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}
BIN=$TARGET/$PROFILE
OUT=${SOAK_OUT:-$(mktemp -d /tmp/integrations-soak.XXXXXX)}
mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
JIRA=127.0.0.1:$(free_port) GITHUB=127.0.0.1:$(free_port) SLACK=127.0.0.1:$(free_port) API=127.0.0.1:$(free_port)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is missing (apt-get install -y wrk)" >&2; exit 2; }
if [[ -z "${SKIP_BUILD:-}" ]]; then
  (cd "$ROOT" && cargo build --profile "$PROFILE" --locked -p integrations-api -p integration-testkit \
      --bin integrations-api --bin integrations-fakes)
fi

wait_http() { for _ in $(seq 1 600); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "timeout: $1" >&2; return 1; }

"$BIN/integrations-fakes" --jira "$JIRA" --github "$GITHUB" --slack "$SLACK" --github-rate-limit 1000000000 \
    >"$OUT/fakes.log" 2>&1 &
PIDS+=($!)

# the api: embedded SQLite (fresh), a quota that never binds, connections from the environment
redis_env=()
[[ -n "${SOAK_REDIS_URL:-}" ]] && redis_env=(REDIS_URL="$SOAK_REDIS_URL")
env -i PATH="$PATH" INTEGRATIONS_BIND="$API" INTEGRATIONS_DATA_DIR="$OUT/data" LOG_LEVEL=warn LOG_FORMAT=json \
    RATE_LIMIT_PER_MINUTE=100000000 "${redis_env[@]}" \
    JIRA_BASE_URL="http://$JIRA" JIRA_USERNAME=bot@example.com JIRA_API_TOKEN=fake-api-token \
    GITHUB_API_URL="http://$GITHUB" GITHUB_TOKEN=ghp_fakeOctocatToken0000000000000000000 \
    SLACK_API_URL="http://$SLACK/api/" SLACK_BOT_TOKEN=xoxb-fake-bot-token \
    "$BIN/integrations-api" >"$OUT/api.log" 2>&1 &
API_PID=$!
PIDS+=($API_PID)
wait_http "http://$API/readyz"
sleep 0.3

# the mix: upstream reads (uncached), cached reads, a write, the registry search, an expected 404
cat >"$OUT/soak.lua" <<EOF
local requests = {
  wrk.format("GET", "/api/integrations/jira/projects/ENG?cache=false"),
  wrk.format("GET", "/api/integrations/jira/issues?project_key=ENG&cache=false"),
  wrk.format("GET", "/api/integrations/github/repos/octocat/hello-world?cache=false"),
  wrk.format("GET", "/api/integrations/jira/projects/ENG"),
  wrk.format("GET", "/api/tools?q=create%20issue"),
  wrk.format("POST", "/api/tools/jira_add_comment/invoke", {["content-type"] = "application/json"},
             '{"parameters": {"key": "ENG-1", "body": "soak"}}'),
  wrk.format("GET", "/api/integrations/jira/projects/NOPE?cache=false"),
}
local i = 0
request = function()
  i = i % #requests + 1
  return requests[i]
end
delay = function() return $DELAY_MS end
EOF

# samples: elapsed s, VmRSS kB, HTTP requests, failed HTTP requests (5xx, and 4xx other than the
# expected 404s), tool calls, failed tool calls other than not_found
sample() {
  local t=$1 rss
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$API_PID/status" 2>/dev/null || echo 0)
  curl -fs "http://$API/metrics" >"$OUT/metrics.last" || true
  python3 - "$t" "$rss" "$OUT/metrics.last" <<'PY' >>"$OUT/soak.csv"
import re, sys
text = open(sys.argv[3]).read()
req = err = calls = failed = 0.0
for line in text.splitlines():
    if line.startswith("#"):
        continue
    m = re.match(r'(\w+)\{(.*)\}\s+([0-9.e+-]+)$', line)
    if not m:
        continue
    name, labels, value = m.group(1), m.group(2), float(m.group(3))
    if name == "http_requests_total" and 'route="/metrics"' not in labels:
        req += value
        status = re.search(r'status="(\d+)"', labels)
        code = int(status.group(1)) if status else 0
        if code >= 500 or (code >= 400 and code != 404):
            err += value
    if name == "integration_tool_calls_total":
        calls += value
        if 'outcome="failure"' in labels and 'error_kind="not_found"' not in labels:
            failed += value
print(f"{sys.argv[1]},{sys.argv[2]},{int(req)},{int(err)},{int(calls)},{int(failed)}")
PY
}

echo "elapsed_s,rss_kb,http_requests,http_errors,tool_calls,tool_failures" >"$OUT/soak.csv"
echo "soak: $SOAK_SECONDS s, $CONNS connections x ${DELAY_MS} ms pause, api pid $API_PID, output in $OUT"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
sample 0
wrk -t"$THREADS" -c"$CONNS" -d"${SOAK_SECONDS}s" --timeout 10s --latency -s "$OUT/soak.lua" "http://$API" \
    >"$OUT/wrk.txt" 2>&1 &
WRK_PID=$!
PIDS+=($WRK_PID)
start=$(date +%s)
while kill -0 "$WRK_PID" 2>/dev/null; do
  sleep "$SAMPLE"
  kill -0 "$WRK_PID" 2>/dev/null || break
  sample $(( $(date +%s) - start ))
done
wait "$WRK_PID" || true
sample $(( $(date +%s) - start ))
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$OUT/wrk.txt"

python3 - "$OUT/soak.csv" <<'PY'
import csv, sys
rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(open(sys.argv[1]))]
rows = [r for r in rows if r["elapsed_s"] > 0]
if len(rows) < 6:
    print(f"VERDICT: FAIL (only {len(rows)} samples; run at least 60 s)")
    sys.exit(1)
n = len(rows) // 3
middle, last = rows[n:2 * n], rows[2 * n:]
avg = lambda xs: sum(xs) / len(xs)
rss_mid, rss_last = avg([r["rss_kb"] for r in middle]), avg([r["rss_kb"] for r in last])
def rate(part, prev):
    req = part[-1]["http_requests"] - prev["http_requests"]
    err = part[-1]["http_errors"] - prev["http_errors"] + part[-1]["tool_failures"] - prev["tool_failures"]
    return (err / req if req else 0.0), req
err_mid, req_mid = rate(middle, rows[n - 1])
err_last, req_last = rate(last, middle[-1])
total = rows[-1]["http_requests"]
secs = rows[-1]["elapsed_s"]
flat = rss_last <= rss_mid * 1.10
steady = err_last <= err_mid + 0.001
print(f"samples: {len(rows)} over {secs:.0f} s; requests: {total:.0f} ({total / secs:.0f}/s); "
      f"errors: {rows[-1]['http_errors']:.0f} http, {rows[-1]['tool_failures']:.0f} tool")
print(f"rss: first {rows[0]['rss_kb'] / 1024:.1f} MiB, max {max(r['rss_kb'] for r in rows) / 1024:.1f} MiB, "
      f"last {rows[-1]['rss_kb'] / 1024:.1f} MiB; middle third avg {rss_mid / 1024:.1f} MiB, "
      f"last third avg {rss_last / 1024:.1f} MiB ({(rss_last / rss_mid - 1) * 100:+.1f}%)")
print(f"error rate: middle third {err_mid * 100:.3f}% of {req_mid:.0f}, last third {err_last * 100:.3f}% of {req_last:.0f}")
print(f"VERDICT: memory {'flat' if flat else 'GROWING'}, errors {'not growing' if steady else 'GROWING'} -> "
      f"{'PASS' if flat and steady else 'FAIL'}")
sys.exit(0 if flat and steady else 1)
PY
