"""``doseprint lot``: material lots received into the record store, and their recalls
(:mod:`doseprint.records.lots`)."""

from __future__ import annotations

from pathlib import Path

import click

from doseprint.cli.options import FiniteFloatRange, db_option, echo_json, json_option, log
from doseprint.cli.signing import sign_for, site_key_signer
from doseprint.cli.terminal import echo_line
from doseprint.errors import InputError
from doseprint.library import Library, load_formulations
from doseprint.records.lots import (
    LOT_KINDS,
    Lot,
    block_lot,
    check_lot_id,
    check_name,
    find_lots,
    lots_of,
    parse_day,
    receive_lot,
)
from doseprint.records.policy import Act
from doseprint.records.signing import Signer
from doseprint.records.store import RecordStore, open_store

__all__ = ["lot_group", "site_act_signer"]


def site_act_signer(store: RecordStore, by: str, act: Act) -> Signer:
    """Who signs a site act (a lot received or blocked, a formulation approved): in a
    store with accounts ``by`` signs in (password asked for, or read from standard
    input); in one without, the site key signs and ``by`` is the name it records.

    Raises
    ------
    InputError
        An open store on an installation without a site key (`doseprint key init`).
    """
    signer = sign_for(store, by, act)
    if signer is not None:
        return signer
    site = site_key_signer()
    if site is None:
        raise InputError(
            "this store has no user accounts and this installation has no site key, so "
            "nothing could sign it", file="command line", key="--by",
            hint="make the site key (`doseprint key init`) or add user accounts "
                 "(`doseprint user add`)")
    return site


def _show(lot: Lot) -> str:
    status = (f"BLOCKED {lot.blocked['utc'][:10]}: {lot.blocked['reason']}"
              if lot.blocked else "received")
    quantity = f"{lot.quantity_g:g} g" if lot.quantity_g is not None else "-"
    return (f"{lot.lot:<20} {lot.formulation:<34} expires {lot.expiry}  received "
            f"{lot.received} by {lot.by}  {quantity:>9}  {lot.supplier}  [{status}]")


@click.group("lot")
def lot_group() -> None:
    """Material lots: received (with supplier and expiry), listed, recalled.

    A print in a store with accounts needs, for every tool, a lot received here for that
    tool's formulation, not expired and not blocked (`print --lot T0=LOT`).

    \b
    Example:
      doseprint lot add L2026-0042 --formulation theophylline-hpc-30 \\
          --expiry 2027-03-31 --supplier "Acme Filaments" --by ct
      doseprint lot list
    """


@lot_group.command("add")
@click.argument("lot")
@click.option("--formulation", "formulation_id", required=True,
              help="The formulation id the lot is material of (see `formulation list`).")
@click.option("--expiry", required=True, help="The last day it may be used, YYYY-MM-DD.")
@click.option("--supplier", required=True, help="Who supplied it.")
@click.option("--received", default=None, help="The day it arrived, YYYY-MM-DD "
              "(default: today, UTC).")
@click.option("--quantity-g", "quantity_g", type=FiniteFloatRange(min=0.0, min_open=True),
              default=None, help="The quantity received, grams.")
@click.option("--by", required=True, help="Who receives it: in a store with accounts a user "
              "id, who signs in (password asked for, or read from standard input); else a "
              "name, and the site key signs.")
@click.option("--formulations", "formulation_dirs", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Extra formulation folder (repeatable; also DOSEPRINT_FORMULATIONS).")
@db_option
def lot_add(lot: str, formulation_id: str, expiry: str, supplier: str, received: str | None,
            quantity_g: float | None, by: str, formulation_dirs: tuple[Path, ...],
            db: str | None) -> None:
    """Receive material lot LOT into the record store (a signed site event).

    A lot number is unique per formulation.

    \b
    Example:
      doseprint lot add L2026-0042 --formulation theophylline-hpc-30 \\
          --expiry 2027-03-31 --supplier "Acme Filaments" --quantity-g 500 --by ct
    """
    formulation = Library(load_formulations(formulation_dirs), {}).formulation(formulation_id)
    # What can be checked without the store is, before anybody is asked for a password.
    check_lot_id(lot)
    check_name(supplier, "--supplier", "a supplier")
    parse_day(expiry, "--expiry")
    if received is not None:
        parse_day(received, "--received")
    with open_store(db) as store:
        signer = site_act_signer(store, by, "receive_lot")
        found = receive_lot(store, lot, formulation=formulation.id,
                            formulation_sha256=formulation.sha256, expiry=expiry,
                            supplier=supplier, by=by, signer=signer, received=received,
                            quantity_g=quantity_g)
        today = store.now_utc()[:10]
    if found.expiry < today:
        log.warning("lot %s expired on %s: it is on record, and no print may use it",
                    found.lot, found.expiry)
    echo_line(f"received lot {found.lot} of {found.formulation}, expires {found.expiry} "
               f"(site event {found.seq}, signed by {found.actor})")


@lot_group.command("list")
@db_option
@json_option()
def lot_list(db: str | None, as_json: bool) -> None:
    """List every lot received, oldest first, with its status.

    \b
    Example:
      doseprint lot list --json
    """
    with open_store(db) as store:
        lots = sorted(lots_of(store.site_events(LOT_KINDS)).values(), key=lambda x: x.seq)
    if as_json:
        echo_json([x.to_json() for x in lots])
        return
    if not lots:
        echo_line("no lots received (`doseprint lot add`)")
    for x in lots:
        echo_line(_show(x))


@lot_group.command("show")
@click.argument("lot")
@click.option("--formulation", "formulation_id", default=None,
              help="Only the lot of this formulation (a number may be another's too).")
@db_option
@json_option()
def lot_show(lot: str, formulation_id: str | None, db: str | None, as_json: bool) -> None:
    """Show lot LOT: formulation, supplier, expiry, who received it, its site event.

    \b
    Example:
      doseprint lot show L2026-0042
    """
    with open_store(db) as store:
        found = find_lots(lots_of(store.site_events(LOT_KINDS)), lot.strip(), formulation_id)
    if not found:
        raise InputError(f"no lot {lot.strip()!r} was received into this store",
                         file="command line", key="LOT",
                         hint="`doseprint lot list` shows the lots received")
    if as_json:
        echo_json([x.to_json() for x in found] if len(found) > 1 else found[0].to_json())
        return
    for i, x in enumerate(found):
        if i:
            echo_line()
        for key, value in x.to_json().items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            echo_line(f"{key:<19} {'-' if value is None else value}")


@lot_group.command("block")
@click.argument("lot")
@click.option("--formulation", "formulation_id", default=None,
              help="The formulation, when the number is that of lots of several.")
@click.option("--reason", required=True, help="Why (e.g. the supplier's recall notice).")
@click.option("--by", required=True, help="Who blocks it: in a store with accounts a user "
              "id whose role may reject batches (pharmacist, quality); else a name.")
@db_option
def lot_block(lot: str, formulation_id: str | None, reason: str, by: str,
              db: str | None) -> None:
    """Block (recall) lot LOT: no print may use it and no record made with it is released.

    \b
    Example:
      doseprint lot block L2026-0042 --reason "supplier recall R-17" --by qa
    """
    with open_store(db) as store:
        signer = site_act_signer(store, by, "reject")
        found = block_lot(store, lot, reason=reason, by=by, signer=signer,
                          formulation=formulation_id)
    echo_line(f"blocked lot {found.lot} of {found.formulation}; records made with it "
               "cannot be released")
