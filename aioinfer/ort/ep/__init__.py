"""Plugin EP libraries in Python: the API (:mod:`.api`), registration and selection
(:mod:`.library`), and the adapter to aioinfer's Plugin protocol (:mod:`.plugin`)."""

from .api import (
    HOST_ALLOCATOR,
    Allocator,
    Ep,
    EpApi,
    EpDevice,
    EpFactory,
    GraphSupportInfo,
    HardwareDevice,
    NodeComputeContext,
    NodeComputeInfo,
    NodeFusionOptions,
    OrtEpDataLayout,
    OrtHardwareDeviceType,
)
from .library import (
    get_ep_devices,
    register_execution_provider_library,
    unregister_execution_provider_library,
)

__all__ = ["HOST_ALLOCATOR", "Allocator", "Ep", "EpApi", "EpDevice", "EpFactory",
           "GraphSupportInfo", "HardwareDevice",
           "NodeComputeContext", "NodeComputeInfo", "NodeFusionOptions", "OrtEpDataLayout",
           "OrtHardwareDeviceType", "get_ep_devices", "register_execution_provider_library",
           "unregister_execution_provider_library"]
