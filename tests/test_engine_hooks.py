"""The MkDocs hook that keeps blog builds linear must not change what is built."""

from __future__ import annotations

import filecmp
import importlib.util
import inspect
import subprocess
import sys
from importlib.resources import files

import yaml
from mkdocs.structure.files import File
from material.plugins.blog.plugin import BlogPlugin
from mkdocs.structure.pages import Page

from studylog.site.build import generate
from studylog.site.engine_config import write_engine_config
from test_build import fixture_project

HOOK = files("studylog.site") / "engine_hooks" / "mkdocs_blog_posts.py"


def load_hook():
    spec = importlib.util.spec_from_file_location("studylog_hook_under_test", str(HOOK))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plugin_still_has_the_shape_the_hook_assumes():
    source = inspect.getsource(BlogPlugin)
    assert "page not in self.blog.posts" in source
    assert "self.file == other.file" in inspect.getsource(Page.__eq__)
    assert "__eq__" not in File.__dict__, "File gained __eq__: page equality is no longer file identity"


def test_identity_membership_agrees_with_the_scan(tmp_path):
    hook = load_hook()
    config = {"use_directory_urls": True}
    pages = []
    for i, title in enumerate(["Same", "Same", "Other"]):
        page = Page(title, File(f"p{i}.md", str(tmp_path), str(tmp_path / "out"), True), config)
        page.markdown, page.meta = "", {"title": title}
        pages.append(page)
    posts, others = pages[:2], pages[2:] + [Page("Same", File("x.md", str(tmp_path), str(tmp_path), True), config)]
    fast = hook._PostList(posts)
    for page in pages + others + [None, "Same"]:
        assert (page in fast) == (page in list(posts)), page
    fast.append(others[0])
    assert others[0] in fast


def test_hook_changes_no_built_page(maker, tmp_path):
    fixture_project(maker)
    generate(maker.project)
    outputs = {}
    for with_hook in (True, False):
        config_path = write_engine_config(maker.project, maker.root / f"out-{with_hook}", drafts=False)
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        if not with_hook:
            config.pop("hooks")
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-f", str(config_path)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        outputs[with_hook] = maker.root / f"out-{with_hook}"
    # The feeds carry their build time; everything else must match byte for byte.
    stamped = ["sitemap.xml.gz", "feed_rss_created.xml", "feed_rss_updated.xml", "feed_json_created.json", "feed_json_updated.json"]
    compare = filecmp.dircmp(outputs[True], outputs[False], ignore=stamped)

    def differences(cmp) -> list[str]:
        found = cmp.left_only + cmp.right_only + cmp.diff_files
        return found + [d for sub in cmp.subdirs.values() for d in differences(sub)]

    assert differences(compare) == []


def test_the_metadata_hook_gives_the_blog_plugin_libyaml():
    import yaml
    from material.plugins.blog import structure

    assert structure.SafeLoader in (yaml.SafeLoader, yaml.CSafeLoader)  # the name the hook replaces
    path = files("studylog.site") / "engine_hooks" / "mkdocs_blog_metadata.py"
    spec = importlib.util.spec_from_file_location("studylog_metadata_hook_under_test", str(path))
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert structure.SafeLoader is yaml.CSafeLoader
