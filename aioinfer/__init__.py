"""aioinfer: an asyncio-native dataflow runtime for ONNX inference.

>>> import aioinfer
>>> core = aioinfer.Core()
>>> compiled = core.compile_model("model.onnx", "CPU")        # doctest: +SKIP
>>> results = await compiled.create_infer_request().infer_async(inputs)  # doctest: +SKIP
"""

from . import errors, properties
from .core import Core
from .extensions import Op, TensorType
from .model import Model, Port
from .ort.session import InferenceSession
from .plugins.base import CompiledModel, Plugin, Stage, SyncInferRequest
from .runtime.infer_queue import AsyncInferQueue
from .runtime.request import InferRequest
from .runtime.results import Results
from .tensor import RemoteContext, RemoteTensor, Tensor

__version__ = "0.1.0"

__all__ = [
    "Core",
    "InferenceSession",
    "Model",
    "Port",
    "CompiledModel",
    "InferRequest",
    "AsyncInferQueue",
    "Results",
    "Op",
    "TensorType",
    "Tensor",
    "RemoteContext",
    "RemoteTensor",
    "Plugin",
    "Stage",
    "SyncInferRequest",
    "errors",
    "properties",
    "__version__",
]
