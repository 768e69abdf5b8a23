#!/usr/bin/env bash
# Load benchmark of the REST API against the testkit fakes on loopback (docs/benchmarks.md).
#
#   deploy/bench/bench.sh                 # builds release binaries, runs every case, prints one table
#   SKIP_BUILD=1 DURATION=10s CONNS=64 deploy/bench/bench.sh      # reuse the binaries (PROFILE=release)
#   MCONF=narenas:2,dirty_decay_ms:300 ...   # override the api's jemalloc options (_RJEM_MALLOC_CONF)
#   API_BIN=/path/to/integrations-api ...     # measure another api build against the same fakes
#   SLACK_CHANNELS=5000 ...                   # the fake Slack with a large workspace's channel directory
#
# Rows: (a) the fake called directly, (b) the same call through the api, (c) a cached read of the
# api, (d) the fake behind nginx, (e) the fake behind deploy/bench/relay, a bare hyper 1 reverse
# proxy: the api's HTTP stack with nothing on top, so (e) against (d) is the stack and (b) against
# (e) the api's pipeline.
#
# Requests/s vary with whatever else the machine runs; to compare two builds, count instructions per
# request instead: deploy/bench/callgrind.sh.
#
# Needs wrk and nginx (Debian: apt-get install -y wrk nginx). Everything binds to 127.0.0.1 and every
# case is bounded by DURATION; all processes started here are stopped on exit.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}
BIN=$TARGET/$PROFILE
API_BIN=${API_BIN:-$BIN/integrations-api}
WORK=$(mktemp -d /tmp/integrations-bench.XXXXXX)
JIRA=127.0.0.1:19101 GITHUB=127.0.0.1:19102 SLACK=127.0.0.1:19103 API=127.0.0.1:18080 PROXY=127.0.0.1:18090
RELAY=127.0.0.1:18095
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

if [[ -z "${SKIP_BUILD:-}" ]]; then
  (cd "$ROOT" && cargo build --release --locked -p integrations-api -p integration-testkit \
      --bin integrations-api --bin integrations-fakes)
fi
# The bare relay is its own small workspace (deploy/bench/relay), built here when missing.
if [[ -z "${SKIP_BUILD:-}" || ! -x "$BIN/bench-relay" ]]; then
  (cd "$ROOT/deploy/bench/relay" && CARGO_TARGET_DIR=$TARGET cargo build --release --locked)
fi

# A process left on one of these ports (a stale api, say) would answer in place of the one started
# here and the table would measure it: refuse to start instead.
for addr in $JIRA $GITHUB $SLACK $API $PROXY $RELAY; do
  if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then
    echo "bench: $addr is already in use; stop what listens there first" >&2
    exit 1
  fi
done

wait_http() { for _ in $(seq 1 400); do curl -fs -o /dev/null "$1" && return 0; sleep 0.01; done; echo "timeout: $1" >&2; return 1; }

# shellcheck source=deploy/bench/env.sh
source "$ROOT/deploy/bench/env.sh"
start_fakes
PIDS+=($!)
sleep 0.3

# --- the api: embedded SQLite, a quota that never binds, connections from the environment ---------
start_ns=$(date +%s%N)
env -i "${API_ENV[@]}" "$API_BIN" >"$WORK/api.log" 2>&1 &
API_PID=$!
PIDS+=($API_PID)
wait_http "http://$API/readyz"
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
if ! kill -0 "$API_PID" 2>/dev/null; then
  echo "bench: the api started here exited; another process answered on $API" >&2
  exit 1
fi

# --- nginx reverse proxy with a keep-alive upstream pool -------------------------------------------
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  upstream jira   { server $JIRA;   keepalive 64; }
  upstream github { server $GITHUB; keepalive 64; }
  upstream slack  { server $SLACK;  keepalive 64; }
  server {
    listen $PROXY;
    location /rest/  { proxy_pass http://jira;   proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /repos/ { proxy_pass http://github; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /api/   { proxy_pass http://slack;  proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/stderr" &
PIDS+=($!)
sleep 0.3

# --- the bare hyper relay, routed as nginx is ------------------------------------------------------
"$BIN/bench-relay" $RELAY /rest/=$JIRA /repos/=$GITHUB /api/=$SLACK 2>"$WORK/relay.log" &
PIDS+=($!)
for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/${RELAY%:*}/${RELAY#*:}") 2>/dev/null && break; sleep 0.01; done

# --- wrk request scripts -------------------------------------------------------------------------
lua() { # name method body header...
  local name=$1 method=$2 body=$3; shift 3
  { echo "wrk.method = \"$method\""
    [[ -n "$body" ]] && echo "wrk.body = [[$body]]"
    for h in "$@"; do echo "wrk.headers[\"${h%%:*}\"] = \"${h#*: }\""; done
  } >"$WORK/$name.lua"
}
JIRA_AUTH="Authorization: Basic $(printf 'bot@example.com:fake-api-token' | base64 -w0)"
# The same request the api sends for `GET /api/integrations/jira/issues?project_key=ENG` (its JQL,
# page size and field list), so (a), (b) and (d) cost the fake the same.
JIRA_FIELDS='"summary","status","assignee","reporter","priority","issuetype","project","parent","labels","created","updated","description"'
lua jira_direct POST "{\"jql\":\"project = \\\"ENG\\\" ORDER BY created DESC\",\"maxResults\":50,\"fields\":[$JIRA_FIELDS]}" \
    "$JIRA_AUTH" "Content-Type: application/json" "Accept: application/json"
lua github_direct GET '' "Authorization: Bearer ghp_fakeOctocatToken0000000000000000000" "Accept: application/json"
# get-repository makes two upstream calls (the repository, then its languages): this
# script alternates them, so two of its requests are one call of the tool.
{ echo 'wrk.headers["Authorization"] = "Bearer ghp_fakeOctocatToken0000000000000000000"'
  echo 'wrk.headers["Accept"] = "application/json"'
  echo 'local n = 0'
  echo 'request = function() n = n + 1; return wrk.format("GET", (n % 2 == 0) and "/repos/octocat/hello-world/languages" or "/repos/octocat/hello-world") end'
} >"$WORK/github_pair.lua"
lua slack_direct POST '{"channel":"#general","text":"bench"}' \
    "Authorization: Bearer xoxb-fake-bot-token" "Content-Type: application/json; charset=utf-8"
lua slack_api POST '{"channel":"#general","text":"bench"}' "Content-Type: application/json"
lua get GET ''

rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$API_PID/status"; }
rows=()
run() { # label script url
  local label=$1 script=$2 url=$3 out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$WORK/$script.lua" "$url" 2>&1)
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
  local timeouts; timeouts=$(grep -o 'timeout [0-9]*' <<<"$out" | awk '{print $2}' || true); timeouts=${timeouts:-0}
  rows+=("$(printf '| %-44s | %9s | %8s | %8s | %6s | %8s | %6s MB |' "$label" "$rps" "$p50" "$p99" "$non2xx" "$timeouts" "$(( $(rss_kb) / 1024 ))")")
}

run "(a) Jira search-issues, fake direct"        jira_direct   "http://$JIRA/rest/api/3/search/jql"
run "(b) Jira search-issues, through the api"    get           "http://$API/api/integrations/jira/issues?project_key=ENG&cache=false"
run "(d) Jira search-issues, nginx -> fake"      jira_direct   "http://$PROXY/rest/api/3/search/jql"
run "(e) Jira search-issues, bare relay -> fake" jira_direct   "http://$RELAY/rest/api/3/search/jql"
run "(a) GitHub get-repository, fake direct"     github_direct "http://$GITHUB/repos/octocat/hello-world"
run "(b) GitHub get-repository, through the api" get           "http://$API/api/integrations/github/repos/octocat/hello-world?cache=false"
run "(d) GitHub get-repository, nginx -> fake"   github_direct "http://$PROXY/repos/octocat/hello-world"
run "(a) GitHub both calls (2 req = 1 op), direct" github_pair  "http://$GITHUB/"
run "(d) GitHub both calls (2 req = 1 op), nginx"  github_pair  "http://$PROXY/"
run "(e) GitHub both calls (2 req = 1 op), relay"  github_pair  "http://$RELAY/"
run "(a) Slack send-message, fake direct"        slack_direct  "http://$SLACK/api/chat.postMessage"
run "(b) Slack send-message, through the api"    slack_api     "http://$API/api/integrations/slack/message"
run "(d) Slack send-message, nginx -> fake"      slack_direct  "http://$PROXY/api/chat.postMessage"
run "(e) Slack send-message, bare relay -> fake" slack_direct  "http://$RELAY/api/chat.postMessage"
run "(c) cached read: Jira project finder, api"  get           "http://$API/api/integrations/jira/projects?project_name=Engineering"
run "    /healthz of the api (floor)"            get           "http://$API/healthz"

echo
echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency; api start-up to ready (spawn -> /readyz 200): ${ready_ms} ms;" \
     "$(grep -o '"startup_ms":[0-9]*' "$WORK/api.log" | head -1 || true)"
echo "| case                                         | req/s     | p50      | p99      | non-2xx| timeouts | api peak RSS |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
