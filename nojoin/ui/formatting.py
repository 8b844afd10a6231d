"""Small text helpers for times, dates and statuses shown in the UI."""

from __future__ import annotations

from datetime import datetime

from nojoin.models import MeetingStatus

STATUS_LABELS = {
    MeetingStatus.RECORDED: "New",
    MeetingStatus.PROCESSING: "Processing",
    MeetingStatus.PROCESSED: "Ready",
    MeetingStatus.ERROR: "Failed",
}


def clock(seconds: float) -> str:
    """1:02:03 or 02:03."""
    total = max(0, int(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def duration(seconds: float) -> str:
    """'1 h 05 min', '12 min', '45 s' — for lists."""
    total = int(round(seconds))
    if total <= 0:
        return "—"
    if total < 60:
        return f"{total} s"
    m = total // 60
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def date(dt: datetime) -> str:
    """Full date for headers: 'Sun 22 Nov 2026, 15:00'."""
    local = dt.astimezone()
    return local.strftime("%a %d %b %Y, %H:%M")


def short_date(dt: datetime, now: datetime | None = None) -> str:
    """Compact date for lists: 'Today 15:00', 'Yesterday 09:30', 'Fri 13:00', '20 Nov', '3 Feb 2025'."""
    local = dt.astimezone()
    today = (now or datetime.now().astimezone()).date()
    days = (today - local.date()).days
    if days == 0:
        return f"Today {local:%H:%M}"
    if days == 1:
        return f"Yesterday {local:%H:%M}"
    if 1 < days < 7:
        return f"{local:%a %H:%M}"
    if local.year == today.year:
        return f"{local.day} {local:%b}"
    return f"{local.day} {local:%b %Y}"


def names(items: list[str], limit: int = 2) -> str:
    """'Alice, Bob +1'."""
    if not items:
        return "—"
    shown = ", ".join(items[:limit])
    return shown + (f" +{len(items) - limit}" if len(items) > limit else "")
