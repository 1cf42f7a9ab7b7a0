#!/usr/bin/env bash
# The suite as three pytest processes at once (make pytest), so that two cores stay busy while
# tests wait: the real-browser tests (Chromium, uvicorn and a Celery worker); the tests marked
# `processes`, which start workers and web servers of their own and mostly wait on them; and
# everything else. Each keeps its own state, so none takes another's Celery tasks or rows:
# - the browser tests run Leakseal on a database of their own (tests/browser/stack.py);
# - the `processes` tests get a database name, a LEAKSEAL_VAR_DIR (the SQLite file, the
#   file-system broker, the mail folder) and, with Redis, a Redis database of their own;
# - with Redis, the browser tests and the `processes` tests each use another Redis database
#   than REDIS_URL's (pub/sub channels carry the database number: retros/events.py).
# The rest prints as it runs; the other two print when all are done. Arguments go to all three
# (CI passes --create-db).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=.venv/bin/pytest

# REDIS_URL with database (its own - k) mod 16: redis://host:port/15 -> /14 (k=1), /13 (k=2).
redis_db() {
  .venv/bin/python -c '
import sys
from urllib.parse import urlsplit, urlunsplit
parts = urlsplit(sys.argv[1])
db = int(parts.path.strip("/") or 0)
print(urlunsplit(parts._replace(path=f"/{(db - int(sys.argv[2])) % 16}")))' "$REDIS_URL" "$1"
}

# DATABASE_URL with "_processes" after the database's name.
processes_database() {
  .venv/bin/python -c '
import sys
from urllib.parse import urlsplit, urlunsplit
parts = urlsplit(sys.argv[1])
name = parts.path.lstrip("/") or "leakseal"
print(urlunsplit(parts._replace(path=f"/{name}_processes")))' "$DATABASE_URL"
}

browser_env=()
processes_env=()
if [[ -n "${REDIS_URL:-}" ]]; then
  browser_env+=("REDIS_URL=$(redis_db 1)")
  processes_env+=("REDIS_URL=$(redis_db 2)")
fi
if [[ -n "${DATABASE_URL:-}" ]]; then
  processes_env+=("DATABASE_URL=$(processes_database)")
fi
processes_var=$(mktemp -d)
processes_env+=("LEAKSEAL_VAR_DIR=$processes_var")

browser_log=$(mktemp)
processes_log=$(mktemp)
trap 'rm -rf "$browser_log" "$processes_log" "$processes_var"' EXIT

# The browser tests wait on real time (a person's clicks, pushes to every board): they get the
# CPU first where the user may raise a priority (root, as in CI); the others fill the rest.
browser_nice=()
if [[ $(id -u) -eq 0 ]]; then browser_nice=(nice -n -5); fi

env "${browser_env[@]}" "${browser_nice[@]}" $PYTEST -m browser --durations=5 "$@" \
  >"$browser_log" 2>&1 &
browser=$!
env "${processes_env[@]}" $PYTEST -m "processes and not browser" --durations=5 "$@" \
  >"$processes_log" 2>&1 &
processes=$!

$PYTEST -m "not browser and not processes" --durations=10 "$@"
rest=$?
wait "$processes"
processes_rc=$?
wait "$browser"
browser_rc=$?

printf '\n===== the tests that start processes of their own (run beside the rest) =====\n'
cat "$processes_log"
printf '\n===== the browser tests (run beside the rest) =====\n'
cat "$browser_log"
# 5: nothing collected (arguments that name none of a group's tests).
failed=0
for rc in "$rest" "$processes_rc" "$browser_rc"; do
  if [[ $rc -ne 0 && $rc -ne 5 ]]; then failed=1; fi
done
if [[ $failed -ne 0 ]]; then
  echo "pytest failed (the rest: exit $rest; processes: exit $processes_rc;" \
    "the browser tests: exit $browser_rc)" >&2
  exit 1
fi
if [[ $rest -eq 5 && $processes_rc -eq 5 && $browser_rc -eq 5 ]]; then
  echo "no tests collected" >&2
  exit 5
fi
