"""A second, deliberately separate reader of the net filament fed per section and tool.

It shares no code with ``doseprint.gcode``: one function, one regular expression per line,
and exact ``Decimal`` arithmetic, so a bug in either reader shows up as a disagreement.
It reads Marlin semantics only (G90/G91 also set the E mode, one E register shared by all
tools, bare ``G92`` ignored) and none of the main reader's refusals, so compare the two
only on programs the main reader accepts.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

__all__ = ["net_filament_mm"]

_LINE = re.compile(
    r"""^\s*
    (?:N\d+\s*)?                           # optional line number
    (?P<cmd>[GMT])0*(?P<num>\d+)(?![.\d])  # command letter and number, no sub-code
    (?P<rest>.*?)                          # the parameter words
    (?:\*\d+)?\s*$                         # optional checksum
    """,
    re.IGNORECASE | re.VERBOSE | re.ASCII,
)
_E_WORD = re.compile(r"E\s*(\S*?)\s*(?=[A-Z]|$)", re.IGNORECASE | re.ASCII)
_SECTION = re.compile(r"^;TABLET:(\d+|NONE)\s*$", re.ASCII)


def net_filament_mm(lines: Iterable[str]) -> dict[tuple[int | None, int], float]:
    """Net filament length (mm) fed per (tablet index or None, tool), as Marlin would feed it.

    Raises ValueError on an E word that is not a plain decimal number and on G10/G11
    retraction (a G10 with a P word is RepRapFirmware's tool temperature command).
    """
    totals: dict[tuple[int | None, int], Decimal] = {}
    tablet: int | None = None
    tool = 0
    e_relative = False
    e_position = Decimal(0)
    for raw in lines:
        marker = _SECTION.match(raw)
        if marker:
            tablet = None if marker.group(1) == "NONE" else int(marker.group(1))
            continue
        code = re.sub(r"\([^)]*\)", "", raw.split(";")[0])
        found = _LINE.match(code)
        if not found:
            continue
        name = found.group("cmd").upper() + found.group("num")
        rest = found.group("rest").upper()
        e_value = None
        if name in ("G0", "G1", "G2", "G3", "G92"):
            e_text = _E_WORD.search(rest)
            if e_text is not None:
                if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)", e_text.group(1)):
                    raise ValueError(f"bad E word in {raw!r}")
                e_value = Decimal(e_text.group(1))
        if name.startswith("T"):
            tool = int(found.group("num"))
        elif name in ("G90", "M82"):
            e_relative = False
        elif name in ("G91", "M83"):
            e_relative = True
        elif name == "G92" and e_value is not None:
            e_position = e_value
        elif name == "G10" and re.search(r"\bP\d", rest):
            pass  # RepRapFirmware: G10 P<tool> S<active> R<standby> sets temperatures
        elif name in ("G10", "G11"):
            raise ValueError(f"firmware retraction in {raw!r}")
        elif name != "G92" and e_value is not None:
            step = e_value if e_relative else e_value - e_position
            e_position += step
            key = (tablet, tool)
            totals[key] = totals.get(key, Decimal(0)) + step
    return {key: float(total) for key, total in totals.items()}


def doses_from_gcode(job_dir: Path) -> dict[tuple[int, str], float]:
    """Each tablet's dose per API, by job.md's accounting rule, from the independent
    reader and the tool table of job.json."""
    job = json.loads((job_dir / "job.json").read_text())
    net = net_filament_mm((job_dir / "job.gcode").read_text().splitlines())
    tools = {t["tool"]: t for t in job["tools"]}
    out = {}
    for t in job["tablets"]:
        for a in t["actives"]:
            tool = tools[a["tool"]]
            length = net.get((t["index"], a["tool"]), 0.0)
            area = math.pi * tool["filament_diameter_mm"] ** 2 / 4
            out[(t["index"], a["api"])] = (length * area * tool["density_g_cm3"]
                                           * tool["drug_loading"])
    return out
