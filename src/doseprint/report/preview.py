"""The clinician's preview page: self-contained HTML (inline SVG, no network)."""

from __future__ import annotations

from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("doseprint.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")

# Release chart geometry (SVG user units).
_W, _H, _PAD = 560.0, 300.0, 48.0


def _chart(tablet: dict[str, Any]) -> dict[str, Any]:
    """SVG paths of one tablet's predicted curves and targets."""
    curves = []
    t_end = float(max(a["release"]["curve"][-1][0] for a in tablet["actives"]))

    def x(h: float) -> float:
        return _PAD + (_W - 2 * _PAD) * h / t_end

    def y(f: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * f

    for k, a in enumerate(tablet["actives"]):
        r = a["release"]
        path = "M" + " L".join(f"{x(h):.1f},{y(f):.1f}" for h, f in r["curve"])
        marks = []
        target = r["target"]
        if r["kind"] == "profile":
            marks = [(x(h), y(f)) for h, f in target["points"]]
        elif r["kind"] == "sustained":
            marks = [(x(target["t80_h"]), y(0.8))]
        else:
            marks = [(x(target["at_h"]), y(target["fraction"]))]
        curves.append({"api": a["api"], "path": path, "colour": _COLOURS[k % len(_COLOURS)],
                       "marks": marks, "release": r})
    ticks_x = [(x(h), f"{h:g}") for h in _nice_ticks(t_end)]
    ticks_y = [(y(f), f"{int(f * 100)} %") for f in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
    return {"curves": curves, "ticks_x": ticks_x, "ticks_y": ticks_y,
            "w": _W, "h": _H, "pad": _PAD}


def _nice_ticks(t_end: float) -> list[float]:
    step = next(s for s in (0.5, 1, 2, 4, 6, 12, 24, 48) if t_end / s <= 8)
    return [i * step for i in range(int(t_end / step) + 1)]


def render_preview(job: dict[str, Any]) -> str:
    """The preview page of a job (a job.json as a dict)."""
    first = job["tablets"][0]
    distinct = []
    seen = set()
    for t in job["tablets"]:
        key = (repr(sorted(t["design"]["dimensions_mm"].items())),
               tuple(a["dose_mg"] for a in t["actives"]))
        if key not in seen:
            seen.add(key)
            distinct.append(t)
    return _ENV.get_template("preview.html.j2").render(
        job=job, first=first, charts=[(t, _chart(t)) for t in distinct[:6]],
        more=len(distinct) - 6,
    )
