"""Write the seeded corpus: small hand-made bad models, each a regression or a class of attack.

``python tests/robustness/corpus/make_corpus.py`` rewrites ``models/`` and ``expected.json``
(case -> the error class it must end in, a text its message must contain, or ``"ok"``).
Files are tiny (the largest is a few hundred bytes) so the corpus stays in the repository.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from aioinfer.testing import fuzz_seeds

HERE = pathlib.Path(__file__).parent
MODELS = HERE / "models"


def _save(name: str, model: onnx.ModelProto | bytes, folder: pathlib.Path = MODELS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = model if isinstance(model, bytes) else model.SerializeToString()
    (folder / f"{name}.onnx").write_bytes(data)


def _external(name: str, location: str, *, length: int | None = None,
              offset: int | None = None) -> None:
    """The add seed with its ``y`` made an initializer whose data is in ``location``."""
    model, _ = fuzz_seeds.add()
    graph = model.graph
    tensor = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "y")
    tensor.ClearField("raw_data")
    tensor.data_location = T.EXTERNAL
    for key, value in (("location", location), ("length", length), ("offset", offset)):
        if value is not None:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
    graph.initializer.append(tensor)
    del graph.input[1]
    _save("model", model, MODELS / name)


def _one_op(op: str, inputs: list[str], constants: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``op`` over graph input ``x`` [2, 3] (if named) and initializers ``constants``."""
    graph = helper.make_graph(
        [helper.make_node(op, [*inputs, *constants], ["y"])], op.lower(),
        [helper.make_tensor_value_info("x", T.FLOAT, [2, 3])] if inputs else [],
        [helper.make_tensor_value_info("y", T.FLOAT, ["a", "b", "c"][: 3 if op != "Tile"
                                                                     else 2])],
        [numpy_helper.from_array(v, k) for k, v in constants.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    expected: dict[str, list[str]] = {}
    add, _ = fuzz_seeds.add()
    data = add.SerializeToString()
    _save("truncated", data[: len(data) // 2])
    expected["truncated"] = ["InvalidModelError", "cannot parse"]
    _save("not_onnx", b"\x80\x04\x95 pickle-looking bytes")
    expected["not_onnx"] = ["InvalidModelError", "cannot parse"]

    conv, _ = fuzz_seeds.conv()
    conv.graph.input[0].type.tensor_type.elem_type = T.UINT8  # uint8 into Conv
    _save("uint8_into_conv", conv)
    expected["uint8_into_conv"] = ["InvalidModelError", "element types"]

    control, _ = fuzz_seeds.control()
    trips = next(t for t in control.graph.initializer if t.name == "trips")
    trips.data_type = T.DOUBLE  # same 8 bytes, now a double trip count
    _save("double_trip_count", control)
    expected["double_trip_count"] = ["InvalidModelError", "element types"]

    indices, _ = fuzz_seeds.indices()
    indices.graph.input[1].type.tensor_type.shape.dim[0].dim_value = -7
    _save("negative_port_dim", indices)  # onnx's shape inference aborted the process on it
    expected["negative_port_dim"] = ["InvalidModelError", "negative dimension -7"]

    _save("huge_constant_of_shape", _one_op(
        "ConstantOfShape", [], {"shape": np.array([2**20, 2**20, 2**10], np.int64)}))
    expected["huge_constant_of_shape"] = ["AllocationLimitError", "ConstantOfShape"]
    _save("huge_tile", _one_op("Tile", ["x"], {"reps": np.array([2**30, 2**30], np.int64)}))
    expected["huge_tile"] = ["AllocationLimitError", "Tile"]
    _save("huge_expand", _one_op("Expand", ["x"], {"shape": np.array([2**21, 2**21, 3],
                                                                      np.int64)}))
    expected["huge_expand"] = ["AllocationLimitError", "Expand"]

    mlp, _ = fuzz_seeds.mlp()
    mlp.graph.initializer[0].dims[0] = 2**40  # dims far beyond the bytes it carries
    _save("huge_initializer_dims", mlp)
    expected["huge_initializer_dims"] = ["AllocationLimitError", "initializer 'w1'"]

    short, _ = fuzz_seeds.mlp()
    short.graph.initializer[0].raw_data = short.graph.initializer[0].raw_data[:-4]
    _save("short_raw_data", short)
    expected["short_raw_data"] = ["InvalidModelError", "initializer 'w1'"]

    negative, _ = fuzz_seeds.mlp()
    negative.graph.initializer[1].dims[0] = -8
    _save("negative_initializer_dim", negative)
    expected["negative_initializer_dim"] = ["InvalidModelError", "negative dimension"]

    dangling, _ = fuzz_seeds.mlp()
    dangling.graph.node[2].input[0] = "ghost"
    _save("dangling_edge", dangling)
    expected["dangling_edge"] = ["InvalidModelError", "ghost"]

    cycle, _ = fuzz_seeds.mlp()
    cycle.graph.node[0].input[0] = cycle.graph.node[3].output[0]
    _save("cycle", cycle)
    expected["cycle"] = ["InvalidModelError", ""]

    dup, _ = fuzz_seeds.mlp()
    dup.graph.node[2].output[0] = dup.graph.node[0].output[0]
    _save("duplicate_output", dup)
    expected["duplicate_output"] = ["InvalidModelError", ""]

    missing, _ = fuzz_seeds.mlp()
    del missing.graph.initializer[0]
    _save("missing_initializer", missing)
    expected["missing_initializer"] = ["InvalidModelError", "w1"]

    domain, _ = fuzz_seeds.add()
    domain.graph.node[0].domain = "com.example.unknown"
    domain.opset_import.append(helper.make_opsetid("com.example.unknown", 1))
    _save("unknown_domain", domain)
    expected["unknown_domain"] = ["UnsupportedOperationError", "com.example.unknown"]

    future, _ = fuzz_seeds.add()
    future.opset_import[0].version = 10**4
    _save("future_opset", future)
    expected["future_opset"] = ["InvalidModelError", "opset 10000"]

    strings = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["y"])], "s", [],
        [helper.make_tensor_value_info("y", T.STRING, [1])],
        [helper.make_tensor("s", T.STRING, [1], [b"\xff\xfe not utf-8"])])
    _save("non_utf8_string", helper.make_model(strings,
                                               opset_imports=[helper.make_opsetid("", 17)]))
    expected["non_utf8_string"] = ["InvalidModelError", "UTF-8"]

    # External data: a real file next to the model is read; anything else is refused.
    _external("external_ok", "y.bin")
    (MODELS / "external_ok" / "y.bin").write_bytes(np.arange(6, dtype=np.float32).tobytes())
    expected["external_ok/model"] = ["ok", ""]
    _external("external_outside", "../secret.bin")
    expected["external_outside/model"] = ["InvalidModelError", "outside the model's folder"]
    _external("external_absolute", "/etc/passwd")
    expected["external_absolute/model"] = ["InvalidModelError", "relative"]
    _external("external_missing", "nope.bin")
    expected["external_missing/model"] = ["InvalidModelError", "does not exist"]
    _external("external_past_end", "y.bin", offset=16, length=24)
    (MODELS / "external_past_end" / "y.bin").write_bytes(bytes(24))
    expected["external_past_end/model"] = ["InvalidModelError", "outside file"]
    _external("external_wrong_length", "y.bin", length=8)
    (MODELS / "external_wrong_length" / "y.bin").write_bytes(bytes(24))
    expected["external_wrong_length/model"] = ["InvalidModelError", "its dims need 24"]
    (MODELS / "secret.bin").write_bytes(bytes(24))
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
