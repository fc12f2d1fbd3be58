"""The site step: from checked logs (and stored lab results) to a built site.

It reads what earlier stages produced, writes the generated pages and one engine config,
and hands rendering to the engine. It never executes a lab.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from studylog.atomic import recover_dir, replace_dir
from studylog.logs.check import CheckResult, check_project
from studylog.errors import Problem, ProblemsFound, StudylogError
from studylog.labs.key import stale_reasons
from studylog.site.outputs import write_generated
from studylog.memo import Memo
from studylog.site.labpages import LabState
from studylog.labs.lab import Lab
from studylog.logs.entry import LogEntry
from studylog.site.posts import render_pages
from studylog.project import Project
from studylog.labs.store import PUBLISHED_PROFILE, Corrupt, history, load
from studylog.site.engine_config import DEFAULT_SITE_URL, load_user_config, missing_indexes, write_engine_config

ENGINES = ("mkdocs", "zensical")


@dataclass(frozen=True)
class Generated:
    """What one generation pass published."""

    posts: int
    drafts_left_out: int  # drafts, and entries dated in the future
    labs: int
    changed: tuple[str, ...]
    failed_labs: tuple[str, ...] = ()  # labs whose latest published run failed


def checked(project: Project, memo: Memo | None = None) -> CheckResult:
    """Every log and lab of `project`, valid; raise ProblemsFound with every problem otherwise."""
    result = check_project(project, memo)
    if result.problems:
        raise ProblemsFound(list(result.problems))
    return result


def generate(project: Project, drafts: bool = False, result: CheckResult | None = None,
             memo: Memo | None = None, future: bool = False) -> Generated:
    """Write the generated pages from `result` (checked here when not given). `serve` passes
    the memo it keeps, so a regeneration redoes only what changed files feed. Drafts and
    entries dated after now are left out unless `drafts` or `future` asks for them (Jekyll)."""
    result = result or checked(project, memo)
    published = [e for e in result.entries if (drafts or not e.draft) and (future or not is_future(e))]
    labs = [lab_state(project, lab, published) for lab in sorted(result.labs, key=lambda lab: lab.name)]
    pages = render_pages(published, labs, project.root, project.work_dir / "plots", memo, result.bibliography)
    changed = write_generated(project.site_src, pages, memo)
    failed = tuple(s.lab.name for s in labs if s.failure)
    return Generated(len(published), len(result.entries) - len(published), len(labs), tuple(changed), failed)


def is_future(entry: LogEntry, now: dt.datetime | None = None) -> bool:
    """Dated after now: an entry with an offset is compared in absolute time, one without
    as wall-clock time on this machine (Jekyll compares with the site's time likewise)."""
    if entry.date.tzinfo is None:
        return entry.date > (now or dt.datetime.now())
    return entry.date > (now or dt.datetime.now(dt.timezone.utc))


def lab_state(project: Project, lab: Lab, entries: list[LogEntry]) -> LabState:
    """What the store holds for `lab`'s published profile; a corrupt entry counts as none."""
    good = failure = None
    try:
        good = load(project, lab.name, PUBLISHED_PROFILE)
    except Corrupt:
        pass
    try:
        failure = load(project, lab.name, PUBLISHED_PROFILE, failure=True)
    except Corrupt:
        pass
    return LabState(
        lab=lab,
        good=good.record if good else None,
        good_notebook=good.notebook if good else None,
        failure=failure.record if failure else None,
        failure_notebook=failure.notebook if failure else None,
        stale=tuple(stale_reasons(project, lab, PUBLISHED_PROFILE)) if good else (),
        history=tuple(history(project, lab.name)),
        citing=tuple(e for e in entries if lab.name in e.labs),
    )


def stale_labs(project: Project, labs: tuple[Lab, ...]) -> list[Lab]:
    """The labs whose published results must be refreshed before a build."""
    return [lab for lab in labs if stale_reasons(project, lab, PUBLISHED_PROFILE)]


def site_url_warnings(project: Project) -> list[Problem]:
    """A warning when the effective site_url names this machine (127.0.0.0/8, ::1, localhost):
    the feed's links and each page's canonical link would send a reader to their own machine."""
    user = load_user_config(project.user_config)
    url = user.get("site_url", DEFAULT_SITE_URL)
    if not isinstance(url, str) or not is_loopback(url):  # a tagged value (!ENV) only the engine resolves
        return []
    where = project.rel(project.user_config)
    if "site_url" not in user:
        return [Problem(where, 1, f"no site_url, so studylog's default {url} is used, a loopback address: feed and "
                                  "canonical links would point at this machine; set site_url to where the site "
                                  "is published", warning=True)]
    line = _key_line(project.user_config, "site_url")
    return [Problem(where, line, f"site_url {url} is a loopback address: feed and canonical links would point at "
                                 "this machine; set it to where the site is published", warning=True)]


def nav_notes(project: Project) -> list[str]:
    """What studylog adds to the author's nav (the tags, labs and papers indexes it leaves out), said
    at the nav's line: `mkdocs.yml:LINE: note: ...`."""
    user = load_user_config(project.user_config)
    added = [next(iter(entry)) for entry in missing_indexes(project, user.get("nav"))]
    if not added:
        return []
    where = f"{project.rel(project.user_config)}:{_key_line(project.user_config, 'nav')}"
    names = " and ".join(added) if len(added) < 3 else f"{', '.join(added[:-1])} and {added[-1]}"
    return [f"{where}: note: the nav leaves out {names}; studylog adds "
            f"{'it' if len(added) == 1 else 'them'} at its end"]


def is_loopback(url: str) -> bool:
    """`url`'s host is this machine: localhost (RFC 6761, subdomains too), 127.0.0.0/8 or ::1."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1, which Python 3.11 does not call loopback
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _key_line(path: Path, key: str) -> int:
    """The line of top-level `key` in the YAML mapping at `path` (the last one, as YAML keeps)."""
    # Composing builds nodes without constructing them, so tags such as !ENV need no handler.
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    return [name.start_mark.line + 1 for name, _ in root.value if name.value == key][-1]


def engine_command(engine: str, verb: str, config: Path, *options: str) -> list[str]:
    """The command line that runs `engine` (`build` or `serve`) on `config`."""
    if engine not in ENGINES:
        raise StudylogError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    return [sys.executable, "-m", engine, verb, "-f", str(config), *options]


def build(
    project: Project, engine: str = "mkdocs", drafts: bool = False, strict_labs: bool = False,
    result: CheckResult | None = None, future: bool = False,
) -> Generated:
    """Generate pages and build the site into site/, replacing the old one only when done.

    `strict_labs`: fail instead of publishing a lab whose latest run failed. `result`: the
    project as already checked by the caller, so it is not parsed twice."""
    recover_dir(project.site_dir)  # a previous build stopped mid-swap: the old site comes back first
    generated = generate(project, drafts, result, future=future)
    if strict_labs and generated.failed_labs:
        raise StudylogError(f"latest full run failed for: {', '.join(generated.failed_labs)} (--strict)")
    staging = project.work_dir / "site.new"
    shutil.rmtree(staging, ignore_errors=True)
    config = write_engine_config(project, staging, drafts, engine)
    # Strict: a broken internal link fails the build, naming its file.
    options = ["--strict", "--clean"]
    run = subprocess.run(engine_command(engine, "build", config, *options), capture_output=True, text=True)
    if run.returncode != 0 or not (staging / "index.html").exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise StudylogError(f"{engine} build failed: {_engine_complaints(run.stdout + run.stderr)}")
    replace_dir(staging, project.site_dir)
    return generated


def _engine_complaints(output: str) -> str:
    """The engine's warnings and errors (what strict mode failed on), else its last lines."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    flagged = [line.split("-", 1)[-1].strip() for line in lines if line.startswith(("WARNING", "ERROR"))]
    return "; ".join(flagged or lines[-5:])
