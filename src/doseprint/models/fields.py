"""Strict reading of one parsed TOML/JSON table: typed keys, ranges, unknown keys.

Every check records a :class:`~doseprint.errors.Problem` naming the file and the key
instead of raising, so a user sees every problem in a file at once.
"""

from __future__ import annotations

import math
import re
import reprlib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from doseprint.errors import Problem

MAX_STR_CHARS = 200
"""Longest string a key takes unless it says otherwise (a name, an id, an API)."""

# Characters that end a line or a G-code comment somewhere (Python's str.splitlines()
# breaks at \x0b, \x0c, \x1c-\x1e, \x85, U+2028 and U+2029 as well as \n and \r) or that
# a terminal acts on: every C0 and C1 control (Unicode category Cc), the line and
# paragraph separators (Zl, Zp), and lone surrogates (Cs: JSON can write them; they
# cannot be encoded as UTF-8). UNSAFE_IN_TEXT allows a line feed and a tab (free text
# such as a note); UNSAFE_IN_LINE allows neither (ids, names, one G-code comment).
_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
UNSAFE_IN_TEXT = re.compile(f"[{_CONTROLS}]")
UNSAFE_IN_LINE = re.compile(f"[\\t\\n{_CONTROLS}]")


def unsafe_char(text: str, *, multiline: bool = False) -> str | None:
    """The first character of ``text`` that is a control character, a line or paragraph
    separator or a lone surrogate (a line feed or tab is allowed where ``multiline``),
    or None."""
    found = (UNSAFE_IN_TEXT if multiline else UNSAFE_IN_LINE).search(text)
    return found.group() if found else None


def describe_char(char: str) -> str:
    """A character as a user can find it: ``U+000A (LINE FEED)``."""
    name = unicodedata.name(char, "")
    if not name and char in "\n\r\t":
        name = {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "TAB"}[char]
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def type_name(value: object) -> str:
    """The user's name for a parsed value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


class _ShortRepr(reprlib.Repr):
    """``reprlib`` that never turns a huge integer into text (Python refuses to above
    4300 digits, and it would not fit a message anyway)."""

    def repr_int(self, x: int, level: int) -> str:
        return _show_int(x)

    def repr_instance(self, x: object, level: int) -> str:
        # A JSON object is read as a dict subclass (load._JsonObject): cut it short too.
        if isinstance(x, dict):
            return self.repr_dict(x, level)
        return super().repr_instance(x, level)


def _show_int(value: int) -> str:
    if value.bit_length() <= 190:  # up to 57 digits: shown whole
        return str(value)
    digits = math.floor(value.bit_length() * math.log10(2)) + 1
    return f"a whole number of about {digits} digits"


_SHORT = _ShortRepr()
_SHORT.maxlevel = 2
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 4
_SHORT.maxstring = _SHORT.maxother = 60


def show(value: object) -> str:
    """A value as a user wrote it, short enough for one message (and one line: control
    characters are escaped, a huge number or a long list is cut)."""
    if isinstance(value, str):
        text = repr(value[:80])
    elif isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, int):
        text = _show_int(value)
    elif isinstance(value, float):
        text = str(value)
    else:
        text = _SHORT.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,80}")


def key_label(name: object) -> str:
    """A key as it can be named in a message: plain keys as written, any other (a typo
    with spaces or control characters, a very long one) quoted and cut short."""
    text = str(name)
    return text if _PLAIN_KEY.fullmatch(text) else show(text)


def range_text(
    minimum: float | None, exclusive_minimum: float | None, maximum: float | None
) -> str:
    """``greater than 0 and at most 168``: the allowed range, for a message."""
    parts = []
    if exclusive_minimum is not None:
        parts.append(f"greater than {exclusive_minimum:g}")
    if minimum is not None:
        parts.append(f"at least {minimum:g}")
    if maximum is not None:
        parts.append(f"at most {maximum:g}")
    return " and ".join(parts)


class Table:
    """One table of a file being read: ``take_*`` a key, then ``finish()``.

    Parameters
    ----------
    data : mapping
        The parsed table.
    file : str
        The file's name, as the user gave it.
    prefix : str
        The table's own key (``actives[1]``), prepended to every key named.
    problems : list of Problem
        Shared list every problem is appended to.
    """

    def __init__(
        self, data: Mapping[str, Any], file: str, prefix: str, problems: list[Problem]
    ) -> None:
        self.data = data
        self.file = file
        self.prefix = prefix
        self.problems = problems
        self.seen: set[str] = set()
        # A JSON object read with a duplicate key (see load._unique_keys) lists them here,
        # so the problem is reported with the key's full name.
        for name in getattr(data, "duplicates", ()):
            self.problem(key_label(name), "appears more than once; give it once")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def problem(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.key(name), message))

    # Key readers -----------------------------------------------------------------

    def _get(self, name: str, required: bool) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if required:
                self.problem(name, "is required but missing")
            return None
        value = self.data[name]
        if value is None:
            # JSON null: neither a value nor an absence; say so rather than guess.
            self.problem(name, "is null; give a value" + ("" if required else " or leave "
                                                          "the key out"))
        return value

    def take_str(
        self,
        name: str,
        *,
        required: bool = True,
        choices: Sequence[str] | None = None,
        allow_empty: bool = False,
        default: str | None = None,
        max_chars: int = MAX_STR_CHARS,
        multiline: bool = False,
    ) -> str | None:
        """A string key. ``max_chars`` bounds its length; control characters (and line
        separators) are refused, except a line feed or tab where ``multiline``."""
        value = self._get(name, required)
        if value is None:
            return default
        return self.check_str(name, value, choices=choices, allow_empty=allow_empty,
                              max_chars=max_chars, multiline=multiline)

    def check_str(
        self,
        name: str,
        value: object,
        *,
        choices: Sequence[str] | None = None,
        allow_empty: bool = False,
        max_chars: int = MAX_STR_CHARS,
        multiline: bool = False,
    ) -> str | None:
        """Check one string (also a list element, ``name`` like ``sources[2]``)."""
        if not isinstance(value, str):
            self.problem(name, f"must be a string, found {type_name(value)} {show(value)}")
            return None
        if choices is not None and value not in choices:
            allowed = ", ".join(f'"{c}"' for c in choices)
            self.problem(name, f"is {show(value)}; allowed: {allowed}")
            return None
        if len(value) > max_chars:
            self.problem(name, f"has {len(value)} characters; at most {max_chars} allowed")
            return None
        bad = unsafe_char(value, multiline=multiline)
        if bad is not None:
            allowed = " (line feeds and tabs are)" if multiline else ""
            self.problem(name, f"is {show(value)}: holds the control character "
                         f"{describe_char(bad)}; control characters and line breaks are "
                         f"not allowed{allowed}")
            return None
        if not allow_empty and not value.strip():
            self.problem(name, "must not be empty")
            return None
        return value

    def take_number(
        self,
        name: str,
        *,
        required: bool = True,
        minimum: float | None = None,
        exclusive_minimum: float | None = None,
        maximum: float,
        default: float | None = None,
    ) -> float | None:
        """A number key, finite and within the range; ``maximum`` is required, so that no
        number a user writes is unbounded."""
        value = self._get(name, required)
        if value is None:
            return default
        return self.check_number(name, value, minimum=minimum,
                                 exclusive_minimum=exclusive_minimum, maximum=maximum)

    def check_number(
        self,
        name: str,
        value: object,
        *,
        minimum: float | None = None,
        exclusive_minimum: float | None = None,
        maximum: float,
    ) -> float | None:
        """Check one number (also a list element, ``name`` like ``doses_mg[3]``)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(name, f"must be a number, found {type_name(value)} {show(value)}")
            return None
        try:
            number = float(value)
        except OverflowError:
            self.problem(name, f"is {show(value)}, too large for a number")
            return None
        allowed = range_text(minimum, exclusive_minimum, maximum)
        if not math.isfinite(number):
            self.problem(name, f"must be a finite number, found {show(value)}; "
                         f"allowed: {allowed}")
            return None
        if ((exclusive_minimum is not None and number <= exclusive_minimum)
                or (minimum is not None and number < minimum) or number > maximum):
            self.problem(name, f"is {show(value)}; must be {allowed}")
            return None
        return number

    def take_int(
        self,
        name: str,
        *,
        required: bool = True,
        minimum: int,
        maximum: int,
        default: int | None = None,
    ) -> int | None:
        """A whole-number key within ``minimum``..``maximum`` (both required)."""
        value = self._get(name, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            # JSON writers often emit 28.0 for 28; accept whole floats.
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                found = f"{type_name(value)} {show(value)}"
                self.problem(name, f"must be a whole number, found {found}")
                return None
        if not minimum <= value <= maximum:
            self.problem(name, f"is {show(value)}; must be at least {minimum} and at most "
                         f"{maximum}")
            return None
        return value

    def take_bool(
        self, name: str, *, required: bool = True, default: bool | None = None
    ) -> bool | None:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(name, f"must be true or false, found {type_name(value)} {show(value)}")
            return None
        return value

    def take_list(
        self, name: str, *, required: bool = True, max_items: int
    ) -> list[Any] | None:
        """A list key of at most ``max_items`` entries (required, so no list is unbounded)."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            self.problem(name, f"must be a list, found {type_name(value)} {show(value)}")
            return None
        if len(value) > max_items:
            self.problem(name, f"has {len(value)} entries; at most {max_items} allowed")
            return None
        return list(value)

    def take_table(self, name: str, *, required: bool = True) -> Table | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(name, f"must be a table, found {type_name(value)} {show(value)}")
            return None
        return Table(value, self.file, self.key(name), self.problems)

    def take_tables(
        self, name: str, *, required: bool = True, max_items: int
    ) -> list[Table] | None:
        """An array of tables (``[[actives]]``); each element named ``name[i]``."""
        items = self.take_list(name, required=required, max_items=max_items)
        if items is None:
            return None
        tables = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                self.problem(f"{name}[{i}]", f"must be a table, found {type_name(item)}")
                continue
            tables.append(Table(item, self.file, self.key(f"{name}[{i}]"), self.problems))
        return tables

    def finish(self, allowed_hint: Iterable[str] = ()) -> None:
        """Report every key that no reader took: a typo must not be silently ignored."""
        known = sorted(self.seen | set(allowed_hint))
        for name in self.data:
            if name not in self.seen:
                self.problem(
                    key_label(name), "is not a known key; allowed here: " + ", ".join(known)
                )
