"""A record taken out of the store: the lossless JSON form, and the files of
``doseprint record export``.

The JSON form (:func:`record_to_json`) keeps every event with its hashes, so a record
exported to a file can be checked again on its own (:func:`read_exported`, then
:func:`~doseprint.records.chain.verify_record`). By the file's suffix an export is that
JSON, the HTML batch report, or the batch report as a PDF where fpdf2 is installed
(:func:`export_format`, :func:`export_bytes`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from doseprint.errors import InputError
from doseprint.records.batch_report import render_batch_report
from doseprint.records.batch_report_pdf import render_batch_report_pdf, require_pdf
from doseprint.records.states import is_event_kind
from doseprint.records.values import Event, JsonDict, Record

__all__ = [
    "EXPORT_FORMATS",
    "RECORD_SCHEMA",
    "ExportFormat",
    "event_to_json",
    "export_bytes",
    "export_format",
    "read_exported",
    "record_from_json",
    "record_to_json",
]

RECORD_SCHEMA = "doseprint.record/1"
"""``schema`` of the lossless JSON form (:func:`record_to_json`)."""

ExportFormat = Literal["json", "html", "pdf"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)

_SUFFIXES: dict[str, ExportFormat] = {".json": "json", ".html": "html", ".htm": "html",
                                      ".pdf": "pdf"}

_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate: what a garbled serial line can decode to, which the store keeps but
UTF-8 cannot encode."""


def event_to_json(event: Event) -> JsonDict:
    """One event as the JSON form of a record holds it, hashes and all."""
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
    (:func:`record_from_json` then :func:`~doseprint.records.chain.verify_record`).
    ``status`` is derived and given for the reader's convenience.

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
        "events": [event_to_json(event) for event in record.events],
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
            if not is_event_kind(kind):
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


def read_exported(path: str) -> Record:
    """Read a record exported as JSON (``record verify FILE.json``).

    Parameters
    ----------
    path : str
        The file, as the user named it (messages name it so).

    Returns
    -------
    Record
        Not yet verified: pass it to :func:`~doseprint.records.chain.verify_record`.

    Raises
    ------
    InputError
        The file cannot be read, is not JSON, or is not an exported record.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror or exc}", file=path) from exc
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", file=path) from exc
    if not isinstance(document, dict):
        raise InputError("not an exported doseprint record", file=path)
    return record_from_json(document, source=path)


def export_format(out: Path) -> ExportFormat:
    """What ``record export --out FILE`` writes, from the file's suffix.

    Call it before the store is opened: a name that cannot be written, or a PDF without
    its library, is refused before anything is read or written.

    Parameters
    ----------
    out : Path
        ``.json`` (the lossless record), ``.html`` or ``.htm`` (the batch report with
        its dispensing label), ``.pdf`` (the same as a PDF); any case.

    Returns
    -------
    ExportFormat

    Raises
    ------
    InputError
        Another suffix, or none.
    EnvironmentFault
        ``.pdf`` and fpdf2 is not installed.
    """
    fmt = _SUFFIXES.get(out.suffix.lower())
    if fmt is None:
        raise InputError(f"is {out.suffix or 'without a suffix'}; export writes .json (the "
                         "lossless record), .html or .pdf (the batch report with its label)",
                         file=str(out), key="--out")
    if fmt == "pdf":
        require_pdf()
    return fmt


def export_bytes(record: Record, fmt: ExportFormat) -> bytes:
    """The content of an export file in format ``fmt`` (:func:`export_format`).

    Parameters
    ----------
    record : Record
    fmt : ExportFormat
        ``json``: :func:`record_to_json`, indented by one space, UTF-8, ending in a
        newline; ``html``: the batch report page; ``pdf``: the batch report as a PDF.
        Text that UTF-8 cannot hold (a lone surrogate from a garbled printer reply) is
        written as its ``\\uXXXX`` escape: in the JSON, where it reads back as the same
        text (so the file still verifies), and in the page, where it shows as such.

    Returns
    -------
    bytes
        To be written atomically.
    """
    if fmt == "json":
        text = json.dumps(record_to_json(record), indent=1, ensure_ascii=False) + "\n"
        # Inside a JSON string, the escape reads back as the very same character.
        return _SURROGATE.sub(lambda found: f"\\u{ord(found[0]):04x}", text).encode()
    if fmt == "pdf":
        return render_batch_report_pdf(record)
    return render_batch_report(record).encode("utf-8", "backslashreplace")
