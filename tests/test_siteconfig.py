"""The effective engine config: studylog's defaults with the author's settings laid over."""

from __future__ import annotations

import yaml

from studylog.site.build import nav_notes
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


def effective(maker, user_config: str) -> dict:
    (maker.root / "mkdocs.yml").write_text(user_config, encoding="utf-8")
    return yaml.safe_load(write_engine_config(maker.project, maker.root / "site", drafts=False).read_text(encoding="utf-8"))


def test_an_authors_nav_gets_the_tags_and_labs_indexes_it_leaves_out_and_a_note_says_so(maker):
    maker.lab("ring")
    nav = "site_name: S\n\nnav:\n  - Log: index.md\n  - About: about.md\n"
    assert effective(maker, nav)["nav"] == [{"Log": "index.md"}, {"About": "about.md"}, {"Tags": "tags/index.md"},
                                            {"Labs": "labs/index.md"}]
    assert nav_notes(maker.project) == ["mkdocs.yml:3: note: the nav leaves out Tags and Labs; studylog adds them at its end"]
    (maker.root / "labs" / "ring.py").unlink()
    assert effective(maker, nav)["nav"][-1] == {"Tags": "tags/index.md"}  # no labs: no labs index
    assert nav_notes(maker.project) == ["mkdocs.yml:3: note: the nav leaves out Tags; studylog adds it at its end"]


def test_an_authors_nav_with_both_indexes_is_kept_as_written(maker):
    maker.lab("ring")
    nav = [{"Log": "index.md"}, {"Study": [{"Labs": "labs/index.md"}, "tags/index.md"]}, {"About": "about.md"}]
    assert effective(maker, yaml.safe_dump({"nav": nav}))["nav"] == nav
    assert nav_notes(maker.project) == []


def test_without_a_nav_the_default_lists_the_log_pages_tags_and_labs(maker):
    maker.lab("ring")
    (maker.root / "site_src" / "about.md").write_text("# About\n", encoding="utf-8")
    assert effective(maker, "site_name: S\n")["nav"] == [{"Log": "index.md"}, "about.md", {"Tags": "tags/index.md"},
                                                          {"Labs": "labs/index.md"}]
    assert nav_notes(maker.project) == []


def test_palette_toggles_light_and_dark_and_the_authors_colours_apply_to_both(maker):
    palette = effective(maker, "site_name: S\n")["theme"]["palette"]
    assert [(p["scheme"], p["media"]) for p in palette] == [("default", "(prefers-color-scheme: light)"),
                                                            ("slate", "(prefers-color-scheme: dark)")]
    assert all(p["toggle"]["icon"] and p["toggle"]["name"] for p in palette)
    coloured = effective(maker, "theme:\n  palette:\n    primary: teal\n")["theme"]["palette"]
    assert [(p["scheme"], p["primary"]) for p in coloured] == [("default", "teal"), ("slate", "teal")]
    assert all("toggle" in p for p in coloured)
    assert effective(maker, "theme:\n  palette:\n    scheme: slate\n")["theme"]["palette"] == {"scheme": "slate"}
    own = [{"scheme": "default", "primary": "red"}]
    assert effective(maker, yaml.safe_dump({"theme": {"palette": own}}))["theme"]["palette"] == own
