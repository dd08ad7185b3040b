"""Pre- and post-processing compiled into the model's graph (OpenVINO's PrePostProcessor).

See :class:`PrePostProcessor`; the steps are ONNX nodes (:mod:`.steps`).
"""

from .formats import ColorFormat, ResizeAlgorithm
from .layout import Layout
from .ppp import (
    InputInfo,
    ModelInfo,
    OutputInfo,
    PostProcessSteps,
    PrePostProcessor,
    PreProcessSteps,
    TensorInfo,
)

__all__ = [
    "PrePostProcessor",
    "ColorFormat",
    "ResizeAlgorithm",
    "Layout",
    "InputInfo",
    "OutputInfo",
    "TensorInfo",
    "ModelInfo",
    "PreProcessSteps",
    "PostProcessSteps",
]
