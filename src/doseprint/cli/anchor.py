"""``doseprint record anchor``: the store's heads signed by the site key, to keep
elsewhere (:mod:`doseprint.records.anchor`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from doseprint.cli.options import db_option, echo_json, json_option
from doseprint.cli.signing import sign_for
from doseprint.cli.terminal import echo_line
from doseprint.errors import InputError
from doseprint.job.atomic import write_file_atomic
from doseprint.job.keys import PublicKey, load_site_key, load_trust
from doseprint.records.anchor import make_anchor
from doseprint.records.signing import site_signer
from doseprint.records.store import open_store


def trusted_site_keys() -> tuple[PublicKey, ...]:
    """This site's public key and the trusted ones: who may seal heads and anchors."""
    trust = load_trust()
    return tuple(k for k in (trust.own, *trust.trusted) if k is not None)


@click.group("anchor")
def anchor_group() -> None:
    """Anchors: every record's head, signed by the site key, kept outside the database.

    \b
    Example:
      doseprint record anchor export --out anchors/2026-12-02.json --by qa
      doseprint record verify --anchor anchors/2026-12-02.json
    """


@anchor_group.command("export")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The anchor file to write (JSON); keep it where the database's "
                   "administrators cannot write.")
@click.option("--by", required=True, help="Who exports it (signs in; quality or admin "
              "by default).")
@db_option
@json_option()
def anchor_export(out: Path, by: str, db: str | None, as_json: bool) -> None:
    """Write every record's head and the site chain's head, signed by the site key.
    `record verify --anchor FILE` later shows any record or event removed or changed
    since.

    \b
    Example:
      doseprint record anchor export --out anchors/2026-12-02.json --by qa
    """
    if out.suffix.lower() != ".json":
        raise InputError("must end in .json", file=str(out), key="--out")
    key = load_site_key()
    with open_store(db) as store:
        signer = sign_for(store, by, "export_anchor")
        if signer is None:
            raise InputError("this store has no accounts: an anchor is signed by a "
                             "signed-in person and the site key", file="command line",
                             key="--by", hint="add users first (`doseprint user add`)")
        data = make_anchor(store, signer, site_signer(key), key.public)
    write_file_atomic(out, data)
    if as_json:
        anchor = json.loads(data)
        echo_json({"ok": True, "file": str(out), "records": len(anchor["records"]),
                   "site_chain": anchor["site_chain"], "utc": anchor["utc"]})
        return
    echo_line(f"wrote {out}")
