"""What the site step writes for the engine: golden post page, excerpts, previous and next
links, tag pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studylog.logs.check import check_project
from studylog.site.build import generate
from studylog.site.labcards import card
from studylog.site.labpages import LabState
from studylog.site.posts import EXCERPT, post_foot, post_page, render_pages, with_excerpt

GOLDEN = Path(__file__).parent / "golden"


def test_post_page_matches_golden(maker):
    maker.lab("ring")
    maker.log(
        "2026-03-01-ring-notes.md",
        """
        title: "Ring <b>all-reduce</b> & friends"
        date: 2026-03-01 09:30:00 +0100
        tags: rl allreduce
        math: true
        labs: [ring]
        layout: post
        description: 'Costs, "quoted"'
        comments: true
        authors: [someone]
        """,
        "First paragraph with $x$.\n\nSecond paragraph.\n",
    )
    result = check_project(maker.project)
    (entry,), (lab,) = result.entries, result.labs
    never_run = LabState(lab, None, None, None, None, (), (), (entry,))
    page = post_page(entry, post_foot([card(never_run)], None, None))
    golden = GOLDEN / "post_page.md"
    assert page == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "body, expected",
    [
        ("One.\n\nTwo.\n", f"One.\n\n{EXCERPT}\n\nTwo."),
        ("# Heading\n\nOne.\n\nTwo.", f"# Heading\n\nOne.\n\n{EXCERPT}\n\nTwo."),
        ("```\ncode\n\nmore\n```\n\nAfter.", f"```\ncode\n\nmore\n```\n\n{EXCERPT}\n\nAfter."),
        ("Only one paragraph.\n", "Only one paragraph.\n"),
        (f"One.\n\n{EXCERPT}\n\nTwo.\n\nThree.", f"One.\n\n{EXCERPT}\n\nTwo.\n\nThree."),
    ],
)
def test_excerpt_is_the_first_paragraph_unless_marked(body, expected):
    assert with_excerpt(body) == expected


def test_previous_and_next_follow_the_published_entries_by_date(maker):
    maker.log("2026-03-01-a.md", "title: A")
    maker.log("2026-03-02-draft.md", "title: Draft\ndraft: true")
    # The blog orders by the wall-clock time as written: C (08:00) after D (07:00), though
    # D is the later instant; the links follow the blog.
    maker.log("2026-03-02-c.md", "title: C [1] *x* `y` $5 <b>\ndate: 2026-03-02 08:00:00 +05:00")
    maker.log("2026-03-02-d.md", "title: D\ndate: 2026-03-02 07:00:00 -03:00")
    maker.log("2099-01-01-future.md", "title: Future")
    generate(maker.project)
    posts = maker.root / "site_src" / "posts"

    def links(name):
        return re.findall(r"^(?:← )?(Previous|Next): \[(.*?)\]\((.*?)\)", (posts / name).read_text(encoding="utf-8"), re.M)

    c = "C &#91;1&#93; &#42;x&#42; &#96;y&#96; &#36;5 &lt;b&gt;"  # Markdown, math and HTML all stay text
    assert links("2026-03-01-a.md") == [("Next", "D", "2026-03-02-d.md")]
    assert links("2026-03-02-d.md") == [("Previous", "A", "2026-03-01-a.md"), ("Next", c, "2026-03-02-c.md")]
    assert links("2026-03-02-c.md") == [("Previous", "D", "2026-03-02-d.md")]
    assert sorted(p.name for p in posts.glob("*.md")) == ["2026-03-01-a.md", "2026-03-02-c.md", "2026-03-02-d.md"]
    page = (posts / "2026-03-01-a.md").read_text(encoding="utf-8")
    assert page.index(EXCERPT) < page.index("Next:")  # a one-paragraph entry's listing stops before its foot
    generate(maker.project, drafts=True, future=True)
    assert links("2026-03-02-d.md")[0] == ("Previous", "Draft", "2026-03-02-draft.md")
    assert links("2026-03-02-c.md")[1] == ("Next", "Future", "2099-01-01-future.md")


def test_tag_pages_one_listing_each(maker):
    maker.log("2026-03-01-a.md", "title: A\ndate: 2026-03-01\ntags: [RL, rl, x]")
    maker.log("2026-03-02-b.md", "title: B\ndate: 2026-03-02\ntags: [x]")
    pages = render_pages(list(check_project(maker.project).entries), [], maker.root, maker.root / "plots")
    tags = sorted(p for p in pages if p.startswith("tags/"))
    assert tags == ["tags/index.md", "tags/rl-2.md", "tags/rl.md", "tags/x.md"]
    assert '<!-- material/tags {"include": ["x"]} -->' in pages["tags/x.md"]
    assert "- [x](x.md) (2)" in pages["tags/index.md"]
