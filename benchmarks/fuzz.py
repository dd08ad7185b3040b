"""Fuzz aioinfer with mutated ONNX models and mutated input sets; print the outcome counts.

``python benchmarks/fuzz.py [--models 10000] [--inputs 10000] [--root 0] [--batch 250]
[--deadline 5] [--cap 256M] [--jit] [--json out.json]``

Each case runs in a worker subprocess (see :mod:`aioinfer.testing.fuzz`), so a segfault or
a case that stops making progress is counted, not fatal. A case passes when it ends in a
typed aioinfer error (naming the input for input cases) or in results that NUMPY and TEMPLATE
agree on (bit-identical to the plain feed's for layout-only input changes). The exit status
is 1 when any case failed; the failing cases are printed with their mutations, so
``--root R`` and the index reproduce one (``run_model_case(i, R, dir, deadline)``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from aioinfer.testing.fuzz import FuzzReport, run_fuzz


def _bytes(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1:] in units else int(text)


def _progress(started: float) -> Callable[[FuzzReport], None]:
    shown = 0

    def show(report: FuzzReport) -> None:
        nonlocal shown
        for line in report.failures[shown:]:  # as they happen: a long run can be stopped
            print("  FAILED", json.dumps(line, default=str)[:600], file=sys.stderr, flush=True)
        shown = len(report.failures)
        print(f"  {report.what}: {report.n} cases, {report.n_failed} failed, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return show


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=10_000, help="fuzzed models")
    parser.add_argument("--inputs", type=int, default=10_000, help="fuzzed input sets")
    parser.add_argument("--root", type=int, default=0, help="the run's random seed")
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--batch", type=int, default=250, help="cases per worker process")
    parser.add_argument("--deadline", type=float, default=5.0,
                        help="seconds an inference may run before it is cancelled")
    parser.add_argument("--cap", default="256M", help="allocation cap (bytes, K/M/G)")
    parser.add_argument("--jit", action="store_true", help="NUMPY's compiled tier on")
    parser.add_argument("--json", help="write the summaries and failures here")
    args = parser.parse_args()
    summaries, failures = [], []
    for what, n in (("models", args.models), ("inputs", args.inputs)):
        if n <= 0:
            continue
        report = run_fuzz(what, n, root=args.root, start=args.start, batch=args.batch,
                          deadline=args.deadline, cap_bytes=_bytes(args.cap), jit=args.jit,
                          progress=_progress(time.perf_counter()))
        summary = report.summary()
        summaries.append(summary)
        failures.extend(report.failures)
        print(f"{what}: {summary['cases']} cases in {summary['seconds']} s: "
              f"{summary['failed']} failed (crashes {summary['crashes']}, hangs "
              f"{summary['hangs']}, untyped {summary['untyped']})")
        for outcome, count in summary["by_outcome"].items():
            print(f"  {outcome:32s} {count}")
        for line in report.failures[:20]:
            print("  FAILED", json.dumps(line, default=str)[:400])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summaries": summaries, "failures": failures}, f, indent=1, default=str)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
