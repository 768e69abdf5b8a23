#!/usr/bin/env bash
# Start-up of the api with stored custom HTTP tools: store N tools through the api once, then start
# it again R times and print, for each start, spawn -> first 200 from /readyz, the api's own
# `startup_ms`, the custom tools it registered and its RSS once ready.
#
#   deploy/bench/startup.sh [N] [R]          # embedded SQLite under a temp dir (default 500 tools, 5 starts)
#   DB=pg deploy/bench/startup.sh 500 5      # a fresh database `startup_bench` on the local PostgreSQL
#   PGMODE=disable DB=pg deploy/bench/startup.sh 0 5   # sslmode of that connection (default: sqlx's prefer)
#   TARGET=worker deploy/bench/startup.sh 500 5        # the worker instead (ready: its /readyz, which needs
#                                                      # the local RabbitMQ); the api only stores the tools
#
# Uses the release build under $CARGO_TARGET_DIR (or ./target), or API_BIN / WORKER_BIN. Only
# 127.0.0.1 is used.
set -euo pipefail

N=${1:-500}
R=${2:-5}
DB=${DB:-sqlite}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${TARGET:-api}
API_BIN=${API_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/integrations-api}
WORKER_BIN=${WORKER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/integrations-worker}
ADDR=127.0.0.1:18480
WORKER_ADDR=127.0.0.1:18490
WORK=$(mktemp -d /tmp/integrations-startup.XXXXXX)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  [[ $DB == pg ]] && psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS startup_bench" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ENV=(PATH="$PATH" INTEGRATIONS_BIND="$ADDR" INTEGRATIONS_DATA_DIR="$WORK/data" LOG_FORMAT=json LOG_LEVEL=info
     CUSTOM_HTTP_ALLOWLIST=127.0.0.1 CUSTOM_TOOLS_SYNC_SECONDS=0)
if [[ $DB == pg ]]; then
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS startup_bench" -c "CREATE DATABASE startup_bench"
  ENV+=("DATABASE_URL=postgres://postgres@127.0.0.1:5432/startup_bench?sslmode=${PGMODE:-prefer}"
        "INTEGRATIONS_MASTER_KEY=$(head -c32 /dev/urandom | base64)")
fi

start() { # log file [api|worker]
  local what=${2:-api} bin=$API_BIN addr=$ADDR
  [[ $what == worker ]] && { bin=$WORKER_BIN; addr=$WORKER_ADDR; }
  env -i "${ENV[@]}" WORKER_METRICS_BIND="$WORKER_ADDR" AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f "$bin" >"$1" 2>&1 &
  pid=$!
  for _ in $(seq 1 4000); do
    curl -fs -o /dev/null "http://$addr/readyz" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "startup: the $what exited; $1:" >&2; cat "$1" >&2; return 1; }
    sleep 0.005
  done
  echo "startup: not ready in 20 s" >&2
  return 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

# Tools with a parameter schema, bearer credentials and a response transform, as a user writes them.
start "$WORK/seed.log"
if (( N > 0 )); then
  for i in $(seq 1 "$N"); do
    printf 'url = "http://%s/api/integrations/custom/tools"\nrequest = "POST"\nheader = "content-type: application/json"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' "$ADDR"
    printf 'data = "{\\"name\\": \\"tool_%d\\", \\"description\\": \\"tool %d\\", \\"method\\": \\"GET\\", \\"url\\": \\"http://127.0.0.1:9/items/{id}\\", \\"parameters_schema\\": {\\"type\\": \\"object\\", \\"properties\\": {\\"id\\": {\\"type\\": \\"string\\"}}, \\"required\\": [\\"id\\"]}, \\"auth\\": {\\"type\\": \\"bearer\\", \\"token\\": \\"tok-%d\\"}, \\"response_transform\\": \\"{items: [.items[] | select(.open)] | map({id, title: .title | ascii_downcase})}\\"}"\n' "$i" "$i" "$i"
    (( i < N )) && printf 'next\n'
  done >"$WORK/seed.cfg"
  echo "stored: $(curl -s -K "$WORK/seed.cfg" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
fi
stop

for r in $(seq 1 "$R"); do
  t0=$(date +%s%N)
  start "$WORK/run.log" "$TARGET"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  # RSS once ready, before the listing below allocates its answer.
  rss=$(awk '/VmRSS/ {print $2 / 1024 " MB"}' "/proc/$pid/status")
  if [[ $TARGET == worker ]]; then
    tools="$(grep -o '"tools":[0-9]*' "$WORK/run.log" | head -1 | cut -d: -f2) (built-in included)"
  else
    tools="$(curl -s "http://$ADDR/api/tools" | { grep -o '"provider":"custom"' || true; } | wc -l) custom"
  fi
  echo "start $r: ready ${ms} ms, $(grep -o '"startup_ms":[0-9]*' "$WORK/run.log" | head -1), tools ${tools}, RSS ${rss}"
  stop
done
