"""A model made ready for decoded frames: its preprocessing built into the graph."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..model import Model


def for_frames(model: Model, *, layout: str = "NCHW", scale: float | Sequence[float] = 255.0,
               mean: float | Sequence[float] | None = None) -> Model:
    """``model`` (an image model with static H and W) taking decoded frames as they come:
    ``uint8 [N, H, W, 3]`` RGB of any size -> float32 -> bilinear resize to the model's size
    -> ``- mean`` (on the 0..255 scale, if given) -> ``/ scale`` -> the model's ``layout``, all
    as nodes of the graph (a built :class:`~aioinfer.preprocess.PrePostProcessor`), so the
    steps run inside the request."""
    from ..preprocess import ColorFormat, PrePostProcessor, ResizeAlgorithm

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(np.uint8).set_layout("NHWC") \
        .set_color_format(ColorFormat.RGB).set_spatial_dynamic_shape()
    steps = ppp.input().preprocess().convert_element_type(np.float32) \
        .resize(ResizeAlgorithm.LINEAR)
    if mean is not None:
        steps.mean(mean)
    steps.scale(scale)
    ppp.input().model().set_layout(layout)
    return ppp.build()
