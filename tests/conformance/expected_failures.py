"""Node cases each device is known to fail, with the reason: ``device -> {case: reason}``.

Applied as strict xfails by ``test_node_cases.py``: a listed case that starts passing fails the
suite until it leaves this table. Regenerate a device's list with::

    python -m tests.conformance.update_expected --device NUMPY

and keep (or write) a real reason for each entry.
"""

from __future__ import annotations

import importlib.util

TEMPLATE: dict[str, str] = {}

_IMAGE_CASES = [f"test_image_decoder_decode_{fmt}" for fmt in (
    "bmp_rgb", "jpeg2k_rgb", "jpeg_bgr", "jpeg_grayscale", "jpeg_rgb", "png_rgb", "pnm_rgb",
    "tiff_rgb", "webp_rgb")]

NUMPY: dict[str, str] = {}

# HETERO over NUMPY and TEMPLATE: what neither device runs (here: only without Pillow).
HETERO: dict[str, str] = {}

# ImageDecoder needs JPEG/PNG/TIFF/WebP/JPEG2000 codecs: both devices decode with Pillow, an
# optional dependency (the `image` and `test` extras); without it the node is unsupported.
if importlib.util.find_spec("PIL") is None:
    for _device in (TEMPLATE, NUMPY, HETERO):
        _device.update(dict.fromkeys(
            _IMAGE_CASES, "ImageDecoder: decodes with Pillow, which is not installed (the "
            "device reports the node unsupported)"))

EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "TEMPLATE": TEMPLATE, "NUMPY": NUMPY, "HETERO:NUMPY,TEMPLATE": HETERO,
}
