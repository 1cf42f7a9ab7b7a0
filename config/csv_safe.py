"""Every CSV file the app writes goes through here, so no cell reaches a spreadsheet as a formula.

Names, titles and versions are typed by people; a cell that starts with =, +, -, @, a tab or
a carriage return is a formula to Excel, LibreOffice and Google Sheets (OWASP "CSV
injection"), so such a cell is written with a leading apostrophe, which they show as text.
Numbers the app computes itself (durations in seconds, shares) are written with `number`, so a
negative number stays a number.
"""

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Writable(Protocol):
    def write(self, content: str, /) -> Any: ...


def cell(value: object) -> str:
    """The value as text, quoted as text if a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def uncell(text: str) -> str:
    """What `cell` quoted, unquoted: the CSV import reads back the files the app wrote."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def number(value: float | int | None) -> str:
    """A number the app computed (never typed by anyone): written as it is."""
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


class SafeWriter:
    """csv.writer whose every cell goes through `cell`, except those marked as numbers.

    `writerow(row, numbers=(4,))` leaves column 4 alone when it holds an int or float.
    """

    def __init__(self, out: Writable) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[object], *, numbers: Iterable[int] = ()) -> None:
        keep = set(numbers)
        self._writer.writerow(
            number(value)
            if i in keep and isinstance(value, int | float) and not isinstance(value, bool)
            else cell(value)
            for i, value in enumerate(row)
        )

    def writerows(self, rows: Iterable[Iterable[object]], *, numbers: Iterable[int] = ()) -> None:
        keep = tuple(numbers)
        for row in rows:
            self.writerow(row, numbers=keep)


def writer(out: Writable) -> SafeWriter:
    return SafeWriter(out)
