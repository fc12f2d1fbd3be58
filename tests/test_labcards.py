"""Lab cards: what a card says about a lab, and that every text on it stays text, as
Python-Markdown with md_in_html (what both engines run) renders them."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import markdown
import pytest

from studylog.labs.lab import Lab
from studylog.site.labcards import card, grid, labs_index
from studylog.site.labpages import LabState

FIGURES = {
    "sample_throughput_1": {"value": 8351.012, "unit": "steps/s", "description": "env steps/s, one worker"},
    "sample_scaling_2": {"value": 1.8758, "unit": "x", "description": "2 workers / 1"},
    "third_figure": {"value": 3.0, "unit": "s", "description": "not a headline"},
}


def state(name="ring", title="Ring", summary="Sums.", metrics=None, failed=False, stale=()) -> LabState:
    lab = Lab(name, Path(f"labs/{name}.py"), title, summary, {})
    good = {"metrics": metrics} if metrics is not None else None
    failure = {"status": "failed"} if failed else None
    return LabState(lab, good, None, failure, None, stale, (), ())


class Parsed(HTMLParser):
    """The elements (tag, attributes) and the text of the HTML that Markdown `source` renders to."""

    def __init__(self, source: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.feed(markdown.markdown(source, extensions=["md_in_html"]))

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


@pytest.mark.parametrize("lab, status", [
    (state(metrics={}), "ok"),
    (state(metrics={}, stale=("labs/ring.py changed",)), "stale"),
    (state(metrics={}, failed=True), "failed"),
    (state(failed=True), "failed"),
    (state(), "not run"),
])
def test_card_status(lab, status):
    assert f"status: {status}</em>" in card(lab)


def test_card_links_the_lab_and_shows_its_first_two_figures_in_words():
    parsed = Parsed(grid([card(state(metrics=FIGURES))]))
    links = [attrs["href"] for tag, attrs in parsed.elements if tag == "a"]
    assert links == ["../labs/ring.md"]  # the engine resolves it to the page
    assert "env steps/s, one worker: 8,351 steps/s" in parsed.text and "2 workers / 1: 1.88×" in parsed.text
    assert "sample_throughput_1" not in parsed.text and "not a headline" not in parsed.text
    assert "Ring" in parsed.text and "Sums." in parsed.text


def test_every_text_on_a_card_is_escaped_once():
    hostile = {"m": {"value": 1.0, "unit": "<u>u</u>", "description": "<script>alert(3)</script> & co"}}
    title = "<img src=x onerror=alert(1)> [*a*](b) `c` $d$ e_f_ I'd"
    lab = state(name="a b", title=title, summary="<b>bold</b> & 'quoted' *x*", metrics=hostile)
    parsed = Parsed(grid([card(lab)]))
    assert {tag for tag, _ in parsed.elements} == {"div", "li", "p", "a", "strong", "hr", "ul", "em"}
    assert title in parsed.text and "<b>bold</b> & 'quoted' *x*" in parsed.text
    assert "<script>alert(3)</script> & co: 1 <u>u</u>" in parsed.text
    assert [attrs["href"] for tag, attrs in parsed.elements if tag == "a"] == ["../labs/a%20b.md"]


def test_labs_index_is_a_grid_of_cards_in_the_order_given():
    page = labs_index([state("b", "Bee"), state("a", "Ay", metrics=FIGURES)])
    assert page.startswith("---\ntitle: Labs\n---\n")
    parsed = Parsed(page.split("---\n", 2)[2])
    assert parsed.elements[1:4] == [("div", {"class": "grid cards"}), ("ul", {}), ("li", {})]
    assert [attrs["href"] for tag, attrs in parsed.elements if tag == "a"] == ["../labs/b.md", "../labs/a.md"]
