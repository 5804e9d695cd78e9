"""Where the record store is: the default file, ``--db`` URLs, and passwords kept out
of messages.

A store is named by a file path, ``sqlite:///PATH``, ``:memory:`` or a PostgreSQL URL
(``postgresql://USER:PASSWORD@HOST:PORT/DATABASE``); without one, ``DOSEPRINT_DB``, else
``records.sqlite`` in the user's data directory. Every message that names a store shows
its URL with the password masked (:func:`redact_url`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

from doseprint.errors import InputError, RecordStoreError

__all__ = ["default_store_path", "redact_url", "resolve_store_url"]

_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")
_POSTGRES_SCHEME = re.compile(r"(?i)^postgres(?:ql)?(?:\+[a-z0-9]+)?://")


def redact_url(url: str) -> str:
    """Hide a password in a URL (``user:***@``) and in a ``password=`` query parameter."""
    text = re.sub(r"//([^:/@?#]*):[^@/]*@", r"//\1:***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", text)


def default_store_path() -> Path:
    """The default SQLite file: ``records.sqlite`` in the user's data directory."""
    return Path(platformdirs.user_data_dir("doseprint", appauthor=False)) / "records.sqlite"


def resolve_store_url(url: str | None) -> tuple[str, str]:
    """Turn a ``--db`` value into the URL shown to users and the database to open.

    Parameters
    ----------
    url : str or None
        A file path, ``sqlite:///relative/path``, ``sqlite:////absolute/path`` (as in
        SQLAlchemy: what follows ``sqlite:///`` is the path), ``:memory:``, a
        PostgreSQL URL ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE?options`` (also
        ``postgres://`` and ``postgresql+psycopg://``), or None (empty) for
        ``DOSEPRINT_DB``, else :func:`default_store_path`.

    Returns
    -------
    (str, str)
        The URL for messages (any password masked) and what to open: the path (or
        ``:memory:``) for SQLite, a ``postgresql://`` connection URL for PostgreSQL.

    Raises
    ------
    RecordStoreError
        The default folder cannot be made.
    InputError
        A URL of a scheme doseprint does not know.
    """
    text = (url or "").strip() or os.environ.get("DOSEPRINT_DB", "").strip()
    if not text:
        path = default_store_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordStoreError(
                f"record store {path}: cannot create its folder: {exc}",
                hint="Give a store you can write with --db PATH or DOSEPRINT_DB.",
            ) from exc
        return str(path), str(path)
    lowered = text.lower()
    postgres = _POSTGRES_SCHEME.match(text)
    if postgres:
        return redact_url(text), "postgresql://" + text[postgres.end() :]
    if text == ":memory:" or lowered in ("sqlite://", "sqlite:///:memory:"):
        return text, ":memory:"
    if lowered.startswith("sqlite:///"):
        rest = text[len("sqlite:///") :]
        return text, str(Path(rest).expanduser())
    if _URL_SCHEME.match(lowered):
        raise InputError(
            f"record store URL '{redact_url(text)}' is not supported",
            key="--db",
            hint="Give a file path, sqlite:///PATH, :memory: or postgresql://….",
        )
    return text, str(Path(text).expanduser())
