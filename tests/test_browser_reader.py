"""Finding one's way as a reader, in chromium: the labs from the nav, lab cards on the labs
index and at the foot of a log, previous and next links between logs, the light/dark toggle.
The fixture project (browser_fixtures.py) has an author's nav that leaves out the labs."""

from __future__ import annotations

import pytest

from browser_fixtures import HOSTILE, RECENT, follow

pytestmark = pytest.mark.browser


def test_every_lab_is_two_clicks_from_home_through_the_nav_and_its_card(watched, site):
    page = watched.open(site)
    assert follow(page, page.locator(".md-nav--primary a", has_text="Labs")) == "/labs/"
    cards = page.locator(".grid.cards > ul > li")
    assert cards.count() == 1  # one card per lab: the fixture has one
    card = cards.first.inner_text()
    assert "Draws a curve <b>bold</b>" in card and "the answer: 42 units" in card and "status: ok" in card
    assert follow(page, cards.first.locator("a", has_text="Plotter lab")) == "/labs/plotter/"


def test_a_log_ends_with_its_labs_cards_then_previous_and_next_through_the_published_logs(watched, site):
    page = watched.open(site + "2026/03/01/first/")
    card = page.locator("article .grid.cards > ul > li")
    assert card.count() == 1 and "the answer: 42 units" in card.inner_text()
    assert card.locator("a").evaluate("a => new URL(a.href).pathname") == "/labs/plotter/"
    assert page.locator("article p", has_text="Previous:").count() == 0  # the oldest
    assert follow(page, page.locator("article p", has_text="Next:").locator("a")) == "/2026/03/02/math/"
    assert follow(page, page.locator("article p", has_text="Next:").locator("a")) == "/2026/03/03/hostile/"
    # The draft after it is left out: next is the newest, the recent entry.
    assert follow(page, page.locator("article p", has_text="Next:").locator("a")) == f"/{RECENT:%Y/%m/%d}/cites/"
    assert page.locator("article p", has_text="Next:").count() == 0
    previous = page.locator("article p", has_text="Previous:").locator("a")
    assert previous.inner_text() == HOSTILE
    assert follow(page, previous) == "/2026/03/03/hostile/"
    assert page.locator("article p", has_text="Previous:").locator("a").inner_text() == "Math entry"


def test_the_palette_toggle_switches_light_and_dark_and_starts_from_the_system(watched, site):
    page = watched.open(site)

    def scheme() -> str:
        return page.evaluate("document.body.getAttribute('data-md-color-scheme')")

    assert scheme() == "default"
    page.locator("label[title='Switch to dark mode']").click()
    assert scheme() == "slate"
    page.locator("label[title='Switch to light mode']").click()
    assert scheme() == "default"
    dark = watched.context.new_page()
    dark.emulate_media(color_scheme="dark")
    dark.goto(site)
    dark.evaluate("localStorage.clear()")  # the toggle's choice is kept; a first visit follows the system
    dark.reload()
    assert dark.evaluate("document.body.getAttribute('data-md-color-scheme')") == "slate"
