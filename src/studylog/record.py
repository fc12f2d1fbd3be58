"""`record`: how a lab reports its headline figures.

Inside `studylog run`, each call appends one JSON line to the file named by the
STUDYLOG_METRICS environment variable, which the runner stores with the executed notebook.
In a plain Jupyter session the variable is unset and the figure is only kept in memory, so a
learner can run a lab unchanged. This module imports nothing else of studylog, so a lab that
imports it depends on this file alone.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

METRICS_ENV = "STUDYLOG_METRICS"


@dataclass(frozen=True)
class Metric:
    """One named figure with its unit, e.g. Metric("ring_busbw_64mb_n4", 3.2, "GB/s")."""

    name: str
    value: float
    unit: str
    description: str = ""


recorded: list[Metric] = []


def record(name: str, value: float, unit: str, description: str = "") -> None:
    """Record a headline figure of this lab run (returns nothing, so a notebook shows nothing)."""
    if not name.isidentifier():
        raise ValueError(f"metric name {name!r} must be an identifier (letters, digits, _)")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"metric {name!r} is {number}; record finite values only")
    metric = Metric(name, number, unit, description)
    recorded.append(metric)
    target = os.environ.get(METRICS_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(metric)) + "\n")
