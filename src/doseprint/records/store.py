"""The batch-of-one record store: append-only records with a hash-chained audit trail.

A record (record.md) is written once with its ``content`` -- identity, job hashes,
tablets and doses, materials, machine -- and after that it only gains events. Nothing is
updated in place or deleted; a release, a rejection or a correction is one more event.

Each event carries the hash of the event before it, and its own ``hash`` is the SHA-256
of the canonical JSON (sorted keys, no spaces, non-ASCII as ``\\u`` escapes; Python's
``json.dumps(v, sort_keys=True, separators=(",", ":"))``) of::

    {"record_id", "seq", "utc", "actor", "kind", "data", "prev_hash"}

Event 0 is ``created``; its data holds ``content_sha256``, the SHA-256 of the canonical
JSON of the content, so the content is covered by the chain too. Event 0's ``prev_hash``
is 64 zeros. :meth:`RecordStore.verify` recomputes all of it.

What the chain cannot show on its own: someone with write access who recomputes every
hash after a change, and the removal of a record's *last* events (or of a whole record).
Anchor a record's head hash outside the store (the batch report prints it) where that
matters.

The status of a record is derived from its events, never stored::

    created --started--> printing --completed|failed|aborted|interrupted--> <that>
    completed --released|rejected--> <that>;  failed/aborted/interrupted --rejected-->

A print that dies leaves a record in ``printing``; the next :func:`open_store` on the
same host finds that its process is gone and appends ``interrupted``.

Back ends (:mod:`doseprint.records.dialect`): SQLite (WAL, ``synchronous=FULL``;
the default) and PostgreSQL (``postgresql://…``, psycopg 3). Both hold the same text
and chain it the same way; appends to one record are serialised on both, so concurrent
writers never fork a chain. The schema is versioned and migrated on open.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeAlias, TypeGuard

import platformdirs

from doseprint.errors import InputError, RecordChainError, RecordStateError, RecordStoreError
from doseprint.records.dialect import (
    GUARD_TRIGGERS,
    Database,
    PostgresDatabase,
    SqliteDatabase,
    migration_files,
    redact_url,
)
from doseprint.typed import RecordStatus

__all__ = [
    "EVENT_KINDS",
    "GENESIS_HASH",
    "RECORD_SCHEMA",
    "SCHEMA_VERSION",
    "SYSTEM_ACTOR",
    "Event",
    "EventKind",
    "JsonDict",
    "Record",
    "RecordState",
    "RecordStore",
    "RecordSummary",
    "Signature",
    "canonical_json",
    "content_hash",
    "default_store_path",
    "derive_status",
    "event_hash",
    "open_store",
    "process_alive",
    "process_identity",
    "record_from_json",
    "record_to_json",
    "resolve_store_url",
    "verify_record",
]

logger = logging.getLogger(__name__)

JsonDict: TypeAlias = dict[str, Any]
"""A JSON object as Python reads it: str keys; values str, int, float, bool, None,
lists and further objects."""

EventKind = Literal[
    "created",
    "started",
    "firmware",
    "progress",
    "lines",
    "error",
    "completed",
    "failed",
    "aborted",
    "interrupted",
    "released",
    "rejected",
    "qc",
]
EVENT_KINDS: tuple[EventKind, ...] = (
    "created",
    "started",
    "firmware",
    "progress",
    "lines",
    "error",
    "completed",
    "failed",
    "aborted",
    "interrupted",
    "released",
    "rejected",
    "qc",
)

RecordState: TypeAlias = Literal["created"] | RecordStatus
"""A record's derived status: ``created`` until the print starts, then RecordStatus."""

RECORD_SCHEMA = "doseprint.record/1"
"""``schema`` of the lossless JSON form (:func:`record_to_json`)."""

SCHEMA_VERSION = 2
"""The database schema this version writes; older stores are migrated on open, newer
ones are refused (RecordStoreError, exit 3). Version 1: tables and append-only guards;
2: an index of events by record and kind."""

GENESIS_HASH = "0" * 64
"""``prev_hash`` of every record's event 0."""

SYSTEM_ACTOR = "doseprint"
"""``actor`` of events doseprint writes on its own (e.g. ``interrupted``)."""

# The status each status-changing kind leads to, and the statuses it may follow.
_STATE_AFTER: dict[EventKind, RecordState] = {
    "created": "created",
    "started": "printing",
    "completed": "completed",
    "failed": "failed",
    "aborted": "aborted",
    "interrupted": "interrupted",
    "released": "released",
    "rejected": "rejected",
}
_ALLOWED_FROM: dict[EventKind, frozenset[RecordState]] = {
    "started": frozenset({"created"}),
    "completed": frozenset({"printing"}),
    # A print can fail, be stopped or die before the printer said anything.
    "failed": frozenset({"created", "printing"}),
    "aborted": frozenset({"created", "printing"}),
    "interrupted": frozenset({"created", "printing"}),
    "released": frozenset({"completed"}),
    # QC weighs the tablets of a completed print, before anybody signs.
    "qc": frozenset({"completed"}),
    # A rejection closes any ended print, and also recalls a released one.
    "rejected": frozenset({"completed", "failed", "aborted", "interrupted", "released"}),
}
_DECIDED: frozenset[RecordState] = frozenset({"released", "rejected"})
_ENDED_KINDS: frozenset[EventKind] = frozenset({"completed", "failed", "aborted", "interrupted"})
_LOG_KINDS: tuple[EventKind, ...] = ("progress", "lines")
_ID_PREFIX = re.compile(r"[0-9a-f-]+")
_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


# ----------------------------------------------------------------------------------
# Hashing


def canonical_json(value: Any) -> str:
    """Serialise a JSON value canonically: sorted keys, no spaces, ASCII only.

    Non-ASCII characters are written as ``\\uXXXX`` escapes, so the text (and its hash)
    is the same whatever the storage encoding, and even a stray surrogate from a
    garbled serial line can be stored.

    Parameters
    ----------
    value : JSON value
        Dicts with str keys, lists, str, int, float (finite), bool and None.

    Returns
    -------
    str
        The same text for equal values, whatever the key order or tuple/list choice.

    Raises
    ------
    TypeError, ValueError
        ``value`` is not JSON (a set, an object, NaN or infinity): a bug in the caller.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def content_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a record's content in canonical JSON."""
    return _sha256(canonical_json(content))


def event_hash(
    record_id: str,
    seq: int,
    utc: str,
    actor: str,
    kind: str,
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) that chains one event: all its fields but ``hash`` itself.

    Parameters
    ----------
    record_id, seq, utc, actor, kind, data, prev_hash
        The event's fields, as stored.

    Returns
    -------
    str
        64 hex digits.
    """
    return _sha256(
        canonical_json(
            {
                "record_id": record_id,
                "seq": seq,
                "utc": utc,
                "actor": actor,
                "kind": kind,
                "data": data,
                "prev_hash": prev_hash,
            }
        )
    )


def _is_kind(text: str) -> TypeGuard[EventKind]:
    return text in _KIND_SET


_KIND_SET = frozenset(EVENT_KINDS)


# ----------------------------------------------------------------------------------
# The record as values


@dataclass(frozen=True)
class Event:
    """One entry of a record's audit trail.

    Attributes
    ----------
    record_id : str
        The record it belongs to (UUID).
    seq : int
        Its place in the record, 0, 1, 2 … without gaps.
    utc : str
        When it was written, ISO 8601 UTC with milliseconds and ``Z``.
    actor : str
        Who did it: the operator's or signer's name, or ``"doseprint"``.
    kind : EventKind
        What happened.
    data : dict
        The details, JSON.
    prev_hash, hash : str
        The previous event's hash (64 zeros for event 0) and this event's own.
    """

    record_id: str
    seq: int
    utc: str
    actor: str
    kind: EventKind
    data: JsonDict
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Signature:
    """A release or rejection as it must be shown: who, when, what it means."""

    kind: Literal["released", "rejected"]
    by: str
    utc: str
    meaning: str
    event_hash: str


@dataclass(frozen=True)
class Record:
    """A batch-of-one record: its content, written once, and every event since.

    Attributes
    ----------
    id : str
        The record id (UUID4, lower case).
    created_utc : str
        When it was created (event 0).
    content : dict
        What was prescribed and made, as the print command built it. By convention
        ``content["prescription"]`` holds ``id`` and ``patient``.
    content_sha256 : str
        The SHA-256 of the content's canonical JSON, as stored.
    events : tuple of Event
        The audit trail in order.
    """

    id: str
    created_utc: str
    content: JsonDict
    content_sha256: str
    events: tuple[Event, ...]

    @property
    def status(self) -> RecordState:
        """The status the events lead to (see the module docstring)."""
        return derive_status(self.events)

    @property
    def prescription_id(self) -> str:
        """``content["prescription"]["id"]``, or "" when the content has none."""
        return _content_text(self.content, "id")

    @property
    def patient(self) -> str:
        """``content["prescription"]["patient"]``, or "" when the content has none."""
        return _content_text(self.content, "patient")

    @property
    def head_hash(self) -> str:
        """The hash of the last event: anchor it outside the store to pin the record."""
        return self.events[-1].hash if self.events else GENESIS_HASH

    @property
    def started_utc(self) -> str | None:
        """When the print started, or None if it never did."""
        for event in self.events:
            if event.kind == "started":
                return event.utc
        return None

    @property
    def ended_utc(self) -> str | None:
        """When the print completed, failed, was aborted or found interrupted."""
        for event in reversed(self.events):
            if event.kind in _ENDED_KINDS:
                return event.utc
        return None

    @property
    def signature(self) -> Signature | None:
        """The latest release or rejection, or None while nobody has decided."""
        for event in reversed(self.events):
            if event.kind in ("released", "rejected"):
                kind: Literal["released", "rejected"] = (
                    "released" if event.kind == "released" else "rejected"
                )
                return Signature(
                    kind=kind,
                    by=event.actor,
                    utc=event.utc,
                    meaning=str(event.data.get("meaning", "")),
                    event_hash=event.hash,
                )
        return None

    @property
    def last_acked(self) -> int | None:
        """The last G-code line the firmware acknowledged, from the latest log event."""
        return _last_acked(self.events)


@dataclass(frozen=True)
class RecordSummary:
    """One line of ``doseprint record list``."""

    id: str
    created_utc: str
    prescription_id: str
    patient: str
    status: RecordState


def _content_text(content: Mapping[str, Any], key: str) -> str:
    prescription = content.get("prescription")
    if isinstance(prescription, Mapping):
        value = prescription.get(key)
        if isinstance(value, str):
            return value
    return ""


def _last_acked(events: Sequence[Event]) -> int | None:
    for event in reversed(events):
        if event.kind in _LOG_KINDS:
            value = event.data.get("last_acked")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def derive_status(events: Sequence[Event]) -> RecordState:
    """The status a sequence of events leads to: that of the last status-changing one.

    Parameters
    ----------
    events : sequence of Event
        A record's events in order.

    Returns
    -------
    RecordState
        ``created`` when no event changes the status (or there are none).
    """
    state: RecordState = "created"
    for event in events:
        state = _STATE_AFTER.get(event.kind, state)
    return state


def _transition_problem(state: RecordState, kind: EventKind) -> str | None:
    """Why ``kind`` may not follow a record in ``state``, or None when it may."""
    if kind == "created":
        return "'created' can only be a record's first event"
    allowed = _ALLOWED_FROM.get(kind)
    if allowed is None:
        # Log entries (progress, lines, firmware, error) until somebody decided.
        if state in _DECIDED:
            return f"nothing more can be logged once a record is {state}"
        return None
    if state not in allowed:
        if kind == "released":
            return f"only a completed print can be released; this one is {state}"
        return f"'{kind}' cannot follow status '{state}'"
    return None


# ----------------------------------------------------------------------------------
# Verification and the lossless JSON form


def _describe(event: Event) -> str:
    return f"event {event.seq} ({event.kind} at {event.utc})"


def verify_record(record: Record) -> list[str]:
    """Check one record's content hash and event chain.

    Parameters
    ----------
    record : Record
        As read from a store or from :func:`record_from_json`.

    Returns
    -------
    list of str
        Problems, each naming the record and the first event that does not match (the
        check of a record stops there, since everything after it depends on it). Empty
        when the record is intact.
    """
    name = f"record {record.id}"
    problems: list[str] = []
    recomputed = content_hash(record.content)
    if recomputed != record.content_sha256:
        problems.append(f"{name}: its content does not match its stored hash (altered)")
        return problems
    if not record.events:
        problems.append(f"{name}: has no events (its 'created' event was removed)")
        return problems
    first = record.events[0]
    if first.seq == 0 and first.kind != "created":
        problems.append(f"{name}: {_describe(first)} should be 'created'")
        return problems
    if first.seq == 0 and first.data.get("content_sha256") != recomputed:
        problems.append(
            f"{name}: its content does not match the hash in {_describe(first)} (altered)"
        )
        return problems
    if first.seq == 0 and first.utc != record.created_utc:
        problems.append(f"{name}: created_utc {record.created_utc} differs from event 0")
        return problems
    prev = GENESIS_HASH
    state: RecordState = "created"
    for expected_seq, event in enumerate(record.events):
        where = f"{name}: {_describe(event)}"
        if event.record_id != record.id:
            problems.append(f"{where}: belongs to record {event.record_id}")
            break
        if event.seq != expected_seq:
            problems.append(
                f"{name}: event {expected_seq} is missing (the next stored event is "
                f"{event.seq}): events were removed"
            )
            break
        if event.prev_hash != prev:
            problems.append(
                f"{where}: its prev_hash does not match event {event.seq - 1} "
                "(an earlier event was altered or removed)"
            )
            break
        recomputed_hash = event_hash(
            event.record_id, event.seq, event.utc, event.actor, event.kind, event.data, prev
        )
        if recomputed_hash != event.hash:
            problems.append(f"{where}: its hash does not match its contents (altered)")
            break
        if not _is_kind(event.kind):
            problems.append(f"{where}: unknown kind '{event.kind}'")
            break
        if event.seq > 0:
            why = _transition_problem(state, event.kind)
            if why is not None:
                problems.append(f"{where}: not allowed here: {why}")
                break
        state = _STATE_AFTER.get(event.kind, state)
        prev = event.hash
    return problems


def _event_to_json(event: Event) -> JsonDict:
    return {
        "record_id": event.record_id,
        "seq": event.seq,
        "utc": event.utc,
        "actor": event.actor,
        "kind": event.kind,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def record_to_json(record: Record) -> JsonDict:
    """The lossless JSON form of a record (``record show --json``, ``record export``).

    Every event keeps its hashes, so the chain can be checked again from this alone
    (:func:`record_from_json` then :func:`verify_record`). ``status`` is derived and
    given for the reader's convenience.

    Parameters
    ----------
    record : Record

    Returns
    -------
    dict
        ``{"schema", "id", "created_utc", "status", "content_sha256", "head_hash",
        "content", "events": [...]}``.
    """
    return {
        "schema": RECORD_SCHEMA,
        "id": record.id,
        "created_utc": record.created_utc,
        "status": record.status,
        "content_sha256": record.content_sha256,
        "head_hash": record.head_hash,
        "content": record.content,
        "events": [_event_to_json(event) for event in record.events],
    }


def record_from_json(document: Mapping[str, Any], *, source: str = "") -> Record:
    """Read back the output of :func:`record_to_json`.

    Parameters
    ----------
    document : mapping
        The parsed JSON.
    source : str
        The file it came from, for messages.

    Returns
    -------
    Record

    Raises
    ------
    InputError
        The document is not a record of a schema this version reads.
    """
    schema = document.get("schema")
    if schema != RECORD_SCHEMA:
        raise InputError(
            f"unknown record schema {schema!r} (this version reads {RECORD_SCHEMA})",
            file=source,
            key="schema",
        )
    try:
        events = []
        for item in document["events"]:
            kind = str(item["kind"])
            if not _is_kind(kind):
                raise ValueError(f"unknown event kind {kind!r}")
            events.append(
                Event(
                    record_id=str(item["record_id"]),
                    seq=int(item["seq"]),
                    utc=str(item["utc"]),
                    actor=str(item["actor"]),
                    kind=kind,
                    data=dict(item["data"]),
                    prev_hash=str(item["prev_hash"]),
                    hash=str(item["hash"]),
                )
            )
        return Record(
            id=str(document["id"]),
            created_utc=str(document["created_utc"]),
            content=dict(document["content"]),
            content_sha256=str(document["content_sha256"]),
            events=tuple(events),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not a complete doseprint record: {exc}", file=source) from exc


# ----------------------------------------------------------------------------------
# Is the printing process still alive?


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) from Linux /proc, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        # The command name (field 2) is in parentheses and may hold spaces or ')'.
        fields = text[text.rindex(")") + 2 :].split()
        return fields[0], int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def process_identity() -> JsonDict:
    """Who is printing: this process's pid and host (plus, on Linux, boot and start).

    :meth:`RecordStore.append` adds it to a ``started`` event's data as ``process`` when
    the caller has not, so a later start can tell whether the print is still running.

    Returns
    -------
    dict
        ``{"pid": int, "host": str}``, with ``boot_id`` and ``proc_start`` on Linux so a
        reboot or a reused pid is not taken for the same process.
    """
    pid = os.getpid()
    identity: JsonDict = {"pid": pid, "host": socket.gethostname()}
    boot = _boot_id()
    if boot:
        identity["boot_id"] = boot
    stat = _proc_stat(pid)
    if stat is not None:
        identity["proc_start"] = stat[1]
    return identity


if sys.platform == "win32":  # pragma: no cover - not tested on Windows yet

    def _windows_pid_exists(pid: int) -> bool:
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # QUERY_LIMITED_INFORMATION
        if not handle:
            # 87 (invalid parameter): no such process; anything else (access denied):
            # it exists.
            return bool(ctypes.get_last_error() != 87)
        try:
            code = wintypes.DWORD()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return bool(code.value == 259)  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover
        try:
            return _windows_pid_exists(pid)
        except OSError:
            return True
    try:
        # Signal 0 checks that the process exists without touching it.
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        # PermissionError: it exists and belongs to someone else. Other errors: cannot
        # tell, and "alive" is the safe answer (the record stays "printing").
        return True
    return True


def process_alive(identity: Mapping[str, Any]) -> bool | None:
    """Whether the process a ``started`` event names still runs.

    Parameters
    ----------
    identity : mapping
        As made by :func:`process_identity`.

    Returns
    -------
    bool or None
        True or False on the same host; None when it cannot be told (another host, or
        no pid recorded).
    """
    pid = identity.get("pid")
    host = identity.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(host, str):
        return None
    if host != socket.gethostname():
        return None
    boot = identity.get("boot_id")
    current_boot = _boot_id()
    if isinstance(boot, str) and current_boot is not None and boot != current_boot:
        return False  # the machine restarted since (a power cut, a reboot)
    if not _pid_exists(pid):
        return False
    stat = _proc_stat(pid)
    if stat is not None:
        state, start = stat
        if state == "Z":
            return False  # killed, waiting for its parent to collect it
        recorded = identity.get("proc_start")
        if isinstance(recorded, int) and recorded != start:
            return False  # the pid now belongs to another process
    return True


# ----------------------------------------------------------------------------------
# Where the store is


def default_store_path() -> Path:
    """The default SQLite file: ``records.sqlite`` in the user's data directory."""
    return Path(platformdirs.user_data_dir("doseprint", appauthor=False)) / "records.sqlite"


def _redact(url: str) -> str:
    """Hide a password in a URL before it goes into a message."""
    return redact_url(url)


def resolve_store_url(url: str | None) -> tuple[str, str]:
    """Turn a ``--db`` value into the URL shown to users and the database to open.

    Parameters
    ----------
    url : str or None
        A file path, ``sqlite:///relative/path``, ``sqlite:////absolute/path`` (as in
        SQLAlchemy: what follows ``sqlite:///`` is the path), ``:memory:``, a
        PostgreSQL URL ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE?options`` (also
        ``postgres://`` and ``postgresql+psycopg://``), or None (empty) for
        ``DOSEPRINT_DB``, else :func:`default_store_path`.

    Returns
    -------
    (str, str)
        The URL for messages (any password masked) and what to open: the path (or
        ``:memory:``) for SQLite, a ``postgresql://`` connection URL for PostgreSQL.

    Raises
    ------
    RecordStoreError
        The default folder cannot be made.
    InputError
        A URL of a scheme doseprint does not know.
    """
    text = (url or "").strip() or os.environ.get("DOSEPRINT_DB", "").strip()
    if not text:
        path = default_store_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordStoreError(
                f"record store {path}: cannot create its folder: {exc}",
                hint="Give a store you can write with --db PATH or DOSEPRINT_DB.",
            ) from exc
        return str(path), str(path)
    lowered = text.lower()
    postgres = re.match(r"(?i)^postgres(?:ql)?(?:\+[a-z0-9]+)?://", text)
    if postgres:
        return _redact(text), "postgresql://" + text[postgres.end() :]
    if text == ":memory:" or lowered in ("sqlite://", "sqlite:///:memory:"):
        return text, ":memory:"
    if lowered.startswith("sqlite:///"):
        rest = text[len("sqlite:///") :]
        return text, str(Path(rest).expanduser())
    if _URL_SCHEME.match(lowered):
        raise InputError(
            f"record store URL '{_redact(text)}' is not supported",
            key="--db",
            hint="Give a file path, sqlite:///PATH, :memory: or postgresql://….",
        )
    return text, str(Path(text).expanduser())


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

    @property
    def url(self) -> str:
        """The store as the user named it (or the default file's path), password masked."""
        return self._url

    @property
    def dialect(self) -> str:
        """The back end: ``"sqlite"`` or ``"postgresql"``."""
        return self._dialect

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
        content_text = canonical_json(dict(content))
        stored: JsonDict = json.loads(content_text)
        digest = _sha256(content_text)
        record_id = str(uuid.uuid4())
        with self._transaction() as conn:
            utc = self._now()
            conn.execute(
                "INSERT INTO records (id, created_utc, prescription_id, patient, content,"
                " content_sha256) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record_id,
                    utc,
                    _content_text(stored, "id"),
                    _content_text(stored, "patient"),
                    content_text,
                    digest,
                ),
            )
            data = {"content_sha256": digest}
            _insert_event(conn, record_id, 0, utc, actor.strip(), "created", data, GENESIS_HASH)
        return record_id

    def append(self, record_id: str, kind: EventKind, data: Mapping[str, Any], actor: str) -> Event:
        """Append one event to a record, durably (one committed transaction).

        Parameters
        ----------
        record_id : str
            The record's id or a unique prefix of it.
        kind : EventKind
            Anything but ``created``. Status kinds must follow the transitions in the
            module docstring; ``released``/``rejected`` need ``data["meaning"]``.
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
            Unknown or ambiguous record id; empty actor or meaning.
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
        written: list[Event] = []
        for kind, data in prepared:
            why = _transition_problem(state, kind)
            if why is not None:
                raise RecordStateError(
                    f"record {record_id}: cannot add '{kind}': {why}",
                    hint="`doseprint record show ID` shows the record's status.",
                )
            seq += 1
            event = _insert_event(
                conn, record_id, seq, self._now(), actor.strip(), kind, data, prev_hash
            )
            written.append(event)
            prev_hash = event.hash
            state = _STATE_AFTER.get(kind, state)
        return written

    def _decide(
        self, kind: Literal["released", "rejected"], record_id: str, by: str, meaning: str
    ) -> Event:
        if not by.strip():
            raise InputError("the signer's name is empty", key="--by", file=self._url)
        if not meaning.strip():
            raise InputError(
                "the meaning of the signature is empty",
                key="--meaning",
                file=self._url,
                hint="Say what the signature means, e.g. 'QA release for dispensing'.",
            )
        data = _prepare_data(kind, {"meaning": meaning.strip()}, self._url)
        with self._transaction() as conn:
            full_id = self._resolve(conn, record_id)
            conn.lock_chain(full_id)
            # A record whose chain does not verify is not signed.
            problems = _verify_stored(conn, full_id)
            if problems:
                raise RecordChainError(
                    f"record {full_id} cannot be {kind}: {problems[0]}",
                    hint="Run `doseprint record verify` and investigate before signing.",
                )
            if kind == "released" and _current_state(conn, full_id) == "completed":
                # Release needs a passed QC (Ph. Eur. 2.9.5 uniformity of mass), the latest
                # one counting: a failed batch is never released.
                row = conn.execute(
                    "SELECT data FROM events WHERE record_id = ? AND kind = 'qc' "
                    "ORDER BY seq DESC LIMIT 1", (full_id,)).fetchone()
                if row is None or json.loads(row[0]).get("passed") is not True:
                    why = "has no QC" if row is None else "failed QC"
                    raise RecordStateError(
                        f"record {full_id} {why}: only a completed, QC-passed record can be "
                        "released", hint="weigh the tablets and run `doseprint record qc ID "
                        "--mass-mg …`; a failed batch is rejected, not released")
            return self._append_rows(conn, full_id, [(kind, data)], by)[0]

    def release(self, record_id: str, by: str, meaning: str) -> Event:
        """Sign a completed record as released for dispensing.

        Parameters
        ----------
        record_id : str
            Id or unique prefix.
        by : str
            The signer's printed name.
        meaning : str
            What the signature means (e.g. "QA release for dispensing").

        Returns
        -------
        Event
            The ``released`` event.

        Raises
        ------
        InputError
            Unknown or ambiguous id, empty name or meaning.
        ResultError
            The record's status is not ``completed``.
        RecordChainError
            The record's hash chain does not verify.
        """
        return self._decide("released", record_id, by, meaning)

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
        restarted since). Records started on another host are left alone. The event
        carries ``last_acked`` from the latest progress or lines event.

        Returns
        -------
        list of str
            The ids marked.
        """
        with self._reading() as conn:
            candidates = [
                (record_id, identity)
                for record_id, identity in _printing_processes(conn)
                if process_alive(identity) is False
            ]
        marked: list[str] = []
        for record_id, identity in candidates:
            with self._transaction() as conn:
                conn.lock_chain(record_id)
                # Another doseprint may have marked it since the read above.
                if _current_state(conn, record_id) != "printing":
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
            row = conn.execute(
                "SELECT created_utc, content, content_sha256 FROM records WHERE id = ?",
                (full_id,),
            ).fetchone()
            events = _load_events(conn, full_id)
        try:
            content = json.loads(row[1])
        except ValueError:
            content = None
        if not isinstance(content, dict):
            raise RecordChainError(
                f"record {full_id}: its content is not a JSON object (altered)",
                hint="Run `doseprint record verify`.",
            )
        return Record(
            id=full_id,
            created_utc=str(row[0]),
            content=content,
            content_sha256=str(row[2]),
            events=tuple(events),
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
                _STATUS_KIND_PARAMS,
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

    # Verification

    def verify(self, record_id: str | None = None) -> list[str]:
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
            if record_id is not None:
                ids = [self._resolve(conn, record_id)]
            else:
                ids = [
                    str(row[0])
                    for row in conn.execute("SELECT id FROM records ORDER BY created_utc, id")
                ]
            for full_id in ids:
                problems.extend(_verify_stored(conn, full_id))
            if record_id is None:
                problems.extend(_verify_store_wide(conn))
        return problems


# ----------------------------------------------------------------------------------
# Row helpers (called inside a transaction)


def _check_actor(actor: str, url: str) -> None:
    if not actor.strip():
        raise InputError(
            "the actor is empty: every event must say who did it", key="actor", file=url
        )


def _prepare_data(kind: str, data: Mapping[str, Any], url: str) -> JsonDict:
    """Check an event's kind and data and return the data as it will read back."""
    if not _is_kind(kind) or kind == "created":
        # A bug in the caller, not a user's mistake.
        raise ValueError(f"cannot append an event of kind {kind!r}")
    plain = dict(data)
    if kind == "started" and "process" not in plain:
        plain["process"] = process_identity()
    if kind in ("released", "rejected"):
        meaning = plain.get("meaning")
        if not isinstance(meaning, str) or not meaning.strip():
            raise InputError(f"a '{kind}' event needs a meaning", key="meaning", file=url)
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
        "INSERT INTO events (record_id, seq, utc, actor, kind, data, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
    placeholders = ", ".join("?" for _ in _STATE_AFTER)
    row = conn.execute(
        f"SELECT kind FROM events WHERE record_id = ? AND kind IN ({placeholders})"
        " ORDER BY seq DESC LIMIT 1",
        (record_id, *_STATE_AFTER),
    ).fetchone()
    return _state_of(row[0] if row is not None else None)


def _state_of(kind: object) -> RecordState:
    """The status a stored status-changing kind leads to (``created`` for None)."""
    if isinstance(kind, str) and _is_kind(kind):
        return _STATE_AFTER.get(kind, "created")
    return "created"


def _load_events(conn: Database, record_id: str) -> list[Event]:
    """A record's events in order; RecordChainError when a stored one does not parse."""
    rows = conn.execute(
        "SELECT seq, utc, actor, kind, data, prev_hash, hash FROM events"
        " WHERE record_id = ? ORDER BY seq",
        (record_id,),
    )
    events = []
    for seq, utc, actor, kind, data, prev_hash, digest in rows:
        kind_text = str(kind)
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise RecordChainError(
                f"record {record_id}: event {seq} data is not valid JSON (altered)",
                hint="Run `doseprint record verify`.",
            ) from exc
        if not _is_kind(kind_text) or not isinstance(parsed, dict):
            raise RecordChainError(
                f"record {record_id}: event {seq} is not a doseprint event (altered)",
                hint="Run `doseprint record verify`.",
            )
        events.append(
            Event(
                record_id=record_id,
                seq=int(seq),
                utc=str(utc),
                actor=str(actor),
                kind=kind_text,
                data=parsed,
                prev_hash=str(prev_hash),
                hash=str(digest),
            )
        )
    return events


_STATUS_KIND_SQL = (
    "SELECT r.id AS id, (SELECT e.kind FROM events e WHERE e.record_id = r.id"
    f" AND e.kind IN ({', '.join('?' for _ in _STATE_AFTER)})"
    " ORDER BY e.seq DESC LIMIT 1) AS kind FROM records r"
)
"""Each record's id and its last status-changing kind (bind _STATUS_KIND_PARAMS)."""
_STATUS_KIND_PARAMS: tuple[str, ...] = tuple(_STATE_AFTER)


def _printing_processes(conn: Database) -> list[tuple[str, JsonDict]]:
    """(record id, started.process) of every record whose status is ``printing``."""
    found = []
    for record_id, data in conn.execute(
        f"WITH s AS ({_STATUS_KIND_SQL}) SELECT s.id, ("
        "  SELECT e.data FROM events e WHERE e.record_id = s.id AND e.kind = 'started'"
        "  ORDER BY e.seq DESC LIMIT 1"
        ") FROM s WHERE s.kind = 'started'",
        _STATUS_KIND_PARAMS,
    ):
        try:
            process = json.loads(data).get("process")
        except (TypeError, ValueError, AttributeError):
            process = None  # unreadable: leave it to `record verify`
        if isinstance(process, dict):
            found.append((str(record_id), process))
    return found


def _stored_last_acked(conn: Database, record_id: str) -> int | None:
    """``last_acked`` of a record's latest progress or lines event that has one."""
    for (data,) in conn.execute(
        "SELECT data FROM events WHERE record_id = ? AND kind IN ('progress', 'lines')"
        " ORDER BY seq DESC",
        (record_id,),
    ):
        try:
            value = json.loads(data).get("last_acked")
        except (TypeError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _verify_stored(conn: Database, record_id: str) -> list[str]:
    """verify_record() plus the checks only the database form needs."""
    name = f"record {record_id}"
    row = conn.execute(
        "SELECT created_utc, prescription_id, patient, content, content_sha256"
        " FROM records WHERE id = ?",
        (record_id,),
    ).fetchone()
    try:
        content = json.loads(row[3])
        if not isinstance(content, dict):
            raise ValueError("not an object")
    except ValueError:
        return [f"{name}: its content is not a JSON object (altered)"]
    problems = []
    if (str(row[1]), str(row[2])) != (
        _content_text(content, "id"),
        _content_text(content, "patient"),
    ):
        problems.append(f"{name}: its listed prescription or patient differs from its content")
    events = []
    for seq, utc, actor, kind, data, prev_hash, digest in conn.execute(
        "SELECT seq, utc, actor, kind, data, prev_hash, hash FROM events"
        " WHERE record_id = ? ORDER BY seq",
        (record_id,),
    ):
        try:
            parsed = json.loads(data)
            if not isinstance(parsed, dict):
                raise ValueError("not an object")
        except ValueError:
            problems.append(f"{name}: event {seq} ({kind} at {utc}): data is not JSON (altered)")
            return problems
        events.append(
            Event(
                record_id=record_id,
                seq=int(seq),
                utc=str(utc),
                actor=str(actor),
                kind=kind,
                data=parsed,
                prev_hash=str(prev_hash),
                hash=str(digest),
            )
        )
    record = Record(record_id, str(row[0]), content, str(row[4]), tuple(events))
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
