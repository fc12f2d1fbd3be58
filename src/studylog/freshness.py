"""Whether a stored run is still valid, and if not, why.

The inputs of a run: the lab's source, the profile's parameter values, the source of every
project module the lab imports (transitively), and every data file the lab read while it
ran (recorded then). The first three are known before running; data files only after.
"""

from __future__ import annotations

from typing import Any

from .deps import file_digest, imported_files
from .labs import Lab
from .project import Project
from .store import Corrupt, load


def static_inputs(project: Project, lab: Lab, profile: str) -> dict[str, Any]:
    """The inputs known before a run."""
    source = project.root / lab.path
    modules = imported_files(source, project.source_roots)
    return {
        "lab": file_digest(source),
        "profile": profile,
        "parameters": lab.overrides(profile),
        "modules": {project.rel(p).as_posix(): file_digest(p) for p in sorted(modules)},
    }


def stale_reasons(project: Project, lab: Lab, profile: str) -> list[str]:
    """Why `lab` must run again under `profile`; empty when its stored run is fresh."""
    try:
        stored = load(project, lab.name, profile)
    except Corrupt as err:
        return [f"stored run is corrupt ({err})"]
    if stored is None:
        return ["never run" if _no_failure(project, lab, profile) else "last run failed"]
    before = stored.record.get("inputs", {})
    now = static_inputs(project, lab, profile)
    reasons = []
    if before.get("lab") != now["lab"]:
        reasons.append(f"{lab.path.as_posix()} changed")
    if before.get("parameters") != now["parameters"]:
        reasons.append(f"parameters of profile {profile!r} changed")
    reasons += _changed_files("module", before.get("modules", {}), now["modules"])
    reasons += _changed_files("data file", before.get("data", {}), _current_digests(project, before.get("data", {})))
    return reasons


def _no_failure(project: Project, lab: Lab, profile: str) -> bool:
    try:
        return load(project, lab.name, profile, failure=True) is None
    except Corrupt:
        return True


def _current_digests(project: Project, recorded: dict[str, str]) -> dict[str, str]:
    current = {}
    for name in recorded:
        path = project.root / name
        if path.is_file():
            current[name] = file_digest(path)
    return current


def _changed_files(kind: str, before: dict[str, str], now: dict[str, str]) -> list[str]:
    reasons = []
    for name in sorted(before.keys() | now.keys()):
        if name not in now:
            reasons.append(f"{kind} {name} is gone" if kind == "data file" else f"no longer imports {name}")
        elif name not in before:
            reasons.append(f"now imports {name}")
        elif before[name] != now[name]:
            reasons.append(f"{kind} {name} changed")
    return reasons
