"""Lab cards: a lab at a glance, as an mkdocs-material grid card, on the labs index and at the
foot of each log entry that cites it.

A card holds the lab's title (a link to its page), its one-line summary, its status (and
the number of nodes, where its published run was made on several) and its first two
recorded figures in words. The grid is the HTML that mkdocs-material's grid cards
produce (`<div class="grid cards"><ul><li>`), which mkdocs-material and Zensical both style.
It is raw HTML but for the title's link, which is Markdown (md_in_html's `markdown`
attributes open the way to it): the engine resolves a Markdown link to the lab's page and
checks it, whereas a link in raw HTML MkDocs leaves as written and Zensical rebases from the
page's source folder, and a log's source folder (posts/) is not its URL's (/YYYY/MM/DD/slug/).
Every text from a lab or its record is escaped here, once.
"""

from __future__ import annotations

from urllib.parse import quote

from studylog.site import metric_text
from studylog.site.labpages import LABS_DIR, LabState, escape, run_nodes, shown_as_written

HEADLINE_FIGURES = 2  # the first figures a lab records are its headline


def status(state: LabState) -> str:
    """The lab's published run as a word: failed, not run, stale or ok."""
    if state.failure:
        return "failed"
    if not state.good:
        return "not run"
    return "stale" if state.stale else "ok"


def card(state: LabState) -> str:
    """One card, an item of `grid`, for a page one folder down in site_src (posts/, labs/)."""
    link = f"../{LABS_DIR}/{quote(state.lab.name)}.md"
    metrics = list((state.good or {}).get("metrics", {}).items())[:HEADLINE_FIGURES]
    figures = "".join(
        f"<li>{escape(metric_text.label(name, m))}: {escape(metric_text.with_unit(m['value'], m.get('unit', '')))}</li>"
        for name, m in metrics
    )
    parts = [
        f'<p markdown="span">[**{markdown_text(state.lab.title)}**]({link})</p>',
        "<hr>",
        f"<p>{escape(state.lab.summary)}</p>",
        f"<ul>{figures}</ul>" if figures else "",
        f"<p><em>status: {status(state)}{where(state)}</em></p>",
    ]
    return "<li markdown>\n" + "\n".join(part for part in parts if part) + "\n</li>"


def where(state: LabState) -> str:
    """' · cluster of N nodes' for a published run made on several, so that its figures are
    not read as one machine's; nothing otherwise, and nothing beside a failure."""
    nodes = run_nodes(state.good) if state.good and not state.failure else 1
    return f" · cluster of {nodes} nodes" if nodes > 1 else ""


def grid(cards: list[str]) -> str:
    """Cards as one grid: an HTML block, after a blank line that ends any paragraph before it."""
    return '\n<div class="grid cards" markdown>\n<ul markdown>\n' + "\n".join(cards) + "\n</ul>\n</div>\n"


def labs_index(states: list[LabState]) -> str:
    """The labs index page (labs/index.md): a card per lab."""
    return "---\ntitle: Labs\n---\n\n# Labs\n" + grid([card(s) for s in states])


def markdown_text(value: str) -> str:
    """`value` as inline Markdown, not at a line's start, that renders as written: on one line,
    HTML-escaped once, and what Markdown or math would read (`[`, `*`, `` ` ``, `$`...) as
    character references."""
    return shown_as_written(" ".join(value.split()))
