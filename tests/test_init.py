"""`studylog init`: a project that `studylog build` publishes as it is, and never an overwrite."""

from __future__ import annotations

import datetime as dt
import errno
import os
import subprocess

import pytest
from click.testing import CliRunner

from studylog import init
from studylog.cli import main

TOP_LEVEL = ["logs", "labs", "site_src", "mkdocs.yml", ".gitignore", "jupytext.toml"]


def test_init_then_build_publishes_the_first_entry_and_ignores_every_output(tmp_path):
    root = tmp_path / "my log"
    today = dt.date.today()
    made = CliRunner().invoke(main, ["init", str(root)])
    assert made.exit_code == 0, made.output
    assert f"logs/{today.isoformat()}-starting-this-log.md" in made.output.splitlines()
    assert sorted(p.name for p in root.iterdir()) == sorted(TOP_LEVEL)
    assert list((root / "labs").iterdir()) == []
    subprocess.run(["git", "init", "-q", str(root)], check=True)

    built = CliRunner().invoke(main, ["--root", str(root), "build"])

    assert built.exit_code == 0, built.output
    assert "mkdocs.yml:1: warning: no site_url, so studylog's default http://127.0.0.1:8000/ is used" in built.output
    assert "building site/" not in built.output  # not a terminal: no status line
    page = root / "site" / today.strftime("%Y/%m/%d") / "starting-this-log" / "index.html"
    assert "Starting this log" in page.read_text(encoding="utf-8")
    # Everything the build wrote is ignored: only what init wrote is there to commit.
    status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=all"],
                            capture_output=True, text=True, check=True).stdout
    assert sorted(line[3:] for line in status.splitlines()) == sorted(
        [".gitignore", "jupytext.toml", f"logs/{today.isoformat()}-starting-this-log.md", "mkdocs.yml",
         "site_src/index.md"])


@pytest.mark.parametrize("taken", TOP_LEVEL)
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_init_refuses_any_existing_path_and_creates_nothing(tmp_path, taken, kind):
    existing = tmp_path / taken
    if kind == "file":
        existing.write_bytes(b"mine \xff\n")
    else:
        existing.mkdir()
        (existing / "keep.txt").write_text("mine\n", encoding="utf-8")

    result = CliRunner().invoke(main, ["init", str(tmp_path)])

    assert result.exit_code == 1
    assert f"{existing}: already there" in result.output and "created nothing" in result.output
    assert [p.name for p in tmp_path.iterdir()] == [taken]
    if kind == "file":
        assert existing.read_bytes() == b"mine \xff\n"
    else:
        assert [p.name for p in existing.iterdir()] == ["keep.txt"]


def test_init_names_every_existing_path(tmp_path):
    (tmp_path / "mkdocs.yml").write_text("site_name: Mine\n", encoding="utf-8")
    (tmp_path / "logs").mkdir()
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'logs'}, {tmp_path / 'mkdocs.yml'}: already there" in result.output


def test_init_defaults_to_the_current_folder_and_keeps_other_files(tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text("# Mine\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*TOP_LEVEL, "README.md"])
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "# Mine\n"
    assert "next: studylog build" in result.output


def test_init_into_a_file_is_one_line(tmp_path):
    (tmp_path / "notes").write_text("mine\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", str(tmp_path / "notes")])
    assert result.exit_code != 0
    assert "notes" in result.output and "Traceback" not in result.output
    assert (tmp_path / "notes").read_text(encoding="utf-8") == "mine\n"


def test_init_that_fails_midway_takes_back_what_it_made(tmp_path, monkeypatch):
    def disk_full(project, *args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(project.logs_dir / "entry.md"))

    monkeypatch.setattr(init, "new_entry", disk_full)
    result = CliRunner().invoke(main, ["init", str(tmp_path / "new" / "log")])
    assert result.exit_code == 1
    assert "entry.md: No space left on device; studylog init created nothing" in result.output
    assert [p.name for p in (tmp_path / "new").iterdir()] == []
