"""Tests against peers written elsewhere: OctoPrint's virtual printer and Klipper's host.

The peers run in their own virtual environment (``.venv-peers``, made by ``make test``
from ``tests/peers/requirements.txt``), never in doseprint's. :func:`peer_python` finds its
interpreter; without it the peer tests skip, unless ``DOSEPRINT_REQUIRE_PEERS=1`` (CI)
makes that a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PEERS_VENV = ROOT / ".venv-peers"
KLIPPER_SOURCE = Path(os.environ.get("DOSEPRINT_KLIPPER", ROOT.parent / "shared" / "klipper"))
"""The unmodified Klipper extract (read-only): copied before use, since klippy builds its C
helper beside its sources."""


def _missing(what: str) -> None:
    if os.environ.get("DOSEPRINT_REQUIRE_PEERS") == "1":
        pytest.fail(f"DOSEPRINT_REQUIRE_PEERS=1 but {what}")
    pytest.skip(what)


def peer_python() -> Path:
    """The peers' interpreter; skips (or fails, under DOSEPRINT_REQUIRE_PEERS=1) without it."""
    python = Path(os.environ.get("DOSEPRINT_PEER_PYTHON", PEERS_VENV / "bin" / "python"))
    if not python.exists():
        _missing(f"{python} is missing: run `make peers`")
    return python


def klipper_source() -> Path:
    """Klipper's extract; skips (or fails, under DOSEPRINT_REQUIRE_PEERS=1) without it."""
    if not (KLIPPER_SOURCE / "klippy" / "klippy.py").exists():
        _missing(f"Klipper's host is not at {KLIPPER_SOURCE} (set DOSEPRINT_KLIPPER)")
    return KLIPPER_SOURCE
