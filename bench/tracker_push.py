"""Tracker-push benchmark: one retro of 100 actions closed at once, pushed by real workers.

    .venv/bin/python bench/tracker_push.py                    # embedded default (SQLite)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leakseal_bench \\
    REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/tracker_push.py

It builds a Leakseal of its own (tests/integrations/worker.py: a temporary var dir; with
DATABASE_URL a separate database named after it + "_push", dropped at the end; REDIS_URL as
the broker), a fake Jira in this process that answers every request after 200 ms and answers
a random 10 % of them 500 or 429 (Retry-After: 1) instead, a team connected to it and a retro
with 100 preventative actions. It closes the retro (one transaction, one push task per action
on commit) and waits until every action is pushed or failed, or the time limit.

Reported: the time from the first enqueue to the last action pushed (from the outbox rows'
own timestamps) and as this process saw it, pushes per second, retries (transient failures
the outbox rows counted) and the chaos answers the fake gave, duplicates (tickets carrying
one action's label beyond the first: must be 0), lost (actions not pushed in the end), and
the machine. The exit status is 1 if anything was duplicated or lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.live_board import machine  # noqa: E402
from tests.fakes.server import Fault, Request  # noqa: E402
from tests.integrations.worker import (  # noqa: E402
    WorkerStack,
    tickets_by_label,
    worker_stack,
)

ANY_PATH = re.compile("")
TIMES_SQL = """
SELECT MIN(p.first_queued_at), MAX(p.updated_at), SUM(p.attempts),
       SUM(CASE WHEN p.state = 'done' THEN 1 ELSE 0 END)
FROM integrations_ticketpush p JOIN retros_preventativeaction a ON a.id = p.action_id
WHERE a.retro_id = {param}
"""


def chaos_jira(*, latency: float, rate: float, seed: int) -> Any:
    """A FakeJira that answers a random `rate` of all requests 500 or 429 (Retry-After: 1)."""
    from tests.fakes.jira import FakeJira

    class ChaosJira(FakeJira):
        def __init__(self) -> None:
            super().__init__(latency=latency)
            self.rng = random.Random(seed)
            self.chaos: dict[int, int] = {500: 0, 429: 0}

        def _fault_for(self, request: Request) -> Fault | None:
            # After the request passed the spec check, as a test's own faults are.
            with self.lock:
                if self.rng.random() < rate:
                    status = self.rng.choice((500, 429))
                    self.chaos[status] += 1
                    return Fault(
                        request.method,
                        ANY_PATH,
                        status=status,
                        times=None,
                        retry_after="1" if status == 429 else None,
                    )
            return super()._fault_for(request)

    return ChaosJira()


def outbox_times(stack: WorkerStack, retro: int) -> tuple[float | None, int, int]:
    """First enqueue → last push done, in seconds, from the rows; retries; rows done."""
    param = "%s" if stack.database_url else "?"
    with stack.db() as conn:
        first, last, attempts, done = conn.execute(
            TIMES_SQL.format(param=param), (retro,)
        ).fetchone()
    if isinstance(first, str):  # SQLite: naive UTC text
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    took = (last - first).total_seconds() if first and last else None
    return took, int(attempts or 0), int(done or 0)


PER_PUSH_SQL = """
SELECT p.first_queued_at, p.updated_at, p.attempts
FROM integrations_ticketpush p JOIN retros_preventativeaction a ON a.id = p.action_id
WHERE a.retro_id = {param} AND p.state = 'done'
"""


def per_push(stack: WorkerStack, retro: int) -> dict[str, Any]:
    """Each push's own time (queued → done) and how many tries it needed."""
    param = "%s" if stack.database_url else "?"
    with stack.db() as conn:
        rows = conn.execute(PER_PUSH_SQL.format(param=param), (retro,)).fetchall()
    seconds: list[float] = []
    tries: Counter[int] = Counter()
    for first, last, attempts in rows:
        if isinstance(first, str):
            first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
        seconds.append((last - first).total_seconds())
        tries[int(attempts) + 1] += 1
    seconds.sort()
    if not seconds:
        return {}

    def at(q: float) -> float:
        return round(seconds[min(len(seconds) - 1, int(q * len(seconds)))], 1)

    return {
        "push_seconds_p50_p90_max": [at(0.5), at(0.9), round(seconds[-1], 1)],
        "pushes_by_tries": dict(sorted(tries.items())),
    }


def run(args: argparse.Namespace, tmp: Path) -> tuple[dict[str, str], dict[str, Any]]:
    fake = chaos_jira(latency=args.latency, rate=args.chaos, seed=args.seed).start()
    stack = worker_stack(tmp, suffix="_push", extra_env={})
    stack.settings_module = "config.settings"  # production settings, nothing shortened
    try:
        print(f"Preparing {stack.kind} …", flush=True)
        stack.prepare()
        world = stack.world(fake.url, slug="bench", actions=args.actions)
        stack.start_workers(args.workers, concurrency=args.concurrency)
        facts = machine(stack)
        facts.pop("web processes", None)  # no web server here: the workers are the load
        facts["workers"] = f"{args.workers} × concurrency {args.concurrency} (prefork)"
        print(f"Closing a retro with {args.actions} actions …", flush=True)
        started = time.monotonic()
        closed = stack.close(world)
        if closed.returncode != 0:
            raise RuntimeError(f"closing failed:\n{closed.stderr}")
        rows = stack.wait_for(
            world,
            lambda rows: all(r.push_state in ("pushed", "failed") for r in rows),
            timeout=args.timeout,
        )
        seen = time.monotonic() - started
        took, retries, done = outbox_times(stack, world.retro)
        # Let late duplicates show up, if any: a retry that was still on its way.
        time.sleep(args.settle)
        by_label = tickets_by_label(fake.tickets())
        report = {
            "actions": args.actions,
            "pushed": sum(1 for r in rows if r.push_state == "pushed"),
            "failed": sum(1 for r in rows if r.push_state == "failed"),
            "outbox_done": done,
            "first_enqueue_to_last_pushed_s": round(took, 2) if took is not None else None,
            "close_to_all_seen_s": round(seen, 2),
            "retries": retries,
            "requests": len(fake.requests),
            "creates": len(fake.calls("POST", r"/rest/api/\d+/issue$")),
            "chaos_answers": dict(fake.chaos),
            "tickets": len(fake.tickets()),
            "duplicates": sum(max(0, len(by_label.get(lbl, [])) - 1) for lbl in world.labels),
            "lost": sum(1 for lbl in world.labels if not by_label.get(lbl))
            + sum(1 for r in rows if r.push_state != "pushed"),
            "spec_violations": list(fake.violations),
            "load_average_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        }
        report.update(per_push(stack, world.retro))
        if took:
            report["pushes_per_s"] = round(report["pushed"] / took, 1)
        return facts, report
    except BaseException:
        print(stack.log_tail(), file=sys.stderr)
        raise
    finally:
        stack.stop()
        stack.drop()
        fake.stop()
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in tmp.glob("*.log"):
                shutil.copy(log, args.logs / log.name)


def print_report(facts: dict[str, str], args: argparse.Namespace, report: dict[str, Any]) -> None:
    print("\n## Machine")
    for key, value in facts.items():
        print(f"- {key}: {value}")
    print(
        f"\n## Load\n- {args.actions} actions in one retro, closed at once; the fake answers "
        f"after {args.latency * 1000:.0f} ms, {args.chaos:.0%} of answers 500 or 429 "
        f"(Retry-After: 1), seed {args.seed}"
    )
    print("\n## Results")
    for key, value in report.items():
        print(f"- {key}: {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="prefork children each")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per fake answer")
    parser.add_argument("--chaos", type=float, default=0.1, help="share of 500/429 answers")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--timeout", type=float, default=300, help="give up after (s)")
    parser.add_argument("--settle", type=float, default=3.0, help="wait for late duplicates")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--logs", type=Path, help="keep the workers' logs in this folder")
    args = parser.parse_args()
    if not 1 <= args.actions <= 1000 or not 0 <= args.chaos < 1 or args.timeout > 900:
        parser.error("bounded runs only: 1-1000 actions, chaos below 1, at most 900 s")
    if not 1 <= args.workers <= 8 or not 1 <= args.concurrency <= 16:
        parser.error("1-8 workers of concurrency 1-16")

    with tempfile.TemporaryDirectory(prefix="leakseal-bench-push-") as tmp:
        facts, report = run(args, Path(tmp))
    print_report(facts, args, report)
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, **report}, indent=2))
    bad = report["duplicates"] or report["lost"] or report["spec_violations"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
