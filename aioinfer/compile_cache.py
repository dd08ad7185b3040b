"""``CACHE_DIR`` on the Core: compiled models kept on disk, as OpenVINO's model cache.

Set for every compile with ``core.set_property({"CACHE_DIR": path})`` or for one with
``core.compile_model(model, device, {"CACHE_DIR": path})`` (``""`` turns it off). Every compiled
model the Core returns has the read-only ``LOADED_FROM_CACHE``.

Entries are those of the sessions' ``cache_dir`` (:mod:`aioinfer.ort.cache`, one cache, one
format): data only (no pickle), written to a temporary file and renamed into place, checked on
load (magic, key, version, size, checksum); a missing, truncated or corrupt entry is compiled
again and rewritten, never trusted. The key (:func:`aioinfer.ort.cache.key_of`) covers the
model (a path by real path, size and mtime, with its external data files recorded in the
entry; bytes, a ModelProto or a read :class:`~aioinfer.Model` by their content), the device
string, the compile config, every read-write property of the device's plugin (for the ``CPU``
proxy, of its primary too), the Core's custom operations, the aioinfer version and code.

A device that exports (``export_model`` / ``import_model``: NUMPY, TEMPLATE, OPENVINO,
``CPU`` over them, and HETERO, MULTI and BATCH, whose keys also cover their listed
devices' properties) is cached here, and a model given as a path is not even read on a hit.
A device that cannot export but has a ``CACHE_DIR`` property of its own gets the folder and
caches natively; any other (AUTO, ORT) compiles as without a cache
(``LOADED_FROM_CACHE`` False). The compiles a virtual device makes on its targets (through
``get_core()``) are not cached on their own: the cache is of the compile the caller asked for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import properties as P
from .errors import InvalidPropertyValueError
from .properties import Property

if TYPE_CHECKING:
    from .core import Core
    from .plugins.base import CompiledModel

LABEL = "CACHE_DIR"


def check_dir(value: Any) -> str:
    """A ``CACHE_DIR`` value as a path string (``""``: no cache); a value that cannot name a
    folder (not a string or path, a NUL in it, an existing file) is an
    :class:`~aioinfer.errors.InvalidPropertyValueError` naming the property. A folder that is
    missing is made on the first write; one that cannot be written costs a warning then."""
    if value is None:
        return ""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidPropertyValueError(
            f"{P.CACHE_DIR}: expected a folder path (str or os.PathLike, '' for none), got "
            f"{type(value).__name__} {value!r}", key=P.CACHE_DIR)
    path = os.fspath(value)
    if not isinstance(path, str):
        raise InvalidPropertyValueError(
            f"{P.CACHE_DIR}: expected a str path, got bytes {path!r}", key=P.CACHE_DIR)
    if "\0" in path:
        raise InvalidPropertyValueError(f"{P.CACHE_DIR}: the path {path!r} holds a NUL byte",
                                        key=P.CACHE_DIR)
    if path and os.path.exists(path) and not os.path.isdir(path):
        raise InvalidPropertyValueError(
            f"{P.CACHE_DIR}: {path!r} exists and is not a folder", key=P.CACHE_DIR)
    return path


def mark(compiled: CompiledModel, loaded: bool) -> CompiledModel:
    """Give ``compiled`` the read-only ``LOADED_FROM_CACHE`` (a device that reports its own
    keeps it)."""
    compiled.properties.add(Property(P.LOADED_FROM_CACHE, "imported from CACHE_DIR, not "
                                     "compiled", mutable=False, default=bool(loaded)))
    return compiled


def compile_model(core: Core, model: Any, device: str, config: Mapping[str, Any] | None,
                  outer: bool = True) -> CompiledModel:
    """``Core.compile_model`` with ``CACHE_DIR`` (see the module docstring); ``outer`` is
    False for a virtual device's compiles on its targets (the Core's folder is not used)."""
    rest = dict(config or {})
    if P.CACHE_DIR in rest:
        directory = check_dir(rest.pop(P.CACHE_DIR))
    else:
        directory = core._core_properties.get(P.CACHE_DIR, "") if outer else ""
    if not directory:
        return mark(core._compile(model, device, rest), False)
    from .ort import cache

    if not cache.exports(core, device):
        if P.CACHE_DIR in core.get_property(device, P.SUPPORTED_PROPERTIES):
            rest[P.CACHE_DIR] = directory  # the engine's own cache
        return mark(core._compile(model, device, rest), False)
    source = os.fspath(model) if isinstance(model, os.PathLike) else model
    parts = {"device": str(device), "config": rest, "plugins": device_state(core, device),
             "extensions": extension_state(core)}
    try:
        key = cache.key_of(source, parts)
    except (OSError, TypeError):  # no such file, not a model: the compile names the error
        return mark(core._compile(source, device, rest), False)
    path_source = source if isinstance(source, str) else None
    entry = cache.CacheEntry(directory, key, path_source, label=LABEL)
    hit = entry.load(core)
    if hit is not None:
        return mark(hit[0], True)
    compiled = core._compile(source, device, rest)
    entry.store(compiled, str(device), rest)
    return mark(compiled, False)


def device_state(core: Core, device: str) -> dict[str, Any]:
    """Every read-write property (but ``CACHE_DIR``) of the plugin ``device`` names and, for
    the ``CPU`` proxy, of the devices it stands for: what a ``set_property`` on them changes
    about a compile."""
    plugin, merged = core._target(device, None)
    plugins = {plugin.name: plugin}
    chain = getattr(plugin, "chain", None)
    names: list[str] = list(chain(merged.get(P.DEVICE_ID))) if chain is not None else []
    key = plugin.targets_property
    targets = (merged.get(key) or plugin.get_property(key)) if key else None
    if targets:  # a virtual device (HETERO:A,B): its devices' settings shape its parts
        names += str(targets).split(",")
    for name in names:
        target, _ = core._target(name, None)
        plugins.setdefault(target.name, target)
    state: dict[str, Any] = {}
    for name, each in plugins.items():
        supported = each.get_property(P.SUPPORTED_PROPERTIES)
        state[name] = {k: each.get_property(k) for k, rw in sorted(supported.items())
                       if rw == "RW" and k != P.CACHE_DIR}
    return state


def extension_state(core: Core) -> list[str]:
    """The Core's custom operations, each with its module file's size and mtime (an edited
    extension never reads an entry its older code compiled)."""
    import inspect

    names = []
    for key, cls in sorted(core._extensions.ops.items(), key=lambda item: str(item[0])):
        try:
            stat = os.stat(inspect.getfile(cls))
            where = f"{stat.st_size}:{stat.st_mtime_ns}"
        except (OSError, TypeError):
            where = "?"
        names.append(f"{key}={cls.__module__}.{cls.__qualname__}@{where}")
    return names
