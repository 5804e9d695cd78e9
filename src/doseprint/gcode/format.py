"""Number formatting for G-code: fixed decimals, trailing zeros trimmed, mm/s -> mm/min.

Stable formatting is what makes golden G-code files comparable as text.
"""

from __future__ import annotations

from doseprint.tolerances import tol


def num(value: float, decimals: int) -> str:
    """``value`` with at most ``decimals`` decimals and no trailing zeros (``-0`` -> ``0``)."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def xyz(value_mm: float) -> str:
    return num(value_mm, tol.xyz_decimals)


def e(value_mm: float) -> str:
    return num(value_mm, tol.e_decimals)


def feed(speed_mm_s: float) -> str:
    """A feed rate for ``F``: G-code takes mm/min, doseprint speaks mm/s."""
    return num(speed_mm_s * 60.0, 0)
