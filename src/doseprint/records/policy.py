"""The site policy: which role may do which signed act, and the few rules a site sets.

A policy is a JSON file (``doseprint.site-policy/1``) that an administrator puts into the
store with ``doseprint user policy set FILE``; it is kept as a signed ``policy_set``
event of the site chain, so the rules in force at any moment are on record and cannot be
edited unseen. Until a site sets one, :data:`DEFAULT_POLICY` applies.

::

    {
      "schema": "doseprint.site-policy/1",
      "permissions": {"release": ["pharmacist"], "qc": ["technician", "pharmacist"], …},
      "lockout_after": 5,
      "password_min_length": 10,
      "release_by_operator": false,
      "release_by_qc": false
    }

``permissions`` may name some acts only: the others keep the default roles.
``release_by_operator`` / ``release_by_qc`` allow the releasing pharmacist to be the one
who printed, or who recorded QC (a one-person pharmacy); each such release then needs a
recorded justification (``--justification``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from doseprint.errors import InputError, Problem
from doseprint.typed import USER_ROLES, UserRole

__all__ = [
    "ACTS",
    "DEFAULT_POLICY",
    "POLICY_SCHEMA",
    "ROLES",
    "Act",
    "Policy",
    "Role",
    "policy_from_json",
]

POLICY_SCHEMA = "doseprint.site-policy/1"

Role = UserRole
ROLES: tuple[Role, ...] = USER_ROLES

Act = Literal[
    "print",
    "qc",
    "investigate",
    "release",
    "reject",
    "supersede",
    "approve_formulation",
    "receive_lot",
    "export_anchor",
    "manage_users",
]
"""Every act that needs a signature."""
ACTS: tuple[Act, ...] = get_args(Act)

_DEFAULT_PERMISSIONS: dict[Act, frozenset[Role]] = {
    "print": frozenset({"technician", "pharmacist"}),
    "qc": frozenset({"technician", "pharmacist", "quality"}),
    "investigate": frozenset({"quality"}),
    "release": frozenset({"pharmacist"}),
    "reject": frozenset({"pharmacist", "quality"}),
    "supersede": frozenset({"pharmacist"}),
    "approve_formulation": frozenset({"quality"}),
    "receive_lot": frozenset({"technician", "pharmacist", "quality"}),
    "export_anchor": frozenset({"quality", "admin"}),
    "manage_users": frozenset({"admin"}),
}

_BOUNDS = {"lockout_after": (1, 100), "password_min_length": (8, 1024)}


@dataclass(frozen=True)
class Policy:
    """The rules in force (see the module docstring)."""

    permissions: Mapping[Act, frozenset[Role]]
    lockout_after: int = 5
    """Consecutive failed log-ins that lock an account (an administrator re-enables it)."""
    password_min_length: int = 10
    release_by_operator: bool = False
    release_by_qc: bool = False

    def roles_for(self, act: Act) -> frozenset[Role]:
        return self.permissions.get(act, frozenset())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": POLICY_SCHEMA,
            "permissions": {act: sorted(self.roles_for(act)) for act in ACTS},
            "lockout_after": self.lockout_after,
            "password_min_length": self.password_min_length,
            "release_by_operator": self.release_by_operator,
            "release_by_qc": self.release_by_qc,
        }


DEFAULT_POLICY = Policy(permissions=dict(_DEFAULT_PERMISSIONS))
"""The rules until a site sets its own: separated duties, lock after 5 failures."""


def policy_from_json(data: object, file: str) -> Policy:
    """A policy from its JSON, every problem reported at once.

    Raises
    ------
    InputError
        Wrong schema, unknown keys, acts or roles, numbers out of range, or a policy that
        leaves nobody able to manage users.
    """
    if not isinstance(data, dict):
        raise InputError("is not a JSON object", file=file)
    problems: list[Problem] = []
    known = {"schema", "permissions", *_BOUNDS, "release_by_operator", "release_by_qc"}
    for key in sorted(set(data) - known):
        problems.append(Problem(file, str(key), f"is not a policy key; allowed: "
                                               f"{', '.join(sorted(known))}"))
    if data.get("schema") != POLICY_SCHEMA:
        problems.append(Problem(file, "schema", f"must be {POLICY_SCHEMA!r}"))
    permissions: dict[Act, frozenset[Role]] = dict(_DEFAULT_PERMISSIONS)
    given = data.get("permissions", {})
    if not isinstance(given, dict):
        problems.append(Problem(file, "permissions", "must be an object of act: [roles]"))
        given = {}
    for act, roles in given.items():
        where = f"permissions.{act}"
        if act not in ACTS:
            problems.append(Problem(file, where, f"is not an act; allowed: {', '.join(ACTS)}"))
            continue
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            problems.append(Problem(file, where, "must be a list of roles"))
            continue
        bad = [r for r in roles if r not in ROLES]
        if bad:
            problems.append(Problem(file, where, f"names {', '.join(map(repr, bad))}; "
                                                 f"roles are {', '.join(ROLES)}"))
            continue
        permissions[act] = frozenset(r for r in roles if r in ROLES)
    if not permissions["manage_users"]:
        problems.append(Problem(file, "permissions.manage_users",
                                "must name a role: nobody could manage users"))
    numbers: dict[str, int] = {}
    for key, (low, high) in _BOUNDS.items():
        value = data.get(key, getattr(DEFAULT_POLICY, key))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(Problem(file, key, f"must be a whole number from {low} to {high}"))
        else:
            numbers[key] = value
    flags: dict[str, bool] = {}
    for key in ("release_by_operator", "release_by_qc"):
        value = data.get(key, False)
        if not isinstance(value, bool):
            problems.append(Problem(file, key, "must be true or false"))
        else:
            flags[key] = value
    if problems:
        raise InputError(problems)
    return Policy(permissions=permissions,
                  lockout_after=numbers["lockout_after"],
                  password_min_length=numbers["password_min_length"],
                  release_by_operator=flags["release_by_operator"],
                  release_by_qc=flags["release_by_qc"])
