"""Strict reading of one parsed TOML/JSON table: typed keys, ranges, unknown keys.

Every check records a :class:`~doseprint.errors.Problem` naming the file and the key
instead of raising, so a user sees every problem in a file at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from doseprint.errors import Problem


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


def show(value: object) -> str:
    """A value as a user wrote it, short enough for one message."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
            self.problem(name, "appears more than once; give it once")

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
    ) -> str | None:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problem(name, f"must be a string, found {type_name(value)} {show(value)}")
            return None
        if choices is not None and value not in choices:
            allowed = ", ".join(f'"{c}"' for c in choices)
            self.problem(name, f"is {show(value)}; allowed: {allowed}")
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
        maximum: float | None = None,
        default: float | None = None,
    ) -> float | None:
        value = self._get(name, required)
        if value is None:
            return default
        return self.check_number(name, value, minimum, exclusive_minimum, maximum)

    def check_number(
        self,
        name: str,
        value: object,
        minimum: float | None = None,
        exclusive_minimum: float | None = None,
        maximum: float | None = None,
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
        if not math.isfinite(number):
            self.problem(name, f"must be a finite number, found {show(value)}")
            return None
        if exclusive_minimum is not None and number <= exclusive_minimum:
            self.problem(name, f"is {show(value)}; must be greater than {exclusive_minimum:g}")
            return None
        if minimum is not None and number < minimum:
            self.problem(name, f"is {show(value)}; must be at least {minimum:g}")
            return None
        if maximum is not None and number > maximum:
            self.problem(name, f"is {show(value)}; must be at most {maximum:g}")
            return None
        return number

    def take_int(
        self,
        name: str,
        *,
        required: bool = True,
        minimum: int | None = None,
        maximum: int | None = None,
        default: int | None = None,
    ) -> int | None:
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
        if minimum is not None and value < minimum:
            self.problem(name, f"is {show(value)}; must be at least {minimum}")
            return None
        if maximum is not None and value > maximum:
            self.problem(name, f"is {show(value)}; must be at most {maximum}")
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

    def take_list(self, name: str, *, required: bool = True) -> list[Any] | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            self.problem(name, f"must be a list, found {type_name(value)} {show(value)}")
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

    def take_tables(self, name: str, *, required: bool = True) -> list[Table] | None:
        """An array of tables (``[[actives]]``); each element named ``name[i]``."""
        items = self.take_list(name, required=required)
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
                    str(name), "is not a known key; allowed here: " + ", ".join(known)
                )
