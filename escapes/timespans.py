"""An escape's time spans as every app shows them: local days, durations, span problems.

Kept in escapes/ because the register, the retro board and the dashboards (insights/) all
need them; insights/metrics.py holds the definitions of the numbers built on them.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NO_VALUE = "—"

# The data problems of an escape's times (insights.metrics.split_escapes finds them, the
# register filters by them). An escape detected before its release is that problem only.
DATA_PROBLEM_LABELS = {
    "negative_deficit": "Detected before the change was merged (negative deficit)",
    "detected_before_release": "Detected before its release (not an escape)",
    "missing_merged_at": "Merge time unknown (no deficit)",
}


def local_midnight_in_utc(day: date, tz: ZoneInfo) -> datetime:
    try:
        return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
    except OverflowError:
        # Dates at the very ends of the calendar: the range is open on that side.
        return (datetime.min if day.year == 1 else datetime.max).replace(tzinfo=UTC)


def format_duration(value: timedelta | None) -> str:
    """Two units at most, the smaller one rounded: "2 d 14 h", "3 h 20 min", "12 min"."""
    if value is None:
        return NO_VALUE
    seconds = value.total_seconds()
    sign = "−" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds == 0:
        return "0 min"
    minutes = round(seconds / 60)
    if minutes == 0:
        return f"{sign}< 1 min"
    if minutes < 60:
        return f"{sign}{minutes} min"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{sign}{hours} h" + (f" {rest} min" if rest else "")
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{sign}{days} d" + (f" {hours} h" if hours else "")
