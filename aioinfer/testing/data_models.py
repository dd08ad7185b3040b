"""The model test cases shipped in the onnx wheel (``backend/test/data/<folder>/test_*``).

Each case is a ``model.onnx`` with ``test_data_set_N/{input,output}_K.pb`` beside it. Used by
the test suite and from the command line::

    python -m aioinfer.testing.data_models --device NUMPY [-v]
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import numpy_helper

from .conformance import assert_similar, backend_runner

FOLDERS = ("simple", "pytorch-converted", "pytorch-operator")


@dataclass(frozen=True)
class DataModelCase:
    """One model directory of the onnx wheel's test data."""

    name: str
    folder: str
    path: str

    def load(self) -> tuple[onnx.ModelProto, list[tuple[list[Any], list[Any]]]]:
        model = onnx.load(os.path.join(self.path, "model.onnx"))
        data_sets = []
        for data_dir in sorted(glob.glob(os.path.join(self.path, "test_data_set_*"))):
            data_sets.append((_read(data_dir, "input"), _read(data_dir, "output")))
        return model, data_sets


def _read(data_dir: str, kind: str) -> list[Any]:
    values = []
    count = len(glob.glob(os.path.join(data_dir, f"{kind}_*.pb")))
    for k in range(count):
        with open(os.path.join(data_dir, f"{kind}_{k}.pb"), "rb") as f:
            tensor = onnx.TensorProto()
            tensor.ParseFromString(f.read())
            values.append(numpy_helper.to_array(tensor))
    return values


@functools.cache
def data_model_cases(folders: Sequence[str] = FOLDERS) -> tuple[DataModelCase, ...]:
    """The model cases of ``folders``, sorted by folder and name."""
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    cases = []
    for folder in folders:
        for path in sorted(glob.glob(os.path.join(root, folder, "test_*"))):
            if os.path.isfile(os.path.join(path, "model.onnx")):
                cases.append(DataModelCase(os.path.basename(path), folder, path))
    return tuple(cases)


def check_data_model(case: DataModelCase, device: str, rtol: float = 1e-3,
                     atol: float = 1e-7) -> None:
    """Run every data set of ``case`` on ``device`` and compare with the stored outputs."""
    model, data_sets = case.load()
    run = backend_runner(device)
    for inputs, expected in data_sets:
        actual = run(model, inputs)
        assert len(actual) == len(expected), f"{len(actual)} outputs, expected {len(expected)}"
        for e, a in zip(expected, actual, strict=True):
            assert_similar(e, a, rtol, atol)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="NUMPY")
    parser.add_argument("-v", action="store_true", help="print each failure's reason")
    args = parser.parse_args(argv)
    passed, failed = 0, 0
    for case in data_model_cases():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check_data_model(case, args.device)
            passed += 1
        except Exception as exc:  # noqa: BLE001 - the report lists every failure
            failed += 1
            if args.v:
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                print(f"FAIL {case.folder}/{case.name}: {type(exc).__name__}: {first}")
    total = passed + failed
    print(f"{passed}/{total} passed ({100 * passed / max(total, 1):.1f}%)")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
