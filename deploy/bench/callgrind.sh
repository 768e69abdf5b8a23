#!/usr/bin/env bash
# Instructions per request of the api, counted by callgrind: repeatable whatever else the machine
# is doing, so two builds can be compared where requests/s are too noisy (docs/benchmarks.md).
#
#   deploy/bench/callgrind.sh                       # every case, the release build
#   deploy/bench/callgrind.sh slack jira            # some cases
#   API_BIN=/path/to/integrations-api N=200 ...     # another build, fewer requests
#   KEEP=1 ...                                      # keep the callgrind files (callgrind_annotate them)
#
# The api runs under `valgrind --tool=callgrind --instr-atstart=no` against the testkit fakes, in
# the harness's environment (bench.sh). For each case: WARMUP requests uncounted (they also let
# every pooled SQLite connection prepare its audit statements), then N requests over one
# connection with `curl -K` with counting on, one dump; the table is the dump's total / N.
# Counted: all of the api's threads (tokio workers, the SQLite writer), not the fakes or curl.
#
# Needs valgrind (Debian: apt-get install -y valgrind). Binds 127.0.0.1 only; bounded by N.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/${PROFILE:-release}
API_BIN=${API_BIN:-$BIN/integrations-api}
N=${N:-500}
WARMUP=${WARMUP:-100}
CASES=("$@")
[[ ${#CASES[@]} -gt 0 ]] || CASES=(healthz cached slack github jira)
WORK=$(mktemp -d /tmp/integrations-callgrind.XXXXXX)
JIRA=127.0.0.1:19111 GITHUB=127.0.0.1:19112 SLACK=127.0.0.1:19113 API=127.0.0.1:18180
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "${KEEP:-}" ]]; then echo "callgrind files kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

for tool in valgrind callgrind_control curl; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is not installed" >&2; exit 1; }
done
for addr in $JIRA $GITHUB $SLACK $API; do
  if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then
    echo "callgrind.sh: $addr is already in use; stop what listens there first" >&2
    exit 1
  fi
done

# shellcheck source=deploy/bench/env.sh
source "$ROOT/deploy/bench/env.sh"
start_fakes
PIDS+=($!)
env -i "${API_ENV[@]}" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out" "$API_BIN" \
    >"$WORK/api.log" 2>&1 &
API_PID=$!
PIDS+=($API_PID)
for _ in $(seq 1 600); do curl -fs -o /dev/null "http://$API/readyz" && break; sleep 0.1; done
curl -fs -o /dev/null "http://$API/readyz" || { echo "callgrind.sh: the api did not become ready" >&2; exit 1; }

# A curl config of `count` requests of one case, `next` between them (one connection, reused).
requests() { # case count
  local i
  for ((i = 0; i < $2; i++)); do
    ((i > 0)) && echo next
    case $1 in
      healthz) echo "url = \"http://$API/healthz\"" ;;
      cached) echo "url = \"http://$API/api/integrations/jira/projects?project_name=Engineering\"" ;;
      slack)
        echo "url = \"http://$API/api/integrations/slack/message\""
        echo 'request = "POST"'
        echo 'header = "Content-Type: application/json"'
        echo 'data = "{\"channel\":\"#general\",\"text\":\"bench\"}"' ;;
      github) echo "url = \"http://$API/api/integrations/github/repos/octocat/hello-world?cache=false\"" ;;
      jira) echo "url = \"http://$API/api/integrations/jira/issues?project_key=ENG&cache=false\"" ;;
      transform)
        echo "url = \"http://$API/api/integrations/webhook/bench/test\""
        echo 'request = "POST"'
        echo 'header = "Content-Type: application/json"'
        echo "data = \"@$WORK/push.json\"" ;;
      *) echo "callgrind.sh: unknown case '$1' (healthz, cached, slack, github, jira, transform)" >&2; return 1 ;;
    esac
    echo 'output = "/dev/null"'
    echo 'fail'
  done
}

# The transform case: a webhook endpoint whose jq filter shapes a push event of 20 commits, run
# through its test endpoint (parse, transform on the pool, answer; nothing stored).
if [[ " ${CASES[*]} " == *" transform "* ]]; then
  curl -fs -o /dev/null -X PUT "http://$API/api/integrations/webhook/bench" -H 'Content-Type: application/json' \
    -d '{"verification": {"scheme": "none"}, "publish": false, "transform":
         "{repo: .repository.full_name, count: (.commits | length), commits: [.commits[] | {id, author: .author.name, message: (.message | split(\"\\n\") | first)}]}"}' \
    || { echo "callgrind.sh: defining the transform case's webhook failed" >&2; exit 1; }
  { printf '{"body": {"ref": "refs/heads/main", "repository": {"full_name": "octocat/hello-world"}, "commits": ['
    for i in $(seq 1 20); do
      ((i > 1)) && printf ','
      printf '{"id": "%040d", "author": {"name": "Mona %d"}, "message": "Commit %d\\n\\nWith a body"}' "$i" "$i" "$i"
    done
    printf ']}}'
  } >"$WORK/push.json"
fi

echo "| case | instructions per request ($N requests) |"
echo "|---|---|"
dump=0
for case in "${CASES[@]}"; do
  requests "$case" "$WARMUP" >"$WORK/warm.cfg"
  requests "$case" "$N" >"$WORK/count.cfg"
  curl -s -K "$WORK/warm.cfg" || { echo "callgrind.sh: a warm-up request of '$case' failed" >&2; exit 1; }
  callgrind_control -i on "$API_PID" >/dev/null 2>&1
  curl -s -K "$WORK/count.cfg" || { echo "callgrind.sh: a request of '$case' failed" >&2; exit 1; }
  callgrind_control -i off "$API_PID" >/dev/null 2>&1
  callgrind_control -d "$case" "$API_PID" >/dev/null 2>&1
  dump=$((dump + 1))
  file="$WORK/callgrind.out.$dump"
  for _ in $(seq 1 100); do [[ -s "$file" ]] && grep -q '^totals:' "$file" && break; sleep 0.1; done
  total=$(awk '/^totals:/ {print $2}' "$file")
  printf '| %s | %s |\n' "$case" "$(awk -v t="$total" -v n="$N" 'BEGIN {printf "%.1fk", t / n / 1000}')"
done
