"""``cache_dir``: compiled models kept on disk, keyed like OpenVINO's model cache.

The key (blake2b) covers the model (a file by its real path, size and mtime, as OpenVINO's
``compute_hash`` does; bytes and ModelProtos by their content), the providers with every
option, the compile-affecting SessionOptions and config entries, and the aioinfer version. An
entry is::

    MAGIC (16 bytes) | header length (uint32 LE) | header (JSON) | blob

with the header holding the key, the version, the device and config compiled for, and the
blob's size and blake2b digest. Entries are written to a temporary file and renamed into place
(atomic); a truncated or corrupt entry, or one whose key, version or digest does not match, is
ignored with a warning and rebuilt: never trusted. No pickle or other code-executing format:
the blob is the device's own ``export_model`` bytes, read back by its ``import_model``.

A device that cannot export (``NotSupportedError``) keeps no entry here; if it has a
``CACHE_DIR`` property (the OpenVINO engine behind ``CPU``), the directory is passed to it and
the engine caches natively (see :func:`aioinfer.ort.build.compile_for`).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import onnx

from ..errors import AioInferError, NotSupportedError

if TYPE_CHECKING:
    from ..core import Core
    from ..plugins.base import CompiledModel
    from .options import SessionOptions
    from .providers import ProviderChoice

MAGIC = b"AIOINFER-CACHE01"
_LENGTH = struct.Struct("<I")


def fingerprint(source: Any) -> dict[str, Any]:
    """What identifies the model: a file by (real path, size, mtime), else its bytes' hash."""
    if isinstance(source, (str, os.PathLike)):
        path = os.path.realpath(os.fspath(source))
        stat = os.stat(path)
        return {"path": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if isinstance(source, onnx.ModelProto):
        source = source.SerializeToString()
    if isinstance(source, (bytes, bytearray, memoryview)):
        return {"blake2b": hashlib.blake2b(bytes(source), digest_size=20).hexdigest()}
    raise TypeError(f"cache_dir: cannot key a model given as {type(source).__name__}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, bool, str)) or value is None:
        return value
    return str(value)


def cache_key(source: Any, choices: Sequence[ProviderChoice], options: SessionOptions) -> str:
    from .. import __version__

    parts = {
        "model": fingerprint(source),
        "providers": [[c.name, c.device, c.options] for c in choices],
        "session": {"intra": options.intra_op_num_threads, "inter": options.inter_op_num_threads,
                    "mode": int(options.execution_mode), "profiling": options.enable_profiling,
                    "level": int(options.graph_optimization_level),
                    "config": options.config_entries()},
        "aioinfer": __version__,
    }
    text = json.dumps(_plain(parts), sort_keys=True).encode()
    return hashlib.blake2b(text, digest_size=20).hexdigest()


class CacheEntry:
    """One cache file: load it (verified) or store a compiled model into it."""

    def __init__(self, directory: str, key: str) -> None:
        self.directory = directory
        self.key = key
        self.path = os.path.join(directory, f"{key}.blob")

    def load(self, core: Core) -> tuple[CompiledModel, str, dict[str, Any]] | None:
        """The compiled model of a valid entry (imported on its device), else ``None``."""
        if not os.path.isfile(self.path):
            return None
        try:
            with open(self.path, "rb") as f:
                data = f.read()
            header, blob = decode(data, self.key)
            device, config = header["device"], header["config"]
            compiled = import_model(core, blob, device, config)
        except (ValueError, KeyError, OSError, AioInferError) as exc:
            warnings.warn(f"cache_dir: ignoring cache entry {self.path}: {exc}; compiling again",
                          RuntimeWarning, stacklevel=3)
            return None
        return compiled, device, config

    def store(self, compiled: CompiledModel, device: str, config: dict[str, Any]) -> str:
        """Write the compiled model's export atomically; returns what happened."""
        try:
            blob = compiled.export_model()
        except NotSupportedError:
            return f"cache_dir: {device} cannot export compiled models; no entry written"
        data = encode(self.key, device, _plain(config), blob)
        os.makedirs(self.directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".blob")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return f"cache_dir: wrote {self.path} ({len(data)} bytes)"


def import_model(core: Core, blob: bytes, device: str, config: dict[str, Any] | None = None
                 ) -> CompiledModel:
    """``Core.import_model`` (done through the Core's device parser, so that this works with
    any Core of this version)."""
    plugin, merged = core._target(device, config)
    return plugin.import_model(blob, merged)


def encode(key: str, device: str, config: dict[str, Any], blob: bytes) -> bytes:
    from .. import __version__

    header = json.dumps({"key": key, "aioinfer": __version__, "device": device,
                         "config": config, "blob_size": len(blob),
                         "blob_blake2b": hashlib.blake2b(blob, digest_size=20).hexdigest()},
                        sort_keys=True).encode()
    return MAGIC + _LENGTH.pack(len(header)) + header + blob


def decode(data: bytes, key: str) -> tuple[dict[str, Any], bytes]:
    """Header and blob of a cache file; ``ValueError`` saying what is wrong otherwise."""
    from .. import __version__

    head = len(MAGIC) + _LENGTH.size
    if len(data) < head or not data.startswith(MAGIC):
        raise ValueError("not an aioinfer cache entry (bad magic)")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if head + length > len(data):
        raise ValueError("truncated header")
    header = json.loads(data[head:head + length])
    if not isinstance(header, dict):
        raise ValueError("corrupt header")
    if header.get("key") != key:
        raise ValueError("key mismatch")
    if header.get("aioinfer") != __version__:
        raise ValueError(f"written by aioinfer {header.get('aioinfer')}, this is {__version__}")
    blob = data[head + length:]
    if len(blob) != header.get("blob_size"):
        raise ValueError(f"truncated blob ({len(blob)} of {header.get('blob_size')} bytes)")
    if hashlib.blake2b(blob, digest_size=20).hexdigest() != header.get("blob_blake2b"):
        raise ValueError("blob digest mismatch (corrupt)")
    return header, blob


def entry_for(directory: str, source: Any, choices: Sequence[ProviderChoice],
              options: SessionOptions) -> CacheEntry:
    return CacheEntry(directory, cache_key(source, choices, options))
