"""`studylog init`: a new project that `studylog build` publishes, never overwriting a file."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import yaml

from studylog.errors import StudylogError
from studylog.logs.new import new_entry
from studylog.project import Project
from studylog.site.engine_config import DEFAULT_SITE_URL

FIRST_TITLE = "Starting this log"
FOLDERS = ("logs", "labs", "site_src")

HOME = """# Learning log

Dated notes on what I read and tried, with the labs that put it to work.
The newest entries come first; the archive and the tags list the rest.

--8<-- "calendar.html"
"""

SETTINGS = f"""# The site's own settings. studylog adds what publishing logs and labs needs (blog, tags,
# search, feed, math) and writes the effective config to .studylog-mkdocs.yml; anything
# set here wins over its defaults.
{{site_name}}
# Where the site will be published: the feed and each page's canonical link are made from it.
# Until it is set, studylog uses {DEFAULT_SITE_URL} and `studylog build` warns.
# site_url: https://example.org/
"""

# The same outputs as studylog's own repository ignores (design.md: generated, never tracked).
GITIGNORE = """# What studylog writes; a build or `studylog sync` makes it again. Anchored at the root
# (a bare site/ would also hide a package folder named site/ deeper down).
/site/
/.site.old/
/.studylog/
/.studylog-mkdocs.yml
# Pages studylog generates inside site_src (rewritten every build)
site_src/posts/
site_src/labs/
site_src/tags/
site_src/assets/studylog/
site_src/papers/
site_src/calendar.md
site_src/.studylog/
site_src/.studylog-generated.json
# Jupyter twins of labs/*.py (studylog sync)
/notebooks/
.ipynb_checkpoints/
"""

# `studylog sync` runs Jupytext's --sync, which finds the pairing here.
JUPYTEXT = """# Pair each lab (the source of truth, percent format) with a notebook for Jupyter.
formats = "labs///py:percent,notebooks///ipynb"
"""


def init_project(root: Path, today: dt.date) -> list[Path]:
    """Create a project at `root` (made when missing) whose first entry is dated `today`, and
    return what was created. When any path it would create exists, raise naming each one,
    having created nothing."""
    root = root.resolve()
    if root.exists() and not root.is_dir():
        raise StudylogError(f"{root}: not a folder")
    files = _files(root)
    # site_src/index.md needs no look of its own: site_src/ itself must be new.
    planned = [root / folder for folder in FOLDERS] + [path for path in files if path.parent == root]
    taken = [path for path in planned if path.exists() or path.is_symlink()]
    if taken:
        raise StudylogError(f"{', '.join(map(str, taken))}: already there; studylog init overwrites nothing, "
                            "so it created nothing")
    created: list[Path] = []
    try:
        if not root.exists():
            root.mkdir(parents=True)
            created.append(root)
        for folder in FOLDERS:
            (root / folder).mkdir()
            created.append(root / folder)
        for path, text in files.items():
            with path.open("x", encoding="utf-8") as handle:  # "x": a file made meanwhile stays as it is
                handle.write(text)
            created.append(path)
        created.append(new_entry(Project(root), FIRST_TITLE, today))
    except OSError as err:
        _remove(created)
        raise StudylogError(f"{err.filename or root}: {err.strerror}; studylog init created nothing") from None
    return [path for path in created if path != root]


def _files(root: Path) -> dict[Path, str]:
    site_name = yaml.safe_dump({"site_name": root.name or "Learning log"}, allow_unicode=True).strip()
    return {
        root / "site_src" / "index.md": HOME,
        root / "mkdocs.yml": SETTINGS.format(site_name=site_name),
        root / ".gitignore": GITIGNORE,
        root / "jupytext.toml": JUPYTEXT,
    }


def _remove(created: list[Path]) -> None:
    """Undo a half-done init, newest first; a folder someone filled meanwhile is left."""
    for path in reversed(created):
        with contextlib.suppress(OSError):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
