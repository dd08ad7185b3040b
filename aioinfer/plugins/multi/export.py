"""MULTI's ``export_model`` / ``import_model``: each device's own blob of the model.

The blob (:mod:`aioinfer.plugins.container`) holds the model, MULTI's config and, per device
in priority order, its worker count and its compiled model's ``export_model`` blob (or
nothing, for a device that cannot export: compiled again on import). AUTO does not export:
which devices serve changes while it starts up, and an import would have to choose again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ... import properties as P
from .. import container
from .dispatch import Lane, Lanes

if TYPE_CHECKING:
    from .compiled_model import MultiCompiledModel
    from .plugin import MultiPlugin

MAGIC = b"AIOINFER-MULTI01"
_KEYS = ("model", "lanes", "config")


def export_model(compiled: MultiCompiledModel) -> bytes:
    """``compiled`` as bytes (see the module doc)."""
    sections = container.Sections()
    model = sections.add(compiled.model.proto.SerializeToString())
    lanes = [{"device": lane.device, "workers": lane.workers,
              "blob": sections.add_part(lane.compiled)} for lane in compiled.lanes.lanes]
    return container.pack(MAGIC, compiled.device, {
        "model": model, "lanes": lanes, "config": container.settable(compiled.config)},
        sections)


def import_model(plugin: MultiPlugin, blob: Any, config: Mapping[str, Any]
                 ) -> MultiCompiledModel:
    """The compiled model ``blob`` holds, each device's part imported on it; ``config`` may
    only change ``PERF_COUNT``."""
    from .compiled_model import MultiCompiledModel
    from .plugin import device_config

    manifest, section = container.unpack(MAGIC, plugin.name, blob, _KEYS)
    stored = dict(manifest["config"])
    stored.update({k: v for k, v in config.items() if k == P.PERF_COUNT})
    props = plugin._config(stored)
    core = plugin.get_core()
    model = core.read_model(section(manifest["model"]))
    hint = props.get(P.PERFORMANCE_HINT)
    try:
        entries = [(str(e["device"]), max(1, int(e["workers"])), e["blob"])
                   for e in manifest["lanes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise container.refused(plugin.name, f"a device entry is malformed ({exc})") from exc
    lanes: list[Lane] = []
    try:
        for device, workers, where in entries:
            part_config = device_config(plugin, props, device, hint)
            part = (core.compile_model(model, device, part_config) if where is None
                    else core.import_model(section(where), device, part_config))
            lanes.append(Lane(device, part, workers))
    except BaseException:
        for lane in lanes:
            lane.compiled.release()
        raise
    if not lanes:
        raise container.refused(plugin.name, "it lists no device")
    return MultiCompiledModel(plugin, model, props, Lanes(lanes),
                              plugin._dispatchers[props.get(P.SCHEDULE_POLICY)])
