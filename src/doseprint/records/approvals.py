"""Master formulation records: which versions of which formulation files are approved
for dispensing.

A formulation file (``formulations/<id>.toml``) is the master formulation record of a
material: what it holds and how it releases. The version is the SHA-256 of the file's
bytes, the hash a job carries for each tool (``tools[k].formulation_sha256``). A quality
user approves one version with a signed ``formulation_approved`` site event
(:mod:`doseprint.records.site`); an approval stands until a signed
``formulation_withdrawn`` withdraws it. Changing the file makes a new version that needs
its own approval: the old approval is for the old bytes only.

Who signs: in a store with accounts a signed-in person whose role the site policy gives
``approve_formulation`` (quality by default), for approving and withdrawing alike; in a
store without accounts the site key, with the name given written into the event
(:func:`doseprint.records.lots.check_signer`).

Where approvals are checked: ``doseprint compile --dispense`` (the files it designs with)
and ``doseprint print`` in a store with accounts (the hashes the job was compiled with);
see :mod:`doseprint.dispensing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from doseprint.errors import InputError
from doseprint.records.lots import SiteStore, check_name, check_signer, revocation, text_of
from doseprint.records.signing import Signer
from doseprint.records.site import SiteEvent

__all__ = [
    "APPROVAL_KINDS",
    "Approval",
    "approval_problem",
    "approvals_of",
    "approve_formulation",
    "approved_hashes",
    "withdraw_approval",
]

APPROVAL_KINDS = ("formulation_approved", "formulation_withdrawn", "user_added",
                  "policy_set")
"""The site event kinds approvals are folded from (with those that say who may sign)."""


@dataclass(frozen=True)
class Approval:
    """One approved version of a formulation file, as the site chain says it is now.

    Attributes
    ----------
    formulation, sha256, file : str
        The formulation id, the SHA-256 of the file's bytes, and the file's name.
    meaning : str
        What the signature means (e.g. "master formulation record approved").
    by : str
        Who approved it: a user id, or in a store without accounts the name given.
    seq, hash : int, str
        The ``formulation_approved`` site event.
    withdrawn : mapping or None
        The ``formulation_withdrawn`` event's ``reason``, ``by``, ``utc`` and ``seq``.
    """

    formulation: str
    sha256: str
    file: str
    meaning: str
    by: str
    actor: str
    utc: str
    seq: int
    hash: str
    withdrawn: Mapping[str, Any] | None = None

    @property
    def in_force(self) -> bool:
        return self.withdrawn is None

    def to_json(self) -> dict[str, Any]:
        return {"formulation": self.formulation, "sha256": self.sha256, "file": self.file,
                "meaning": self.meaning, "by": self.by, "signed_by": self.actor,
                "utc": self.utc, "site_event": {"seq": self.seq, "hash": self.hash},
                "status": "approved" if self.in_force else "withdrawn",
                "withdrawn": dict(self.withdrawn) if self.withdrawn else None}


def approvals_of(events: Iterable[SiteEvent]) -> list[Approval]:
    """Every approval in the order given, withdrawn ones marked so."""
    found: list[Approval] = []
    for event in events:
        data = event.data
        fid, digest = text_of(data, "formulation"), text_of(data, "sha256")
        if event.kind == "formulation_approved" and fid and digest:
            found.append(Approval(fid, digest, text_of(data, "file"), text_of(data, "meaning"),
                                  text_of(data, "by"), event.actor, event.utc, event.seq,
                                  event.hash))
        elif event.kind == "formulation_withdrawn" and fid:
            withdrawal = revocation(event)
            found = [replace(a, withdrawn=withdrawal)
                     if a.in_force and a.formulation == fid and a.sha256 in
                     (data.get("sha256") or []) else a for a in found]
    return found


def approved_hashes(approvals: Iterable[Approval], formulation: str) -> list[str]:
    """The versions of ``formulation`` approved and not withdrawn, oldest first."""
    return [a.sha256 for a in approvals if a.formulation == formulation and a.in_force]


def approval_problem(approvals: Iterable[Approval], formulation: str,
                     sha256: str) -> str | None:
    """Why version ``sha256`` of ``formulation`` may not be dispensed, or None."""
    approved = approved_hashes(approvals, formulation)
    if sha256 in approved:
        return None
    if not approved:
        return (f"formulation {formulation} (sha256 {sha256}) is not approved for "
                "dispensing: no version of it is")
    return (f"formulation {formulation} has changed since its approval: this version is "
            f"sha256 {sha256}, the approved one{'s are' if len(approved) > 1 else ' is'} "
            f"{', '.join(approved)}")


def approve_formulation(store: SiteStore, formulation: str, sha256: str, file: str, *,
                        meaning: str, by: str, signer: Signer) -> Approval:
    """Approve one version of a formulation file (a signed ``formulation_approved``).

    Parameters
    ----------
    formulation, sha256, file : str
        The id, the SHA-256 of the file's bytes as read now, and the file's name.
    meaning : str
        What the signature means.
    by : str
        The signer (a user id; a name in a store without accounts).
    signer : Signer
        A signed-in person allowed ``approve_formulation``, or the site key in a store
        without accounts.

    Raises
    ------
    InputError, PermissionRefusedError
        This version is approved already; no meaning; a signer who may not approve.
    """
    what = check_name(meaning, "--meaning", "the meaning of the signature")
    who = check_name(by, "--by", "a name")
    with store.site_writer() as writer:
        events = writer.events(APPROVAL_KINDS)
        check_signer(events, signer, who, "approve_formulation")
        for a in approvals_of(events):
            if a.formulation == formulation and a.sha256 == sha256 and a.in_force:
                raise InputError(f"this version of {formulation} (sha256 {sha256[:16]}…) "
                                 f"was approved already (site event {a.seq}, by {a.by})",
                                 file=file, key="sha256")
        event = writer.append("formulation_approved",
                              {"formulation": formulation, "sha256": sha256, "file": file,
                               "meaning": what, "by": who}, signer.user_id, signer)
    return Approval(formulation, sha256, file, what, who, event.actor, event.utc, event.seq,
                    event.hash)


def withdraw_approval(store: SiteStore, formulation: str, *, reason: str, by: str,
                      signer: Signer, sha256: str | None = None) -> list[Approval]:
    """Withdraw the approval of one version (``sha256``) of a formulation, or of every
    version in force; a signed ``formulation_withdrawn``. Returns the approvals withdrawn.

    Raises
    ------
    InputError, PermissionRefusedError
        Nothing of that formulation (or version) is approved; no reason; a signer who
        may not (``approve_formulation``).
    """
    why = check_name(reason, "--reason", "a reason")
    who = check_name(by, "--by", "a name")
    with store.site_writer() as writer:
        events = writer.events(APPROVAL_KINDS)
        check_signer(events, signer, who, "approve_formulation")
        current = [a for a in approvals_of(events)
                   if a.formulation == formulation and a.in_force
                   and (sha256 is None or a.sha256 == sha256.strip().lower())]
        if not current:
            version = f" version {sha256}" if sha256 else ""
            raise InputError(f"no approval of {formulation}{version} is in force",
                             file="command line", key="--sha256" if sha256 else "ID",
                             hint="`doseprint formulation approvals` lists them")
        writer.append("formulation_withdrawn",
                      {"formulation": formulation, "sha256": [a.sha256 for a in current],
                       "reason": why, "by": who}, signer.user_id, signer)
    return current
