"""Fuzzing aioinfer with mutated models and input sets, crash- and hang-proof.

Cases (:mod:`.fuzz_mutations`) run in worker subprocesses, in batches; a worker prints one
JSON line as it starts a case and one with its outcome, so a case that kills the worker (a
segfault, the kernel's OOM killer) or stops it making progress is known by index and counted;
the next worker starts after it. Each case runs on NUMPY and TEMPLATE (every 4th model case
also on ``HETERO:NUMPY,TEMPLATE``, its nodes alternating between the two) through the public API
(``Core.read_model``, ``compile_model``, ``start_async`` and ``wait_for``), with a deadline:
past it the request is cancelled, and one that cannot be cancelled is a hang.

Outcomes: ``ok`` (results; where both devices give results they agree, else ``wrong``),
``error:<Class>`` (a typed aioinfer error), ``cancelled`` (the deadline passed and the
request stopped when cancelled), and the failures ``untyped:<Class>`` (an exception outside
aioinfer's tree), ``memory`` (a bare MemoryError somewhere in the cause chain: an allocation
the cap missed), ``long-message`` (an error message over 2,000 characters: a dumped tensor),
``unnamed`` and ``accepted`` (input cases: an InputError not naming the bad input, or none at
all), ``mutated-input`` (a caller's array changed), ``hang`` and ``crash``.

Run it as ``python benchmarks/fuzz.py`` or through :func:`run_fuzz`.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FAILURES", "FuzzReport", "run_fuzz"]

#: Outcomes (their part before ``:``) that are failures.
FAILURES = frozenset({"untyped", "memory", "long-message", "wrong", "unnamed", "accepted",
                      "mutated-input", "hang", "crash", "harness"})
DEVICES = ("NUMPY", "TEMPLATE")
HETERO = "HETERO:NUMPY,TEMPLATE"
_MAX_MESSAGE = 2000


@dataclass
class FuzzReport:
    """Counts of outcomes over ``n`` cases, and the failing cases."""

    what: str
    n: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_failed(self) -> int:
        return len(self.failures)

    def add(self, line: dict[str, Any]) -> None:
        self.n += 1
        outcome = str(line["outcome"])
        self.counts[outcome] += 1
        if outcome.split(":")[0] in FAILURES:
            self.failures.append(line)

    def summary(self) -> dict[str, Any]:
        kinds = Counter(o.split(":")[0] for o in self.counts.elements())
        return {"what": self.what, "cases": self.n, "failed": self.n_failed,
                "crashes": kinds["crash"], "hangs": kinds["hang"],
                "untyped": kinds["untyped"], "by_outcome": dict(sorted(self.counts.items())),
                "seconds": round(self.seconds, 1)}


# -- one case (in a worker) --------------------------------------------------------------------
class _Hang(Exception):
    pass


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def classify(exc: BaseException) -> str:
    """The outcome of a case that raised ``exc``."""
    from ..errors import AioInferError, AllocationLimitError, RequestCancelledError

    if not isinstance(exc, AioInferError):
        return f"untyped:{type(exc).__name__}"
    if any(isinstance(e, MemoryError) and not isinstance(e, AllocationLimitError)
           for e in _chain(exc)):
        return "memory"
    if len(str(exc)) > _MAX_MESSAGE:
        return "long-message"
    if isinstance(exc, RequestCancelledError):
        return "cancelled"
    return f"error:{type(exc).__name__}"


def _infer(compiled: Any, inputs: Any, deadline: float) -> list[Any]:
    request = compiled.create_infer_request()
    request.start_async(inputs)
    if not request.wait_for(deadline):
        request.cancel()
        if not request.wait_for(max(deadline, 5.0)):
            raise _Hang("the request did not stop when cancelled")
    return list(request.wait().to_list())


def _same(a: list[Any], b: list[Any], exact: bool) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if x.dtype.kind in "fc" and not exact:
            if not np.allclose(x, y, rtol=1e-4, atol=1e-5, equal_nan=True):
                return False
        elif x.dtype.kind in "fc":
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _feed_for(model: Any, given: dict[str, np.ndarray]) -> dict[str, Any]:
    """The seed's inputs, fitted to the (mutated) model's ports where it is cheap: a port's
    element type and static shape."""
    rng = np.random.default_rng(0)
    feed: dict[str, Any] = {}
    for port in model.inputs:
        value = given.get(port.name)
        dtype = port.element_type
        shape = port.shape
        static = shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)
        if static and np.prod(shape, dtype=np.float64) > 1e5:
            static = False
        if value is None or (static and tuple(value.shape) != tuple(shape or ())):
            if not static:
                feed[port.name] = value if value is not None else np.zeros(1, np.float32)
                continue
            value = rng.standard_normal(tuple(shape or ()))
        if dtype is not None and dtype.kind in "biufc" and value.dtype != dtype:
            value = value.astype(dtype)
        feed[port.name] = value
    return feed


def run_model_case(index: int, root: int, work: str, deadline: float) -> dict[str, Any]:
    """Outcome of fuzzed model ``index`` (see the module docstring)."""
    from .fuzz_mutations import model_case

    return model_outcome(model_case(index, root, work), deadline)


def model_outcome(case: Any, deadline: float) -> dict[str, Any]:
    """Outcome of a :class:`~aioinfer.testing.fuzz_mutations.ModelCase`."""
    from .. import Core

    line: dict[str, Any] = {"i": case.index, "seed": case.seed, "mutations": case.mutations}
    core = Core()
    try:
        model = core.read_model(case.path if case.path is not None else case.data)
    except _Hang:
        raise
    except BaseException as exc:  # noqa: BLE001 - every exception is an outcome here
        return {**line, "outcome": classify(exc), "message": str(exc)[:300]}
    feed = _feed_for(model, case.inputs)
    results: dict[str, list[Any]] = {}
    outcomes: list[str] = []
    message = ""
    devices: list[tuple[str, dict[str, Any]]] = [(d, {}) for d in DEVICES]
    if case.index % 4 == 0:  # every 4th also split node by node over both (HETERO)
        affinity = {n.name: DEVICES[k % 2] for k, n in enumerate(model.proto.graph.node)}
        devices.append((HETERO, {"AFFINITY": affinity}))
    for device, config in devices:
        try:
            results[device] = _infer(core.compile_model(model, device, config), feed,
                                     deadline)
            outcomes.append("ok")
        except _Hang:
            raise
        except BaseException as exc:  # noqa: BLE001
            outcomes.append(classify(exc))
            message = message or f"{device}: {str(exc)[:300]}"
    for device, values in results.items():
        reference = results.get("TEMPLATE")
        if device != "TEMPLATE" and reference is not None and not _same(values, reference,
                                                                        exact=False):
            return {**line, "outcome": "wrong", "message": f"{device} and TEMPLATE disagree"}
    worst = _worst(outcomes)
    return {**line, "outcome": worst, "message": message, "devices": outcomes}


def _worst(outcomes: list[str]) -> str:
    for outcome in outcomes:
        if outcome.split(":")[0] in FAILURES:
            return outcome
    for outcome in outcomes:
        if outcome != "ok":
            return outcome
    return "ok"


class _InputWorld:
    """Per seed: the compiled models and their results on the seed's own feed."""

    def __init__(self) -> None:
        from .. import Core

        self.core = Core()
        self._compiled: dict[tuple[str, str], Any] = {}
        self._clean: dict[tuple[str, str], list[Any]] = {}

    def compiled(self, seed: str, device: str) -> Any:
        key = (seed, device)
        if key not in self._compiled:
            from .fuzz_seeds import SEEDS

            model, feed = SEEDS[seed]()
            self._compiled[key] = self.core.compile_model(model, device)
            self._clean[key] = self._compiled[key].create_infer_request().infer(feed).to_list()
        return self._compiled[key]

    def clean(self, seed: str, device: str) -> list[Any]:
        self.compiled(seed, device)
        return self._clean[(seed, device)]

    def static(self, seed: str) -> dict[str, tuple[Any, ...]]:
        compiled = self.compiled(seed, "NUMPY")
        return {p.name: tuple(p.shape or ()) for p in compiled.inputs}


def _snapshot(inputs: Any) -> list[tuple[Any, np.ndarray]]:
    values = inputs.values() if isinstance(inputs, dict) else inputs
    return [(v, v.copy()) for v in values if isinstance(v, np.ndarray)]


def run_input_case(index: int, root: int, world: _InputWorld, deadline: float
                   ) -> dict[str, Any]:
    """Outcome of fuzzed input set ``index`` (see the module docstring)."""
    from ..errors import InputError
    from .fuzz_mutations import input_case

    case = input_case(index, root, world.static)
    line: dict[str, Any] = {"i": index, "seed": case.seed, "mutations": case.mutations,
                            "expect": case.expect}
    results: dict[str, list[Any]] = {}
    errors: dict[str, BaseException] = {}
    before = _snapshot(case.inputs)
    for device in DEVICES:
        try:
            results[device] = _infer(world.compiled(case.seed, device), case.inputs, deadline)
        except _Hang:
            raise
        except BaseException as exc:  # noqa: BLE001
            errors[device] = exc
    if any(not np.array_equal(v, copy, equal_nan=v.dtype.kind in "fc")
           for v, copy in before):
        return {**line, "outcome": "mutated-input"}
    for device, error in errors.items():
        outcome = classify(error)
        if outcome.split(":")[0] in FAILURES:
            return {**line, "outcome": outcome, "message": f"{device}: {str(error)[:300]}"}
    if case.expect == "input-error":
        for device in DEVICES:
            got = errors.get(device)
            if got is None:
                return {**line, "outcome": "accepted", "message": f"{device} ran it"}
            if not isinstance(got, InputError):
                return {**line, "outcome": f"error:{type(got).__name__}",
                        "message": str(got)[:300]}
            if case.culprits and got.input_name not in case.culprits:
                return {**line, "outcome": "unnamed",
                        "message": f"{device}: input_name={got.input_name!r}: {got}"[:300]}
        return {**line, "outcome": f"error:{type(errors['NUMPY']).__name__}"}
    if case.expect == "same":
        for device, values in results.items():
            if not _same(values, world.clean(case.seed, device), exact=True):
                return {**line, "outcome": "wrong", "message": f"{device} differs from its "
                        "result on the plain feed"}
    if len(results) == 2 and not _same(results["NUMPY"], results["TEMPLATE"], exact=False):
        return {**line, "outcome": "wrong", "message": "NUMPY and TEMPLATE disagree"}
    outcomes = ["ok" if d in results else classify(errors[d]) for d in DEVICES]
    return {**line, "outcome": _worst(outcomes), "devices": outcomes,
            "message": "; ".join(f"{d}: {str(e)[:200]}" for d, e in errors.items())}


def _worker(what: str, root: int, start: int, count: int, deadline: float) -> None:
    """Run cases ``start .. start+count`` and print their JSON lines."""
    import warnings

    warnings.simplefilter("ignore")
    _limit_address_space()
    out = sys.stdout
    from .. import Core  # noqa: F401 - imported before "ready": startup is not a case

    world = _InputWorld() if what == "inputs" else None
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    base = tempfile.mkdtemp(prefix="aioinfer-fuzz-")
    try:
        for index in range(start, start + count):
            out.write(json.dumps({"i": index, "start": True}) + "\n")
            out.flush()
            work = os.path.join(base, str(index))
            os.makedirs(work)
            _self_test(index)
            try:
                if world is None:
                    line = run_model_case(index, root, work, deadline)
                else:
                    line = run_input_case(index, root, world, deadline)
            except _Hang as exc:
                out.write(json.dumps({"i": index, "outcome": "hang", "message": str(exc)}) + "\n")
                out.flush()
                os._exit(3)  # the stuck thread cannot be stopped: the next worker goes on
            except BaseException as exc:  # noqa: BLE001 - a bug in the harness itself
                line = {"i": index, "outcome": "harness", "message": repr(exc)[:300]}
            shutil.rmtree(work, ignore_errors=True)
            out.write(json.dumps(line, default=str) + "\n")
            out.flush()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _self_test(index: int) -> None:
    """``AIOINFER_FUZZ_SELF_TEST=segv:I`` (or ``hang:I``) makes case ``I`` really crash (or
    stall): how the tests check that the harness counts what it claims to."""
    action, _, at = os.environ.get("AIOINFER_FUZZ_SELF_TEST", "").partition(":")
    if not at or int(at) != index:
        return
    if action == "segv":
        import ctypes

        ctypes.string_at(0)  # a real SIGSEGV
    elif action == "hang":
        time.sleep(3600)


def _limit_address_space() -> None:
    """A hard memory limit for the worker, so that an allocation the cap misses fails as a
    MemoryError (counted) instead of swapping the machine (``AIOINFER_FUZZ_AS_BYTES``)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    limit = int(os.environ.get("AIOINFER_FUZZ_AS_BYTES", str(4 << 30)))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# -- the parent --------------------------------------------------------------------------------
def run_fuzz(what: str, n: int, *, root: int = 0, start: int = 0, batch: int = 200,
             deadline: float = 5.0, cap_bytes: int = 256 << 20, jit: bool = False,
             stall: float | None = None, env: dict[str, str] | None = None,
             progress: Callable[[FuzzReport], None] | None = None) -> FuzzReport:
    """Run ``n`` fuzz cases of ``what`` (``"models"`` or ``"inputs"``) from index ``start``
    of run ``root``, ``batch`` per worker process, each inference with ``deadline`` seconds
    before it is cancelled, under an allocation cap of ``cap_bytes``. A worker printing
    nothing for ``stall`` seconds (default ``2 * deadline + 30``) is killed and its case
    counted as a hang; ``env`` is added to the workers' environment."""
    if what not in ("models", "inputs"):
        raise ValueError(f"what must be 'models' or 'inputs', not {what!r}")
    report = FuzzReport(what)
    environ = {**os.environ, "AIOINFER_MAX_ALLOCATION_BYTES": str(cap_bytes),
           "AIOINFER_JIT": "1" if jit else "0", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", **(env or {})}
    began = time.perf_counter()
    index, end = start, start + n
    if stall is None:  # no line for this long: a hang the worker could not report
        stall = deadline * 2 + 30.0
    while index < end:
        count = min(batch, end - index)
        index = _run_worker(what, root, index, count, deadline, stall, environ, report)
        if progress is not None:
            progress(report)
    report.seconds = time.perf_counter() - began
    return report


_STARTUP = 600.0  # seconds a worker may take to import (a loaded, shared machine is slow)


def _run_worker(what: str, root: int, start: int, count: int, deadline: float, stall: float,
                env: dict[str, str], report: FuzzReport) -> int:
    """One worker over ``start .. start+count``; returns the index to go on from (always
    past ``start``: a case the worker did not get through is counted, never skipped)."""
    cmd = [sys.executable, "-m", "aioinfer.testing.fuzz", "worker", what, str(root),
           str(start), str(count), str(deadline)]
    with tempfile.TemporaryFile() as errors, subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=errors, env=env
    ) as proc:
        assert proc.stdout is not None
        started: int | None = None
        finished = start
        ready = False
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            last = time.monotonic()
            while True:
                if not sel.select(timeout=1.0):
                    if time.monotonic() - last > (stall if ready else _STARTUP):
                        proc.kill()
                        proc.wait()
                        if started is not None:
                            report.add({"i": started, "outcome": "hang",
                                        "message": f"no progress for {stall:.0f} s"})
                            return started + 1
                        report.add({"i": finished, "outcome": "harness", "message":
                                    "the worker stalled outside a case (ready: "
                                    f"{ready})"})
                        return finished + 1
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                last = time.monotonic()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    line = json.loads(raw)
                    if line.get("ready"):
                        ready = True
                        continue
                    if line.get("start"):
                        started = int(line["i"])
                        continue
                    report.add(line)
                    started, finished = None, int(line["i"]) + 1
        code = proc.wait()
        errors.seek(0)
        tail = errors.read()[-600:].decode(errors="replace")
        if started is not None:  # died inside a case
            report.add({"i": started, "outcome": "crash",
                        "message": f"worker exit code {code}: {tail}"})
            return started + 1
        if finished < start + count:  # ended early outside any case: counted, not skipped
            report.add({"i": finished, "outcome": "harness",
                        "message": f"worker exit code {code} outside a case: {tail}"})
            return finished + 1
        return finished


def main(argv: list[str]) -> None:
    """``python -m aioinfer.testing.fuzz worker WHAT ROOT START COUNT DEADLINE``."""
    if len(argv) == 6 and argv[0] == "worker":
        _worker(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5]))
        return
    raise SystemExit("usage: python -m aioinfer.testing.fuzz worker WHAT ROOT START COUNT "
                     "DEADLINE (or run benchmarks/fuzz.py)")


if __name__ == "__main__":
    main(sys.argv[1:])
