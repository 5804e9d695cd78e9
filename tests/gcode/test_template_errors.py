"""A site's printer template is the site's own code: whatever it raises while rendering
(a division by zero, a wrong type, a macro calling itself, a loop of 10^12 steps) is a
TemplateRenderError naming the template (exit 2, nothing written), never a crash."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from doseprint.errors import TemplateRenderError
from doseprint.gcode.render import render_gcode
from doseprint.slicer.plate import place_tablets
from helpers.synthetic_gcode import TOOLS, profile_for, two_tool_tablets

BAD_TEMPLATES = {
    "division-by-zero": "; {{ 1 / 0 }}",
    "wrong-type": "; {{ profile.id + 1 }}",
    "macro-calls-itself": "{% macro f() %}{{ f() }}{% endmacro %}; {{ f() }}",
    "loop-of-10^12": "{% for i in range(10**12) %}; {{ i }}\n{% endfor %}",
    "private-attribute": "; {{ profile.__class__.__init__.__globals__ }}",
    "bad-index": "; {{ 'abc'[10**30] }}",
}


@pytest.mark.parametrize("name", list(BAD_TEMPLATES))
def test_a_template_that_fails_is_a_template_render_error(tmp_path: Path, name: str) -> None:
    profile = profile_for("marlin")
    folder = tmp_path / "templates"
    shutil.copytree(profile.templates_dir, folder)
    start = folder / "start.gcode.j2"
    start.write_text(BAD_TEMPLATES[name] + "\n" + start.read_text(), encoding="utf-8")
    profile = dataclasses.replace(profile, templates_dir=str(folder))
    plate = place_tablets(profile, [9.0] * 2, "rx.toml", tools=2)
    began = time.perf_counter()
    with pytest.raises(TemplateRenderError) as caught:
        render_gcode(profile, TOOLS, plate, two_tool_tablets(2), ["test"])
    assert time.perf_counter() - began < 5.0
    assert caught.value.exit_code == 2
    assert str(start) in str(caught.value)
    assert "\n" not in str(caught.value)
