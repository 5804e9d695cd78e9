"""Fuzzing the three readers with mutations of the shipped files.

Whatever a prescription, formulation or printer profile holds (wrong types, numbers huge,
tiny, NaN or infinite, whole numbers too long to print, deep nesting, long strings,
control characters, keys added or dropped), reading it either succeeds or raises
:class:`~doseprint.errors.InputError` (exit 2), never any other exception, and takes
at most a few seconds (cli.md: no traceback for bad input).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES
from doseprint.errors import InputError
from doseprint.library import load_formulations, shipped_dir
from doseprint.models.fields import UNSAFE_IN_LINE
from doseprint.models.load import (
    check_prescription,
    load_formulation,
    load_prescription,
    load_printer,
)

from .rxfiles import BASE_RX, toml_dumps

FORMULATIONS = shipped_dir("formulations")
PRINTERS = shipped_dir("printer_profiles")
LIBRARY = load_formulations()

SECONDS = 5.0
"""Per read: the spec's "never more than a few seconds", with room for a loaded machine."""


def _read(path: Path) -> dict[str, Any]:
    if path.suffix == ".json":
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    with open(path, "rb") as fh:
        return tomllib.load(fh)


PRESCRIPTIONS = [BASE_RX, *(_read(p) for p in sorted(EXAMPLES.glob("*.toml"))),
                 *(_read(p) for p in sorted(EXAMPLES.glob("*.json")))]
FORMULATION_DOCS = [_read(p) for p in sorted(FORMULATIONS.glob("*.toml"))]
PRINTER_DOCS = [_read(p) for p in sorted(PRINTERS.glob("*.toml"))]

# Values -------------------------------------------------------------------------------

NASTY_NUMBERS = [0, -1, 1, 2**31, 2**63, 2**64, -(2**63) - 1, 10**30, 10**400, 1e308,
                 -1e308, 5e-324, -5e-324, 1e12, 1e6, 168.0000001, float("nan"),
                 float("inf"), float("-inf"), 0.0, -0.0]
NASTY_STRINGS = ["", " ", "RX-1\n", "PT-7F3A\r\n", "a\u2028b", "a\u2029", "x\x85",
                 "\x0b\x0c\x1c\x1d\x1e", "\x00", "\x1b[2J", "\ud800", "x" * 5000,
                 "theophylline", "none", "sustained", "doseprint.prescription/1",
                 "doseprint.formulation/1", "doseprint.printer/1", "marlin", "../../etc"]

scalars = st.one_of(
    st.sampled_from(NASTY_NUMBERS),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list index in ``data``, depth first."""
    out = []
    items = (data.items() if isinstance(data, dict)
             else enumerate(data) if isinstance(data, list) else ())
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@st.composite
def mutated(draw: st.DrawFn, seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """A shipped document with one to four keys set to odd values, dropped or added."""
    doc = json.loads(json.dumps(draw(st.sampled_from(seeds))))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        op = draw(st.sampled_from(["set", "set", "drop", "add"]))
        if op == "add" or not paths:
            tables = [(), *(p for p in paths if isinstance(_at(doc, p), dict))]
            target = _at(doc, draw(st.sampled_from(tables)))
            key = draw(st.text(max_size=12) | st.sampled_from(["t80_h", "dose_mg", "id"]))
            target[key] = draw(values)
            continue
        path = draw(st.sampled_from(paths))
        parent = _at(doc, path[:-1])
        if op == "drop":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(values)
    return doc


# Writing ------------------------------------------------------------------------------

RAW_LINES = [
    "", "deep = " + "[" * 9 + "]" * 9, "deep = " + "[" * 5000 + "]" * 5000,
    "deep = " + "[" * 200_000 + "]" * 200_000, "big = " + "9" * 5000,
    "big = 0x" + "f" * 5000, "huge = 1e999", "broken = [1, 2",
]


def write_doc(folder: Path, stem: str, doc: dict[str, Any], fmt: str, raw: str) -> Path:
    """``doc`` as TOML (with ``raw`` as its first line) or JSON (``raw`` as a first key,
    JSON syntax); a document TOML cannot hold (null) is written as JSON."""
    if fmt == "toml":
        try:
            text = raw + "\n" + toml_dumps(doc)
        except TypeError:
            fmt = "json"
    if fmt == "json":
        body = json.dumps(doc)
        if raw and "=" in raw:
            key, value = raw.split(" = ", 1)
            if value.startswith("0x"):
                value = "1"
            body = "{" + json.dumps(key) + ": " + value + ("," if len(body) > 2 else "") + body[1:]
        text = body
    path = folder / f"{stem}.{fmt}"
    path.write_text(text, encoding="utf-8")
    return path


def _stem(doc: dict[str, Any]) -> str:
    """The file name a formulation or profile needs to be readable: its id, if one."""
    fid = doc.get("id")
    return fid if isinstance(fid, str) and re.fullmatch(r"[a-z0-9._-]{1,64}", fid) else "x"


def _read_or_refuse(read: Callable[[Path], object], path: Path) -> None:
    start = time.perf_counter()
    try:
        read(path)
    except InputError as exc:
        assert exc.exit_code == 2
        assert exc.problems and all(p.file == str(path) for p in exc.problems)
        for problem in exc.problems:  # one line each, whatever the file held
            assert UNSAFE_IN_LINE.search(str(problem)) is None, str(problem)
    elapsed = time.perf_counter() - start
    assert elapsed < SECONDS, f"reading {path.name} took {elapsed:.1f} s"


def _prescription(path: Path) -> None:
    rx = load_prescription(path)
    check_prescription(rx, LIBRARY)


def _printer(path: Path) -> None:
    load_printer(path, template_roots=(PRINTERS / "templates",))


FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

formats = st.sampled_from(["toml", "json"])
raw_lines = st.sampled_from(RAW_LINES)


@FUZZ
@given(doc=mutated(PRESCRIPTIONS), fmt=formats, raw=raw_lines)
def test_prescription_reader_reads_or_refuses(doc: dict[str, Any], fmt: str, raw: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _read_or_refuse(_prescription, write_doc(Path(folder), "rx", doc, fmt, raw))


@FUZZ
@given(doc=mutated(FORMULATION_DOCS), fmt=formats, raw=raw_lines)
def test_formulation_reader_reads_or_refuses(doc: dict[str, Any], fmt: str, raw: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _read_or_refuse(load_formulation, write_doc(Path(folder), _stem(doc), doc, fmt, raw))


@FUZZ
@given(doc=mutated(PRINTER_DOCS), fmt=formats, raw=raw_lines)
def test_printer_reader_reads_or_refuses(doc: dict[str, Any], fmt: str, raw: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _read_or_refuse(_printer, write_doc(Path(folder), _stem(doc), doc, fmt, raw))


@pytest.mark.parametrize("raw", RAW_LINES[1:], ids=lambda r: r[:12])
@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_every_raw_line_is_refused(tmp_path: Path, fmt: str, raw: str) -> None:
    # Each of the raw lines alone breaks an otherwise good prescription.
    path = write_doc(tmp_path, "rx", json.loads(json.dumps(BASE_RX)), fmt, raw)
    with pytest.raises(InputError):
        _prescription(path)
