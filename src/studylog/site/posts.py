"""The site step's pages: plain Markdown and assets derived from the logs (and labs).

`render_pages` is a pure function from entries to `{path in site_src: content}`; the
engine (MkDocs or Zensical) only renders what is written here. The engine's templates do
not escape front-matter values, so every value that reaches a template is HTML-escaped
here, once.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from importlib.resources import files
from pathlib import Path

import yaml

from slugify import slugify

from studylog.papers.bibliography import Bibliography, Paper
from studylog.papers.citations import cited_keys
from studylog.site.calendar import calendar_html, calendar_page
from studylog.site.labcards import card, grid, labs_index, markdown_text
from studylog.site.paperpages import Citer, Citing, paper_pages
from studylog.site.labpages import LABS_DIR, LabState, escape, lab_files
from studylog.logs.entry import LogEntry
from studylog.markup import CODE, FENCE_OPEN, mask_code
from studylog.memo import Memo

POSTS_DIR = "posts"
TAGS_DIR = "tags"
ASSETS_DIR = "assets/studylog"
EXCERPT = "<!-- more -->"
CALENDAR_PAGE = "calendar.md"
# Files pages include (pymdownx.snippets), in a hidden folder so the engine does not publish them:
# the home page's calendar of study days is `--8<-- "calendar.html"`.
SNIPPETS_DIR = ".studylog"
CALENDAR_SNIPPET = f"{SNIPPETS_DIR}/calendar.html"
# Keys the engine interprets itself: an unknown Jekyll key of the same name is not passed on.
ENGINE_KEYS = frozenset({"authors", "pin", "links", "readtime", "template", "hide", "search", "status"})
MATHJAX = files("mathjax") / "static" / "mathjax" / "es5" / "tex-svg.js"
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")

Content = str | bytes | Path  # text, data, or a file to copy


def render_pages(entries: list[LogEntry], labs: list[LabState], root: Path, plot_cache: Path,
                 memo: Memo | None = None, bibliography: Bibliography | None = None,
                 today: dt.date | None = None) -> dict[str, Content]:
    """Every generated file under site_src, keyed by its path relative to site_src (a post
    page is reused from `memo` while its entry, foot and cited papers are the same). `entries`
    are the published ones: the previous and next links run through them; `labs` holds every
    lab an entry cites. With a `bibliography`, citations become links and each paper gets a
    page with the logs and labs citing it. `today` ends the calendar of study days."""
    memo = memo or Memo()
    cards = {state.lab.name: card(state) for state in labs}
    pages: dict[str, Content] = {}
    trails: dict[str, list[Citing]] = {}
    ordered = sorted(entries, key=publication_order)
    for i, entry in enumerate(ordered):
        previous = ordered[i - 1] if i > 0 else None
        following = ordered[i + 1] if i + 1 < len(ordered) else None
        foot = post_foot([cards[name] for name in entry.labs], previous, following)
        papers = _cited(entry.body, bibliography)
        page = memo.get("post", entry.path, (entry, foot, papers),
                        lambda: post_page(entry, foot, Citer(bibliography) if bibliography else None))
        pages[f"{POSTS_DIR}/{entry.path.name}"] = page
        for paper in papers:
            trails.setdefault(paper.key.lower(), []).append(
                Citing("log", entry.title, f"../{POSTS_DIR}/{entry.path.name}", entry.date.date()))
    pages.update(tag_pages(entries))
    pages.update(entry_files(entries, root))
    for state in labs:
        citer = Citer(bibliography) if bibliography else None
        pages.update(lab_files(state, root / state.lab.path, plot_cache, citer))
        for key in citer.cited if citer else ():
            trails.setdefault(key, []).append(Citing("lab", state.lab.title, f"../{LABS_DIR}/{state.lab.name}.md", _run_day(state)))
    if labs:
        pages[f"{LABS_DIR}/index.md"] = labs_index(labs)
    if bibliography:
        pages.update(paper_pages(bibliography, trails))
    today = today or dt.date.today()
    pages[CALENDAR_PAGE] = calendar_page(entries, today)
    pages[CALENDAR_SNIPPET] = calendar_html(entries, today, link=CALENDAR_PAGE.removesuffix(".md") + "/")
    pages[f"{ASSETS_DIR}/tex-svg.js"] = Path(str(MATHJAX))
    for asset in ("mathjax-config.js", "studylog.css"):
        pages[f"{ASSETS_DIR}/{asset}"] = (files("studylog.site") / "assets" / asset).read_text(encoding="utf-8")
    return pages


def _cited(body: str, bibliography: Bibliography | None) -> tuple[Paper, ...]:
    if not bibliography:
        return ()
    return tuple(paper for paper in map(bibliography.get, cited_keys(body)) if paper)


def _run_day(state: LabState) -> dt.date | None:
    """The day of the lab's published run, when it has one."""
    started = (state.good or state.failure or {}).get("started")
    return dt.datetime.fromisoformat(started).date() if started else None


def entry_files(entries: list[LogEntry], root: Path) -> dict[str, Path]:
    """The files entries use (images, data), copied beside their pages so that a link
    written relative to the entry works: everything in `logs/assets/`, and in a folder named
    like a published entry (`logs/2026-03-01-first/` for `logs/2026-03-01-first.md`). Hidden
    files, Markdown files (the engine would publish them as posts) and links leading out of
    the project are left out."""
    logs = root / "logs"
    folders = [logs / "assets", *(root / entry.path.parent / entry.path.stem for entry in entries)]
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(logs)
            if (path.is_file() and path.suffix not in (".md", ".markdown")
                    and not any(part.startswith(".") for part in relative.parts)
                    and path.resolve().is_relative_to(root.resolve())):
                found[f"{POSTS_DIR}/{relative.as_posix()}"] = path
    return found


def publication_order(entry: LogEntry) -> tuple[dt.datetime, str]:
    """Oldest first, by the wall-clock date the blog sorts by (see post_page), then file name."""
    return entry.date.replace(tzinfo=None), entry.path.name


def post_page(entry: LogEntry, foot: str, citer: Citer | None = None) -> str:
    """The page handed to mkdocs-material's blog plugin for one log entry, `foot` (post_foot)
    at its end; with a `citer`, its citations are links and its bibliography ends the text."""
    meta = {k: escaped(v) for k, v in entry.extra.items() if k not in ENGINE_KEYS}
    # The blog plugin sorts naive and aware datetimes together and fails on a mix, and its
    # URLs use the date: keep the wall-clock time as written, without the offset. Besides
    # the author's own extra keys, only keys the engine reads are written (it parses this
    # front matter twice a page).
    meta.update(title=escape(entry.title), date=entry.date.replace(tzinfo=None), slug=entry.slug)
    meta["feed_date"] = entry.date  # the feed's: with the author's offset, when one was written
    for key, values in (("tags", entry.tags), ("categories", entry.categories)):
        if values:
            meta[key] = [escape(value) for value in values]
    if entry.description:
        meta["description"] = escape(entry.description)
    if entry.layout:
        meta["layout"] = escape(entry.layout)
    if entry.draft:
        meta["draft"] = True
    front = yaml.dump(meta, Dumper=SafeDumper, sort_keys=False, allow_unicode=True)
    body = citer(entry.body) if citer else entry.body
    body = with_excerpt(body if entry.math else literal_dollars(body)).strip()
    references = citer.references() if citer else ""
    if (foot or references) and EXCERPT not in body:  # the foot belongs to the entry's page, not to its excerpt
        body += f"\n\n{EXCERPT}"
    return f"---\n{front}---\n\n{body}\n{references}{foot}"


def post_foot(cards: list[str], previous: LogEntry | None, following: LogEntry | None) -> str:
    """What follows an entry's text: a card per lab it cites, then links to the entries
    published before and after it."""
    parts = [f"\n## Labs\n{grid(cards)}"] if cards else []
    links = []
    if previous:
        links.append(f"← Previous: [{markdown_text(previous.title)}]({previous.path.name})")
    if following:
        links.append(f"Next: [{markdown_text(following.title)}]({following.path.name}) →")
    if links:
        parts.append("\n---\n\n" + "\n\n".join(links) + "\n")
    return "".join(parts)


def literal_dollars(body: str) -> str:
    """The body with every `$` outside code escaped (`\\$`), so the math extension, which
    runs on every page, leaves it a dollar sign: an entry without `math: true` has no math.
    Code (fenced blocks, indented blocks after a blank line, inline spans) is left as written,
    since an escape would show there."""
    masked = mask_code(body)
    return UNESCAPED_DOLLAR.sub(lambda m: m.group() if masked[m.start()] == CODE else r"\$", body)


def escaped(value: object) -> object:
    """Every string in a front-matter value (lists and mappings included) HTML-escaped."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list):
        return [escaped(item) for item in value]
    if isinstance(value, dict):
        return {key: escaped(item) for key, item in value.items()}
    return value


def with_excerpt(body: str) -> str:
    """The body with an excerpt separator: the author's, or Jekyll's default (after the
    first paragraph), so index pages show a paragraph rather than every whole entry."""
    if EXCERPT in body:
        return body
    lines = body.strip("\n").splitlines()
    fence = None
    seen_text = False
    for i, line in enumerate(lines):
        opened = FENCE_OPEN.match(line)
        if fence:
            fence = None if line.strip().startswith(fence) else fence
        elif opened:
            fence, seen_text = opened.group(1), True
        elif not line.strip() and seen_text:
            return "\n".join(lines[:i] + ["", EXCERPT] + lines[i:])
        elif line.strip() and not line.startswith("#"):
            seen_text = True
    return body


def tag_pages(entries: list[LogEntry]) -> dict[str, str]:
    """A page per tag, each a tags-plugin listing of that one tag, and an index of them.

    Each tag is included by exactly one listing, so the tags plugin links every tag on a
    post to that tag's own page.
    """
    counts: dict[str, int] = {}
    for entry in entries:
        for tag in entry.tags:
            counts[tag] = counts.get(tag, 0) + 1
    slugs = _unique_slugs(sorted(counts, key=str.lower))
    pages = {}
    rows = []
    for tag, slug in slugs.items():
        name = escape(tag)
        listing = json.dumps({"include": [name]})
        pages[f"{TAGS_DIR}/{slug}.md"] = f"---\ntitle: {json.dumps(name)}\n---\n\n# {name}\n\n<!-- material/tags {listing} -->\n"
        rows.append(f"- [{name}]({slug}.md) ({counts[tag]})")
    pages[f"{TAGS_DIR}/index.md"] = "---\ntitle: Tags\n---\n\n# Tags\n\n" + "\n".join(rows) + "\n"
    return pages


def _unique_slugs(tags: list[str]) -> dict[str, str]:
    taken: set[str] = {"index"}
    slugs = {}
    for tag in tags:
        base = slugify(tag) or "tag"
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        slugs[tag] = slug
    return slugs


