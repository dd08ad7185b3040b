"""``import aioinfer.onnxruntime as ort``: onnxruntime's Python API over aioinfer.

This module re-exports :mod:`aioinfer.ort` (the face lives there); it is not the ``ORT``
engine device (``aioinfer.plugins.ort``).
"""

from .ort import *  # noqa: F401,F403
from .ort import __all__, get_version_string  # noqa: F401

__version__ = get_version_string()
