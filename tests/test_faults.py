"""Bad input and faults: fuzzed front matter and file names, builds killed at random moments,
lab names that are paths."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ProjectMaker
from studylog.cli import main

PROBLEM_LINE = re.compile(r"^\S.*:\d+: \S")  # path:line: message

# Front matter made of the keys studylog reads, each with a value that may be right, wrong
# or junk, plus arbitrary YAML-ish text, so the fuzzer reaches every parser branch.
KEYS = ["title", "date", "tags", "categories", "math", "labs", "draft", "published", "slug", "description", "layout"]
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["2026-03-01", "2026-03-01 10:00:00 +0100", "2026-13-45", "[a, b]", "{x: 1}", "true", "no",
                     "[../x]", "null", "'unterminated", "- item", "!!binary AA==", "*alias", "&anchor v", "1e999", ""]),
    st.integers().map(str),
)
FRONT = st.one_of(
    st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=8).map(lambda kv: "\n".join(f"{k}: {v}" for k, v in kv)),
    st.text(max_size=200),
)
NAMES = st.one_of(
    st.from_regex(r"\A2026-0[1-9]-[0-3][0-9]-[a-z0-9-]{1,20}\.md\Z"),
    st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1, max_size=40).map(lambda s: s + ".md"),
)


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=NAMES, front=FRONT, body=st.text(max_size=100), fenced=st.booleans())
def test_check_accepts_or_reports_path_line_message_and_writes_nothing(tmp_path_factory, name, front, body, fenced):
    maker = ProjectMaker(tmp_path_factory.mktemp("fuzz") / "proj")
    content = f"---\n{front}\n---\n{body}" if fenced else front + body
    try:
        path = maker.raw_log(name, content)
    except OSError:  # a name the file system itself refuses (too long in bytes, say)
        return
    before = {p: p.read_bytes() for p in (maker.root / "logs").iterdir()}
    result = CliRunner().invoke(main, ["--root", str(maker.root), "check"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        problems = [line for line in result.output.splitlines() if PROBLEM_LINE.match(line)]
        assert problems, result.output
    after = {p: p.read_bytes() for p in (maker.root / "logs").iterdir()}
    assert after == before and path in after


def test_a_lab_name_that_is_a_path_is_refused(maker):
    maker.lab("ring")
    for name in ("../ring", "labs/ring", "/etc/passwd"):
        result = CliRunner().invoke(main, ["--root", str(maker.root), "run", name])
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
        assert name in result.output


def snapshot(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def test_build_killed_at_random_moments_leaves_the_previous_site_whole(maker):
    """Four builds, each SIGKILLed at a random moment: site/ is always one whole build (the
    previous one, or the new one if the swap happened), and the next build is right. Every
    window of the swap itself is tried deterministically in test_store.py; this checks the
    whole command end to end."""
    from test_build import fixture_project

    fixture_project(maker)
    command = [str(Path(sys.executable).parent / "studylog"), "--root", str(maker.root), "build"]
    subprocess.run(command, check=True, capture_output=True)
    start = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    duration = time.monotonic() - start
    site = maker.root / "site"
    good = snapshot(site)
    # The feeds and the sitemap carry the time of the build that wrote them; every other
    # file of a whole build is the same bytes.
    volatile = {k for k in good if k.startswith(("sitemap.xml", "feed_"))}
    rng = random.Random(9)
    for trial in range(4):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.05, duration))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        now = snapshot(site)
        assert now.keys() == good.keys(), f"trial {trial}: site/ is not one whole build"
        assert {k: v for k, v in now.items() if k not in volatile} == {k: v for k, v in good.items() if k not in volatile}
    subprocess.run(command, check=True, capture_output=True)
    assert snapshot(site).keys() == good.keys()


def test_a_lab_symlinked_from_outside_the_repository_is_refused(maker, tmp_path):
    from conftest import lab_source

    outside = tmp_path / "outside.py"
    outside.write_text(lab_source(), encoding="utf-8")
    (maker.root / "labs" / "borrowed.py").symlink_to(outside)
    result = CliRunner().invoke(main, ["--root", str(maker.root), "check"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "labs/borrowed.py:1: symlink points outside the project" in result.output
    result = CliRunner().invoke(main, ["--root", str(maker.root), "run", "borrowed"])
    assert result.exit_code != 0 and not (maker.root / ".studylog" / "cache" / "borrowed").exists()
