"""`studylog sync`: create or update the Jupyter twins of labs (notebooks/NAME.ipynb).

Jupytext's own `--sync` does the work, with the pairing in jupytext.toml: the side edited
last wins, and outputs already in a notebook are kept. studylog only says, per lab, which
side changed.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from jupytext.cli import jupytext as jupytext_cli

from studylog.labs.imports import file_digest
from studylog.errors import StudylogError
from studylog.project import Project


def sync(project: Project, names: list[str]) -> list[str]:
    """Sync each named lab with its notebook; one line per lab saying what changed."""
    lines = []
    for name in names:
        source = project.labs_dir / f"{name}.py"
        notebook = project.root / "notebooks" / f"{name}.ipynb"
        before = _digests(source, notebook)
        quiet = io.StringIO()
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                jupytext_cli(["--sync", str(source)])
        except (SystemExit, Exception) as err:  # Jupytext reports conflicts by raising
            raise StudylogError(f"{project.rel(source)}: jupytext --sync failed: {err} {quiet.getvalue().strip()}") from None
        after = _digests(source, notebook)
        lines.append(f"{name}: {_what_changed(project, source, notebook, before, after)}")
    return lines


def _digests(*paths: Path) -> tuple[str | None, ...]:
    return tuple(file_digest(p) if p.exists() else None for p in paths)


def _what_changed(project: Project, source: Path, notebook: Path, before: tuple, after: tuple) -> str:
    changes = []
    if before[1] is None:
        changes.append(f"created {project.rel(notebook)}")
    elif before[1] != after[1]:
        changes.append(f"updated {project.rel(notebook)} from {project.rel(source)}")
    if before[0] != after[0]:
        changes.append(f"updated {project.rel(source)} from {project.rel(notebook)}" if before[1] else f"rewrote {project.rel(source)} in Jupytext's canonical form")
    return "; ".join(changes) or "in sync"
