"""The job's seal: an Ed25519 signature of the exact bytes of ``job.json`` by the site key,
kept beside it in ``job.seal``, checked by everything that reads a job for use.

The hashes inside job.json tie the G-code and the other files to the manifest, but anyone
who can write the folder can rewrite them too. The seal ties the manifest to a key that
only the compiling site holds: a job verifies when its job.json is, byte for byte, the one
signed, and the signer is this site's key or one it trusts (:mod:`doseprint.job.keys`).
job.json itself is unchanged by sealing; the seal is an additional file.

``job.seal`` (JSON, ``doseprint.seal/1``)::

    {"schema": "doseprint.seal/1", "algorithm": "ed25519", "file": "job.json",
     "sha256": "<SHA-256 of job.json's bytes, hex>",
     "signature": "<Ed25519 signature of job.json's bytes, base64>",
     "public_key": "<the signer's 32 raw public-key bytes, base64>",
     "fingerprint": "<SHA-256 of those bytes, hex>",
     "site": "<the signer's site name>", "created_utc": "2026-12-02T15:00:00Z"}

Only job.json's bytes are signed: ``site`` and ``created_utc`` are labels, and a refusal
or a verification names the signer by its fingerprint and by the name this site gave the
key it trusts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from doseprint.errors import InputError, JobSealError
from doseprint.job.keys import (
    ALGORITHM,
    PublicKey,
    SiteKey,
    Trust,
    decode_public_key,
    fingerprint_of,
    load_trust,
)

__all__ = [
    "SEALED_FILE",
    "SEAL_FILE",
    "SEAL_SCHEMA",
    "SealCheck",
    "check_seal",
    "make_seal",
    "seal_files",
    "verify_job_seal",
]

SEAL_FILE = "job.seal"
SEALED_FILE = "job.json"
SEAL_SCHEMA = "doseprint.seal/1"
MAX_SEAL_BYTES = 64 * 1024
"""A seal is under a kilobyte; anything much larger is not one."""

_RECOMPILE = "do not print this job; compile the prescription again"


def make_seal(job_json: bytes, key: SiteKey, created_utc: str | None = None) -> bytes:
    """The ``job.seal`` of these job.json bytes, signed by ``key``."""
    seal = {
        "schema": SEAL_SCHEMA,
        "algorithm": ALGORITHM,
        "file": SEALED_FILE,
        "sha256": hashlib.sha256(job_json).hexdigest(),
        "signature": base64.b64encode(key.sign(job_json)).decode("ascii"),
        "public_key": key.public.base64,
        "fingerprint": key.public.fingerprint,
        "site": key.public.site,
        "created_utc": created_utc or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return (json.dumps(seal, indent=1, ensure_ascii=False) + "\n").encode()


def seal_files(files: Mapping[str, bytes], key: SiteKey) -> dict[str, bytes]:
    """A job folder's files with ``job.seal`` added: the seal of ``files["job.json"]``."""
    return {**files, SEAL_FILE: make_seal(files[SEALED_FILE], key)}


@dataclass(frozen=True)
class SealCheck:
    """A seal that verified: who made it and when.

    Attributes
    ----------
    signer : PublicKey
        The key that signed, as this site knows it (its site name is the one this site
        gave it, not the seal's label).
    trusted_as : str
        Why it counts: "this site's key" or "trusted key <file>".
    sealed_utc : str
        The seal's ``created_utc`` label.
    sha256 : str
        The SHA-256 of the job.json that was signed.
    """

    signer: PublicKey
    trusted_as: str
    sealed_utc: str
    sha256: str


def _refuse(job_dir: Path, message: str, hint: str = _RECOMPILE) -> JobSealError:
    return JobSealError(message, file=str(job_dir / SEAL_FILE), hint=hint)


def _read_seal(job_dir: Path) -> dict[str, Any]:
    path = job_dir / SEAL_FILE
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SEAL_BYTES + 1)
    except FileNotFoundError:
        raise _refuse(job_dir, "is missing: the job is not sealed, so nothing shows that its "
                      "job.json is the one compile wrote (a job compiled before jobs were "
                      "sealed has none)") from None
    except OSError as exc:
        raise _refuse(job_dir, f"cannot be read: {exc.strerror or exc}") from None
    try:
        seal = json.loads(data.decode("utf-8")) if len(data) <= MAX_SEAL_BYTES else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        seal = None
    if not isinstance(seal, dict):
        raise _refuse(job_dir, "is not a doseprint seal (not a JSON object of at most "
                      f"{MAX_SEAL_BYTES} bytes)")
    if seal.get("schema") != SEAL_SCHEMA:
        raise _refuse(job_dir, f"has schema {seal.get('schema')!r}; this doseprint reads "
                      f"{SEAL_SCHEMA!r}")
    if seal.get("algorithm") != ALGORITHM or seal.get("file") != SEALED_FILE:
        raise _refuse(job_dir, f"seals {seal.get('file')!r} with {seal.get('algorithm')!r}; "
                      f"a job's seal signs {SEALED_FILE!r} with {ALGORITHM!r}")
    return seal


def check_seal(job_dir: Path | str, job_json: bytes, trust: Trust | None = None) -> SealCheck:
    """Check the seal of a job folder against the job.json bytes read from it.

    Parameters
    ----------
    job_dir : Path
        The job folder (its ``job.seal`` is read).
    job_json : bytes
        job.json exactly as read: the same bytes the caller then parses, so what was
        checked is what is used.
    trust : Trust, optional
        The keys a seal may be made by (default: :func:`~doseprint.job.keys.load_trust`).

    Raises
    ------
    JobSealError
        The seal is missing or malformed, job.json's bytes differ from those sealed, the
        signature does not verify, or the signer is neither this site's key nor trusted
        (its fingerprint named, and how to trust it).
    InputError
        The site key or a trusted key cannot be read.
    """
    job_dir = Path(job_dir)
    seal = _read_seal(job_dir)
    sealed_sha = seal.get("sha256")
    found_sha = hashlib.sha256(job_json).hexdigest()
    if sealed_sha != found_sha:
        shown = f"{sealed_sha[:12]}…" if isinstance(sealed_sha, str) else repr(sealed_sha)
        raise _refuse(job_dir, f"job.json is not the job.json that was sealed (sealed SHA-256 "
                      f"{shown}, found {found_sha[:12]}…): job.json was changed after "
                      "compile")
    where = str(job_dir / SEAL_FILE)
    try:
        raw = decode_public_key(seal.get("public_key"), file=where, key="public_key")
    except InputError as exc:
        raise _refuse(job_dir, f"public_key {exc.problems[0].message}") from None
    if seal.get("fingerprint") != fingerprint_of(raw):
        raise _refuse(job_dir, "its fingerprint is not that of its public key: the seal was "
                      "altered")
    try:
        signature = base64.b64decode(str(seal.get("signature", "")).encode("ascii"),
                                     validate=True)
    except (binascii.Error, UnicodeEncodeError):
        signature = b""
    claimed = PublicKey(raw, str(seal.get("site") or ""))
    if not claimed.verifies(signature, job_json):
        raise _refuse(job_dir, "its signature does not verify over job.json: job.json or "
                      "job.seal was altered after compile")
    trust = load_trust() if trust is None else trust
    found = trust.find(claimed.fingerprint)
    if found is None:
        raise _refuse(job_dir, _untrusted(claimed, trust), hint=(
            "if the job comes from another site, get that site's public key from it by a way "
            "you trust (not from this job folder), check that its fingerprint is "
            f"{claimed.fingerprint}, and run `doseprint key trust FILE --name SITE`; "
            "otherwise do not print this job"))
    signer, trusted_as = found
    return SealCheck(signer, trusted_as, str(seal.get("created_utc") or ""), found_sha)


def _untrusted(claimed: PublicKey, trust: Trust) -> str:
    label = f" (the seal calls its site {claimed.site!r})" if claimed.site else ""
    own = ("this site has no key" if trust.own is None
           else f"this site's key is {trust.own.fingerprint}")
    folder = f" in {trust.trusted_dir}" if trust.trusted_dir is not None else ""
    return (f"was made by a key this site does not trust: fingerprint "
            f"{claimed.fingerprint}{label}; {own}, and it trusts {len(trust.trusted)} other "
            f"key{'s' if len(trust.trusted) != 1 else ''}{folder}")


def verify_job_seal(job_dir: Path | str, trust: Trust | None = None) -> SealCheck:
    """:func:`check_seal` of a job folder's job.json as it is on disk.

    Raises
    ------
    InputError
        The folder has no readable job.json.
    JobSealError
        As :func:`check_seal`.
    """
    job_dir = Path(job_dir)
    try:
        data = (job_dir / SEALED_FILE).read_bytes()
    except FileNotFoundError:
        raise InputError("is not a job folder (no job.json)", file=str(job_dir)) from None
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}",
                         file=str(job_dir / SEALED_FILE)) from None
    return check_seal(job_dir, data, trust)
