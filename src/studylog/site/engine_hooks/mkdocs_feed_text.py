"""MkDocs hook: the feed shows a log's front-matter values as written, not escaped twice.

Why: MkDocs' templates print front matter without escaping it, so studylog writes every
value of a generated page HTML-escaped, once (pages.py). mkdocs-rss-plugin renders its feed
with autoescaping, so it escaped those values a second time and the feed read `I&#x27;d`.

What: mark the string values of each generated page's front matter as already-escaped
markup (`markupsafe.Markup`, a `str`). Templates that do not escape print them as before;
an autoescaping template (the feed's) recognises them and does not escape again, so the XML
holds each value escaped exactly once and a feed reader shows the text as written.
Hand-written pages are left alone: studylog did not escape their front matter.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from mkdocs.plugins import event_priority

GENERATED = ("posts/", "labs/", "tags/")  # the folders of site_src that studylog writes


def _marked(value: Any) -> Any:
    if isinstance(value, str):
        return Markup(value)
    if isinstance(value, list):
        return [_marked(item) for item in value]
    if isinstance(value, dict):
        return {key: _marked(item) for key, item in value.items()}
    return value


@event_priority(100)  # before any plugin reads the page's values
def on_page_markdown(markdown: str, *, page: Any, **kwargs: Any) -> None:
    if page.file.src_uri.startswith(GENERATED):
        page.meta = _marked(page.meta)
