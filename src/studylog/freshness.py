"""Whether a stored run is still valid, and if not, why.

The inputs of a run: the lab's source, the profile's parameter values, the source of every
project module it imports, every data file it read and every folder it listed. The first
three are known before running (imports found statically); what any of its processes read,
imported or listed is recorded while it runs (`tracking`) and added after. The environment
(interpreter, key packages) is not an input: a result stays a valid record of the versions it
ran with, and a change is reported beside it (`environment_changes`), not re-run unless asked.
"""

from __future__ import annotations

from typing import Any

from .deps import file_digest, imported_files
from .environment import versions
from .labs import Lab
from .project import Project
from .store import Corrupt, load
from .tracking import listing_digest


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


def with_recorded_reads(inputs: dict[str, Any], reads: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The run's inputs: those known before it, and what its processes recorded reading."""
    modules = {**inputs["modules"], **reads.get("module", {})}
    return {**inputs, "modules": dict(sorted(modules.items())), "data": dict(sorted(reads.get("data", {}).items())),
            "listings": dict(sorted(reads.get("listing", {}).items()))}


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
    recorded_modules = before.get("modules", {})
    modules = {**_current_digests(project, recorded_modules, file_digest), **now["modules"]}
    reasons += _changed_files("module", recorded_modules, modules)
    reasons += _changed_files("data file", before.get("data", {}), _current_digests(project, before.get("data", {}), file_digest))
    listings = before.get("listings", {})
    reasons += _changed_files("folder", listings, _current_digests(project, listings, listing_digest))
    return reasons


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


def _current_digests(project: Project, recorded: dict[str, str], digest) -> dict[str, str]:
    """Today's digests of the recorded inputs that still exist."""
    current = {}
    for name in recorded:
        try:
            current[name] = digest(project.root / name)
        except OSError:  # gone, or no longer a file (or a folder)
            continue
    return current


def _changed_files(kind: str, before: dict[str, str], now: dict[str, str]) -> list[str]:
    reasons = []
    for name in sorted(before.keys() | now.keys()):
        if name not in now:
            reasons.append(f"no longer imports {name}" if kind == "module" else f"{kind} {name} is gone")
        elif name not in before:
            reasons.append(f"now imports {name}")
        elif before[name] != now[name]:
            reasons.append(f"{kind} {name} changed" + (" (a file was added, removed or renamed)" if kind == "folder" else ""))
    return reasons
