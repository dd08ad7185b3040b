"""Device strings: one parser for ``NUMPY``, ``NUMPY.1``, ``HETERO:A,B``, ``BATCH:A(4)``...

OpenVINO's grammar, parsed once into a :class:`DeviceName`:

- ``NAME`` or ``NAME.ID``: a plugin, and a device of it (the id is kept: ``GPU.1``);
- ``VIRTUAL:T1,T2,...``: a virtual plugin (``HETERO``, ``MULTI``, ``AUTO``, ``BATCH``...) over
  targets, each target a device string of its own;
- ``TARGET(N)``: a count attached to a target: the batch size in ``BATCH:NUMPY(4)``, the
  requests per device in ``MULTI:NUMPY(2),TEMPLATE(1)``.

Bad strings raise :class:`~aioinfer.errors.DeviceNotFoundError` naming the string and what
was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import DeviceNotFoundError

_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z0-9_.]+))?(?:\((\d+)\))?$")


@dataclass(frozen=True)
class DeviceName:
    """A parsed device string. ``name`` is the plugin's (upper case), ``id`` the device of
    it (``None``: the default), ``targets`` those of a virtual device, ``count`` a ``(N)``."""

    name: str
    id: str | None = None
    targets: tuple[DeviceName, ...] = ()
    count: int | None = None

    @property
    def base(self) -> str:
        """``NAME`` or ``NAME.ID``, without targets or count."""
        return self.name if self.id is None else f"{self.name}.{self.id}"

    def __str__(self) -> str:
        text = self.base
        if self.count is not None:
            text += f"({self.count})"
        if self.targets:
            text += ":" + ",".join(str(t) for t in self.targets)
        return text


def parse_device(text: str) -> DeviceName:
    """Parse a device string (see the module docstring)."""
    if isinstance(text, DeviceName):
        return text
    if not isinstance(text, str) or not text.strip():
        raise DeviceNotFoundError(f"device name must be a non-empty string, got {text!r}",
                                  device=str(text))
    head, colon, rest = text.strip().partition(":")
    device = _single(head, text)
    if not colon:
        return device
    parts = _split_targets(rest, text)
    if not parts:
        raise DeviceNotFoundError(
            f"device {text!r}: {device.name} needs at least one device after ':' "
            f"(e.g. {device.name}:NUMPY,TEMPLATE)", device=text)
    targets = tuple(parse_device(part) for part in parts)
    return DeviceName(device.name, device.id, targets, device.count)


def _single(part: str, text: str) -> DeviceName:
    match = _NAME.match(part.strip())
    if match is None:
        raise DeviceNotFoundError(
            f"device {text!r}: {part.strip()!r} is not a device name (expected NAME, NAME.ID "
            "or NAME(N))", device=text)
    name, ident, count = match.groups()
    return DeviceName(name.upper(), ident, (), int(count) if count else None)


def _split_targets(rest: str, text: str) -> list[str]:
    """Split at top-level commas (a nested ``HETERO:A,B`` would need brackets; OpenVINO does
    not nest device lists either)."""
    if not rest.strip():
        return []
    parts = [part.strip() for part in rest.split(",")]
    if any(not part for part in parts):
        raise DeviceNotFoundError(f"device {text!r}: empty device name in the list", device=text)
    if len(set(p.upper() for p in parts)) != len(parts):
        raise DeviceNotFoundError(f"device {text!r}: a device is listed twice", device=text)
    return parts
