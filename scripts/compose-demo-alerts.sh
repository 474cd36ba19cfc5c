#!/usr/bin/env bash
# The alert path on the demo stack (make demo-alerts): the stack with the offline APOD
# server and the alert catcher (compose-up.sh --offline --alerts), one run made to fail,
# and the alerts it sent, as the catcher caught them.
#
#   scripts/compose-demo-alerts.sh [DATE]
#
# DATE (default 1995-06-15, the day before the first APOD) is one extract refuses: it
# exits 2 (bad arguments), which is not retried, so the run fails at once and sends two
# alerts per channel: the failed task's and the run's. The catcher's page is on
# 127.0.0.1:$APOD_ALERTS_PORT (default 8025).
set -euo pipefail
# shellcheck source=scripts/compose-lib.sh
. "$(dirname "$0")/compose-lib.sh"
cd "$REPO"

DATE="${1:-1995-06-15}"
scripts/compose-up.sh --offline --alerts
log "one run made to fail: extract refuses $DATE"
rc=0
scripts/compose-run.sh "$DATE" || rc=$?
[ "$rc" = 1 ] || die "the run was meant to fail (exit 1); compose-run.sh ended with $rc"
# Two channels: the task's and the run's alert each by mail and by webhook.
exec "$PYTHON" scripts/alerts_caught.py "http://127.0.0.1:$(setting APOD_ALERTS_PORT 8025)" \
  --at-least 4 --timeout 180
