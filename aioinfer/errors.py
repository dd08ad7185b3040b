"""The aioinfer exception tree.

Every error names what is at fault (model input, node, device or property) and, where it makes
sense, what was expected. Leaves also subclass the matching builtin so that ``except ValueError``
style code keeps working::

    AioInferError
    ├── ModelError
    │   ├── InvalidModelError(ValueError)          .path
    │   ├── UnsupportedOperationError(NotImplementedError)  .node, .op_type, .device
    │   ├── PartitionError(ValueError)             .node, .value (cutting a model into parts)
    │   ├── PreprocessError(ValueError)            .port (PrePostProcessor steps)
    │   └── SubgraphCompileError                   .device, .subgraph (HETERO compile)
    ├── InputError(ValueError)                     .input_name
    │   ├── MissingInputError
    │   ├── UnexpectedInputError
    │   ├── InputTypeError(TypeError)
    │   └── InputShapeError
    ├── DeviceError
    │   ├── DeviceNotFoundError(LookupError)       .device
    │   ├── PluginLoadError(ImportError)           .device
    │   └── NotSupportedError(NotImplementedError)  .device (a feature the device lacks)
    ├── PropertyError                              .key, .device
    │   ├── UnknownPropertyError(KeyError)
    │   ├── ReadOnlyPropertyError(AttributeError)
    │   └── InvalidPropertyValueError(ValueError)
    ├── ExtensionError(ValueError)                 .extension (add_extension, Op)
    ├── InferenceError(RuntimeError)               .node, .device
    │   └── AllocationLimitError(MemoryError)      .nbytes, .limit (aioinfer.limits' cap)
    └── RequestError(RuntimeError)
        ├── RequestBusyError
        └── RequestCancelledError
"""

from __future__ import annotations

__all__ = [
    "AioInferError",
    "ModelError",
    "InvalidModelError",
    "UnsupportedOperationError",
    "SubgraphCompileError",
    "PartitionError",
    "PreprocessError",
    "InputError",
    "MissingInputError",
    "UnexpectedInputError",
    "InputTypeError",
    "InputShapeError",
    "DeviceError",
    "DeviceNotFoundError",
    "PluginLoadError",
    "NotSupportedError",
    "PropertyError",
    "UnknownPropertyError",
    "ReadOnlyPropertyError",
    "InvalidPropertyValueError",
    "ExtensionError",
    "InferenceError",
    "AllocationLimitError",
    "RequestError",
    "RequestBusyError",
    "RequestBusy",
    "RequestCancelledError",
]


class AioInferError(Exception):
    """Base of every error raised by aioinfer."""


class ModelError(AioInferError):
    """The model cannot be read, validated or compiled."""


class InvalidModelError(ModelError, ValueError):
    """The ONNX model is malformed (truncated file, bad protobuf, invalid graph)."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class UnsupportedOperationError(ModelError, NotImplementedError):
    """A node uses an operation (or opset version) that the device cannot run."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        op_type: str | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(message)
        self.node = node
        self.op_type = op_type
        self.device = device


class PartitionError(ModelError, ValueError):
    """A model cannot be cut as asked: a node without a device, an unknown node, or a value
    crossing a cut whose type is not known."""

    def __init__(
        self, message: str, *, node: str | None = None, value: str | None = None
    ) -> None:
        super().__init__(message)
        self.node = node
        self.value = value


class PreprocessError(ModelError, ValueError):
    """Pre- or post-processing steps that cannot apply to a model input or output (a step
    needing a layout, mean values not matching the channels...); ``.port`` names it."""

    def __init__(self, message: str, *, port: str | None = None) -> None:
        super().__init__(message)
        self.port = port


class SubgraphCompileError(ModelError):
    """A device failed to compile its subgraph of a model split over several devices
    (HETERO); the cause is chained. ``.device`` compiled subgraph ``.subgraph``."""

    def __init__(self, message: str, *, device: str | None = None,
                 subgraph: int | None = None) -> None:
        super().__init__(message)
        self.device = device
        self.subgraph = subgraph


class InputError(AioInferError, ValueError):
    """The inputs given to an infer request do not match the model's inputs."""

    def __init__(self, message: str, *, input_name: str | None = None) -> None:
        super().__init__(message)
        self.input_name = input_name


class MissingInputError(InputError):
    """A required model input was not given."""


class UnexpectedInputError(InputError):
    """An input name that the model does not have was given."""


class InputTypeError(InputError, TypeError):
    """An input has the wrong element type (or cannot be converted to an array)."""


class InputShapeError(InputError):
    """An input has the wrong rank or a dimension that does not match the model."""


class DeviceError(AioInferError):
    """A device or its plugin cannot be used."""

    def __init__(self, message: str, *, device: str | None = None) -> None:
        super().__init__(message)
        self.device = device


class DeviceNotFoundError(DeviceError, LookupError):
    """No plugin is registered under the requested device name."""


class PluginLoadError(DeviceError, ImportError):
    """A plugin's entry point could not be imported or instantiated."""


class NotSupportedError(DeviceError, NotImplementedError):
    """The device does not implement this feature (export, remote context, ...)."""


class PropertyError(AioInferError):
    """A property key or value is not accepted."""

    def __init__(self, message: str, *, key: str | None = None, device: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.device = device

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownPropertyError(PropertyError, KeyError):
    """The property key is not supported by this device or object."""


class ReadOnlyPropertyError(PropertyError, AttributeError):
    """The property can be read but not set."""


class InvalidPropertyValueError(PropertyError, ValueError):
    """The value is not valid for the property."""


class ExtensionError(AioInferError, ValueError):
    """An extension cannot be loaded or used: not an ``aioinfer.Op``, an import path or entry
    point that fails, an Op without a domain, or an ``evaluate`` result of the wrong arity."""

    def __init__(self, message: str, *, extension: str | None = None) -> None:
        super().__init__(message)
        self.extension = extension


class InferenceError(AioInferError, RuntimeError):
    """A kernel failed while running a node."""

    def __init__(self, message: str, *, node: str | None = None, device: str | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.device = device


class AllocationLimitError(InferenceError, MemoryError):
    """A node (or a model's initializer) would allocate a tensor larger than the cap of
    :mod:`aioinfer.limits`; raised before allocating. ``.nbytes`` asked, ``.limit`` allowed."""

    def __init__(self, message: str, *, node: str | None = None, device: str | None = None,
                 nbytes: int = 0, limit: int = 0) -> None:
        super().__init__(message, node=node, device=device)
        self.nbytes = nbytes
        self.limit = limit


class RequestError(AioInferError, RuntimeError):
    """An infer request was used in a state that does not allow it."""


class RequestBusyError(RequestError):
    """The infer request is already running."""


RequestBusy = RequestBusyError


class RequestCancelledError(RequestError):
    """The infer request was cancelled before it produced results."""
