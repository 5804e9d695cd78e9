"""What people do to accounts in a store: sign in, add, change, disable, set passwords,
set the policy. Each step reads the site chain and appends to it in one locked
transaction (:meth:`~doseprint.records.store.RecordStore.site_writer`), so two
administrators never make the same id twice.

The rules are those of :mod:`doseprint.records.people`; this module applies them to a
store.
"""

from __future__ import annotations

from collections.abc import Iterable

from doseprint.errors import InputError
from doseprint.records.people import (
    SignInError,
    User,
    authorize,
    check_password,
    check_user_id,
    new_account_data,
    new_password_data,
    policy_of,
    unlock,
    users_of,
)
from doseprint.records.policy import ROLES, Act, Policy, Role
from doseprint.records.signing import Signer
from doseprint.records.store import SYSTEM_ACTOR, RecordStore

__all__ = [
    "add_user",
    "change_user",
    "current_policy",
    "list_users",
    "set_disabled",
    "set_password",
    "set_policy",
    "sign_in",
]

_REFUSED = "the user id or the password is wrong, or the account cannot sign"


def sign_in(store: RecordStore, user_id: str, password: str, act: Act | None) -> Signer:
    """Check a user id and password, and that the policy lets the user sign ``act``.

    Every refusal is written to the site chain first (an unsigned ``login_failed`` with
    the reason; an ``account_locked`` when it is one failure too many), so attempts at
    unauthorised use are on record (Part 11 §11.300(d)); the message does not tell an
    unknown id from a wrong password.

    Raises
    ------
    SignInError
        Unknown id, wrong password, disabled or locked account.
    PermissionRefusedError
        Signed in, but the site policy does not give the user's roles ``act``.
    """
    uid = user_id.strip()
    refusal: InputError | None = None
    signer: Signer | None = None
    with store.site_writer() as writer:
        events = writer.events()
        users = users_of(events)
        policy = policy_of(events)
        user = users.get(uid)
        reason = ""
        if user is None:
            reason = "unknown user"
        elif user.disabled:
            reason = "account disabled"
        elif user.locked:
            reason = "account locked"
        else:
            signer = unlock(user, password)
            if signer is None:
                reason = "wrong password"
        if reason:
            writer.append("login_failed", {"user": uid, "reason": reason,
                                           "act": act or ""}, SYSTEM_ACTOR, None)
            hint = "ask an administrator to enable the account" \
                if reason in ("account disabled", "account locked") else None
            if user is not None and reason == "wrong password" and \
                    user.failures + 1 >= policy.lockout_after:
                writer.append("account_locked",
                              {"user": uid, "after_failures": user.failures + 1},
                              SYSTEM_ACTOR, None)
                hint = (f"the account is now locked after {user.failures + 1} failed "
                        "log-ins in a row; an administrator enables it again "
                        "(`doseprint user enable`)")
            refusal = SignInError(f"{uid!r} cannot sign: {_REFUSED}", file="sign-in",
                                  key="--by", hint=hint)
        elif signer is not None and act is not None:
            try:
                authorize(policy, signer, act)
            except InputError as exc:
                writer.append("login_failed", {"user": uid, "reason": "not permitted",
                                               "act": act}, SYSTEM_ACTOR, None)
                refusal = exc
        if refusal is None and user is not None and user.failures and signer is not None:
            writer.append("signed_in", {"user": uid}, uid, signer)
    if refusal is not None:
        raise refusal
    assert signer is not None
    return signer


def current_policy(store: RecordStore) -> Policy:
    return policy_of(store.site_events(("policy_set",)))


def list_users(store: RecordStore) -> list[User]:
    return sorted(users_of(store.site_events()).values(), key=lambda u: u.id)


def _roles(roles: Iterable[str]) -> list[Role]:
    chosen: list[Role] = []
    for role in roles:
        if role not in ROLES:
            raise InputError(f"{role!r} is not a role; roles are {', '.join(ROLES)}",
                             file="command line", key="--role")
        chosen.append(role)
    if not chosen:
        raise InputError(f"give at least one; roles are {', '.join(ROLES)}",
                         file="command line", key="--role")
    return chosen


def add_user(store: RecordStore, user_id: str, name: str, roles: Iterable[str],
             password: str, by: Signer | None) -> User:
    """Make an account. ``by`` is the administrator who signs it; None only for the
    store's first account, which must hold the admin role and signs its own creation.

    Raises
    ------
    InputError
        Bad id, name, role or password; the id is taken; a first account that is not an
        administrator's; a later one without an administrator's signature.
    """
    uid = check_user_id(user_id, "USER_ID")
    if not name.strip() or any(ord(c) < 32 for c in name):
        raise InputError("must be the person's printed name (no control characters)",
                         file="command line", key="--name")
    chosen = _roles(roles)
    with store.site_writer() as writer:
        events = writer.events()
        users = users_of(events)
        policy = policy_of(events)
        check_password(password, policy)
        if uid in users:
            raise InputError(f"{uid!r} is taken (ids are never reused, even when disabled)",
                             file="command line", key="USER_ID")
        data, own = new_account_data(uid, name.strip(), chosen, password)
        if not users:
            if "admin" not in chosen:
                raise InputError("the store's first account must be an administrator's "
                                 "(--role admin)", file="command line", key="--role")
            writer.append("user_added", data, uid, own)
        else:
            _check_manager(by, policy)
            assert by is not None
            writer.append("user_added", data, by.user_id, by)
    return users_of(store.site_events())[uid]


def _check_manager(by: Signer | None, policy: Policy) -> None:
    if by is None:
        raise InputError("this store has accounts: an administrator signs account changes",
                          file="command line", key="--by")
    authorize(policy, by, "manage_users")


def _existing(users: dict[str, User], user_id: str) -> User:
    user = users.get(user_id.strip())
    if user is None:
        raise InputError(f"no user {user_id!r}", file="command line", key="USER_ID",
                         hint="`doseprint user list` shows the accounts")
    return user


def change_user(store: RecordStore, user_id: str, by: Signer, *, name: str | None = None,
                roles: Iterable[str] | None = None) -> None:
    """Change an account's printed name or roles (an administrator signs)."""
    with store.site_writer() as writer:
        events = writer.events()
        _check_manager(by, policy_of(events))
        user = _existing(users_of(events), user_id)
        data: dict[str, object] = {"user": user.id}
        if name is not None:
            data["name"] = name.strip()
        if roles is not None:
            data["roles"] = sorted(_roles(roles))
        writer.append("user_changed", data, by.user_id, by)


def set_disabled(store: RecordStore, user_id: str, disabled: bool, by: Signer,
                 reason: str) -> None:
    """Disable an account, or enable it again (which also unlocks it)."""
    if not reason.strip():
        raise InputError("say why", file="command line", key="--reason")
    with store.site_writer() as writer:
        events = writer.events()
        _check_manager(by, policy_of(events))
        user = _existing(users_of(events), user_id)
        if disabled and user.id == by.user_id:
            raise InputError("an administrator cannot disable their own account",
                             file="command line", key="USER_ID")
        writer.append("user_disabled" if disabled else "user_enabled",
                      {"user": user.id, "reason": reason.strip()}, by.user_id, by)


def set_password(store: RecordStore, user_id: str, password: str, by: Signer) -> None:
    """Set a password: one's own, or anybody's by an administrator (a reset). A new key
    pair comes with it; the old public key stays on record for the old signatures."""
    with store.site_writer() as writer:
        events = writer.events()
        policy = policy_of(events)
        user = _existing(users_of(events), user_id)
        if user.id != by.user_id:
            _check_manager(by, policy)
        check_password(password, policy, "new password")
        writer.append("password_set", new_password_data(user.id, password), by.user_id, by)


def set_policy(store: RecordStore, policy: Policy, by: Signer) -> None:
    """Put a site policy in force (an administrator signs)."""
    with store.site_writer() as writer:
        _check_manager(by, policy_of(writer.events()))
        writer.append("policy_set", {"policy": policy.to_json()}, by.user_id, by)
