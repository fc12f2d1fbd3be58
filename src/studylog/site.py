"""The site step: from checked logs (and stored lab results) to a built site.

It reads what earlier stages produced, writes the generated pages and one engine config,
and hands rendering to the engine. It never executes a lab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .check import check_project
from .errors import ProblemsFound, StudylogError
from .generated import write_generated
from .pages import render_pages
from .project import Project
from .siteconfig import write_engine_config

ENGINES = ("mkdocs", "zensical")


@dataclass(frozen=True)
class Generated:
    """What one generation pass published."""

    posts: int
    drafts_left_out: int
    labs: int
    changed: tuple[str, ...]


def generate(project: Project, drafts: bool = False) -> Generated:
    """Check everything, then write the generated pages; raise ProblemsFound first if any."""
    result = check_project(project)
    if result.problems:
        raise ProblemsFound(list(result.problems))
    published = [e for e in result.entries if drafts or not e.draft]
    labs = {name: project.labs_dir / f"{name}.py" for name in sorted(project.lab_names())}
    changed = write_generated(project.site_src, render_pages(published, labs))
    return Generated(len(published), len(result.entries) - len(published), len(labs), tuple(changed))


def engine_command(engine: str, verb: str, config: Path, *options: str) -> list[str]:
    """The command line that runs `engine` (`build` or `serve`) on `config`."""
    if engine not in ENGINES:
        raise StudylogError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    return [sys.executable, "-m", engine, verb, "-f", str(config), *options]


def build(project: Project, engine: str = "mkdocs", drafts: bool = False) -> Generated:
    """Generate pages and build the site into site/, replacing the old one only when done."""
    generated = generate(project, drafts)
    staging = project.work_dir / "site.new"
    shutil.rmtree(staging, ignore_errors=True)
    config = write_engine_config(project, staging, drafts, engine)
    # Strict: a broken internal link fails the build, naming its file.
    options = ["--strict", "--clean"]
    run = subprocess.run(engine_command(engine, "build", config, *options), capture_output=True, text=True)
    if run.returncode != 0 or not (staging / "index.html").exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise StudylogError(f"{engine} build failed: {_engine_complaints(run.stdout + run.stderr)}")
    _replace_dir(staging, project.site_dir, project.work_dir / "site.old")
    return generated


def _engine_complaints(output: str) -> str:
    """The engine's warnings and errors (what strict mode failed on), else its last lines."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    flagged = [line.split("-", 1)[-1].strip() for line in lines if line.startswith(("WARNING", "ERROR"))]
    return "; ".join(flagged or lines[-5:])


def _replace_dir(new: Path, target: Path, old: Path) -> None:
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
