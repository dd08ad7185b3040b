"""EP context models: a compiled model saved as an ONNX model of ``EPContext`` nodes.

With the session config entry ``ep.context_enable`` = ``1`` a session writes, after compiling,
an ONNX model whose single node is ``com.microsoft.EPContext`` with onnxruntime's attributes
(``docs/execution-providers/EP-Context-Design.md``): ``main_context`` 1, ``embed_mode``,
``ep_cache_context`` (the device's ``export_model`` bytes when ``embed_mode`` is 1, else the
name of the ``.bin`` file written beside the model), ``source`` (the provider),
``ep_sdk_version`` (the aioinfer version), ``hardware_architecture`` (``aioinfer:<device>``),
``partition_name``, ``onnx_model_filename`` and ``notes``. Its inputs and outputs are the
model's. ``ep.context_file_path`` names the file (default ``<model>_ctx.onnx`` beside the
model; required for a model given as bytes), ``ep.context_embed_mode`` the mode (default
``0``, onnxruntime's current default; set it explicitly, the attribute's default is 1).

A session given such a model imports the blob on its device (``Core.import_model``), without
compiling the graph. A path read from the model must be relative and stay inside the model's
folder (onnxruntime's ``ep_context_data_utils.h`` rule); anything else is refused.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import onnx
from onnx import helper

from ..errors import InvalidModelError, NotSupportedError
from ..model import Model

if TYPE_CHECKING:
    from ..core import Core
    from ..plugins.base import CompiledModel
    from .options import SessionOptions
    from .providers import ProviderChoice

DOMAIN = "com.microsoft"
OP = "EPContext"
ARCH_PREFIX = "aioinfer:"


def is_context_model(model: Model) -> bool:
    return any(n.op_type == OP and n.domain == DOMAIN for n in model.proto.graph.node)


def enabled(options: SessionOptions) -> bool:
    return options.config_entries().get("ep.context_enable", "0") == "1"


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def inside(folder: str, relative: str) -> str:
    """``relative`` joined to ``folder``, refused unless it is relative and stays inside."""
    if not relative or os.path.isabs(relative) or relative.startswith(("/", "\\")):
        raise InvalidModelError(f"EPContext: ep_cache_context {relative!r} must be a relative "
                                "path inside the model's folder")
    base = os.path.realpath(folder)
    full = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, full]) != base:
        raise InvalidModelError(f"EPContext: ep_cache_context {relative!r} leaves the model's "
                                f"folder {base}")
    return full


def load(core: Core, model: Model, choices: Sequence[ProviderChoice]
         ) -> tuple[CompiledModel, str]:
    """Import the compiled model an EPContext model holds."""
    from .cache import import_model, map_blob

    nodes = [n for n in model.proto.graph.node if n.op_type == OP and n.domain == DOMAIN]
    mains = [n for n in nodes if int(_attrs(n).get("main_context", 1)) == 1]
    if len(nodes) != len(model.proto.graph.node) or len(mains) != 1:
        raise InvalidModelError("EPContext: aioinfer loads models made of exactly one main "
                                "EPContext node (the ones it writes)", path=model.path)
    attrs = _attrs(mains[0])
    source = attrs.get("source", b"")
    source = source.decode() if isinstance(source, bytes) else str(source)
    names = {c.name for c in choices}
    if source and source not in names:
        raise InvalidModelError(f"EPContext: the node was made by {source!r}; add it to the "
                                f"session's providers (they are {sorted(names)})",
                                path=model.path)
    arch = attrs.get("hardware_architecture", b"")
    arch = arch.decode() if isinstance(arch, bytes) else str(arch)
    if not arch.startswith(ARCH_PREFIX):
        raise InvalidModelError(f"EPContext: hardware_architecture {arch!r} is not an aioinfer "
                                "device ('aioinfer:<device>')", path=model.path)
    device = arch[len(ARCH_PREFIX):]
    payload = attrs.get("ep_cache_context", b"")
    blob: bytes | memoryview
    if int(attrs.get("embed_mode", 1)) == 1:
        blob = payload if isinstance(payload, bytes) else str(payload).encode("latin-1")
    else:
        if model.path is None:
            raise InvalidModelError("EPContext: embed_mode 0 needs the model loaded from a file"
                                    " (the blob's path is relative to it)")
        name = payload.decode() if isinstance(payload, bytes) else str(payload)
        path = inside(os.path.dirname(os.path.abspath(model.path)), name)
        try:
            with open(path, "rb") as f:  # mapped: the import keeps views of its pages
                blob = map_blob(f, os.fstat(f.fileno()).st_size)
        except (OSError, ValueError) as exc:
            raise InvalidModelError(f"EPContext: cannot read {path}: {exc}",
                                    path=model.path) from exc

    return import_model(core, blob, device), device


def _context_path(source: Any, options: SessionOptions) -> str:
    entries = options.config_entries()
    path = entries.get("ep.context_file_path", "")
    if path:
        return path
    if isinstance(source, (str, os.PathLike)):
        stem, _ = os.path.splitext(os.fspath(source))
        return f"{stem}_ctx.onnx"
    raise InvalidModelError("ep.context_enable: a model given as bytes needs "
                            "ep.context_file_path (where to write the EPContext model)")


def _atomic_write(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(compiled: CompiledModel, device: str, source: Any, options: SessionOptions,
          choices: Sequence[ProviderChoice]) -> str:
    """Write the EPContext model (and, in embed mode 0, its blob); return its path."""
    from .. import __version__

    try:
        blob = compiled.export_model()
    except NotSupportedError as exc:
        raise NotSupportedError(f"ep.context_enable: device {device} cannot export its "
                                f"compiled model, so no EPContext model can be written ({exc})",
                                device=device) from exc
    path = _context_path(source, options)
    mode = options.config_entries().get("ep.context_embed_mode", "0")
    if mode not in ("0", "1"):
        raise InvalidModelError(f"ep.context_embed_mode must be '0' or '1', got {mode!r}")
    graph = compiled.model.proto.graph
    init = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init]
    payload: bytes | str = blob
    if mode == "0":
        stem = os.path.splitext(os.path.basename(path))[0]
        bin_name = f"{stem}_{device.replace(':', '_').replace(',', '_')}.bin"
        _atomic_write(os.path.join(os.path.dirname(os.path.abspath(path)), bin_name), blob)
        payload = bin_name
    prefix = options.config_entries().get("ep.context_node_name_prefix", "")
    node = helper.make_node(
        OP, [i.name for i in inputs], [o.name for o in graph.output],
        name=f"{prefix}EPContext_0", domain=DOMAIN, main_context=1, embed_mode=int(mode),
        ep_cache_context=payload, source=choices[0].name, ep_sdk_version=__version__,
        # where the blob imports: the device that compiled it (the CPU proxy's primary, say)
        hardware_architecture=f"{ARCH_PREFIX}{compiled.device}",
        partition_name=f"{graph.name}_0",
        onnx_model_filename=os.path.basename(os.fspath(source))
        if isinstance(source, (str, os.PathLike)) else "",
        notes="written by aioinfer.ort")
    ctx_graph = helper.make_graph([node], f"{graph.name}_ctx", list(inputs), list(graph.output))
    opsets = [helper.make_opsetid("", compiled.model.opsets.get("", 17)),
              helper.make_opsetid(DOMAIN, 1)]
    proto = helper.make_model(ctx_graph, opset_imports=opsets, producer_name="aioinfer.ort")
    proto.ir_version = compiled.model.proto.ir_version
    _atomic_write(path, proto.SerializeToString())
    return path
