"""Log entries: `logs/YYYY-MM-DD-slug.md`, Jekyll-compatible front matter + Markdown.

Jekyll's own forms are normalised here, once, so every later stage sees one shape: a
date-time offset without a colon (`+0100`, which YAML leaves a string), space-separated
`tags`/`categories` strings, and `published: false` (a draft).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slugify import slugify

from .errors import Problem
from .frontmatter import Document, FrontMatterError, parse, read_utf8

FILE_NAME = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})-(?P<slug>.+)\.md$")
LAB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
# Keys studylog interprets; everything else is kept as the author wrote it.
KNOWN_KEYS = frozenset(
    {"title", "date", "tags", "categories", "math", "labs", "draft", "published", "slug", "layout", "description"}
)
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class LogEntry:
    """One dated entry of the learning log, normalised."""

    path: Path  # relative to the project root
    title: str
    date: dt.datetime  # wall-clock time as written; tz-aware when an offset was given
    slug: str
    body: str
    body_line: int
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    labs: tuple[str, ...] = ()
    math: bool = False
    draft: bool = False
    description: str | None = None
    layout: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept as written
    key_lines: dict[str, int] = field(default_factory=dict, compare=False)

    def line_of(self, key: str) -> int:
        """The line `key` is written on, for problems found after parsing."""
        return self.key_lines.get(key, 1)

    @property
    def url(self) -> str:
        """The entry's URL path, Jekyll's default permalink without categories."""
        return f"{self.date:%Y/%m/%d}/{self.slug}/"


class _Invalid(Exception):
    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message


def parse_log(path: Path, shown_as: Path) -> tuple[LogEntry | None, list[Problem]]:
    """Read one log file; return the entry, or None and every problem found in it."""
    match = FILE_NAME.match(path.name)
    file_date = _file_date(match)
    if file_date is None:
        return None, [Problem(shown_as, 1, "file name must be YYYY-MM-DD-slug.md with a real date")]
    try:
        doc = parse(read_utf8(path))
    except FrontMatterError as err:
        return None, [Problem(shown_as, err.line, err.message)]

    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key, reader in _READERS.items():
        try:
            values[key] = reader(doc)
        except _Invalid as bad:
            problems.append(Problem(shown_as, doc.line_of(bad.key), bad.message))
    date = values.get("date")
    if date is not None and date.date() != file_date:
        problems.append(
            Problem(shown_as, doc.line_of("date"), f"date {date.date()} does not match the file name's date {file_date}")
        )
    if problems:
        return None, problems
    slug = values["slug"] or slugify(match.group("slug"))
    if not slug:
        return None, [Problem(shown_as, 1, "the file name's slug has no letters or digits")]
    entry = LogEntry(
        path=shown_as,
        title=values["title"],
        date=date,
        slug=slug,
        body=doc.body,
        body_line=doc.body_line,
        tags=values["tags"],
        categories=values["categories"],
        labs=values["labs"],
        math=values["math"],
        draft=values["draft"],
        description=values["description"],
        layout=values["layout"],
        extra={k: v for k, v in doc.data.items() if k not in KNOWN_KEYS},
        key_lines=doc.key_lines,
    )
    return entry, []


def _file_date(match: re.Match[str] | None) -> dt.date | None:
    if match is None:
        return None
    try:
        return dt.date.fromisoformat(match.group("date"))
    except ValueError:
        return None


def _title(doc: Document) -> str:
    title = doc.data.get("title")
    if title is None or (isinstance(title, str) and not title.strip()):
        raise _Invalid("title", "title is missing or empty")
    if not isinstance(title, (str, int, float)) or isinstance(title, bool):
        raise _Invalid("title", f"title must be text, not {_kind(title)}")
    return str(title).strip()


def _date(doc: Document) -> dt.datetime:
    value = doc.data.get("date")
    if value is None:
        raise _Invalid("date", "date is missing")
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        parsed = _parse_date_text(value.strip())
        if parsed is not None:
            return parsed
    raise _Invalid("date", f"invalid date {value!r}: use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS +HHMM")


def _parse_date_text(text: str) -> dt.datetime | None:
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            pass
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _word_list(key: str):
    """A reader for a list of words given as a YAML list or a space-separated string."""

    def read(doc: Document) -> tuple[str, ...]:
        value = doc.data.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(dict.fromkeys(value.split()))
        if not isinstance(value, list):
            raise _Invalid(key, f"{key} must be a list or a space-separated string, not {_kind(value)}")
        words: list[str] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)) or not str(item).strip():
                raise _Invalid(key, f"{key} entries must be non-empty text, not {_kind(item)}")
            words.append(str(item).strip())
        return tuple(dict.fromkeys(words))

    return read


def _labs(doc: Document) -> tuple[str, ...]:
    value = doc.data.get("labs")
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        raise _Invalid("labs", f"labs must be a list of lab names, not {_kind(value)}")
    for item in value:
        if not isinstance(item, str) or not LAB_NAME.match(item):
            raise _Invalid("labs", f"labs entry {item!r} is not a lab name (the stem of a file in labs/, not a path)")
    return tuple(dict.fromkeys(value))


def _flag(key: str):
    def read(doc: Document) -> bool:
        value = doc.data.get(key, False)
        if not isinstance(value, bool):
            raise _Invalid(key, f"{key} must be true or false, not {value!r}")
        return value

    return read


def _draft(doc: Document) -> bool:
    published = doc.data.get("published", True)
    if not isinstance(published, bool):
        raise _Invalid("published", f"published must be true or false, not {published!r}")
    return _flag("draft")(doc) or not published


def _optional_text(key: str):
    def read(doc: Document) -> str | None:
        value = doc.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _Invalid(key, f"{key} must be text, not {_kind(value)}")
        return str(value)

    return read


def _slug(doc: Document) -> str | None:
    value = _optional_text("slug")(doc)
    if value is None:
        return None
    slug = slugify(value)
    if not slug:
        raise _Invalid("slug", f"slug {value!r} has no letters or digits")
    return slug


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "empty"}.get(type(value), type(value).__name__)


_READERS = {
    "title": _title,
    "date": _date,
    "tags": _word_list("tags"),
    "categories": _word_list("categories"),
    "labs": _labs,
    "math": _flag("math"),
    "draft": _draft,
    "description": _optional_text("description"),
    "layout": _optional_text("layout"),
    "slug": _slug,
}
