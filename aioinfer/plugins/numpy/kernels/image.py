"""ImageDecoder, with Pillow when it is installed (``pip install aioinfer[image]``).

Without Pillow the op has no kernel, so compiling a model that uses it fails at compile time
naming the node, as for any op this plugin cannot run.
"""

from __future__ import annotations

import importlib.util
import io

import numpy as np

from ..registry import register

if importlib.util.find_spec("PIL") is not None:

    @register("ImageDecoder", since=20, foldable=False)
    def image_decoder(encoded, *, pixel_format="RGB"):
        """Decode one encoded image (1-D uint8) into (H, W, 3) RGB or BGR or (H, W, 1) grey."""
        from PIL import Image

        fmt = pixel_format.decode() if isinstance(pixel_format, bytes) else pixel_format
        if fmt not in ("RGB", "BGR", "Grayscale"):
            raise ValueError(f"pixel_format must be RGB, BGR or Grayscale, not {fmt!r}")
        with Image.open(io.BytesIO(np.ascontiguousarray(encoded).tobytes())) as img:
            if img.mode == "P" or "transparency" in img.info:
                img = img.convert("RGBA")  # Pillow resolves palette transparency via RGBA
            if fmt == "Grayscale":
                return np.asarray(img.convert("L"), dtype=np.uint8)[:, :, None].copy()
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        return np.ascontiguousarray(rgb[:, :, ::-1]) if fmt == "BGR" else rgb.copy()
