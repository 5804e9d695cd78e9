"""Write a job folder atomically, and read one back with its hashes checked (job.md)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from doseprint.errors import DiskError, InputError, JobIntegrityError
from doseprint.job.atomic import fsync_dir
from doseprint.job.keys import Trust
from doseprint.job.manifest import FLOW_JOB_SCHEMA, JOB_SCHEMA, JobManifest
from doseprint.job.seal import SEAL_FILE
from doseprint.job.seal import check_seal as seal_check


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_job_folder(out: Path, files: Mapping[str, bytes], *, force: bool) -> None:
    """Write every file into a fresh folder beside ``out``, then rename it into place.

    A failure leaves no folder, or leaves the previous one untouched. With ``force`` an
    existing ``out`` is replaced; without it, an existing ``out`` is an input error.

    Raises
    ------
    InputError
        ``out`` exists and ``force`` is not given, or is not a folder.
    DiskError
        The folder cannot be written.
    """
    out = Path(out)
    check_out_dir(out, force)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder", file=str(out), key="--out")
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as exc:
        raise DiskError(f"{parent}: cannot create the job folder: {exc.strerror}") from exc
    old: Path | None = None
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".old"))
            os.rmdir(old)
            os.replace(out, old)
        os.replace(tmp, out)
        fsync_dir(parent)
    except OSError as exc:
        if old is not None and not out.exists():
            with contextlib.suppress(OSError):
                os.replace(old, out)
                old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise DiskError(f"{out}: cannot write the job folder: {exc.strerror}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


JOB_FOLDER_SCHEMAS = frozenset({JOB_SCHEMA, FLOW_JOB_SCHEMA})
"""The ``schema`` of the manifests doseprint writes into a folder of its own: a job
(job.md) and a flow calibration job (:mod:`doseprint.job.flow_calibration`)."""


def check_out_dir(out: Path | str, force: bool) -> None:
    """Refuse an existing ``--out`` unless ``--force`` (called before any work, and again
    when writing); with ``--force`` refuse it too unless it is a job folder doseprint
    wrote and holds nothing else (:func:`replaceable_problem`).

    Raises
    ------
    InputError
        ``out`` exists, and either ``force`` is not given or the folder is not one that
        ``--force`` may replace (why named).
    """
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise InputError(f"{out} already exists; give --force to replace it", file=str(out),
                         key="--out")
    problem = replaceable_problem(out)
    if problem is not None:
        raise InputError(f"{problem}; --force replaces only a job folder doseprint wrote, "
                         "holding nothing else: choose another --out",
                         file=str(out), key="--out")


def replaceable_problem(folder: Path) -> str | None:
    """Why ``folder`` may not be replaced by ``--force``, or None when it may.

    It may when it is a real folder (not a link) holding a ``job.json`` whose schema is
    one of :data:`JOB_FOLDER_SCHEMAS`, and nothing but that manifest, its seal
    (``job.seal``), the G-code it names and the files it lists (no sub-folders, no other
    files): replacing it then loses nothing a compile cannot make again. The reason is
    worded to follow the folder's name.
    """
    if folder.is_symlink():
        return "is a symbolic link"
    if not folder.is_dir():
        return "is not a folder"
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        return f"cannot be listed: {exc.strerror}"
    try:
        data = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"holds {_names(entries)} and no job.json: it is not a doseprint job folder"
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return "has a job.json that is not a doseprint job manifest"
    if not isinstance(data, dict) or data.get("schema") not in JOB_FOLDER_SCHEMAS:
        return "has a job.json that is not a doseprint job manifest"
    gcode = data.get("gcode")
    files = data.get("files", {})
    listed = {"job.json", SEAL_FILE}
    if isinstance(gcode, dict) and isinstance(gcode.get("file"), str):
        listed.add(gcode["file"])
    if isinstance(files, dict):
        listed.update(name for name in files if isinstance(name, str))
    others = [p for p in entries if p.name not in listed or p.is_symlink() or not p.is_file()]
    if others:
        return f"holds {_names(others)}, which its job.json does not list"
    return None


def _names(paths: list[Path]) -> str:
    """Up to five names, sub-folders marked with a slash."""
    if not paths:
        return "nothing"
    shown = [p.name + ("/" if p.is_dir() and not p.is_symlink() else "") for p in paths[:5]]
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return ", ".join(shown) + more


def read_job(
    job_dir: Path | str,
    *,
    check_hashes: bool = True,
    check_seal: bool = True,
    trust: Trust | None = None,
) -> JobManifest:
    """Read the manifest (``job.json``) of a job folder: with ``check_seal`` its seal
    (``job.seal``) must verify by this site's key or a trusted one
    (:func:`doseprint.job.seal.check_seal`), and with ``check_hashes`` every file it lists
    must match its SHA-256.

    The seal is checked on the very bytes that are then parsed, so the manifest returned
    is the one that was sealed.

    Parameters
    ----------
    trust : Trust, optional
        The keys a seal may be made by (default: this site's key and the trusted keys,
        :func:`doseprint.job.keys.load_trust`).

    Raises
    ------
    InputError
        The folder or its job.json is missing or unreadable, its schema is unknown, or a
        key other programs rely on is missing or of the wrong type (named).
    JobSealError
        The seal is missing, does not match job.json, or is not by a trusted key.
    JobIntegrityError
        A file no longer matches its hash in job.json.
    """
    job_dir = Path(job_dir)
    path = job_dir / "job.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("is not a job folder (no job.json)", file=str(job_dir)) from None
    except OSError as exc:
        raise InputError(f"cannot be read: {exc}", file=str(path)) from None
    if check_seal:
        seal_check(job_dir, raw, trust)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot be read: {exc}", file=str(path)) from None
    job = JobManifest.from_json(data, source=str(path))
    if check_hashes:
        for name, expected in job.file_hashes().items():
            try:
                actual = sha256_bytes((job_dir / name).read_bytes())
            except OSError:
                raise JobIntegrityError(f"{name} listed in job.json is missing",
                                        file=str(job_dir)) from None
            if actual != expected:
                raise JobIntegrityError(
                    f"{name} does not match the SHA-256 in job.json (expected {expected[:12]}…, "
                    f"found {actual[:12]}…): the job was changed after compile; compile it "
                    "again", file=str(job_dir))
    return job

