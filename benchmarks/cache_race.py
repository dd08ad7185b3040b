"""Two processes compiling one model into one ``cache_dir`` at once, repeated: both must
always get right results.

Usage: ``python benchmarks/cache_race.py [--repeat 50] [--device NUMPY]``.

Two Python processes are started once; in each round a barrier file releases both at once to
create an ``aioinfer.onnxruntime.InferenceSession`` (a fresh Core each time) of the same model
file with the same ``cache_dir`` and run one input. Rounds alternate what they race on: an
empty cache (both compile and write), a corrupt entry (both reject it and rewrite), and, every
third round, a valid entry (both read). Each output is compared bit for bit with the output of
a session compiled without a cache. Prints per-round outcomes (compiled or loaded) and the
counts; exits 1 if any result was wrong or any process failed.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx

import aioinfer
import aioinfer.onnxruntime as ort
from aioinfer import models

CHILD = r"""
import os, sys, time, warnings
import numpy as np
import aioinfer, aioinfer.onnxruntime as ort
model, cache_dir, device, folder, me, rounds = sys.argv[1:7]
feeds = {"input": np.load(os.path.join(folder, "input.npy"))}
for r in range(int(rounds)):
    go = os.path.join(folder, f"go-{r}")
    while not os.path.exists(go):
        time.sleep(0.0005)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            session = ort.InferenceSession(model, providers=[("OpenVINOExecutionProvider",
                                           {"device_type": device, "cache_dir": cache_dir})],
                                           core=aioinfer.Core())
        np.save(os.path.join(folder, f"out-{r}-{me}.npy"), session.run(None, feeds)[0])
        kinds = sorted({str(w.message).split(":")[0] for w in caught})
        said = ("loaded" if session.loaded_from_cache else "compiled") + (
            f" (warned: {';'.join(kinds)})" if kinds else "")
    except Exception as exc:  # reported to the parent, which counts it as a failure
        said = f"FAILED {type(exc).__name__}: {exc}"
    with open(os.path.join(folder, f"done-{r}-{me}.tmp"), "w") as f:
        f.write(said)
    os.replace(os.path.join(folder, f"done-{r}-{me}.tmp"), os.path.join(folder, f"done-{r}-{me}"))
"""


def _wait(paths: list[pathlib.Path], children: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 300
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline or any(c.poll() is not None for c in children):
            raise SystemExit("a racing process died or hung: "
                             + " | ".join(c.stderr.read()[-2000:] if c.stderr and
                                          c.poll() is not None else "" for c in children))
        time.sleep(0.001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--device", default="NUMPY")
    args = parser.parse_args()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="aioinfer-cache-race-"))
    model = folder / "cnn.onnx"
    onnx.save(models.get("cnn", image_size=96, widths=(32, 64, 128), blocks_per_stage=2),
              model)
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96), dtype=np.float32)
    np.save(folder / "input.npy", x)
    reference = ort.InferenceSession(str(model), providers=[(
        "OpenVINOExecutionProvider", {"device_type": args.device})],
        core=aioinfer.Core()).run(None, {"input": x})[0]
    cache_dir = folder / "cache"
    right = wrong = failed = 0
    children = [subprocess.Popen(
        [sys.executable, "-c", CHILD, str(model), str(cache_dir), args.device, str(folder),
         str(k), str(args.repeat)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True) for k in range(2)]
    start = time.perf_counter()
    for round_ in range(args.repeat):
        entries = list(cache_dir.glob("*.blob"))
        mode = ("empty", "corrupt", "valid")[round_ % 3] if entries else "empty"
        if mode == "empty":
            for entry in entries:
                entry.unlink()
        elif mode == "corrupt":
            for entry in entries:
                data = bytearray(entry.read_bytes())
                data[len(data) // 2] ^= 0xFF
                entry.write_bytes(bytes(data[: len(data) - 7]))
        (folder / f"go-{round_}").touch()  # both processes start this round now
        done = [folder / f"done-{round_}-{k}" for k in range(2)]
        _wait(done, children)
        said = []
        for k, path in enumerate(done):
            text = path.read_text()
            said.append(text)
            if text.startswith("FAILED"):
                failed += 1
            elif np.array_equal(np.load(folder / f"out-{round_}-{k}.npy"), reference):
                right += 1
            else:
                wrong += 1
                said[-1] += " WRONG RESULT"
        print(f"round {round_:3d} ({mode:7s}): {' | '.join(said)}", flush=True)
    for child in children:
        child.wait(timeout=60)
    total = 2 * args.repeat
    print(f"{right} of {total} results right, {wrong} wrong, {failed} processes failed "
          f"({args.repeat} rounds, {time.perf_counter() - start:.0f} s, device {args.device}, "
          f"aioinfer {aioinfer.__version__})")
    sys.exit(0 if right == total else 1)


if __name__ == "__main__":
    main()
