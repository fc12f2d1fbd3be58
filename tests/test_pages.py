"""What the site step writes for the engine: golden post page, excerpts, tag pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from studylog.logs.check import check_project
from studylog.site.posts import EXCERPT, post_page, render_pages, with_excerpt

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
    (entry,) = check_project(maker.project).entries
    page = post_page(entry)
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


def test_tag_pages_one_listing_each(maker):
    maker.log("2026-03-01-a.md", "title: A\ndate: 2026-03-01\ntags: [RL, rl, x]")
    maker.log("2026-03-02-b.md", "title: B\ndate: 2026-03-02\ntags: [x]")
    pages = render_pages(list(check_project(maker.project).entries), [], maker.root, maker.root / "plots")
    tags = sorted(p for p in pages if p.startswith("tags/"))
    assert tags == ["tags/index.md", "tags/rl-2.md", "tags/rl.md", "tags/x.md"]
    assert '<!-- material/tags {"include": ["x"]} -->' in pages["tags/x.md"]
    assert "- [x](x.md) (2)" in pages["tags/index.md"]
