"""`studylog new`: slugs from any title, the skeleton, and never overwriting."""

from __future__ import annotations

import datetime as dt
import re
import shlex

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


def test_cli_new_draft_writes_draft_true(maker):
    result = CliRunner().invoke(main, ["--root", str(maker.root), "new", "Half done", "--date", "2026-03-01", "--draft"])
    assert result.exit_code == 0, result.output
    assert "\ndraft: true\n" in (maker.root / "logs/2026-03-01-half-done.md").read_text(encoding="utf-8")
    (entry,) = check_project(maker.project).entries
    assert entry.draft


@pytest.fixture
def editor(tmp_path):
    """A fake editor: a shell script in a folder whose name needs quoting, recording its
    arguments in `opened` and exiting with $EDITOR_STATUS."""
    folder = tmp_path / "my editor"
    folder.mkdir()
    script = folder / "edit.sh"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/opened"\nexit "${EDITOR_STATUS:-0}"\n',
                      encoding="utf-8")
    return folder


def _new_with_editor(maker, **env):
    args = ["--root", str(maker.root), "new", "Edited", "--date", "2026-03-01", "--edit"]
    return CliRunner().invoke(main, args, env={"VISUAL": None, "EDITOR": None, **env})


def test_cli_new_edit_opens_visual_split_like_a_shell(maker, editor):
    result = _new_with_editor(maker, VISUAL=f"sh {shlex.quote(str(editor / 'edit.sh'))} -w", EDITOR="false")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "logs/2026-03-01-edited.md"
    entry = maker.root / "logs/2026-03-01-edited.md"
    assert (editor / "opened").read_text(encoding="utf-8").splitlines() == ["-w", str(entry)]


def test_cli_new_edit_falls_back_to_editor(maker, editor):
    result = _new_with_editor(maker, VISUAL=" ", EDITOR=f"sh {shlex.quote(str(editor / 'edit.sh'))}")
    assert result.exit_code == 0, result.output
    assert (editor / "opened").read_text(encoding="utf-8").splitlines() == [str(maker.root / "logs/2026-03-01-edited.md")]


def test_cli_new_edit_without_an_editor_keeps_the_entry(maker):
    result = _new_with_editor(maker)
    assert result.exit_code == 1
    assert "error: logs/2026-03-01-edited.md: created, not opened: set $VISUAL or $EDITOR" in result.output
    assert (maker.root / "logs/2026-03-01-edited.md").exists()


@pytest.mark.parametrize("command, status, says", [
    ("sh {script}", "3", "exited with status 3"),
    ("no-such-editor-here -w", "0", "did not start"),
    ("sh '{script}", "0", "does not parse"),
])
def test_cli_new_edit_failing_editor_keeps_the_entry(maker, editor, command, status, says):
    visual = command.format(script=shlex.quote(str(editor / "edit.sh")))
    result = _new_with_editor(maker, VISUAL=visual, EDITOR_STATUS=status)
    assert result.exit_code == 1
    assert says in result.output and "$VISUAL" in result.output
    assert "title: Edited" in (maker.root / "logs/2026-03-01-edited.md").read_text(encoding="utf-8")
