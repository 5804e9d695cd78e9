"""The tablets and materials of a record's content, read once.

A record's content (``doseprint.record-content/1``, made by
:func:`doseprint.printing.record_content`) is hashed into the chain and never changes, but
a record store may also hold records imported from another site or written by an older
version, so its readers take nothing for granted: a key may be missing and a value may
have the wrong type. This module is the one place that walks ``tablets[i]`` (its
``design``, ``actives[j]`` and optional ``shell``) and ``materials[k]`` with those
checks; the QC (:mod:`doseprint.records.qc`) and the batch report
(:mod:`doseprint.records.batch_report`) read the values it gives.

Values are left as the JSON holds them (a dose may be an int, a float or something
unreadable): each reader decides how to show or use them, :func:`number` turns one into
a finite float or None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ContentTablet", "densities_by_tool", "materials_of", "number", "tablets_of"]

_EMPTY: Mapping[str, Any] = {}


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def number(value: object) -> float | None:
    """A JSON number as a finite float; None for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


@dataclass(frozen=True)
class ContentTablet:
    """One ``tablets[i]`` entry of a record's content.

    Attributes
    ----------
    index : object
        The entry's ``index``, or its position in the list when it has none.
    design : mapping
        ``design`` (empty when absent or not an object).
    actives : tuple of mapping
        The ``actives`` entries that are objects, in order.
    shell : mapping or None
        ``shell`` when present and an object.
    """

    index: object
    design: Mapping[str, Any]
    actives: tuple[Mapping[str, Any], ...]
    shell: Mapping[str, Any] | None


def tablets_of(content: Mapping[str, Any]) -> tuple[ContentTablet, ...]:
    """The content's tablets in order; entries that are not objects are left out."""
    out = []
    for i, tablet in enumerate(_list(content.get("tablets"))):
        if not isinstance(tablet, Mapping):
            continue
        shell = tablet.get("shell")
        out.append(ContentTablet(
            index=tablet.get("index", i),
            design=_map(tablet.get("design")),
            actives=tuple(a for a in _list(tablet.get("actives")) if isinstance(a, Mapping)),
            shell=shell if isinstance(shell, Mapping) else None,
        ))
    return tuple(out)


def materials_of(content: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The content's ``materials`` entries that are objects, in order."""
    return tuple(m for m in _list(content.get("materials")) if isinstance(m, Mapping))


def densities_by_tool(content: Mapping[str, Any]) -> dict[int, float]:
    """``materials[k].density_g_cm3`` by ``tool``, for the entries that give both (> 0)."""
    out: dict[int, float] = {}
    for material in materials_of(content):
        tool = material.get("tool")
        density = number(material.get("density_g_cm3"))
        if isinstance(tool, int) and density is not None and density > 0:
            out[tool] = density
    return out
