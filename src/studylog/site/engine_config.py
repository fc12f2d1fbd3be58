"""The engine configuration: studylog's defaults with the author's mkdocs.yml laid over them.

The author's `mkdocs.yml` holds what is theirs to choose (site name and URL, theme colours,
the nav of hand-written pages, extra plugins and extensions). studylog adds what publishing
logs needs (the blog, tags, search and feed plugins, math, its layout) and writes one
effective config (`.studylog-mkdocs.yml` beside the author's, since Zensical wants
the docs inside the config's folder) that MkDocs or Zensical reads. Mappings merge key by key; `plugins`
and `markdown_extensions` merge by name, the author's options winning; a plugin the author
sets to `enabled: false` stays off; colours set without a scheme apply to the light and the
dark palette alike; a nav that leaves out the tags or labs index gets it at its end. Tags the
author's file uses (`!ENV`, `!!python/name:`) are carried through unread, for the engine to resolve.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from studylog.errors import StudylogError
from studylog.site.paperpages import PAPERS_DIR
from studylog.site.posts import ASSETS_DIR, CALENDAR_PAGE, LABS_DIR, POSTS_DIR, SNIPPETS_DIR, TAGS_DIR
from studylog.project import Project

DEFAULT_SITE_URL = "http://127.0.0.1:8000/"


@dataclass(frozen=True)
class Tagged:
    """A YAML value with a tag only the engine understands, kept verbatim."""

    tag: str
    value: Any


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.ScalarNode):
        return Tagged(node.tag, loader.construct_scalar(node))
    if isinstance(node, yaml.SequenceNode):
        return Tagged(node.tag, loader.construct_sequence(node, deep=True))
    return Tagged(node.tag, loader.construct_mapping(node, deep=True))


def _represent_tagged(dumper: yaml.SafeDumper, data: Tagged) -> yaml.Node:
    if isinstance(data.value, list):
        return dumper.represent_sequence(data.tag, data.value)
    if isinstance(data.value, dict):
        return dumper.represent_mapping(data.tag, data.value)
    return dumper.represent_scalar(data.tag, data.value)


_Loader.add_multi_constructor("!", _construct_tagged)
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_tagged)
_Dumper.add_representer(Tagged, _represent_tagged)


def load_user_config(path: Path) -> dict[str, Any]:
    """The author's mkdocs.yml as a mapping (empty when there is none)."""
    if not path.exists():
        return {}
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise StudylogError(f"{path}:{(mark.line + 1) if mark else 1}: YAML syntax error: {err.problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StudylogError(f"{path}:1: mkdocs.yml must be a mapping of settings")
    return data


def studylog_defaults(project: Project, site_dir: Path, drafts: bool) -> dict[str, Any]:
    """What publishing a learning log needs, whatever the author's settings."""
    return {
        "site_name": "studylog",
        "site_url": DEFAULT_SITE_URL,
        "docs_dir": project.rel(project.site_src).as_posix(),
        "site_dir": project.rel(site_dir).as_posix(),
        "theme": {
            "name": "material",
            # System fonts: the default loads Google Fonts, and a built page must load nothing remote.
            "font": False,
            # prune: each page carries only the nav links it shows, not one per archive year.
            "features": ["navigation.indexes", "navigation.prune", "content.code.copy"],
            # A light/dark toggle, starting from the reader's system preference.
            "palette": [
                {"media": "(prefers-color-scheme: light)", "scheme": "default",
                 "toggle": {"icon": "material/brightness-7", "name": "Switch to dark mode"}},
                {"media": "(prefers-color-scheme: dark)", "scheme": "slate",
                 "toggle": {"icon": "material/brightness-4", "name": "Switch to light mode"}},
            ],
        },
        "plugins": [
            {"search": {}},
            {
                "blog": {
                    "blog_dir": ".",
                    "post_dir": POSTS_DIR,
                    "post_url_format": "{date}/{slug}",
                    "authors": False,
                    # Each listing page renders the whole theme once: 20 excerpts a page
                    # (three weeks of daily entries) halves those renders against the default 10.
                    "pagination_per_page": 20,
                    "draft": drafts,
                    "draft_on_serve": drafts,
                    "draft_if_future_date": False,
                }
            },
            {"tags": {}},
            {
                "rss": {
                    "match_path": f"{POSTS_DIR}/.*",
                    "use_git": False,
                    # Whole posts in the feed, from the HTML already rendered; an abstract
                    # would convert every post's Markdown once more (2 s at 3650 posts).
                    "abstract_chars_count": -1,
                    "date_from_meta": {"as_creation": "feed_date"},
                }
            },
            # A click on a figure opens it full size, captioned with its alt text. The plugin
            # ships GLightbox's script and styles (nothing remote); Zensical maps it onto its
            # own extension.
            {"glightbox": {"auto_caption": True}},
        ],
        # Each extension costs every page and every excerpt a pass (about 0.6 ms a post, 2 s at
        # 3650 posts): the defaults are what logs need and Jekyll's kramdown offers (tables,
        # footnotes, math, highlighted code), and what lab pages use (folded code, captioned
        # figures), and md_in_html for the links on lab cards (labcards.py); add attr_list...
        # in mkdocs.yml.
        "markdown_extensions": [
            "toc",
            "tables",
            "admonition",
            "footnotes",
            {"pymdownx.arithmatex": {"generic": True}},
            "pymdownx.highlight",
            "pymdownx.superfences",
            "pymdownx.details",
            "pymdownx.blocks.caption",
            "md_in_html",
            # The home page includes the calendar of study days studylog writes:
            # `--8<-- "calendar.html"` (a missing file fails the build rather than vanishing).
            {"pymdownx.snippets": {"base_path": [str(project.site_src / SNIPPETS_DIR)], "check_paths": True}},
        ],
        "extra_javascript": [f"{ASSETS_DIR}/mathjax-config.js", f"{ASSETS_DIR}/tex-svg.js"],
        "extra_css": [f"{ASSETS_DIR}/studylog.css"],
    }


def merge(defaults: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """`user` laid over `defaults`: see the module docstring for the rules."""
    merged = dict(defaults)
    for key, value in user.items():
        base = merged.get(key)
        if key in ("plugins", "markdown_extensions"):
            merged[key] = _merge_named(base or [], value or [])
        elif key in ("extra_javascript", "extra_css", "hooks"):
            merged[key] = list(base or []) + [v for v in (value or []) if v not in (base or [])]
        elif key == "palette" and isinstance(base, list) and isinstance(value, dict) and "scheme" not in value:
            # Colours without a scheme (`primary: indigo`) are the author's for light and dark alike.
            merged[key] = [merge(scheme, value) for scheme in base]
        elif isinstance(base, dict) and isinstance(value, dict):
            merged[key] = merge(base, value)
        else:
            merged[key] = value
    return merged


def _merge_named(base: list[Any], user: list[Any] | dict[str, Any]) -> list[Any]:
    entries = dict(_named(base))
    for name, options in _named(user):
        entries[name] = merge(entries.get(name) or {}, options or {})
    return [{name: options} for name, options in entries.items()]


def _named(items: list[Any] | dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(items, dict):
        return list(items.items())
    return [(item, {}) if isinstance(item, str) else next(iter(item.items())) for item in items]


def default_nav(project: Project) -> list[Any]:
    """The log, the hand-written top-level pages, the tags and labs indexes.

    Without a nav, MkDocs lists every page, one tag page each included, and renders that
    list into every page: its cost grows with tags × pages. Posts and tag pages are
    reached from the log and the tags index instead.
    """
    pages = sorted(p.name for p in project.site_src.glob("*.md") if p.name not in ("index.md", CALENDAR_PAGE))
    nav: list[Any] = [{"Log": "index.md"}, *pages]
    return nav + missing_indexes(project, nav)


def missing_indexes(project: Project, nav: Any) -> list[dict[str, str]]:
    """The indexes a reader needs that `nav` leaves out, as nav entries to add at its end:
    the tags index, the labs index when the project has labs, the reading list when it has a
    references.bib. A nav that is not a list
    (an `!ENV` tag) is the engine's to read, and left alone."""
    if not isinstance(nav, list):
        return []
    wanted = [{"Tags": f"{TAGS_DIR}/index.md"}]
    if project.lab_names():
        wanted.append({"Labs": f"{LABS_DIR}/index.md"})
    if project.bibliography_file.is_file():
        wanted.append({"Papers": f"{PAPERS_DIR}/index.md"})
    listed = set(_nav_pages(nav))
    return [entry for entry in wanted if next(iter(entry.values())) not in listed]


def _nav_pages(nav: list[Any]) -> Iterator[str]:
    """Every page a nav lists, in its sections too."""
    for item in nav:
        for value in item.values() if isinstance(item, dict) else [item]:
            if isinstance(value, list):
                yield from _nav_pages(value)
            elif isinstance(value, str):
                yield value


def write_engine_config(project: Project, site_dir: Path, drafts: bool, engine: str = "mkdocs") -> Path:
    """Write the effective configuration for `engine` and return its path."""
    defaults = studylog_defaults(project, site_dir, drafts)
    if engine == "mkdocs":
        hooks = ("mkdocs_blog_posts.py", "mkdocs_blog_metadata.py", "mkdocs_feed.py", "mkdocs_serve_watch.py",
                 "mkdocs_serve_heap.py")
        defaults["hooks"] = [str(files("studylog.site") / "engine_hooks" / name) for name in hooks]
    if engine == "zensical":
        defaults["theme"]["custom_dir"] = str(files("studylog.site") / "assets" / "overrides")
    user = load_user_config(project.user_config)
    if "nav" not in user:
        defaults["nav"] = default_nav(project)
    config = merge(defaults, user)
    added = missing_indexes(project, user.get("nav"))
    if added:
        config["nav"] = [*user["nav"], *added]
    # Where things live is studylog's layout, not a setting.
    config["docs_dir"] = project.rel(project.site_src).as_posix()
    config["site_dir"] = project.rel(site_dir).as_posix()
    path = project.engine_config
    path.write_text(yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
