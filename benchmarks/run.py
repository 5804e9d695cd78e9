"""Benchmarks of the first path: compile time per example and streaming speed through the
virtual printer, then slicing against PrusaSlicer and CuraEngine (slice_bench.py) and the
print-time estimate against Klipper's planner (estimate_bench.py). Run with `make bench`;
figures go to docs/benchmarks.md by hand."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import estimate_bench  # benchmarks/estimate_bench.py, beside this file
import slice_bench  # benchmarks/slice_bench.py, beside this file
import stream_bench  # benchmarks/stream_bench.py, beside this file

from doseprint.compile import compile_prescription

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

    # Streaming: doseprint, Printrun's printcore and a bare loop over a pseudo-terminal.
    print()
    stream_bench.main([])

    print()
    slice_bench.main([])

    print()
    estimate_bench.main()


if __name__ == "__main__":
    main()
