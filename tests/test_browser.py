"""The published site in a real browser: Debian's chromium driven by Playwright.

One fixture project (logs with math, a draft, a hostile title; a lab with a plot, a metric
and a history of two runs) is run, built and served on 127.0.0.1; every page the tests open
has its requests checked (nothing may leave 127.0.0.1: anything else is blocked and
reported), its console watched for errors, and dialogs caught (none may open).
Screenshots go to .studylog/test-artifacts/ (or $STUDYLOG_TEST_ARTIFACTS).
"""

from __future__ import annotations

import functools
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse
from xml.etree import ElementTree

import pytest

from conftest import ProjectMaker, lab_source
from studylog.logs.check import check_project
from studylog.labs.runner import run_labs
from studylog.site.build import build

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("STUDYLOG_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / ".studylog" / "test-artifacts"))
HOSTILE = "<img src=x onerror=alert(1)>"

LAB = """import matplotlib.pyplot as plt
from studylog import record
plt.plot([1, 2, 3], [n, 1, n])
plt.title("a curve")
plt.show()
record("answer", 40 + n, "units", "the answer")
print("zebrafinch appears only in this lab")"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    maker = ProjectMaker(tmp_path_factory.mktemp("browser") / "proj")
    maker.lab("plotter", lab_source(title="Plotter lab", summary="Draws a curve <b>bold</b>", body=LAB,
                                    parameters="n = 2  # height", profiles="quick:\n  n: 1\nfull:\n  n: 2"))
    maker.log("2026-03-01-first.md", "title: First entry\ndate: 2026-03-01\ntags: [alpha]\nlabs: [plotter]",
              "Quokka appears only in this log.\n")
    maker.log("2026-03-02-math.md", "title: Math entry\ndate: 2026-03-02\ntags: [beta]\nmath: true",
              "Inline $a^2+b^2$ and\n\n$$\nT = 2(n-1)\\alpha\n$$\n")
    maker.log("2026-03-03-hostile.md", f"title: '{HOSTILE}'\ndate: 2026-03-03\ntags: ['<script>alert(2)</script>']\n"
              "description: '<img src=y onerror=alert(3)>'", "Body of the hostile entry.\n")
    maker.log("2026-03-04-draft.md", "title: Hidden draft\ndate: 2026-03-04\ndraft: true", "Draft.\n")
    project = maker.project
    (lab,) = check_project(project).labs
    for _ in range(2):  # two full runs: the lab page then draws its metric's history
        (outcome,) = run_labs(project, [lab], profile="full", force=True)
        assert outcome.status == "ok", outcome.error
    build(project)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(maker.root / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: `make test` installs Debian's chromium"
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Watched:
    """A page whose outside requests are blocked and recorded, with console errors and dialogs."""

    def __init__(self, browser, width=1280, height=800):
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.outside, self.errors, self.dialogs = [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _route(self, route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open(self, url):
        response = self.page.goto(url, wait_until="networkidle")
        assert response.status == 200, url
        return self.page

    def close(self):
        self.context.close()
        assert self.outside == [], f"requests outside 127.0.0.1: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"


@pytest.fixture
def watched(browser):
    w = Watched(browser)
    yield w
    w.close()


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
    assert titles(page) == [HOSTILE, "Math entry", "First entry"]
    assert "Hidden draft" not in page.content()


def test_archive_and_tag_pages_list_the_right_entries(watched, site):
    page = watched.open(site + "archive/2026/")
    assert set(titles(page)) == {HOSTILE, "Math entry", "First entry"}
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
    assert page.locator("table:has-text('answer')").count() == 1
    assert page.locator("article pre").filter(has_text="plt.plot").count() >= 1  # the code, as a code block
    images = page.eval_on_selector_all("article img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
    sources = [src for src, _ in images]
    assert any(src.startswith("history-") for src in sources) and any(src.startswith("output_") for src in sources)
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


@pytest.mark.parametrize("name, path", [("home", ""), ("log", "2026/03/01/first/"), ("lab", "labs/plotter/")])
@pytest.mark.parametrize("device, width, height", [("desktop", 1280, 800), ("phone", 390, 844)])
def test_screenshots_and_no_horizontal_scroll_on_a_phone(browser, site, name, path, device, width, height):
    watched = Watched(browser, width, height)
    page = watched.open(site + path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{device}.png"), full_page=True)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    watched.close()
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
