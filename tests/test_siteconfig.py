"""The effective engine config: studylog's defaults with the author's settings laid over."""

from __future__ import annotations

import yaml

from studylog.site.engine_config import Tagged, load_user_config, merge, write_engine_config


def test_scalars_and_mappings_merge_author_wins():
    merged = merge({"site_name": "d", "theme": {"name": "material", "features": ["a"]}}, {"site_name": "mine", "theme": {"palette": {"primary": "red"}}})
    assert merged["site_name"] == "mine"
    assert merged["theme"] == {"name": "material", "features": ["a"], "palette": {"primary": "red"}}


def test_plugins_merge_by_name_and_keep_order():
    defaults = {"plugins": [{"search": {}}, {"blog": {"blog_dir": ".", "authors": False}}]}
    merged = merge(defaults, {"plugins": ["glightbox", {"blog": {"pagination_per_page": 5}}]})
    assert merged["plugins"] == [
        {"search": {}},
        {"blog": {"blog_dir": ".", "authors": False, "pagination_per_page": 5}},
        {"glightbox": {}},
    ]


def test_markdown_extensions_merge_by_name():
    merged = merge({"markdown_extensions": ["toc", {"pymdownx.arithmatex": {"generic": True}}]}, {"markdown_extensions": [{"toc": {"permalink": True}}]})
    assert merged["markdown_extensions"] == [{"toc": {"permalink": True}}, {"pymdownx.arithmatex": {"generic": True}}]


def test_extra_javascript_appends():
    merged = merge({"extra_javascript": ["a.js"]}, {"extra_javascript": ["b.js", "a.js"]})
    assert merged["extra_javascript"] == ["a.js", "b.js"]


def test_engine_tags_carried_through(tmp_path):
    path = tmp_path / "mkdocs.yml"
    path.write_text(
        "site_name: !ENV [SITE, x]\n"
        "markdown_extensions:\n"
        "  - pymdownx.emoji:\n"
        "      emoji_index: !!python/name:material.extensions.emoji.twemoji\n",
        encoding="utf-8",
    )
    config = load_user_config(path)
    assert config["site_name"] == Tagged("!ENV", ["SITE", "x"])


def test_layout_is_not_a_setting(maker):
    (maker.root / "mkdocs.yml").write_text("site_name: S\ndocs_dir: elsewhere\nsite_dir: /tmp/x\n", encoding="utf-8")
    path = write_engine_config(maker.project, maker.root / "site", drafts=False)
    written = path.read_text(encoding="utf-8")
    assert "!!python" not in written
    config = yaml.safe_load(written)
    assert config["docs_dir"] == "site_src" and config["site_dir"] == "site"
    assert config["site_name"] == "S"


def test_tags_written_back_verbatim(maker):
    (maker.root / "mkdocs.yml").write_text(
        "markdown_extensions:\n  - pymdownx.emoji:\n      emoji_index: !!python/name:material.extensions.emoji.twemoji\n",
        encoding="utf-8",
    )
    written = write_engine_config(maker.project, maker.root / "site", drafts=False).read_text(encoding="utf-8")
    assert "emoji_index: !!python/name:material.extensions.emoji.twemoji" in written
