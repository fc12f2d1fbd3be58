"""Log entries: `logs/YYYY-MM-DD-slug.md` (or `.markdown`), Jekyll-compatible front matter.

One declarative table, `SCHEMA`, holds every key studylog reads: how it is read, its
default, and what it means. It drives validation here, the README's table (a test compares
them), the keys `studylog new` writes, and the suggestions for a misspelt key.

Jekyll's own forms are normalised here, once, so every later stage sees one shape: a title
and date taken from the file name when absent, a date-time offset without a colon (`+0100`,
which YAML leaves a string), space-separated `tags`/`categories` strings, `category`, and
`published: false` (a draft).
"""

from __future__ import annotations

import datetime as dt
import re
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slugify import slugify

from studylog.errors import Problem
from studylog.logs.frontmatter import Document, FrontMatterError, parse, read_utf8

FILE_NAME = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})-(?P<slug>.+)\.(md|markdown)$")
LAB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class LogEntry:
    """One dated entry of the learning log, normalised."""

    path: Path  # relative to the project root
    title: str
    date: dt.datetime  # wall-clock time as written; tz-aware when an offset was given
    slug: str
    body: str
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    labs: tuple[str, ...] = ()
    math: bool = False
    draft: bool = False
    description: str | None = None
    layout: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept as written
    key_lines: dict[str, int] = field(default_factory=dict, compare=False)
    body_line: int = field(default=1, compare=False)  # the file's line the body starts on

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


@dataclass(frozen=True)
class FileName:
    """What the file name says: Jekyll's defaults for `date` and `title`."""

    date: dt.date
    slug: str


def parse_log(path: Path, shown_as: Path) -> tuple[LogEntry | None, list[Problem]]:
    """Read one log file; return the entry (None when it has errors) and every problem
    found in it, warnings included (`Problem.warning`)."""
    match = FILE_NAME.match(path.name)
    file_date = _file_date(match)
    if file_date is None:
        return None, [Problem(shown_as, 1, "file name must be YYYY-MM-DD-slug.md (or .markdown) with a real date")]
    name = FileName(file_date, match.group("slug"))
    try:
        doc = parse(read_utf8(path))
    except FrontMatterError as err:
        return None, [Problem(shown_as, err.line, err.message)]

    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key in SCHEMA:
        try:
            values[key.name] = key.read(doc, name)
        except _Invalid as bad:
            problems.append(Problem(shown_as, doc.line_of(bad.key), bad.message))
    date = values.get("date")
    if date is not None and date.date() != file_date:
        problems.append(
            Problem(shown_as, doc.line_of("date"), f"date {date.date()} does not match the file name's date {file_date}")
        )
    warnings = [Problem(shown_as, line, message, warning=True) for line, message in _doubtful_keys(doc)]
    if problems:
        return None, problems + warnings
    slug = values["slug"] or slugify(name.slug)
    if not slug:
        return None, [Problem(shown_as, 1, "the file name's slug has no letters or digits")]
    entry = LogEntry(
        path=shown_as,
        title=values["title"],
        date=date,
        slug=slug,
        body=doc.body,
        tags=values["tags"],
        categories=values["categories"],
        labs=values["labs"],
        math=values["math"],
        draft=values["draft"],
        description=values["description"],
        layout=values["layout"],
        extra={k: v for k, v in doc.data.items() if k not in READ_KEYS},
        key_lines=doc.key_lines,
        body_line=doc.body_line,
    )
    return entry, warnings


def _doubtful_keys(doc: Document) -> list[tuple[int, str]]:
    """Warnings for keys that look like mistakes: a misspelt known key, a comma in a
    space-separated tag string, a Jekyll key studylog cannot honour."""
    found = []
    for key in doc.data:
        if key in READ_KEYS:
            continue
        if key in UNSUPPORTED:
            found.append((doc.line_of(key), UNSUPPORTED[key]))
            continue
        close = difflib.get_close_matches(key.lower(), sorted(READ_KEYS), n=1, cutoff=0.75)
        if close and close[0] != key:
            found.append((doc.line_of(key), f"unknown key {key!r}: did you mean {close[0]!r}? (kept as an extra key)"))
    for key in ("tags", "categories"):
        value = doc.data.get(key)
        if isinstance(value, str) and "," in value:
            found.append((doc.line_of(key), f"{key}: {value!r} is split at spaces, so the commas stay in the names; "
                                            f"write a list: {key}: [{', '.join(w.strip() for w in value.split(',') if w.strip())}]"))
    return found


def _file_date(match: re.Match[str] | None) -> dt.date | None:
    if match is None:
        return None
    try:
        return dt.date.fromisoformat(match.group("date"))
    except ValueError:
        return None


def _title(doc: Document, name: FileName) -> str:
    title = doc.data.get("title")
    if title is None:  # Jekyll's titleize_slug: each word of the slug, capitalised
        return " ".join(word.capitalize() for word in name.slug.split("-") if word) or name.slug
    if isinstance(title, str) and not title.strip():
        raise _Invalid("title", "title is empty")
    if not isinstance(title, (str, int, float)) or isinstance(title, bool):
        raise _Invalid("title", f"title must be text, not {_kind(title)}")
    return str(title).strip()


def _date(doc: Document, name: FileName) -> dt.datetime:
    value = doc.data.get("date")
    if value is None:  # Jekyll: the file name's date, at midnight
        return dt.datetime.combine(name.date, dt.time())
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

    def read(doc: Document, name: FileName) -> tuple[str, ...]:
        value = doc.data.get(key)
        if key == "categories" and value is None and "category" in doc.data:
            value = [doc.data["category"]]  # Jekyll's one-category form
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


def _labs(doc: Document, name: FileName) -> tuple[str, ...]:
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
    def read(doc: Document, name: FileName) -> bool:
        value = doc.data.get(key, False)
        if not isinstance(value, bool):
            raise _Invalid(key, f"{key} must be true or false, not {value!r}")
        return value

    return read


def _draft(doc: Document, name: FileName) -> bool:
    published = doc.data.get("published", True)
    if not isinstance(published, bool):
        raise _Invalid("published", f"published must be true or false, not {published!r}")
    return _flag("draft")(doc, name) or not published


def _optional_text(key: str):
    def read(doc: Document, name: FileName) -> str | None:
        value = doc.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _Invalid(key, f"{key} must be text, not {_kind(value)}")
        return str(value)

    return read


def _slug(doc: Document, name: FileName) -> str | None:
    value = _optional_text("slug")(doc, name)
    if value is None:
        return None
    slug = slugify(value)
    if not slug:
        raise _Invalid("slug", f"slug {value!r} has no letters or digits")
    return slug


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "empty"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Key:
    """One front-matter key: how it is read (and checked), its default, what it means."""

    name: str
    read: Callable[[Document, FileName], Any]
    default: str
    meaning: str
    example: str


SCHEMA = (
    Key("title", _title, "the file name's slug, each word capitalised (as Jekyll)", "the entry's title", "Parameter servers versus all-reduce"),
    Key("date", _date, "the file name's date (as Jekyll)",
        "a date or a date-time with an offset; its date must be the file name's", "2026-11-20 21:40:00 +0100"),
    Key("tags", _word_list("tags"), "none", "a list, or a space-separated string", "[parameter-server, allreduce]"),
    Key("categories", _word_list("categories"), "none", "a list or a space-separated string (Jekyll's `category` too)", "[notes]"),
    Key("labs", _labs, "none", "the labs this entry cites: stems of labs/*.py", "[allreduce]"),
    Key("math", _flag("math"), "false", "`$…$` and `$$…$$` render as math (offline); without it a `$` is a dollar", "true"),
    Key("draft", _draft, "false", "left out unless `--drafts` (Jekyll's `published: false` too)", "true"),
    Key("description", _optional_text("description"), "none", "a one-line summary, the page's meta description", "What a ring costs."),
    Key("slug", _slug, "the file name's slug", "the last part of the URL /YYYY/MM/DD/slug/", "ring-math"),
    Key("layout", _optional_text("layout"), "none", "accepted and kept (Jekyll themes read it)", "post"),
)
# Read into the entry, so not passed on as extra keys; `published` and `category` are
# Jekyll's spellings of draft and categories.
READ_KEYS = frozenset({key.name for key in SCHEMA} | {"published", "category"})
# Jekyll keys studylog cannot honour: kept, with a warning that says what happens instead.
UNSUPPORTED = {"permalink": "permalink is not supported: the entry is published at /YYYY/MM/DD/slug/ (set `slug:` to change its last part)"}


def schema_table() -> str:
    """The README's table of front-matter keys, made from SCHEMA."""
    rows = [f"| `{k.name}` | {k.meaning} | {k.default} | `{k.name}: {k.example}` |" for k in SCHEMA]
    return "\n".join(["| key | meaning | default | example |", "|---|---|---|---|", *rows])
