"""JUnit XML for tests: small, readable builders (no parsing, no database).

    junit_xml([("shop.CartTest", "adds_item", "passed"), ("shop.CartTest", "pays", "failed")])

An outcome is "passed", "failed", "error", "skipped" (a skip with a message: pass
("skipped", "why") as the outcome) or a tuple (outcome, message). Cases are written in order,
so the same test twice is a retry (a failed case then a passed one).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from datetime import datetime
from xml.sax.saxutils import quoteattr

Outcome = str | tuple[str, str]
Case = tuple[str, str, Outcome]


def _case(classname: str, name: str, outcome: Outcome) -> str:
    kind, message = (outcome, "") if isinstance(outcome, str) else outcome
    head = f'<testcase classname={quoteattr(classname)} name={quoteattr(name)} time="0.01"'
    if kind == "passed":
        return head + "/>"
    if kind == "failed":
        body = f"<failure message={quoteattr(message or 'assertion failed')}>trace</failure>"
    elif kind == "error":
        body = f"<error message={quoteattr(message or 'boom')}>trace</error>"
    elif kind == "skipped":
        body = f"<skipped message={quoteattr(message)}/>" if message else "<skipped/>"
    elif kind == "flaky":  # Surefire: passed in the end, after a failed attempt
        body = f"<flakyFailure message={quoteattr(message or 'first try failed')}/>"
    else:
        raise ValueError(f"unknown outcome {kind!r}")
    return f"{head}>{body}</testcase>"


def junit_xml(
    cases: Sequence[Case],
    *,
    suite: str = "suite",
    timestamp: datetime | str | None = None,
) -> bytes:
    """One <testsuites> with one <testsuite> holding the cases, as bytes (UTF-8)."""
    stamp = timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp
    stamp_attr = f" timestamp={quoteattr(stamp)}" if stamp else ""
    failures = sum(1 for c in cases if _kind(c[2]) == "failed")
    errors = sum(1 for c in cases if _kind(c[2]) == "error")
    skipped = sum(1 for c in cases if _kind(c[2]) == "skipped")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<testsuites>",
        f'<testsuite name={quoteattr(suite)} tests="{len(cases)}" failures="{failures}"'
        f' errors="{errors}" skipped="{skipped}"{stamp_attr}>',
        *(_case(classname, name, outcome) for classname, name, outcome in cases),
        "</testsuite>",
        "</testsuites>",
    ]
    return "\n".join(lines).encode()


def junit_gz(
    cases: Sequence[Case], *, suite: str = "suite", timestamp: datetime | str | None = None
) -> bytes:
    """The same, gzip-compressed (as CI may send it)."""
    return gzip.compress(junit_xml(cases, suite=suite, timestamp=timestamp))


def many_cases(count: int, *, failing_every: int = 0, classname: str = "big.Suite") -> list[Case]:
    """`count` distinct passing tests; every `failing_every`-th one failed (0: none)."""
    return [
        (
            f"{classname}{i // 500}",
            f"test_{i}",
            "failed" if failing_every and i % failing_every == 0 else "passed",
        )
        for i in range(count)
    ]


def _kind(outcome: Outcome) -> str:
    return outcome if isinstance(outcome, str) else outcome[0]
