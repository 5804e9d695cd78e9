"""Signatures: who signed an event, with which key, and whether it still verifies.

Every person in a store that has user accounts (:mod:`doseprint.records.people`) holds an
Ed25519 key pair. The public half is written into the site chain when the account is made
or its password is set; the private half is kept there too, but sealed with the person's
password (PKCS #8, encrypted by the ``cryptography`` library's best available scheme), so
only somebody who knows the password can sign as them. A :class:`Signer` is that key
unlocked for one command: it signs the hash of every event the command writes. The
site's own key (:mod:`doseprint.job.keys`) is a signer too, for record heads and
exported anchors.

A signature covers an event's hash (64 hex digits, as ASCII), and the hash covers the
event's record, place, time, actor, kind, data and the hash before it
(:func:`~doseprint.records.chain.event_hash`): editing an event and re-chaining those
after it leaves signatures that no longer verify, and nobody without the signers'
passwords can make new ones.

This module has no database in it: :mod:`doseprint.records.site` and the store give it
the stored rows.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from doseprint.job.keys import PublicKey, SiteKey, fingerprint_of

__all__ = [
    "KeyRing",
    "SealedKey",
    "Signer",
    "new_sealed_key",
    "signature_problem",
    "site_signer",
    "unseal",
]

SITE_SIGNER = "site"
"""The ``signer`` of what the site key signs (record heads, anchors)."""


@dataclass(frozen=True)
class SealedKey:
    """A person's key pair as the store keeps it: the public half in the clear, the
    private half sealed by their password."""

    public: bytes
    sealed_private: str
    """PEM (``ENCRYPTED PRIVATE KEY``)."""

    @property
    def key_id(self) -> str:
        return fingerprint_of(self.public)


@dataclass(frozen=True)
class Signer:
    """A key unlocked for signing: a signed-in person's, or the site's.

    Attributes
    ----------
    user_id : str
        Who signs (:data:`SITE_SIGNER` for the site key).
    name : str
        The printed name (Part 11 §11.50).
    roles : frozenset of str
        Their roles (empty for the site key).
    key_id : str
        The fingerprint of the public key that checks the signatures.
    """

    user_id: str
    name: str
    roles: frozenset[str]
    key_id: str
    _private: Ed25519PrivateKey = field(repr=False, compare=False)

    def sign(self, digest: str) -> str:
        """The base64 Ed25519 signature of an event hash (hex text)."""
        return base64.b64encode(self._private.sign(digest.encode("ascii"))).decode("ascii")


def new_sealed_key(password: str) -> tuple[SealedKey, Ed25519PrivateKey]:
    """A new key pair, its private half sealed with ``password``."""
    private = Ed25519PrivateKey.generate()
    return _seal(private, password), private


def _seal(private: Ed25519PrivateKey, password: str) -> SealedKey:
    public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode("utf-8")),
    ).decode("ascii")
    return SealedKey(public, pem)


def unseal(sealed: SealedKey, password: str) -> Ed25519PrivateKey | None:
    """The private key, or None when the password does not open it (or it is not an
    Ed25519 key whose public half is ``sealed.public``)."""
    try:
        private = serialization.load_pem_private_key(
            sealed.sealed_private.encode("ascii"), password=password.encode("utf-8"))
    except (ValueError, TypeError):
        return None
    if not isinstance(private, Ed25519PrivateKey):
        return None
    public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
    return private if public == sealed.public else None


def make_signer(user_id: str, name: str, roles: frozenset[str],
                private: Ed25519PrivateKey) -> Signer:
    public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
    return Signer(user_id, name, roles, fingerprint_of(public), private)


def site_signer(key: SiteKey) -> Signer:
    """The site key as a signer (of record heads and anchors)."""
    return Signer(SITE_SIGNER, key.public.site or "site key", frozenset(),
                  key.public.fingerprint, key.private)


@dataclass(frozen=True)
class KeyRing:
    """Every public key a store knows, by fingerprint, with its owner: people's keys from
    the site chain, and the site keys this installation trusts."""

    keys: Mapping[str, tuple[str, PublicKey]]
    """key id -> (owner: a user id or :data:`SITE_SIGNER`, key)."""

    def owner(self, key_id: str) -> str | None:
        found = self.keys.get(key_id)
        return found[0] if found else None


def signature_problem(ring: KeyRing, signer: str, key_id: str, signature: str,
                      digest: str) -> str | None:
    """Why a stored signature does not check out, or None when it does.

    The key must be known, belong to ``signer``, and its signature of ``digest`` verify.
    """
    found = ring.keys.get(key_id)
    if found is None:
        return f"signed with a key nobody in this store holds ({key_id[:16]}…)"
    owner, public = found
    if owner != signer:
        return f"signed as {signer!r} with a key that belongs to {owner!r}"
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return "its signature is not base64 (altered)"
    if not public.verifies(raw, digest.encode("ascii")):
        return f"the signature by {signer!r} does not match (altered after it was signed)"
    return None
