"""Human titles for new meetings ("Wednesday afternoon meeting"), editable later."""

from __future__ import annotations

from datetime import datetime

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def part_of_day(when: datetime) -> str:
    hour = when.hour
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 22:
        return "evening"
    return "night"


def meeting_title(when: datetime | None = None) -> str:
    """E.g. "Wednesday afternoon meeting", in the local time of `when` (default: now)."""
    moment = (when or datetime.now().astimezone()).astimezone()
    return f"{_DAYS[moment.weekday()]} {part_of_day(moment)} meeting"
