"""The execution store: what each lab run produced, and whether it is still valid.

A run is kept as its executed notebook and a record (`run.json`: inputs, status, metrics,
environment). The latest `full` run of a lab lives in the tracked `results/NAME/` (frozen,
so a fresh clone builds the site without executing anything); other profiles live in the
git-ignored `.studylog/cache/`. A run is valid while its inputs are unchanged: the lab's
source, the profile's parameters, the project modules it imports and the data files it read.

Crash safety: the record is the one pointer to a run, and it only ever points at a complete
notebook. A notebook is stored under a name made of its digest, beside the one the current
record names; then the record is replaced by an atomic rename (the switch); only then is
the notebook no record names any more removed. Each step is made durable (file and folder
fsynced) before the next, so a crash at any point leaves the previous run or the new one,
never a record without its notebook. A failed `full` run is kept beside the last good one
(`failure.json`), never in its place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studylog.atomic import sync_dir, write_atomic
from studylog.project import Project

RECORD = "run.json"
FAILURE = "failure.json"
HISTORY = "history.jsonl"
PUBLISHED_PROFILE = "full"


@dataclass(frozen=True)
class Stored:
    """A run read back from the store."""

    record: dict[str, Any]
    notebook: Path

    @property
    def ok(self) -> bool:
        return self.record["status"] == "ok"


class Corrupt(Exception):
    """A store entry that cannot be trusted; the lab runs again."""


def entry_dir(project: Project, lab: str, profile: str) -> Path:
    if profile == PUBLISHED_PROFILE:
        return project.root / "results" / lab
    return project.work_dir / "cache" / lab / profile


def load(project: Project, lab: str, profile: str, failure: bool = False) -> Stored | None:
    """The stored run (the last good one, or the last failure), None if there is none.

    Raises Corrupt when the entry is truncated, unreadable or inconsistent."""
    folder = entry_dir(project, lab, profile)
    path = folder / (FAILURE if failure else RECORD)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        notebook = folder / record["notebook"]
        digest = hashlib.sha256(notebook.read_bytes()).hexdigest()
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise Corrupt(f"{project.rel(path)}: {err}") from None
    if not isinstance(record, dict) or digest != record.get("notebook_sha256"):
        raise Corrupt(f"{project.rel(path)}: notebook does not match its record")
    return Stored(record, notebook)


def save(project: Project, record: dict[str, Any], notebook_json: str) -> Path:
    """Store a finished run; a failure never replaces the last good run. Returns the folder."""
    folder = entry_dir(project, record["lab"], record["profile"])
    ok = record["status"] == "ok"
    data = notebook_json.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    name = f"{record['lab']}{'' if ok else '.failure'}.{digest[:16]}.ipynb"
    record = {**record, "notebook": name, "notebook_sha256": digest}
    write_atomic(folder / name, data)  # beside the current run's notebook, which stays valid
    sync_dir(folder)
    write_atomic(folder / (RECORD if ok else FAILURE), json.dumps(_ordered(record), indent=1) + "\n")  # the switch
    sync_dir(folder)
    if ok:
        (folder / FAILURE).unlink(missing_ok=True)
    remove_unreferenced(folder)
    append_history(folder, record)
    return folder


def remove_unreferenced(folder: Path) -> None:
    """Delete the notebooks that neither record names (the ones just replaced, and any left
    by a save that crashed before its switch) and temporary files of interrupted writes.
    Saves never overlap: `studylog run` holds the project lock."""
    keep = set()
    for name in (RECORD, FAILURE):
        try:
            keep.add(json.loads((folder / name).read_text(encoding="utf-8"))["notebook"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # absent or unreadable: it names nothing to keep
    for notebook in folder.glob("*.ipynb"):
        if notebook.name not in keep:
            notebook.unlink(missing_ok=True)
    for leftover in folder.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def _ordered(record: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys sorted, for stable files; metrics keep the order the lab recorded them
    in, which is the lab's own order of importance (the labs index shows the first two)."""
    return dict(sorted(record.items()))


def append_history(folder: Path, record: dict[str, Any]) -> None:
    """Add one line per run: when, where, which commit, what it measured."""
    line = {k: record.get(k) for k in ("lab", "profile", "status", "started", "duration_s", "metrics")}
    line["commit"] = record.get("environment", {}).get("commit")
    line["machine"] = record.get("environment", {}).get("machine")
    if record.get("environment", {}).get("reported"):
        line["reported"] = {name: facts.get("summary") for name, facts in record["environment"]["reported"].items()}
    path = folder / HISTORY
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    write_atomic(path, previous + json.dumps(_ordered(line)) + "\n")


def history(project: Project, lab: str, profile: str = PUBLISHED_PROFILE) -> list[dict[str, Any]]:
    """Every recorded run of `lab`, oldest first; unreadable lines are skipped."""
    path = entry_dir(project, lab, profile) / HISTORY
    if not path.exists():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            runs.append(json.loads(line))
        except ValueError:
            continue
    return runs
