"""HETERO's ``export_model`` / ``import_model``: the cut and each device's own blob.

An import skips what a HETERO compile spends its time on: asking every device's
``query_model`` for the affinities and compiling each subgraph. The blob
(:mod:`aioinfer.plugins.container`) holds the model, the node -> device affinities the compile
settled on, HETERO's config, and per subgraph its device and that device's ``export_model``
blob (or nothing, for a device that cannot export: that subgraph is compiled again on
import). The import cuts the model along the stored affinities
(:func:`aioinfer.graph.partition.partition` is a function of the model and the affinities
alone, so the subgraphs are the exported ones; their count and devices are checked) and
imports each subgraph's blob on its device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...graph.partition import partition
from .. import container
from ..base import CompiledModel

if TYPE_CHECKING:
    from .compiled_model import HeteroCompiledModel
    from .plugin import HeteroPlugin

MAGIC = b"AIOINFER-HETERO1"
_KEYS = ("model", "affinities", "subgraphs", "config")


def export_model(compiled: HeteroCompiledModel) -> bytes:
    """``compiled`` as bytes (see the module doc)."""
    sections = container.Sections()
    model = sections.add(compiled.model.proto.SerializeToString())
    subgraphs = [{"device": sub.device, "nodes": len(sub.nodes),
                  "blob": sections.add_part(part)}
                 for sub, part in zip(compiled.partition.subgraphs, compiled.compiled,
                                      strict=True)]
    return container.pack(MAGIC, compiled.device, {
        "model": model, "affinities": compiled.partition.affinities, "subgraphs": subgraphs,
        "config": container.settable(compiled.config)}, sections)


def import_model(plugin: HeteroPlugin, blob: Any, config: Mapping[str, Any]
                 ) -> HeteroCompiledModel:
    """The compiled model ``blob`` holds, its subgraphs imported on their devices; ``config``
    may only change ``PERF_COUNT`` (the rest is the exported model's)."""
    from .compiled_model import HeteroCompiledModel, SubgraphCompileError

    manifest, section = container.unpack(MAGIC, plugin.name, blob, _KEYS)
    stored = dict(manifest["config"])
    stored.update({k: v for k, v in config.items() if k == "PERF_COUNT"})
    props = plugin._config(stored)
    core = plugin.get_core()
    model = core.read_model(section(manifest["model"]))
    affinities = {str(k): str(v) for k, v in manifest["affinities"].items()}
    if set(affinities) != {node.name for node in model.proto.graph.node}:
        raise container.refused(plugin.name, "its affinities do not cover the model's nodes")
    cut = partition(model, affinities)
    entries = manifest["subgraphs"]
    if [(s.device, len(s.nodes)) for s in cut.subgraphs] != [
            (e["device"], e["nodes"]) for e in entries]:
        raise container.refused(plugin.name,
                                "its subgraphs are not the model's cut along its affinities")
    compiled: list[CompiledModel] = []
    try:
        for sub, entry in zip(cut.subgraphs, entries, strict=True):
            device_config = plugin.device_config(props, sub.device)
            try:
                if entry["blob"] is None:
                    compiled.append(core.compile_model(cut.submodel(sub.index), sub.device,
                                                       device_config))
                else:
                    compiled.append(core.import_model(section(entry["blob"]), sub.device,
                                                      device_config))
            except Exception as exc:
                raise SubgraphCompileError(
                    f"{plugin.name}: {sub.device} failed to import subgraph {sub.index}: "
                    f"{exc}", device=sub.device, subgraph=sub.index) from exc
    except BaseException:
        for done in compiled:
            done.release()
        raise
    return HeteroCompiledModel(plugin, model, props, cut, compiled)
