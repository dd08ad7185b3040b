"""Show which node cases a device fails now, to keep ``expected_failures.py`` true.

    python -m tests.conformance.update_expected --device NUMPY [-k substring] [--python]

Prints each failing case with the first line of its error, then the listed cases that now
pass (they must leave the table). ``--python`` prints the failures as a dict body to paste
into ``expected_failures.py`` (the error line as the reason: replace it with a real
explanation where the error alone does not explain the failure).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections.abc import Sequence

from aioinfer.testing.conformance import node_cases

from .expected_failures import EXPECTED_FAILURES
from .runner import DEVICES, run_case


def first_error_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (the assertion's first line for a mismatch)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def python_entry(name: str, reason: str, width: int = 100) -> str:
    """One ``name: reason,`` line of a dict body, wrapped to ``width`` columns."""
    line = f"    {name!r}: {reason!r},"
    if len(line) <= width:
        return line
    chunks = textwrap.wrap(reason, width - 12, drop_whitespace=False, break_long_words=True)
    body = "".join(f"\n        {chunk!r}" for chunk in chunks)
    return f"    {name!r}: ({body}\n    ),"


def current_failures(device: str, substring: str = "") -> dict[str, str]:
    """Case name -> first error line, for every case ``device`` fails now."""
    failures = {}
    for case in node_cases():
        if substring not in case.name:
            continue
        try:
            run_case(device, case)
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            failures[case.name] = first_error_line(exc)
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--device", choices=DEVICES, required=True)
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--python", action="store_true", help="print a dict to paste")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    failures = current_failures(args.device, args.k)
    listed = {k: v for k, v in EXPECTED_FAILURES.get(args.device, {}).items() if args.k in k}
    total = sum(args.k in case.name for case in node_cases())
    if args.python:
        for name, line in failures.items():
            print(python_entry(name, listed.get(name, line)))
    else:
        for name, line in failures.items():
            mark = "" if name in listed else "  [NEW]"
            print(f"FAIL {name}: {line[:200]}{mark}")
    sys.stdout.flush()
    now_pass = sorted(set(listed) - set(failures))
    for name in now_pass:
        print(f"# listed but passing now (remove it): {name}", file=sys.stderr)
    print(f"# {args.device}: {total - len(failures)}/{total} pass, {len(failures)} fail, "
          f"{len(now_pass)} listed but passing, {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    return 0 if not now_pass and set(failures) <= set(listed) else 1


if __name__ == "__main__":
    sys.exit(main())
