"""The execution store and the site swap survive a crash at any point.

A crash is injected deterministically: the k-th file-system change (a rename, an unlink,
an fsync) raises instead of happening, for every k from the first change to the last, so
every window between two steps is tried, not just those a random kill happens to hit.
"""

from __future__ import annotations

import json
import os

import pytest

from studylog import atomic
from studylog.atomic import recover_dir, replace_dir
from studylog.labs.store import entry_dir, load, save

CHANGES = ("replace", "rename", "unlink", "fsync")


class Crash(Exception):
    pass


def crash_at(monkeypatch: pytest.MonkeyPatch, k: int | None) -> dict:
    """Make the k-th file-system change raise Crash (None: count the changes, crash never)."""
    seen = {"changes": 0}
    for name in CHANGES:
        real = getattr(os, name)

        def change(*args, _real=real, **kwargs):
            if seen["changes"] == k:
                raise Crash
            seen["changes"] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, change)
    return seen


def a_run(lab: str, profile: str, text: str, status: str = "ok") -> tuple[dict, str]:
    record = {"lab": lab, "profile": profile, "status": status, "metrics": {"x": {"value": 1.0, "unit": ""}}}
    notebook = json.dumps({"cells": [{"source": text}], "nbformat": 4})
    return record, notebook


def notebook_text(stored) -> str:
    return json.loads(stored.notebook.read_text(encoding="utf-8"))["cells"][0]["source"]


@pytest.mark.parametrize("profile", ["quick", "full"])
@pytest.mark.parametrize("status", ["ok", "failed"])
def test_a_crash_anywhere_in_save_leaves_the_previous_run_or_the_new_one(maker, monkeypatch, profile, status):
    project = maker.project
    with monkeypatch.context() as counting:
        save(project, *a_run("lab", profile, "first"))
        total = crash_at(counting, None)
        save(project, *a_run("lab", profile, "counted", status))
    changes = total["changes"]
    assert changes >= 5  # two writes, two folder syncs, a clean-up at least
    for k in range(changes):
        save(project, *a_run("lab", profile, "before"))
        with monkeypatch.context() as crashing:
            crash_at(crashing, k)
            with pytest.raises(Crash):
                save(project, *a_run("lab", profile, "after", status))
        good = load(project, "lab", profile)  # never Corrupt, never missing
        assert good is not None and good.ok
        expected = {"before", "after"} if status == "ok" else {"before"}
        assert notebook_text(good) in expected, f"crash at change {k}"
        failure = load(project, "lab", profile, failure=True)
        assert failure is None or notebook_text(failure) == "after"
    # The next save clears whatever the crashes left: one notebook, no temporary files.
    save(project, *a_run("lab", profile, "last"))
    folder = entry_dir(project, "lab", profile)
    assert sorted(p.name for p in folder.iterdir() if p.suffix in (".ipynb", ".tmp")) == [load(project, "lab", profile).notebook.name]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-aside"])
def test_a_crash_anywhere_in_the_site_swap_leaves_the_old_site_or_the_new_one(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "site"

    def stage(text: str):
        staging = tmp_path / "site.new"
        staging.mkdir(exist_ok=True)
        (staging / "index.html").write_text(text, encoding="utf-8")
        return staging

    target.mkdir()
    (target / "index.html").write_text("old", encoding="utf-8")
    with monkeypatch.context() as counting:
        total = crash_at(counting, None)
        replace_dir(stage("counted"), target)
    for k in range(total["changes"]):
        replace_dir(stage("old"), target)
        with monkeypatch.context() as crashing:
            crash_at(crashing, k)
            with pytest.raises(Crash):
                replace_dir(stage("new"), target)
        recover_dir(target)  # what every build does first
        assert (target / "index.html").read_text(encoding="utf-8") in ("old", "new"), f"crash at change {k}"
