"""The onnxruntime face of aioinfer: ``import aioinfer.onnxruntime as ort``.

A script written for onnxruntime runs after changing its import line: :class:`InferenceSession`
(``run``, ``run_async`` awaitable or with a callback, ``io_binding``...), :class:`SessionOptions`,
:class:`RunOptions`, the providers (``CPUExecutionProvider`` and ``OpenVINOExecutionProvider``
with every option of its documentation, mapped onto aioinfer devices), plugin EP libraries
written in Python (:mod:`aioinfer.ort.ep`), ``cache_dir`` (:mod:`.cache`) and EP context models
(:mod:`.epcontext`). Not to be confused with ``aioinfer.plugins.ort``, the ``ORT`` device that
runs models on the installed onnxruntime engine.
"""

from __future__ import annotations

from .ep import (
    EpDevice,
    HardwareDevice,
    OrtHardwareDeviceType,
    get_ep_devices,
    register_execution_provider_library,
    unregister_execution_provider_library,
)
from .ep.library import registered_names
from .iobinding import IOBinding
from .nodearg import ModelMetadata, NodeArg
from .options import (
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    OrtExecutionProviderDevicePolicy,
    RunOptions,
    SessionOptions,
)
from .providers import ALL_PROVIDERS
from .providers import available_providers as _available
from .session import InferenceSession

OrtEpDevice = EpDevice
OrtHardwareDevice = HardwareDevice
SessionIOBinding = IOBinding


def get_available_providers() -> list[str]:
    """Providers sessions can use here: registered plugin EPs, the OpenVINO EP (over aioinfer
    devices) and the CPU EP."""
    return _available({name: name for name in registered_names()})


def get_all_providers() -> list[str]:
    return [*registered_names(), *ALL_PROVIDERS]


def get_device() -> str:
    return "CPU"


def get_version_string() -> str:
    from .. import __version__ as version

    return f"aioinfer {version}"


def __getattr__(name: str) -> str:
    if name == "__version__":  # read lazily: aioinfer/__init__ imports this package
        return get_version_string()
    raise AttributeError(name)

__all__ = [
    "InferenceSession", "SessionOptions", "RunOptions", "NodeArg", "ModelMetadata",
    "IOBinding", "SessionIOBinding", "GraphOptimizationLevel", "ExecutionMode",
    "ExecutionOrder", "OrtExecutionProviderDevicePolicy", "OrtHardwareDeviceType",
    "EpDevice", "OrtEpDevice", "HardwareDevice", "OrtHardwareDevice",
    "get_available_providers", "get_all_providers", "get_device", "get_version_string",
    "get_ep_devices", "register_execution_provider_library",
    "unregister_execution_provider_library",
]
