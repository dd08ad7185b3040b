"""Test kits for aioinfer and its plugins.

- :mod:`aioinfer.testing.behaviour`: the plugin behaviour suite (io tensors, wait, callback,
  multithreading, chaining, cancellation, busy requests), run against any device.
- :mod:`aioinfer.testing.conformance`: the ONNX node test cases against an engine.
"""
