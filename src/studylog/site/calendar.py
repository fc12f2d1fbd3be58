"""A calendar of study days: the log's last twelve months as a GitHub-contributions-style grid,
and a page listing each day's entries.

The grid is static inline SVG (no script, no network): weeks are columns, Monday first, and a
day's colour is a CSS class (studylog.css), so mkdocs-material's light/dark palette colours it.
A phone cannot show a year at a readable size, so the HTML holds two grids, the year and its
last 26 weeks, and CSS shows one of them by the screen's width.
Every function here is pure: entries in, text out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from studylog.logs.entry import LogEntry
from studylog.site.labcards import markdown_text
from studylog.site.labpages import escape

CELL = 10  # a day's square, in SVG units (CSS px at 1:1)
PITCH = 12  # a square and the gap after it
LEFT = 28  # room for the weekday names
TOP = 14  # room for the month names
HALF_WEEKS = 26  # the phone's grid: half a year keeps a square above 10 CSS px at 358 px
MAX_LEVEL = 4  # 1, 2, 3 and 4 or more entries a day
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Streaks:
    """Runs of consecutive study days: the one still going and the longest (its first and last day)."""

    current: int
    longest: int
    longest_start: dt.date | None
    longest_end: dt.date | None


def study_days(entries: Iterable[LogEntry]) -> dict[dt.date, list[LogEntry]]:
    """Entries by the calendar date written on them, each day's in publication order."""
    days: dict[dt.date, list[LogEntry]] = {}
    # The order the blog publishes in (posts.publication_order), restated to keep this module
    # free of the page writer that calls it (posts.py).
    for entry in sorted(entries, key=lambda e: (e.date.replace(tzinfo=None), e.path.name)):
        days.setdefault(entry.date.date(), []).append(entry)
    return days


def streaks(days: Iterable[dt.date], today: dt.date) -> Streaks:
    """The current streak ends today, or yesterday while today has no entry yet (the day is not
    over); the longest is over every day up to today, the most recent of equal runs."""
    ordered = sorted({day for day in days if day <= today})
    longest, longest_start, longest_end = 0, None, None
    run_start, length = today, 0
    for i, day in enumerate(ordered):
        if i == 0 or day - ordered[i - 1] != ONE_DAY:
            run_start = day
        length = (day - run_start).days + 1
        if length >= longest:
            longest, longest_start, longest_end = length, run_start, day
    current = length if ordered and ordered[-1] >= today - ONE_DAY else 0
    return Streaks(current, longest, longest_start, longest_end)


def calendar_html(entries: Iterable[LogEntry], today: dt.date, link: str = "calendar/") -> str:
    """The calendar as one raw-HTML block for a Markdown page: the year's grid, the last 26
    weeks' grid (CSS shows one), and a line of figures. A study day's square links to
    `{link}#d-YYYY-MM-DD`, its paragraph on the calendar page."""
    days = study_days(entries)
    first = _year_start(today)
    half_first = today - dt.timedelta(days=today.weekday(), weeks=HALF_WEEKS - 1)
    in_year = sum(1 for day in days if first <= day <= today)
    in_half = sum(1 for day in days if half_first <= day <= today)
    return "\n".join([
        # markdown="0": md_in_html leaves the block as written
        '<div class="studylog-calendar" markdown="0">',
        _grid(days, first, today, link, "year", f"{_count(in_year, 'study day')} in the last twelve months"),
        _grid(days, half_first, today, link, "half", f"{_count(in_half, 'study day')} in the last 26 weeks"),
        f'<p class="studylog-calendar-summary">{_summary(in_year, streaks(days, today))}</p>',
        "</div>",
    ])


def calendar_page(entries: Iterable[LogEntry], today: dt.date) -> str:
    """The page calendar.md, at the docs root: the calendar, then each study day of the last
    twelve months, newest first, as a paragraph linking its entries."""
    entries = list(entries)
    days = study_days(entries)
    first = _year_start(today)
    paragraphs = [
        f'<a id="d-{day.isoformat()}"></a>**{day:%A} {day.day} {day:%B %Y}**: '
        + " · ".join(f"[{markdown_text(e.title)}](posts/{quote(e.path.name)})" for e in days[day])
        for day in sorted(days, reverse=True)
        if first <= day <= today
    ]
    return "\n\n".join(["# Study days", calendar_html(entries, today, link=""), *paragraphs]) + "\n"


def _year_start(today: dt.date) -> dt.date:
    """The first day of the twelve months ending today: the day after the same date a year before."""
    try:
        return today.replace(year=today.year - 1) + ONE_DAY
    except ValueError:  # 29 February: a year before has none
        return dt.date(today.year - 1, 3, 1)


def _grid(days: dict[dt.date, list[LogEntry]], first: dt.date, today: dt.date, link: str,
          size: str, label: str) -> str:
    monday = first - dt.timedelta(days=first.weekday())
    weeks = (today - monday).days // 7 + 1
    lines = [
        f'<svg class="studylog-calendar-{size}" viewBox="0 0 {LEFT + weeks * PITCH} {TOP + 7 * PITCH}" '
        f'width="100%" role="img" aria-label="{label}">'
    ]
    lines += [_label(0, TOP + row * PITCH + CELL - 1, name) for row, name in ((0, "Mon"), (2, "Wed"), (4, "Fri"))]
    # A month's name tops the week of its first Monday, never the last week: it would not fit.
    lines += [
        _label(LEFT + week * PITCH, TOP - 4, f"{start:%b}")
        for week in range(weeks - 1)
        if (start := monday + dt.timedelta(weeks=week)).day <= 7
    ]
    lines += [_cell(day, (day - monday).days, days.get(day, []), link) for day in _dates(first, today)]
    lines.append("</svg>")
    return "\n".join(lines)


def _dates(first: dt.date, last: dt.date) -> Iterable[dt.date]:
    return (first + dt.timedelta(days=i) for i in range((last - first).days + 1))


def _label(x: int, y: int, text: str) -> str:
    return f'<text class="studylog-calendar-label" x="{x}" y="{y}">{text}</text>'


def _cell(day: dt.date, offset: int, entries: list[LogEntry], link: str) -> str:
    """One day's square; `offset` counts days from the grid's first Monday."""
    count = _count(len(entries), 'entry', 'entries') if entries else "no entries"
    rect = (
        f'<rect class="studylog-calendar-l{min(len(entries), MAX_LEVEL)}" x="{LEFT + offset // 7 * PITCH}" '
        f'y="{TOP + offset % 7 * PITCH}" width="{CELL}" height="{CELL}" rx="2">'
        f"<title>{_short(day)}: {count}</title></rect>"
    )
    return f'<a href="{escape(link)}#d-{day.isoformat()}">{rect}</a>' if entries else rect


def _summary(in_year: int, runs: Streaks) -> str:
    parts = [
        f"{_count(in_year, 'study day')} in the last twelve months",
        f"current streak {_count(runs.current, 'day')}",
    ]
    if runs.longest:
        span = _short(runs.longest_start)
        if runs.longest_end != runs.longest_start:
            span += f" – {_short(runs.longest_end)}"
        parts.append(f"longest streak {_count(runs.longest, 'day')} ({span})")
    return " · ".join(parts)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _short(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"
