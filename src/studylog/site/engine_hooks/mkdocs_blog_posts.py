"""MkDocs hook that keeps mkdocs-material blog builds linear in the number of posts.

Why: for every page it renders, mkdocs-material's blog plugin asks `page not in posts`
(twice), a scan of the whole post list calling MkDocs' `Page.__eq__` once per post.
That method compares titles before files, and a title can cost a pass over the post's
Markdown, so a blog of N posts does O(N²) Python-level comparisons: about 100 of the
137 s of a plain 3650-post build here (bench/README.md has the profile). No setting of
the blog, tags or search plugins changes it.

What: after the blog plugin has built its post list, make membership in that list a set
lookup by identity. It gives the scan's answer: `Page.__eq__` requires the very same
`File` object (`File` defines no `__eq__`), and MkDocs makes one page per file.

Loaded by MkDocs through the `hooks:` setting of the config studylog writes for it, and
never imported by studylog. It reads one attribute of the plugin (`blog.posts`); where
that is missing (another version), it does nothing and the build is only slower.
tests/test_engine_hooks.py checks that the plugin still has the shape assumed here and
that a build with the hook is byte-identical to one without.
"""

from __future__ import annotations

from typing import Any

from mkdocs.plugins import event_priority


class _PostList(list):
    """The blog's posts, with `in` answered by identity in O(1)."""

    def __contains__(self, page: object) -> bool:
        if getattr(self, "_size", None) != len(self):  # rebuilt if the list was changed
            self._ids = {id(post) for post in self}
            self._size = len(self)
        return id(page) in self._ids


@event_priority(-100)  # after the blog plugin's on_files (-50), which builds the list
def on_files(files: Any, config: Any) -> None:
    for name, plugin in config.plugins.items():
        blog = getattr(plugin, "blog", None)
        if name.startswith("material/blog") and isinstance(getattr(blog, "posts", None), list):
            blog.posts = _PostList(blog.posts)
