"""Tensors: host :class:`Tensor`, and :class:`RemoteContext` / :class:`RemoteTensor` of a device.

A :class:`Tensor` is a host array with OpenVINO's ``ov::Tensor`` API; it wraps an ndarray
without copying it, and ``data`` is that array. A :class:`RemoteTensor` lives in a device's
memory (OpenVINO's ``ov::RemoteTensor``, made by a device's :class:`RemoteContext`): it knows
its device, element type, shape and the parameters it was made with, and its contents are read
or written on the host only by an explicit :meth:`~RemoteTensor.copy_to` /
:meth:`~RemoteTensor.copy_from`. A request given a remote tensor (``set_tensor``, or among its
inputs) hands the tensor's buffer to the device as it is: no copy. For the host devices
(NUMPY, TEMPLATE) the "device memory" is a host array that the plan reads, or for an output
writes, in place; a GPU plugin's context would allocate device memory instead
(override :meth:`RemoteContext.allocate`).

::

    context = core.get_default_context("NUMPY")
    frame = context.create_tensor("f32", (1, 3, 224, 224))
    frame.copy_from(pixels)                   # host -> device memory
    request.set_tensor("input", frame)        # no copy: the plan reads frame's buffer
    request.infer()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InputShapeError, InputTypeError, InvalidPropertyValueError, UnknownPropertyError
from .runtime.streams import HOST_MEMORY

__all__ = ["Tensor", "RemoteContext", "RemoteTensor", "element_type", "SHARED_BUFFER"]

SHARED_BUFFER = "SHARED_BUFFER"
"""Host contexts' tensor parameter: an existing C-contiguous ndarray the remote tensor wraps
(as OpenVINO's GPU context wraps a user's ``cl_mem``); its dtype and shape must match."""

_SHORT = {"f16": "float16", "f32": "float32", "f64": "float64", "bf16": "bfloat16",
          "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64", "u8": "uint8",
          "u16": "uint16", "u32": "uint32", "u64": "uint64", "boolean": "bool"}


def element_type(value: Any) -> np.dtype:
    """A NumPy dtype from OpenVINO's short names (``"u8"``, ``"f32"``), a dtype or a type."""
    if isinstance(value, str) and value in _SHORT:
        value = _SHORT[value]
    if value == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    try:
        return np.dtype(value)
    except TypeError as exc:
        raise InputTypeError(f"unknown element type {value!r}: use 'u8', 'f32', ... or a "
                             "NumPy dtype") from exc


def _shape(shape: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise InputShapeError(f"tensor shape {list(dims)}: dimensions must be >= 0")
    return dims


class Tensor:
    """A host tensor. ``Tensor(array)`` shares ``array``'s memory; ``Tensor(type, shape)``
    allocates one."""

    def __init__(self, array: Any, shape: Sequence[int] | None = None) -> None:
        if isinstance(array, np.ndarray) and shape is None:
            self._data = array
        else:
            self._data = np.empty(_shape(shape or ()), dtype=element_type(array))

    @property
    def data(self) -> np.ndarray:
        """The tensor's array (its memory, not a copy)."""
        return self._data

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def element_type(self) -> np.dtype:
        return self._data.dtype

    @property
    def size(self) -> int:
        return int(self._data.size)

    @property
    def byte_size(self) -> int:
        return int(self._data.nbytes)

    def get_shape(self) -> tuple[int, ...]:
        return self.shape

    def copy_to(self, target: Tensor | RemoteTensor | np.ndarray) -> None:
        """Copy this tensor's contents into ``target`` (same element type and shape)."""
        _copy(self._data, target)

    def copy_from(self, source: Tensor | RemoteTensor | np.ndarray) -> None:
        """Copy ``source``'s contents into this tensor (same element type and shape)."""
        if isinstance(source, RemoteTensor):
            source.copy_to(self)
        else:
            _copy(host_array(source), self)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self._data if dtype is None else self._data.astype(dtype)

    def __repr__(self) -> str:
        return f"<Tensor {self.element_type.name}{list(self.shape)}>"


class RemoteTensor:
    """A tensor in a device's memory, made by :meth:`RemoteContext.create_tensor`.

    ``buffer`` is the device's own handle to the memory (a host ndarray for the host
    devices); plugins read it, users copy through :meth:`copy_to` / :meth:`copy_from`.
    """

    def __init__(self, context: RemoteContext, element_type: np.dtype, shape: tuple[int, ...],
                 params: Mapping[str, Any], buffer: Any) -> None:
        self._context = context
        self._element_type = element_type
        self._shape = shape
        self._params = dict(params)
        self.buffer = buffer

    def get_device_name(self) -> str:
        return self._context.get_device_name()

    def get_params(self) -> dict[str, Any]:
        """The parameters the tensor was created with (and the context's)."""
        return {**self._context.get_params(), **self._params}

    @property
    def context(self) -> RemoteContext:
        return self._context

    @property
    def memory(self) -> str:
        """The memory the buffer lives in (``"host"`` for the host devices)."""
        return self._context.memory

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def get_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def element_type(self) -> np.dtype:
        return self._element_type

    @property
    def size(self) -> int:
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def byte_size(self) -> int:
        return self.size * self._element_type.itemsize

    def copy_to(self, target: Tensor | RemoteTensor | np.ndarray) -> None:
        """Copy the contents into ``target`` (a host tensor or array, or another remote
        tensor): an explicit device -> host (or device -> device) copy."""
        self._context.copy_out(self, target)

    def copy_from(self, source: Tensor | RemoteTensor | np.ndarray) -> None:
        """Overwrite the contents with ``source``'s, in place (the buffer stays the same)."""
        self._context.copy_in(self, source)

    def __repr__(self) -> str:
        return (f"<RemoteTensor {self._element_type.name}{list(self._shape)} on "
                f"{self.get_device_name()}>")


class RemoteContext:
    """A device's context: makes :class:`RemoteTensor` objects in that device's memory.

    This base class is the host devices' context (``memory == "host"``: buffers are
    ndarrays). A device with memory of its own subclasses it and overrides :meth:`allocate`,
    :meth:`copy_in` and :meth:`copy_out`.
    """

    memory: str = HOST_MEMORY
    tensor_params: tuple[str, ...] = (SHARED_BUFFER,)
    """The parameter keys :meth:`create_tensor` accepts."""

    def __init__(self, device_name: str, params: Mapping[str, Any] | None = None) -> None:
        self._device = device_name
        self._params = dict(params or {})
        if self._params:
            key = next(iter(self._params))
            raise UnknownPropertyError(f"{device_name}: remote context parameter {key!r} is not "
                                       "supported (the host context takes none)",
                                       key=key, device=device_name)

    def get_device_name(self) -> str:
        return self._device

    def get_params(self) -> dict[str, Any]:
        return dict(self._params)

    def create_tensor(self, type: Any, shape: Sequence[int],  # noqa: A002 - OpenVINO's name
                      params: Mapping[str, Any] | None = None) -> RemoteTensor:
        """A tensor of ``type`` (``"f32"``, a dtype) and ``shape`` in this device's memory."""
        dtype, dims, params = element_type(type), _shape(shape), dict(params or {})
        for key in params:
            if key not in self.tensor_params:
                raise UnknownPropertyError(
                    f"{self._device}: remote tensor parameter {key!r} is not supported; "
                    f"supported: {', '.join(self.tensor_params) or 'none'}",
                    key=key, device=self._device)
        return RemoteTensor(self, dtype, dims, params, self.allocate(dtype, dims, params))

    def create_host_tensor(self, type: Any, shape: Sequence[int]) -> Tensor:  # noqa: A002
        """A host tensor the device copies to and from fast (pinned memory on a GPU; a plain
        array here)."""
        return Tensor(element_type(type), _shape(shape))

    # -- what a device with its own memory overrides ----------------------------------------------
    def allocate(self, dtype: np.dtype, shape: tuple[int, ...], params: Mapping[str, Any]
                 ) -> Any:
        """The buffer of a new tensor (a host ndarray here; ``SHARED_BUFFER`` wraps one)."""
        shared = params.get(SHARED_BUFFER)
        if shared is None:
            return np.empty(shape, dtype=dtype)
        if not (isinstance(shared, np.ndarray) and shared.dtype == dtype
                and shared.shape == shape and shared.flags.c_contiguous
                and shared.flags.writeable):
            what = (f"{shared.dtype}{list(shared.shape)}" if isinstance(shared, np.ndarray)
                    else type(shared).__name__)
            raise InvalidPropertyValueError(
                f"{self._device}: {SHARED_BUFFER} must be a writeable C-contiguous "
                f"{dtype}{list(shape)} array, got {what}", key=SHARED_BUFFER, device=self._device)
        return shared

    def copy_in(self, tensor: RemoteTensor, source: Any) -> None:
        """Host (or another tensor) -> ``tensor``'s buffer, in place."""
        if isinstance(source, RemoteTensor):
            source.copy_to(tensor)
            return
        _copy(host_array(source), tensor.buffer, what=repr(tensor))

    def copy_out(self, tensor: RemoteTensor, target: Any) -> None:
        """``tensor``'s buffer -> a host tensor/array or another remote tensor."""
        if isinstance(target, RemoteTensor):
            target.copy_from(tensor.buffer)
            return
        _copy(tensor.buffer, target)

    def __repr__(self) -> str:
        return f"<RemoteContext {self._device}>"


def host_array(value: Any) -> np.ndarray:
    """The host ndarray behind a :class:`Tensor` or array (no copy)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    return np.asarray(value)


def _copy(source: np.ndarray, target: Any, what: str | None = None) -> None:
    if isinstance(target, RemoteTensor):
        target.copy_from(source)
        return
    dest = target.data if isinstance(target, Tensor) else target
    if not isinstance(dest, np.ndarray):
        raise InputTypeError(f"cannot copy into {type(target).__name__}: expected a Tensor, "
                             "RemoteTensor or ndarray")
    if dest.shape != source.shape or dest.dtype != source.dtype:
        raise InputShapeError(
            f"copy into {what or 'tensor'}: {source.dtype}{list(source.shape)} given, the "
            f"target is {dest.dtype}{list(dest.shape)}")
    np.copyto(dest, source)
