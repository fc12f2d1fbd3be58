"""A lab page read in a browser: the answer first, printed output as printed, figures that
open full size with their captions, harness code folded until asked for."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture
def lab_page(watched, site):
    return watched.open(site + "labs/plotter/")


def test_the_page_leads_with_the_answer(lab_page):
    text = lab_page.locator("article").inner_text()
    assert text.index("ok · profile full") < text.index("At a glance") < text.index("the answer") < text.index("zebrafinch")
    assert lab_page.locator("table.studylog-glance td[title='answer']").inner_text() == "the answer"
    assert lab_page.locator("table.studylog-glance td.studylog-value").inner_text() == "42 units"


def test_printed_lines_are_one_block_as_printed(lab_page):
    blocks = [t.strip() for t in lab_page.locator("article pre").all_inner_texts()]
    printed = [t for t in blocks if "row 0" in t and not t.startswith("from studylog")]  # not the code
    assert printed == ["zebrafinch appears only in this lab\nrow 0\nrow 1\nrow 2"]


def test_a_figure_has_its_caption_and_opens_full_size(lab_page):
    figure = lab_page.locator("article figure").filter(has=lab_page.locator("img"))
    assert figure.locator("figcaption").inner_text() == "Figure 1: A curve, captioned"
    figure.locator("a.glightbox").click()
    slide = lab_page.locator(".gslide.current img")
    slide.wait_for(state="visible", timeout=5_000)
    assert slide.evaluate("img => img.naturalWidth") > 0
    assert "Figure 1: A curve, captioned" in lab_page.locator(".gslide.current").inner_text()
    lab_page.keyboard.press("Escape")
    lab_page.locator(".glightbox-container").wait_for(state="detached", timeout=5_000)


def test_harness_code_is_folded_until_opened(lab_page):
    folded = lab_page.locator("article details").filter(has_text="okapi harness")
    assert folded.count() == 1 and folded.get_attribute("open") is None
    assert not folded.locator("pre").first.is_visible()
    assert lab_page.locator("article pre").filter(has_text="okapi harness ran").is_visible()  # its output shows
    folded.locator("summary").click()
    assert folded.locator("pre").first.is_visible()
