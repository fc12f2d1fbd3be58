"""references.bib: the papers a project cites, read and formatted by pybtex.

Each entry becomes a Paper: how a citation names it (author–year), its reference formatted by
pybtex's `plain` style, its links and its abstract. A malformed file, a duplicate key, an entry
its style cannot format or a link that is not http(s) is a Problem at the .bib file's line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pybtex.backends.markdown import Backend as MarkdownBackend
from pybtex.database import BibliographyDataError, Entry, parse_string
from pybtex.richtext import Text
from pybtex.scanner import PybtexSyntaxError
from pybtex.style.formatting.plain import Style
from pybtex.style.template import FieldIsMissing
from slugify import slugify

from studylog.errors import Problem

BIB_FILE = "references.bib"
# pybtex links these fields without escaping them in HTML; studylog links them itself.
LINK_FIELDS = ("url", "doi", "eprint")
ENTRY_START = re.compile(r"^[ \t]*@(?P<type>\w+)[ \t]*[{(][ \t]*(?P<key>[^,\s]+)", re.MULTILINE)
LEFTOVER_COMMAND = re.compile(r"\\[A-Za-z]+\s*")  # \em, \emph: pybtex keeps their text, and the command
SAFE_URL = re.compile(r"^https?://[^\s<>\"'`\\]+$")
SAFE_ID = re.compile(r"^[^\s<>\"'`\\]+$")


@dataclass(frozen=True)
class Paper:
    """One entry of references.bib, ready for pages."""

    key: str  # as written in the .bib file
    line: int
    authors: str  # how a citation names the authors: "Liang", "Liang and Liaw", "Liang et al."
    year: str  # with a letter when two papers share authors and year: "2018a"
    title: str
    reference: str  # the full reference in Markdown, formatted by pybtex's plain style
    links: tuple[tuple[str, str], ...]  # (text, http(s) URL): DOI, arXiv, the entry's url
    abstract: str
    slug: str  # the page's file stem under papers/

    @property
    def label(self) -> str:
        return f"{self.authors}, {self.year}"


@dataclass(frozen=True)
class Bibliography:
    path: Path  # relative to the project root
    papers: dict[str, Paper]  # by lower-cased key: BibTeX keys ignore case

    def get(self, key: str) -> Paper | None:
        return self.papers.get(key.lower())

    def keys(self) -> list[str]:
        return [paper.key for paper in self.papers.values()]


def read_bibliography(path: Path, shown_as: Path) -> tuple[Bibliography | None, list[Problem]]:
    """The papers of the BibTeX file at `path` (reported as `shown_as`), or None and the
    problems that stand in the way."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, [Problem(shown_as, raw[:error.start].count(b"\n") + 1, "not UTF-8")]
    lines = _entry_lines(text)
    try:
        data = parse_string(text, "bibtex")
    except PybtexSyntaxError as error:
        return None, [_syntax(shown_as, text, error)]
    except BibliographyDataError as error:
        return None, [_duplicate(shown_as, text, error)]
    problems, papers = [], {}
    for key, entry in data.entries.items():
        line = lines.get(key.lower(), 1)
        found = _link_problems(shown_as, line, key, entry)
        try:
            reference = _formatted(entry)
        except FieldIsMissing as error:
            found.append(Problem(shown_as, line, f"entry {key!r} ({entry.type}) lacks a field pybtex's plain style "
                                                 f"needs: {error.field_name}"))
        problems.extend(found)
        if not found:
            papers[key.lower()] = (key, line, entry, reference)
    if problems:
        return None, problems
    return Bibliography(shown_as, _papers(papers)), []


def _papers(parsed: dict[str, tuple[str, int, Entry, str]]) -> dict[str, Paper]:
    """Papers whose author–year labels tell them apart: 2018a, 2018b in key order (as
    author–year styles do) when two share both."""
    named = {lower: (_authors(entry), _plain(entry.fields.get("year", "n.d."))) for lower, (_, _, entry, _) in parsed.items()}
    sharing = defaultdict(list)
    for lower in sorted(parsed):
        sharing[named[lower]].append(lower)
    papers = {}
    for lower, (key, line, entry, reference) in parsed.items():
        authors, year = named[lower]
        group = sharing[authors, year]
        if len(group) > 1:
            year += "abcdefghijklmnopqrstuvwxyz"[group.index(lower) % 26]
        papers[lower] = Paper(key, line, authors, year, _plain(entry.fields.get("title", key)), reference,
                              _links(entry), _plain(entry.fields.get("abstract", "")), _slug(key, papers))
    return papers


def _authors(entry: Entry) -> str:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_plain(" ".join(person.last_names) or " ".join(person.first_names)) for person in people]
    if not names:
        return _plain(entry.fields.get("organization", entry.fields.get("title", "Anonymous")))
    if len(names) == 1:
        return names[0]
    return f"{names[0]} and {names[1]}" if len(names) == 2 else f"{names[0]} et al."


def _formatted(entry: Entry) -> str:
    """The reference in Markdown (pybtex's plain style, its Markdown backend escaping the
    text), without the links, which studylog adds itself."""
    bare = Entry(entry.type, {k: v for k, v in entry.fields.items() if k.lower() not in LINK_FIELDS},
                 {role: list(people) for role, people in entry.persons.items()})
    text = Style().format_entry("", bare).text.render(MarkdownBackend())
    return " ".join(text.split())


def _links(entry: Entry) -> tuple[tuple[str, str], ...]:
    fields = {k.lower(): v.strip() for k, v in entry.fields.items()}
    links = []
    if fields.get("doi"):
        links.append((f"doi:{fields['doi']}", f"https://doi.org/{fields['doi']}"))
    if fields.get("eprint") and fields.get("archiveprefix", "arxiv").lower() == "arxiv":
        links.append((f"arXiv:{fields['eprint']}", f"https://arxiv.org/abs/{fields['eprint']}"))
    if fields.get("url"):
        links.append((fields["url"], fields["url"]))
    return tuple(links)


def _link_problems(shown_as: Path, line: int, key: str, entry: Entry) -> list[Problem]:
    fields = {k.lower(): v.strip() for k, v in entry.fields.items()}
    problems = []
    if fields.get("url") and not SAFE_URL.match(fields["url"]):
        problems.append(Problem(shown_as, line, f"entry {key!r}: url must be an http(s) address without spaces or quotes"))
    for name in ("doi", "eprint"):
        if fields.get(name) and not SAFE_ID.match(fields[name]):
            problems.append(Problem(shown_as, line, f"entry {key!r}: {name} must have no spaces, quotes or angle brackets"))
    return problems


def _plain(latex: str) -> str:
    """A field's text without its LaTeX ({RLlib} → RLlib, {\\"u} → ü)."""
    text = Text.from_latex(latex).render_as("text")
    return " ".join(LEFTOVER_COMMAND.sub("", text).split())


def _slug(key: str, taken: dict[str, Paper]) -> str:
    slug = key if re.fullmatch(r"[A-Za-z0-9_.-]+", key) else slugify(key) or "paper"
    used = {paper.slug.lower() for paper in taken.values()}
    base, n = slug, 2
    while slug.lower() in used:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _entry_lines(text: str) -> dict[str, int]:
    """The line of each entry's first `@type{key` (pybtex keeps no lines): a light scan, only
    to point at entries in messages."""
    lines: dict[str, int] = {}
    for match in ENTRY_START.finditer(text):
        if match.group("type").lower() not in ("comment", "preamble", "string"):
            lines.setdefault(match.group("key").lower(), text.count("\n", 0, match.start()) + 1)
    return lines


def _syntax(shown_as: Path, text: str, error: PybtexSyntaxError) -> Problem:
    """pybtex reports where it noticed the error; name the entry it was reading too."""
    line = error.lineno or 1
    message = str(error).split(": ", 1)[-1]
    starts = [(text.count("\n", 0, m.start()) + 1, m.group("key")) for m in ENTRY_START.finditer(text)]
    before = [(start, key) for start, key in starts if start < line]
    if before and any(start == line for start, _ in starts):  # ran into the next entry
        message += f" (is entry {before[-1][1]!r}, which starts at line {before[-1][0]}, closed?)"
    elif before:
        message += f" (in entry {before[-1][1]!r}, which starts at line {before[-1][0]})"
    return Problem(shown_as, line, f"BibTeX syntax error: {message}")


def _duplicate(shown_as: Path, text: str, error: BibliographyDataError) -> Problem:
    """pybtex names the repeated key without a line: find its second entry."""
    key = str(error).rsplit(":", 1)[-1].strip()
    seen = [text.count("\n", 0, m.start()) + 1 for m in ENTRY_START.finditer(text) if m.group("key").lower() == key.lower()]
    if len(seen) >= 2:
        return Problem(shown_as, seen[1], f"duplicate key {key!r} (first at line {seen[0]}); BibTeX keys ignore case")
    return Problem(shown_as, 1, f"BibTeX error: {error}")


