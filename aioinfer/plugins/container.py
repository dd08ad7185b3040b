"""The export blob of a virtual device: a JSON manifest and the byte sections it points into.

HETERO, MULTI and BATCH export what they were built from (the model, their config) and each
part's own ``export_model`` blob, checked on import by that part's plugin::

    MAGIC (16 bytes) | manifest length (uint32 LE) | manifest (JSON) | sections

The manifest holds the CRC-32 of the whole blob (taken with that field blank) and the length
of the sections: a truncated or corrupt blob, or one whose manifest was edited, is refused
(:class:`~aioinfer.errors.InvalidModelError`), never run. Nothing is pickled or executed.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

from ..errors import InvalidModelError, NotSupportedError
from ..properties import PropertySet
from .base import CompiledModel

FORMAT = 1
_LENGTH = struct.Struct("<I")
_BLANK_VALUE = "--------"
_BLANK = b'"crc32": "--------"'


class Sections:
    """The byte sections of a blob being written; :meth:`add` returns where one lies."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> list[int]:
        where = [self.size, len(data)]
        self.parts.append(bytes(data))
        self.size += len(data)
        return where

    def add_part(self, compiled: CompiledModel) -> list[int] | None:
        """Where ``compiled``'s own export lies; ``None`` for a device that cannot export
        (the importer compiles that part again)."""
        try:
            return self.add(compiled.export_model())
        except NotSupportedError:
            return None


def pack(magic: bytes, device: str, manifest: dict[str, Any], sections: Sections) -> bytes:
    """The blob of ``manifest`` and ``sections``; :class:`NotSupportedError` naming
    ``device`` when a manifest value is not JSON data (a remote context in a config, say)."""
    payload = b"".join(sections.parts)
    whole = {"format": FORMAT, "crc32": _BLANK_VALUE, "length": len(payload), **manifest}
    try:
        text = json.dumps(whole, sort_keys=True).encode()
    except TypeError as exc:
        raise NotSupportedError(f"{device}: export_model: a config value is not JSON data "
                                f"({exc})", device=device) from exc
    blob = magic + _LENGTH.pack(len(text)) + text + payload
    return blob.replace(_BLANK, _BLANK.replace(_BLANK_VALUE.encode(),
                                               b"%08x" % zlib.crc32(blob)), 1)


def unpack(magic: bytes, name: str, blob: Any, keys: tuple[str, ...]
           ) -> tuple[dict[str, Any], Callable[[Any], bytes]]:
    """The manifest of ``blob`` (which must hold ``keys``) and a function from a section's
    place in it to its bytes; :class:`InvalidModelError` for anything else."""
    data = bytes(blob)
    head = len(magic) + _LENGTH.size
    if len(data) < head or data[: len(magic)] != magic:
        raise refused(name, "it is not an export of this device (wrong magic)")
    (length,) = _LENGTH.unpack(data[len(magic):head])
    try:
        text = data[head: head + length]
        manifest = json.loads(text)
        payload = memoryview(data)[head + length:]
        crc = str(manifest["crc32"])
        blanked = data[:head] + text.replace(f'"crc32": "{crc}"'.encode(), _BLANK, 1)
        ok = (manifest["format"] == FORMAT and len(payload) == manifest["length"]
              and len(crc) == 8 and zlib.crc32(payload, zlib.crc32(blanked)) == int(crc, 16))
        for key in keys:
            manifest[key]
    except (ValueError, KeyError, TypeError) as exc:
        raise refused(name, f"its manifest is unreadable ({exc})") from exc
    if not ok:
        raise refused(name, "it is truncated or corrupt (length or CRC-32 mismatch)")

    def section(where: Any) -> bytes:
        try:
            start, size = (int(v) for v in where)
        except (TypeError, ValueError) as exc:
            raise refused(name, f"a section is malformed ({where!r})") from exc
        if start < 0 or size < 0 or start + size > len(payload):
            raise refused(name, f"a section lies outside the blob ({where!r})")
        return bytes(payload[start: start + size])

    return manifest, section


def settable(props: PropertySet) -> dict[str, Any]:
    """The read-write entries of a compile's config: what an import compiles with again."""
    supported = props.supported()
    return {key: value for key, value in props.as_dict().items()
            if supported.get(key) == "RW"}


def refused(name: str, why: str) -> InvalidModelError:
    return InvalidModelError(f"{name}: import_model: the blob is refused: {why}")
