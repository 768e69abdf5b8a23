#!/usr/bin/env bash
# The bus under faults (docs/reliability.md): 10,000 jira_create_issue commands through the release
# worker binary with RabbitMQ restarted twice mid-run, then 10,000 more with the worker killed by
# SIGKILL three times. Needs RabbitMQ, PostgreSQL (127.0.0.1) and rabbitmqctl; restores the broker
# even if a run fails. Takes a few minutes.
#
#   scripts/bus-faults.sh                      # build (release) and run both scenarios
#   COMMANDS=2000 SKIP_BUILD=1 scripts/bus-faults.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
COMMANDS=${COMMANDS:-10000}
RATE=${RATE:-400}
if [[ -z "${SKIP_BUILD:-}" ]]; then
  (cd "$ROOT" && cargo build --release --locked -p integrations-worker -p integrations-e2e --example bus_faults)
fi
BIN=$TARGET/release
"$BIN/examples/bus_faults" --commands "$COMMANDS" --rate "$RATE" --fault broker --times 2 --worker "$BIN/integrations-worker"
"$BIN/examples/bus_faults" --commands "$COMMANDS" --rate "$RATE" --fault kill --times 3 --worker "$BIN/integrations-worker"
