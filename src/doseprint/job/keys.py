"""The site key that seals jobs, and the public keys of the sites this one trusts.

A site's key is an Ed25519 private key in a PEM file readable by its owner only
(``site-key.pem`` in the user's configuration folder, or ``DOSEPRINT_KEY``). Beside it,
``site-key.pub.json`` holds its public half with the site's name, in the same form
``doseprint key export-public`` writes and ``doseprint key trust`` reads
(``doseprint.public-key/1``). The public keys of other sites, and this site's own retired
keys, are such files in the trusted-keys folder (``trusted-keys/`` beside the site key's
default place, or ``DOSEPRINT_TRUSTED_KEYS``).

A key is named by its fingerprint: the SHA-256 of its 32 raw public-key bytes, in hex.
The signing itself is the ``cryptography`` package's Ed25519; nothing here is
hand-written cryptography.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from doseprint.errors import DiskError, InputError
from doseprint.job.atomic import write_file_atomic

__all__ = [
    "ALGORITHM",
    "KEY_ENV",
    "PUBLIC_KEY_SCHEMA",
    "TRUSTED_KEYS_ENV",
    "KeyCreation",
    "PublicKey",
    "SiteKey",
    "Trust",
    "create_site_key",
    "decode_public_key",
    "default_key_path",
    "fingerprint_of",
    "key_path",
    "load_site_key",
    "load_trust",
    "load_trusted_keys",
    "public_key_path",
    "read_public_key",
    "site_key_for_compile",
    "trust_key",
    "trusted_keys_dir",
]

log = logging.getLogger(__name__)

KEY_ENV = "DOSEPRINT_KEY"
"""The site's private key file, instead of ``site-key.pem`` in the configuration folder."""
TRUSTED_KEYS_ENV = "DOSEPRINT_TRUSTED_KEYS"
"""The folder of trusted public keys, instead of ``trusted-keys/`` in the configuration
folder."""
PUBLIC_KEY_SCHEMA = "doseprint.public-key/1"
ALGORITHM = "ed25519"
RAW_KEY_BYTES = 32
MAX_KEY_FILE_BYTES = 64 * 1024
"""A key file is a few hundred bytes; anything much larger is not one."""


# Where the keys are ----------------------------------------------------------------------


def _config_dir() -> Path:
    return Path(platformdirs.user_config_dir("doseprint", appauthor=False))


def default_key_path() -> Path:
    """``site-key.pem`` in the user's configuration folder."""
    return _config_dir() / "site-key.pem"


def key_path(path: Path | str | None = None) -> Path:
    """The site's private key file: ``path`` (``--key``), else ``DOSEPRINT_KEY``, else
    :func:`default_key_path`."""
    if path is not None and str(path).strip():
        return Path(path).expanduser()
    env = os.environ.get(KEY_ENV, "").strip()
    return Path(env).expanduser() if env else default_key_path()


def trusted_keys_dir(path: Path | str | None = None) -> Path:
    """The trusted public keys' folder: ``path`` (``--trusted-keys``), else
    ``DOSEPRINT_TRUSTED_KEYS``, else ``trusted-keys`` in the user's configuration folder."""
    if path is not None and str(path).strip():
        return Path(path).expanduser()
    env = os.environ.get(TRUSTED_KEYS_ENV, "").strip()
    return Path(env).expanduser() if env else _config_dir() / "trusted-keys"


def public_key_path(private: Path) -> Path:
    """The public half kept beside a private key file: ``site-key.pem`` ->
    ``site-key.pub.json``."""
    return private.with_name(private.stem + ".pub.json")


# Values -------------------------------------------------------------------------------------


def fingerprint_of(raw: bytes) -> str:
    """A public key's fingerprint: the SHA-256 of its raw bytes, in hex."""
    return hashlib.sha256(raw).hexdigest()


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key and the site it belongs to.

    Attributes
    ----------
    raw : bytes
        The 32 raw public-key bytes.
    site : str
        The site's name as its owner gave it ("" when none was given).
    created_utc : str
        When the key was made, if known.
    source : str
        The file it was read from ("" when made here).
    """

    raw: bytes
    site: str = ""
    created_utc: str = ""
    source: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.raw)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    def describe(self) -> str:
        """``site 'NAME', fingerprint HEX`` (the site left out when it has none)."""
        site = f"site {self.site!r}, " if self.site else ""
        return f"{site}fingerprint {self.fingerprint}"

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``data``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"schema": PUBLIC_KEY_SCHEMA, "algorithm": ALGORITHM, "site": self.site,
                "public_key": self.base64, "fingerprint": self.fingerprint,
                "created_utc": self.created_utc}

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n").encode()


def decode_public_key(text: object, *, file: str, key: str) -> bytes:
    """32 raw public-key bytes from their base64 text.

    Raises
    ------
    InputError
        Not base64 text of 32 bytes (``file`` and ``key`` named).
    """
    if not isinstance(text, str):
        raise InputError("must be the public key in base64 text", file=file, key=key)
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InputError("is not base64 text", file=file, key=key) from None
    if len(raw) != RAW_KEY_BYTES:
        raise InputError(f"is {len(raw)} bytes; an Ed25519 public key is {RAW_KEY_BYTES}",
                         file=file, key=key)
    return raw


def _read_small(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{what} not found", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"{what} cannot be read: {exc.strerror or exc}", file=str(path)) \
            from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise InputError(f"is larger than {MAX_KEY_FILE_BYTES} bytes: not a {what}",
                         file=str(path))
    return data


def read_public_key(path: Path | str, *, site: str | None = None) -> PublicKey:
    """A public key from a file: the JSON ``doseprint key export-public`` writes, or an
    Ed25519 public key in PEM (``-----BEGIN PUBLIC KEY-----``).

    Parameters
    ----------
    site : str, optional
        The site's name, overriding the file's (a PEM file carries none).

    Raises
    ------
    InputError
        Unreadable, not one of those forms, not Ed25519, or a fingerprint that does not
        match the key it travels with.
    """
    path = Path(path)
    data = _read_small(path, "public key file")
    where = str(path)
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            loaded = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InputError(f"is not a readable PEM public key ({exc})", file=where) \
                from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise InputError("is not an Ed25519 public key", file=where)
        raw = loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey(raw, (site or "").strip(), "", where)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputError("is neither a doseprint public key (JSON) nor a PEM public key",
                         file=where) from None
    if not isinstance(doc, dict) or doc.get("schema") != PUBLIC_KEY_SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise InputError(f"is {found!r}; a public key written by `doseprint key "
                         f"export-public` has schema {PUBLIC_KEY_SCHEMA!r}", file=where,
                         key="schema")
    if doc.get("algorithm") != ALGORITHM:
        raise InputError(f"is {doc.get('algorithm')!r}; doseprint seals with {ALGORITHM!r}",
                         file=where, key="algorithm")
    raw = decode_public_key(doc.get("public_key"), file=where, key="public_key")
    stated = doc.get("fingerprint")
    if stated is not None and stated != fingerprint_of(raw):
        raise InputError("does not match the public key in the same file: the file was "
                         "altered; ask its site for it again", file=where, key="fingerprint")
    name = site if site is not None else doc.get("site", "")
    created = doc.get("created_utc", "")
    return PublicKey(raw, str(name or "").strip(), str(created or ""), where)


@dataclass(frozen=True)
class SiteKey:
    """This site's private key and its public half."""

    private: Ed25519PrivateKey
    public: PublicKey
    path: Path

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature of ``data`` (64 bytes)."""
        return self.private.sign(data)


@dataclass(frozen=True)
class KeyCreation:
    """What :func:`create_site_key` did: the new key, and where the old one went."""

    key: SiteKey
    backup: Path | None = None
    """The replaced private key, renamed with the date it was retired."""
    old_trusted: Path | None = None
    """The replaced key's public half, now in the trusted-keys folder."""


# The site key ---------------------------------------------------------------------------


def _raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)


def load_site_key(path: Path | str | None = None) -> SiteKey:
    """Read the site's private key (:func:`key_path`) and its public half's site name.

    A key file that others may read is used, with a warning: the seal is only as good as
    the key's secrecy.

    Raises
    ------
    InputError
        No key there (the hint says how to make one), or not an unencrypted Ed25519
        private key in PEM, or a public half beside it that belongs to another key.
    """
    path = key_path(path)
    if not path.exists():
        raise InputError("no site key here", file=str(path),
                         hint="make one with `doseprint key init --site NAME` (or point "
                              f"{KEY_ENV} or --key at the site's key file)")
    data = _read_small(path, "site key")
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InputError("is protected by a passphrase, which doseprint does not use: keep "
                         "the key unencrypted and readable by its owner only",
                         file=str(path)) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"is not a readable PEM private key ({exc})", file=str(path)) \
            from None
    if not isinstance(private, Ed25519PrivateKey):
        raise InputError("is not an Ed25519 private key", file=str(path))
    _warn_if_readable_by_others(path)
    raw = _raw_public(private)
    site, created = "", ""
    pub_path = public_key_path(path)
    if pub_path.exists():
        public = read_public_key(pub_path)
        if public.raw != raw:
            raise InputError(f"holds the public key {public.fingerprint}, not the public half "
                             f"of {path.name} ({fingerprint_of(raw)})", file=str(pub_path),
                             hint="the two files are a pair: restore both from the "
                                  "site key's backup")
        site, created = public.site, public.created_utc
    return SiteKey(private, PublicKey(raw, site, created, str(path)), path)


def _warn_if_readable_by_others(path: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("warning: the site key %s can be read by others (mode %s); make it "
                        "private: chmod 600 %s", path, oct(mode), path)


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable and writable by its owner only (0600), atomically."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DiskError(f"{path}: cannot write the site key: {exc.strerror or exc}") from exc
    write_file_atomic(path, data, mode=0o600)


def _write_public(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DiskError(f"{path}: cannot be written: {exc.strerror or exc}") from exc
    write_file_atomic(path, data, mode=0o644)


def create_site_key(
    path: Path | str | None = None,
    site: str = "",
    *,
    force: bool = False,
    trusted_dir: Path | str | None = None,
) -> KeyCreation:
    """Make a new site key (:func:`key_path`) and its public half beside it.

    With ``force`` an existing key is not lost: it is renamed
    ``site-key-retired-<UTC time>.pem`` (its public half likewise), and its public half is
    put into the trusted-keys folder, so every job it sealed still verifies.

    Raises
    ------
    InputError
        A key exists and ``force`` is not given (nothing is changed), or the existing key
        cannot be read (``force`` then still refuses: a key that cannot be read cannot be
        kept trusted; move it away by hand).
    DiskError
        The key cannot be written.
    """
    path = key_path(path)
    site = site.strip()
    backup: Path | None = None
    old_trusted: Path | None = None
    if path.exists() or path.is_symlink():
        if not force:
            raise InputError("a site key exists already; nothing was changed", file=str(path),
                             hint="give --force to replace it (the old key is kept as a "
                                  "dated backup and stays trusted)")
        old = load_site_key(path)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = path.with_name(f"{path.stem}-retired-{stamp}{path.suffix}")
        old_pub = public_key_path(path)
        old_trusted = trust_key(old.public, trusted_dir)
        try:
            os.replace(path, backup)
            if old_pub.exists():
                os.replace(old_pub, public_key_path(backup))
        except OSError as exc:
            raise DiskError(f"{path}: cannot keep the old key as {backup.name}: "
                            f"{exc.strerror or exc}") from exc
        if not site:
            site = old.public.site
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = PublicKey(_raw_public(private), site, _utc_now(), str(path))
    _write_private(path, pem)
    _write_public(public_key_path(path), public.to_bytes())
    return KeyCreation(SiteKey(private, public, path), backup, old_trusted)


def site_key_for_compile(path: Path | str | None = None) -> SiteKey:
    """The key compile seals with: the site key, made on first use (with a notice on the
    log, which the command line shows on stderr).

    Raises
    ------
    InputError
        The key exists but cannot be used (:func:`load_site_key`).
    DiskError
        No key exists and one cannot be written.
    """
    path = key_path(path)
    if path.exists() or path.is_symlink():
        return load_site_key(path)
    key = create_site_key(path).key
    log.warning("made this site's key %s (fingerprint %s) to seal jobs: keep it private, "
                "back it up, and name the site with `doseprint key init --site NAME "
                "--force` if you like", path, key.public.fingerprint)
    return key


# Trusted keys -----------------------------------------------------------------------------


def _trusted_name(key: PublicKey) -> str:
    return f"{key.fingerprint[:16]}.json"


def trust_key(key: PublicKey, folder: Path | str | None = None) -> Path:
    """Put ``key`` into the trusted-keys folder (:func:`trusted_keys_dir`) as
    ``<first 16 hex digits of its fingerprint>.json``; return that file.

    Raises
    ------
    DiskError
        The folder cannot be written.
    """
    target = trusted_keys_dir(folder) / _trusted_name(key)
    public = PublicKey(key.raw, key.site, key.created_utc)
    _write_public(target, public.to_bytes())
    return target


def load_trusted_keys(folder: Path | str | None = None) -> tuple[PublicKey, ...]:
    """Every public key in the trusted-keys folder (``*.json``), sorted by file name; none
    when the folder does not exist.

    Raises
    ------
    InputError
        A file in the folder is not a public key (named): a broken trust list is fixed,
        not skipped.
    """
    where = trusted_keys_dir(folder)
    if not where.is_dir():
        return ()
    return tuple(read_public_key(p) for p in sorted(where.glob("*.json")) if p.is_file())


@dataclass(frozen=True)
class Trust:
    """The keys a seal may be made by: this site's own, and the trusted ones."""

    own: PublicKey | None
    trusted: tuple[PublicKey, ...] = ()
    trusted_dir: Path | None = None

    def find(self, fingerprint: str) -> tuple[PublicKey, str] | None:
        """The key with this fingerprint and why it is trusted, or None."""
        if self.own is not None and self.own.fingerprint == fingerprint:
            return self.own, "this site's key"
        for key in self.trusted:
            if key.fingerprint == fingerprint:
                return key, f"trusted key {key.source}"
        return None


def load_trust(
    key_file: Path | str | None = None, trusted_dir: Path | str | None = None
) -> Trust:
    """This site's public key (when it has a key) and the trusted keys.

    Raises
    ------
    InputError
        The site key or a trusted key file exists but cannot be read.
    """
    path = key_path(key_file)
    own = _own_public_key(path) if path.exists() else None
    return Trust(own, load_trusted_keys(trusted_dir), trusted_keys_dir(trusted_dir))


def _own_public_key(path: Path) -> PublicKey:
    """This site's public key: derived from the private key when this account may read
    it; otherwise (an account that prints but does not compile) read from its public half
    beside it, ``site-key.pub.json``, which verifying needs and nothing more."""
    if not os.access(path, os.R_OK) and public_key_path(path).exists():
        return read_public_key(public_key_path(path))
    return load_site_key(path).public
