"""``doseprint user``: the people who may sign in a record store, and the site policy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from doseprint.cli.options import db_option, echo_json, json_option
from doseprint.cli.signing import read_secret, sign_for
from doseprint.cli.terminal import echo_line
from doseprint.errors import InputError
from doseprint.records.accounts import (
    add_user,
    change_user,
    current_policy,
    list_users,
    set_disabled,
    set_password,
    set_policy,
)
from doseprint.records.people import is_controlled
from doseprint.records.policy import ROLES, policy_from_json
from doseprint.records.signing import Signer
from doseprint.records.store import RecordStore, open_store

_ROLE = click.Choice(ROLES)


def _admin(store: RecordStore, by: str | None) -> Signer:
    if not by:
        raise InputError("name the administrator who signs this", file="command line",
                         key="--by")
    signer = sign_for(store, by, "manage_users")
    if signer is None:
        raise InputError("this store has no accounts yet: make the first, an "
                         "administrator's, with `doseprint user add ID --role admin`",
                         file="command line", key="--by")
    return signer


@click.group("user")
def user_group() -> None:
    """The people who sign: accounts, roles, passwords, and the site policy.

    Passwords are asked for on a terminal; for automation each is read as one line of
    standard input, in the order a command's help gives.

    \b
    Example:
      doseprint user add admin --name "A. Admin" --role admin
      doseprint user add bp --name "B. Pharmacist" --role pharmacist --by admin
      doseprint user list
    """


@user_group.command("add")
@click.argument("user_id")
@click.option("--name", required=True, help="The person's printed name, as signatures "
              "show it.")
@click.option("--role", "roles", multiple=True, required=True, type=_ROLE,
              help="A role (repeatable): technician, pharmacist, quality, admin.")
@click.option("--by", default=None, help="The administrator who signs it (not for the "
              "store's first account, which must be an administrator's).")
@db_option
def user_add(user_id: str, name: str, roles: tuple[str, ...], by: str | None,
             db: str | None) -> None:
    """Add an account. Passwords, in order: the administrator's (--by), then the new
    account's (asked twice on a terminal).

    \b
    Example:
      doseprint user add bp --name "B. Pharmacist" --role pharmacist --by admin
    """
    with open_store(db) as store:
        signer = _admin(store, by) if is_controlled(store.site_events(("user_added",))) \
            else None
        password = read_secret(f"new password for {user_id}", confirm=True)
        user = add_user(store, user_id, name, roles, password, signer)
    echo_line(f"added {user.id} ({', '.join(sorted(user.roles))}); key {user.key.key_id[:16]}")


@user_group.command("list")
@db_option
@json_option()
def user_list(db: str | None, as_json: bool) -> None:
    """List the accounts (ids, names, roles, status).

    \b
    Example:
      doseprint user list --json
    """
    with open_store(db) as store:
        users = list_users(store)
    if as_json:
        echo_json([u.to_json() for u in users])
        return
    if not users:
        echo_line("no accounts: this store signs nothing (add an administrator first)")
    for u in users:
        echo_line(f"{u.id:<16} {u.status:<9} {','.join(sorted(u.roles)):<28} {u.name}")


def _toggle(user_id: str, by: str, reason: str, db: str | None, disabled: bool) -> None:
    with open_store(db) as store:
        signer = _admin(store, by)
        set_disabled(store, user_id, disabled, signer, reason)
    echo_line(f"{'disabled' if disabled else 'enabled'} {user_id}")


@user_group.command("disable")
@click.argument("user_id")
@click.option("--by", required=True, help="The administrator who signs it.")
@click.option("--reason", required=True, help="Why.")
@db_option
def user_disable(user_id: str, by: str, reason: str, db: str | None) -> None:
    """Disable an account: it can no longer sign; its id is never reused.

    \b
    Example:
      doseprint user disable ct --by admin --reason "left the pharmacy"
    """
    _toggle(user_id, by, reason, db, True)


@user_group.command("enable")
@click.argument("user_id")
@click.option("--by", required=True, help="The administrator who signs it.")
@click.option("--reason", required=True, help="Why.")
@db_option
def user_enable(user_id: str, by: str, reason: str, db: str | None) -> None:
    """Enable a disabled or locked account again.

    \b
    Example:
      doseprint user enable ct --by admin --reason "identity checked after lock-out"
    """
    _toggle(user_id, by, reason, db, False)


@user_group.command("passwd")
@click.argument("user_id")
@click.option("--by", default=None, help="Who signs it: the user (default) or an "
              "administrator resetting it.")
@db_option
def user_passwd(user_id: str, by: str | None, db: str | None) -> None:
    """Set a password (and a new signing key). Passwords, in order: the signer's current
    one, then the new one (asked twice on a terminal).

    \b
    Example:
      doseprint user passwd bp
    """
    signer_id = by or user_id
    with open_store(db) as store:
        signer = (sign_for(store, signer_id, "manage_users")
                  if signer_id.strip() != user_id.strip() else _self(store, signer_id))
        if signer is None:
            raise InputError("this store has no accounts", file="command line", key="USER_ID")
        password = read_secret(f"new password for {user_id}", confirm=True)
        set_password(store, user_id, password, signer)
    echo_line(f"password set for {user_id}")


def _self(store: RecordStore, user_id: str) -> Signer | None:
    from doseprint.records.accounts import sign_in

    if not is_controlled(store.site_events(("user_added",))):
        return None
    return sign_in(store, user_id, read_secret(f"password for {user_id}"), None)


@user_group.command("change")
@click.argument("user_id")
@click.option("--name", default=None, help="A new printed name.")
@click.option("--role", "roles", multiple=True, type=_ROLE,
              help="The roles from now on (repeatable; all of them).")
@click.option("--by", required=True, help="The administrator who signs it.")
@db_option
def user_change(user_id: str, name: str | None, roles: tuple[str, ...], by: str,
                db: str | None) -> None:
    """Change an account's printed name or roles.

    \b
    Example:
      doseprint user change ct --role technician --role quality --by admin
    """
    if name is None and not roles:
        raise InputError("give --name or --role", file="command line", key="--role")
    with open_store(db) as store:
        signer = _admin(store, by)
        change_user(store, user_id, signer, name=name, roles=roles or None)
    echo_line(f"changed {user_id}")


@user_group.group("policy")
def policy_group() -> None:
    """The site policy: which role signs which act, lock-out, separation of duties.

    \b
    Example:
      doseprint user policy show --json > site-policy.json
      doseprint user policy set site-policy.json --by admin
    """


@policy_group.command("show")
@db_option
@json_option("Machine-readable output: the policy file's own form.")
def policy_show(db: str | None, as_json: bool) -> None:
    """Show the policy in force.

    \b
    Example:
      doseprint user policy show --json > policy.json
    """
    with open_store(db) as store:
        policy = current_policy(store)
    if as_json:
        echo_json(policy.to_json())
        return
    for act, roles in policy.to_json()["permissions"].items():
        echo_line(f"{act:<20} {', '.join(roles) or 'nobody'}")
    echo_line(f"lock-out after {policy.lockout_after} failed log-ins; passwords of at least "
               f"{policy.password_min_length} characters")
    echo_line(f"release by the operator who printed: "
               f"{'allowed with a justification' if policy.release_by_operator else 'no'}; "
               f"by who recorded QC: "
               f"{'allowed with a justification' if policy.release_by_qc else 'no'}")


@policy_group.command("set")
@click.argument("policy_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--by", required=True, help="The administrator who signs it.")
@db_option
def policy_set(policy_file: Path, by: str, db: str | None) -> None:
    """Put a site policy file (doseprint.site-policy/1) in force.

    \b
    Example:
      doseprint user policy set site-policy.json --by admin
    """
    try:
        data = json.loads(policy_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", file=str(policy_file)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"is not readable JSON ({exc})", file=str(policy_file)) from None
    policy = policy_from_json(data, str(policy_file))
    with open_store(db) as store:
        signer = _admin(store, by)
        set_policy(store, policy, signer)
    echo_line(f"policy from {policy_file} is in force")
