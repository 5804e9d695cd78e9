"""Number formatting for G-code: fixed decimals, trailing zeros trimmed, mm/s -> mm/min;
and the one check every text written into a G-code comment passes.

Stable formatting is what makes golden G-code files comparable as text.
"""

from __future__ import annotations

from doseprint.errors import InputError
from doseprint.models.fields import UNSAFE_IN_LINE, describe_char, show
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


def comment_text(text: str, *, file: str = "job.gcode", key: str = "") -> str:
    """``text`` unchanged, for the inside of a ``;`` comment, once it is proven to stay there.

    A comment runs to the end of its line, so any character that ends a line for some
    reader (``\n``, ``\r``, ``\x0b``, ``\x0c``, ``\x1c``-``\x1e``, ``\x85``, U+2028,
    U+2029) would let the rest of the text be read as a command. Those, every other
    control character and lone surrogates are refused. The readers refuse them in ids and
    names already; this is the writer's own check, beside theirs.

    Raises
    ------
    InputError
        ``text`` holds such a character (``file`` and ``key`` say where it came from).
    """
    found = UNSAFE_IN_LINE.search(text)
    if found is not None:
        raise InputError(f"{show(text)} holds {describe_char(found.group())}, which would "
                         "end a G-code comment", file=file, key=key)
    return text
