"""`record` refuses figures a page could not show honestly."""

from __future__ import annotations

import json

import pytest

from studylog.record import METRICS_ENV, record, record_median


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
