"""The published site in a real browser: Debian's chromium driven by Playwright.

The fixture project of browser_fixtures.py, built and served on 127.0.0.1 once; every page the tests open
has its requests checked (nothing may leave 127.0.0.1: anything else is blocked and
reported), its console watched for errors, and dialogs caught (none may open).
Screenshots go to .studylog/test-artifacts/ (or $STUDYLOG_TEST_ARTIFACTS).
"""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from browser_fixtures import ARTIFACTS, HOSTILE, Watched

pytestmark = pytest.mark.browser


def search(page, word: str) -> list[str]:
    """Type into the search box (key by key: the theme searches on key events); result links."""
    page.locator(".md-search__input").click()
    page.locator(".md-search__input").press_sequentially(word, delay=20)
    page.wait_for_selector(".md-search-result__item", timeout=15_000)
    return page.eval_on_selector_all(".md-search-result__item a", "els => els.map(e => e.href)")


def titles(page) -> list[str]:
    return [t.strip() for t in page.locator("article.md-post h2").all_inner_texts()]


def test_home_lists_the_latest_logs_newest_first_without_drafts(watched, site):
    page = watched.open(site)
    assert titles(page) == ["Cites a paper", HOSTILE, "Math entry", "First entry"]
    assert "Hidden draft" not in page.content()


def test_archive_and_tag_pages_list_the_right_entries(watched, site):
    page = watched.open(site + "archive/2026/")
    assert {HOSTILE, "Math entry", "First entry"} <= set(titles(page)) <= {HOSTILE, "Math entry", "First entry", "Cites a paper"}
    page = watched.open(site + "tags/alpha/")
    text = page.locator("article").inner_text()
    assert "First entry" in text and "Math entry" not in text and "Hidden draft" not in text


def test_log_page_shows_title_date_tags_lab_links_and_every_link_resolves(watched, site):
    page = watched.open(site + "2026/03/01/first/")
    assert page.locator("h1").first.inner_text().strip() == "First entry"
    body = page.locator("main").inner_text()
    assert "March 1, 2026" in body and "alpha" in body
    lab_link = page.locator("a[href*='labs/plotter']").first
    assert lab_link.count() == 1
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    internal = {h.split("#")[0] for h in hrefs if h.startswith(site)}
    assert len(internal) > 5
    for href in sorted(internal):
        assert watched.page.request.get(href).status == 200, href
    lab_link.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/labs/plotter/")


def test_math_renders_offline(watched, site):
    page = watched.open(site + "2026/03/02/math/")
    page.wait_for_selector("mjx-container", timeout=15_000)
    assert page.locator("mjx-container").count() >= 2  # the inline and the display formula
    assert "$$" not in page.locator("article").inner_text()


def test_lab_page_banner_metrics_code_plots_history_backlinks_downloads(watched, site):
    page = watched.open(site + "labs/plotter/")
    article = page.locator("article")
    assert "ok · profile full" in article.inner_text()
    assert page.locator("table.studylog-glance:has-text('the answer')").count() == 1
    assert page.locator("article pre").filter(has_text="plt.plot").count() >= 1  # the code, as a code block
    images = page.eval_on_selector_all("article img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
    sources = [src for src, _ in images]
    assert "history.png" in sources and any(src.startswith("output_") for src in sources)
    assert all(width > 0 for _, width in images), images
    assert "Logs that cite this lab" in article.inner_text() and page.locator("a:has-text('First entry')").count() == 1
    for name in ("plotter.ipynb", "plotter.py"):
        response = watched.page.request.get(site + "labs/plotter/" + name)
        assert response.status == 200 and len(response.body()) > 100, name


@pytest.mark.parametrize("word, where", [("zebrafinch", "labs/plotter/"), ("quokka", "2026/03/01/first/")])
def test_search_finds_a_word_that_only_one_page_has(watched, site, word, where):
    links = search(watched.open(site), word)
    assert links and all(where in link for link in links), links


@pytest.mark.parametrize("path", ["", "2026/03/03/hostile/", "tags/", "archive/2026/", "labs/", "labs/plotter/"])
def test_hostile_titles_tags_and_summaries_stay_text(watched, site, path):
    page = watched.open(site + path)
    injected = page.evaluate("""() => document.querySelectorAll('img[src="x"], img[src="y"]').length
        + [...document.querySelectorAll('script')].filter(s => s.textContent.includes('alert(2)')).length
        + [...document.querySelectorAll('article b')].filter(b => b.textContent === 'bold').length""")
    assert injected == 0


def test_hostile_title_stays_text_in_search_results_and_the_feed(watched, site):
    page = watched.open(site)
    assert any("hostile" in link for link in search(page, "hostile"))
    assert page.evaluate("""() => document.querySelectorAll('img[src="x"], img[src="y"]').length""") == 0
    feed = watched.page.request.get(site + "feed_rss_created.xml").text()
    titles = [item.findtext("title") for item in ElementTree.fromstring(feed).iter("item")]
    assert HOSTILE in titles and "<img src=x" not in feed


@pytest.mark.parametrize("name, path", [("home", ""), ("log", "2026/03/01/first/"), ("labs", "labs/"), ("lab", "labs/plotter/")])
@pytest.mark.parametrize("device, width, height", [("desktop", 1280, 800), ("phone", 390, 844)])
def test_screenshots_and_no_horizontal_scroll_on_a_phone(browser, site, name, path, device, width, height):
    watched = Watched(browser, width, height)
    page = watched.open(site + path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{device}.png"), full_page=True)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    watched.close()
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
