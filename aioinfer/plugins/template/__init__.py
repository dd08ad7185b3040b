"""The TEMPLATE plugin: reference semantics for every ONNX op, and the worked example of the
plugin protocol for plugin authors.

It runs models with ``onnx.reference.ReferenceEvaluator``, so it is slow but as close to the
ONNX specification as the onnx package itself. Read the modules in this order:

1. :mod:`.plugin` -- the device: properties, ``query_model``, ``compile_model``,
   ``import_model`` (OpenVINO: ``src/plugins/template/src/plugin.cpp``).
2. :mod:`.compiled_model` -- one compiled model: its executor (streams), its own properties,
   ``create_sync_request``, ``export_model`` (OpenVINO: ``compiled_model.cpp``).
3. :mod:`.infer_request` -- one request: its pipeline of stages ``preprocess`` -> ``infer`` ->
   ``postprocess`` and its profiling info (OpenVINO: ``sync_infer_request.cpp``; the shared
   :class:`aioinfer.InferRequest` plays ``async_infer_request.cpp`` for every plugin).
4. :mod:`.support` -- which nodes the reference evaluator can run, and the evaluator factory.
5. :mod:`.config` -- the property table; :mod:`.blob` -- the export format (ONNX bytes +
   compile config).
"""

from .plugin import TemplatePlugin

__all__ = ["TemplatePlugin"]
