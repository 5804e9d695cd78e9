"""Host lines on the wire: numbering, checksums, and a G-code program split into commands.

A numbered line is ``N<n> <command>*<xor>``, where ``<xor>`` is the XOR of every byte
before ``*`` (Marlin ``queue.cpp``: ``checksum ^= command[--count]`` over the bytes before
``*``). :func:`program_from_gcode` reads a job's G-code into the commands to send and
remembers, for each, its line in the file and the ``;TABLET:`` section it belongs to, so a
refusal can say where a command is used. The text is split into commands by
:mod:`doseprint.gcode.tokens`, the same code that splits it for the dose reading.
"""

from __future__ import annotations

import functools
import operator
import re
from dataclasses import dataclass

from doseprint.gcode.tokens import (
    TABLET_MARKER_RE,
    command_text,
    split_checksum,
    split_commands,
    split_lines,
)

__all__ = [
    "HOST_N_RE",
    "MAX_LINE_BYTES",
    "TABLET_MARKER_RE",
    "HostLine",
    "Program",
    "checksum",
    "commands_from_gcode",
    "format_line",
    "parse_host_line",
    "program_from_gcode",
]

MAX_LINE_BYTES = 95
"""Longest numbered line Marlin takes: its ``MAX_CMD_SIZE`` of 96 bytes holds a final NUL."""

HOST_N_RE = re.compile(r"^N(?P<line_no>-?\d+)\s*(?P<command>.*)$")
"""A host line's ``N<n>`` prefix, as the firmware's line check reads it (Marlin
``queue.cpp``: an upper-case ``N`` first on the line). Groups: ``line_no``, ``command``
(the rest)."""


def checksum(body: str) -> int:
    """XOR of every byte of ``body`` (UTF-8), the checksum Marlin checks after ``*``.

    Parameters
    ----------
    body : str
        Everything before ``*``: ``N12 G1 X10``.

    Returns
    -------
    int
        0..255.
    """
    return functools.reduce(operator.xor, body.encode("utf-8"), 0)


def format_line(line_no: int, command: str) -> str:
    """The wire form of a numbered command: ``N<n> <command>*<xor>`` (no line ending).

    Parameters
    ----------
    line_no : int
        Line number; 0 for the ``M110 N0`` that starts a print.
    command : str
        One G-code command without comment, line number or checksum.

    Returns
    -------
    str
    """
    body = f"N{line_no} {command}"
    return f"{body}*{checksum(body)}"


@dataclass(frozen=True)
class HostLine:
    """A line as the host sent it, split the way the firmware reads it.

    Attributes
    ----------
    line_no : int or None
        ``N`` number; None for an unnumbered line.
    command : str
        The command alone (``G1 X10``).
    checksum : int or None
        The number after ``*``; None when there is none.
    body : str
        Everything before ``*``: the bytes the checksum covers.
    """

    line_no: int | None
    command: str
    checksum: int | None
    body: str

    @property
    def checksum_ok(self) -> bool:
        """True when the line has a checksum and it matches its body."""
        return self.checksum is not None and self.checksum == checksum(self.body)


def parse_host_line(raw: str) -> HostLine:
    """Split a host line into line number, command and checksum.

    Parameters
    ----------
    raw : str
        ``N12 G1 X10*87``, ``M105`` …, with or without its line ending.

    Returns
    -------
    HostLine
    """
    body, sum_value = split_checksum(raw.strip())
    match = HOST_N_RE.match(body)
    if match is not None:
        return HostLine(int(match["line_no"]), match["command"].strip(), sum_value, body)
    return HostLine(None, body.strip(), sum_value, body)


def commands_from_gcode(text: str) -> list[str]:
    """The commands of a G-code program, in order, ready to number and send.

    Drops comments (from ``;`` to the end of the line, so ``;TABLET:`` markers are not
    sent, and ``(...)``), blank lines, and any ``N<n>`` prefix or ``*<xor>`` suffix the
    file already has (:func:`~doseprint.gcode.tokens.split_commands`).

    Parameters
    ----------
    text : str
        A whole G-code file.

    Returns
    -------
    list of str
        One command per entry, stripped of surrounding whitespace.
    """
    return split_commands(text)


@dataclass(frozen=True)
class Program:
    """A G-code program as sent: the commands, and where each came from.

    Attributes
    ----------
    commands : tuple of str
        The commands in order (see :func:`commands_from_gcode`); command *k* (1-based) is
        sent as line ``N<k>``.
    source_lines : tuple of int
        The line of the file (1-based) each command was read from.
    sections : tuple of int or None
        The ``;TABLET:<i>`` section each command is in: the tablet index, or None for
        ``;TABLET:NONE`` sections and for what comes before the first marker.
    """

    commands: tuple[str, ...]
    source_lines: tuple[int, ...]
    sections: tuple[int | None, ...]

    @property
    def first_tablet_command(self) -> int | None:
        """Index (0-based) of the first command inside a tablet's section; None if none is."""
        for index, section in enumerate(self.sections):
            if section is not None:
                return index
        return None


def program_from_gcode(text: str) -> Program:
    """Read a G-code program into the commands to send, with their lines and sections.

    Parameters
    ----------
    text : str
        A whole G-code file.

    Returns
    -------
    Program
    """
    commands: list[str] = []
    lines: list[int] = []
    sections: list[int | None] = []
    section: int | None = None
    for number, raw in enumerate(split_lines(text), start=1):
        if marker := TABLET_MARKER_RE.match(raw):
            index = marker["index"]
            section = None if index is None else int(index)
            continue
        line = command_text(raw)
        if line:
            commands.append(line)
            lines.append(number)
            sections.append(section)
    return Program(tuple(commands), tuple(lines), tuple(sections))
