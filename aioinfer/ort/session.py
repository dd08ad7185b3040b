"""InferenceSession: onnxruntime's front door over aioinfer's Core.

A session holds one compiled model (see :mod:`aioinfer.ort.build` for how providers become a
device) and a pool of its :class:`~aioinfer.InferRequest`. ``run`` takes a request from the
pool and runs it inline on the calling thread (safe in a running loop, as in Jupyter);
``await run_async(...)`` awaits the request's ``infer_async`` (no thread is held per call, and
cancelling the await leaves the request reusable); onnxruntime's callback form
``run_async(names, feed, callback, user_data)`` starts the request and calls
``callback(outputs, user_data, error_text)`` on a worker thread when it ends.

With ``disable_dynamic_shapes`` a dynamic model gets one static compile per input shape set;
in ``run_async`` that compile runs on a worker thread, never on the event loop.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio.to_thread

from .. import compile_cache, weights
from ..core import Core
from ..errors import InputError, RequestCancelledError
from ..plugins.base import CompiledModel
from ..runtime.io import arrange_inputs
from ..runtime.request import InferRequest
from ..runtime.results import Results
from . import build as build_mod
from .iobinding import IOBinding
from .nodearg import ModelMetadata, NodeArg
from .options import RunOptions, SessionOptions
from .profiling import Profiler
from .providers import CPU
from .shapes import MAX_STATIC_MODELS, static_copy

Callback = Callable[[list[Any], Any, str], None]

_DEFAULT_CORE: Core | None = None
_CORE_LOCK = threading.Lock()


def default_core() -> Core:
    """The Core every session shares unless given one (onnxruntime's process-wide Env)."""
    global _DEFAULT_CORE
    with _CORE_LOCK:
        if _DEFAULT_CORE is None:
            _DEFAULT_CORE = Core()
        return _DEFAULT_CORE


class _Pool:
    """Idle infer requests of one compiled model."""

    def __init__(self, compiled: CompiledModel) -> None:
        self.compiled = compiled
        self._idle: queue.SimpleQueue[InferRequest] = queue.SimpleQueue()

    def take(self) -> InferRequest:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self.compiled.create_infer_request()

    def give(self, request: InferRequest) -> None:
        self._idle.put(request)


class InferenceSession:
    """onnxruntime's ``InferenceSession`` (``import aioinfer.onnxruntime as ort``).

    ``path_or_bytes`` is a model path, its bytes, or an ``onnx.ModelProto``; ``providers`` and
    ``provider_options`` are as in onnxruntime (see :mod:`aioinfer.ort.providers`). ``core``
    (an aioinfer addition) compiles on that Core instead of the shared one.
    """

    def __init__(self, path_or_bytes: Any, sess_options: SessionOptions | None = None,
                 providers: Sequence[Any] | None = None,
                 provider_options: Sequence[Mapping[str, Any]] | None = None, *,
                 core: Core | None = None, **kwargs: Any) -> None:
        unknown = set(kwargs) - {"disabled_optimizers"}
        if unknown:
            raise TypeError(f"InferenceSession() got unexpected keyword argument(s) "
                            f"{sorted(unknown)}")
        self._core = core or default_core()
        self._source = path_or_bytes
        self._model_path = path_or_bytes if isinstance(path_or_bytes, str) else None
        self._sess_options = sess_options or SessionOptions()
        self._build(providers, provider_options)

    def _build(self, providers: Sequence[Any] | None,
               provider_options: Sequence[Mapping[str, Any]] | None) -> None:
        with weights.sharing(self._sess_options.shares_weights()):  # ep.share_ep_contexts
            self._built = build_mod.build(self._core, self._source, self._sess_options,
                                          providers, provider_options)
        self._compiled = self._built.compiled
        # LOADED_FROM_CACHE also when cache_dir imported it (not through Core.compile_model)
        compile_cache.mark(self._compiled, self._built.loaded_from_cache)
        self._pool = _Pool(self._compiled)
        self._static: dict[Any, _Pool] = {}
        self._static_lock = threading.Lock()
        self._inputs = [NodeArg.from_value_info(i) for i in _graph_inputs(self._compiled)]
        graph = self._compiled.model.proto.graph
        self._outputs = [NodeArg.from_value_info(o) for o in graph.output]
        self._profiler = (Profiler(self._sess_options.profile_file_prefix)
                          if self._sess_options.enable_profiling else None)

    # -- description -------------------------------------------------------------------------
    def get_inputs(self) -> list[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._outputs)

    def get_overridable_initializers(self) -> list[NodeArg]:
        return []

    def get_modelmeta(self) -> ModelMetadata:
        return ModelMetadata.from_proto(self._compiled.model.proto)

    def get_providers(self) -> list[str]:
        """The providers in priority order (the CPU EP last, as onnxruntime lists it)."""
        names = [c.name for c in self._built.choices]
        fallback = self._sess_options.config_entries().get("session.disable_cpu_ep_fallback")
        if CPU not in names and fallback != "1":
            names.append(CPU)
        return names

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        """Each provider's options as strings (the OpenVINO EP's with its device)."""
        out: dict[str, dict[str, str]] = {}
        for choice in self._built.choices:
            options = dict(choice.options)
            if choice.openvino is not None:
                options.setdefault("device_type", choice.device)
            out[choice.name] = options
        if CPU not in out and CPU in self.get_providers():
            out[CPU] = {}
        return out

    def get_session_options(self) -> SessionOptions:
        return self._sess_options

    def set_providers(self, providers: Sequence[Any] | None = None,
                      provider_options: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Compile the model again for other providers."""
        old = self._compiled
        self._build(providers, provider_options)
        old.release()

    def disable_fallback(self) -> None:
        """Nothing to disable: aioinfer never re-runs a failed session on another device."""

    def enable_fallback(self) -> None:
        """See :meth:`disable_fallback`."""

    def set_ep_dynamic_options(self, options: Mapping[str, str]) -> None:
        """onnxruntime's ``set_ep_dynamic_options``: ``options`` (strings) reach each plugin
        EP of the session (``Ep.set_dynamic_options``), HETERO's parts included. A session
        without a plugin EP has none to take them: that is an error, as in onnxruntime."""
        from ..errors import InvalidPropertyValueError, NotSupportedError

        if not isinstance(options, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in options.items()):
            raise InvalidPropertyValueError("set_ep_dynamic_options: expected a dict of "
                                            f"str to str, got {options!r}"[:200],
                                            key="options")
        eps = [m.ep for m in (self._compiled, *self._compiled.submodels()) if hasattr(m, "ep")]
        if not eps:
            raise NotSupportedError(f"set_ep_dynamic_options: the session's device "
                                    f"{self.device} has no plugin EP to take dynamic options",
                                    device=self.device)
        for ep in eps:
            ep.set_dynamic_options(dict(options))

    @property
    def compiled_model(self) -> CompiledModel:
        """The aioinfer compiled model behind the session (an aioinfer addition)."""
        return self._compiled

    @property
    def device(self) -> str:
        """The aioinfer device string the session compiled for (an aioinfer addition)."""
        return self._built.device

    @property
    def loaded_from_cache(self) -> bool:
        """Whether the compiled model came from ``cache_dir`` (OpenVINO's LOADED_FROM_CACHE)."""
        return self._built.loaded_from_cache

    @property
    def ep_context_file(self) -> str | None:
        """The EPContext model this session wrote (``ep.context_enable=1``), if any."""
        return self._built.ep_context_file

    # -- running -----------------------------------------------------------------------------
    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any],
            run_options: RunOptions | None = None) -> list[Any]:
        """Run once on the calling thread; the outputs named (all when empty), in order."""
        feeds = self._feeds(input_feed)
        names = self._wanted(output_names)
        pool = self._pool_for(feeds)
        request = pool.take()
        started = time.time_ns()
        try:
            if run_options is None:
                results = request.infer(feeds)
            else:
                results = self._run_terminable(request, feeds, run_options)
            self._profiled(request, started)
        finally:
            pool.give(request)
        return [results[n] for n in names]

    def run_async(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any],
                  callback: Callback | None = None, user_data: Any = None,
                  run_options: RunOptions | None = None) -> Awaitable[list[Any]] | None:
        """``await session.run_async(names, feed)``, or onnxruntime's callback form
        ``run_async(names, feed, callback, user_data)``: returns at once and calls
        ``callback(outputs, user_data, error_text)`` on a worker thread (``error_text`` is
        ``""`` on success, ``outputs`` empty on failure)."""
        if callback is None:
            return self._run_async(output_names, input_feed, run_options)
        self._start_with_callback(output_names, input_feed, callback, user_data, run_options)
        return None

    async def _run_async(self, output_names: Sequence[str] | None,
                         input_feed: Mapping[str, Any],
                         run_options: RunOptions | None) -> list[Any]:
        feeds = self._feeds(input_feed)
        names = self._wanted(output_names)
        if run_options is not None and run_options.terminate:
            raise _terminated()
        pool = await self._pool_for_async(feeds)
        request = pool.take()
        started = time.time_ns()
        if run_options is not None:
            run_options._attach(request)
        try:
            results = await request.infer_async(feeds)
            self._profiled(request, started)
        finally:
            if run_options is not None:
                run_options._detach(request)
            pool.give(request)
        return [results[n] for n in names]

    def _start_with_callback(self, output_names: Sequence[str] | None,
                             input_feed: Mapping[str, Any], callback: Callback, user_data: Any,
                             run_options: RunOptions | None) -> None:
        feeds = self._feeds(input_feed)
        names = self._wanted(output_names)
        if run_options is not None and run_options.terminate:
            raise _terminated()
        pool = self._pool_for(feeds)
        request = pool.take()
        started = time.time_ns()

        def done(req: InferRequest, _: Any) -> None:
            error = req.error
            outputs: list[Any] = []
            if error is None:
                results = req.results
                outputs = [results[n] for n in names]
                self._profiled(req, started)
            if run_options is not None:
                run_options._detach(req)
            req.set_callback(None)
            pool.give(req)
            callback(outputs, user_data, "" if error is None else f"{type(error).__name__}: "
                     f"{error}")

        request.set_callback(done)
        if run_options is not None:
            run_options._attach(request)
        try:
            request.start_async(feeds)
        except BaseException:
            request.set_callback(None)
            if run_options is not None:
                run_options._detach(request)
            pool.give(request)
            raise
        if run_options is not None and run_options.terminate:
            request.cancel()

    def _run_terminable(self, request: InferRequest, feeds: dict[str, Any],
                        run_options: RunOptions) -> Results:
        if run_options.terminate:
            raise _terminated()
        run_options._attach(request)
        try:
            request.start_async(feeds)
            if run_options.terminate:
                request.cancel()
            return request.wait()
        finally:
            run_options._detach(request)

    # -- IO binding --------------------------------------------------------------------------
    def io_binding(self) -> IOBinding:
        return IOBinding(self)

    def run_with_iobinding(self, iobinding: IOBinding, run_options: RunOptions | None = None
                           ) -> None:
        request = iobinding._prepare()
        if run_options is None:
            results = request.infer()
        else:
            if run_options.terminate:
                raise _terminated()
            run_options._attach(request)
            try:
                request.start_async()
                results = request.wait()
            finally:
                run_options._detach(request)
        iobinding._collect(results)

    async def run_with_iobinding_async(self, iobinding: IOBinding) -> None:
        """The awaitable form of :meth:`run_with_iobinding` (an aioinfer addition)."""
        request = iobinding._prepare()
        iobinding._collect(await request.infer_async())

    # -- profiling ---------------------------------------------------------------------------
    def end_profiling(self) -> str:
        """Write the profile collected so far (``enable_profiling``); return its file name."""
        if self._profiler is None:
            return ""
        path = self._profiler.write()
        self._profiler = Profiler(self._sess_options.profile_file_prefix)
        return path

    def get_profiling_start_time_ns(self) -> int:
        return self._profiler.start_ns if self._profiler is not None else 0

    def _profiled(self, request: InferRequest, started: int) -> None:
        if self._profiler is not None:
            self._profiler.record(self._compiled.model.name, request.profiling_info, started)

    # -- helpers -----------------------------------------------------------------------------
    def _feeds(self, input_feed: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(input_feed, Mapping):
            raise InputError(f"input_feed must be a dict of input name -> array, got "
                             f"{type(input_feed).__name__}")
        ports = self._compiled.inputs
        values = arrange_inputs(ports, input_feed)
        feeds = {p.name: v for p, v in zip(ports, values, strict=True)}
        self._built.shapes.check(feeds)
        return feeds

    def _wanted(self, output_names: Sequence[str] | None) -> list[str]:
        if not output_names:
            return [o.name for o in self._outputs]
        return [self._output_name(n) for n in output_names]

    def _input_name(self, name: str) -> str:
        if name not in {i.name for i in self._inputs}:
            raise InputError(f"no input named {name!r}; the model's inputs are "
                             f"{[i.name for i in self._inputs]}", input_name=name)
        return name

    def _output_name(self, name: str) -> str:
        if name not in {o.name for o in self._outputs}:
            raise InputError(f"no output named {name!r}; the model's outputs are "
                             f"{[o.name for o in self._outputs]}", input_name=name)
        return name

    def _pool_for(self, feeds: Mapping[str, Any]) -> _Pool:
        key = self._built.shapes.key(feeds)
        if key is None or not self._compiled.model.inputs or not any(
                p.is_dynamic for p in self._compiled.inputs):
            return self._pool
        with self._static_lock:
            pool = self._static.get(key)
        if pool is None:
            with weights.sharing(self._sess_options.shares_weights()):
                compiled = self._core.compile_model(static_copy(self._built.model, feeds),
                                                    self._built.device, self._built.config)
            with self._static_lock:
                if len(self._static) >= MAX_STATIC_MODELS:
                    oldest = next(iter(self._static))
                    self._static.pop(oldest).compiled.release()
                pool = self._static.setdefault(key, _Pool(compiled))
        return pool

    async def _pool_for_async(self, feeds: Mapping[str, Any]) -> _Pool:
        key = self._built.shapes.key(feeds)
        if key is None or key in self._static or not any(
                p.is_dynamic for p in self._compiled.inputs):
            return self._pool_for(feeds)
        return await anyio.to_thread.run_sync(self._pool_for, feeds)

    def static_models(self) -> int:
        """How many static-shape compiles ``disable_dynamic_shapes`` made (aioinfer)."""
        return len(self._static)

    def __repr__(self) -> str:
        return (f"<InferenceSession {self._compiled.model.name!r} on {self.device} "
                f"providers={self.get_providers()}>")


def _graph_inputs(compiled: CompiledModel) -> list[Any]:
    graph = compiled.model.proto.graph
    init = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in init]


def _terminated() -> RequestCancelledError:
    return RequestCancelledError("the run was terminated: RunOptions.terminate is set "
                                 "(set it to False to run again)")
