"""Color formats and resize algorithms of :class:`~aioinfer.preprocess.PrePostProcessor`."""

from __future__ import annotations

import enum


class ColorFormat(enum.Enum):
    """Pixel formats (OpenVINO's ``ColorFormat``). Packed RGB/BGR (and their 4-channel
    ``X`` forms, whose 4th channel is dropped) convert in the graph; the multi-plane YUV
    formats are listed for the API's sake and refused by ``build()``."""

    UNDEFINED = "undefined"
    RGB = "rgb"
    BGR = "bgr"
    RGBX = "rgbx"
    BGRX = "bgrx"
    GRAY = "gray"
    NV12_SINGLE_PLANE = "nv12_single_plane"
    NV12_TWO_PLANES = "nv12_two_planes"
    I420_SINGLE_PLANE = "i420_single_plane"
    I420_THREE_PLANES = "i420_three_planes"

    @property
    def channels(self) -> int | None:
        return {"rgb": 3, "bgr": 3, "rgbx": 4, "bgrx": 4, "gray": 1}.get(self.value)

    @property
    def order(self) -> str | None:
        """``"rgb"`` / ``"bgr"``: the order of the color channels (None for others)."""
        return {"rgb": "rgb", "rgbx": "rgb", "bgr": "bgr", "bgrx": "bgr"}.get(self.value)


class ResizeAlgorithm(enum.Enum):
    """Interpolation of ``preprocess().resize()``, as ONNX ``Resize`` attributes: linear and
    cubic on ``half_pixel`` coordinates (cubic with ``a = -0.75``, as OpenCV), nearest on
    ``asymmetric`` coordinates rounding down (OpenCV's ``INTER_NEAREST``)."""

    LINEAR = "linear"
    NEAREST = "nearest"
    CUBIC = "cubic"
    RESIZE_LINEAR = "linear"
    RESIZE_NEAREST = "nearest"
    RESIZE_CUBIC = "cubic"

    def attributes(self) -> dict[str, object]:
        if self is ResizeAlgorithm.NEAREST:
            return {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                    "nearest_mode": "floor"}
        extra = {"cubic_coeff_a": -0.75} if self is ResizeAlgorithm.CUBIC else {}
        return {"mode": self.value, "coordinate_transformation_mode": "half_pixel", **extra}
