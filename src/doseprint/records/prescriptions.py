"""One prescription, one releasable batch: a prescription printed once is printed again
only with a recorded reason, and its earlier prints are then superseded.

Prints are of the same prescription when their records carry the same prescription id
(``content["prescription"]["id"]``, the ``records.prescription_id`` column), whatever
version of the prescription file (its SHA-256) each was compiled from. What an earlier
record's status means for a new print of its prescription:

=================================  ======================================================
earlier record's status            a new print of the prescription
=================================  ======================================================
``rejected``, ``superseded``       goes ahead: that batch is out already
``completed``, ``released``,       needs a reason (``doseprint print --supersede-reason``);
``failed``, ``aborted``,           each such record is then ``superseded`` and can never
``interrupted``                    be released (a released one is recalled). A failed or
                                   aborted print counts: its tablets may exist.
``failed``, ``aborted``,           goes ahead, and the record stays as it is: its print
``interrupted`` and never started  never started (the port would not open, the process
                                   died first), so nothing of it was made
``created``, ``printing``          refused, with or without a reason: a prescription is
                                   printed once at a time (let that print end, or stop it)
=================================  ======================================================

Superseding is a signed act: in a store with accounts the operator needs the site
policy's ``supersede`` permission (pharmacists by default;
:func:`~doseprint.records.people.authorize`). A reason given when the store holds no
earlier print of the prescription is refused: the earlier print is in another store, so
``--db`` is probably wrong.

The review and the new record are one transaction
(:meth:`~doseprint.records.store.RecordStore.create_print`) holding a lock on the
prescription (``rx:<id>``), so of two prints of one prescription started at once the
second is reviewed after the first's record exists. :func:`release_problem` is the
store's second line: a record is not released while a newer print of its prescription
stands that is not rejected.

The functions that take a :class:`~doseprint.records.dialect.Database` run inside a
transaction of :class:`~doseprint.records.store.RecordStore`, which calls them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from doseprint.errors import InputError
from doseprint.records.dialect import Database
from doseprint.records.people import PermissionRefusedError, authorize, policy_of
from doseprint.records.signing import Signer
from doseprint.records.site import read_site_events
from doseprint.records.states import STATUS_KINDS, RecordState, is_event_kind, state_after
from doseprint.records.values import content_text

__all__ = [
    "IN_PROGRESS",
    "OPEN_STATES",
    "PrescriptionPrint",
    "prescription_lock",
    "prints_of",
    "release_problem",
    "review_print",
    "review_reprint",
]

OPEN_STATES: frozenset[RecordState] = frozenset(
    {"completed", "released", "failed", "aborted", "interrupted"})
"""Earlier statuses that a new print of the prescription supersedes, given a reason
(a failed, aborted or interrupted print only if it started: :attr:`PrescriptionPrint.stands`)."""

IN_PROGRESS: frozenset[RecordState] = frozenset({"created", "printing"})
"""Earlier statuses that refuse a new print of the prescription outright."""

_NOT_SENT = "nothing was sent to the printer"


@dataclass(frozen=True)
class PrescriptionPrint:
    """One record of a prescription, as a new print of it is reviewed against."""

    id: str
    created_utc: str
    status: RecordState
    prescription_sha256: str
    operator: str
    started: bool
    """Whether the print began (a ``started`` event): else nothing of it was made."""

    @property
    def stands(self) -> bool:
        """Whether a new print of the prescription must supersede it."""
        if self.status in ("completed", "released"):
            return True
        return self.status in OPEN_STATES and self.started

    def describe(self) -> str:
        """``record 3f2a… (completed; printed 2026-…Z by A. Operator)``."""
        by = f" by {self.operator}" if self.operator else ""
        return f"record {self.id} ({self.status}; printed {self.created_utc}{by})"


def prescription_lock(prescription_id: str) -> str:
    """The lock key (:meth:`~doseprint.records.dialect.Database.lock_chain`) that
    serialises the prints of one prescription; no record id looks like it."""
    return "rx:" + prescription_id


_PRINTS_SQL = (
    "SELECT r.id, r.created_utc, r.content, (SELECT e.kind FROM events e"
    " WHERE e.record_id = r.id"
    f" AND e.kind IN ({', '.join('?' for _ in STATUS_KINDS)})"
    " ORDER BY e.seq DESC LIMIT 1), EXISTS (SELECT 1 FROM events s"
    " WHERE s.record_id = r.id AND s.kind = 'started')"
    " FROM records r WHERE r.prescription_id = ? ORDER BY r.created_utc, r.id"
)


def _status(kind: object) -> RecordState:
    if isinstance(kind, str) and is_event_kind(kind):
        return state_after("created", kind)
    return "created"


def _print_of(row: Sequence[Any]) -> PrescriptionPrint:
    record_id, created_utc, text, kind, started = row
    try:
        content = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        content = None  # verify reports it; the record still counts as a print
    if not isinstance(content, dict):
        content = {}
    operator = content.get("operator")
    return PrescriptionPrint(str(record_id), str(created_utc), _status(kind),
                             content_text(content, "sha256"),
                             operator if isinstance(operator, str) else "", bool(started))


def prints_of(conn: Database, prescription_id: str) -> list[PrescriptionPrint]:
    """Every record of a prescription, oldest first, with its status."""
    rows = conn.execute(_PRINTS_SQL, (*STATUS_KINDS, prescription_id)).fetchall()
    return [_print_of(row) for row in rows]


def release_problem(conn: Database, record_id: str) -> str | None:
    """Why a record may not be released because its prescription was printed again
    since (a newer record of it that is not rejected, and is under way or started), or
    None.

    Records of a prescription printed twice without a reason (by an older doseprint, or
    around the print command) are caught here: only the latest print that stands may be
    released.
    """
    row = conn.execute("SELECT prescription_id, created_utc FROM records WHERE id = ?",
                       (record_id,)).fetchone()
    if row is None or not str(row[0]):
        return None
    prescription_id, created_utc = str(row[0]), str(row[1])
    newer = [p for p in prints_of(conn, prescription_id)
             if p.id != record_id and p.created_utc >= created_utc and p.status != "rejected"
             and (p.started or p.status in IN_PROGRESS)]
    if not newer:
        return None
    return (f"prescription {prescription_id} was printed again since: "
            + "; ".join(p.describe() for p in newer)
            + ". Only the latest print of a prescription may be released")


def review_reprint(
    prescription_id: str,
    prescription_sha256: str,
    earlier: Sequence[PrescriptionPrint],
    reason: str,
    may_supersede: Callable[[], None],
    store_url: str,
) -> list[str]:
    """Decide a new print of a prescription against its earlier records.

    Parameters
    ----------
    prescription_id, prescription_sha256 : str
        The new print's prescription.
    earlier : sequence of PrescriptionPrint
        The prescription's records so far (:func:`prints_of`).
    reason : str
        Why it is printed again (``--supersede-reason``); empty when none was given.
    may_supersede : callable
        Raises when the operator may not supersede (the site policy); called only when
        there is something to supersede.
    store_url : str
        The store, for messages.

    Returns
    -------
    list of str
        The ids of the records the new print supersedes (empty when none stands).

    Raises
    ------
    InputError
        A print of the prescription is under way; one stands and no reason was given;
        a reason was given and the store holds no print of the prescription.
    PermissionRefusedError
        From ``may_supersede``.
    """
    running = [p for p in earlier if p.status in IN_PROGRESS]
    if running:
        raise InputError(
            f"prescription {prescription_id} is being printed now: "
            + "; ".join(p.describe() for p in running)
            + f". A prescription is printed once at a time; {_NOT_SENT}",
            file="command line", key="JOB_DIR",
            hint="let that print end, or stop it (Ctrl-C); then print again with "
                 "--supersede-reason. A print whose computer was switched off is found "
                 "interrupted by the next doseprint start on that computer")
    standing = [p for p in earlier if p.stands]
    if not reason:
        if standing:
            changed = [p.id for p in standing
                       if p.prescription_sha256 and p.prescription_sha256 != prescription_sha256]
            version = (f" (of another version of the prescription file: {', '.join(changed)})"
                       if changed else "")
            raise InputError(
                f"prescription {prescription_id} was printed before: "
                + "; ".join(p.describe() for p in standing) + version
                + ". Printing it again needs --supersede-reason TEXT saying why; the earlier "
                f"record then becomes 'superseded' and can never be released; {_NOT_SENT}",
                file="command line", key="--supersede-reason",
                hint="`doseprint record show ID` shows the earlier print; a pharmacist may "
                     "also reject it first (`doseprint record reject`)")
        return []
    if not earlier:
        raise InputError(
            f"record store {store_url} holds no earlier print of prescription "
            f"{prescription_id}: there is nothing to supersede; {_NOT_SENT}",
            file="command line", key="--supersede-reason",
            hint="check that --db (or DOSEPRINT_DB) names the store the earlier print "
                 "went to; a first print needs no reason")
    if standing:
        try:
            may_supersede()
        except PermissionRefusedError as exc:
            why = "; ".join(p.message for p in exc.problems)
            raise PermissionRefusedError(
                f"printing prescription {prescription_id} again supersedes "
                + ", ".join(p.id for p in standing) + f", and {why}; {_NOT_SENT}",
                file="site policy", key="supersede",
                hint="somebody the policy allows to supersede prints it again, or a "
                     "pharmacist rejects the earlier record first (`doseprint record "
                     "reject`) and the print needs no reason") from None
    return [p.id for p in standing]


def review_print(
    conn: Database,
    content: Mapping[str, Any],
    reason: str,
    signer: Signer | None,
    store_url: str,
) -> list[str]:
    """Lock a new print's prescription and review it against the earlier records
    (:func:`review_reprint`), inside the write transaction that then creates its record.

    Parameters
    ----------
    content : mapping
        The new record's content.
    reason : str
        ``--supersede-reason``, stripped; empty when none was given.
    signer : Signer or None
        The operator, signed in (a store with accounts); they must hold ``supersede`` of
        the site policy in force when the print supersedes anything.

    Returns
    -------
    list of str
        The ids of the records to supersede.
    """
    prescription_id = content_text(content, "id")
    if not prescription_id:
        return []
    conn.lock_chain(prescription_lock(prescription_id))

    def may_supersede() -> None:
        if signer is not None:
            authorize(policy_of(read_site_events(conn, ("policy_set",))), signer, "supersede")

    return review_reprint(prescription_id, content_text(content, "sha256"),
                          prints_of(conn, prescription_id), reason, may_supersede, store_url)
