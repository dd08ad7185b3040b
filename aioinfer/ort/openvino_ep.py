"""The OpenVINO Execution Provider's options, parsed from strings as onnxruntime passes them.

Every key of the EP's documentation (``docs/execution-providers/OpenVINO-ExecutionProvider``)
is parsed and checked here, before any device is touched; each bad value raises
:class:`~aioinfer.errors.InvalidPropertyValueError` naming the option and the values allowed,
an unknown key :class:`~aioinfer.errors.UnknownPropertyError` listing the known ones.

In this project ``device_type`` names aioinfer devices: ``CPU`` (the proxy over the host
engines), ``NUMPY``, ``TEMPLATE``, ``OPENVINO``, ``ORT``, ``GPU.1`` where a GPU plugin is,
and ``HETERO:a,b`` / ``MULTI:a,b`` / ``AUTO:a,b`` over at least two of them. Whether a device
is present is checked by :mod:`aioinfer.ort.providers` against the Core.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .. import properties as P
from ..devices import parse_device
from ..errors import DeviceNotFoundError, InvalidPropertyValueError, UnknownPropertyError

PROVIDER = "OpenVINOExecutionProvider"

KEYS = ("device_type", "precision", "num_of_threads", "num_streams", "cache_dir", "load_config",
        "enable_qdq_optimizer", "disable_dynamic_shapes", "model_priority", "reshape_input",
        "layout", "context", "enable_opencl_throttling", "device_id")
PRECISIONS = {"FP32": "f32", "FP16": "f16", "ACCURACY": "f32"}
PRIORITIES = ("LOW", "MEDIUM", "HIGH", "DEFAULT")
VIRTUAL = ("HETERO", "MULTI", "AUTO")
_RETIRED = re.compile(r"^([A-Za-z]+)((?:\.\d+)?)_(FP32|FP16|U8|I8)$")


def _bad(key: str, value: Any, allowed: str) -> InvalidPropertyValueError:
    return InvalidPropertyValueError(
        f"{PROVIDER}: invalid value {value!r} for option {key!r}; allowed: {allowed}",
        key=key, device=PROVIDER)


def _bool(key: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _bad(key, value, "True or False")


def _positive(key: str, value: str) -> int:
    text = value.strip()
    if not text.isdigit() or int(text) < 1:
        raise _bad(key, value, "a positive integer > 0, as a string ('4')")
    return int(text)


@dataclass(frozen=True)
class Bound:
    """One dimension of ``reshape_input``: ``lo == hi`` static, ``hi is None`` unbounded."""

    lo: int
    hi: int | None

    @property
    def static(self) -> bool:
        return self.hi == self.lo

    def admits(self, size: int) -> bool:
        return size >= self.lo and (self.hi is None or size <= self.hi)

    def __str__(self) -> str:
        if self.static:
            return str(self.lo)
        return f"{self.lo}..{'' if self.hi is None else self.hi}" if self.lo else "?"


@dataclass
class OpenVinoOptions:
    """The parsed options of one ``OpenVINOExecutionProvider`` entry."""

    device_type: str = "CPU"
    precision: str | None = None  # FP32, FP16, ACCURACY
    num_of_threads: int | None = None
    num_streams: int | None = None
    cache_dir: str = ""
    load_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    enable_qdq_optimizer: bool = False
    disable_dynamic_shapes: bool = False
    model_priority: str | None = None
    reshape_input: dict[str, list[Bound]] = field(default_factory=dict)
    layout: dict[str, str] = field(default_factory=dict)
    context: int | None = None
    given: dict[str, str] = field(default_factory=dict)

    def properties(self) -> dict[str, Any]:
        """The aioinfer properties these options ask of the device."""
        out: dict[str, Any] = {}
        if self.precision is not None:
            out[P.INFERENCE_PRECISION_HINT] = PRECISIONS[self.precision]
        if self.num_of_threads is not None:
            out[P.INFERENCE_NUM_THREADS] = self.num_of_threads
        if self.num_streams is not None:
            out[P.NUM_STREAMS] = self.num_streams
            out[P.PERFORMANCE_HINT] = (P.PerformanceMode.THROUGHPUT if self.num_streams > 1
                                       else P.PerformanceMode.LATENCY)
        if self.model_priority is not None:
            out[P.MODEL_PRIORITY] = self.model_priority
        return out


def parse_options(options: dict[str, Any]) -> OpenVinoOptions:
    """Parse one provider-options dict (values are strings, as in onnxruntime)."""
    parsed = OpenVinoOptions()
    for key, raw in options.items():
        if key not in KEYS:
            raise UnknownPropertyError(
                f"{PROVIDER}: unknown option {key!r}; options are {', '.join(KEYS)}",
                key=str(key), device=PROVIDER)
        if not isinstance(raw, str):
            raise _bad(key, raw, "a string (onnxruntime passes every option as a string)")
        parsed.given[key] = raw
        _apply(parsed, key, raw)
    return parsed


def _apply(parsed: OpenVinoOptions, key: str, value: str) -> None:
    if key == "device_type":
        parsed.device_type = parse_device_type(value)
    elif key == "precision":
        if value.upper() not in PRECISIONS:
            raise _bad(key, value, ", ".join(PRECISIONS))
        parsed.precision = value.upper()
    elif key == "num_of_threads":
        parsed.num_of_threads = _positive(key, value)
    elif key == "num_streams":
        parsed.num_streams = _positive(key, value)
    elif key == "cache_dir":
        parsed.cache_dir = value
    elif key == "load_config":
        parsed.load_config = parse_load_config(value)
    elif key in ("enable_qdq_optimizer", "disable_dynamic_shapes", "enable_opencl_throttling"):
        flag = _bool(key, value)
        if key != "enable_opencl_throttling":  # GPU-only hint: accepted, nothing to throttle
            setattr(parsed, key, flag)
    elif key == "model_priority":
        if value.upper() not in PRIORITIES:
            raise _bad(key, value, ", ".join(PRIORITIES))
        parsed.model_priority = value.upper()
    elif key == "reshape_input":
        parsed.reshape_input = parse_reshape_input(value)
    elif key == "layout":
        parsed.layout = parse_layout(value)
    elif key == "context":
        try:
            parsed.context = int(value, 16)
        except ValueError:
            raise _bad(key, value, "a hexadecimal handle such as '0x123456ff'") from None
    elif key == "device_id":
        raise _bad(key, value, "nothing: device_id is retired, name the device in device_type "
                   "('GPU.1')")


def parse_device_type(value: str) -> str:
    """``CPU``, ``GPU.0``, ``HETERO:A,B``... -> the aioinfer device string (checked for
    syntax and the retired forms; presence is checked against the Core later)."""
    text = value.strip()
    retired = _RETIRED.match(text)
    if retired:
        device, ident, precision = retired.groups()
        use = "FP16" if precision == "FP16" else "FP32"
        raise InvalidPropertyValueError(
            f"{PROVIDER}: device_type {value!r} is a retired form; use device_type="
            f"'{device.upper()}{ident}' with precision='{use}'", key="device_type",
            device=PROVIDER)
    try:
        parsed = parse_device(text)
    except DeviceNotFoundError as exc:
        raise _bad("device_type", value, "CPU, GPU, GPU.0, NPU, HETERO:a,b, MULTI:a,b, "
                   f"AUTO:a,b ({exc})") from None
    if parsed.name in VIRTUAL:
        if len(parsed.targets) < 2:
            raise _bad("device_type", value, f"{parsed.name}:<device 1>,<device 2>... with at "
                       "least two devices")
    elif parsed.targets:
        raise _bad("device_type", value, "a device list only after HETERO:, MULTI: or AUTO:")
    return str(parsed)


def parse_load_config(value: str) -> dict[str, dict[str, Any]]:
    """``load_config``: a JSON file path (or the JSON text itself) holding
    ``{"DEVICE": {"PROPERTY": "VALUE"}}``."""
    text = value.strip()
    if not text.startswith("{"):
        if not os.path.isfile(text):
            raise _bad("load_config", value, "the path of a JSON file (it does not exist)")
        try:
            with open(text, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise _bad("load_config", value, f"a readable JSON file ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _bad("load_config", value, f"JSON {{\"DEVICE\": {{\"PROPERTY\": \"VALUE\"}}}} "
                   f"({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise _bad("load_config", value, 'JSON {"DEVICE": {"PROPERTY": "VALUE"}}')
    return {str(parse_device(str(k))): dict(v) for k, v in data.items()}


def _entries(key: str, value: str) -> list[tuple[str, str]]:
    """``name[...],name2[...]`` -> [(name, inside)]."""
    entries = []
    rest = value.strip()
    pattern = re.compile(r"\s*([^\[\],]+?)\s*\[([^\]]*)\]\s*(?:,|$)")
    while rest:
        match = pattern.match(rest)
        if match is None:
            raise _bad(key, value, "name[...] entries separated by commas, e.g. "
                       + ("data[1,3,60,80..120]" if key == "reshape_input"
                          else "data_0[NCHW],prob_1[NC]"))
        entries.append((match.group(1), match.group(2)))
        rest = rest[match.end():]
    if not entries:
        raise _bad(key, value, "at least one name[...] entry")
    names = [n for n, _ in entries]
    if len(set(names)) != len(names):
        raise _bad(key, value, "each name once")
    return entries


def parse_reshape_input(value: str) -> dict[str, list[Bound]]:
    """``data[1,3,60,80..120]``: static dims, ``lo..hi`` bounds, ``?`` or ``-1`` unbounded."""
    out: dict[str, list[Bound]] = {}
    for name, inside in _entries("reshape_input", value):
        dims = []
        for part in inside.split(","):
            part = part.strip()
            lo_text, dots, hi_text = part.partition("..")
            try:
                if part in ("?", "-1"):
                    dims.append(Bound(0, None))
                elif dots:
                    lo, hi = int(lo_text), int(hi_text) if hi_text else None
                    if lo < 0 or (hi is not None and hi < lo):
                        raise ValueError
                    dims.append(Bound(lo, hi))
                else:
                    size = int(part)
                    if size < 0:
                        raise ValueError
                    dims.append(Bound(size, size))
            except ValueError:
                raise _bad("reshape_input", value, f"dimensions of {name!r} as N, lo..hi "
                           f"(lo <= hi) or ?; {part!r} is none of these") from None
        out[name] = dims
    return out


def parse_layout(value: str) -> dict[str, str]:
    """``data_0[NCHW],prob_1[NC]``: one letter (or ``?``) per dimension, no letter twice."""
    out: dict[str, str] = {}
    for name, inside in _entries("layout", value):
        letters = inside.strip().upper()
        known = [c for c in letters if c != "?"]
        if not letters or not all(c.isalpha() or c == "?" for c in letters) or (
                len(set(known)) != len(known)):
            raise _bad("layout", value, f"one letter per dimension for {name!r} (NCHW, NHWC, "
                       "NC, N?HW...), each letter once")
        out[name] = letters
    return out
