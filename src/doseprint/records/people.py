"""People: user accounts, roles, passwords, log-ins and the acts they may sign.

A store without accounts works as before: names are free text and nothing is signed.
The first account made (``doseprint user add``) must be an administrator's; from then on
the store is *controlled*: every signed act (a print's start, QC, an investigation, a
release or rejection, a lot received, a formulation approved, a user changed) needs a
user id and that user's password, the two distinct components 21 CFR 11.200(a)(1)
asks for, and the act is recorded with the signer, the time and the meaning
(§11.50). Passwords are hashed with Argon2id (``argon2-cffi``); each account also holds
an Ed25519 key sealed by the password (:mod:`doseprint.records.signing`) that signs
every event the person writes. A new password brings a new key: the old public key
stays on record so the old signatures still verify.

Failed log-ins are recorded (unsigned ``login_failed`` site events); after
:attr:`~doseprint.records.policy.Policy.lockout_after` in a row the account locks until
an administrator enables it again. An account is never deleted, only disabled: its id
stays unique for ever and its signatures stay checkable.

Everything here is derived from the site chain (:mod:`doseprint.records.site`) by
:func:`users_of`; nothing about a person is kept where it could be changed unseen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from doseprint.errors import InputError
from doseprint.records.policy import (
    DEFAULT_POLICY,
    ROLES,
    Act,
    Policy,
    Role,
    policy_from_json,
)
from doseprint.records.signing import SealedKey, Signer, make_signer, new_sealed_key, unseal
from doseprint.records.site import SiteEvent

__all__ = [
    "USER_ID_PATTERN",
    "PermissionRefusedError",
    "SignInError",
    "User",
    "authorize",
    "is_controlled",
    "people_problems",
    "policy_of",
    "users_of",
]

USER_ID_PATTERN = re.compile(r"[a-z][a-z0-9._-]{1,31}")
"""A user id: lower case, starts with a letter, 2 to 32 characters of a-z 0-9 . _ -."""

PASSWORD_HASHER = PasswordHasher()
"""Argon2id with the library's recommended parameters (RFC 9106's second choice: 64 MiB,
3 passes, 4 lanes)."""
_hasher = PASSWORD_HASHER


class SignInError(InputError):
    """The user id and password do not sign in (unknown, wrong, disabled or locked)."""

    after_note = "nothing was done; the failed sign-in is on record."


class PermissionRefusedError(InputError):
    """The signed-in person's roles do not allow the act (site policy)."""

    after_note = "nothing was done; the refusal is on record."


@dataclass(frozen=True)
class User:
    """One account as the site chain says it is now."""

    id: str
    name: str
    roles: frozenset[Role]
    key: SealedKey
    password_hash: str
    created_utc: str
    disabled: bool = False
    locked: bool = False
    failures: int = 0
    """Failed log-ins in a row since the last good one (or the last reset)."""

    @property
    def status(self) -> str:
        return "disabled" if self.disabled else "locked" if self.locked else "active"

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "roles": sorted(self.roles),
                "status": self.status, "created_utc": self.created_utc,
                "key_id": self.key.key_id, "failed_logins": self.failures}


def _sealed(data: dict[str, object]) -> SealedKey | None:
    import base64
    import binascii

    public, sealed = data.get("public_key"), data.get("sealed_private_key")
    if not isinstance(public, str) or not isinstance(sealed, str):
        return None
    try:
        raw = base64.b64decode(public, validate=True)
    except (binascii.Error, ValueError):
        return None
    return SealedKey(raw, sealed)


def _roles(value: object) -> frozenset[Role]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(r for r in ROLES if r in value)


def users_of(events: Iterable[SiteEvent]) -> dict[str, User]:
    """Every account, by id, folded from the site chain in order."""
    users: dict[str, User] = {}
    for event in events:
        _apply(users, event)
    return users


def _apply(users: dict[str, User], event: SiteEvent) -> None:
    """Fold one site event into the accounts."""
    data = event.data
    user_id = data.get("user")
    if not isinstance(user_id, str):
        return
    user = users.get(user_id)
    if event.kind == "user_added" and user is None:
        key = _sealed(data)
        if key is not None:
            users[user_id] = User(user_id, str(data.get("name", "")),
                                  _roles(data.get("roles")), key,
                                  str(data.get("password_hash", "")), event.utc)
    elif user is None:
        return
    elif event.kind == "user_changed":
        users[user_id] = replace(user, name=str(data.get("name", user.name)),
                                 roles=_roles(data.get("roles", sorted(user.roles))))
    elif event.kind == "user_disabled":
        users[user_id] = replace(user, disabled=True)
    elif event.kind == "user_enabled":
        users[user_id] = replace(user, disabled=False, locked=False, failures=0)
    elif event.kind == "password_set":
        key = _sealed(data)
        if key is not None:
            users[user_id] = replace(user, key=key, locked=False, failures=0,
                                     password_hash=str(data.get("password_hash", "")))
    elif event.kind == "login_failed" and data.get("reason") == "wrong password":
        users[user_id] = replace(user, failures=user.failures + 1)
    elif event.kind == "account_locked":
        users[user_id] = replace(user, locked=True)
    elif event.kind == "signed_in":
        users[user_id] = replace(user, failures=0)


def _policy_in(event: SiteEvent) -> Policy | None:
    try:
        return policy_from_json(event.data.get("policy"), "site chain")
    except InputError:
        return None  # verify reports a policy event that does not read


def policy_of(events: Iterable[SiteEvent]) -> Policy:
    """The policy in force: the latest ``policy_set``, else the default."""
    policy = DEFAULT_POLICY
    for event in events:
        if event.kind == "policy_set":
            policy = _policy_in(event) or policy
    return policy


def is_controlled(events: Iterable[SiteEvent]) -> bool:
    """Whether the store has accounts (and so every act must be signed)."""
    return any(e.kind == "user_added" for e in events)


def control_began(events: Iterable[SiteEvent]) -> str | None:
    """When the first account was made (UTC text), or None."""
    for event in events:
        if event.kind == "user_added":
            return event.utc
    return None


def authorize(policy: Policy, signer: Signer, act: Act) -> None:
    """Refuse an act the signer's roles do not allow.

    Raises
    ------
    PermissionRefusedError
    """
    allowed = policy.roles_for(act)
    if not signer.roles & allowed:
        raise PermissionRefusedError(
            f"{signer.user_id} ({', '.join(sorted(signer.roles)) or 'no role'}) may not "
            f"sign '{act}'; the site policy allows it to: "
            f"{', '.join(sorted(allowed)) or 'nobody'}",
            key="--by", file="site policy",
            hint="sign in as somebody who holds that role, or have an administrator "
                 "change the policy (`doseprint user policy`)")


def check_user_id(user_id: str, key: str = "--by") -> str:
    text = user_id.strip()
    if not USER_ID_PATTERN.fullmatch(text):
        raise InputError(
            f"{user_id!r} is not a user id: 2 to 32 characters, lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter", file="command line", key=key)
    return text


def check_password(password: str, policy: Policy, key: str = "password") -> None:
    if len(password) < policy.password_min_length:
        raise InputError(f"is shorter than the site's minimum of "
                         f"{policy.password_min_length} characters",
                         file="command line", key=key)
    if password != password.strip() or any(ord(c) < 32 for c in password):
        raise InputError("must not start or end with spaces or hold control characters",
                         file="command line", key=key)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_account_data(user_id: str, name: str, roles: Iterable[Role],
                     password: str) -> tuple[dict[str, object], Signer]:
    """The ``user_added`` data of a new account, and its signer (for a first account,
    which signs its own creation)."""
    import base64

    sealed, private = new_sealed_key(password)
    role_set = frozenset(roles)
    data: dict[str, object] = {
        "user": user_id, "name": name, "roles": sorted(role_set),
        "password_hash": hash_password(password),
        "public_key": base64.b64encode(sealed.public).decode("ascii"),
        "sealed_private_key": sealed.sealed_private,
    }
    return data, make_signer(user_id, name, role_set, private)


def new_password_data(user_id: str, password: str) -> dict[str, object]:
    """The ``password_set`` data: a new hash and a new key sealed by the new password."""
    import base64

    sealed, _ = new_sealed_key(password)
    return {"user": user_id, "password_hash": hash_password(password),
            "public_key": base64.b64encode(sealed.public).decode("ascii"),
            "sealed_private_key": sealed.sealed_private}


def unlock(user: User, password: str) -> Signer | None:
    """The user's signer when ``password`` is theirs, else None."""
    if not password_matches(user, password):
        return None
    private = unseal(user.key, password)
    if private is None:
        return None
    return make_signer(user.id, user.name, user.roles, private)


_MANAGING_KINDS = frozenset({"user_added", "user_changed", "user_disabled", "user_enabled",
                             "policy_set"})


def people_problems(events: Sequence[SiteEvent]) -> list[str]:
    """Acts in the site chain done by somebody who could not do them then: an account
    made, changed or a policy set by a non-administrator (the first account apart, which
    makes itself), a password set by somebody else than its owner or an administrator,
    an act signed by a disabled account, a policy that does not read."""
    problems: list[str] = []
    users: dict[str, User] = {}
    policy = DEFAULT_POLICY
    for event in events:
        managers = policy.roles_for("manage_users")
        where = f"site event {event.seq} ({event.kind} by {event.actor})"
        actor = users.get(event.actor)
        first = not users and event.kind == "user_added" and event.actor == event.data.get("user")
        if first and "admin" not in _roles(event.data.get("roles")):
            problems.append(f"{where}: the first account is not an administrator's")
        if event.kind in _MANAGING_KINDS and not first:
            if actor is None or not actor.roles & managers or actor.disabled:
                problems.append(f"{where}: not signed by an administrator")
        elif event.kind == "password_set" and (
                actor is None or (event.actor != event.data.get("user")
                                  and not actor.roles & managers)):
            problems.append(f"{where}: a password set by somebody who may not set it")
        elif event.signature and event.actor != "site" and not first and (
                actor is None or actor.disabled):
            problems.append(f"{where}: signed by an account that was not active")
        if event.kind == "policy_set":
            new = _policy_in(event)
            if new is None:
                problems.append(f"{where}: the policy does not read (altered)")
            else:
                policy = new
        _apply(users, event)
    return problems
