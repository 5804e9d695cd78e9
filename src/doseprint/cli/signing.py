"""Signing in from the command line: the password prompt (or standard input for
automation), and the signer a command then writes with.

In a store without accounts nothing changes: ``--by``/``--operator`` are names and nothing
is signed. In a store with accounts (:mod:`doseprint.records.people`) they are user ids;
the password is asked for on a terminal, or read as one line of standard input when that
is not a terminal (``printf '%s\\n' "$PW" | doseprint record release …``). Commands that
need several passwords read them in the order their help says, one line each.

Where this installation holds the site key (:mod:`doseprint.job.keys`), every record head
a signed act leaves is also sealed with it in the site chain.
"""

from __future__ import annotations

import logging
import sys

import click

from doseprint.errors import InputError
from doseprint.job.keys import key_path, load_site_key
from doseprint.records.accounts import sign_in
from doseprint.records.people import is_controlled
from doseprint.records.policy import Act
from doseprint.records.signing import Signer, site_signer
from doseprint.records.store import RecordStore

__all__ = ["read_secret", "sign_for", "site_key_signer"]

log = logging.getLogger(__name__)


def read_secret(prompt: str, *, confirm: bool = False) -> str:
    """A password: asked for, hidden, on a terminal; else the next line of stdin.

    Raises
    ------
    InputError
        Standard input is not a terminal and has no more lines.
    """
    if sys.stdin is not None and sys.stdin.isatty():
        value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm,
                                  err=True)
        return value
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise InputError(f"no line left on standard input for the {prompt}",
                         file="standard input", key="password",
                         hint="give each password on a line of its own, in the order the "
                              "command's --help lists them")
    return line.removesuffix("\n").removesuffix("\r")


def site_key_signer() -> Signer | None:
    """The site key as a signer of record heads, when this installation holds one."""
    if not key_path().exists():
        return None
    try:
        return site_signer(load_site_key())
    except InputError as exc:
        log.warning("record heads are not sealed with the site key: %s", exc.message)
        return None


def sign_for(store: RecordStore, by: str, act: Act) -> Signer | None:
    """Sign ``by`` in for ``act`` when the store has accounts, and make the store sign
    with them from now on; None in a store without accounts.

    Raises
    ------
    SignInError, PermissionRefusedError
        Wrong id or password, locked or disabled account; a role the policy does not
        give ``act``. The failure is on record before this raises.
    """
    if not is_controlled(store.site_events(("user_added",))):
        return None
    password = read_secret(f"password for {by.strip()}")
    signer = sign_in(store, by, password, act)
    store.sign_as(signer, site_key_signer())
    return signer
