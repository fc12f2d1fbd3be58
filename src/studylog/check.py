"""`studylog check`: every problem in every log, in one pass."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Problem
from .logs import LogEntry, parse_log
from .project import Project


@dataclass(frozen=True)
class CheckResult:
    entries: tuple[LogEntry, ...]  # every valid entry, drafts included, oldest first
    problems: tuple[Problem, ...]


def check_project(project: Project) -> CheckResult:
    """Parse and validate every log of `project`, collecting all problems."""
    entries: list[LogEntry] = []
    problems: list[Problem] = []
    for path in sorted(project.logs_dir.iterdir()):
        shown = project.rel(path)
        if path.is_symlink() and not path.resolve().is_relative_to(project.root):
            problems.append(Problem(shown, 1, "symlink points outside the project; copy the file in instead"))
            continue
        if path.is_dir() or path.name.startswith("."):
            continue
        entry, found = parse_log(path, shown)
        problems.extend(found)
        if entry is not None:
            entries.append(entry)
    problems.extend(_unknown_labs(entries, project.lab_names()))
    problems.extend(_url_collisions(entries))
    entries.sort(key=lambda e: (e.date.replace(tzinfo=None), e.path.name))
    return CheckResult(tuple(entries), tuple(sorted(problems)))


def _unknown_labs(entries: list[LogEntry], labs: set[str]) -> list[Problem]:
    return [
        Problem(entry.path, entry.line_of("labs"), f"labs entry {name!r} names no lab (no labs/{name}.py)")
        for entry in entries
        for name in entry.labs
        if name not in labs
    ]



def _url_collisions(entries: list[LogEntry]) -> list[Problem]:
    first: dict[str, LogEntry] = {}
    problems = []
    for entry in sorted(entries, key=lambda e: e.path.name):
        other = first.setdefault(entry.url, entry)
        if other is not entry:
            problems.append(
                Problem(entry.path, 1, f"publishes to the same URL /{entry.url} as {other.path}; change its slug")
            )
    return problems
