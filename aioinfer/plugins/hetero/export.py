"""HETERO's ``export_model`` / ``import_model``: the cut and each device's own blob.

An import skips what a HETERO compile spends its time on: asking every device's
``query_model`` for the affinities and compiling each subgraph. The blob holds the model, the
node -> device affinities the compile settled on, HETERO's config, and per subgraph its
device and that device's ``export_model`` blob (or nothing, for a device that cannot export:
that subgraph is compiled again on import). The import cuts the model along the stored
affinities (:func:`aioinfer.graph.partition.partition` is a function of the model and the
affinities alone, so the subgraphs are the exported ones; their count and devices are checked)
and imports each subgraph's blob on its device::

    MAGIC (16 bytes) | manifest length (uint32 LE) | manifest (JSON) | sections

The manifest (JSON) holds the CRC-32 of the whole blob (taken with that field blank) and the
length of the sections (checked on import: a truncated or corrupt blob is refused, never
run), where the model's ONNX bytes and each subgraph's blob lie, the affinities and the
config. Nothing is pickled or executed: the device blobs are checked by their own plugins'
imports.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import TYPE_CHECKING, Any

from ...errors import InvalidModelError, NotSupportedError
from ...graph.partition import partition
from ..base import CompiledModel

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .compiled_model import HeteroCompiledModel
    from .plugin import HeteroPlugin

MAGIC = b"AIOINFER-HETERO1"
FORMAT = 1
_LENGTH = struct.Struct("<I")
_BLANK_VALUE = "--------"
_BLANK = b'"crc32": "--------"'  # the CRC-32 of the whole blob is taken with this in place


def export_model(compiled: HeteroCompiledModel) -> bytes:
    """``compiled`` as bytes (see the module doc); :class:`NotSupportedError` for a config
    value that is not JSON data (a remote context in ``DEVICE_PROPERTIES``, say)."""
    sections: list[bytes] = []

    def section(data: bytes) -> list[int]:
        start = sum(len(s) for s in sections)
        sections.append(data)
        return [start, len(data)]

    model = section(compiled.model.proto.SerializeToString())
    subgraphs = []
    for sub, part in zip(compiled.partition.subgraphs, compiled.compiled, strict=True):
        try:
            blob = part.export_model()
        except NotSupportedError:
            blob = None  # compiled again on import
        subgraphs.append({"device": sub.device, "nodes": len(sub.nodes),
                          "blob": None if blob is None else section(bytes(blob))})
    payload = b"".join(sections)
    manifest = {
        "format": FORMAT,
        "crc32": _BLANK_VALUE,
        "length": len(payload),
        "model": model,
        "affinities": compiled.partition.affinities,
        "subgraphs": subgraphs,
        "config": {key: value for key, value in compiled.config.as_dict().items()
                   if compiled.config.supported().get(key) == "RW"},
    }
    try:
        text = json.dumps(manifest, sort_keys=True).encode()
    except TypeError as exc:
        raise NotSupportedError(f"{compiled.device}: export_model: a config value is not "
                                f"JSON data ({exc})", device=compiled.device) from exc
    blob = MAGIC + _LENGTH.pack(len(text)) + text + payload
    return blob.replace(_BLANK, _BLANK.replace(_BLANK_VALUE.encode(),
                                               b"%08x" % zlib.crc32(blob)), 1)


def import_model(plugin: HeteroPlugin, blob: Any, config: Mapping[str, Any]
                 ) -> HeteroCompiledModel:
    """The compiled model ``blob`` holds, its subgraphs imported on their devices; ``config``
    may only change ``PERF_COUNT`` (the rest is the exported model's)."""
    from .compiled_model import HeteroCompiledModel, SubgraphCompileError

    data = memoryview(bytes(blob) if not isinstance(blob, (bytes, bytearray)) else blob)
    manifest, payload = _read(plugin, data)
    stored = dict(manifest["config"])
    stored.update({k: v for k, v in config.items() if k == "PERF_COUNT"})
    props = plugin._config(stored)
    core = plugin.get_core()
    model = core.read_model(bytes(_cut(plugin, payload, manifest["model"])))
    affinities = {str(k): str(v) for k, v in manifest["affinities"].items()}
    if set(affinities) != {node.name for node in model.proto.graph.node}:
        raise _invalid(plugin, "its affinities do not cover the model's nodes")
    cut = partition(model, affinities)
    entries = manifest["subgraphs"]
    if [(s.device, len(s.nodes)) for s in cut.subgraphs] != [
            (e["device"], e["nodes"]) for e in entries]:
        raise _invalid(plugin, "its subgraphs are not the model's cut along its affinities")
    compiled: list[CompiledModel] = []
    try:
        for sub, entry in zip(cut.subgraphs, entries, strict=True):
            device_config = plugin.device_config(props, sub.device)
            try:
                if entry["blob"] is None:
                    compiled.append(core.compile_model(cut.submodel(sub.index), sub.device,
                                                       device_config))
                else:
                    part = _cut(plugin, payload, entry["blob"])
                    compiled.append(core.import_model(bytes(part), sub.device, device_config))
            except Exception as exc:
                raise SubgraphCompileError(
                    f"{plugin.name}: {sub.device} failed to import subgraph {sub.index}: "
                    f"{exc}", device=sub.device, subgraph=sub.index) from exc
    except BaseException:
        for done in compiled:
            done.release()
        raise
    return HeteroCompiledModel(plugin, model, props, cut, compiled)


def _read(plugin: HeteroPlugin, data: memoryview) -> tuple[dict[str, Any], memoryview]:
    head = len(MAGIC) + _LENGTH.size
    if len(data) < head or bytes(data[: len(MAGIC)]) != MAGIC:
        raise _invalid(plugin, "it is not a HETERO export (wrong magic)")
    (length,) = _LENGTH.unpack(data[len(MAGIC):head])
    try:
        text = bytes(data[head: head + length])
        manifest = json.loads(text)
        payload = data[head + length:]
        crc = str(manifest["crc32"])
        blanked = text.replace(f'"crc32": "{crc}"'.encode(), _BLANK, 1)
        whole = zlib.crc32(payload, zlib.crc32(blanked, zlib.crc32(bytes(data[:head]))))
        ok = (manifest["format"] == FORMAT and len(payload) == manifest["length"]
              and len(crc) == 8 and whole == int(crc, 16))
        manifest["model"], manifest["affinities"], manifest["subgraphs"], manifest["config"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _invalid(plugin, f"its manifest is unreadable ({exc})") from exc
    if not ok:
        raise _invalid(plugin, "it is truncated or corrupt (length or CRC-32 mismatch)")
    return manifest, payload


def _cut(plugin: HeteroPlugin, payload: memoryview, where: Any) -> memoryview:
    try:
        start, length = (int(v) for v in where)
    except (TypeError, ValueError) as exc:
        raise _invalid(plugin, f"a section is malformed ({where!r})") from exc
    if start < 0 or length < 0 or start + length > len(payload):
        raise _invalid(plugin, f"a section lies outside the blob ({where!r})")
    return payload[start: start + length]


def _invalid(plugin: HeteroPlugin, why: str) -> InvalidModelError:
    return InvalidModelError(f"{plugin.name}: import_model: the blob is refused: {why}")

