"""The command line: help everywhere, one-line errors, exit codes, `python -m studylog`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from studylog.cli import main

COMMANDS = ["check", "new", "build", "serve"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_check_clean_prints_summary(maker):
    maker.log("2026-03-01-a.md", "title: A\ndate: 2026-03-01")
    maker.log("2026-03-02-b.md", "title: B\ndate: 2026-03-02\ndraft: true")
    result = CliRunner().invoke(main, ["--root", str(maker.root), "check"])
    assert result.exit_code == 0
    assert result.output == "2 logs checked (1 drafts): no problems\n"


def test_check_problems_exit_1_without_traceback(maker):
    maker.raw_log("2026-03-01-a.md", "---\ntitle: A\ndate: 2026-03-05\n---\n")
    maker.raw_log("2026-03-02-b.md", "")
    run = subprocess.run(
        [sys.executable, "-m", "studylog", "--root", str(maker.root), "check"], capture_output=True, text=True
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "logs/2026-03-01-a.md:3: date 2026-03-05 does not match the file name's date 2026-03-01",
        "logs/2026-03-02-b.md:1: empty file",
        "error: 2 problems found; nothing published",
    ]


def test_not_a_project_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "studylog", "--root", str(tmp_path), "check"], capture_output=True, text=True)
    assert run.returncode == 1
    assert len(run.stderr.splitlines()) == 1
    assert "no logs/ folder" in run.stderr
