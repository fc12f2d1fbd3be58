"""The command line: the only module that talks to the terminal."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click

from studylog import __version__
from studylog.init import init_project
from studylog.site import serve as serving
from studylog.logs.check import check_project
from studylog.errors import ProblemsFound, StudylogError
from studylog.lock import SITE, STORE, project_lock
from studylog.logs.new import new_entry
from studylog.project import Project
from studylog.site.build import ENGINES, build as build_site, checked, nav_notes, site_url_warnings, stale_labs
from studylog import report
from studylog.labs.execute import DEFAULT_CELL_TIMEOUT_S
from studylog.labs.key import environment_changes, stale_reasons
from studylog.labs.runner import run_labs
from studylog.labs.store import PUBLISHED_PROFILE, Corrupt, load
from studylog.labs.sync import sync

DEFAULT_PROFILE = "quick"  # run and status alike: the fast one; build runs full


class _Group(click.Group):
    """Turns a user error into its message on stderr and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ProblemsFound as err:
            for problem in err.problems:
                click.echo(str(problem), err=True)
            click.echo(f"error: {err}; nothing published", err=True)
            sys.exit(1)
        except StudylogError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="studylog")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".", help="Project root (default: here).")
@click.pass_context
def main(ctx: click.Context, root: Path) -> None:
    """studylog: a learning log and executable labs, published as a static site."""
    ctx.obj = root


def _project(ctx: click.Context) -> Project:
    return Project.at(ctx.obj)


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate every log entry; print each problem as path:line: message."""
    result = check_project(_project(ctx))
    _warn(result.warnings)
    if result.problems:
        raise ProblemsFound(list(result.problems))
    drafts = sum(e.draft for e in result.entries)
    warned = f", {len(result.warnings)} warning(s)" if result.warnings else ""
    papers = f", {len(result.bibliography.papers)} papers" if result.bibliography else ""
    click.echo(f"{len(result.entries)} logs checked ({drafts} drafts){papers}: no problems{warned}")


def _warn(warnings) -> None:
    for warning in warnings:
        click.echo(str(warning), err=True)


@main.command()
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def init(ctx: click.Context, path: Path | None) -> None:
    """Create a project in PATH (default: --root): logs/ with a first entry, labs/, site_src/,
    mkdocs.yml, .gitignore, jupytext.toml; refuse, creating nothing, if any of them exists."""
    root = path or ctx.obj
    for created in init_project(root, dt.date.today()):
        click.echo(created.relative_to(root.resolve()).as_posix() + ("/" if created.is_dir() else ""))
    where = "" if root.resolve() == Path.cwd() else f" --root {shlex.quote(str(root))}"
    click.echo(f"next: studylog{where} build, then open site/index.html; studylog{where} new TITLE for each entry")


@main.command()
@click.argument("title")
@click.option("--date", "date_", type=click.DateTime(["%Y-%m-%d"]), help="Entry date, YYYY-MM-DD (default: today).")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for more.")
@click.option("--lab", "labs", multiple=True, help="A lab this entry cites (a name in labs/); repeat for more.")
@click.option("--draft", is_flag=True, help="Mark it draft: true (left out of builds without --drafts).")
@click.option("--edit", is_flag=True, help="Then open it in $VISUAL or $EDITOR.")
@click.pass_context
def new(ctx: click.Context, title: str, date_: dt.datetime | None, tags: tuple[str, ...], labs: tuple[str, ...],
        draft: bool, edit: bool) -> None:
    """Start a log entry logs/DATE-slug.md from a skeleton; never overwrite one."""
    project = _project(ctx)
    day = date_.date() if date_ else dt.date.today()
    path = new_entry(project, title, day, tags, labs, draft)
    click.echo(project.rel(path))
    if edit:
        _edit(path, project.rel(path))


def _edit(path: Path, shown: Path) -> None:
    """Open `path` in $VISUAL, else $EDITOR (the order Unix tools follow), split as a shell
    would so that `code -w` works. The entry is kept whatever the editor does."""
    name = next((var for var in ("VISUAL", "EDITOR") if os.environ.get(var, "").strip()), None)
    if name is None:
        raise StudylogError(f"{shown}: created, not opened: set $VISUAL or $EDITOR (for example EDITOR=nano)")
    command = os.environ[name]
    try:
        status = subprocess.run([*shlex.split(command), str(path)]).returncode
    except ValueError as err:  # shlex: an unclosed quote
        raise StudylogError(f"{shown}: created, not opened: ${name} ({command!r}) does not parse: {err}") from None
    except OSError as err:
        raise StudylogError(f"{shown}: created, not opened: ${name} ({command!r}) did not start: {err.strerror}") from None
    if status != 0:
        raise StudylogError(f"{shown}: created and kept, but ${name} ({command!r}) exited with status {status}")


@main.command()
@click.option("--engine", type=click.Choice(ENGINES), default="mkdocs", show_default=True, help="Site engine.")
@click.option("--drafts", is_flag=True, help="Include draft entries.")
@click.option("--future", is_flag=True, help="Include entries dated after now.")
@click.option("--no-execute", is_flag=True, help="Publish stored lab results as they are, marking stale ones.")
@click.option("--strict", "strict_labs", is_flag=True, help="Fail when a lab's latest full run failed.")
@click.pass_context
def build(ctx: click.Context, engine: str, drafts: bool, future: bool, no_execute: bool, strict_labs: bool) -> None:
    """Run stale labs (full profile), then build the site into site/ (broken links fail)."""
    project = _project(ctx)
    with project_lock(project, "build", STORE), project_lock(project, "build", SITE):
        _build(project, engine, drafts, no_execute, strict_labs, future)


def _build(project: Project, engine: str, drafts: bool, no_execute: bool, strict_labs: bool, future: bool = False) -> None:
    result = checked(project)  # logs too: a typo should stop the build before labs run for minutes
    _warn(result.warnings)
    _warn(site_url_warnings(project))
    _warn(nav_notes(project))
    if not no_execute:
        stale = stale_labs(project, result.labs)
        if stale:
            click.echo(f"executing {len(stale)} stale lab(s) first: {', '.join(lab.name for lab in stale)}")
            with report.live_progress() as progress:
                outcomes = run_labs(project, stale, PUBLISHED_PROFILE, progress=progress)
            report.print_outcomes(outcomes)
    site = f"{project.rel(project.site_dir)}/"
    start = time.monotonic()
    with report.elapsed_status(f"building {site} with {engine}"):
        done = build_site(project, engine=engine, drafts=drafts, strict_labs=strict_labs, result=result, future=future)
    click.echo(
        f"built {site} with {engine} in {time.monotonic() - start:.1f} s: {done.posts} logs, {done.labs} labs"
        + (f", {done.drafts_left_out} drafts or future entries left out" if done.drafts_left_out else "")
    )


@main.command()
@click.option("--engine", type=click.Choice(ENGINES), default="mkdocs", show_default=True, help="Site engine.")
@click.option("--drafts", is_flag=True, help="Include draft entries.")
@click.option("--future", is_flag=True, help="Include entries dated after now.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, help="Port to bind.")
@click.pass_context
def serve(ctx: click.Context, engine: str, drafts: bool, future: bool, host: str, port: int) -> None:
    """Serve the site with live reload; an edited log reaches the open page."""
    project = _project(ctx)
    with project_lock(project, "serve", SITE):
        serving.serve(project, engine=engine, drafts=drafts, host=host, port=port, echo=click.echo, future=future)


def _labs(project: Project, names: tuple[str, ...], profile: str | None = None):
    """The valid labs named (all when none are), or a clear error. With `profile`, only labs
    that declare it: a named lab that does not is an error (it would run its defaults under
    that name), and when none is named, the labs that do."""
    result = check_project(project)
    lab_problems = [p for p in result.problems if p.path.parts[0] == "labs"]
    if lab_problems:
        raise ProblemsFound(lab_problems)
    labs = {lab.name: lab for lab in result.labs}
    unknown = [n for n in names if n not in labs]
    if unknown:
        raise StudylogError(f"no lab named {', '.join(unknown)} (labs: {', '.join(sorted(labs)) or 'none'})")
    chosen = [labs[n] for n in names] if names else sorted(labs.values(), key=lambda lab: lab.name)
    if profile is None:
        return chosen
    lacking = [lab for lab in chosen if profile not in lab.profiles]
    if names and lacking:
        raise StudylogError("; ".join(f"{lab.path.as_posix()}: no profile {profile!r} (it declares "
                                      f"{', '.join(map(str, lab.profiles))})" for lab in lacking))
    chosen = [lab for lab in chosen if profile in lab.profiles]
    if not chosen and labs:
        raise StudylogError(f"no lab declares a profile {profile!r}")
    return chosen


@main.command()
@click.argument("labs", nargs=-1)
@click.option("--profile", default=DEFAULT_PROFILE, show_default=True, help="Parameter profile: quick (tests, CI), full (published), or another the labs declare.")
@click.option("--force", is_flag=True, help="Run even labs whose stored results are fresh.")
@click.option("--env-changed", is_flag=True, help="Also run labs whose stored run used other package versions.")
@click.option("-j", "--jobs", default=1, show_default=True, help="Labs to run at once.")
@click.option("--timeout", "cell_timeout", default=DEFAULT_CELL_TIMEOUT_S, show_default=True, help="Seconds a cell may run.")
@click.pass_context
def run(ctx: click.Context, labs: tuple[str, ...], profile: str, force: bool, env_changed: bool, jobs: int,
        cell_timeout: int) -> None:
    """Execute labs whose stored results are stale (all named labs with --force)."""
    project = _project(ctx)
    chosen = _labs(project, labs, profile)
    with project_lock(project, "run"), report.live_progress() as progress:
        outcomes = run_labs(project, chosen, profile, force, jobs, cell_timeout, progress=progress, env_changed=env_changed)
    report.print_outcomes(outcomes)
    if any(o.status not in ("ok", "cached") for o in outcomes):
        sys.exit(1)


@main.command()
@click.argument("labs", nargs=-1)
@click.option("--profile", default=DEFAULT_PROFILE, show_default=True, help="Profile whose stored runs to check.")
@click.pass_context
def status(ctx: click.Context, labs: tuple[str, ...], profile: str) -> None:
    """List each lab as fresh or stale, and why; and what changed in the environment since."""
    project = _project(ctx)
    click.echo(f"profile {profile}" + (f" (build publishes {PUBLISHED_PROFILE}: --profile {PUBLISHED_PROFILE})"
                                       if profile != PUBLISHED_PROFILE else ""))
    for lab in _labs(project, labs, profile):
        reasons = stale_reasons(project, lab, profile)
        changed = environment_changes(project, lab, profile)
        env = f"; environment changed: {', '.join(changed)} (studylog run --env-changed)" if changed else ""
        click.echo(f"{lab.name}: " + (f"stale ({'; '.join(reasons)})" if reasons else "fresh") + env)


@main.command()
@click.argument("lab")
@click.option("--profile", default=PUBLISHED_PROFILE, show_default=True, help="Profile whose latest run to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {lab, profile, metrics: {name: {value, unit}}}.")
@click.pass_context
def results(ctx: click.Context, lab: str, profile: str, as_json: bool) -> None:
    """Print the latest metrics of a lab."""
    project = _project(ctx)
    (chosen,) = _labs(project, (lab,))
    try:
        stored = load(project, chosen.name, profile)
    except Corrupt as err:
        raise StudylogError(f"stored run is corrupt: {err}; run the lab again") from None
    if stored is None:
        raise StudylogError(f"{lab} has no stored {profile} run; run: studylog run {lab} --profile {profile}")
    report.print_results(stored.record, as_json)


@main.command("sync")
@click.argument("labs", nargs=-1)
@click.pass_context
def sync_command(ctx: click.Context, labs: tuple[str, ...]) -> None:
    """Create or update notebooks/NAME.ipynb for each lab (Jupytext pairing), keeping outputs."""
    project = _project(ctx)
    for line in sync(project, [lab.name for lab in _labs(project, labs)]):
        click.echo(line)
