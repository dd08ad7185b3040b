"""SessionOptions, RunOptions and onnxruntime's option enums.

How each maps onto aioinfer (see :mod:`aioinfer.ort.session`):

- ``intra_op_num_threads`` -> ``INFERENCE_NUM_THREADS`` of the device (where it has it);
- ``execution_mode = ORT_PARALLEL`` with ``inter_op_num_threads = N`` -> ``NUM_STREAMS = N``
  and the THROUGHPUT hint: aioinfer overlaps whole requests rather than nodes of one request;
- ``enable_profiling`` -> ``PERF_COUNT``; ``InferenceSession.end_profiling()`` writes the
  timings as a Chrome trace (onnxruntime's format) and returns the file name;
- ``graph_optimization_level``: ``ORT_DISABLE_ALL`` is accepted and kept; aioinfer's devices
  always run their own passes (they do not change results beyond float rounding);
- ``add_session_config_entry``: the ``ep.context_*`` keys (EP context models),
  ``ep.share_ep_contexts`` (one copy of equal weights across sessions, :mod:`aioinfer.weights`;
  it and ``ep.stop_share_ep_contexts`` take ``0`` or ``1``) and
  ``session.disable_cpu_ep_fallback``, read by the session; others are kept and readable.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidPropertyValueError

if TYPE_CHECKING:
    from ..runtime.request import InferRequest
    from .ep.api import EpDevice


class GraphOptimizationLevel(enum.IntEnum):
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


class OrtExecutionProviderDevicePolicy(enum.IntEnum):
    """Automatic EP selection policies (``SessionOptions.set_provider_selection_policy``)."""

    DEFAULT = 0
    PREFER_CPU = 1
    PREFER_NPU = 2
    PREFER_GPU = 3
    MAX_PERFORMANCE = 4
    MAX_EFFICIENCY = 5
    MIN_OVERALL_POWER = 6


def _count(option: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidPropertyValueError(
            f"SessionOptions.{option}: expected an integer >= 0 (0 = default), got {value!r}",
            key=option)
    return value


SelectionDelegate = Callable[..., Sequence["EpDevice"]]
SHARE_EP_CONTEXTS = "ep.share_ep_contexts"
_FLAGS = (SHARE_EP_CONTEXTS, "ep.stop_share_ep_contexts")  # "0" or "1", checked when set


class SessionOptions:
    """onnxruntime's ``SessionOptions``."""

    def __init__(self) -> None:
        self._graph_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self._execution_mode = ExecutionMode.ORT_SEQUENTIAL
        self._intra = 0
        self._inter = 0
        self.enable_profiling = False
        self.profile_file_prefix = "onnxruntime_profile_"
        self.optimized_model_filepath = ""
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.enable_cpu_mem_arena = True
        self.enable_mem_pattern = True
        self.enable_mem_reuse = True
        self.use_deterministic_compute = False
        self.execution_order = ExecutionOrder.DEFAULT
        self._config: dict[str, str] = {}
        self._devices: list[tuple[list[EpDevice], dict[str, str]]] = []
        self._policy: OrtExecutionProviderDevicePolicy | None = None
        self._delegate: SelectionDelegate | None = None

    # -- the typed attributes ---------------------------------------------------------------
    @property
    def graph_optimization_level(self) -> GraphOptimizationLevel:
        return self._graph_level

    @graph_optimization_level.setter
    def graph_optimization_level(self, value: Any) -> None:
        try:
            self._graph_level = GraphOptimizationLevel(value)
        except ValueError:
            names = ", ".join(m.name for m in GraphOptimizationLevel)
            raise InvalidPropertyValueError(
                f"SessionOptions.graph_optimization_level: {value!r} is not one of {names}",
                key="graph_optimization_level") from None

    @property
    def execution_mode(self) -> ExecutionMode:
        return self._execution_mode

    @execution_mode.setter
    def execution_mode(self, value: Any) -> None:
        try:
            self._execution_mode = ExecutionMode(value)
        except ValueError:
            raise InvalidPropertyValueError(
                f"SessionOptions.execution_mode: {value!r} is not ORT_SEQUENTIAL or "
                "ORT_PARALLEL", key="execution_mode") from None

    @property
    def intra_op_num_threads(self) -> int:
        return self._intra

    @intra_op_num_threads.setter
    def intra_op_num_threads(self, value: int) -> None:
        self._intra = _count("intra_op_num_threads", value)

    @property
    def inter_op_num_threads(self) -> int:
        return self._inter

    @inter_op_num_threads.setter
    def inter_op_num_threads(self, value: int) -> None:
        self._inter = _count("inter_op_num_threads", value)

    # -- config entries ---------------------------------------------------------------------
    def add_session_config_entry(self, key: str, value: str) -> None:
        """Set a session configuration entry (strings, as in onnxruntime)."""
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidPropertyValueError(
                f"add_session_config_entry: key and value must be strings, got "
                f"{type(key).__name__}={type(value).__name__}", key=str(key))
        if key in _FLAGS and value not in ("0", "1"):
            raise InvalidPropertyValueError(
                f"session config entry {key}: expected '0' or '1', got {value!r}", key=key)
        self._config[key] = value

    def shares_weights(self) -> bool:
        """Whether ``ep.share_ep_contexts`` is ``1`` (an aioinfer addition)."""
        return self._config.get(SHARE_EP_CONTEXTS, "0") == "1"

    def get_session_config_entry(self, key: str) -> str:
        """The value of a config entry (KeyError-like error naming it if unset)."""
        from ..errors import UnknownPropertyError

        try:
            return self._config[key]
        except KeyError:
            raise UnknownPropertyError(f"session config entry {key!r} is not set",
                                       key=key) from None

    def config_entries(self) -> Mapping[str, str]:
        """Every entry set so far (an aioinfer addition)."""
        return dict(self._config)

    # -- plugin EP devices and policies -----------------------------------------------------
    def add_provider_for_devices(self, ep_devices: Sequence[EpDevice],
                                 provider_options: Mapping[str, str] | None = None) -> None:
        """Use the execution provider of ``ep_devices`` (from :func:`get_ep_devices`), with
        its options (onnxruntime's ``SessionOptionsAppendExecutionProvider_V2``)."""
        devices = list(ep_devices)
        if not devices:
            raise InvalidPropertyValueError("add_provider_for_devices: no devices given",
                                            key="ep_devices")
        names = {d.ep_name for d in devices}
        if len(names) != 1:
            raise InvalidPropertyValueError(
                f"add_provider_for_devices: the devices belong to several EPs {sorted(names)}; "
                "add each EP's devices with its own call", key="ep_devices")
        options = {str(k): str(v) for k, v in (provider_options or {}).items()}
        self._devices.append((devices, options))

    def set_provider_selection_policy(self, policy: OrtExecutionProviderDevicePolicy) -> None:
        """Let the session pick EP devices by ``policy`` when no provider is given."""
        try:
            self._policy = OrtExecutionProviderDevicePolicy(policy)
        except ValueError:
            names = ", ".join(m.name for m in OrtExecutionProviderDevicePolicy)
            raise InvalidPropertyValueError(
                f"set_provider_selection_policy: {policy!r} is not one of {names}",
                key="policy") from None

    def set_provider_selection_policy_delegate(self, delegate: SelectionDelegate) -> None:
        """Pick EP devices with ``delegate(ep_devices, model_metadata, runtime_metadata,
        max_selections)``, which returns the chosen ones in priority order."""
        if not callable(delegate):
            raise InvalidPropertyValueError(
                "set_provider_selection_policy_delegate: expected a callable",
                key="delegate")
        self._delegate = delegate

    def has_providers(self) -> bool:
        return bool(self._devices or self._policy is not None or self._delegate is not None)


class RunOptions:
    """onnxruntime's ``RunOptions``. Setting ``terminate = True`` cancels the runs using these
    options now (they raise :class:`~aioinfer.errors.RequestCancelledError`) and every later
    run with them, until it is set back to ``False``."""

    def __init__(self) -> None:
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.only_execute_path_to_fetches = False
        self._terminate = False
        self._config: dict[str, str] = {}
        self._active: set[InferRequest] = set()
        self._lock = threading.Lock()

    @property
    def terminate(self) -> bool:
        return self._terminate

    @terminate.setter
    def terminate(self, value: bool) -> None:
        self._terminate = bool(value)
        if self._terminate:
            with self._lock:
                active = list(self._active)
            for request in active:
                request.cancel()

    def add_run_config_entry(self, key: str, value: str) -> None:
        self._config[str(key)] = str(value)

    def get_run_config_entry(self, key: str) -> str:
        return self._config[key]

    def _attach(self, request: InferRequest) -> None:
        with self._lock:
            self._active.add(request)

    def _detach(self, request: InferRequest) -> None:
        with self._lock:
            self._active.discard(request)
