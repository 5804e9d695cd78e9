"""Where the store is: ``DOSEPRINT_DB``, the default file, SQLite and PostgreSQL URLs."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from doseprint.errors import InputError
from doseprint.records.location import resolve_store_url
from doseprint.records.store import open_store

from .helpers import sample_content


def test_dose_print_db_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "from-env.sqlite"
    monkeypatch.setenv("DOSEPRINT_DB", str(path))
    with open_store() as store:
        assert store.url == str(path)
        store.create(sample_content(), "Ana Operator")
    assert path.is_file()
    # An explicit URL wins over the environment.
    other = tmp_path / "explicit.sqlite"
    with open_store(str(other)) as store:
        assert store.url == str(other)
        assert store.list_records() == []


def test_default_store_in_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOSEPRINT_DB", raising=False)
    data_dir = tmp_path / "data" / "doseprint"
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *args, **kwargs: str(data_dir))
    with open_store(None) as store:
        assert store.url == str(data_dir / "records.sqlite")
    assert (data_dir / "records.sqlite").is_file()


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_store_url("sqlite:///rel.sqlite") == ("sqlite:///rel.sqlite", "rel.sqlite")
    absolute = tmp_path / "abs.sqlite"
    assert resolve_store_url(f"sqlite:///{absolute}")[1] == str(absolute)
    assert resolve_store_url(":memory:")[1] == ":memory:"
    assert resolve_store_url("sqlite://")[1] == ":memory:"
    with open_store("sqlite:///rel.sqlite") as store:
        store.create(sample_content(), "Ana Operator")
    assert (tmp_path / "rel.sqlite").is_file()


def test_postgresql_urls() -> None:
    shown, target = resolve_store_url("postgresql://pharmacy:s3cret@db.example.org:5433/records")
    assert shown == "postgresql://pharmacy:***@db.example.org:5433/records"
    assert target == "postgresql://pharmacy:s3cret@db.example.org:5433/records"
    for scheme in ("postgres", "postgresql+psycopg", "PostgreSQL"):
        assert resolve_store_url(f"{scheme}://h/db")[1] == "postgresql://h/db"
    assert resolve_store_url("postgresql://h/db?password=s3cret")[0] == (
        "postgresql://h/db?password=***"
    )


def test_unknown_scheme() -> None:
    with pytest.raises(InputError, match="mysql://"):
        open_store("mysql://host/records")


@pytest.mark.parametrize(("url", "durable"), [
    (":memory:", False), ("sqlite://", False), ("sqlite:///:memory:", False),
    ("records.sqlite", True),
])
def test_a_store_says_whether_it_outlives_its_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, durable: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store(url) as store:
        assert store.durable is durable
