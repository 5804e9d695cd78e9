"""The record store: records kept append-only in SQLite or PostgreSQL.

A record (record.md) is written once with its ``content`` and after that it only gains
events; nothing is updated in place or deleted, and a release, a rejection or a
correction is one more event. :class:`RecordStore` does that in transactions: it
creates records, appends events after checking them against the state machine
(:mod:`doseprint.records.states`) and chaining their hashes
(:mod:`doseprint.records.chain`), reads records back as values
(:mod:`doseprint.records.values`), verifies what is stored, and migrates the schema.
:func:`open_store` opens one by its URL (:mod:`doseprint.records.location`).

Every row of the ``events`` table becomes an :class:`~doseprint.records.values.Event`
through one function, :func:`event_from_row`, whatever reads it.

A print that dies leaves a record in ``printing``; the next :func:`open_store` on the
same host finds that its process is gone (:mod:`doseprint.records.liveness`) and appends
``interrupted``.

Back ends (:mod:`doseprint.records.dialect`): SQLite (WAL, ``synchronous=FULL``;
the default) and PostgreSQL (``postgresql://…``, psycopg 3). Both hold the same text
and chain it the same way; appends to one record are serialised on both, so concurrent
writers never fork a chain. The schema is versioned and migrated on open.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

from doseprint.errors import InputError, RecordChainError, RecordStateError, RecordStoreError
from doseprint.records.chain import canonical_json, event_hash, sha256_text, verify_record
from doseprint.records.dialect import (
    GUARD_TRIGGERS,
    Database,
    PostgresDatabase,
    SqliteDatabase,
    migration_files,
)
from doseprint.records.liveness import process_alive, process_identity
from doseprint.records.location import resolve_store_url
from doseprint.records.lots import release_problems
from doseprint.records.people import (
    control_began,
    people_problems,
    policy_of,
)
from doseprint.records.prescriptions import release_problem as newer_print_problem
from doseprint.records.prescriptions import review_print
from doseprint.records.signing import KeyRing, Signer, signature_problem
from doseprint.records.site import (
    SITE_CHAIN_ID,
    SiteEvent,
    SiteKind,
    append_site_event,
    key_ring,
    read_site_events,
    verify_site_events,
)
from doseprint.records.states import (
    DECISION_KINDS,
    QC_STEP_KINDS,
    STATUS_KINDS,
    DecisionKind,
    EventKind,
    QcStanding,
    RecordState,
    is_event_kind,
    qc_standing,
    qc_step_problem,
    release_problem,
    retest_problem,
    state_after,
    transition_problem,
)
from doseprint.records.values import (
    GENESIS_HASH,
    Event,
    JsonDict,
    Record,
    RecordSummary,
    content_text,
    last_acked,
)

__all__ = [
    "EVENT_COLUMNS",
    "SCHEMA_VERSION",
    "SYSTEM_ACTOR",
    "RecordStore",
    "SiteWriter",
    "UnreadableEvent",
    "event_from_row",
    "open_store",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3
"""The database schema this version writes; older stores are migrated on open, newer
ones are refused (RecordStoreError, exit 3). Version 1: tables and append-only guards;
2: an index of events by record and kind; 3: the site chain (people, lots, approvals,
sealed heads) and the events' signatures."""

SYSTEM_ACTOR = "doseprint"
"""``actor`` of events doseprint writes on its own (e.g. ``interrupted``)."""

_ID_PREFIX = re.compile(r"[0-9a-f-]+")


# ----------------------------------------------------------------------------------
# From rows to values

_EVENT_FIELDS = ("record_id", "seq", "utc", "actor", "kind", "data", "prev_hash", "hash")
EVENT_COLUMNS = ", ".join(_EVENT_FIELDS)
"""The columns :func:`event_from_row` reads, in its order: ``SELECT {EVENT_COLUMNS}``."""


class UnreadableEvent(ValueError):
    """A stored event row that is not a doseprint event: the database was altered.

    Attributes
    ----------
    record_id, kind, utc : str
        As stored.
    seq : int
        As stored.
    why : {"json", "object", "kind"}
        Its data is not JSON, its data is JSON but not an object, or its kind is not one
        of :data:`~doseprint.records.states.EVENT_KINDS`.
    stored : Event or None
        For an unknown kind only: the row as an Event carrying that kind, so the chain
        check can report it after checking the event's place, links and hash
        (:func:`~doseprint.records.chain.verify_record`). Nothing else may use it.
    """

    def __init__(
        self,
        row: Sequence[Any],
        why: Literal["json", "object", "kind"],
        stored: Event | None = None,
    ) -> None:
        self.record_id = str(row[0])
        self.seq = int(row[1])
        self.utc = str(row[2])
        self.kind = str(row[4])
        self.why = why
        self.stored = stored
        super().__init__(self.reading_problem())

    def reading_problem(self) -> str:
        """The message when a record is read (``record show``, a release …)."""
        if self.why == "json":
            return f"record {self.record_id}: event {self.seq} data is not valid JSON (altered)"
        return f"record {self.record_id}: event {self.seq} is not a doseprint event (altered)"

    def verify_problem(self) -> str:
        """The problem ``record verify`` reports for unreadable data."""
        return (
            f"record {self.record_id}: event {self.seq} ({self.kind} at {self.utc}): "
            "data is not JSON (altered)"
        )


def event_from_row(row: Sequence[Any]) -> Event:
    """One row of the ``events`` table (``SELECT {EVENT_COLUMNS}``) as an Event.

    Parameters
    ----------
    row : sequence
        ``record_id, seq, utc, actor, kind, data, prev_hash, hash`` as the driver
        returns them; ``data`` is the stored canonical JSON text.

    Returns
    -------
    Event
        Its data parsed; equal to the Event the append returned.

    Raises
    ------
    UnreadableEvent
        The data is not a JSON object, or the kind is not a doseprint kind.
    """
    record_id, seq, utc, actor, kind, data, prev_hash, digest = row
    try:
        parsed = json.loads(data)
    except (TypeError, ValueError) as exc:
        raise UnreadableEvent(row, "json") from exc
    if not isinstance(parsed, dict):
        raise UnreadableEvent(row, "object")
    kind_text = str(kind)
    fields = (str(record_id), int(seq), str(utc), str(actor))
    if not is_event_kind(kind_text):
        # Typed as a kind it is not: only for the chain check to name it (see above).
        stored = Event(*fields, kind_text, parsed, str(prev_hash), str(digest))  # type: ignore[arg-type]
        raise UnreadableEvent(row, "kind", stored)
    return Event(*fields, kind_text, parsed, str(prev_hash), str(digest))


def _readable(rows: Iterable[Any]) -> Iterator[Event]:
    """The rows that read as events; the others are left to `record verify`."""
    for row in rows:
        with contextlib.suppress(UnreadableEvent):
            yield event_from_row(row)


_CREATED_UTC, _PRESCRIPTION_ID, _PATIENT, _CONTENT, _CONTENT_SHA256 = range(5)


def _record_row(conn: Database, record_id: str) -> Any:
    """A record's row: created_utc, prescription_id, patient, content, content_sha256."""
    return conn.execute(
        "SELECT created_utc, prescription_id, patient, content, content_sha256"
        " FROM records WHERE id = ?",
        (record_id,),
    ).fetchone()


def _event_rows(conn: Database, record_id: str) -> Iterable[Any]:
    """A record's event rows in order, for :func:`event_from_row`."""
    return conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE record_id = ? ORDER BY seq", (record_id,)
    )


def _content_of(text: Any) -> JsonDict | None:
    """A record's stored content parsed, or None when it is not a JSON object."""
    try:
        content = json.loads(text)
    except (TypeError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _content_problem(record_id: str) -> str:
    return f"record {record_id}: its content is not a JSON object (altered)"


def _state_of(kind: object) -> RecordState:
    """The status a stored status-changing kind leads to (``created`` for None)."""
    if isinstance(kind, str) and is_event_kind(kind):
        return state_after("created", kind)
    return "created"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and Z, e.g. ``2026-11-22T10:00:00.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ----------------------------------------------------------------------------------
# The store


class RecordStore:
    """An open record store. Make one with :func:`open_store`; close it when done.

    Thread-safe: one store may be shared by the threads of a print (one lock).
    """

    def __init__(
        self,
        conn: Database,
        url: str,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._conn = conn
        self._url = url
        self._dialect = conn.name
        self._clock = clock or _utc_now
        self._lock = threading.RLock()
        self._signer: Signer | None = None
        self._site_signer: Signer | None = None
        self._has_site: bool | None = None  # schema 3's tables; known after the first look

    @property
    def url(self) -> str:
        """The store as the user named it (or the default file's path), password masked."""
        return self._url

    @property
    def dialect(self) -> str:
        """The back end: ``"sqlite"`` or ``"postgresql"``."""
        return self._dialect

    @property
    def durable(self) -> bool:
        """False for a store that is gone once it is closed (SQLite ``:memory:``): fine
        for trying things out, never for the record of a print."""
        return self._conn.durable

    @property
    def signer(self) -> Signer | None:
        """Who signs what this store object writes (see :meth:`sign_as`)."""
        return self._signer

    def sign_as(self, signer: Signer | None, site: Signer | None = None) -> None:
        """Sign every event written from now on whose actor is ``signer.user_id`` with
        the signer's key; and, with ``site`` (the site key), seal the record's head in
        the site chain after every act that is not a print-log entry.

        In a store with accounts (:func:`~doseprint.records.people.is_controlled`) an
        event that is neither signed so nor written by doseprint itself is refused.
        """
        self._signer = signer
        self._site_signer = site

    def close(self) -> None:
        """Close the database connection. Idempotent."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Connection helpers

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn the driver's exceptions into RecordStoreError naming this store."""
        try:
            yield
        except self._conn.error_types() as exc:
            raise self._conn.store_error(exc) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Database]:
        """One write transaction; rolled back on error.

        Appends must call ``conn.lock_chain(record_id)`` before reading the head
        (:meth:`_append_rows` does).
        """
        with self._lock, self._errors():
            self._conn.begin_write()
            try:
                yield self._conn
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Database]:
        """One consistent read (a snapshot)."""
        with self._lock, self._errors():
            self._conn.begin_read()
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.commit()

    def _now(self) -> str:
        return _format_utc(self._clock())

    def now_utc(self) -> str:
        """The store clock's time, as events carry it (ISO 8601 UTC, ms, ``Z``)."""
        return self._now()

    # Schema

    def _schema_version(self) -> int:
        tables = self._conn.tables()
        if "schema_version" in tables:
            row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            return int(row[0] or 0)
        if tables:
            kind = "SQLite file" if self._dialect == "sqlite" else "PostgreSQL schema"
            raise RecordStoreError(
                f"record store {self._url}: this {kind} is not a doseprint record store",
                hint="Give another store with --db or DOSEPRINT_DB.",
            )
        return 0

    def schema_version(self) -> int:
        """The schema version the database is at (0 for an empty database)."""
        with self._reading():
            return self._schema_version()

    def migrate(self, target: int = SCHEMA_VERSION) -> list[int]:
        """Bring the database to schema version ``target`` (done by :func:`open_store`).

        The missing migrations run in order inside one transaction, with the version
        table read again under the writers' lock, so two processes opening a new store
        at once migrate it once.

        Parameters
        ----------
        target : int
            Up to which version; :data:`SCHEMA_VERSION` except in tests of migration.

        Returns
        -------
        list of int
            The versions applied (empty when the store was up to date).

        Raises
        ------
        RecordStoreError
            The store is newer than this doseprint, is not a record store, or cannot be
            written.
        """
        if not 1 <= target <= SCHEMA_VERSION:
            raise ValueError(f"schema version {target} is not in 1..{SCHEMA_VERSION}")
        with self._reading():
            version = self._schema_version()
        if version > SCHEMA_VERSION:
            raise RecordStoreError(
                f"record store {self._url}: written by a newer doseprint (schema version "
                f"{version}; this version reads up to {SCHEMA_VERSION})",
                hint="Upgrade doseprint to read this store.",
            )
        if version >= target:
            return []
        scripts = migration_files(self._dialect)
        applied: list[int] = []
        with self._transaction() as conn:
            conn.lock_schema()
            # Read again under the lock: another process may have migrated it meanwhile.
            for number in range(self._schema_version() + 1, target + 1):
                conn.run_script(scripts[number - 1])
                conn.execute(
                    "INSERT INTO schema_version (version, applied_utc) VALUES (?, ?)",
                    (number, self._now()),
                )
                applied.append(number)
        self._has_site = None
        if applied:
            logger.info("record store %s: migrated to schema version %d", self._url, target)
        return applied

    # Finding records

    def _resolve(self, conn: Database, record_id: str) -> str:
        text = record_id.strip().lower()
        if not text or not _ID_PREFIX.fullmatch(text):
            raise InputError(
                f"'{record_id}' is not a record id",
                file=self._url,
                hint="Record ids are hexadecimal, as `doseprint record list` shows them.",
            )
        # Ids hold only 0-9, a-f and '-', all below '~': a range scan finds the prefix.
        rows = conn.execute(
            "SELECT id FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT 4",
            (text, text + "~"),
        ).fetchall()
        if not rows:
            raise InputError(
                f"no record '{record_id}'",
                file=self._url,
                hint="`doseprint record list` shows the records in this store.",
            )
        if len(rows) > 1:
            shown = ", ".join(str(row[0]) for row in rows[:3])
            raise InputError(
                f"record id '{record_id}' is ambiguous: it starts {shown}"
                + (" …" if len(rows) > 3 else ""),
                file=self._url,
                hint="Give more characters of the id.",
            )
        return str(rows[0][0])

    def resolve_id(self, record_id: str) -> str:
        """The full id of the one record whose id starts with ``record_id``.

        Raises
        ------
        InputError
            No record, or more than one, starts so.
        """
        with self._reading() as conn:
            return self._resolve(conn, record_id)

    # Writing

    def create(self, content: Mapping[str, Any], actor: str) -> str:
        """Create a record with its content, written once and never changed.

        Parameters
        ----------
        content : mapping
            JSON: identity, job hashes, tablets and doses, materials, machine. Put the
            prescription id and patient reference in ``content["prescription"]`` as
            ``id`` and ``patient`` for ``record list``.
        actor : str
            Who creates it (the operator).

        Returns
        -------
        str
            The new record's id (UUID4).

        Raises
        ------
        InputError
            ``actor`` is empty.
        RecordStoreError
            The store cannot be written.
        ValueError, TypeError
            ``content`` is not JSON (NaN, a set, an object): a bug in the caller.
        """
        _check_actor(actor, self._url)
        text = canonical_json(dict(content))
        record_id = str(uuid.uuid4())
        with self._transaction() as conn:
            self._insert_record(conn, record_id, text, actor, {})
        return record_id

    def create_print(
        self, content: Mapping[str, Any], actor: str, supersede_reason: str = ""
    ) -> str:
        """Create a print's record, in one transaction with the review of its
        prescription's earlier records (:mod:`doseprint.records.prescriptions`).

        The prescription (``content["prescription"]["id"]``) is locked until the
        transaction ends, so two prints of it started at once are reviewed one after the
        other, the second seeing the first's record.

        Parameters
        ----------
        content, actor
            As for :meth:`create`.
        supersede_reason : str
            Why the prescription is printed again; needed when an earlier print of it
            stands.

        Returns
        -------
        str
            The new record's id. Each record it supersedes gets a ``superseded`` event
            (``superseded_by``: this id, ``reason``), and this record's ``created`` event
            names them (``supersedes``, ``reason``).

        Raises
        ------
        InputError
            A print of the prescription is under way, or one stands and no reason was
            given, or a reason was given for a prescription this store never printed
            (:func:`~doseprint.records.prescriptions.review_reprint`). Nothing is
            written.
        PermissionRefusedError
            In a store with accounts, the operator may not supersede.
        RecordStoreError
            The store cannot be written.
        """
        _check_actor(actor, self._url)
        text = canonical_json(dict(content))
        reason = supersede_reason.strip()
        signer = self._signer if self._signer and self._signer.user_id == actor.strip() else None
        record_id = str(uuid.uuid4())
        with self._transaction() as conn:
            superseded = review_print(conn, json.loads(text), reason, signer, self._url)
            extra: JsonDict = {"supersedes": superseded, "reason": reason} if superseded else {}
            self._insert_record(conn, record_id, text, actor, extra)
            for earlier_id in superseded:
                data = _prepare_data("superseded",
                                     {"superseded_by": record_id, "reason": reason}, self._url)
                self._append_rows(conn, earlier_id, [("superseded", data)], actor)
        return record_id

    def _insert_record(self, conn: Database, record_id: str, text: str, actor: str,
                       created: JsonDict) -> Event:
        """Insert a record and its ``created`` event (inside a write transaction);
        ``created`` is more data for that event."""
        stored: JsonDict = json.loads(text)
        digest = sha256_text(text)
        utc = self._now()
        conn.execute(
            "INSERT INTO records (id, created_utc, prescription_id, patient, content,"
            " content_sha256) VALUES (?, ?, ?, ?, ?, ?)",
            (
                record_id,
                utc,
                content_text(stored, "id"),
                content_text(stored, "patient"),
                text,
                digest,
            ),
        )
        data: JsonDict = self._with_name(
            actor, "created", json.loads(canonical_json({**created, "content_sha256": digest})))
        event = _insert_event(conn, record_id, 0, utc, actor.strip(), "created", data,
                              GENESIS_HASH)
        self._sign_events(conn, [event])
        self._seal_head(conn, event)
        return event

    def append(self, record_id: str, kind: EventKind, data: Mapping[str, Any], actor: str) -> Event:
        """Append one event to a record, durably (one committed transaction).

        Parameters
        ----------
        record_id : str
            The record's id or a unique prefix of it.
        kind : EventKind
            Anything but ``created``. Status kinds must follow the transitions of
            :mod:`doseprint.records.states`; ``released``/``rejected`` need ``data["meaning"]``.
        data : mapping
            JSON details. For ``progress`` and ``lines`` put the last acknowledged line
            number in ``last_acked``. For ``started``, ``process`` is added
            (:func:`process_identity`) unless given.
        actor : str
            Who did it.

        Returns
        -------
        Event
            As stored, with its hashes.

        Raises
        ------
        InputError
            Unknown or ambiguous record id; empty actor, meaning, reason or outcome; a QC
            step out of turn (:func:`~doseprint.records.states.qc_step_problem`,
            :func:`~doseprint.records.states.retest_problem`: a ``qc`` after a failed one
            with no investigation open, an investigation without a failed QC …).
        ResultError
            The event is not allowed in the record's status (e.g. a release of a print
            that did not complete).
        RecordStoreError
            The store cannot be written.
        ValueError, TypeError
            ``kind`` is ``created`` or unknown, or ``data`` is not JSON: a bug in the
            caller.
        """
        return self.append_many(record_id, [(kind, data)], actor)[0]

    def append_many(
        self,
        record_id: str,
        events: Sequence[tuple[EventKind, Mapping[str, Any]]],
        actor: str,
    ) -> list[Event]:
        """Append several events in one transaction: all are written or none.

        For batching the print log (``lines``), and for a final batch plus its status.
        Parameters and errors as :meth:`append`.

        Returns
        -------
        list of Event
            As stored, in order.
        """
        _check_actor(actor, self._url)
        prepared = [(kind, _prepare_data(kind, data, self._url)) for kind, data in events]
        if not prepared:
            return []
        with self._transaction() as conn:
            return self._append_rows(conn, self._resolve(conn, record_id), prepared, actor)

    def _append_rows(
        self,
        conn: Database,
        record_id: str,
        prepared: Sequence[tuple[EventKind, JsonDict]],
        actor: str,
    ) -> list[Event]:
        """Insert checked events after a record's head (inside a write transaction)."""
        conn.lock_chain(record_id)
        seq, prev_hash = _head(conn, record_id)
        state = _current_state(conn, record_id)
        # Read only when a QC step is added: the print log is appended often.
        standing = (_qc_standing(conn, record_id)
                    if any(kind in QC_STEP_KINDS for kind, _ in prepared) else QcStanding())
        written: list[Event] = []
        for kind, data in prepared:
            why = transition_problem(state, kind)
            if why is not None:
                raise RecordStateError(
                    f"record {record_id}: cannot add '{kind}': {why}",
                    hint="`doseprint record show ID` shows the record's status.",
                )
            why = qc_step_problem(standing, kind) or retest_problem(standing, kind)
            if why is not None:
                # Refused like bad input (exit 2): the request does not fit the record's
                # QC, and nothing is written.
                raise InputError(
                    f"record {record_id}: cannot add '{kind}': {why}",
                    file=self._url,
                    hint="`doseprint record show ID` shows its QC and investigations; "
                    "`doseprint record investigate ID --by NAME --reason TEXT` opens one "
                    "on a failed QC.",
                )
            seq += 1
            event = _insert_event(
                conn, record_id, seq, self._now(), actor.strip(), kind,
                self._with_name(actor, kind, data), prev_hash
            )
            written.append(event)
            prev_hash = event.hash
            state = state_after(state, kind)
            standing = standing.after(event)
        self._sign_events(conn, written)
        if any(e.kind not in _UNSEALED_KINDS for e in written):
            self._seal_head(conn, written[-1])
        return written

    def _with_name(self, actor: str, kind: str, data: JsonDict) -> JsonDict:
        """An act the signer signs carries their printed name (Part 11 §11.50), beside the
        user id the event's actor holds; print-log entries do not repeat it."""
        signer = self._signer
        if signer is None or signer.user_id != actor.strip() or kind in _UNSEALED_KINDS:
            return data
        return {**data, "signer_name": signer.name}

    def _sign_events(self, conn: Database, events: Sequence[Event]) -> None:
        """Write each event's signature by the signer; refuse an unsigned one in a store
        with accounts (doseprint's own ``interrupted`` apart)."""
        signer = self._signer
        controlled: bool | None = None
        if self._has_site is None:
            self._has_site = "event_signatures" in conn.tables()
        if not self._has_site:
            return  # a store opened below schema 3 (migration tests) has no accounts
        for event in events:
            if signer is not None and event.actor == signer.user_id:
                conn.execute(
                    "INSERT INTO event_signatures (record_id, seq, signer, key_id, signature)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (event.record_id, event.seq, signer.user_id, signer.key_id,
                     signer.sign(event.hash)),
                )
                continue
            if event.actor == SYSTEM_ACTOR and event.kind in _SYSTEM_KINDS:
                continue
            if controlled is None:
                controlled = _has_accounts(conn)
            if controlled:
                raise InputError(
                    f"this store has user accounts: '{event.kind}' by {event.actor!r} must be "
                    "signed by a signed-in user", file=self._url, key="--by",
                    hint="give your user id (--by/--operator) and your password")

    def _seal_head(self, conn: Database, event: Event) -> None:
        """Seal a record's new head with the site key, in the site chain."""
        site = self._site_signer
        if site is None or not self._has_site:
            return
        append_site_event(conn, self._now(), "head_sealed",
                          {"record_id": event.record_id, "seq": event.seq, "hash": event.hash},
                          site.user_id, site)

    # The site chain

    def site_events(self, kinds: Iterable[str] | None = None) -> list[SiteEvent]:
        """The site chain (people, policy, lots, approvals, seals), oldest first."""
        with self._reading() as conn:
            return read_site_events(conn, kinds)

    @contextlib.contextmanager
    def site_writer(self) -> Iterator[SiteWriter]:
        """One write transaction on the site chain, locked against other writers: read
        it, decide, append; all of it is committed together or not at all."""
        with self._transaction() as conn:
            conn.lock_chain(SITE_CHAIN_ID)
            yield SiteWriter(conn, self._now)

    def append_site(self, kind: SiteKind, data: Mapping[str, Any], actor: str,
                    signer: Signer | None) -> SiteEvent:
        """Append one site event in its own transaction (see :meth:`site_writer`)."""
        with self.site_writer() as writer:
            return writer.append(kind, data, actor, signer)

    def _decide(
        self, kind: DecisionKind, record_id: str, by: str, meaning: str,
        justification: str = "",
    ) -> Event:
        _check_signer(by, self._url)
        if not meaning.strip():
            raise InputError(
                "the meaning of the signature is empty",
                key="--meaning",
                file=self._url,
                hint="Say what the signature means, e.g. 'QA release for dispensing'.",
            )
        plain: JsonDict = {"meaning": meaning.strip()}
        if justification.strip():
            plain["justification"] = justification.strip()
        with self._transaction() as conn:
            full_id = self._resolve(conn, record_id)
            conn.lock_chain(full_id)
            if kind == "released":
                plain.update(_separation(conn, full_id, by.strip(), justification.strip()))
            data = _prepare_data(kind, plain, self._url)
            # A record whose chain does not verify is not signed.
            problems = _verify_stored(conn, full_id)
            if problems:
                raise RecordChainError(
                    f"record {full_id} cannot be {kind}: {problems[0]}",
                    hint="Run `doseprint record verify` and investigate before signing.",
                )
            if kind == "released" and _current_state(conn, full_id) == "completed":
                # One prescription, one releasable batch, whatever wrote the records.
                newer = newer_print_problem(conn, full_id)
                if newer is not None:
                    raise RecordStateError(
                        f"record {full_id} cannot be released: {newer}",
                        hint="release the latest print of the prescription; reject the "
                             "others")
                # Release needs a passed QC (uniformity of mass, doses), the latest one
                # counting, and no open investigation: a failed batch is never released.
                why = release_problem(_qc_standing(conn, full_id))
                if why is not None:
                    raise RecordStateError(
                        f"record {full_id} {why}: only a completed record whose latest QC "
                        "passed, with no investigation open, can be released",
                        hint="weigh the tablets and run `doseprint record qc ID --mass-mg …`;"
                        " a failed batch is rejected, or investigated (`doseprint record "
                        "investigate`) and weighed again",
                    )
            stopped = release_problems(conn, full_id) if kind == "released" else []
            if stopped:  # its material lots (records/lots.py)
                raise RecordStateError(
                    f"record {full_id} cannot be released: " + "; ".join(stopped),
                    hint="a batch made from a blocked, unknown or missing lot is "
                         "rejected, not released (`doseprint lot show LOT`)")
            return self._append_rows(conn, full_id, [(kind, data)], by)[0]

    def release(self, record_id: str, by: str, meaning: str, justification: str = "") -> Event:
        """Sign a completed record as released for dispensing.

        Parameters
        ----------
        record_id : str
            Id or unique prefix.
        by : str
            The signer's printed name.
        meaning : str
            What the signature means (e.g. "QA release for dispensing").
        justification : str
            Why the releaser is also the one who printed or recorded QC, where the site
            policy allows that at all (then it is required; see :func:`_separation`).

        Returns
        -------
        Event
            The ``released`` event.

        Raises
        ------
        InputError
            Unknown or ambiguous id, empty name or meaning.
        ResultError
            The record's status is not ``completed``, it has no QC, its latest QC failed,
            an investigation is open (:func:`~doseprint.records.states.release_problem`),
            its prescription was printed again since and that newer record is not
            rejected (:func:`~doseprint.records.prescriptions.release_problem`), or its
            material lots stop it (:func:`~doseprint.records.lots.release_problems`: a
            lot blocked since the print; with accounts, a tool without a received lot).
        RecordChainError
            The record's hash chain does not verify.
        """
        return self._decide("released", record_id, by, meaning, justification)

    def open_investigation(self, record_id: str, reason: str, actor: str) -> Event:
        """Open an investigation of a record's failed QC (``investigation_opened``).

        While it is open the tablets may be weighed again (a new ``qc`` event; the
        failed one stays) and the record cannot be released.

        Parameters
        ----------
        record_id : str
            Id or unique prefix.
        reason : str
            Why the failed QC is investigated (what is suspected).
        actor : str
            Who opens it (the role check, when there is one, goes here).

        Returns
        -------
        Event
            Its data: ``reason`` and ``failed_qc_seq``, the failed QC's ``seq``.

        Raises
        ------
        InputError
            Unknown or ambiguous id, empty name or reason, the latest QC did not fail
            (or there is none), or an investigation is already open.
        ResultError
            The record is not ``completed``.
        """
        return self._investigation_step("investigation_opened", record_id, reason, actor)

    def close_investigation(self, record_id: str, outcome: str, actor: str) -> Event:
        """Close a record's open investigation (``investigation_closed``).

        Whether the batch may then be released is decided by the latest QC, as always.

        Parameters
        ----------
        record_id : str
            Id or unique prefix.
        outcome : str
            What the investigation found and decided.
        actor : str
            Who closes it.

        Returns
        -------
        Event
            Its data: ``outcome`` and ``investigation_seq``, the ``seq`` of the
            ``investigation_opened`` event it closes.

        Raises
        ------
        InputError
            Unknown or ambiguous id, empty name or outcome, or no investigation is open.
        ResultError
            The record is not ``completed``.
        """
        return self._investigation_step("investigation_closed", record_id, outcome, actor)

    def _investigation_step(
        self,
        kind: Literal["investigation_opened", "investigation_closed"],
        record_id: str,
        text: str,
        actor: str,
    ) -> Event:
        """Open or close an investigation: its reason or outcome, linked to the failed QC
        or to the investigation it closes, checked against the QC standing under the
        chain's lock."""
        _check_signer(actor, self._url)
        key = _NEEDS_TEXT[kind]
        if not text.strip():
            raise InputError(f"the {key} is empty: say what is investigated or found",
                             key=f"--{key}", file=self._url)
        with self._transaction() as conn:
            full_id = self._resolve(conn, record_id)
            conn.lock_chain(full_id)
            standing = _qc_standing(conn, full_id)
            link = (("failed_qc_seq", standing.latest_qc_seq) if kind == "investigation_opened"
                    else ("investigation_seq", standing.investigation_seq))
            data = _prepare_data(kind, {key: text.strip(), link[0]: link[1]}, self._url)
            return self._append_rows(conn, full_id, [(kind, data)], actor)[0]

    def reject(self, record_id: str, by: str, meaning: str) -> Event:
        """Sign a record as rejected: an ended print, or a released one recalled.

        Parameters and errors as :meth:`release`; allowed from ``completed``,
        ``failed``, ``aborted``, ``interrupted`` and ``released``.
        """
        return self._decide("rejected", record_id, by, meaning)

    def mark_interrupted_stale(self) -> list[str]:
        """Append ``interrupted`` to every print whose process is gone.

        A record counts as gone when its status is ``printing``, its ``started`` event
        names a process on this host, and that process no longer runs (or the host
        restarted since); or when its status is still ``created`` (the print ended before
        its ``started`` event could be written, e.g. the store failed) and the process its
        content names (``machine.process``) no longer runs. Records of another host are
        left alone. The event carries ``last_acked`` from the latest progress or lines
        event.

        Returns
        -------
        list of str
            The ids marked.
        """
        with self._reading() as conn:
            candidates = [
                (record_id, identity)
                for record_id, identity in [*_printing_processes(conn),
                                            *_created_processes(conn)]
                if process_alive(identity) is False
            ]
        marked: list[str] = []
        for record_id, identity in candidates:
            with self._transaction() as conn:
                conn.lock_chain(record_id)
                # Another doseprint may have marked it since the read above.
                if _current_state(conn, record_id) not in ("created", "printing"):
                    continue
                data: JsonDict = {
                    "reason": f"the printing process (pid {identity.get('pid')} on "
                    f"{identity.get('host')}) is no longer running",
                    "last_acked": _stored_last_acked(conn, record_id),
                    "process": dict(identity),
                }
                self._append_rows(
                    conn,
                    record_id,
                    [("interrupted", _prepare_data("interrupted", data, self._url))],
                    SYSTEM_ACTOR,
                )
            logger.warning("record %s: the print was interrupted; marked so", record_id)
            marked.append(record_id)
        return marked

    # Reading

    def get(self, record_id: str) -> Record:
        """Read one record with all its events.

        Parameters
        ----------
        record_id : str
            Id or unique prefix.

        Returns
        -------
        Record

        Raises
        ------
        InputError
            Unknown or ambiguous id.
        RecordChainError
            A stored field does not parse (the database was altered).
        """
        with self._reading() as conn:
            full_id = self._resolve(conn, record_id)
            row = _record_row(conn, full_id)
            try:
                events = tuple(event_from_row(event) for event in _event_rows(conn, full_id))
            except UnreadableEvent as exc:
                raise RecordChainError(
                    exc.reading_problem(), hint="Run `doseprint record verify`."
                ) from exc
        content = _content_of(row[_CONTENT])
        if content is None:
            raise RecordChainError(
                _content_problem(full_id), hint="Run `doseprint record verify`."
            )
        return Record(
            id=full_id,
            created_utc=str(row[_CREATED_UTC]),
            content=content,
            content_sha256=str(row[_CONTENT_SHA256]),
            events=events,
        )

    def list_records(self) -> list[RecordSummary]:
        """Every record, oldest first, with its derived status.

        Returns
        -------
        list of RecordSummary
        """
        with self._reading() as conn:
            rows = conn.execute(
                f"WITH s AS ({_STATUS_KIND_SQL}) SELECT s.id, r.created_utc,"
                " r.prescription_id, r.patient, s.kind FROM s JOIN records r ON r.id = s.id"
                " ORDER BY r.created_utc, r.id",
                STATUS_KINDS,
            ).fetchall()
        summaries = []
        for record_id, created_utc, prescription_id, patient, kind in rows:
            summaries.append(
                RecordSummary(
                    id=str(record_id),
                    created_utc=str(created_utc),
                    prescription_id=str(prescription_id),
                    patient=str(patient),
                    status=_state_of(kind),
                )
            )
        return summaries

    def heads(self) -> list[tuple[str, str, int, str]]:
        """Every record's head: (id, created_utc, seq, hash) of its last event, oldest
        record first; for anchors (:mod:`doseprint.records.anchor`)."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT r.id, r.created_utc, e.seq, e.hash FROM records r JOIN events e"
                " ON e.record_id = r.id AND e.seq = (SELECT MAX(seq) FROM events"
                " WHERE record_id = r.id) ORDER BY r.created_utc, r.id").fetchall()
        return [(str(a), str(b), int(c), str(d)) for a, b, c, d in rows]

    def stored_hashes(self, record_id: str) -> dict[int, str] | None:
        """A record's event hashes by seq, or None when there is no such record."""
        with self._reading() as conn:
            if conn.execute("SELECT 1 FROM records WHERE id = ?",
                            (record_id,)).fetchone() is None:
                return None
            return {int(seq): str(digest) for seq, digest in conn.execute(
                "SELECT seq, hash FROM events WHERE record_id = ?", (record_id,))}

    # Verification

    def verify(self, record_id: str | None = None,
               site_keys: Iterable[Any] = ()) -> list[str]:
        """Recompute the hash chain of one record, or of the whole store.

        Parameters
        ----------
        record_id : str or None
            Id or unique prefix; None checks every record, and also looks for events
            without a record and for removed append-only triggers.

        Returns
        -------
        list of str
            Problems, each naming the record and the first event that does not match.
            Empty when everything verifies.

        Raises
        ------
        InputError
            Unknown or ambiguous id.
        """
        problems: list[str] = []
        with self._reading() as conn:
            site = read_site_events(conn)
            ring = key_ring(site, site_keys)
            begun = control_began(site)
            if record_id is not None:
                ids = [self._resolve(conn, record_id)]
            else:
                ids = [
                    str(row[0])
                    for row in conn.execute("SELECT id FROM records ORDER BY created_utc, id")
                ]
            for full_id in ids:
                found = _verify_stored(conn, full_id)
                if not found:
                    found = _verify_signatures(conn, full_id, ring, begun)
                problems.extend(found)
            if record_id is None:
                problems.extend(_verify_store_wide(conn))
                problems.extend(verify_site_events(site, ring))
                problems.extend(people_problems(site))
            problems.extend(_verify_seals(conn, site, ids if record_id is not None else None))
        return problems


# ----------------------------------------------------------------------------------
# Row helpers (called inside a transaction)


_SYSTEM_KINDS = frozenset({"interrupted"})
"""Kinds doseprint writes on its own (actor :data:`SYSTEM_ACTOR`), never signed."""

_UNSEALED_KINDS = frozenset({"progress", "lines", "firmware", "error"})
"""Print-log kinds: a record's head is sealed after every other act, not after these."""


class SiteWriter:
    """The site chain inside one write transaction (:meth:`RecordStore.site_writer`)."""

    def __init__(self, conn: Database, now: Callable[[], str]) -> None:
        self._conn = conn
        self._now = now

    def events(self, kinds: Iterable[str] | None = None) -> list[SiteEvent]:
        return read_site_events(self._conn, kinds)

    def append(self, kind: SiteKind, data: Mapping[str, Any], actor: str,
               signer: Signer | None) -> SiteEvent:
        return append_site_event(self._conn, self._now(), kind, data, actor, signer)


def _separation(conn: Database, record_id: str, by: str, justification: str) -> JsonDict:
    """Separation of duties for a release, in a store with accounts: the releaser is
    neither the operator who printed nor anybody who recorded QC, unless the site policy
    allows it, and then only with a justification. Returns what the release records of
    it (nothing in a store without accounts).

    Raises
    ------
    RecordStateError
        The policy does not allow it, or allows it and no justification was given.
    """
    if "site_events" not in conn.tables() or not _has_accounts(conn):
        return {}
    policy = policy_of(read_site_events(conn, ("policy_set",)))
    rows = conn.execute(
        "SELECT DISTINCT kind, actor FROM events WHERE record_id = ?"
        " AND kind IN ('created', 'started', 'qc')", (record_id,)).fetchall()
    printed = {str(actor) for kind, actor in rows if kind in ("created", "started")}
    weighed = {str(actor) for kind, actor in rows if kind == "qc"}
    roles = []
    if by in printed:
        roles.append(("printed", policy.release_by_operator, "release_by_operator"))
    if by in weighed:
        roles.append(("recorded QC of", policy.release_by_qc, "release_by_qc"))
    for what, allowed, key in roles:
        if not allowed:
            raise RecordStateError(
                f"record {record_id}: {by} {what} this batch and may not also release it "
                "(separation of duties)",
                hint="another pharmacist releases it; a one-person site sets "
                     f"\"{key}\": true in its policy and then justifies each such release")
        if not justification:
            raise InputError(
                f"{by} {what} this batch: the site policy allows the same person to release "
                "it only with a recorded justification", file="command line",
                key="--justification")
    return {"same_person": [what for what, _, _ in roles]} if roles else {}


def _has_accounts(conn: Database) -> bool:
    return conn.execute(
        "SELECT 1 FROM site_events WHERE kind = 'user_added' LIMIT 1").fetchone() is not None


def _verify_signatures(conn: Database, record_id: str, ring: KeyRing,
                       begun: str | None) -> list[str]:
    """Each event's signature: by its actor's key, over its hash. Once the store has
    accounts, every event but doseprint's own must be signed."""
    signatures = {
        int(row[0]): (str(row[1]), str(row[2]), str(row[3]))
        for row in conn.execute(
            "SELECT seq, signer, key_id, signature FROM event_signatures WHERE record_id = ?",
            (record_id,))
    }
    problems = []
    signed_before = False
    previous_utc = ""
    for row in _event_rows(conn, record_id):
        event = event_from_row(row)  # the chain verified, so every row reads
        where = f"record {record_id}: event {event.seq} ({event.kind} at {event.utc})"
        found = signatures.pop(event.seq, None)
        # In a store with accounts, an unsigned event is let through as written before the
        # first account only if nothing says otherwise: not dated before the event it
        # follows (a back-dated tail), and not after a signed one.
        backdated = event.utc < previous_utc
        previous_utc = max(previous_utc, event.utc)
        if found is None:
            if event.actor == SYSTEM_ACTOR and event.kind in _SYSTEM_KINDS:
                continue
            if begun is None or (event.utc < begun and not backdated and not signed_before):
                continue
            problems.append(f"{where}: is not signed, in a store with user accounts "
                            "(altered, or written around doseprint)")
            continue
        signed_before = True
        signer, key_id, signature = found
        if signer != event.actor:
            problems.append(f"{where}: signed by {signer!r} but done by {event.actor!r}")
            continue
        why = signature_problem(ring, signer, key_id, signature, event.hash)
        if why is not None:
            problems.append(f"{where}: {why}")
    for seq in sorted(signatures):
        problems.append(f"record {record_id}: a signature for event {seq}, which is not there "
                        "(the event was removed)")
    return problems


def _verify_seals(conn: Database, site: Sequence[SiteEvent],
                  record_ids: Sequence[str] | None) -> list[str]:
    """Every sealed head must still be an event of its record, with the same hash: a
    removed last event, a removed record or an edited and re-chained one shows here."""
    problems = []
    wanted = set(record_ids) if record_ids is not None else None
    for event in site:
        if event.kind != "head_sealed":
            continue
        record_id, seq, digest = (event.data.get(k) for k in ("record_id", "seq", "hash"))
        if wanted is not None and record_id not in wanted:
            continue
        row = conn.execute("SELECT hash FROM events WHERE record_id = ? AND seq = ?",
                           (str(record_id), seq if isinstance(seq, int) else -1)).fetchone()
        if row is None:
            exists = conn.execute("SELECT 1 FROM records WHERE id = ?",
                                  (str(record_id),)).fetchone()
            what = (f"its event {seq} is gone (removed after it was sealed)" if exists
                    else "the record is gone (removed after it was sealed)")
            problems.append(f"record {record_id}: sealed at site event {event.seq}, but {what}")
        elif str(row[0]) != digest:
            problems.append(f"record {record_id}: event {seq} differs from the head sealed at "
                            f"site event {event.seq} (altered and re-chained)")
    return problems


def _check_actor(actor: str, url: str) -> None:
    if not actor.strip():
        raise InputError(
            "the actor is empty: every event must say who did it", key="actor", file=url
        )


_NEEDS_TEXT: dict[str, str] = {
    **{kind: "meaning" for kind in DECISION_KINDS},
    "investigation_opened": "reason",
    "investigation_closed": "outcome",
}
"""The data key (non-empty text) each kind must carry."""


def _check_signer(by: str, url: str) -> None:
    """A signature or QC decision names its signer (``--by``)."""
    if not by.strip():
        raise InputError("the signer's name is empty", key="--by", file=url)


def _prepare_data(kind: str, data: Mapping[str, Any], url: str) -> JsonDict:
    """Check an event's kind and data and return the data as it will read back."""
    if not is_event_kind(kind) or kind == "created":
        # A bug in the caller, not a user's mistake.
        raise ValueError(f"cannot append an event of kind {kind!r}")
    plain = dict(data)
    if kind == "started" and "process" not in plain:
        plain["process"] = process_identity()
    needed = _NEEDS_TEXT.get(kind)
    if needed is not None:
        text = plain.get(needed)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"a '{kind}' event needs a {needed}", key=needed, file=url)
    if kind == "superseded":
        reason, by = plain.get("reason"), plain.get("superseded_by")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("a 'superseded' event needs a reason", key="--supersede-reason",
                             file=url)
        if not isinstance(by, str) or not by:
            raise ValueError("a 'superseded' event names the record that supersedes it")
    # Round-trip so the returned Event equals what get() will read back.
    parsed: JsonDict = json.loads(canonical_json(plain))
    return parsed


def _insert_event(
    conn: Database,
    record_id: str,
    seq: int,
    utc: str,
    actor: str,
    kind: EventKind,
    data: JsonDict,
    prev_hash: str,
) -> Event:
    digest = event_hash(record_id, seq, utc, actor, kind, data, prev_hash)
    conn.execute(
        f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (record_id, seq, utc, actor, kind, canonical_json(data), prev_hash, digest),
    )
    return Event(record_id, seq, utc, actor, kind, data, prev_hash, digest)


def _head(conn: Database, record_id: str) -> tuple[int, str]:
    """(seq, hash) of a record's last event."""
    row = conn.execute(
        "SELECT seq, hash FROM events WHERE record_id = ? ORDER BY seq DESC LIMIT 1",
        (record_id,),
    ).fetchone()
    if row is None:
        raise RecordChainError(f"record {record_id}: has no events (altered)")
    return int(row[0]), str(row[1])


def _current_state(conn: Database, record_id: str) -> RecordState:
    placeholders = ", ".join("?" for _ in STATUS_KINDS)
    row = conn.execute(
        f"SELECT kind FROM events WHERE record_id = ? AND kind IN ({placeholders})"
        " ORDER BY seq DESC LIMIT 1",
        (record_id, *STATUS_KINDS),
    ).fetchone()
    return _state_of(row[0] if row is not None else None)


def _qc_standing(conn: Database, record_id: str) -> QcStanding:
    """A record's QC standing, replayed from its stored QC steps."""
    placeholders = ", ".join("?" for _ in QC_STEP_KINDS)
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE record_id = ?"
        f" AND kind IN ({placeholders}) ORDER BY seq",
        (record_id, *sorted(QC_STEP_KINDS)),
    )
    return qc_standing(_readable(rows))


_STATUS_KIND_SQL = (
    "SELECT r.id AS id, (SELECT e.kind FROM events e WHERE e.record_id = r.id"
    f" AND e.kind IN ({', '.join('?' for _ in STATUS_KINDS)})"
    " ORDER BY e.seq DESC LIMIT 1) AS kind FROM records r"
)
"""Each record's id and its last status-changing kind (bind STATUS_KINDS)."""


def _printing_processes(conn: Database) -> list[tuple[str, JsonDict]]:
    """(record id, started.process) of every record whose status is ``printing``."""
    started: dict[str, Event] = {}
    columns = ", ".join(f"e.{name}" for name in _EVENT_FIELDS)
    rows = conn.execute(
        f"WITH s AS ({_STATUS_KIND_SQL}) SELECT {columns} FROM s"
        " JOIN events e ON e.record_id = s.id AND e.kind = 'started'"
        " WHERE s.kind = 'started' ORDER BY e.record_id, e.seq",
        STATUS_KINDS,
    )
    for event in _readable(rows):
        started[event.record_id] = event  # the latest started event counts
    found = []
    for record_id, event in started.items():
        process = event.data.get("process")
        if isinstance(process, dict):
            found.append((record_id, process))
    return found


def _created_processes(conn: Database) -> list[tuple[str, JsonDict]]:
    """(record id, content.machine.process) of every record whose status is still
    ``created`` and whose content names the process that made it."""
    rows = conn.execute(
        f"WITH s AS ({_STATUS_KIND_SQL}) SELECT r.id, r.content FROM s"
        " JOIN records r ON r.id = s.id WHERE s.kind = 'created'",
        STATUS_KINDS,
    ).fetchall()
    found = []
    for record_id, text in rows:
        try:
            content = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            continue  # verify reports an unreadable content; nothing to tell here
        machine = content.get("machine") if isinstance(content, dict) else None
        process = machine.get("process") if isinstance(machine, dict) else None
        if isinstance(process, dict):
            found.append((str(record_id), process))
    return found


def _stored_last_acked(conn: Database, record_id: str) -> int | None:
    """``last_acked`` of a record's latest progress or lines event that has one."""
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE record_id = ?"
        " AND kind IN ('progress', 'lines') ORDER BY seq DESC",
        (record_id,),
    )
    return last_acked(_readable(rows))


def _verify_stored(conn: Database, record_id: str) -> list[str]:
    """verify_record() plus the checks only the database form needs."""
    row = _record_row(conn, record_id)
    content = _content_of(row[_CONTENT])
    if content is None:
        return [_content_problem(record_id)]
    problems = []
    if (str(row[_PRESCRIPTION_ID]), str(row[_PATIENT])) != (
        content_text(content, "id"),
        content_text(content, "patient"),
    ):
        problems.append(
            f"record {record_id}: its listed prescription or patient differs from its content"
        )
    events = []
    for event_row in _event_rows(conn, record_id):
        try:
            events.append(event_from_row(event_row))
        except UnreadableEvent as exc:
            if exc.stored is None:
                problems.append(exc.verify_problem())
                return problems
            # An unknown kind: the chain check reports it after the event's place, links
            # and hash; nothing after it is looked at.
            events.append(exc.stored)
            break
    record = Record(
        record_id, str(row[_CREATED_UTC]), content, str(row[_CONTENT_SHA256]), tuple(events)
    )
    problems.extend(verify_record(record))
    return problems


def _verify_store_wide(conn: Database) -> list[str]:
    problems = [
        f"events of record {row[0]} have no record (the record was removed)"
        for row in conn.execute(
            "SELECT DISTINCT record_id FROM events WHERE record_id NOT IN (SELECT id FROM records)"
        )
    ]
    missing = sorted(set(GUARD_TRIGGERS) - conn.triggers())
    if missing:
        problems.append("the store's append-only guards were removed: " + ", ".join(missing))
    return problems



def open_store(
    url: str | None = None,
    *,
    timeout_s: float = 5.0,
    clock: Callable[[], datetime] | None = None,
    recover: bool = True,
    schema_version: int = SCHEMA_VERSION,
) -> RecordStore:
    """Open (creating or migrating it if needed) the record store at ``url``.

    Parameters
    ----------
    url : str or None
        As for :func:`resolve_store_url`; None uses ``DOSEPRINT_DB`` or the default.
    timeout_s : float, s
        How long to wait for another writer before giving up.
    clock : callable, optional
        Returns the current time (aware datetime); for tests.
    recover : bool
        Mark prints whose process is gone as ``interrupted``
        (:meth:`RecordStore.mark_interrupted_stale`).
    schema_version : int
        Migrate a new or older store only up to this version (for tests of migration;
        a store at an older version is migrated on its next ordinary open).

    Returns
    -------
    RecordStore

    Raises
    ------
    RecordStoreError
        The store cannot be opened, read, migrated or written (locked, missing folder,
        not a database, damaged, newer schema; PostgreSQL server unreachable, login
        refused, psycopg not installed). Exit code 3; the message masks any password.
    InputError
        A URL of an unknown scheme.
    """
    display, target = resolve_store_url(url)
    conn: Database
    if target.startswith("postgresql://"):
        conn = PostgresDatabase(display, target, timeout_s)
    else:
        conn = SqliteDatabase(display, target, timeout_s)
    store = RecordStore(conn, display, clock=clock)
    try:
        if isinstance(conn, SqliteDatabase):
            with store._errors():
                mode = conn.configure()
            if target != ":memory:" and mode != "wal":
                logger.warning("record store %s: cannot use WAL, journal mode %s", display, mode)
        store.migrate(schema_version)
        if recover:
            store.mark_interrupted_stale()
    except BaseException:
        store.close()
        raise
    return store
