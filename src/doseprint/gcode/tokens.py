"""G-code text into commands, and one command into its word and parameters.

A program's text becomes the list of commands a printer receives: comments (``;`` to the
end of the line) and blank lines dropped, any ``N<n>`` line number and ``*<xor>`` checksum
the file already carries removed. :func:`parse_command` splits one command the way the
firmwares' parsers do: the command word (``G1``, ``M104``, ``T1``, or a Klipper extended
command such as ``SET_HEATER_TEMPERATURE``), then ``<letter><number>`` words for classic
commands or ``NAME=value`` pairs for extended ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Command", "parse_command", "split_commands"]

_LINE_NUMBER = re.compile(r"N[0-9]+\s+", re.ASCII)
"""A leading ``N<n>`` line number, with the space after it. No groups."""

_CHECKSUM = re.compile(r"\*[0-9]*\s*\Z", re.ASCII)
"""A trailing ``*<xor>`` checksum. No groups."""

_CLASSIC_WORD = re.compile(r"(?P<letter>[GMT])(?P<code>[0-9]+(?:\.[0-9]+)?)\Z", re.ASCII)
"""A classic command word: ``G1``, ``M104``, ``T1``, ``G1.5``. Groups: ``letter``, ``code``."""

_PARAMETER = re.compile(r"(?P<letter>[A-Z])\s*(?P<value>[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))",
                        re.ASCII | re.IGNORECASE)
"""One ``<letter><number>`` parameter. Groups: ``letter``, ``value``."""

_EXTENDED_PARAMETER = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>\S*)", re.ASCII)
"""One ``NAME=value`` parameter of an extended command. Groups: ``name``, ``value``."""


@dataclass(frozen=True)
class Command:
    """One command as a firmware's parser sees it.

    Attributes
    ----------
    word : str
        Upper-case command word: ``G1``, ``M104``, ``T1``, ``ACTIVATE_EXTRUDER``.
    params : dict of str to float
        Classic commands: upper-case letter to value (``{"X": 10.0, "E": 0.5}``); letters
        with no number are left out.
    extended : dict of str to str
        Extended commands: upper-case name to raw value (``{"HEATER": "extruder1"}``).
    text : str
        The command as given.
    """

    word: str
    params: dict[str, float] = field(default_factory=dict)
    extended: dict[str, str] = field(default_factory=dict)
    text: str = ""

    @property
    def is_classic(self) -> bool:
        """True for ``G``/``M``/``T`` commands, False for extended (macro-style) ones."""
        return _CLASSIC_WORD.match(self.word) is not None


def parse_command(text: str) -> Command:
    """Split one command (no comment, line number or checksum) into word and parameters.

    Parameters
    ----------
    text : str
        ``G1 X10 Y5.5 E0.2 F1200`` or ``SET_HEATER_TEMPERATURE HEATER=extruder TARGET=200``.

    Returns
    -------
    Command
        ``word`` is empty for an empty command.
    """
    stripped = text.strip()
    word, _, rest = stripped.partition(" ")
    word = word.upper()
    if _CLASSIC_WORD.match(word):
        params = {m["letter"].upper(): float(m["value"]) for m in _PARAMETER.finditer(rest)}
        return Command(word, params=params, text=stripped)
    extended = {m["name"].upper(): m["value"] for m in _EXTENDED_PARAMETER.finditer(rest)}
    return Command(word, extended=extended, text=stripped)


def split_commands(text: str) -> list[str]:
    """The commands of a G-code program, in order, as a printer receives them.

    Parameters
    ----------
    text : str
        A whole G-code file.

    Returns
    -------
    list of str
        One command per entry, without comment, ``N<n>`` prefix, ``*<xor>`` suffix or
        surrounding whitespace; blank and comment-only lines are dropped.
    """
    commands: list[str] = []
    # Firmware ends a line at a line feed or a carriage return (Marlin's ISEOL), nothing else.
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.split(";", 1)[0].strip()
        if line[:1] in ("N", "n"):
            line = _LINE_NUMBER.sub("", line.upper()[:1] + line[1:], count=1)
        line = _CHECKSUM.sub("", line).strip()
        if line:
            commands.append(line)
    return commands
