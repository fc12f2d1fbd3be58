"""`record` refuses figures a page could not show honestly."""

from __future__ import annotations

import json

import pytest

from studylog.record import METRICS_ENV, environments, record, record_environment, record_median


def test_a_spread_is_written_with_the_figure(tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(METRICS_ENV, str(target))
    record("time_s", 2.5, "s", "median of 5 seeds", spread=(1.75, 4))
    record("plain", 1, "x")
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["spread"] == [1.75, 4.0]
    assert lines[1]["spread"] is None


@pytest.mark.parametrize("spread", [(3.0, 4.0), (1.0, 2.0), (4.0, 1.0), (1.0, float("nan")), (float("-inf"), 3.0)])
def test_a_spread_must_hold_the_value_and_be_finite(spread, monkeypatch):
    monkeypatch.delenv(METRICS_ENV, raising=False)
    with pytest.raises(ValueError, match="time_s"):
        record("time_s", 2.5, "s", spread=spread)


def test_names_must_be_identifiers_and_values_finite(monkeypatch):
    monkeypatch.delenv(METRICS_ENV, raising=False)
    with pytest.raises(ValueError, match="identifier"):
        record("time s", 1.0, "s")
    with pytest.raises(ValueError, match="finite"):
        record("time_s", float("inf"), "s")


def test_record_median_keeps_the_range_of_the_samples(tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(METRICS_ENV, str(target))
    record_median("steps", [5, 1, 4, 2], "steps", "median of 4 seeds")
    (line,) = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert (line["value"], line["spread"]) == (3.0, [1.0, 5.0])
    with pytest.raises(ValueError, match="no samples"):
        record_median("steps", [], "steps")


def test_an_environment_is_written_beside_the_figures(tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(METRICS_ENV, str(target))
    record_environment("ray", {"summary": "a Ray cluster: 2 nodes", "nodes": 2, "per_node": [{"cpus": 2.0}] * 2})
    record("plain", 1, "x")
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"environment": "ray", "facts": {"summary": "a Ray cluster: 2 nodes", "nodes": 2,
                                                         "per_node": [{"cpus": 2.0}, {"cpus": 2.0}]}}
    assert environments["ray"]["nodes"] == 2 and lines[1]["name"] == "plain"


@pytest.mark.parametrize("name, facts, message", [
    ("ray cluster", {"summary": "s"}, "identifier"),
    ("ray", {}, "summary"),
    ("ray", {"summary": "  "}, "summary"),
    ("ray", {"summary": "s", "nodes": 0}, "nodes"),
    ("ray", {"summary": "s", "nodes": 2.0}, "nodes"),
    ("ray", {"summary": "s", "nodes": True}, "nodes"),
    ("ray", {"summary": "s", "when": object()}, "JSON"),
    ("ray", {"summary": "s", "load": float("nan")}, "JSON"),
])
def test_an_environment_a_page_could_not_show_is_refused(name, facts, message, tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(METRICS_ENV, str(target))
    with pytest.raises(ValueError, match=message):
        record_environment(name, facts)
    assert not target.exists()  # nothing half-written
