"""`record`: how a lab reports its headline figures.

Inside `studylog run`, each call appends one JSON line to the file named by the
STUDYLOG_METRICS environment variable, which the runner stores with the executed notebook.
In a plain Jupyter session the variable is unset and the figure is only kept in memory, so a
learner can run a lab unchanged. `record_environment` reports, the same way, where the run
ran beyond the machine studylog describes itself (a cluster the lab connected to). This module imports nothing else of studylog, so a lab that
imports it depends on this file alone.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

METRICS_ENV = "STUDYLOG_METRICS"


@dataclass(frozen=True)
class Metric:
    """One named figure with its unit, e.g. Metric("ring_busbw_64mb_n4", 3.2, "GB/s")."""

    name: str
    value: float
    unit: str
    description: str = ""
    spread: tuple[float, float] | None = None


recorded: list[Metric] = []
environments: dict[str, dict] = {}


def record(
    name: str, value: float, unit: str, description: str = "", spread: tuple[float, float] | None = None
) -> None:
    """Record a headline figure of this lab run (returns nothing, so a notebook shows nothing).

    `spread` is the lowest and the highest of the repeats the value summarises (seeds, trials),
    so a reader sees how far one run can land from the median: pages show it as "range low–high".
    """
    if not name.isidentifier():
        raise ValueError(f"metric name {name!r} must be an identifier (letters, digits, _)")
    number = _finite(name, value)
    low_high = None
    if spread is not None:
        low, high = (_finite(name, bound) for bound in spread)
        if not low <= number <= high:
            raise ValueError(f"metric {name!r}: spread ({low}, {high}) must run from the lowest "
                             f"to the highest repeat, around the value {number}")
        low_high = (low, high)
    metric = Metric(name, number, unit, description, low_high)
    recorded.append(metric)
    _append(asdict(metric))


def record_environment(name: str, facts: Mapping[str, object]) -> None:
    """Record where this run ran, beyond the machine studylog describes by itself: a cluster
    the lab connected to, say. `facts["summary"]` is the line the lab page shows under
    `name`; `facts["nodes"]`, the number of machines (or nodes) in what the run ran on,
    puts "cluster of N nodes" in the page's banner when above 1, so that a result measured
    on a cluster is not read as one machine's. Everything else in `facts` is stored with
    the run as given (JSON values only). A later call with the same name replaces the
    earlier one."""
    if not name.isidentifier():
        raise ValueError(f"environment name {name!r} must be an identifier (letters, digits, _)")
    summary, nodes = facts.get("summary"), facts.get("nodes", 1)
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError(f"environment {name!r}: facts need a 'summary', the line the lab page shows")
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        raise ValueError(f"environment {name!r}: 'nodes' must be a whole number of at least 1, not {nodes!r}")
    try:
        item = json.loads(json.dumps({"environment": name, "facts": dict(facts)}, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"environment {name!r}: facts must be JSON values ({error})") from None
    environments[name] = item["facts"]  # as the record will hold them (tuples become lists)
    _append(item)


def _append(item: dict) -> None:
    target = os.environ.get(METRICS_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(item) + "\n")


def record_median(name: str, samples: Iterable[float], unit: str, description: str = "") -> None:
    """Record the median of repeated measurements (seeds, trials), with their range as the spread
    (none for a single sample, which has no range)."""
    values = [float(v) for v in samples]
    if not values:
        raise ValueError(f"metric {name!r}: no samples to take the median of")
    spread = (min(values), max(values)) if len(values) > 1 else None
    record(name, statistics.median(values), unit, description, spread=spread)


def _finite(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"metric {name!r} is {number}; record finite values only")
    return number
