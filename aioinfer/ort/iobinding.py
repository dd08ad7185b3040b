"""IOBinding: inputs set once, outputs written into preallocated buffers.

``bind_cpu_input`` / ``bind_input`` set an input of the binding's own infer request (the array
is used as it is, not copied, while it stays bound); ``bind_output`` with a buffer
preallocates the output (results land in that buffer), without one the session allocates it.
``run_with_iobinding`` runs it, ``await run_with_iobinding_async`` without blocking the loop
(onnxruntime has no async form of it: microsoft/onnxruntime#17889). Raw device pointers
(``buffer_ptr``) are not supported: bind a numpy array or an :class:`aioinfer.Tensor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, NotSupportedError

if TYPE_CHECKING:
    from ..runtime.request import InferRequest
    from .session import InferenceSession


def _host(device_type: str, what: str) -> None:
    if str(device_type).lower() != "cpu":
        raise NotSupportedError(f"IOBinding.{what}: device_type {device_type!r}: only 'cpu' "
                                "buffers can be bound here", device=str(device_type))


class IOBinding:
    """onnxruntime's ``IOBinding`` over one infer request of the session."""

    def __init__(self, session: InferenceSession) -> None:
        self._session = session
        self._request: InferRequest = session._compiled.create_infer_request()
        self._inputs: dict[str, Any] = {}
        self._outputs: dict[str, Any] = {}
        self._results: list[Any] = []

    # -- inputs ------------------------------------------------------------------------------
    def bind_cpu_input(self, name: str, arr_on_cpu: Any) -> None:
        self._inputs[self._session._input_name(name)] = arr_on_cpu

    def bind_input(self, name: str, device_type: str = "cpu", device_id: int = 0,
                   element_type: Any = None, shape: Any = None, buffer_ptr: Any = None,
                   value: Any = None) -> None:
        """Bind an input; pass the array as ``value`` (``buffer_ptr`` is not supported)."""
        _host(device_type, "bind_input")
        if buffer_ptr is not None or value is None:
            raise NotSupportedError("IOBinding.bind_input: raw buffer pointers are not "
                                    "supported; pass value=<array> or use bind_cpu_input",
                                    device=str(device_type))
        self.bind_cpu_input(name, value)

    def bind_ortvalue_input(self, name: str, value: Any) -> None:
        self.bind_cpu_input(name, value)

    # -- outputs -----------------------------------------------------------------------------
    def bind_output(self, name: str, device_type: str = "cpu", device_id: int = 0,
                    element_type: Any = None, shape: Any = None, buffer_ptr: Any = None,
                    value: Any = None) -> None:
        """Bind an output: to a preallocated array ``value`` (results land there), or, with
        none, to a buffer the session allocates."""
        _host(device_type, "bind_output")
        if buffer_ptr is not None:
            raise NotSupportedError("IOBinding.bind_output: raw buffer pointers are not "
                                    "supported; pass value=<array>", device=str(device_type))
        self._outputs[self._session._output_name(name)] = value

    def bind_ortvalue_output(self, name: str, value: Any) -> None:
        self.bind_output(name, value=value)

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        self._outputs.clear()

    def synchronize_inputs(self) -> None:
        """Host buffers need no synchronisation."""

    def synchronize_outputs(self) -> None:
        """Host buffers need no synchronisation."""

    # -- results -----------------------------------------------------------------------------
    def get_outputs(self) -> list[Any]:
        """The bound outputs of the last run, in binding order."""
        return list(self._results)

    def copy_outputs_to_cpu(self) -> list[Any]:
        return [np.array(v, copy=True) for v in self._results]

    # -- used by the session -----------------------------------------------------------------
    def _prepare(self) -> InferRequest:
        names = [p.name for p in self._request.inputs]
        missing = [n for n in names if n not in self._inputs]
        if missing:
            raise InputError(f"IOBinding: input(s) {missing} are not bound", input_name=missing[0])
        for name in names:
            self._request.set_tensor(name, self._inputs[name])
        for name, value in self._outputs.items():
            if value is not None:
                self._request.set_tensor(name, value)
        return self._request

    def _collect(self, results: Any) -> None:
        names = list(self._outputs) or [p.name for p in self._request.outputs]
        self._results = [results[n] for n in names]
