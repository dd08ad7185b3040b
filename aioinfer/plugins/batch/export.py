"""BATCH's ``export_model`` / ``import_model``: the batch-1 and the batch-N compiled models.

The blob (:mod:`aioinfer.plugins.container`) holds the model, BATCH's config, the device, the
batch size, why it runs unbatched (if it does) and the device's own ``export_model`` blobs of
its batch-1 model and, when it batches, of its batch-N model. An import skips the batchability
analysis, the probe that checks batched results against unbatched ones and both compiles; a
part whose device cannot export is compiled again (the batch-N one from the model made
batchable again, as the compile did).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ... import properties as P
from .. import container
from ..base import CompiledModel

if TYPE_CHECKING:
    from .compiled_model import BatchCompiledModel
    from .plugin import BatchPlugin

MAGIC = b"AIOINFER-BATCH01"
_KEYS = ("model", "config", "device", "batch", "reason", "single", "batched")


def export_model(compiled: BatchCompiledModel) -> bytes:
    """``compiled`` as bytes (see the module doc)."""
    sections = container.Sections()
    model = sections.add(compiled.model.proto.SerializeToString())
    batched = compiled.batched
    return container.pack(MAGIC, compiled.device, {
        "model": model, "config": container.settable(compiled.config),
        "device": compiled.target, "batch": compiled.batch,
        "reason": compiled.get_property(P.BATCH_UNBATCHED_REASON),
        "single": sections.add_part(compiled.single),
        "batched": None if batched is None else sections.add_part(batched),
        "has_batched": batched is not None}, sections)


def import_model(plugin: BatchPlugin, blob: Any, config: Mapping[str, Any]
                 ) -> BatchCompiledModel:
    """The compiled model ``blob`` holds; ``config`` may only change ``AUTO_BATCH_TIMEOUT``."""
    from .compiled_model import BatchCompiledModel
    from .plugin import batchability

    manifest, section = container.unpack(MAGIC, plugin.name, blob, _KEYS)
    stored = dict(manifest["config"])
    stored.update({k: v for k, v in config.items() if k == P.AUTO_BATCH_TIMEOUT})
    props = plugin._config(stored)
    device, _, device_config = plugin._target(props)
    try:
        batch, reason = int(manifest["batch"]), str(manifest["reason"])
        wanted = bool(manifest.get("has_batched", manifest["batched"] is not None))
    except (TypeError, ValueError) as exc:
        raise container.refused(plugin.name, f"its batch entry is malformed ({exc})") from exc
    if device != manifest["device"]:
        raise container.refused(plugin.name, f"its device {manifest['device']!r} is not the "
                                f"config's {device!r}")
    core = plugin.get_core()
    model = core.read_model(section(manifest["model"]))

    def part(where: Any, source: Any) -> CompiledModel:
        if where is None:
            return core.compile_model(source, device, device_config)
        return core.import_model(section(where), device, device_config)

    single = part(manifest["single"], model)
    batched: CompiledModel | None = None
    if wanted:
        try:
            source = model if manifest["batched"] is not None else batchability(model, batch)[0]
            if source is None:
                raise container.refused(plugin.name, "its model is no longer batchable")
            batched = part(manifest["batched"], source)
        except BaseException:
            single.release()
            raise
    return BatchCompiledModel(plugin, model, props, device, batched, single, batch, reason)
