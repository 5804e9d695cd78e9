"""Test doubles for the comms tests: a fake clock, a scripted printer link, a faulty wire."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from doseprint.comms.protocol import parse_host_line
from doseprint.comms.virtual import VirtualMarlin

Timed = list[tuple[float, str]]
"""Reply lines, each with the fake seconds that pass before it arrives."""

M115_ANSWER = [
    "FIRMWARE_NAME:Marlin 2.1.2 (Github) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
    "PROTOCOL_VERSION:1.0 MACHINE_TYPE:3D Printer EXTRUDER_COUNT:1 UUID:cede2a2f-41a2",
    "Cap:EMERGENCY_PARSER:1",
    "Cap:ADVANCED_OK:0",
    "ok",
]


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += max(dt, 0.0)


class ScriptedTransport:
    """A link to a printer made of a reply function; time is the fake clock's.

    ``script(command)`` gets each written command (line number and checksum removed) and
    returns timed replies; None means the default (``ok``, or the M115/M105 answers).
    """

    def __init__(
        self,
        clock: FakeClock,
        script: Callable[[str], Timed | None] = lambda command: None,
        greeting: Iterable[str] = ("start",),
    ) -> None:
        self.clock = clock
        self.script = script
        self.written: list[str] = []
        self._queue: deque[tuple[float, str]] = deque((0.0, g) for g in greeting)

    @property
    def name(self) -> str:
        return "scripted"

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, line: str) -> None:
        self.written.append(line)
        command = parse_host_line(line).command
        replies = self.script(command)
        if replies is None:
            replies = default_replies(command)
        self._queue.extend(replies)

    def readline(self, timeout_s: float) -> str | None:
        if self._queue:
            delay, line = self._queue[0]
            if delay <= timeout_s:
                self._queue.popleft()
                self.clock.advance(delay)
                return line
            self._queue[0] = (delay - max(timeout_s, 0.0), line)
        self.clock.advance(timeout_s)
        return None


def default_replies(command: str) -> Timed:
    if command == "M115":
        return [(0.0, line) for line in M115_ANSWER]
    if command == "M105":
        return [(0.0, "ok T:25.0 /0.0 B:25.0 /0.0 @:0 B@:0")]
    return [(0.0, "ok")]


class FaultyWire:
    """A virtual printer behind a wire that misbehaves once per chosen line number.

    ``corrupt``: the line arrives with a flipped character (checksum mismatch).
    ``drop``: the line never arrives. ``lose_reply``: the line arrives and runs, but its
    replies are lost. ``silent_after``: numbered lines above this, and everything after
    them, are never answered (the printer hangs). ``inject``: replace the replies to a
    line with these.
    """

    def __init__(
        self,
        printer: VirtualMarlin,
        *,
        corrupt: Iterable[int] = (),
        drop: Iterable[int] = (),
        lose_reply: Iterable[int] = (),
        silent_after: int | None = None,
        inject: dict[int, list[str]] | None = None,
        always_corrupt: Iterable[int] = (),
    ) -> None:
        self.printer = printer
        self.corrupt = set(corrupt)
        self.drop = set(drop)
        self.lose_reply = set(lose_reply)
        self.silent_after = silent_after
        self.inject = dict(inject or {})
        self.always_corrupt = set(always_corrupt)
        self.hung = False

    def connect(self) -> list[str]:
        return self.printer.connect()

    def feed(self, raw: str) -> Iterator[str]:
        n = parse_host_line(raw).line_no
        if self.hung or (n is not None and self.silent_after is not None and n > self.silent_after):
            self.hung = True
            return
        if n in self.drop:
            self.drop.discard(n)
            return
        if n in self.corrupt or n in self.always_corrupt:
            self.corrupt.discard(n)
            raw = _flip(raw)
        if n in self.inject:
            list(self.printer.feed(raw))
            yield from self.inject.pop(n)
            return
        replies = list(self.printer.feed(raw))
        if n in self.lose_reply:
            self.lose_reply.discard(n)
            return
        yield from replies


def _flip(raw: str) -> str:
    # Flip one bit of the command's last character: the checksum no longer matches.
    body, _, tail = raw.rpartition("*")
    return body[:-1] + chr(ord(body[-1]) ^ 1) + "*" + tail


class QueueingLoopback:
    """A link on which lines sent ahead really wait in the virtual printer's queue.

    A write only hands the line to :meth:`VirtualMarlin.receive`; the printer runs what it
    holds when the host next reads, as a server does after each chunk, so the lines a host
    keeps in flight are exactly the lines the printer holds.
    """

    def __init__(self, printer: VirtualMarlin) -> None:
        self.printer = printer
        self._replies: deque[str] = deque(printer.connect())

    @property
    def name(self) -> str:
        return "queueing loopback"

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, line: str) -> None:
        self._replies.extend(self.printer.receive(line))

    def readline(self, timeout_s: float) -> str | None:
        if not self._replies:
            self._replies.extend(self.printer.process())
        return self._replies.popleft() if self._replies else None


class ClockedLink:
    """A responder behind a link whose replies take time on a fake clock.

    Every reply to a written line is queued with a delay from ``delay(command, reply)``
    (fake seconds after the previous reply), so the streamer's clocks see a printer that
    takes time: a move's ``ok`` late by its motion, ``M109`` reporting once a second, a
    ``busy:`` every 2 s. ``readline`` returns a reply only once its delay has passed.
    """

    def __init__(
        self,
        responder: VirtualMarlin | FaultyWire,
        clock: FakeClock,
        delay: Callable[[str, str], float] = lambda command, reply: 0.0,
    ) -> None:
        self.responder = responder
        self.clock = clock
        self.delay = delay
        self.written: list[tuple[float, str]] = []
        self._queue: deque[tuple[float, str]] = deque((0.0, g) for g in responder.connect())

    @property
    def name(self) -> str:
        return "clocked"

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, line: str) -> None:
        self.written.append((self.clock(), line))
        command = parse_host_line(line).command
        for reply in self.responder.feed(line):
            self._queue.append((self.delay(command, reply), reply))

    def readline(self, timeout_s: float) -> str | None:
        if self._queue:
            delay, line = self._queue[0]
            if delay <= timeout_s:
                self._queue.popleft()
                self.clock.advance(delay)
                return line
            self._queue[0] = (delay - max(timeout_s, 0.0), line)
        self.clock.advance(timeout_s)
        return None
