"""The TEMPLATE export format: what ``export_model`` writes and ``import_model`` reads.

A device with a real compiler would store its compiled form here. The reference evaluator has
none, so the blob is the model itself plus the compile-time config::

    MAGIC (16 bytes) | config length (uint32, little endian) | config (JSON) | ONNX bytes
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

from ...errors import InvalidModelError

MAGIC = b"AIOINFER-TMPL-v1"
_LENGTH = struct.Struct("<I")


def encode(model_bytes: bytes, config: Mapping[str, Any]) -> bytes:
    """One blob from serialized ONNX bytes and the config to compile them with."""
    # Enum values (PERFORMANCE_HINT) are str subclasses and serialize as their value.
    text = json.dumps({str(k): v for k, v in config.items()}, sort_keys=True).encode()
    return MAGIC + _LENGTH.pack(len(text)) + text + model_bytes


def decode(blob: bytes, device: str) -> tuple[bytes, dict[str, Any]]:
    """The ONNX bytes and config stored in ``blob``; raises InvalidModelError if it is not
    a blob written by :func:`encode`."""
    data = bytes(blob)
    head = len(MAGIC) + _LENGTH.size
    if len(data) < head or not data.startswith(MAGIC):
        raise InvalidModelError(
            f"{device}: import_model: not a {device} export (expected a blob from "
            f"export_model starting with {MAGIC!r})"
        )
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if head + length > len(data):
        raise InvalidModelError(f"{device}: import_model: truncated blob ({len(data)} bytes)")
    try:
        config = json.loads(data[head:head + length])
    except ValueError as exc:
        raise InvalidModelError(f"{device}: import_model: corrupt config: {exc}") from exc
    if not isinstance(config, dict):
        raise InvalidModelError(f"{device}: import_model: corrupt config (not an object)")
    return data[head + length:], config
