"""MkDocs hook that keeps mkdocs-material blog builds linear in the number of posts.

Why: for every page it renders, the blog plugin asks `page not in posts`, a scan of the
whole post list that calls `Page.__eq__` once per post. MkDocs' `Page.__eq__` compares
titles before files, and a post's title can cost a pass over its Markdown, so a blog of
N posts does O(N²) title lookups: about 100 of the 137 s of a 3650-post build here
(profiled in bench/README.md).

What: compare the `File` first. Two pages are equal exactly when they are of one class,
share one `File` (which defines no `__eq__`, so `==` is identity) and have equal titles;
testing the file first gives the same answer and fails at once for different pages.
The scan stays a scan, but each step is a few attribute reads.

Loaded by MkDocs through the `hooks:` setting of the config studylog writes (never
imported by studylog). MkDocs 1.x gets no further releases, so the method replaced here
is fixed under the `mkdocs<2` pin; tests check that it still has the shape assumed.
"""

from __future__ import annotations

from mkdocs.structure.pages import Page


def _page_eq(self: Page, other: object) -> bool:
    return isinstance(other, self.__class__) and self.file == other.file and self.title == other.title


def on_startup(command: str, dirty: bool) -> None:
    Page.__eq__ = _page_eq  # type: ignore[method-assign]
