#!/usr/bin/env bash
# Inbound webhook deliveries with a jq transformation under load: the api release build on embedded
# SQLite, one endpoint (verification `none`, events published to the outbox), `wrk` posting one
# small GitHub-like event over CONNS connections for DURATION. Prints wrk's rate and latency, the
# non-2xx answers, the recorded deliveries by status (at most 200 each) and the api's peak RSS.
#
#   deploy/bench/webhooks.sh                                        # a light filter
#   TRANSFORM='{action, n: ([range(100000)] | add)}' deploy/bench/webhooks.sh   # a CPU-heavy one
#   API_BIN=/path/to/integrations-api CONNS=64 DURATION=6s ...
#   DB=pg deploy/bench/webhooks.sh             # a fresh database `webhooks_bench` on the local PostgreSQL
#
# Needs wrk (Debian: apt-get install -y wrk). Binds 127.0.0.1 only; bounded by DURATION.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
API_BIN=${API_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/integrations-api}
CONNS=${CONNS:-64}
DURATION=${DURATION:-6s}
TRANSFORM=${TRANSFORM:-'{action, repo: .repository.full_name, sender: .sender.login, labels: [.issue.labels[]?.name]}'}
API=127.0.0.1:18580
WORK=$(mktemp -d /tmp/integrations-webhooks.XXXXXX)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  [[ ${DB:-} == pg ]] && psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS webhooks_bench" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "webhooks.sh: wrk is not installed" >&2; exit 1; }

ENV=(PATH="$PATH" INTEGRATIONS_BIND="$API" INTEGRATIONS_DATA_DIR="$WORK/data" LOG_LEVEL=info LOG_FORMAT=json)
if [[ ${DB:-} == pg ]]; then
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS webhooks_bench" -c "CREATE DATABASE webhooks_bench"
  ENV+=("DATABASE_URL=postgres://postgres@127.0.0.1:5432/webhooks_bench"
        "INTEGRATIONS_MASTER_KEY=$(head -c32 /dev/urandom | base64)")
fi
env -i "${ENV[@]}" "$API_BIN" >"$WORK/api.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -fs -o /dev/null "http://$API/readyz" && break; sleep 0.05; done
definition=$(TRANSFORM=$TRANSFORM python3 -c 'import json, os; print(json.dumps({"verification": {"scheme": "none"}, "transform": os.environ["TRANSFORM"]}))')
status=$(curl -s -o "$WORK/define.json" -w '%{http_code}' -X PUT "http://$API/api/integrations/webhook/bench" \
  -H 'content-type: application/json' -d "$definition")
[[ $status == 201 ]] || { echo "webhooks.sh: defining the endpoint answered $status: $(cat "$WORK/define.json")" >&2; exit 1; }
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"action":"opened","repository":{"full_name":"octo/widgets"},"sender":{"login":"octocat"},"issue":{"labels":[{"name":"bug"},{"name":"p1"}]}}'
LUA
wrk -t2 -c"$CONNS" -d2s -s "$WORK/post.lua" "http://$API/api/integrations/webhook/bench" >/dev/null
wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/post.lua" "http://$API/api/integrations/webhook/bench" >"$WORK/wrk.txt"
echo "wrk -t2 -c$CONNS -d$DURATION, transform: $TRANSFORM"
grep -E "Requests/sec|Non-2xx|requests in|  50%|  99%" "$WORK/wrk.txt"
for s in processed failed; do
  echo "recorded $s (200 at most): $(curl -s "http://$API/api/integrations/webhook/bench/logs?status=$s&limit=200" | grep -o '"id":' | wc -l)"
done
echo "api peak RSS: $(awk '/VmHWM/ {print $2 / 1024 " MB"}' "/proc/$pid/status")"
