"""Node cases each device is known to fail, with the reason: ``device -> {case: reason}``.

Applied as strict xfails by ``test_node_cases.py``: a listed case that starts passing fails the
suite until it leaves this table. Regenerate a device's list with::

    python -m tests.conformance.update_expected --device NUMPY

and keep (or write) a real reason for each entry.
"""

from __future__ import annotations

import importlib.util

TEMPLATE: dict[str, str] = {}

if importlib.util.find_spec("PIL") is None:
    TEMPLATE.update({
        f"test_image_decoder_decode_{fmt}": "ImageDecoder: onnx.reference decodes with Pillow, "
        "which is not installed (TEMPLATE reports the node unsupported)"
        for fmt in ("bmp_rgb", "jpeg2k_rgb", "jpeg_bgr", "jpeg_grayscale", "jpeg_rgb",
                    "png_rgb", "pnm_rgb", "tiff_rgb", "webp_rgb")
    })

# ImageDecoder needs JPEG/PNG/TIFF/WebP/JPEG2000 codecs; NUMPY's runtime dependencies are
# numpy, onnx, networkx and anyio only, and none of them decodes images.
NUMPY: dict[str, str] = {
    f"test_image_decoder_decode_{fmt}": "ImageDecoder: no image codec among NUMPY's "
    "dependencies (numpy, onnx, networkx, anyio); decoding JPEG/PNG/TIFF/WebP needs Pillow"
    for fmt in ("bmp_rgb", "jpeg2k_rgb", "jpeg_bgr", "jpeg_grayscale", "jpeg_rgb",
                "png_rgb", "pnm_rgb", "tiff_rgb", "webp_rgb")
}

EXPECTED_FAILURES: dict[str, dict[str, str]] = {"TEMPLATE": TEMPLATE, "NUMPY": NUMPY}
