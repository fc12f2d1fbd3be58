"""MkDocs hook: the feed as a feed reader needs it, where mkdocs-rss-plugin falls short.

Text as written. MkDocs' templates print front matter without escaping it, so studylog writes every
value of a generated page HTML-escaped, once (pages.py). mkdocs-rss-plugin renders its feed
with autoescaping, so it escaped those values a second time and the feed read `I&#x27;d`.

What: mark the string values of each generated page's front matter as already-escaped
markup (`markupsafe.Markup`, a `str`). Templates that do not escape print them as before;
an autoescaping template (the feed's) recognises them and does not escape again, so the XML
holds each value escaped exactly once and a feed reader shows the text as written.
Hand-written pages are left alone: studylog did not escape their front matter.

Links that resolve. The plugin copies each post's HTML into the feed, relative links and
all (`../../labs/ring/`); a feed reader has no page to resolve them against, so every link
and image of a post was broken there (the plugin's issue #263, open). The plugin reads the
post from `page.content` in its own `on_page_content` (priority -75), and MkDocs assigns
`page.content` only once every plugin's `on_page_content` has run. So, just before the
plugin, this hook sets `page.content` to the HTML with each relative `href` and `src` made
absolute against the post's URL, and returns nothing: the page itself keeps its relative
links, and only what the feed copies changes.

An image that exists. Without an `image` setting the plugin writes `<url>None</url>` in the
channel's image; the hook gives it the site's favicon, absolute.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

from markupsafe import Markup
from mkdocs.plugins import event_priority

GENERATED = ("posts/", "labs/", "tags/")  # the folders of site_src that studylog writes
POSTS = "posts/"
# Python-Markdown and the theme write every attribute double-quoted.
LINK = re.compile(r'\b(href|src)="([^"]*)"')


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


@event_priority(100)  # before the feed plugin's own on_config reads its image
def on_config(config: Any, **kwargs: Any) -> None:
    feed = config.plugins.get("rss")
    if feed is not None and not feed.config.image:
        feed.config.image = urljoin(config.site_url or "", config.theme.get("favicon") or "assets/images/favicon.png")


def absolute_links(html: str, base: str) -> str:
    """`html` with each relative href and src resolved against the URL `base`."""

    def resolve(match: re.Match) -> str:
        name, url = match.groups()
        if urlsplit(url).scheme or url.startswith("//"):
            return match.group(0)
        return f'{name}="{urljoin(base, url)}"'

    return LINK.sub(resolve, html)


@event_priority(-70)  # after every other plugin has changed the HTML, just before the feed plugin (-75)
def on_page_content(html: str, *, page: Any, **kwargs: Any) -> None:
    if page.file.src_uri.startswith(POSTS) and page.canonical_url:
        page.content = absolute_links(html, page.canonical_url)
