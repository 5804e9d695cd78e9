"""What doseprint writes on a terminal is what the user typed, shown, never obeyed.

Operator names, lot numbers, prescription ids, patient references, the meaning of a
signature, file names, formulation names and anything else a user or a file supplies can
hold characters a terminal acts on instead of showing: a newline that starts a forged
``status       released`` line, an ANSI escape (``\\x1b[2J`` clears the screen,
``\\x1b[31m`` colours what follows), a carriage return that overwrites the line, or a
Unicode bidi override that shows text in another order than it is stored.

:func:`safe_text` is the one function that makes such text harmless: every character of
Unicode category Cc (C0 and C1 controls, DEL), Cf (format characters: the bidi embeddings,
overrides and isolates U+202A–U+202E and U+2066–U+2069, zero-width characters, the byte
order mark, soft hyphen …), Cs (lone surrogates, as a file name undecodable in UTF-8
becomes), Zl and Zp (the line and paragraph separators) is written as a visible escape:
``\\n``, ``\\r``, ``\\t``, ``\\x1b``, ``\\u202e``, ``\\U000e0041``. Everything else, é, ü,
中文 included, is left as it is. Backslashes are left as they are: the escape shows that
something was there; the exact value is in the ``--json`` output.

Every line of human-readable output goes out through :func:`echo_line`, which escapes the
whole line: doseprint's own text holds no such characters, so escaping the line escapes
exactly the user-supplied pieces in it, including any nobody thought to mark as such, and
one call writes one line. Output of several lines is written a line at a time.

``--json`` output is made by :func:`json_text`, which escapes the same characters as JSON
``\\uXXXX`` escapes: lossless, and as harmless on a terminal.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from typing import Any

import click

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NOT_PLAIN = re.compile(r"[^\x20-\x7e]")
"""Any character but printable ASCII: the only ones that may need an escape."""
_NOT_PLAIN_JSON = re.compile(r"[^\n\x20-\x7e]")
"""The same in JSON text, whose own line breaks (indentation) stay."""


def _acts_on_terminal(char: str) -> bool:
    return unicodedata.category(char) in _ESCAPED_CATEGORIES


def _visible(found: re.Match[str]) -> str:
    char = found[0]
    if not _acts_on_terminal(char):
        return char
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _json_escape(found: re.Match[str]) -> str:
    char = found[0]
    if not _acts_on_terminal(char):
        return char
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON writes a character beyond the BMP as its surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def safe_text(value: object) -> str:
    """``value`` as text a terminal shows and does not act on.

    Parameters
    ----------
    value : object
        Any value; not a ``str`` is first made one with ``str()``.

    Returns
    -------
    str
        The text with every control, format, surrogate and line or paragraph separator
        character written as a visible escape (``\\n``, ``\\x1b``, ``\\u202e``), all
        other characters unchanged. One line: it holds no line break.

    Examples
    --------
    >>> safe_text("x\\n status released\\x1b[2J")
    'x\\\\n status released\\\\x1b[2J'
    >>> safe_text("Müller 中文")
    'Müller 中文'
    """
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():  # the common case: nothing to escape
        return text
    return _NOT_PLAIN.sub(_visible, text)


def json_text(value: Any) -> str:
    """``value`` as indented JSON that a terminal shows and does not act on.

    ``json.dumps`` escapes the C0 controls in strings; this escapes the other characters
    :func:`safe_text` does (DEL, C1 controls, bidi overrides and other format characters,
    lone surrogates, line and paragraph separators) as JSON ``\\uXXXX`` escapes, which
    read back as the very same characters: the JSON stays lossless. Other non-ASCII text
    is written as it is.
    """
    return _NOT_PLAIN_JSON.sub(_json_escape, json.dumps(value, indent=2, ensure_ascii=False))


def echo_line(text: object = "", *, err: bool = False) -> None:
    """Write one line of human-readable output (stderr with ``err``), escaped by
    :func:`safe_text`: whatever ``text`` holds, exactly one line reaches the terminal."""
    click.echo(safe_text(text), err=err)


class SafeLogFormatter(logging.Formatter):
    """A log formatter that escapes each message by :func:`safe_text`: log lines name
    ports, paths and what a printer replied, none of which may act on the terminal. A
    traceback appended under ``--debug`` is left as it is."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return safe_text(super().formatMessage(record))
