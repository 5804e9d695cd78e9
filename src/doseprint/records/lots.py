"""Material lots: received into the store, recalled, and checked where a batch uses them.

A lot is a quantity of one formulation's material (a spool of filament, a jar of paste)
with its supplier's lot number and expiry date. It enters the store as a signed
``lot_received`` event of the site chain (:mod:`doseprint.records.site`), and a recall
is a signed ``lot_blocked`` event; what lots the store holds, and which are blocked, is
folded from that chain by :func:`lots_of`, never kept where it could be edited unseen.

A lot number is unique per formulation: two suppliers may use the same number for
different materials, but one formulation's lot is received once.

Who signs: in a store with accounts a signed-in person whose role the site policy allows
(``receive_lot`` to receive, ``reject`` to block); in a store without accounts the site
key signs (actor ``site``) and the name given with ``--by`` is written into the event,
as the rest of an open store keeps names. An open store without a site key cannot
receive lots.

Where lots are checked: :mod:`doseprint.dispensing` at print (a lot expired on the print
date, blocked, of another formulation or never received is refused before the printer
is contacted), and :func:`release_problems` at release (a lot blocked since the print
stops the release; in a store with accounts every tool must name a received lot).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Protocol

from doseprint.errors import InputError
from doseprint.records.content import materials_of
from doseprint.records.dialect import Database
from doseprint.records.people import authorize, control_began, is_controlled, policy_of
from doseprint.records.policy import Act
from doseprint.records.signing import SITE_SIGNER, Signer
from doseprint.records.site import SiteEvent, SiteKind, read_site_events

__all__ = [
    "LOT_ID_MAX",
    "LOT_KINDS",
    "Lot",
    "SiteStore",
    "block_lot",
    "check_lot_id",
    "check_name",
    "check_signer",
    "find_lots",
    "lots_of",
    "parse_day",
    "receive_lot",
    "release_problems",
    "revocation",
    "text_of",
]

LOT_ID_MAX = 64
"""The longest lot number, in characters (suppliers' numbers are far shorter)."""

_TEXT_MAX = 200
LOT_KINDS = ("lot_received", "lot_blocked", "user_added", "policy_set")
"""The site event kinds lots are folded from (with those that say who may sign)."""

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class SiteChainWriter(Protocol):
    """The site chain inside one locked write transaction
    (:class:`~doseprint.records.store.SiteWriter`)."""

    def events(self, kinds: Iterable[str] | None = None) -> list[SiteEvent]: ...

    def append(self, kind: SiteKind, data: Mapping[str, Any], actor: str,
               signer: Signer | None) -> SiteEvent: ...


class SiteStore(Protocol):
    """What lots and approvals need of a record store
    (:class:`~doseprint.records.store.RecordStore`, which sits above this module)."""

    def now_utc(self) -> str: ...

    def site_writer(self) -> AbstractContextManager[SiteChainWriter]: ...

    def site_events(self, kinds: Iterable[str] | None = None) -> list[SiteEvent]: ...


@dataclass(frozen=True)
class Lot:
    """One lot as the site chain says it is now.

    Attributes
    ----------
    lot, formulation : str
        The supplier's lot number and the formulation id it is material of.
    expiry : str
        The last day it may be used, ``YYYY-MM-DD``.
    received : str
        The day it was received, ``YYYY-MM-DD``.
    quantity_g : float or None
        The quantity received, g, when given.
    by : str
        Who received it: a user id, or in a store without accounts the name given.
    seq, hash : int, str
        The ``lot_received`` site event: a print's record links the lot by these.
    blocked : mapping or None
        The ``lot_blocked`` event's ``reason``, ``by``, ``utc`` and ``seq``, once recalled.
    """

    lot: str
    formulation: str
    formulation_sha256: str
    expiry: str
    supplier: str
    received: str
    quantity_g: float | None
    by: str
    actor: str
    utc: str
    seq: int
    hash: str
    blocked: Mapping[str, Any] | None = None

    def expired_on(self, day: date) -> bool:
        """True when ``day`` is after the expiry date (the expiry day itself is usable)."""
        return day.isoformat() > self.expiry

    def link(self) -> dict[str, Any]:
        """What a print's record keeps of the lot (``materials[k]``)."""
        return {"lot_expiry": self.expiry, "lot_supplier": self.supplier,
                "lot_event": {"seq": self.seq, "hash": self.hash}}

    def to_json(self) -> dict[str, Any]:
        return {"lot": self.lot, "formulation": self.formulation,
                "formulation_sha256": self.formulation_sha256, "expiry": self.expiry,
                "supplier": self.supplier, "received": self.received,
                "quantity_g": self.quantity_g, "by": self.by, "signed_by": self.actor,
                "utc": self.utc, "site_event": {"seq": self.seq, "hash": self.hash},
                "status": "blocked" if self.blocked else "received",
                "blocked": dict(self.blocked) if self.blocked else None}


def text_of(data: Mapping[str, Any], key: str) -> str:
    """``data[key]`` when it is text, else ``""`` (a site event's data as stored)."""
    value = data.get(key)
    return value if isinstance(value, str) else ""


def revocation(event: SiteEvent) -> dict[str, Any]:
    """What a ``lot_blocked`` or ``formulation_withdrawn`` event says: why, by whom,
    when, and its place in the site chain."""
    return {"reason": text_of(event.data, "reason"), "by": text_of(event.data, "by"),
            "utc": event.utc, "seq": event.seq}


def lots_of(events: Iterable[SiteEvent]) -> dict[tuple[str, str], Lot]:
    """Every lot, by (formulation id, lot number), folded from the site chain in order."""
    lots: dict[tuple[str, str], Lot] = {}
    for event in events:
        data = event.data
        key = (text_of(data, "formulation"), text_of(data, "lot"))
        if event.kind == "lot_received" and key not in lots and all(key):
            quantity = data.get("quantity_g")
            lots[key] = Lot(
                lot=key[1], formulation=key[0],
                formulation_sha256=text_of(data, "formulation_sha256"),
                expiry=text_of(data, "expiry"), supplier=text_of(data, "supplier"),
                received=text_of(data, "received"),
                quantity_g=float(quantity) if isinstance(quantity, int | float)
                and not isinstance(quantity, bool) else None,
                by=text_of(data, "by"), actor=event.actor, utc=event.utc, seq=event.seq,
                hash=event.hash)
        elif event.kind == "lot_blocked" and key in lots and lots[key].blocked is None:
            lots[key] = replace(lots[key], blocked=revocation(event))
    return lots


def find_lots(lots: Mapping[tuple[str, str], Lot], lot: str,
              formulation: str | None = None) -> list[Lot]:
    """The lots numbered ``lot`` (of ``formulation`` only, when given)."""
    return [v for (fid, number), v in sorted(lots.items())
            if number == lot and (formulation is None or fid == formulation)]


# ----------------------------------------------------------------------------------
# Checking what a user gives


def check_lot_id(text: str, key: str = "LOT", file: str = "command line") -> str:
    """A lot number, stripped: printable, at most :data:`LOT_ID_MAX` characters.

    Raises
    ------
    InputError
    """
    lot = text.strip()
    if not lot:
        raise InputError("is empty: give the supplier's lot number", file=file, key=key)
    if not lot.isprintable():
        raise InputError(f"{lot!r} holds control or other unprintable characters; a lot "
                         "number is printable text", file=file, key=key)
    if len(lot) > LOT_ID_MAX:
        raise InputError(f"is {len(lot)} characters; a lot number has at most {LOT_ID_MAX}",
                         file=file, key=key)
    return lot


def check_name(text: str, key: str, what: str) -> str:
    """A name or short text (a supplier, a signer's name, a reason), stripped: printable,
    not empty, at most 200 characters."""
    value = text.strip()
    if not value or not value.isprintable() or len(value) > _TEXT_MAX:
        raise InputError(f"{text!r} is not {what}: give printable text of 1 to "
                         f"{_TEXT_MAX} characters", file="command line", key=key)
    return value


def parse_day(text: str, key: str) -> date:
    """A calendar day written ``YYYY-MM-DD``.

    Raises
    ------
    InputError
        Another form, or a day the calendar does not have (2026-02-30).
    """
    value = text.strip()
    try:
        if not _DAY.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{text!r} is not a date: write it YYYY-MM-DD, e.g. 2027-03-31",
                         file="command line", key=key) from None


def check_signer(events: Sequence[SiteEvent], signer: Signer, by: str, act: Act) -> None:
    """Refuse a signer who may not sign ``act`` here: in a store with accounts only a
    signed-in person whose role the policy allows, signing as ``by``; in one without,
    the site key.

    Raises
    ------
    InputError, PermissionRefusedError
    """
    if is_controlled(events):
        if signer.user_id == SITE_SIGNER or signer.user_id != by.strip():
            raise InputError(f"this store has user accounts: {act.replace('_', ' ')} is "
                             f"signed by the signed-in user named with --by",
                             file="command line", key="--by")
        authorize(policy_of(events), signer, act)
    elif signer.user_id != SITE_SIGNER:
        raise InputError("this store has no accounts: the site key signs for the name given",
                         file="command line", key="--by")


# ----------------------------------------------------------------------------------
# Receiving and blocking


def receive_lot(
    store: SiteStore,
    lot: str,
    *,
    formulation: str,
    formulation_sha256: str,
    expiry: str,
    supplier: str,
    by: str,
    signer: Signer,
    received: str | None = None,
    quantity_g: float | None = None,
) -> Lot:
    """Receive a lot into ``store`` as a signed ``lot_received`` site event.

    Parameters
    ----------
    lot : str
        The supplier's lot number (:func:`check_lot_id`).
    formulation, formulation_sha256 : str
        The formulation it is material of (an id of the library, checked by the caller)
        and that file's SHA-256 as received.
    expiry, received : str
        ``YYYY-MM-DD``; ``received`` defaults to the store clock's day and may not be
        after it, nor after ``expiry``.
    supplier, by : str
        The supplier, and who receives it (a user id, or a name in an open store).
    signer : Signer
        The signed-in person, or the site key in a store without accounts
        (:func:`check_signer`).
    quantity_g : float, g, optional
        Above 0.

    Returns
    -------
    Lot

    Raises
    ------
    InputError
        A bad lot number, date, supplier, name or quantity; the lot is already received
        for that formulation; a signer who may not receive lots.
    """
    number = check_lot_id(lot)
    vendor = check_name(supplier, "--supplier", "a supplier")
    who = check_name(by, "--by", "a name")
    last_day = parse_day(expiry, "--expiry")
    today = date.fromisoformat(store.now_utc()[:10])
    day = parse_day(received, "--received") if received is not None else today
    if day > today:
        raise InputError(f"{day} is after today ({today}): a lot is received when it "
                         "arrives", file="command line", key="--received")
    if last_day < day:
        raise InputError(f"{last_day} is before the day it was received ({day})",
                         file="command line", key="--expiry")
    data: dict[str, Any] = {"lot": number, "formulation": formulation,
                            "formulation_sha256": formulation_sha256,
                            "expiry": last_day.isoformat(), "supplier": vendor,
                            "received": day.isoformat(), "by": who}
    if quantity_g is not None:
        if isinstance(quantity_g, bool) or not math.isfinite(quantity_g) or quantity_g <= 0:
            raise InputError(f"{quantity_g!r} is not a quantity: give grams above 0",
                             file="command line", key="--quantity-g")
        data["quantity_g"] = float(quantity_g)
    with store.site_writer() as writer:
        events = writer.events(LOT_KINDS)
        check_signer(events, signer, who, "receive_lot")
        known = lots_of(events).get((formulation, number))
        if known is not None:
            raise InputError(
                f"lot {number} of {formulation} was received already (site event "
                f"{known.seq}, {known.received}, by {known.by})", file="command line",
                key="LOT", hint="a lot is received once; `doseprint lot show` shows it")
        writer.append("lot_received", data, signer.user_id, signer)
    return lots_of(store.site_events(LOT_KINDS))[(formulation, number)]


def block_lot(store: SiteStore, lot: str, *, reason: str, by: str, signer: Signer,
              formulation: str | None = None) -> Lot:
    """Block (recall) a received lot: no print may use it and no record made with it is
    released (a signed ``lot_blocked`` site event). Blocking is for ever.

    Raises
    ------
    InputError
        No such lot, or one number for several formulations and none chosen; already
        blocked; no reason; a signer who may not (the ``reject`` act).
    """
    number = check_lot_id(lot)
    why = check_name(reason, "--reason", "a reason")
    who = check_name(by, "--by", "a name")
    with store.site_writer() as writer:
        events = writer.events(LOT_KINDS)
        check_signer(events, signer, who, "reject")
        found = _one_lot(lots_of(events), number, formulation)
        if found.blocked is not None:
            raise InputError(f"lot {number} of {found.formulation} is blocked already (site "
                             f"event {found.blocked['seq']})", file="command line", key="LOT")
        writer.append("lot_blocked", {"lot": number, "formulation": found.formulation,
                                      "reason": why, "by": who}, signer.user_id, signer)
    return lots_of(store.site_events(LOT_KINDS))[(found.formulation, number)]


def _one_lot(lots: Mapping[tuple[str, str], Lot], number: str,
             formulation: str | None) -> Lot:
    found = find_lots(lots, number, formulation)
    if not found:
        of = f" of {formulation}" if formulation else ""
        raise InputError(f"no lot {number}{of} was received into this store",
                         file="command line", key="LOT",
                         hint="`doseprint lot list` shows the lots received")
    if len(found) > 1:
        raise InputError(f"lot {number} was received for several formulations: "
                         f"{', '.join(x.formulation for x in found)}", file="command line",
                         key="--formulation", hint="name the one with --formulation")
    return found[0]


# ----------------------------------------------------------------------------------
# At release


def release_problems(conn: Database, record_id: str) -> list[str]:
    """Why a record's materials stop its release (inside the release's transaction).

    * A lot the record links (``materials[k].lot_event``) must be that ``lot_received``
      event of the site chain, unchanged.
    * A lot of the store that is blocked (recalled), whenever, stops the release.
    * In a store with accounts, a record made since the first account must name, for
      every tool, a lot received into the store for that tool's formulation.

    An expired lot is refused at print and never printed; the expiry is not checked again
    here (the tablets were made while the lot was good; their own beyond-use date is the
    dispenser's). Empty when nothing stops the release.
    """
    row = conn.execute("SELECT created_utc, content FROM records WHERE id = ?",
                       (record_id,)).fetchone()
    if row is None or "site_events" not in conn.tables():
        return []
    try:
        content = json.loads(row[1])
    except (TypeError, ValueError):
        return []  # the chain check before the release reports an unreadable content
    if not isinstance(content, dict):
        return []
    events = read_site_events(conn, LOT_KINDS)
    by_seq = {e.seq: e for e in events}
    lots = lots_of(events)
    begun = control_began(events)
    required = begun is not None and str(row[0]) >= begun
    problems = []
    for material in materials_of(content):
        tool = material.get("tool")
        number = material.get("lot")
        formulation = material.get("formulation")
        where = f"T{tool}"
        if not isinstance(number, str) or not number.strip():
            if required:
                problems.append(f"{where} ({formulation}) has no material lot")
            continue
        found = lots.get((str(formulation), number))
        link = material.get("lot_event")
        if isinstance(link, Mapping):
            seq = link.get("seq")
            event = by_seq.get(seq) if isinstance(seq, int) else None
            if (event is None or event.kind != "lot_received" or event.hash != link.get("hash")
                    or found is None or found.seq != event.seq):
                problems.append(f"{where} lot {number}: its link to the lot's receipt does "
                                "not match the site chain (altered)")
                continue
        if found is None:
            if required:
                problems.append(f"{where} lot {number} of {formulation} was never received "
                                "into this store")
            continue
        if found.blocked is not None:
            problems.append(f"{where} lot {number} of {formulation} was blocked on "
                            f"{found.blocked['utc'][:10]} by {found.blocked['by']}: "
                            f"{found.blocked['reason']}")
    return problems
