"""Fixtures for the record store tests: stores in memory, in a file and on PostgreSQL.

The PostgreSQL tests use the server that ``DOSEPRINT_TEST_PG`` names (a
``postgresql://`` URL; ``make test`` starts one with scripts/pg-test-server.sh), each in a
schema of its own that is dropped afterwards. Without that variable they skip, unless
``DOSEPRINT_REQUIRE_PG=1``, in which case they fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from doseprint.records.store import RecordStore, open_store

from .helpers import Backend, FakeClock, pg_server_url

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A store URL on the test server, in a fresh schema of its own."""
    import psycopg

    server = pg_server_url()
    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    yield f"{server}{separator}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """An empty store location (not yet opened) on each back end."""
    if request.param == "sqlite":
        path = tmp_path / "records.sqlite"
        return Backend("sqlite", str(path), str(path))
    return Backend("postgresql", request.getfixturevalue("pg_url"))


@pytest.fixture(params=["memory", "file", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """An empty store: in memory, in a SQLite file, and on PostgreSQL."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    elif request.param == "memory":
        url = ":memory:"
    else:
        url = str(tmp_path / "records.sqlite")
    with open_store(url, clock=FakeClock()) as opened:
        yield opened


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "records.sqlite"
