"""`studylog check`: every problem in every log and lab, in one pass."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from studylog.errors import Problem
from studylog.labs.lab import Lab, read_lab
from studylog.logs.entry import LogEntry, parse_log
from studylog.memo import Memo
from studylog.papers.bibliography import Bibliography, read_bibliography
from studylog.papers.citations import find_citations
from studylog.project import Project


@dataclass(frozen=True)
class CheckResult:
    entries: tuple[LogEntry, ...]  # every valid entry, drafts included, oldest first
    problems: tuple[Problem, ...]  # errors: nothing is published while one stands
    labs: tuple[Lab, ...] = ()  # every valid lab, by name
    warnings: tuple[Problem, ...] = ()  # reported, but they do not stop publishing
    bibliography: Bibliography | None = None  # references.bib, when the project has one


def check_project(project: Project, memo: Memo | None = None) -> CheckResult:
    """Parse and validate every log and lab of `project`, collecting all problems
    (reusing a memo's results for files unchanged since it saw them)."""
    memo = memo or Memo()
    entries: list[LogEntry] = []
    labs: list[Lab] = []
    problems: list[Problem] = []
    for path in _inputs(project, project.logs_dir, "*", problems):
        entry, found = memo.per_file("log", path, lambda: parse_log(path, project.rel(path)))
        problems.extend(found)
        if entry is not None:
            entries.append(entry)
    for path in _inputs(project, project.labs_dir, "*.py", problems):
        lab, found = memo.per_file("lab", path, lambda: read_lab(path, project.rel(path)))
        problems.extend(found)
        if lab is not None:
            labs.append(lab)
    problems.extend(_unknown_labs(entries, project.lab_names()))
    problems.extend(_url_collisions(entries))
    bibliography = None
    if project.bibliography_file.is_file():
        path = project.bibliography_file
        bibliography, found = memo.per_file("bib", path, lambda: read_bibliography(path, project.rel(path)))
        problems.extend(found)
        if bibliography:
            problems.extend(_unknown_citations(entries, labs, bibliography))
    entries.sort(key=lambda e: (e.date.replace(tzinfo=None), e.path.name))
    errors = sorted(p for p in problems if not p.warning)
    return CheckResult(tuple(entries), tuple(errors), tuple(labs), tuple(sorted(p for p in problems if p.warning)),
                       bibliography)


def _inputs(project: Project, folder: Path, pattern: str, problems: list[Problem]) -> list[Path]:
    """The files of `folder` to read; a symlink leading outside the project is a problem."""
    if not folder.is_dir():
        return []
    paths = []
    for path in sorted(folder.glob(pattern)):
        if path.is_symlink() and not path.resolve().is_relative_to(project.root):
            problems.append(Problem(project.rel(path), 1, "symlink points outside the project; copy the file in instead"))
        elif path.is_file() and not _ignored(path.name):
            paths.append(path)
    return paths


def _ignored(name: str) -> bool:
    """Hidden files, Jekyll's `_` files, and editors' backups (`x.md~`, Emacs' `#x.md#`, Vim's
    `.x.md.swp`, hidden already): never an entry or a lab, never a problem."""
    return name.startswith((".", "_")) or name.endswith("~") or (name.startswith("#") and name.endswith("#"))


def _unknown_labs(entries: list[LogEntry], labs: set[str]) -> list[Problem]:
    return [
        Problem(entry.path, entry.line_of("labs"), f"labs entry {name!r} names no lab (no labs/{name}.py)")
        for entry in entries
        for name in entry.labs
        if name not in labs
    ]



def _unknown_citations(entries: list[LogEntry], labs: list[Lab], bibliography: Bibliography) -> list[Problem]:
    """A citation of a key references.bib does not hold, at its line, with the closest key."""
    cited = [(entry.path, entry.body_line + citation.line - 1, cite.key)
             for entry in entries for citation in find_citations(entry.body) for cite in citation.cites]
    cited += [(lab.path, line, key) for lab in labs for key, line in lab.citations]
    keys = bibliography.keys()
    problems = []
    for path, line, key in cited:
        if bibliography.get(key) is None:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; add it to {bibliography.path}"
            problems.append(Problem(path, line, f"unknown citation key {key!r}{hint}"))
    return problems


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
