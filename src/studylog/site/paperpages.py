"""Papers on the site: citations as author–year links, a bibliography at the foot of each
page that cites, a page per paper with its study trail, and the reading list.

Pages are written where a relative Markdown link from a post or a lab reaches them in one
step up: posts/ and labs/ sit beside papers/ under site_src.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from studylog.papers.bibliography import Bibliography, Paper
from studylog.papers.citations import Citation, find_citations
from studylog.site.labcards import markdown_text
from studylog.site.labpages import escape

PAPERS_DIR = "papers"


@dataclass(frozen=True)
class Citing:
    """A page that cites a paper: a log entry or a lab, with its date (a lab's is the day of
    its published run; a lab never run has none)."""

    kind: str  # "log" or "lab"
    title: str
    link: str  # from papers/
    date: dt.date | None


@dataclass
class Citer:
    """Renders the citations of one page's Markdown and remembers the papers they name, for
    the page's bibliography and the papers' trails. `up` leads from the page's folder to
    site_src's root."""

    bibliography: Bibliography
    up: str = "../"
    cited: dict[str, Paper] = field(default_factory=dict)

    def __call__(self, text: str) -> str:
        out, last = [], 0
        for citation in find_citations(text):
            papers = [self.bibliography.get(cite.key) for cite in citation.cites]
            if None in papers:
                continue  # `check` reports an unknown key; the text stays as written
            for paper in papers:
                self.cited.setdefault(paper.key.lower(), paper)
            out += [text[last:citation.start], self._rendered(citation, papers)]
            last = citation.end
        return "".join(out + [text[last:]])

    def _rendered(self, citation: Citation, papers: list[Paper]) -> str:
        if citation.in_text:
            (cite,), (paper,) = citation.cites, papers
            inside = paper.year + (f", {cite.suffix}" if cite.suffix else "")
            return f"{self._link(paper.authors, paper)} ({inside})"
        parts = []
        for cite, paper in zip(citation.cites, papers):
            label = paper.year if cite.suppress_author else paper.label
            suffix = cite.suffix if cite.suffix.startswith(",") or not cite.suffix else f" {cite.suffix}"
            parts.append(f"{cite.prefix + ' ' if cite.prefix else ''}{self._link(label, paper)}{suffix}")
        return f"({'; '.join(parts)})"

    def _link(self, text: str, paper: Paper) -> str:
        return f"[{markdown_text(text)}]({self.up}{PAPERS_DIR}/{paper.slug}.md \"{markdown_text(paper.title)}\")"

    def references(self) -> str:
        """The page's bibliography: every paper it cited, by author and year."""
        if not self.cited:
            return ""
        papers = sorted(self.cited.values(), key=lambda p: (p.authors.lower(), p.year))
        items = [f"- {reference(p)} [Notes and labs on it]({self.up}{PAPERS_DIR}/{p.slug}.md)" for p in papers]
        return "\n## References\n\n" + "\n".join(items) + "\n"


def reference(paper: Paper) -> str:
    """The formatted reference followed by its links, in Markdown."""
    links = ", ".join(f"[{markdown_text(text)}](<{url}>)" for text, url in paper.links)
    return paper.reference + (f" {links}." if links else "")


def paper_page(paper: Paper, trail: list[Citing]) -> str:
    """One paper: its reference, links and abstract, then every log and lab citing it."""
    parts = [f"---\ntitle: {json.dumps(escape(paper.title))}\n---\n", f"# {markdown_text(paper.title)}\n",
             f"*{markdown_text(paper.label)}* · cited as `{paper.key}`\n", reference(paper) + "\n"]
    if paper.abstract:
        parts.append(f'??? quote "Abstract"\n\n    {markdown_text(paper.abstract)}\n')
    parts.append("## Study trail\n")
    if trail:
        parts.append("\n".join(f"- {_when(c.date, c.kind)} · {c.kind}: [{markdown_text(c.title)}]({c.link})"
                               for c in _newest_first(trail)) + "\n")
    else:
        parts.append("No log or lab cites it yet.\n")
    return "\n".join(parts)


def reading_list(bibliography: Bibliography, trails: dict[str, list[Citing]]) -> str:
    """Every paper of references.bib: the cited ones by their latest citation, newest first,
    with counts of the logs and labs citing them; then those no page cites yet."""
    papers = list(bibliography.papers.values())
    cited = [p for p in papers if trails.get(p.key.lower())]
    # Newest citation first; on the same day, the most cited, then by title.
    cited.sort(key=lambda p: (-max((c.date or dt.date.min) for c in trails[p.key.lower()]).toordinal(),
                              -len(trails[p.key.lower()]), p.title.lower()))
    lines = ["---\ntitle: Papers\n---\n", "# Papers\n",
             "The reading list: each paper with the logs and labs that cite it, the most recently cited first.\n"]
    for p in cited:
        trail = trails[p.key.lower()]
        latest = max((c.date for c in trail if c.date), default=None)
        logs, labs = sum(c.kind == "log" for c in trail), sum(c.kind == "lab" for c in trail)
        lines.append(f"- [{markdown_text(p.title)}]({p.slug}.md), {markdown_text(p.label)}  \n"
                     f"  last cited {_when(latest)} · {_count(logs, 'log')} · {_count(labs, 'lab')}")
    lines.append("")
    uncited = sorted((p for p in papers if p not in cited), key=lambda p: (p.authors.lower(), p.year))
    if uncited:
        lines.append("## Not cited yet\n")
        lines += [f"- [{markdown_text(p.title)}]({p.slug}.md), {markdown_text(p.label)}" for p in uncited]
        lines.append("")
    return "\n".join(lines)


def paper_pages(bibliography: Bibliography, trails: dict[str, list[Citing]]) -> dict[str, str]:
    """The reading list and a page per paper, keyed by path under site_src."""
    pages = {f"{PAPERS_DIR}/index.md": reading_list(bibliography, trails)}
    for lower, paper in bibliography.papers.items():
        pages[f"{PAPERS_DIR}/{paper.slug}.md"] = paper_page(paper, trails.get(lower, []))
    return pages


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _newest_first(trail: list[Citing]) -> list[Citing]:
    return sorted(trail, key=lambda c: (c.date or dt.date.min, c.kind, c.title), reverse=True)


def _when(day: dt.date | None, kind: str = "") -> str:
    if day:
        return day.isoformat()
    return "not run yet" if kind == "lab" else "—"

