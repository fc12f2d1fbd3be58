"""The run key: everything a lab's result depends on, and why a stored run is stale.

A run's inputs: the lab's source (less the other profiles' values, `lab_digest`), the
profile's parameter values, the source of every
project module it imports, every data file it read and every folder it listed. The first
three are known before running (imports found statically, `imports`); what any of its
processes read, imported or listed is recorded while it runs (`tracking`) and added after.
The environment (interpreter, key packages) is not an input: a result stays a valid record
of the versions it ran with, and a change is reported beside it (`environment_changes`),
not re-run unless asked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studylog.labs.environment import versions
from studylog.labs.imports import file_digest, imported_files
from studylog.labs.lab import Lab, read_notebook
from studylog.labs.store import Corrupt, load
from studylog.labs.tracking import listing_digest
from studylog.project import Project


@dataclass(frozen=True)
class RunKey:
    """A run's inputs as digests, keyed by path relative to the project root. Stored with
    the run as its `inputs`; a run is fresh while `changes` finds nothing."""

    lab: str  # lab_digest of the lab's source
    profile: str
    parameters: dict[str, Any]  # the values the profile sets
    modules: dict[str, str]  # project modules imported: found statically, and recorded
    data: dict[str, str] = field(default_factory=dict)  # files read, as they were read
    listings: dict[str, str] = field(default_factory=dict)  # folders listed: digest of their names

    @classmethod
    def before_run(cls, project: Project, lab: Lab, profile: str) -> RunKey:
        """The inputs known before running."""
        source = project.root / lab.path
        modules = imported_files(source, project.source_roots)
        return cls(lab_digest(source), profile, lab.overrides(profile),
                   {project.rel(p).as_posix(): file_digest(p) for p in sorted(modules)})

    def with_reads(self, reads: dict[str, dict[str, str]]) -> RunKey:
        """This key completed by what the run's processes recorded (`tracking.read_record`)."""
        return RunKey(self.lab, self.profile, self.parameters, _sorted({**self.modules, **reads.get("module", {})}),
                      _sorted(reads.get("data", {})), _sorted(reads.get("listing", {})))

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, inputs: dict[str, Any]) -> RunKey:
        """A stored key; runs stored before listings were recorded have none."""
        return cls(inputs.get("lab", ""), inputs.get("profile", ""), inputs.get("parameters", {}),
                   inputs.get("modules", {}), inputs.get("data", {}), inputs.get("listings", {}))

    def changes(self, project: Project, lab: Lab) -> list[str]:
        """What differs between this (stored) key and the project now, in words."""
        now = RunKey.before_run(project, lab, self.profile)
        reasons = []
        # Runs stored before `lab_digest` hold the whole file's sha256.
        if self.lab not in (now.lab, file_digest(project.root / lab.path)):
            reasons.append(f"{lab.path.as_posix()} changed")
        if self.parameters != now.parameters:
            reasons.append(f"parameters of profile {self.profile!r} changed")
        # Modules recorded only at run time (importlib, namespace packages) are compared too.
        modules = {**_current(project, self.modules, file_digest), **now.modules}
        reasons += _compare("module", self.modules, modules)
        reasons += _compare("data file", self.data, _current(project, self.data, file_digest))
        reasons += _compare("folder", self.listings, _current(project, self.listings, listing_digest))
        return reasons


def lab_digest(path: Path) -> str:
    """sha256 of a lab's source as any one profile runs it: its Jupytext header without the
    `profiles` table (the values of the profile that runs are the key's `parameters`), then
    every line after the header. Retuning the quick profile leaves a published full run
    fresh; every other edit, prose included (it is part of the published notebook), does not."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    header = dict(read_notebook(path).metadata)
    if header.get("studylog"):
        header["studylog"] = {k: v for k, v in header["studylog"].items() if k != "profiles"}
    if lines and lines[0].rstrip() == "# ---":  # the body starts after the header's closing line
        end = next((i for i, line in enumerate(lines[1:], start=1) if line.rstrip() == "# ---"), 0)
        text = "".join(lines[end + 1:])
    canonical = json.dumps(header, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{canonical}\n{text}".encode("utf-8")).hexdigest()


def stale_reasons(project: Project, lab: Lab, profile: str) -> list[str]:
    """Why `lab` must run again under `profile`; empty when its stored run is fresh."""
    try:
        stored = load(project, lab.name, profile)
    except Corrupt as err:
        return [f"stored run is corrupt ({err})"]
    if stored is None:
        return ["never run" if _no_failure(project, lab, profile) else "last run failed"]
    return RunKey.from_record(stored.record.get("inputs", {})).changes(project, lab)


def environment_changes(project: Project, lab: Lab, profile: str) -> list[str]:
    """How this interpreter and its key packages differ from those the stored run used,
    e.g. "ray 2.60.0 → 2.61.0"."""
    try:
        stored = load(project, lab.name, profile)
    except Corrupt:
        return []
    if stored is None:
        return []
    env = stored.record.get("environment", {})
    before = {"python": env.get("python"), **env.get("packages", {})}
    now = versions()
    return [f"{name} {before.get(name) or 'absent'} → {now.get(name) or 'absent'}"
            for name in sorted(before.keys() | now.keys()) if before.get(name) != now.get(name)]


def _no_failure(project: Project, lab: Lab, profile: str) -> bool:
    try:
        return load(project, lab.name, profile, failure=True) is None
    except Corrupt:
        return True


def _sorted(digests: dict[str, str]) -> dict[str, str]:
    return dict(sorted(digests.items()))


def _current(project: Project, recorded: dict[str, str], digest: Callable[[Path], str]) -> dict[str, str]:
    """Today's digests of the recorded inputs that still exist."""
    current = {}
    for name in recorded:
        try:
            current[name] = digest(project.root / name)
        except OSError:  # gone, or no longer a file (or a folder)
            continue
    return current


def _compare(kind: str, before: dict[str, str], now: dict[str, str]) -> list[str]:
    reasons = []
    for name in sorted(before.keys() | now.keys()):
        if name not in now:
            reasons.append(f"no longer imports {name}" if kind == "module" else f"{kind} {name} is gone")
        elif name not in before:
            reasons.append(f"now imports {name}")
        elif before[name] != now[name]:
            reasons.append(f"{kind} {name} changed" + (" (a file was added, removed or renamed)" if kind == "folder" else ""))
    return reasons
