"""The demo's committed files and the model with its preprocessing built in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model import Model, load_model

DATA = Path(__file__).resolve().parent / "data"
"""The folder of the committed model and digits."""


def model_path() -> Path:
    """The trained classifier: ``image [N, 3, 32, 32]`` float in [0, 1] ->
    ``probabilities [N, 10]``."""
    return DATA / "digits_cnn.onnx"


def held_out_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 360 digits never trained on: ``images`` uint8 ``[n, 8, 8]`` (0..16), ``labels``."""
    with np.load(DATA / "held_out_digits.npz") as data:
        return data["images"], data["labels"]


def prepared_model() -> Model:
    """The classifier with its preprocessing in the graph
    (:func:`aioinfer.pipelines.prepare.for_frames`): it takes a decoded frame as it is,
    ``uint8 [1, H, W, 3]`` RGB of any size, resizes it bilinearly to 32x32, scales it to
    [0, 1] and transposes it to NCHW, all inside the request."""
    from ..pipelines.prepare import for_frames

    return for_frames(load_model(str(model_path())))
