"""The command line: the only module that talks to the terminal."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from . import serve as serving
from .check import check_project
from .errors import ProblemsFound, StudylogError
from .new import new_entry
from .project import Project
from .site import ENGINES, build as build_site


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
    if result.problems:
        raise ProblemsFound(list(result.problems))
    drafts = sum(e.draft for e in result.entries)
    click.echo(f"{len(result.entries)} logs checked ({drafts} drafts): no problems")


@main.command()
@click.argument("title")
@click.option("--date", "date_", type=click.DateTime(["%Y-%m-%d"]), help="Entry date, YYYY-MM-DD (default: today).")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for more.")
@click.option("--lab", "labs", multiple=True, help="A lab this entry cites (a name in labs/); repeat for more.")
@click.pass_context
def new(ctx: click.Context, title: str, date_: dt.datetime | None, tags: tuple[str, ...], labs: tuple[str, ...]) -> None:
    """Start a log entry logs/DATE-slug.md from a skeleton; never overwrite one."""
    project = _project(ctx)
    day = date_.date() if date_ else dt.date.today()
    path = new_entry(project, title, day, tags, labs)
    click.echo(project.rel(path))


@main.command()
@click.option("--engine", type=click.Choice(ENGINES), default="mkdocs", show_default=True, help="Site engine.")
@click.option("--drafts", is_flag=True, help="Include draft entries.")
@click.pass_context
def build(ctx: click.Context, engine: str, drafts: bool) -> None:
    """Check, generate pages and build the site into site/ (strict: broken links fail)."""
    project = _project(ctx)
    done = build_site(project, engine=engine, drafts=drafts)
    click.echo(
        f"built {project.rel(project.site_dir)}/ with {engine}: {done.posts} logs, {done.labs} labs"
        + (f", {done.drafts_left_out} drafts left out" if done.drafts_left_out else "")
    )


@main.command()
@click.option("--engine", type=click.Choice(ENGINES), default="mkdocs", show_default=True, help="Site engine.")
@click.option("--drafts", is_flag=True, help="Include draft entries.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, help="Port to bind.")
@click.pass_context
def serve(ctx: click.Context, engine: str, drafts: bool, host: str, port: int) -> None:
    """Serve the site with live reload; an edited log reaches the open page."""
    serving.serve(_project(ctx), engine=engine, drafts=drafts, host=host, port=port, echo=click.echo)
