#!/usr/bin/env bash
# Start the web process (ASGI) and a real Celery worker with beat; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
# Links in emails (invitations, password resets, digests) point at this server.
export SITE_URL=${SITE_URL:-http://$HOST:$PORT}

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "Stopping Leakseal…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

.venv/bin/celery -A config worker --beat --loglevel INFO --concurrency 2 \
  --schedule var/celerybeat-schedule &
pids+=($!)
# Open live-board streams never end by themselves: give them 3 s on shutdown, then close.
.venv/bin/uvicorn config.asgi:application --host "$HOST" --port "$PORT" --timeout-graceful-shutdown 3 &
pids+=($!)

echo
echo "Leakseal is running at http://$HOST:$PORT"
echo "Demo login: facilitator / leakseal-demo (also: engineer, manager)"
echo "Press Ctrl-C to stop."
echo
# Stop everything as soon as either process dies, so a crash is not hidden.
wait -n
