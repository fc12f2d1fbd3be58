"""The calendar of study days: streak arithmetic, the SVG grids (well-formed, one linked square per
study day, levels by count) and the page that lists the days, as Python-Markdown with md_in_html
(what both engines run) renders it."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import markdown
from hypothesis import given, strategies as st

from studylog.logs.entry import LogEntry
from studylog.site.calendar import Streaks, calendar_html, calendar_page, streaks, study_days

TODAY = dt.date(2026, 11, 27)  # a Friday
SVG = "{http://www.w3.org/2000/svg}"


def day(iso: str) -> dt.date:
    return dt.date.fromisoformat(iso)


def entry(when: str, slug: str, title: str = "Entry") -> LogEntry:
    date = dt.datetime.fromisoformat(when)
    return LogEntry(Path(f"logs/{date:%Y-%m-%d}-{slug}.md"), title, date, slug, "")


# Runs of 3 (ending yesterday), 4 (in October), 2 and 1 (older than twelve months), and a day
# after today; 26 November has four entries, one of them tz-aware and late in the day.
ENTRIES = [
    entry("2026-11-26 23:30:00+05:00", "late"),
    entry("2026-11-26 09:00", "b"),
    entry("2026-11-26", "a"),
    entry("2026-11-26 10:00", "c"),
    entry("2026-11-25", "two", "Two"),
    entry("2026-11-25", "three", "Three"),
    entry("2026-11-24", "one"),
    entry("2026-10-01", "oct1"),
    entry("2026-10-02", "oct2"),
    entry("2026-10-03", "oct3"),
    entry("2026-10-04", "oct4"),
    entry("2025-11-28", "first-day-in-range"),
    entry("2025-11-27", "a-year-ago"),
    entry("2025-11-26", "older"),
    entry("2026-12-01", "future"),
]
IN_RANGE = {"2026-11-26": 4, "2026-11-25": 2, "2026-11-24": 1, "2026-10-01": 1, "2026-10-02": 1,
            "2026-10-03": 1, "2026-10-04": 1, "2025-11-28": 1}


def grids(html: str) -> dict[str, ET.Element]:
    """The two SVGs in the calendar's HTML by size, parsed as XML (which proves them well formed)."""
    svgs = re.findall(r"<svg .*?</svg>", html, re.S)
    parsed = [ET.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1)) for svg in svgs]
    return {svg.get("class").removeprefix("studylog-calendar-"): svg for svg in parsed}


def linked(svg: ET.Element) -> dict[str, ET.Element]:
    """Each link's target and the square inside it."""
    return {a.get("href"): a.find(f"{SVG}rect") for a in svg.iter(f"{SVG}a")}


def test_study_days_groups_by_the_date_as_written_in_publication_order():
    days = study_days(ENTRIES)
    assert [e.slug for e in days[day("2026-11-26")]] == ["a", "b", "c", "late"]
    assert [e.slug for e in days[day("2026-11-25")]] == ["three", "two"]  # same time: by file name
    assert len(days) == 11  # the eight in range, two older, one after today


def test_current_streak_ends_today_or_while_today_is_not_over_yesterday():
    run = [day("2026-11-24"), day("2026-11-25"), day("2026-11-26")]
    assert streaks(run, TODAY).current == 3
    assert streaks([*run, TODAY], TODAY).current == 4
    assert streaks(run, TODAY + dt.timedelta(days=1)).current == 0  # broken by a day without entries
    assert streaks([day("2026-11-23"), *run[1:], TODAY], TODAY).current == 3  # broken by a gap


def test_longest_streak_with_its_days_the_most_recent_of_equal_runs():
    days = study_days(ENTRIES)
    assert streaks(days, TODAY) == Streaks(3, 4, day("2026-10-01"), day("2026-10-04"))
    two_runs = [day("2026-01-01"), day("2026-01-02"), day("2026-03-01"), day("2026-03-02")]
    assert streaks(two_runs, TODAY) == Streaks(0, 2, day("2026-03-01"), day("2026-03-02"))


def test_days_after_today_are_ignored_and_no_days_make_no_streak():
    assert streaks([TODAY + dt.timedelta(days=1)], TODAY) == Streaks(0, 0, None, None)
    assert streaks([], TODAY) == Streaks(0, 0, None, None)
    assert streaks([TODAY, TODAY], TODAY) == Streaks(1, 1, TODAY, TODAY)


@given(st.sets(st.integers(min_value=0, max_value=60), max_size=40), st.integers(min_value=0, max_value=70))
def test_streaks_match_a_brute_force_count(offsets, today_offset):
    start = dt.date(2024, 2, 20)
    days = {start + dt.timedelta(days=i) for i in offsets}
    today = start + dt.timedelta(days=today_offset)
    past = {d for d in days if d <= today}

    def run_ending(last: dt.date) -> int:
        n = 0
        while last - dt.timedelta(days=n) in past:
            n += 1
        return n

    result = streaks(days, today)
    assert result.longest == max((run_ending(d) for d in past), default=0)
    assert result.current == max(run_ending(today), run_ending(today - dt.timedelta(days=1)))
    assert result.current <= result.longest
    if past:
        assert (result.longest_end - result.longest_start).days + 1 == result.longest
        assert result.longest_end == max(d for d in past if run_ending(d) == result.longest)


def test_the_year_links_one_square_per_study_day_in_range_with_its_level():
    year = grids(calendar_html(ENTRIES, TODAY))["year"]
    links = linked(year)
    assert set(links) == {f"calendar/#d-{d}" for d in IN_RANGE}
    for d, count in IN_RANGE.items():
        assert links[f"calendar/#d-{d}"].get("class") == f"studylog-calendar-l{min(count, 4)}"
    squares = list(year.iter(f"{SVG}rect"))
    assert len(squares) == 365  # 28 Nov 2025 to 27 Nov 2026
    unlinked = [r for r in squares if r not in links.values()]
    assert {r.get("class") for r in unlinked} == {"studylog-calendar-l0"}


def test_square_titles_say_the_day_and_its_count():
    year = grids(calendar_html(ENTRIES, TODAY))["year"]
    titles = [t.text for t in year.iter(f"{SVG}title")]
    assert titles[0] == "28 Nov 2025: 1 entry"
    assert "26 Nov 2026: 4 entries" in titles and "25 Nov 2026: 2 entries" in titles
    assert titles[-1] == "27 Nov 2026: no entries"
    assert not any("2025" in t and "27 Nov" in t for t in titles)  # a year ago is out of range


def test_a_leap_day_calendar_starts_on_the_first_of_march():
    year = grids(calendar_html([], dt.date(2028, 2, 29)))["year"]
    titles = [t.text for t in year.iter(f"{SVG}title")]
    assert (titles[0], titles[-1], len(titles)) == ("1 Mar 2027: no entries", "29 Feb 2028: no entries", 366)


def test_grids_are_labelled_and_read_on_a_phone():
    html = calendar_html(ENTRIES, TODAY)
    svgs = grids(html)
    year, half = svgs["year"], svgs["half"]
    assert year.get("aria-label") == "8 study days in the last twelve months"
    assert half.get("aria-label") == "7 study days in the last 26 weeks"
    assert year.get("role") == half.get("role") == "img"
    assert set(linked(half)) == {f"calendar/#d-{d}" for d in IN_RANGE if d >= "2026-05-25"}  # from a Monday
    half_width = float(half.get("viewBox").split()[2])
    square = float(next(half.iter(f"{SVG}rect")).get("width"))
    assert square * 358 / half_width >= 10  # a square's CSS px at 100% of a 390 px phone's text
    labels = [t.text for t in year.iter(f"{SVG}text")]
    assert labels[:3] == ["Mon", "Wed", "Fri"] and labels[3:] == [
        "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov"]


def test_the_summary_line_counts_days_and_streaks():
    html = calendar_html(ENTRIES, TODAY)
    assert ("8 study days in the last twelve months · current streak 3 days"
            " · longest streak 4 days (1 Oct 2026 – 4 Oct 2026)") in html
    one = calendar_html([entry("2026-11-27", "x")], TODAY)
    assert "1 study day in the last twelve months · current streak 1 day · longest streak 1 day (27 Nov 2026)<" in one
    none = calendar_html([], TODAY)
    assert "0 study days in the last twelve months · current streak 0 days<" in none


def test_markdown_leaves_the_calendar_block_as_written():
    html = calendar_html(ENTRIES, TODAY)
    assert all(line and not line[0].isspace() for line in html.splitlines())
    rendered = markdown.markdown(html, extensions=["md_in_html"])
    assert re.findall(r"<svg .*?</svg>", rendered, re.S) == re.findall(r"<svg .*?</svg>", html, re.S)


def test_the_page_lists_study_days_newest_first_linked_from_the_grid():
    hostile = entry("2026-11-27 08:00", "hostile", "<script>alert(1)</script> [a] \\b")
    page = calendar_page([*ENTRIES, hostile], TODAY)
    assert page.startswith("# Study days\n\n")
    rendered = markdown.markdown(page, extensions=["md_in_html"])
    paragraphs = re.findall(r'<p><a id="d-([\d-]+)"></a><strong>([^<]+)</strong>: (.*?)</p>', rendered)
    anchors = [d for d, _, _ in paragraphs]
    assert anchors == sorted([*IN_RANGE, "2026-11-27"], reverse=True)
    assert set(linked(grids(rendered)["year"])) == {f"#d-{d}" for d in anchors}
    assert paragraphs[0][1] == "Friday 27 November 2026"
    links = {d: re.findall(r'<a href="([^"]+)">(.*?)</a>', rest) for d, _, rest in paragraphs}
    assert links["2026-11-25"] == [("posts/2026-11-25-three.md", "Three"), ("posts/2026-11-25-two.md", "Two")]
    assert " · " in paragraphs[1][2]
    shown = "&lt;script&gt;alert(1)&lt;/script&gt; &#91;a&#93; &#92;b"
    assert links["2026-11-27"] == [("posts/2026-11-27-hostile.md", shown)]
    assert "<script>" not in rendered
