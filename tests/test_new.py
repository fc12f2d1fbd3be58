"""`studylog new`: slugs from any title, the skeleton, and never overwriting."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from studylog.logs.check import check_project
from studylog.cli import main
from studylog.errors import StudylogError
from studylog.logs.new import new_entry


@pytest.mark.parametrize(
    "title, slug",
    [
        ("Parameter servers, part 1", "parameter-servers-part-1"),
        ("Ring all-reduce: 2(n−1)/n", "ring-all-reduce-2-n-1-n"),
        ("Über Ähnlichkeit", "uber-ahnlichkeit"),
        ("强化学习 notes", "qiang-hua-xue-xi-notes"),
        ("  Trailing   spaces  ", "trailing-spaces"),
    ],
)
def test_slug_is_lowercase_ascii_words(maker, title, slug):
    path = new_entry(maker.project, title, dt.date(2026, 3, 1))
    assert path.name == f"2026-03-01-{slug}.md"


def test_new_entry_passes_check_with_tags_and_labs(maker):
    maker.lab("actors")
    path = new_entry(maker.project, 'A "quoted": title', dt.date(2026, 3, 1), ("rl", "notes"), ("actors",))
    text = path.read_text(encoding="utf-8")
    for heading in ("## Summary", "## Notes", "## Remarks"):
        assert heading in text
    (entry,) = check_project(maker.project).entries
    assert entry.title == 'A "quoted": title'
    assert entry.tags == ("rl", "notes") and entry.labs == ("actors",)


def test_existing_file_is_left_byte_for_byte(maker):
    existing = maker.raw_log("2026-03-01-same-title.md", b"---\ntitle: Mine\n---\nkeep \xff me")
    before = existing.read_bytes()
    with pytest.raises(StudylogError, match="already exists"):
        new_entry(maker.project, "Same title", dt.date(2026, 3, 1))
    assert existing.read_bytes() == before
    assert sorted(p.name for p in (maker.root / "logs").iterdir()) == ["2026-03-01-same-title.md"]


def test_unknown_lab_refused(maker):
    with pytest.raises(StudylogError, match="names no lab"):
        new_entry(maker.project, "X", dt.date(2026, 3, 1), labs=("../etc",))
    assert not any((maker.root / "logs").iterdir())


def test_cli_new_prints_path_and_refuses_second_time(maker):
    runner = CliRunner()
    args = ["--root", str(maker.root), "new", "Daily entry", "--date", "2026-03-01", "--tag", "rl"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "logs/2026-03-01-daily-entry.md"
    second = runner.invoke(main, args)
    assert second.exit_code == 1
    assert "already exists; not overwritten" in second.output


def test_cli_new_defaults_to_today(maker):
    result = CliRunner().invoke(main, ["--root", str(maker.root), "new", "Today"])
    assert result.exit_code == 0
    assert result.output.strip() == f"logs/{dt.date.today().isoformat()}-today.md"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.text(min_size=1, max_size=60))
def test_any_title_round_trips_or_is_refused(maker, title):
    for old in (maker.root / "logs").iterdir():
        old.unlink()
    try:
        path = new_entry(maker.project, title, dt.date(2026, 3, 1))
    except StudylogError as err:
        assert "slug" in str(err) or "title" in str(err)
        return
    assert re.fullmatch(r"2026-03-01-[a-z0-9]+(-[a-z0-9]+)*\.md", path.name)
    result = check_project(maker.project)
    assert result.problems == ()
    assert result.entries[0].title == " ".join(title.split())
