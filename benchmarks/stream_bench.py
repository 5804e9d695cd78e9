"""Streaming speed over a pseudo-terminal: doseprint's streamer, Printrun's printcore and a
bare send-and-wait-for-ok loop, each sending the same compiled job to the same virtual
printer (a separate `doseprint virtual-printer --pty` process, no simulated motion); then
doseprint and printcore against OctoPrint's virtual printer (a peer written elsewhere,
which runs moves at a tenth of their time) with a forced resend every 100 lines and a line
lost on the wire every 1,000.

Run alone with ``.venv/bin/python benchmarks/stream_bench.py`` (``--help`` for options), or
as part of ``make bench``. It installs nothing: without Printrun it says how to add it and
leaves that row out, and without the peers' environment (``make peers``) it leaves out
OctoPrint's rows. Each figure is commands per second from the first numbered line to the
last ``ok``, the median of ``--runs`` runs, each against a freshly started printer; the
worst stall is the longest wait between two acknowledgements.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import serial

from doseprint.comms.protocol import commands_from_gcode, format_line
from doseprint.comms.streamer import StreamEvent, stream_gcode
from doseprint.comms.transport import SerialTransport
from doseprint.gcode.motion import motion_limits, plan_commands
from doseprint.library import load_printers

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "theophylline-sustained.toml"
PRINTER = "generic-marlin-1x175"
PRINTRUN_PIN = "2.2.0"
RESEND_RE = re.compile(rb"^(?:resend|rs)\s*:?\s*(?:N\s*:?\s*)?(\d+)", re.IGNORECASE)
BRIDGE = ROOT / "tests" / "peers" / "octoprint_bridge.py"
PEER_PYTHON = Path(os.environ.get("DOSEPRINT_PEER_PYTHON", ROOT / ".venv-peers" / "bin" / "python"))
OCTOPRINT_LINES = 5000
"""Commands streamed to OctoPrint's printer: it runs each move for a tenth of its time."""
RESEND_EVERY = 100
LOST_EVERY = 1000

Client = Callable[[str, list[str]], float]
"""Streams the commands to the device path; returns the seconds it took."""


@contextmanager
def virtual_printer(*flags: str) -> Iterator[str]:
    """A `doseprint virtual-printer --pty` process; yields its device path."""
    process = subprocess.Popen(
        [sys.executable, "-m", "doseprint", "virtual-printer", "--pty", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        path = process.stdout.readline().strip()
        if not path.startswith("/dev/"):
            raise RuntimeError(f"the virtual printer did not start: {path!r}")
        yield path
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def ours(path: str, commands: list[str]) -> float:
    """doseprint's streamer, as `doseprint print` uses it (window from the firmware)."""
    with SerialTransport(path) as port:
        start = time.perf_counter()
        result = stream_gcode(commands, port, window=4, answer_timeout_s=10.0)
        elapsed = time.perf_counter() - start
    if result.commands_acked != len(commands):
        raise RuntimeError(f"only {result.commands_acked} of {len(commands)} acknowledged")
    return elapsed


def bare_loop(path: str, commands: list[str]) -> float:
    """Send a numbered line, read until its ok; honour resend requests; nothing else."""
    wire = [format_line(n, c).encode() + b"\n" for n, c in enumerate(["M110 N0", *commands])]
    with serial.Serial(path, 115200, timeout=10.0) as port:
        port.reset_input_buffer()
        start = time.perf_counter()
        n = 0
        while n < len(wire):
            port.write(wire[n])
            following = n + 1
            while True:
                reply = port.readline()
                if not reply:
                    raise RuntimeError(f"no answer to line {n}")
                if reply.startswith(b"ok"):
                    n = following
                    break
                if (match := RESEND_RE.match(reply)) is not None:
                    following = int(match[1])  # the ok after the request acknowledges nothing
        return time.perf_counter() - start


def printcore_client() -> Client | None:
    """Printrun's printcore, or None (with how to install it) when it is not importable."""
    try:
        from printrun import gcoder  # type: ignore[import-untyped]
        from printrun.printcore import printcore  # type: ignore[import-untyped]
    except ImportError:
        print(
            f"printrun is not installed: `.venv/bin/pip install --no-deps printrun=="
            f"{PRINTRUN_PIN}` adds it (printcore needs only pyserial); its rows are left out",
            file=sys.stderr,
        )
        return None

    def run(path: str, commands: list[str]) -> float:
        # printcore logs every resend request as an error; the table is the output here.
        logging.disable(logging.ERROR)
        core = printcore(path, 115200)
        try:
            deadline = time.monotonic() + 20.0
            while not core.online:
                if time.monotonic() > deadline:
                    raise RuntimeError("printcore did not come online")
                time.sleep(0.01)
            gcode = gcoder.LightGCode(commands)
            start = time.perf_counter()
            core.startprint(gcode)
            while core.printing:
                time.sleep(0.001)
            return time.perf_counter() - start
        finally:
            core.disconnect()
            logging.disable(logging.NOTSET)

    return run


def compiled_job(job: Path | None) -> list[str]:
    """The commands of ``job``'s job.gcode; by default the example compiled afresh."""
    if job is None:
        from doseprint.compile import compile_prescription

        compiled = compile_prescription(EXAMPLE, PRINTER)
        return commands_from_gcode(compiled.program.text)
    return commands_from_gcode((job / "job.gcode").read_text(encoding="utf-8"))


def measure(
    clients: Sequence[tuple[str, Client, Sequence[str]]], commands: list[str], runs: int
) -> dict[str, float]:
    """Median lines/s of each client over ``runs`` rounds, each against a fresh printer.

    The clients take turns within each round, so a change in the machine's load during
    the benchmark falls on all of them alike.
    """
    rates: dict[str, list[float]] = {name: [] for name, _, _ in clients}
    for _ in range(runs):
        for name, client, flags in clients:
            with virtual_printer(*flags) as path:
                rates[name].append(len(commands) / client(path, commands))
    return {name: statistics.median(values) for name, values in rates.items()}


# OctoPrint's virtual printer


@contextmanager
def octoprint_printer(settings: dict[str, object], **wire: object) -> Iterator[str]:
    """OctoPrint's virtual printer behind the tests' bridge; yields its device path."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "bridge.json"
        config.write_text(json.dumps({"settings": settings, **wire}), encoding="utf-8")
        process = subprocess.Popen([str(PEER_PYTHON), str(BRIDGE), str(config)],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert process.stdout is not None
            path = process.stdout.readline().strip()
            if not path.startswith("/dev/"):
                raise RuntimeError(f"OctoPrint's virtual printer did not start: {path!r}")
            yield path
        finally:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


def planned_durations(commands: Sequence[str]) -> list[float]:
    """Each command's planned motion time, s, as ``doseprint print`` plans it."""
    limits = motion_limits(load_printers(())[PRINTER])
    return list(plan_commands(commands, limits).durations_s)


def worst_stall(stamps: Sequence[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(stamps)), default=0.0)


def ours_to_octoprint(path: str, commands: list[str]) -> tuple[float, float]:
    """doseprint's streamer with the planned waits for each ok: seconds, worst stall."""
    events: list[StreamEvent] = []
    with SerialTransport(path) as port:
        start = time.perf_counter()
        result = stream_gcode(commands, port, flavor="marlin", on_event=events.append,
                              durations_s=planned_durations(commands), answer_timeout_s=30.0)
        elapsed = time.perf_counter() - start
    if result.commands_acked != len(commands):
        raise RuntimeError(f"only {result.commands_acked} of {len(commands)} acknowledged")
    oks = [e.monotonic_s for e in events if e.kind == "ok" and e.line_no]
    return elapsed, worst_stall(oks)


def printcore_to_octoprint(path: str, commands: list[str],
                           give_up_s: float = 15.0) -> tuple[float, float] | str:
    """Printrun's printcore: seconds and worst stall, or why it did not finish."""
    from printrun import gcoder  # type: ignore[import-untyped]
    from printrun.printcore import printcore  # type: ignore[import-untyped]

    logging.disable(logging.ERROR)
    oks: list[float] = []
    core = printcore(path, 115200)
    core.recvcb = lambda line: oks.append(time.monotonic()) if line.startswith("ok") else None
    try:
        deadline = time.monotonic() + 20.0
        while not core.online:
            if time.monotonic() > deadline:
                return "did not come online"
            time.sleep(0.01)
        start = time.perf_counter()
        begun = len(oks)
        core.startprint(gcoder.LightGCode(commands))
        last = time.monotonic()
        while core.printing:
            if oks:
                last = max(last, oks[-1])
            if time.monotonic() - last > give_up_s:
                if len(oks) == begun:
                    # printcore starts with 'N-1 M110 N-1'; the printer's reader looks for
                    # the line number with re.search(b"N([0-9]+)") and its thread dies.
                    return "does not start: its N-1 M110 N-1 stops the printer's reader"
                return "stalls at the first lost line"
            time.sleep(0.01)
        return time.perf_counter() - start, worst_stall(oks[begun:])
    finally:
        core.disconnect()
        logging.disable(logging.NOTSET)


def octoprint_rows(commands: list[str], runs: int, printcore: bool) -> None:
    """doseprint and printcore against OctoPrint's printer, with and without wire faults."""
    if not (PEER_PYTHON.exists() and BRIDGE.exists()):
        print(f"\n{PEER_PYTHON} is missing (`make peers` makes it): OctoPrint's rows are "
              "left out", file=sys.stderr)
        return
    n = len(commands)
    resends = [f"{k}:resend" for k in range(RESEND_EVERY, n + 1, RESEND_EVERY)]
    lost = list(range(LOST_EVERY // 2, n + 1, LOST_EVERY))
    settings = {"ambientTemperature": 250.0, "simulated_errors": []}
    cases = [
        ("none", settings, {}),
        (f"resend every {RESEND_EVERY}, a line lost every {LOST_EVERY:,}",
         {**settings, "simulated_errors": resends}, {"drop_host": lost}),
    ]
    print(f"\nOctoPrint's virtual printer: {n} commands, median of {runs}")
    print("\n| client | faults | lines/s | worst stall (s) |")
    print("| --- | --- | --- | --- |")
    for faults, vp_settings, wire in cases:
        clients: list[tuple[str, Callable[[str, list[str]], tuple[float, float] | str]]] = [
            ("doseprint streamer", ours_to_octoprint)]
        if printcore:
            clients.append(("Printrun printcore", printcore_to_octoprint))
        for name, client in clients:
            figures = []
            for _ in range(runs):
                with octoprint_printer(vp_settings, **wire) as path:
                    figures.append(client(path, commands))
            done = [f for f in figures if not isinstance(f, str)]
            failed = [f for f in figures if isinstance(f, str)]
            if failed:
                print(f"| {name} | {faults} | {failed[0]} | |", flush=True)
                continue
            rate = statistics.median(n / f[0] for f in done)
            stall = statistics.median(f[1] for f in done)
            print(f"| {name} | {faults} | {rate:,.0f} | {stall:.2f} |", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the comparison as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", type=Path, default=None,
                        help=f"a compiled job folder (default: compile {EXAMPLE.name})")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--max-lines", type=int, default=None,
                        help="stream only the job's first N commands (quick checks)")
    parser.add_argument("--octoprint-lines", type=int, default=OCTOPRINT_LINES,
                        help="commands streamed to OctoPrint's virtual printer")
    args = parser.parse_args(argv)
    commands = compiled_job(args.job)[: args.max_lines]
    printcore = printcore_client()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{len(commands)} commands, median of {args.runs}")
    print("\n| client | faults | window | lines/s |")
    print("| --- | --- | --- | --- |")
    for faults, flags in (("none", ()), ("resend every 100", ("--resend-every", "100"))):
        clients: list[tuple[str, Client, Sequence[str]]] = [
            ("doseprint streamer", ours, flags),
            ("bare send-and-wait loop", bare_loop, flags),
            # The virtual printer as a Marlin built with ADVANCED_OK: doseprint sends ahead.
            ("doseprint streamer, ADVANCED_OK", ours, (*flags, "--advanced-ok")),
        ]
        if printcore is not None:
            clients.insert(1, ("Printrun printcore", printcore, flags))
        for name, rate in measure(clients, commands, args.runs).items():
            window = 4 if "ADVANCED_OK" in name else 1
            print(f"| {name} | {faults} | {window} | {rate:,.0f} |", flush=True)
    octoprint_rows(commands[: args.octoprint_lines], args.runs, printcore is not None)


if __name__ == "__main__":
    main()
