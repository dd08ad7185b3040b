"""Turn user inputs (dict by name, list in order, or one array) into checked arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import (
    InputShapeError,
    InputTypeError,
    MissingInputError,
    UnexpectedInputError,
)
from ..model import Port
from ..tensor import RemoteTensor, Tensor
from .streams import HOST_MEMORY


def arrange_inputs(ports: Sequence[Port], inputs: Any) -> list[Any]:
    """Order ``inputs`` like ``ports``: a dict (by name, index or Port), a list, or one value.

    Raises :class:`MissingInputError` / :class:`UnexpectedInputError` naming the input.
    """
    if isinstance(inputs, Mapping):
        by_name: dict[str, Any] = {}
        names = {p.name for p in ports}
        for key, value in inputs.items():
            name = _key_name(ports, key)
            if name not in names:
                raise UnexpectedInputError(
                    f"unexpected input {name!r}; the model's inputs are {[p.name for p in ports]}",
                    input_name=name,
                )
            by_name[name] = value
        missing = [p.name for p in ports if p.name not in by_name]
        if missing:
            raise MissingInputError(
                f"missing input(s) {missing}; the model's inputs are {[p.name for p in ports]}",
                input_name=missing[0],
            )
        return [by_name[p.name] for p in ports]
    if isinstance(inputs, (list, tuple)) and not _is_single_value(ports, inputs):
        if len(inputs) != len(ports):
            what = MissingInputError if len(inputs) < len(ports) else UnexpectedInputError
            missing_name: str | None = ports[len(inputs)].name if len(inputs) < len(ports) else None
            raise what(
                f"{len(inputs)} inputs given, the model has {len(ports)}: "
                f"{[p.name for p in ports]}",
                input_name=missing_name,
            )
        return list(inputs)
    if len(ports) != 1:
        raise MissingInputError(
            f"one value given, the model has {len(ports)} inputs {[p.name for p in ports]}; "
            "pass a dict by name or a list in input order",
            input_name=ports[1].name if len(ports) > 1 else None,
        )
    return [inputs]


def _is_single_value(ports: Sequence[Port], inputs: Sequence[Any]) -> bool:
    # A list for a single sequence-typed input is that input, not a list of inputs.
    return len(ports) == 1 and ports[0].kind == "sequence" and not (
        len(inputs) == 1 and isinstance(inputs[0], list)
    )


def _key_name(ports: Sequence[Port], key: Any) -> str:
    if isinstance(key, Port):
        return key.name
    if isinstance(key, int) and not isinstance(key, bool):
        if not 0 <= key < len(ports):
            raise UnexpectedInputError(f"input index {key} out of range ({len(ports)} inputs)")
        return ports[key].name
    return str(key)


# What check_input converts with np.asarray: numbers, and (nested) lists and tuples of them.
_CONVERTIBLE = (bool, int, float, complex, str, bytes, list, tuple)


def _array_like(value: Any) -> bool:
    """Objects NumPy reads as arrays: ``__array__`` (torch, pandas, PIL), the array
    interface, or a buffer."""
    return (hasattr(value, "__array__") or hasattr(value, "__array_interface__")
            or isinstance(value, memoryview))


def check_input(port: Port, value: Any, memory: str = HOST_MEMORY) -> Any:
    """Convert ``value`` to an array for ``port`` and check its element type and shape.

    Arrays must have exactly the declared element type (no silent lossy casts, as in ONNX
    Runtime); Python scalars and lists are converted to it. A :class:`~aioinfer.Tensor` gives
    its array and a :class:`~aioinfer.RemoteTensor` its buffer, both as they are (no copy);
    a remote tensor must live in ``memory``, the device's memory.
    """
    if isinstance(value, RemoteTensor):
        return _check_remote(port, value, memory)
    if isinstance(value, Tensor):
        value = value.data
    if port.kind != "tensor":
        return value
    expected = port.element_type
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, np.generic):
        array = np.asarray(value)
    else:
        if not (isinstance(value, _CONVERTIBLE) or _array_like(value)) or (
            isinstance(value, (str, bytes)) and (expected is None or expected.kind != "O")
        ):  # np.asarray would make True of "text" or object() for a bool input
            raise InputTypeError(
                f"input {port.name!r}: a {type(value).__name__} given, the model expects an "
                f"array of {_dtype_name(expected)} (a numpy array, Python number or list)",
                input_name=port.name,
            )
        try:
            array = np.asarray(value, dtype=expected)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(
                f"input {port.name!r}: cannot convert {type(value).__name__} to "
                f"{_dtype_name(expected)}: {exc}",
                input_name=port.name,
            ) from exc
    if expected is not None and array.dtype != expected:
        if not (np.dtype(expected).kind == "O" and array.dtype.kind in "US"):
            raise InputTypeError(
                f"input {port.name!r}: element type {_dtype_name(array.dtype)} given, the model "
                f"expects {_dtype_name(expected)}",
                input_name=port.name,
            )
        array = array.astype(object)
    if port.shape is not None:
        _check_shape(port, array.shape)
    return array


def _check_remote(port: Port, tensor: RemoteTensor, memory: str) -> Any:
    if tensor.memory != memory:
        raise InputTypeError(
            f"input {port.name!r}: a remote tensor of {tensor.get_device_name()} (memory "
            f"{tensor.memory!r}) given to a model on a device with memory {memory!r}; copy it "
            "with copy_to first", input_name=port.name)
    expected = port.element_type
    if port.kind != "tensor" or (expected is not None and tensor.element_type != expected):
        raise InputTypeError(
            f"input {port.name!r}: remote tensor of element type "
            f"{_dtype_name(tensor.element_type)} given, the model expects "
            f"{_dtype_name(expected) if port.kind == 'tensor' else port.kind}",
            input_name=port.name)
    if port.shape is not None:
        _check_shape(port, tensor.shape)
    return tensor.buffer


def _check_shape(port: Port, shape: tuple[int, ...]) -> None:
    assert port.shape is not None
    if len(shape) != len(port.shape):
        raise InputShapeError(
            f"input {port.name!r}: rank {len(shape)} (shape {list(shape)}) given, the model "
            f"expects rank {len(port.shape)} {_shape_text(port.shape)}",
            input_name=port.name,
        )
    for axis, (got, want) in enumerate(zip(shape, port.shape, strict=True)):
        if isinstance(want, int) and want != got:
            raise InputShapeError(
                f"input {port.name!r}: dimension {axis} is {got} (shape {list(shape)}), the model "
                f"expects {_shape_text(port.shape)}",
                input_name=port.name,
            )


def _shape_text(shape: Sequence[Any]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _dtype_name(dtype: Any) -> str:
    if dtype is None:
        return "?"
    return "string" if np.dtype(dtype).kind == "O" else str(np.dtype(dtype).name)


# -- tensors bound to a request ------------------------------------------------------------------
def bound_buffer(value: Any) -> Any:
    """The buffer a request uses for a value given to ``set_tensor`` (the array itself for
    an ndarray or :class:`~aioinfer.Tensor`, the device buffer of a remote tensor)."""
    if isinstance(value, RemoteTensor):
        return value.buffer
    if isinstance(value, Tensor):
        return value.data
    return value


def check_output(port: Port, value: Any, memory: str = HOST_MEMORY) -> Any:
    """Check a preallocated output (ndarray, Tensor or RemoteTensor) against ``port``: its
    element type, rank and static dimensions; returns it as given."""
    if isinstance(value, RemoteTensor):
        if value.memory != memory:
            raise InputTypeError(
                f"output {port.name!r}: a remote tensor of {value.get_device_name()} (memory "
                f"{value.memory!r}) given to a model on a device with memory {memory!r}",
                input_name=port.name)
        dtype, shape = value.element_type, value.shape
    else:
        array = bound_buffer(value)
        if not isinstance(array, np.ndarray) or not array.flags.writeable:
            raise InputTypeError(f"output {port.name!r}: a writeable ndarray, Tensor or "
                                 f"RemoteTensor is needed, got {type(value).__name__}",
                                 input_name=port.name)
        dtype, shape = array.dtype, array.shape
    if port.kind != "tensor" or (port.element_type is not None and dtype != port.element_type):
        raise InputTypeError(f"output {port.name!r}: element type {_dtype_name(dtype)} given, "
                             f"the model makes {_dtype_name(port.element_type)}",
                             input_name=port.name)
    if port.shape is not None:
        _check_shape(port, shape)
    return value


def write_outputs(ports: Sequence[Port], outputs: list[Any], bound: Mapping[int, Any]) -> None:
    """Put each result with a preallocated tensor into that tensor's buffer.

    A device that wrote the result in place already returns the buffer itself (nothing to
    do); otherwise the result is copied into the buffer once (on the thread that ends the
    run, never the event loop's). ``outputs[i]`` becomes the buffer.
    """
    for index, tensor in bound.items():
        buffer = bound_buffer(tensor)
        value = outputs[index]
        if value is buffer:
            continue
        port = ports[index]
        if not isinstance(value, (np.ndarray, np.generic)) or value.shape != buffer.shape:
            got = list(np.shape(value)) if isinstance(value, np.ndarray | np.generic) else \
                type(value).__name__
            raise InputShapeError(
                f"output {port.name!r}: the result {got} does not fit the preallocated "
                f"tensor {list(buffer.shape)}", input_name=port.name)
        np.copyto(buffer, value, casting="no")
        outputs[index] = buffer
