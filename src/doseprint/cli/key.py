"""``doseprint key``: the site key that seals every job, the keys of trusted sites, and a
job's seal checked on its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from doseprint.cli.options import echo_json, json_option
from doseprint.cli.terminal import echo_line
from doseprint.errors import InputError
from doseprint.job.atomic import write_file_atomic
from doseprint.job.folder import read_job
from doseprint.job.keys import (
    KEY_ENV,
    TRUSTED_KEYS_ENV,
    PublicKey,
    create_site_key,
    key_path,
    load_site_key,
    load_trust,
    read_public_key,
    trust_key,
    trusted_keys_dir,
)
from doseprint.job.manifest import FLOW_JOB_SCHEMA
from doseprint.job.seal import verify_job_seal

F = TypeVar("F", bound=Callable[..., Any])


def _key_option(func: F) -> F:
    return click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
                        default=None,
                        help=f"The site's private key file (default: {KEY_ENV}, else "
                             "site-key.pem in the user's configuration folder).")(func)


def _trusted_option(func: F) -> F:
    return click.option("--trusted-keys", "trusted_dir",
                        type=click.Path(file_okay=False, path_type=Path), default=None,
                        help=f"Folder of trusted public keys (default: {TRUSTED_KEYS_ENV}, "
                             "else trusted-keys in the user's configuration folder).")(func)


def _row(key: PublicKey, role: str) -> dict[str, Any]:
    return {"role": role, "site": key.site, "fingerprint": key.fingerprint,
            "public_key": key.base64, "created_utc": key.created_utc, "file": key.source}


def _echo_key(key: PublicKey) -> None:
    echo_line(f"site:        {key.site or '(not named)'}")
    echo_line(f"fingerprint: {key.fingerprint}")
    echo_line(f"public key:  {key.base64} (ed25519)")


@click.group("key")
def key_group() -> None:
    """The site key that seals every job compile writes, and the keys of sites you trust.

    `print`, `gcode check` and `preview` refuse a job whose seal (job.seal) does not
    verify by this site's key or a trusted one.

    \b
    Example:
      doseprint key init --site "St Elsewhere Pharmacy"
      doseprint key export-public --out st-elsewhere.pub.json
      doseprint key trust other-site.pub.json --name "Other Site"
      doseprint key verify job-123
    """


@key_group.command("init")
@click.option("--site", default="", help="The site's name, shown beside its fingerprint.")
@click.option("--force", is_flag=True,
              help="Replace an existing key; the old one is kept as a dated backup and its "
                   "public half is trusted, so the jobs it sealed still verify.")
@_key_option
@_trusted_option
@json_option()
def key_init(site: str, force: bool, key_file: Path | None, trusted_dir: Path | None,
             as_json: bool) -> None:
    """Make this site's key (readable by you only) and print its public half.

    Compile makes one on first use; run this to name the site, or with --force to rotate.

    \b
    Example:
      doseprint key init --site "St Elsewhere Pharmacy"
    """
    made = create_site_key(key_file, site, force=force, trusted_dir=trusted_dir)
    public = made.key.public
    if as_json:
        echo_json({**_row(public, "site"),
                   "backup": None if made.backup is None else str(made.backup),
                   "old_key_trusted": None if made.old_trusted is None
                   else str(made.old_trusted)})
        return
    echo_line(f"wrote the site key {made.key.path} (mode 600: keep it private, back it up)")
    if made.backup is not None:
        echo_line(f"the old key is kept as {made.backup}; its public key is trusted "
                  f"({made.old_trusted}), so the jobs it sealed still verify")
    _echo_key(public)


@key_group.command("show")
@_key_option
@json_option()
def key_show(key_file: Path | None, as_json: bool) -> None:
    """Print this site's public key and its fingerprint.

    \b
    Example:
      doseprint key show
    """
    key = load_site_key(key_file)
    if as_json:
        echo_json(_row(key.public, "site"))
        return
    echo_line(f"site key:    {key.path}")
    _echo_key(key.public)


@key_group.command("export-public")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write the public key to (JSON).")
@_key_option
def key_export_public(out: Path, key_file: Path | None) -> None:
    """Write this site's public key, for another site to trust.

    The private key never leaves this machine; the public key may be shared freely. Tell
    the other site the fingerprint by another way (phone, signed letter), so it can check
    the file it received.

    \b
    Example:
      doseprint key export-public --out st-elsewhere.pub.json
    """
    key = load_site_key(key_file)
    if out.resolve() == key_path(key_file).resolve():
        raise InputError("is the private key itself", file=str(out), key="--out")
    write_file_atomic(out, PublicKey(key.public.raw, key.public.site,
                                     key.public.created_utc).to_bytes())
    echo_line(f"wrote {out}: {key.public.describe()}")


@key_group.command("trust")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", "site", default=None,
              help="The site's name (default: the name in FILE; a PEM file has none).")
@_key_option
@_trusted_option
def key_trust(file: Path, site: str | None, key_file: Path | None,
              trusted_dir: Path | None) -> None:
    """Trust another site's public key (or this site's retired one): jobs it sealed then
    verify here.

    FILE is what `doseprint key export-public` wrote, or an Ed25519 public key in PEM.
    Check the fingerprint printed here with the site by another way before you rely on it.

    \b
    Example:
      doseprint key trust other-site.pub.json --name "Other Site"
    """
    public = read_public_key(file, site=site)
    own = key_path(key_file)
    if own.exists() and load_site_key(own).public.raw == public.raw:
        echo_line(f"{public.fingerprint} is this site's own key: trusted already")
        return
    target = trust_key(public, trusted_dir)
    echo_line(f"trusted {public.describe()} ({target})")


@key_group.command("list")
@_key_option
@_trusted_option
@json_option()
def key_list(key_file: Path | None, trusted_dir: Path | None, as_json: bool) -> None:
    """List this site's key and the trusted keys, with their fingerprints.

    To stop trusting a key, delete its file (shown here) from the trusted-keys folder.

    \b
    Example:
      doseprint key list
    """
    trust = load_trust(key_file, trusted_dir)
    rows = ([_row(trust.own, "site")] if trust.own is not None else [])
    rows += [_row(k, "trusted") for k in trust.trusted]
    if as_json:
        echo_json(rows)
        return
    if trust.own is None:
        echo_line(f"no site key at {key_path(key_file)} (compile makes one; or "
                  "`doseprint key init`)")
    for r in rows:
        echo_line(f"{r['role']:<8} {r['fingerprint']}  {r['site'] or '(not named)'}  "
                  f"{r['file']}")
    if not trust.trusted:
        echo_line(f"no trusted keys in {trusted_keys_dir(trusted_dir)}")


@key_group.command("verify")
@click.argument("job_dir", type=click.Path(path_type=Path))
@_key_option
@_trusted_option
@json_option()
def key_verify(job_dir: Path, key_file: Path | None, trusted_dir: Path | None,
               as_json: bool) -> None:
    """Check a job's seal and files: the check `print` makes before anything is sent.

    Exit 2 (and the reason on stderr) when the seal is missing, job.json differs from what
    was sealed, the signature is invalid, the signer is not trusted, or a file no longer
    matches its hash in job.json.

    \b
    Example:
      doseprint key verify job-123
    """
    trust = load_trust(key_file, trusted_dir)
    check = verify_job_seal(job_dir, trust)
    # The seal again, then every file's hash, as the job's own reader checks them.
    if _is_flow_job(job_dir):
        from doseprint.job.flow_calibration import read_flow_job

        flow = read_flow_job(job_dir, trust=trust)
        what, files = "flow calibration", [str(flow["gcode"].get("file", "job.gcode"))]
    else:
        job = read_job(job_dir, trust=trust)
        what, files = job.prescription.id, sorted(job.file_hashes())
    if as_json:
        echo_json({"ok": True, "job": str(job_dir), "prescription": what,
                   "job_json_sha256": check.sha256, "sealed_utc": check.sealed_utc,
                   "signer": {**_row(check.signer, "signer"), "trusted_as": check.trusted_as},
                   "files": files})
        return
    echo_line(f"{job_dir}: sealed {check.sealed_utc or '(time not given)'} by "
              f"{check.signer.describe()} ({check.trusted_as})")
    echo_line(f"job.json matches the seal; {', '.join(files)} match job.json")



def _is_flow_job(job_dir: Path) -> bool:
    try:
        data = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("schema") == FLOW_JOB_SCHEMA
