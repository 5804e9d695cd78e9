"""What differs between the record store's back ends: SQL, transactions, locks, errors.

:mod:`doseprint.records.store` writes its SQL once, with ``?`` placeholders, against a
:class:`Database`; the two subclasses here carry everything that differs:

* :class:`SqliteDatabase` -- a file (or ``:memory:``) in WAL mode with
  ``synchronous=FULL``; a write transaction is ``BEGIN IMMEDIATE``, which takes the
  database's single write lock at once, so appends to a chain are serialised.
* :class:`PostgresDatabase` -- psycopg 3 in autocommit mode with explicit ``BEGIN``; a
  write transaction runs at READ COMMITTED and, before it reads a chain's head, takes a
  transaction-level advisory lock keyed by the record id
  (:meth:`Database.lock_chain`), so concurrent writers to one record queue up and each
  sees the head the one before it committed. Reads run in a REPEATABLE READ READ ONLY
  snapshot. Commits are durable with the server's default ``synchronous_commit=on``.

The stored values are the same text on both (canonical JSON, ISO 8601 times, hex
hashes), so the hash chain is computed, and verifies, identically.

Migrations are SQL files in ``migrations/<dialect>/NNNN_name.sql``, numbered from 1
without gaps; the store applies the missing ones in order inside one transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from types import ModuleType
from typing import Any, Protocol

from doseprint.errors import RecordStoreError
from doseprint.records.location import redact_url

__all__ = [
    "GUARD_TRIGGERS",
    "Cursor",
    "Database",
    "PostgresDatabase",
    "SqliteDatabase",
    "migration_files",
]

GUARD_TRIGGERS = (
    "records_no_update", "records_no_delete", "events_no_update", "events_no_delete",
    "site_events_no_update", "site_events_no_delete",
    "event_signatures_no_update", "event_signatures_no_delete",
)
"""The triggers that refuse updates and deletes; ``verify`` reports any that is missing."""

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_MIGRATION_LOCK_KEY = 0x646F73657072696E  # "doseprin" in ASCII: the one key for migrations


class Cursor(Protocol):
    """The part of a DB-API cursor the store uses."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


def migration_files(dialect: str) -> list[str]:
    """The SQL text of each migration of ``dialect``, in order (index 0 = version 1).

    Parameters
    ----------
    dialect : str
        ``"sqlite"`` or ``"postgresql"``.

    Returns
    -------
    list of str

    Raises
    ------
    RuntimeError
        The files are not numbered 1, 2, 3 … without gaps: a packaging bug.
    """
    folder = resources.files("doseprint.records").joinpath("migrations", dialect)
    found: dict[int, str] = {}
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found[int(match.group(1))] = entry.read_text("utf-8")
    if sorted(found) != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {sorted(found)}")
    return [found[number] for number in sorted(found)]


class Database:
    """One connection to a record store, and the SQL dialect it speaks.

    Subclasses implement the abstract methods; :meth:`execute` takes SQL with ``?``
    placeholders on every back end.
    """

    name = ""
    """``"sqlite"`` or ``"postgresql"``: also the folder of its migrations."""

    def __init__(self, url: str) -> None:
        self.url = url
        """The store's URL as shown to users, password masked."""

    @property
    def durable(self) -> bool:
        """Whether what is committed outlives the connection (a server's database does)."""
        return True

    # Statements

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement (``?`` placeholders) and return its cursor."""
        raise NotImplementedError

    def run_script(self, script: str) -> None:
        """Run the statements of a migration file inside the current transaction."""
        raise NotImplementedError

    # Transactions

    def begin_write(self) -> None:
        """Start a write transaction."""
        raise NotImplementedError

    def begin_read(self) -> None:
        """Start a read-only transaction that sees one consistent snapshot."""
        raise NotImplementedError

    def commit(self) -> None:
        """Commit the current transaction."""
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the current transaction, if one is open; never raises."""
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        raise NotImplementedError

    def lock_chain(self, record_id: str) -> None:
        """Serialise appends to one record's chain until the transaction ends."""

    def lock_schema(self) -> None:
        """Serialise migrations until the transaction ends."""

    def close(self) -> None:
        """Close the connection. Idempotent."""
        raise NotImplementedError

    # Catalogue

    def tables(self) -> set[str]:
        """The names of the tables in the store's schema."""
        raise NotImplementedError

    def triggers(self) -> set[str]:
        """The names of the triggers in the store's schema."""
        raise NotImplementedError

    # Errors

    def error_types(self) -> tuple[type[BaseException], ...]:
        """The driver's exceptions that :meth:`store_error` turns into RecordStoreError."""
        raise NotImplementedError

    def store_error(self, exc: BaseException) -> RecordStoreError:
        """A RecordStoreError naming the store, with a hint for the usual failures."""
        return store_error(self.url, exc)


def store_error(
    url: str, exc: BaseException, secret: str = "", *, connecting: bool = False
) -> RecordStoreError:
    """A RecordStoreError for ``exc`` naming the store ``url`` (password masked).

    Parameters
    ----------
    url : str
        As shown to users.
    exc : exception
        From the database driver.
    secret : str
        A password to blank out of the driver's message, should it appear there.
    connecting : bool
        The error came from connecting to a server.

    Returns
    -------
    RecordStoreError
    """
    text = (str(exc) or type(exc).__name__).strip()
    if secret:
        text = text.replace(secret, "***")
    text = redact_url(text)
    lowered = text.lower()
    hint: str | None = None
    if "locked" in lowered or "busy" in lowered or "lock timeout" in lowered:
        hint = "Another program is using the record store; let it finish and try again."
    elif "unable to open" in lowered:
        hint = "Check that the folder exists and that you may write to it."
    elif "not a database" in lowered or "malformed" in lowered:
        hint = (
            "The file is not a doseprint record store or it is damaged: restore it from a backup."
        )
    elif "readonly" in lowered or "read-only" in lowered:
        hint = "The record store is read-only: give one you may write to."
    elif "password" in lowered or "authentication" in lowered or "role" in lowered:
        hint = "Check the user name and password in the URL (or in ~/.pgpass)."
    elif connecting or "connection" in lowered or "server" in lowered:
        hint = "Check that the PostgreSQL server runs and that host, port and database are right."
    elif "full" in lowered:
        hint = "The disk is full: free some space and try again."
    return RecordStoreError(f"record store {url}: {text}", hint=hint)


# ----------------------------------------------------------------------------------
# SQLite


class SqliteDatabase(Database):
    """A SQLite file (or ``:memory:``): WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``."""

    name = "sqlite"

    def __init__(self, url: str, path: str, timeout_s: float) -> None:
        super().__init__(url)
        self.path = path
        try:
            self._conn = sqlite3.connect(
                path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self.store_error(exc) from exc

    @property
    def durable(self) -> bool:
        """False for a database that vanishes when its connection closes: SQLite's
        ``:memory:`` or an empty path (a private temporary database). Paths are opened
        as file names, never as ``file:`` URIs, so no other name is in memory."""
        return self.path.strip() not in ("", ":memory:")

    def configure(self) -> str:
        """Foreign keys on, WAL, FULL sync; returns the journal mode SQLite chose."""
        self._conn.execute("PRAGMA foreign_keys = ON")
        mode = str(self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        # FULL: a commit is on disk before it returns, also in WAL mode.
        self._conn.execute("PRAGMA synchronous = FULL")
        return mode

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._conn.execute(sql, tuple(params))

    def run_script(self, script: str) -> None:
        for statement in _sqlite_statements(script):
            self._conn.execute(statement)

    def begin_write(self) -> None:
        # Takes the single write lock now, so the head read next is the one appended to.
        self._conn.execute("BEGIN IMMEDIATE")

    def begin_read(self) -> None:
        self._conn.execute("BEGIN")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def close(self) -> None:
        self._conn.close()

    def tables(self) -> set[str]:
        return {
            str(row[0])
            for row in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }

    def triggers(self) -> set[str]:
        return {
            str(row[0])
            for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)


def _sqlite_statements(script: str) -> Iterable[str]:
    """The statements of a script, one by one (triggers hold ';' inside them)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip() and not all(
        not line.strip() or line.strip().startswith("--") for line in pending.splitlines()
    ):
        raise RuntimeError(f"incomplete SQL statement in a migration: {pending.strip()[:60]}")


# ----------------------------------------------------------------------------------
# PostgreSQL


def _psycopg() -> ModuleType | None:
    try:
        import psycopg
    except ImportError:
        return None
    return psycopg


def _lock_key(record_id: str) -> int:
    """A signed 64-bit advisory-lock key for one record (stable across processes)."""
    digest = hashlib.sha256(record_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresDatabase(Database):
    """A PostgreSQL database through psycopg 3 (autocommit, explicit transactions)."""

    name = "postgresql"

    def __init__(self, url: str, conninfo: str, timeout_s: float) -> None:
        super().__init__(url)
        psycopg = _psycopg()
        if psycopg is None:
            raise RecordStoreError(
                f"record store {url}: PostgreSQL needs the Python package 'psycopg' "
                "(psycopg 3), which is not installed",
                hint="Install it: pip install 'doseprint[postgres]' (or 'psycopg[binary]').",
            )
        self._psycopg = psycopg
        secret = ""
        try:
            secret = str(psycopg.conninfo.conninfo_to_dict(conninfo).get("password") or "")
        except psycopg.Error as exc:
            raise RecordStoreError(
                f"record store {url}: not a valid PostgreSQL URL: {redact_url(str(exc))}",
                hint="Write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE.",
            ) from exc
        self._secret = secret
        try:
            self._conn = psycopg.connect(
                conninfo,
                autocommit=True,
                connect_timeout=max(1, round(timeout_s)),
                application_name="doseprint",
            )
        except psycopg.Error as exc:
            raise store_error(url, exc, secret, connecting=True) from exc
        try:
            # Wait at most this long for another writer's lock, as SQLite's busy timeout.
            self._conn.execute(f"SET lock_timeout = {max(1, round(timeout_s * 1000))}")
            self._conn.execute("SET client_min_messages = warning")
        except psycopg.Error as exc:
            self._conn.close()
            raise self.store_error(exc) from exc

    def store_error(self, exc: BaseException) -> RecordStoreError:
        return store_error(self.url, exc, getattr(self, "_secret", ""))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if params:
            # The store writes no literal '%' and no '?' inside string literals.
            cursor: Cursor = self._conn.execute(
                sql.replace("%", "%%").replace("?", "%s"), tuple(params)
            )
        else:
            cursor = self._conn.execute(sql)
        return cursor

    def run_script(self, script: str) -> None:
        # Without parameters psycopg sends the simple query protocol: several statements.
        self._conn.execute(script)

    def begin_write(self) -> None:
        self._conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")

    def begin_read(self) -> None:
        self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def rollback(self) -> None:
        if self.in_transaction:
            with contextlib.suppress(self._psycopg.Error):
                self._conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        status = self._conn.info.transaction_status
        return bool(status != self._psycopg.pq.TransactionStatus.IDLE)

    def lock_chain(self, record_id: str) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(record_id),))

    def lock_schema(self) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))

    def close(self) -> None:
        self._conn.close()

    def tables(self) -> set[str]:
        return {
            str(row[0])
            for row in self._conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        }

    def triggers(self) -> set[str]:
        return {
            str(row[0])
            for row in self._conn.execute(
                "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
            )
        }

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (self._psycopg.Error,)
