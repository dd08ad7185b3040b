"""The ORT device: onnxruntime's CPU execution provider as an aioinfer plugin
(``aioinfer[onnxruntime]``).

Importing this package imports ``onnxruntime``; ``aioinfer`` itself never does, so without
the extra nothing changes (the ``ORT`` device then fails to load with a PluginLoadError).
"""

from .plugin import OrtPlugin

__all__ = ["OrtPlugin"]
