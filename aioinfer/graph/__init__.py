"""Device-neutral ONNX graph utilities: reading nodes and subgraphs (:mod:`.ir`), value types
(:mod:`.value_types`), input-shape specialisation (:mod:`.specialize`), and cutting a model
into acyclic device subgraphs (:mod:`.partition`, imported on its own).

Nothing here imports a plugin; a device's own graph passes live with its plugin (NUMPY's in
:mod:`aioinfer.plugins.numpy.passes`).
"""

from __future__ import annotations

from .ir import attr, captured_names, graph_free_names, has_subgraph, node_reads, subgraphs
from .specialize import has_dynamic_inputs, with_input_shapes
from .value_types import ValueTypes, tensor_type

__all__ = [
    "ValueTypes", "attr", "captured_names", "graph_free_names", "has_subgraph",
    "has_dynamic_inputs", "node_reads", "subgraphs", "tensor_type", "with_input_shapes",
]
