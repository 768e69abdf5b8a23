# Sourced by bench.sh and callgrind.sh: the fakes and the api's environment, defined once so both
# measure the same set-up. Expects JIRA, GITHUB, SLACK, API (host:port), BIN and WORK to be set
# before it is sourced.

# The testkit fakes on JIRA, GITHUB and SLACK, in the background (their log in $WORK/fakes.log).
start_fakes() {
  "$BIN/integrations-fakes" --jira "$JIRA" --github "$GITHUB" --slack "$SLACK" --github-rate-limit 1000000000 \
      --slack-channels "${SLACK_CHANNELS:-0}" >"$WORK/fakes.log" 2>&1 &
}

# The api's whole environment, as `env -i "${API_ENV[@]}" <api binary>` takes it (`env` then execs
# the api, so `$!` of that command in the background is the api's pid): embedded SQLite under
# $WORK/data, a quota that never binds, connections to the fakes from the environment, and Slack's
# own pacing (one message per second per channel) off, so that a Slack row measures the api and not
# the pacing. MCONF overrides the api's jemalloc options (_RJEM_MALLOC_CONF).
API_ENV=(
  PATH="$PATH" INTEGRATIONS_BIND="$API" INTEGRATIONS_DATA_DIR="$WORK/data" LOG_LEVEL=info LOG_FORMAT=json
  RATE_LIMIT_PER_MINUTE=100000000
  JIRA_BASE_URL="http://$JIRA" JIRA_USERNAME=bot@example.com JIRA_API_TOKEN=fake-api-token
  GITHUB_API_URL="http://$GITHUB" GITHUB_TOKEN=ghp_fakeOctocatToken0000000000000000000
  SLACK_API_URL="http://$SLACK/api/" SLACK_BOT_TOKEN=xoxb-fake-bot-token SLACK_PACING=false
  ${MCONF:+_RJEM_MALLOC_CONF=$MCONF}
)
