#!/usr/bin/env bash
# The suite as two pytest processes at once (make pytest): the real-browser tests, which mostly
# wait on Chromium, uvicorn and a Celery worker, beside everything else. Each keeps its own
# state: the browser tests run Leakseal on a database of their own (tests/browser/stack.py) and,
# with Redis, on the Redis database below REDIS_URL's, so neither takes the other's Celery tasks.
# The rest prints as it runs; the browser tests' output follows when both are done. Arguments go
# to both (CI passes --create-db).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=.venv/bin/pytest

browser_redis=""
if [[ -n "${REDIS_URL:-}" ]]; then
  # redis://host:port/15 -> redis://host:port/14 (db 0 -> 1).
  browser_redis=$(.venv/bin/python -c '
import sys
from urllib.parse import urlsplit, urlunsplit
parts = urlsplit(sys.argv[1])
db = int(parts.path.strip("/") or 0)
print(urlunsplit(parts._replace(path=f"/{db - 1 if db > 0 else 1}")))' "$REDIS_URL")
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [[ -n "$browser_redis" ]]; then
  REDIS_URL=$browser_redis $PYTEST -m browser --durations=5 "$@" >"$log" 2>&1 &
else
  $PYTEST -m browser --durations=5 "$@" >"$log" 2>&1 &
fi
browser=$!

$PYTEST -m "not browser" --durations=10 "$@"
rest=$?
wait "$browser"
browser_rc=$?

printf '\n===== the browser tests (run beside the rest) =====\n'
cat "$log"
# 5: nothing collected (arguments that name no browser test, or only browser tests).
for rc in "$rest" "$browser_rc"; do
  if [[ $rc -ne 0 && $rc -ne 5 ]]; then
    echo "pytest failed (the rest: exit $rest; the browser tests: exit $browser_rc)" >&2
    exit 1
  fi
done
if [[ $rest -eq 5 && $browser_rc -eq 5 ]]; then echo "no tests collected" >&2; exit 5; fi
