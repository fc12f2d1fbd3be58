"""The command line: help everywhere, one-line errors, exit codes, `python -m studylog`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from studylog import __version__, report
from studylog.cli import main
from studylog.errors import Problem
from studylog.site.build import site_url_warnings

COMMANDS = ["check", "new", "build", "serve", "init"]


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


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"studylog, version {__version__}\n"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/", "https://127.8.9.10/log/", "http://[::1]:8000/", "http://localhost/",
    "http://LocalHost.:8000/", "http://blog.localhost/", "http://[::ffff:127.0.0.1]/",
])
def test_build_warns_at_the_site_url_line_when_it_is_loopback(maker, url):
    (maker.root / "mkdocs.yml").write_text(f"site_name: Fixture\n# where it lives\nsite_url: {url}\n", encoding="utf-8")
    (warning,) = site_url_warnings(maker.project)
    assert warning.path == Path("mkdocs.yml") and warning.line == 3 and warning.warning
    assert str(warning).startswith(f"mkdocs.yml:3: warning: site_url {url} is a loopback address")


@pytest.mark.parametrize("url", ["https://example.org/log/", "http://10.0.0.7:8000/", "http://[2001:db8::1]/",
                                 "http://localhost.example.org/", "http://128.0.0.1/"])
def test_build_is_quiet_about_a_published_site_url(maker, url):
    (maker.root / "mkdocs.yml").write_text(f"site_name: Fixture\nsite_url: {url}\n", encoding="utf-8")
    assert site_url_warnings(maker.project) == []


def test_build_warns_at_line_1_when_the_default_site_url_is_used(maker):
    (warning,) = site_url_warnings(maker.project)
    assert warning == Problem(Path("mkdocs.yml"), 1, warning.message, warning=True)
    assert "no site_url" in warning.message and "set site_url" in warning.message


def test_engine_build_status_shows_elapsed_time_on_a_terminal_only(monkeypatch):
    for terminal in (True, False):
        screen = io.StringIO()
        monkeypatch.setattr(report, "console", Console(file=screen, force_terminal=terminal, width=80))
        with report.elapsed_status("building site/ with mkdocs"):
            time.sleep(0.3)
        if terminal:
            assert "building site/ with mkdocs" in screen.getvalue() and "0:00:00" in screen.getvalue()
        else:
            assert screen.getvalue() == ""


def test_a_profile_runs_only_where_a_lab_declares_it(maker):
    maker.lab("plain")
    maker.lab("wide", profiles="quick:\n  n: 2\nfull:\n  n: 5\ncluster:\n  n: 64",
              body="from studylog import record\nrecord('n', n, 'workers')")
    run = lambda *args: CliRunner().invoke(main, ["--root", str(maker.root), "run", *args])  # noqa: E731
    named = run("plain", "--profile", "cluster")
    assert named.exit_code == 1 and "labs/plain.py: no profile 'cluster' (it declares quick, full)" in named.output
    typo = run("--profile", "fulll")
    assert typo.exit_code == 1 and "no lab declares a profile 'fulll'" in typo.output
    assert not (maker.root / ".studylog" / "cache").exists()  # neither ran anything
    every = run("--profile", "cluster")  # every lab that declares it: only `wide`
    assert every.exit_code == 0, every.output
    assert [p.parent.name for p in (maker.root / ".studylog" / "cache").glob("*/cluster")] == ["wide"]
    results = CliRunner().invoke(main, ["--root", str(maker.root), "results", "wide", "--profile", "cluster", "--json"])
    assert json.loads(results.output)["metrics"]["n"]["value"] == 64
