"""G-code text into lines, lines into commands, and one command into its word and parameters.

This is the one tokenizer of doseprint: the dose reading (:mod:`doseprint.gcode.reader`),
the motion planner, the commands a print sends (:mod:`doseprint.comms.framing`) and the
virtual printer all split text here, so the text whose dose is checked and the text the
printer runs are split by the same code.

* :func:`split_lines`: a line ends at a line feed or a carriage return (Marlin's ``ISEOL``),
  nothing else; ``\\r\\n`` ends one line.
* :func:`unsafe_character`: a character that some reader takes for a line end where the
  firmware does not (Python's :meth:`str.splitlines` breaks at ``\\x0b``, ``\\x0c``,
  ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029), or that a firmware, a terminal or
  an editor acts on unseen (other controls, format characters such as U+202E). The dose
  reader refuses a program holding one, so no line can carry a command past the check
  inside what the check took for a comment.
* :func:`command_text`: a line as a printer receives it: comments dropped (``;`` to the end
  of the line, and ``(...)``), then any ``*<xor>`` checksum and ``N<n>`` line number the
  file already carries (Marlin's parser skips ``N`` and a signed number, and any spaces
  after it: ``GCodeParser::parse``).
* :func:`parse_command`: the command word (``G1``, ``M104``, ``T1``, or a Klipper extended
  command such as ``SET_HEATER_TEMPERATURE``), then ``<letter><value>`` words for classic
  commands (packed or spaced: ``G1X3`` is ``G1 X3``, as Marlin and Klipper read it) or
  ``NAME=value`` pairs for extended ones.

Parenthesised comments are dropped before a command is sent as well as before it is read:
Marlin skips them only when built with ``PAREN_COMMENTS`` (otherwise it reads the words
inside: ``G1 X1 E1 (E50)`` feeds 50 mm) and Klipper refuses the line, so the one text all of
them agree on is the line without them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "TABLET_MARKER_RE",
    "Command",
    "command_text",
    "command_word",
    "parse_command",
    "split_checksum",
    "split_commands",
    "split_lines",
    "unsafe_character",
]

TABLET_MARKER_RE = re.compile(r";TABLET:(?:(?P<index>[0-9]+)|NONE)\s*\Z", re.ASCII)
"""A section marker line of a job's G-code (spec job.md): ``;TABLET:<i>`` or
``;TABLET:NONE`` at the start of the line, trailing whitespace allowed.

Group ``index``: the tablet index, None for ``NONE``.
"""

_LINE_NUMBER = re.compile(r"[Nn][-+]?[0-9]+\s*", re.ASCII)
"""A leading ``N<n>`` line number, with any spaces after it. No groups."""

_CHECKSUM = re.compile(r"\*(?P<checksum>[0-9]+)\s*\Z", re.ASCII)
"""A trailing ``*<xor>`` checksum. Group ``checksum``: its digits."""

_PAREN_COMMENT = re.compile(r"\([^()]*\)")
"""A parenthesised comment, ``(like this)``. No groups."""

_CLASSIC_WORD = re.compile(r"(?P<letter>[GMT])(?P<code>[0-9]+)(?:\.(?P<sub>[0-9]+))?", re.ASCII)
"""A classic command word at the start of an upper-cased command: ``G1``, ``M104``, ``T1``,
``G1.5``, ``G01``. Groups: ``letter``, ``code`` (digits), ``sub`` (after a dot, or None)."""

_WORD = re.compile(r"([A-Z])([^A-Z]*)", re.ASCII)
"""One parameter word of an upper-cased classic command: group 1 the letter, group 2 the
text up to the next letter (its value, as written)."""

_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)\Z", re.ASCII)
"""A decimal number as G-code writes it: no exponent, no inf/nan."""

_EXTENDED_PARAMETER = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>\S*)", re.ASCII)
"""One ``NAME=value`` parameter of an extended command. Groups: ``name``, ``value``."""


_UNSAFE_ASCII = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""An ASCII control character other than a tab (line ends included: one line holds
none). No groups."""

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories no G-code line may hold: controls (C0, DEL, C1 such as U+0085), format
characters (U+200B, U+202E, U+FEFF …), lone surrogates, line and paragraph separators."""


@dataclass(frozen=True)
class Command:
    """One command as a firmware's parser sees it.

    Attributes
    ----------
    word : str
        Upper-case command word: ``G1``, ``M104``, ``T1``, ``G1.5`` (a classic word's
        number without leading zeros, ``G01`` is ``G1``, as Marlin reads it), or an
        extended command's name (``ACTIVATE_EXTRUDER``), or the first word of anything
        else as written, upper-cased (``T?``, ``X10``).
    params : dict of str to float
        Classic commands: upper-case letter to value (``{"X": 10.0, "E": 0.5}``); letters
        whose value is not a decimal number are left out, and a letter given twice keeps
        its last value (as Marlin).
    extended : dict of str to str
        Extended commands: upper-case name to raw value (``{"HEATER": "extruder1"}``).
    text : str
        The command as given, stripped.
    words : tuple of (str, str)
        Classic commands: every parameter word in order, letter and value text as written
        (stripped, upper-cased): ``(("X", "1"), ("E", "1..2"))``, for a reader that checks
        each value. Text before the first letter is a word with the letter ``""``.
    args : str
        Everything after the command word: upper-cased for classic commands, as written for
        the others.
    """

    word: str
    extended: dict[str, str] = field(default_factory=dict)
    text: str = ""
    words: tuple[tuple[str, str], ...] = ()
    args: str = ""

    @functools.cached_property
    def params(self) -> dict[str, float]:
        """Classic commands' numeric parameters (see the class's attributes); worked out
        from :attr:`words` when first asked for."""
        return {letter: float(value) for letter, value in self.words
                if letter and _NUMBER.match(value)}

    @property
    def is_classic(self) -> bool:
        """True for ``G``/``M``/``T`` commands, False for extended (macro-style) ones."""
        return _CLASSIC_WORD.fullmatch(self.word) is not None

    @property
    def base(self) -> str:
        """A classic word without its sub-code (``G1`` of ``G1.5``); other words as they are."""
        return self.word.partition(".")[0] if self.is_classic else self.word

    @property
    def subcode(self) -> str | None:
        """The sub-code of a classic word (``5`` of ``G1.5``); None when it has none."""
        if not self.is_classic:
            return None
        _, dot, sub = self.word.partition(".")
        return sub if dot else None


def _classic(upper: str) -> tuple[str, int] | None:
    # The normalised classic word at the start of an upper-cased command, and where it ends.
    match = _CLASSIC_WORD.match(upper)
    if match is None:
        return None
    word = f"{match['letter']}{int(match['code'])}"
    if match["sub"] is not None:
        word += f".{match['sub']}"
    return word, match.end()


def command_word(text: str) -> str:
    """The command word of one command, as :attr:`Command.word` (``G1`` of ``g1 X10``,
    ``SET_HEATER_TEMPERATURE`` of ``SET_HEATER_TEMPERATURE HEATER=extruder``).

    Parameters
    ----------
    text : str
        One command without comment, line number or checksum.

    Returns
    -------
    str
        Empty for an empty command.
    """
    stripped = text.strip()
    upper = stripped.upper()
    classic = _classic(upper)
    if classic is not None:
        return classic[0]
    return upper.split(None, 1)[0] if upper else ""


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
    upper = stripped.upper()
    classic = _classic(upper)
    if classic is not None:
        word, end = classic
        args = upper[end:]
        words: list[tuple[str, str]] = []
        start = len(args) - len(args.lstrip())
        first = _WORD.search(args, start)
        lead_end = first.start() if first is not None else len(args)
        if lead_end > start:
            words.append(("", args[start:lead_end].strip()))
        words += [(m[1], m[2].strip()) for m in _WORD.finditer(args, lead_end)]
        return Command(word, text=stripped, words=tuple(words), args=args)
    parts = stripped.split(None, 1)
    word = parts[0].upper() if parts else ""
    args = parts[1] if len(parts) > 1 else ""
    extended = {m["name"].upper(): m["value"] for m in _EXTENDED_PARAMETER.finditer(args)}
    return Command(word, extended=extended, text=stripped, args=args)


def split_checksum(text: str) -> tuple[str, int | None]:
    """Split a trailing ``*<xor>`` checksum off a line.

    Parameters
    ----------
    text : str
        ``N12 G1 X10*87`` or ``G1 X10``, stripped.

    Returns
    -------
    (str, int or None)
        Everything before the ``*`` (the bytes the checksum covers), and the checksum; the
        whole text and None when there is none (a ``*`` without digits is not one).
    """
    match = _CHECKSUM.search(text)
    if match is None:
        return text, None
    return text[: match.start()], int(match["checksum"])


def split_lines(text: str) -> list[str]:
    """The lines of a G-code text as firmware ends them: at ``\\n``, ``\\r`` or ``\\r\\n``.

    Parameters
    ----------
    text : str
        A whole G-code file.

    Returns
    -------
    list of str
        The lines without their endings; a text that ends with a line ending has no empty
        last line (as :meth:`str.splitlines`, which also breaks at form feeds and other
        characters a firmware keeps inside a line).
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def unsafe_character(line: str) -> tuple[int, str] | None:
    """The first character of one line (without its line ending) that a G-code program
    may not hold, and where it is.

    Parameters
    ----------
    line : str
        One line as :func:`split_lines` gives it.

    Returns
    -------
    (int, str) or None
        The 0-based column and the character: any control character but a tab (Unicode
        category Cc: ``\\x00``-``\\x08``, ``\\x0a``-``\\x1f``, ``\\x7f``-``\\x9f``), a
        format character (Cf), a lone surrogate (Cs), U+2028 or U+2029 (Zl, Zp); None when
        the line holds none.
    """
    found = _UNSAFE_ASCII.search(line)
    if found is not None:
        return found.start(), found.group()
    if not line.isascii():
        for column, char in enumerate(line):
            if char > "\x7f" and unicodedata.category(char) in _UNSAFE_CATEGORIES:
                return column, char
    return None


def command_text(line: str) -> str:
    """One line of G-code as the printer receives it: the command alone, or empty.

    Parameters
    ----------
    line : str
        One line of a file, with or without its line ending.

    Returns
    -------
    str
        The command without comments (``;`` and ``(...)``), ``N<n>`` prefix, ``*<xor>``
        suffix or surrounding whitespace; empty for a blank or comment-only line.
    """
    # Order matters: the comment goes first (it may hold '*'), then the checksum at the
    # end, then the line number at the start.
    code = _PAREN_COMMENT.sub(" ", line.split(";", 1)[0]).strip()
    code, _ = split_checksum(code)
    number = _LINE_NUMBER.match(code)
    if number is not None:
        code = code[number.end() :]
    return code.strip()


def split_commands(text: str) -> list[str]:
    """The commands of a G-code program, in order, as a printer receives them.

    Parameters
    ----------
    text : str
        A whole G-code file.

    Returns
    -------
    list of str
        One command per entry (see :func:`command_text`); blank and comment-only lines are
        dropped.
    """
    return [command for line in split_lines(text) if (command := command_text(line))]
