"""The OPENVINO device: OpenVINO's runtime as an aioinfer plugin (``aioinfer[openvino]``).

Importing this package imports ``openvino``; ``aioinfer`` itself never does, so without the
extra nothing changes (the ``OPENVINO`` device then fails to load with a PluginLoadError).
"""

from .plugin import OpenVinoPlugin

__all__ = ["OpenVinoPlugin"]
