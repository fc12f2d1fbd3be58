"""Papers and study days as a reader meets them, in chromium: a citation leads to the paper's
page, the paper's page leads back to the entries citing it, the home page's calendar leads to
the day's entries; at desktop and phone width, without sideways scrolling."""

from __future__ import annotations

import pytest

from browser_fixtures import ARTIFACTS, RECENT, Watched, follow

pytestmark = pytest.mark.browser


def test_a_citation_leads_to_the_paper_and_its_trail_back(watched, site):
    page = watched.open(site + f"{RECENT:%Y/%m/%d}/cites/")
    article = page.locator("article")
    assert "As Liang et al. (2018) argue (see also 2018, p. 2)." in article.inner_text()
    references = article.locator("h2:has-text('References') + ul li")
    assert references.count() == 1 and "Eric Liang, Richard Liaw, and Robert Nishihara" in references.inner_text()
    assert follow(page, article.locator("a", has_text="Liang et al.").first) == "/papers/liang2018/"
    paper = page.locator("article")
    assert "RLlib: Abstractions for Distributed Reinforcement Learning" in page.locator("h1").inner_text()
    assert paper.locator("a[href='https://arxiv.org/abs/1712.09381']").count() == 1
    paper.locator("summary", has_text="Abstract").click()
    assert paper.locator("details", has_text="An abstract about abstractions.").is_visible()
    assert follow(page, paper.locator("li", has_text="log:").locator("a")) == f"/{RECENT:%Y/%m/%d}/cites/"


def test_papers_are_in_the_nav_and_the_reading_list_counts_citations(watched, site):
    page = watched.open(site)
    assert follow(page, page.locator(".md-nav--primary a", has_text="Papers")) == "/papers/"
    item = page.locator("article li", has_text="RLlib")
    assert "last cited" in item.inner_text() and "1 log · 0 labs" in item.inner_text()
    assert follow(page, item.locator("a")) == "/papers/liang2018/"


@pytest.mark.parametrize("width, shown, hidden", [(1280, "year", "half"), (390, "half", "year")])
def test_the_home_calendar_links_a_study_day_to_its_entries(browser, site, width, shown, hidden):
    watched = Watched(browser, width=width, height=900)
    try:
        page = watched.open(site)
        assert page.locator(f"svg.studylog-calendar-{shown}").is_visible()
        assert not page.locator(f"svg.studylog-calendar-{hidden}").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        cell = page.locator(f"svg.studylog-calendar-{shown} a[href$='#d-{RECENT}'] rect")
        box = cell.bounding_box()
        assert box["width"] >= 10, box  # a square a finger can find
        assert "current streak" in page.locator(".studylog-calendar-summary").inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator(".studylog-calendar").screenshot(path=str(ARTIFACTS / f"calendar-{width}.png"))
        assert follow(page, cell) == "/calendar/"
        assert page.evaluate("location.hash") == f"#d-{RECENT}"
        day = page.locator("p", has=page.locator(f"a[id='d-{RECENT}']"))
        assert follow(page, day.locator("a", has_text="Cites a paper")) == f"/{RECENT:%Y/%m/%d}/cites/"
    finally:
        watched.close()
