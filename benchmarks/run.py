"""Benchmarks of the first path: compile time per example and streaming speed through the
virtual printer. Run with `make bench`; figures go to docs/benchmarks.md by hand."""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from doseprint.comms.protocol import commands_from_gcode
from doseprint.comms.streamer import stream_gcode
from doseprint.comms.transport import SerialTransport
from doseprint.comms.virtual import VirtualMarlin, serve_pty
from doseprint.job.compile import compile_prescription

ROOT = Path(__file__).resolve().parent.parent


def best_of(n: int, fn: object) -> tuple[float, object]:
    times, result = [], None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    print("\n| prescription | tablets | G-code lines | compile s (best of 3) |")
    print("| --- | --- | --- | --- |")
    jobs = {}
    for rx in sorted((ROOT / "examples").glob("*.toml")) + sorted(
            (ROOT / "examples").glob("*.json")):
        printer = "generic-marlin-2x175" if "polypill" in rx.name else "generic-marlin-1x175"
        seconds, compiled = best_of(3, lambda rx=rx, printer=printer: compile_prescription(
            rx, printer))
        jobs[rx.stem] = compiled
        print(f"| {rx.name} | {len(compiled.tablets)} | "  # type: ignore[attr-defined]
              f"{compiled.program.lines} | {seconds:.2f} |")  # type: ignore[attr-defined]

    print("\n| job | commands | window | resend every | lines/s (median of 3) |")
    print("| --- | --- | --- | --- | --- |")
    compiled = jobs["theophylline-sustained"]
    commands = commands_from_gcode(compiled.program.text)  # type: ignore[attr-defined]
    for window, resend in ((1, None), (4, None), (1, 100)):
        rates = []
        for _ in range(3):
            stop = threading.Event()
            with tempfile.TemporaryDirectory():
                printer = VirtualMarlin(resend_every=resend)
                path = serve_pty(printer, stop=stop)
                with SerialTransport(path) as port:
                    start = time.perf_counter()
                    stream_gcode(commands, port, window=window)
                    rates.append(len(commands) / (time.perf_counter() - start))
            stop.set()
        print(f"| theophylline-sustained | {len(commands)} | {window} | {resend or '-'} | "
              f"{statistics.median(rates):,.0f} |")


if __name__ == "__main__":
    main()
