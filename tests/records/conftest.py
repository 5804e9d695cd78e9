"""Fixtures for the record store tests: stores in memory and in a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from doseprint.records.store import RecordStore, open_store

from .helpers import FakeClock


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """An empty store, once in memory and once in a SQLite file."""
    url = ":memory:" if request.param == "memory" else str(tmp_path / "records.sqlite")
    with open_store(url, clock=FakeClock()) as opened:
        yield opened


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "records.sqlite"
