"""OPENVINO's ``export_model`` / ``import_model``: OpenVINO's own compiled blob, with the model's
interface and the config beside it::

    MAGIC (16 bytes) | header length (uint32 LE) | header (JSON) | ONNX interface
    | padding to 64 | OpenVINO's ``export_model`` bytes

The header holds the CRC-32 of the whole blob (taken with that field blank; checked before
OpenVINO sees a byte of it, so a corrupt blob is refused, never parsed), the config compiled
with, the ``DEVICE_ID``, the OpenVINO version and where the two parts lie; the ONNX interface
is the model's inputs, outputs, opsets and metadata (no nodes, no weights: OpenVINO's blob
holds the compiled graph). On import OpenVINO reads its blob in place when it is given
writable memory (a mapped cache entry), else a copy. OpenVINO's format is its own; a blob from
another OpenVINO version is refused by name.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from ... import properties as P
from ...errors import InvalidModelError
from ...graph.ir import model_interface
from ...model import Model

if TYPE_CHECKING:
    from .compiled_model import OpenVinoCompiledModel
    from .plugin import OpenVinoPlugin

MAGIC = b"AIOINFER-OVEXP01"
_LENGTH = struct.Struct("<I")
_ALIGN = 64
_BLANK = b'"crc32": "--------"'


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        value = getattr(value, "value", value)  # enums by their value
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[str(key)] = value
    return out


def export_model(compiled: OpenVinoCompiledModel) -> bytes:
    """The blob of ``compiled`` (see the module docstring)."""
    import openvino as ov

    props = compiled.compile_props
    supported = props.supported()
    config = _plain({k: v for k, v in props.as_dict().items()
                     if supported.get(k) == "RW" and k != P.CACHE_DIR})
    engine_blob = compiled.engine.export_model()
    engine_bytes = engine_blob.getvalue() if hasattr(engine_blob, "getvalue") else engine_blob
    face = model_interface(compiled.model.proto).SerializeToString()
    header: dict[str, Any] = {"format": 1, "crc32": "--------", "openvino": ov.__version__,
                              "config": config,
                              "device_id": str(props.get(P.DEVICE_ID)),
                              "interface": [0, len(face)], "engine": [0, len(engine_bytes)]}
    size = len(MAGIC) + _LENGTH.size + len(json.dumps(header)) + 64
    header["interface"][0] = size
    header["engine"][0] = -(-(size + len(face)) // _ALIGN) * _ALIGN
    text = json.dumps(header).encode()
    text += b" " * (size - len(MAGIC) - _LENGTH.size - len(text))
    pad = b"\0" * (header["engine"][0] - size - len(face))
    parts = [MAGIC, _LENGTH.pack(len(text)), text, face, pad, bytes(engine_bytes)]
    crc = 0
    for part in parts:  # the whole blob, with its own checksum field still blank
        crc = zlib.crc32(part, crc)
    parts[2] = text.replace(_BLANK, f'"crc32": "{crc & 0xFFFFFFFF:08x}"'.encode(), 1)
    return b"".join(parts)


def import_model(plugin: OpenVinoPlugin, blob: Any, config: Mapping[str, Any]
                 ) -> OpenVinoCompiledModel:
    """A compiled model from :func:`export_model`'s blob; ``config`` overrides the stored one
    (``InvalidModelError`` naming what is wrong with a blob that is not one)."""
    import openvino as ov

    from .compiled_model import OpenVinoCompiledModel
    from .config import compile_config

    view = memoryview(blob).cast("B")
    head = len(MAGIC) + _LENGTH.size
    if len(view) < head or bytes(view[:len(MAGIC)]) != MAGIC:
        raise InvalidModelError(f"{plugin.name}: import_model: not an {plugin.name} export "
                                f"(expected a blob from export_model starting with {MAGIC!r})")
    (length,) = _LENGTH.unpack_from(view, len(MAGIC))
    try:
        header = json.loads(bytes(view[head:head + length]))
        at, size = (int(x) for x in header["interface"])
        engine_at, engine_size = (int(x) for x in header["engine"])
        if header["openvino"] != ov.__version__:
            raise ValueError(f"exported by OpenVINO {header['openvino']}, this is "
                             f"{ov.__version__}")
        if at + size > len(view) or engine_at + engine_size != len(view):
            raise ValueError(f"truncated ({len(view)} bytes)")
        crc = str(header["crc32"])
        text = bytes(view[head:head + length])
        blank = text.replace(f'"crc32": "{crc}"'.encode(), _BLANK, 1)
        found = zlib.crc32(view[head + length:], zlib.crc32(blank, zlib.crc32(view[:head])))
        if blank == text or f"{found & 0xFFFFFFFF:08x}" != crc:
            raise ValueError("checksum mismatch (truncated or corrupt)")
        proto = onnx.ModelProto()
        proto.ParseFromString(bytes(view[at:at + size]))
        stored = dict(header["config"])
        device_id = str(header["device_id"])
    except InvalidModelError:
        raise
    except Exception as exc:  # JSON, protobuf, a missing or mistyped field
        raise InvalidModelError(f"{plugin.name}: import_model: corrupt blob: {exc}") from exc
    props = plugin._config({**stored, P.DEVICE_ID: device_id, **config})
    engine_view = view[engine_at:]
    if engine_view.readonly:
        source: Any = bytes(engine_view)
    else:  # mapped or owned memory OpenVINO may read in place: kept alive with the model
        source = ov.Tensor(np.frombuffer(engine_view, np.uint8), shared_memory=True)
    supported = plugin.ov.get_property(str(props.get(P.DEVICE_ID)), P.SUPPORTED_PROPERTIES)
    try:
        engine = plugin.ov.import_model(source, str(props.get(P.DEVICE_ID)),
                                        compile_config(props, supported))
    except RuntimeError as exc:
        raise InvalidModelError(f"{plugin.name}: import_model: OpenVINO refused the blob: "
                                f"{str(exc).strip().splitlines()[-1:]}") from exc
    compiled = OpenVinoCompiledModel(plugin, Model(proto), props, engine)
    compiled.imported_from = source
    return compiled
