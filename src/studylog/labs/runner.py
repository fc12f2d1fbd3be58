"""`studylog run`: decide which labs are stale, execute them (up to N at once), store results."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import nbformat

from studylog.labs.environment import describe
from studylog.labs.execute import DEFAULT_CELL_TIMEOUT_S, execute
from studylog.labs.key import RunKey, environment_changes, stale_reasons
from studylog.labs.lab import Lab
from studylog.project import Project
from studylog.labs.store import Corrupt, load, save

DEFAULT_TOLERANCE = 0.10  # a metric moving more than this fraction is flagged


@dataclass(frozen=True)
class Outcome:
    """What `run` did with one lab."""

    lab: str
    status: str  # ok, cached, failed, timeout, died
    duration_s: float = 0.0
    reasons: tuple[str, ...] = ()  # why it ran
    moved: tuple[dict[str, Any], ...] = ()  # metrics beyond tolerance: name, before, after
    error: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[str, str], None]  # (lab, event): "start", "cell N", "done"


def run_labs(
    project: Project,
    labs: list[Lab],
    profile: str = "quick",
    force: bool = False,
    jobs: int = 1,
    cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: Progress | None = None,
    env_changed: bool = False,
) -> list[Outcome]:
    """Run every stale lab (every lab with `force`; with `env_changed`, also those whose stored
    run used other versions); one lab's failure does not stop the others."""
    lock = threading.Lock()  # history files and progress lines are shared
    environment: dict[str, Any] = {}

    def env() -> dict[str, Any]:
        with lock:  # described once, and only when a lab actually runs
            if not environment:
                environment.update(describe(project.root))
        return environment

    def one(lab: Lab) -> Outcome:
        reasons = ["forced"] if force else stale_reasons(project, lab, profile)
        if env_changed and not reasons:
            changed = environment_changes(project, lab, profile)
            reasons = [f"environment changed: {', '.join(changed)}"] if changed else []
        if not reasons:
            return Outcome(lab.name, "cached")
        if progress:
            progress(lab.name, "start")
        outcome = _run_one(project, lab, profile, tuple(reasons), env(), cell_timeout_s, tolerance, lock, progress)
        if progress:
            progress(lab.name, "done")
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        # The longest first, so that N at once end close together (a long lab started last
        # runs alone at the end); outcomes are returned in the order given.
        order = range(len(labs))
        if jobs > 1:
            order = sorted(order, key=lambda i: -_expected_duration(project, labs[i], profile))
        futures = {i: pool.submit(one, labs[i]) for i in order}
        return [futures[i].result() for i in range(len(labs))]


def _expected_duration(project: Project, lab: Lab, profile: str) -> float:
    """How long `lab`'s last stored run of `profile` took, else its published full run (a
    fresh clone has only those), else 0."""
    for candidate in dict.fromkeys((profile, "full")):
        try:
            stored = load(project, lab.name, candidate)
        except Corrupt:
            stored = None
        if stored is not None:
            return float(stored.record.get("duration_s", 0.0))
    return 0.0


def _run_one(project, lab, profile, reasons, environment, cell_timeout_s, tolerance, lock, progress) -> Outcome:
    key = RunKey.before_run(project, lab, profile)
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    on_cell = (lambda index: progress(lab.name, f"cell {index}")) if progress else None
    result = execute(project, lab, profile, cell_timeout_s, on_cell=on_cell)
    key = key.with_reads(result.reads)
    record = {
        "lab": lab.name,
        "profile": profile,
        "title": lab.title,
        "summary": lab.summary,
        "status": result.status,
        "started": started,
        "duration_s": round(result.duration_s, 3),
        "inputs": key.as_record(),
        "metrics": result.metrics,
        # where the lab says it ran (a cluster, say) beside what studylog saw of this machine
        "environment": {**environment, "reported": result.reported} if result.reported else environment,
        "error": result.error,
    }
    moved = _moved(project, lab.name, profile, result.metrics, tolerance) if result.status == "ok" else ()
    record["moved"] = list(moved)
    with lock:
        save(project, record, nbformat.writes(result.notebook))
    return Outcome(lab.name, result.status, result.duration_s, reasons, moved, result.error, result.metrics)


def _moved(project: Project, lab: str, profile: str, metrics: dict[str, Any], tolerance: float) -> tuple[dict[str, Any], ...]:
    try:
        previous = load(project, lab, profile)
    except Corrupt:
        return ()
    if previous is None:
        return ()
    moved = []
    for name, now in metrics.items():
        before = previous.record.get("metrics", {}).get(name)
        if before is None:
            continue
        old, new = before["value"], now["value"]
        change = abs(new - old) / abs(old) if old else (0.0 if new == old else float("inf"))
        if change > tolerance:
            moved.append({"name": name, "before": old, "after": new, "unit": now["unit"]})
    return tuple(moved)
