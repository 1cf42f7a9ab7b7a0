"""Moves the clock of a Python process the tests start, by the offset the test session runs at.

tests/conftest.py puts this folder on PYTHONPATH when LEAKSEAL_TEST_TODAY is set, so every
interpreter the suite starts (uvicorn, Celery workers, `manage.py`, `python -c`) imports this
file at start-up and runs as many seconds ahead (or behind) as the session itself: the same
"now" everywhere, ticking as usual. Without LEAKSEAL_TEST_CLOCK_OFFSET it does nothing.

Only the wall clock moves (time.time, datetime.now, date.today, ...); time.monotonic and
perf_counter do not, so timeouts and sleeps behave as they always do. The database servers,
Redis and Chromium keep the real time; Leakseal reads "now" only in Python.
"""

from __future__ import annotations

import os
from typing import Any

OFFSET_VARIABLE = "LEAKSEAL_TEST_CLOCK_OFFSET"


def shift_clock(offset: float) -> Any:
    """From now on this process's wall clock runs `offset` seconds from the real one; the
    time_machine.travel that does it (its stop() brings the real clock back)."""
    import time_machine

    travel = time_machine.travel(real_time() + offset, tick=True)
    travel.start()
    return travel


def real_time() -> float:
    """The real wall clock, whether or not this process already runs at an offset."""
    import time

    import time_machine

    hatch = time_machine.escape_hatch
    return hatch.time.time() if hatch.is_travelling() else time.time()


if offset := os.environ.get(OFFSET_VARIABLE):
    shift_clock(float(offset))
