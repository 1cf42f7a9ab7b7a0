"""A one-line progress bar for long runs."""

import math
import time

from django.core.management.base import OutputWrapper


class Progress:
    """A one-line progress bar on stderr; on a non-terminal one line per tenth."""

    def __init__(self, out: OutputWrapper, total: int, *, what: str) -> None:
        self.out, self.total, self.what = out, total, what
        self.done = 0
        self.started = time.monotonic()
        self.tty = out.isatty()
        self._shown = -1.0  # when a tty was last drawn / the last tenth printed

    def add(self, n: int) -> None:
        self.done += n
        share = self.done / self.total if self.total else 1.0
        if self.tty:
            now = time.monotonic()
            if now - self._shown >= 0.2 or self.done >= self.total:
                self._shown = now
                bar = "#" * int(share * 30)
                self.out.write(f"\r[{bar:<30}] {self._status(share)}", ending="")
                self.out.flush()
        elif math.floor(share * 10) > self._shown:
            self._shown = math.floor(share * 10)
            self.out.write(self._status(share))

    def close(self) -> None:
        if self.tty:
            self.out.write("")

    def _status(self, share: float) -> str:
        elapsed = time.monotonic() - self.started
        return f"{share:4.0%} {self.done:,}/{self.total:,} {self.what}, {elapsed:.0f} s"
