"""From (model, SessionOptions, providers) to a compiled model: the session's build steps.

1. the providers: those given, else the EP devices added with ``add_provider_for_devices``,
   else the ones a selection policy picks, else ``CPUExecutionProvider``;
2. an EPContext model (nodes ``com.microsoft.EPContext``) is imported from its blob, without
   compiling the graph (:mod:`aioinfer.ort.epcontext`);
3. with ``cache_dir`` a cached compile is imported (:mod:`aioinfer.ort.cache`) before the
   model is even read; a missing, truncated or corrupt entry is compiled again and rewritten
   (not with ``disable_dynamic_shapes``, whose static copies need the graph);
4. otherwise the model is read, the OpenVINO EP's graph options applied (QDQ stripping,
   ``reshape_input``, ``layout``), the device and its config chosen
   (:mod:`aioinfer.ort.providers`) and the model compiled through the Core.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import properties as P
from ..core import Core
from ..model import Model
from ..plugins.base import CompiledModel
from . import cache as cache_mod
from . import epcontext
from .ep import library
from .openvino_ep import OpenVinoOptions
from .options import ExecutionMode, SessionOptions
from .providers import (
    CPU,
    ProviderChoice,
    device_config,
    load_config,
    normalize,
    resolve,
    with_fallback,
)
from .qdq import strip_qdq
from .shapes import ShapePolicy, apply_reshape, check_layout


@dataclass
class Built:
    """What a session runs: the compiled model and how it was made."""

    compiled: CompiledModel
    model: Model
    device: str
    config: dict[str, Any]
    choices: list[ProviderChoice]
    shapes: ShapePolicy
    loaded_from_cache: bool = False
    from_ep_context: bool = False
    ep_context_file: str | None = None
    notes: list[str] = field(default_factory=list)


def choose_providers(core: Core, options: SessionOptions, providers: Sequence[Any] | None,
                     provider_options: Sequence[Mapping[str, Any]] | None,
                     model_meta: Mapping[str, Any] | None = None) -> list[ProviderChoice]:
    """The providers of the session, each resolved to a device (step 1)."""
    eps = library.registered_providers(core)
    if providers:
        pairs = normalize(providers, provider_options)
    elif options._devices:
        pairs = [(devices[0].ep_name, dict(opts)) for devices, opts in options._devices]
    elif options._policy is not None or options._delegate is not None:
        chosen = library.select_devices(options._policy, options._delegate, model_meta or {})
        pairs = [(name, {}) for name in dict.fromkeys(d.ep_name for d in chosen)]
    else:
        pairs = [(CPU, {})]
    return [resolve(core, name, opts, eps) for name, opts in pairs]


def session_properties(options: SessionOptions, ov: OpenVinoOptions | None) -> dict[str, Any]:
    """Properties asked by the SessionOptions and, first, by the OpenVINO EP's options."""
    wanted: dict[str, Any] = {}
    if options.intra_op_num_threads:
        wanted[P.INFERENCE_NUM_THREADS] = options.intra_op_num_threads
    if options.execution_mode is ExecutionMode.ORT_PARALLEL:
        wanted[P.PERFORMANCE_HINT] = P.PerformanceMode.THROUGHPUT
        if options.inter_op_num_threads:
            wanted[P.NUM_STREAMS] = options.inter_op_num_threads
    if options.enable_profiling:
        wanted[P.PERF_COUNT] = True
    if ov is not None:
        wanted.update(ov.properties())
    return wanted


def policy_for(ov: OpenVinoOptions | None) -> ShapePolicy:
    """The run-time shape checks the OpenVINO EP's options ask for."""
    if ov is None:
        return ShapePolicy({}, {}, False)
    return ShapePolicy(ov.reshape_input, ov.layout, ov.disable_dynamic_shapes)


def prepare_model(model: Model, ov: OpenVinoOptions | None) -> tuple[Model, ShapePolicy]:
    """The OpenVINO EP's graph options applied to a copy of ``model``."""
    if ov is None:
        return model, policy_for(None)
    if ov.enable_qdq_optimizer or ov.reshape_input:
        model = model.clone()
    if ov.enable_qdq_optimizer:
        strip_qdq(model.proto)
    if ov.reshape_input:
        apply_reshape(model, ov.reshape_input)
    check_layout(model, ov.layout)
    return model, policy_for(ov)


def compile_for(core: Core, model: Model, choices: list[ProviderChoice],
                options: SessionOptions) -> tuple[str, dict[str, Any]]:
    """The device string and config the model compiles with (step 4)."""
    devices = []
    for choice in choices:
        wanted = session_properties(options, choice.openvino)
        config = device_config(core, choice.device, wanted, choice.name)
        if choice.openvino is not None and choice.openvino.cache_dir and P.CACHE_DIR in (
                core.get_property(choice.device, P.SUPPORTED_PROPERTIES)) and not (
                cache_mod.exports(core, choice.device)):
            config[P.CACHE_DIR] = choice.openvino.cache_dir  # the engine caches natively
        if choice.openvino is not None and choice.openvino.load_config:
            load_config(core, choice.device, config, choice.openvino.load_config)
        if choice.openvino is not None and choice.openvino.context is not None:
            core.create_context(choice.device, {"CONTEXT": choice.openvino.context})
        config.update(choice.config)
        devices.append((choice.device, config))
    fallback = options.config_entries().get("session.disable_cpu_ep_fallback", "0") != "1"
    return with_fallback(core, model, devices, fallback)


def read_source(core: Core, source: Any) -> Model:
    if isinstance(source, Model):
        return source
    return core.read_model(os.fspath(source) if isinstance(source, os.PathLike) else source)


def build(core: Core, source: Any, options: SessionOptions, providers: Sequence[Any] | None,
          provider_options: Sequence[Mapping[str, Any]] | None) -> Built:
    """Run the build steps (see the module docstring)."""
    choices = choose_providers(core, options, providers, provider_options)
    ov = next((c.openvino for c in choices if c.openvino is not None), None)
    cache_dir = ov.cache_dir if ov is not None else ""
    entry = None
    # disable_dynamic_shapes compiles static copies of the graph, which an import lacks
    if cache_dir and not (ov is not None and ov.disable_dynamic_shapes):
        entry = cache_mod.entry_for(cache_dir, source, choices, options)
        hit = entry.load(core)
        if hit is not None:
            compiled, device, config = hit
            return Built(compiled, compiled.model, device, config, choices, policy_for(ov),
                         loaded_from_cache=True, notes=[f"cache_dir: loaded {entry.path}"])
    model = read_source(core, source)
    if epcontext.is_context_model(model):
        compiled, device = epcontext.load(core, model, choices)
        return Built(compiled, compiled.model, device, {}, choices, policy_for(None),
                     from_ep_context=True)
    model, shapes = prepare_model(model, ov)
    device, config = compile_for(core, model, choices, options)
    compiled = core.compile_model(model, device, config)
    built = Built(compiled, model, device, config, choices, shapes)
    if entry is not None:
        built.notes.append(entry.store(compiled, device, config))
    if epcontext.enabled(options):
        built.ep_context_file = epcontext.write(compiled, device, source, options, choices)
    return built
