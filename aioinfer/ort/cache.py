"""``cache_dir``: compiled models kept on disk, keyed like OpenVINO's model cache.

The key (blake2b) covers the model (a file by its real path, size and mtime, as OpenVINO's
``compute_hash`` does, and the entry records its external data files' sizes and mtimes: a
changed one makes the entry stale; bytes and ModelProtos by their content), the providers with every
option, the compile-affecting SessionOptions and config entries, the aioinfer version and the
aioinfer code itself (each module's size and mtime, so an edited source tree never reads an
entry an older tree wrote). An entry is::

    MAGIC (16 bytes) | header length (uint32 LE) | header (JSON) | padding to 64 | blob

with the header holding the key, the version, the device and config compiled for, and the
blob's size and CRC-32. The blob is the device's own ``export_model`` bytes (data only: no
pickle or other code-executing format), mapped copy-on-write (page-aligned, the blob 64-aligned
in it) and handed to the device's ``import_model``, which for NUMPY makes its arrays views of
the mapped pages (:mod:`aioinfer.plugins.numpy.export`): a warm load reads no model, runs one
checksum (the device's own where its import checks one, else this header's) and no graph work.
The mapping assumes what this module guarantees: entries are replaced by rename, never
rewritten in place (a file truncated in place under a live session would fault its reads).

Never trusted: a missing, truncated, corrupt or half-written entry, or one whose key, version or
checksum does not match, is ignored with a warning and rebuilt. Entries are written to a
temporary file beside them and renamed into place (``os.replace``, atomic), so processes
compiling one model into one folder at once each read either nothing or a whole entry. A
folder that cannot be written (read-only, full) costs a warning; the model still compiles.

An entry is imported on the device that compiled it (``CPU`` compiles on the proxy's primary,
OPENVINO, which exports OpenVINO's blob). A device that cannot export (``NotSupportedError``:
HETERO, MULTI, ...) keeps no entry here; one that cannot export but has a ``CACHE_DIR``
property gets the directory and caches natively (:func:`exports`,
:func:`aioinfer.ort.build.compile_for`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import mmap
import os
import pathlib
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import onnx

from ..errors import AioInferError, NotSupportedError

if TYPE_CHECKING:
    from ..core import Core
    from ..plugins.base import CompiledModel
    from .options import SessionOptions
    from .providers import ProviderChoice

MAGIC = b"AIOINFER-CACHE02"
_LENGTH = struct.Struct("<I")
_ALIGN = 64
_MAX_HEADER = 1 << 20


def fingerprint(source: Any) -> dict[str, Any]:
    """What identifies the model: a file by (real path, size, mtime), else its bytes' hash."""
    if isinstance(source, (str, os.PathLike)):
        path = os.path.realpath(os.fspath(source))
        stat = os.stat(path)
        return {"path": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    proto = getattr(source, "proto", None)  # an aioinfer Model: keyed by its graph's bytes
    if isinstance(proto, onnx.ModelProto):
        source = proto
    if isinstance(source, onnx.ModelProto):
        source = source.SerializeToString()
    if isinstance(source, (bytes, bytearray, memoryview)):
        return {"blake2b": hashlib.blake2b(bytes(source), digest_size=20).hexdigest()}
    raise TypeError(f"cache_dir: cannot key a model given as {type(source).__name__}")


@functools.cache
def code_fingerprint() -> str:
    """A digest of the aioinfer modules' (path, size, mtime): changes with any edit."""
    root = pathlib.Path(__file__).resolve().parent.parent
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, bool, str)) or value is None:
        return value
    return str(value)


def key_of(source: Any, parts: dict[str, Any]) -> str:
    """The entry key of ``source`` (:func:`fingerprint`) compiled as ``parts`` say (JSON-able:
    device, config, options...), with the aioinfer version and :func:`code_fingerprint`."""
    from .. import __version__

    whole = {"model": fingerprint(source), **parts, "aioinfer": __version__,
             "code": code_fingerprint()}
    text = json.dumps(_plain(whole), sort_keys=True).encode()
    return hashlib.blake2b(text, digest_size=20).hexdigest()


def cache_key(source: Any, choices: Sequence[ProviderChoice], options: SessionOptions) -> str:
    """The key of a session's compile: the providers with their options and every
    compile-affecting SessionOptions field and config entry."""
    return key_of(source, {
        "providers": [[c.name, c.device, c.options] for c in choices],
        "session": {"intra": options.intra_op_num_threads, "inter": options.inter_op_num_threads,
                    "mode": int(options.execution_mode), "profiling": options.enable_profiling,
                    "level": int(options.graph_optimization_level),
                    "config": options.config_entries()},
    })


def map_blob(f: Any, size: int) -> memoryview:
    """The ``size`` bytes after ``f``'s position, mapped copy-on-write (pages come from the
    page cache, no copy; the arrays NUMPY makes of them are writable views). Entries are only
    ever replaced by rename, never rewritten in place, so the mapped file stays whole.
    ``ValueError`` if the file does not hold exactly that many bytes more."""
    at = f.tell()
    total = os.fstat(f.fileno()).st_size
    if total - at != size:
        raise ValueError(f"truncated or overlong blob ({total - at} bytes, the header says "
                         f"{size})")
    if size == 0:
        return memoryview(b"")
    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # from 0: page-aligned
    return memoryview(mapped)[at:]


def checksum(data: Any) -> str:
    """CRC-32 of ``data`` (detects truncation and corruption; the format, not the checksum,
    is what keeps a crafted entry from running code)."""
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


class CacheEntry:
    """One cache file: load it (verified) or store a compiled model into it."""

    def __init__(self, directory: str, key: str, source: Any = None,
                 label: str = "cache_dir") -> None:
        self.label = label  # what the warnings name: the session option or Core's CACHE_DIR
        self.directory = directory
        self.key = key
        self.path = os.path.join(directory, f"{key}.blob")
        self.source = source  # a model path: its external data files are checked too

    def load(self, core: Core) -> tuple[CompiledModel, str, dict[str, Any]] | None:
        """The compiled model of a valid entry (imported on its device), else ``None``."""
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below, before the import
        except (FileNotFoundError, NotADirectoryError):
            return None  # no entry (yet): compiled, and written if the folder can be
        except OSError as exc:
            self._warn(f"cannot read it ({exc})")
            return None
        try:
            with f:
                header = read_header(f, self.key)
                changed = _changed_external_data(self.source, header.get("external", []))
                if changed:
                    raise ValueError(f"the model's external data {changed} changed since")
                blob = map_blob(f, header["blob_size"])
            device, config = header["device"], header["config"]
            target = header.get("compiled_on", device)
            if not all(isinstance(d, str) for d in (device, target)) or not isinstance(
                    config, dict):
                raise ValueError("corrupt header (device, config)")
            # imported where it was compiled (the CPU proxy's primary, say); its blob holds
            # the config it was compiled with
            plugin, merged = core._target(target, None)
            # a device whose import checks its blob's own checksum is not made to read it twice
            if not getattr(plugin, "verifies_imports", False) and (
                    checksum(blob) != header.get("blob_crc32")):
                raise ValueError("blob checksum mismatch (corrupt)")
            compiled = plugin.import_model(blob, merged)  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError, OSError, AioInferError) as exc:
            self._warn(str(exc))
            return None
        return compiled, device, config

    def _warn(self, why: str) -> None:
        warnings.warn(f"{self.label}: ignoring cache entry {self.path}: {why}; compiling again",
                      RuntimeWarning, stacklevel=4)

    def store(self, compiled: CompiledModel, device: str, config: dict[str, Any]) -> str:
        """Write the compiled model's export atomically; returns what happened. A folder that
        cannot be written costs a warning, never the compiled model."""
        try:
            blob = compiled.export_model()
        except NotSupportedError:
            return f"{self.label}: {device} cannot export compiled models; no entry written"
        head = encode_header(self.key, device, _plain(config), blob, compiled.device,
                             external_data(self.source))
        tmp = None
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".blob")
            with os.fdopen(fd, "wb") as f:
                f.write(head)
                f.write(blob)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            note = f"{self.label}: cannot write {self.path} ({exc}); the model is not cached"
            warnings.warn(note, RuntimeWarning, stacklevel=3)
            return note
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        return f"{self.label}: wrote {self.path} ({len(head) + len(blob)} bytes)"


def exports(core: Core, device: str) -> bool:
    """Whether a model compiled for ``device`` can be exported and imported (its plugin, or the
    CPU proxy's primary, implements ``import_model``): then this cache keeps it, and the
    engine's own cache is not asked to keep a second copy."""
    from ..plugins.base import Plugin

    try:
        plugin, _ = core._target(device, None)
        chain = getattr(plugin, "chain", None)
        if chain is not None:  # the CPU proxy: what its primary does
            plugin, _ = core._target(chain()[0], None)
    except AioInferError:
        return False
    return type(plugin).import_model is not Plugin.import_model


def import_model(core: Core, blob: Any, device: str, config: dict[str, Any] | None = None
                 ) -> CompiledModel:
    """``Core.import_model`` (done through the Core's device parser, so that this works with
    any Core of this version)."""
    plugin, merged = core._target(device, config)
    return plugin.import_model(blob, merged)


def external_data(source: Any) -> list[list[Any]]:
    """(location, size, mtime) of each external data file a model file names (the key covers
    the model file alone; an entry also records these and is stale when one changes)."""
    if not isinstance(source, (str, os.PathLike)):
        return []
    try:
        proto = onnx.load(os.fspath(source), load_external_data=False)
    except Exception:  # noqa: BLE001 - compiled already; an unreadable file has none here
        return []
    folder = os.path.dirname(os.path.realpath(os.fspath(source)))
    found: dict[str, list[Any]] = {}
    for tensor in _tensors(proto.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if location and location not in found:
            try:
                stat = os.stat(os.path.join(folder, location))
            except OSError:
                continue
            found[location] = [location, stat.st_size, stat.st_mtime_ns]
    return list(found.values())


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """The graph's initializers and tensor attributes, subgraphs' included."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)


def _changed_external_data(source: Any, recorded: Any) -> list[str]:
    if not isinstance(recorded, list) or not recorded:
        return []
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError("corrupt header (external data for a model not given as a path)")
    folder = os.path.dirname(os.path.realpath(os.fspath(source)))
    changed = []
    for location, size, mtime in recorded:
        try:
            stat = os.stat(os.path.join(folder, str(location)))
        except OSError:
            changed.append(str(location))
            continue
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
            changed.append(str(location))
    return changed


def encode_header(key: str, device: str, config: dict[str, Any], blob: bytes,
                  compiled_on: str | None = None,
                  external: list[list[Any]] | None = None) -> bytes:
    """The entry's bytes before the blob (padded so the blob starts 64-aligned)."""
    from .. import __version__

    header = json.dumps({"key": key, "aioinfer": __version__, "device": device,
                         "compiled_on": compiled_on or device, "external": external or [],
                         "config": config, "blob_size": len(blob),
                         "blob_crc32": checksum(blob)}, sort_keys=True).encode()
    head = len(MAGIC) + _LENGTH.size + len(header)
    header += b" " * (-head % _ALIGN)
    return MAGIC + _LENGTH.pack(len(header)) + header


def encode(key: str, device: str, config: dict[str, Any], blob: bytes) -> bytes:
    """A whole entry (header and blob)."""
    return encode_header(key, device, config, blob) + blob


def read_header(f: Any, key: str) -> dict[str, Any]:
    """The header of the entry open in ``f`` (positioned at the blob after it); ``ValueError``
    saying what is wrong otherwise."""
    from .. import __version__

    start = f.read(len(MAGIC) + _LENGTH.size)
    if len(start) < len(MAGIC) + _LENGTH.size or not start.startswith(MAGIC):
        raise ValueError("not an aioinfer cache entry (bad magic)")
    (length,) = _LENGTH.unpack_from(start, len(MAGIC))
    if length > _MAX_HEADER:
        raise ValueError(f"corrupt header length {length}")
    text = f.read(length)
    if len(text) != length:
        raise ValueError("truncated header")
    header = json.loads(text)
    if not isinstance(header, dict):
        raise ValueError("corrupt header")
    if header.get("key") != key:
        raise ValueError("key mismatch")
    if header.get("aioinfer") != __version__:
        raise ValueError(f"written by aioinfer {header.get('aioinfer')}, this is {__version__}")
    size = header.get("blob_size")
    if not isinstance(size, int) or size < 0:
        raise ValueError("corrupt header (blob size)")
    return header


def entry_for(directory: str, source: Any, choices: Sequence[ProviderChoice],
              options: SessionOptions) -> CacheEntry:
    return CacheEntry(directory, cache_key(source, choices, options), source)
