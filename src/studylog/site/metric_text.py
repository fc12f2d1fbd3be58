"""A recorded metric in words, for readers: its description, its value with sensible digits
and its unit, the spread when the lab recorded one, and how it moved since the previous run.

Labs record raw figures (`record("ppo_vs_cleanrl_time_to_450", 0.7746, "x", "distrl PPO /
CleanRL ...")`); pages show "0.775×". Three significant digits: the labs' spreads are wider
than the fourth.
"""

from __future__ import annotations

import math
from typing import Any

SIGNIFICANT = 3
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
# Units written the way a reader expects them; any other unit is shown as recorded.
UNIT_TEXT = {"x": "×", "us": "µs", "%": "%"}


def number(value: float) -> str:
    """`value` to three significant digits (8,351 · 27.3 · 0.249 · 2.98 × 10⁻⁷), a whole number whole."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if value == int(value) and abs(value) < 1e9:  # a count or a size: as it is
        return f"{int(value):,}"
    exponent = math.floor(math.log10(abs(value)))
    if exponent < -3 or exponent >= 9:
        mantissa = f"{value / 10 ** exponent:.{SIGNIFICANT - 1}f}".rstrip("0").rstrip(".")
        return f"{mantissa} × 10{str(exponent).translate(SUPERSCRIPT)}"
    decimals = max(SIGNIFICANT - 1 - exponent, 0)
    rounded = round(value, decimals)
    if decimals == 0:
        return f"{rounded:,.0f}"
    return f"{rounded:,.{decimals}f}"


def with_unit(value: float, unit: str) -> str:
    """A value and its unit as one phrase: "0.775×", "8,351 steps/s", "24.9 %"."""
    if unit == "fraction":
        return f"{number(value * 100)} %"
    text = UNIT_TEXT.get(unit, unit)
    if text == "×":
        return f"{number(value)}×"
    return f"{number(value)} {text}".rstrip()


def spread(metric: dict[str, Any]) -> str:
    """The range the lab recorded around the value ("range 2.1–3.9 s"), or ""."""
    low_high = metric.get("spread")
    if not low_high:
        return ""
    low, high = low_high
    if number(low) == number(high):
        return ""  # every repeat gave the value as shown: a range would repeat it
    unit = metric.get("unit", "")
    if unit == "fraction":
        return f"range {number(low * 100)}–{number(high * 100)} %"
    text = UNIT_TEXT.get(unit, unit)
    return f"range {number(low)}–{number(high)}{'' if text == '×' else ' '}{text}".rstrip()


def moved(metric: dict[str, Any], before: float | None) -> str:
    """A marker for a figure that moved since the previous run: "▲ from 2.11×", or ""."""
    if before is None:
        return ""
    arrow = "▲" if metric["value"] > before else "▼"
    return f"{arrow} from {with_unit(before, metric.get('unit', ''))}"


def label(name: str, metric: dict[str, Any]) -> str:
    """What the figure is, in the lab's words; its identifier when it has no description."""
    return metric.get("description") or name
