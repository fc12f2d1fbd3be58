"""`studylog new`: start today's log entry from a skeleton, never overwriting one."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import yaml
from slugify import slugify

from studylog.errors import StudylogError
from studylog.logs.entry import LAB_NAME, SCHEMA
from studylog.project import Project

SKELETON = """
## Summary

What I read or did today, in two or three sentences.

<!-- more -->

## Notes

## Remarks
"""


def new_entry(
    project: Project, title: str, date: dt.date, tags: tuple[str, ...] = (), labs: tuple[str, ...] = (),
    draft: bool = False,
) -> Path:
    """Write `logs/DATE-slug.md` and return its path; refuse if it exists. `draft` writes
    `draft: true`, which keeps the entry out of a build without `--drafts`."""
    title = " ".join(title.split())  # one line: YAML folds line breaks such as U+0085
    slug = slugify(title)
    if not slug:
        raise StudylogError(f"title {title!r} gives an empty slug: use some letters or digits")
    known = project.lab_names()
    for lab in labs:
        if not LAB_NAME.match(lab) or lab not in known:
            raise StudylogError(f"--lab {lab!r} names no lab (no labs/{lab}.py)")
    given: dict[str, object] = {"title": title, "date": date, "tags": list(tags), "labs": list(labs), "draft": draft}
    front = {key.name: given[key.name] for key in SCHEMA if given.get(key.name)}  # in the schema's order
    others = ", ".join(key.name for key in SCHEMA if key.name not in front)
    text = ("---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
            + f"# other keys: {others} (README, Writing)\n---\n" + SKELETON)
    path = project.logs_dir / f"{date.isoformat()}-{slug}.md"
    _create_exclusively(path, text)
    return path


def _create_exclusively(path: Path, text: str) -> None:
    """Write `text` to a new file at `path`; an existing file stays byte-for-byte as it was."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".new-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # link() fails when the target exists, so creation is all-or-nothing and never replaces.
        os.link(tmp, path)
    except FileExistsError:
        raise StudylogError(f"{path}: already exists; not overwritten") from None
    finally:
        os.unlink(tmp)
