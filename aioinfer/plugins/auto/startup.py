"""Start-up and runtime fallback of one AUTO compiled model: which devices serve it, when.

The *actual* device is the best candidate; with ``ENABLE_STARTUP_FALLBACK`` the *helper*
(the last candidate, as OpenVINO's CPU helper: the one that compiles fastest on a host) is
compiled at the same time, on its own thread. ``compile_model`` returns as soon as either has
compiled, and runs go to it. When the actual device is ready it becomes the one lane new runs
go to; the helper's lane drains (the runs on it finish there, none moves or fails) and its
compiled model is released once its last run is back. A device that fails to compile is
skipped; the compile fails only when every device has failed, naming each.

With ``ENABLE_RUNTIME_FALLBACK`` a run that fails on a device is retried on the next
candidate, compiled then (on a thread of its own, never on the completion thread that saw
the failure); the failed device takes no new runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ...errors import AioInferError, DeviceNotFoundError
from ...model import Model
from ..base import CompiledModel
from ..multi.dispatch import Dispatcher, Lane, Lanes

Compile = Callable[[str], CompiledModel]
Workers = Callable[[CompiledModel], int]


class Startup:
    """The devices of one AUTO model over its life (see the module docstring)."""

    def __init__(self, model: Model, devices: list[str], lanes: Lanes, dispatcher: Dispatcher,
                 compile_on: Compile, workers: Workers, *, helper: bool,
                 on_lane: Callable[[Lane], None]) -> None:
        self.model = model
        self.devices = devices
        self.lanes = lanes
        self.dispatcher = dispatcher
        self._compile_on = compile_on
        self._workers = workers
        self._on_lane = on_lane
        self.actual = devices[0]
        self.helper = devices[-1] if helper and len(devices) > 1 else None
        self.failures: dict[str, str] = {}
        self.compiled_at: dict[str, float] = {}  # device -> time.perf_counter() when ready
        self._lock = threading.RLock()  # a failed start may report back on this thread
        self._ready = threading.Condition(self._lock)
        self._pending: set[str] = set()
        self._closed = False
        self._next = 1  # the next candidate for runtime fallback
        lanes.on_idle = self._drained
        lanes.on_failure = self._failed

    # -- start-up --------------------------------------------------------------------------------
    def begin(self) -> None:
        """Compile the actual device (and the helper); return once one of them serves."""
        if self.helper is None:
            self._add(self.actual, self._compile(self.actual), "actual")
            return
        for device in (self.actual, self.helper):
            self._pending.add(device)
            threading.Thread(target=self._compile_in_background,
                             args=(device, "actual" if device == self.actual else "helper"),
                             name=f"aioinfer:AUTO compile {device}", daemon=True).start()
        with self._ready:
            while not self.lanes.lanes and self._pending:
                self._ready.wait()
            if not self.lanes.lanes:
                raise self._all_failed()

    def _compile(self, device: str) -> CompiledModel:
        import time

        try:
            compiled = self._compile_on(device)
        except AioInferError as exc:
            self.failures[device] = str(exc)
            raise DeviceNotFoundError(
                f"AUTO: {device} failed to compile model {self.model.name!r}: {exc}",
                device=device) from exc
        self.compiled_at[device] = time.perf_counter()
        return compiled

    def _compile_in_background(self, device: str, role: str) -> None:
        try:
            compiled: CompiledModel | None = self._compile(device)
        except DeviceNotFoundError:
            compiled = None
        with self._ready:
            self._pending.discard(device)
            closed = self._closed
            self._ready.notify_all()
        if compiled is None:
            return
        if closed:
            compiled.release()
            return
        self._add(device, compiled, role)

    def _add(self, device: str, compiled: CompiledModel, role: str) -> None:
        """Serve from a newly compiled device: the actual one replaces the helper, the helper
        serves only until then, a runtime-fallback device joins the lanes."""
        with self._ready:
            if role == "helper" and self.actual in self.compiled_at:
                compiled.release()  # the actual device was first: the helper is not needed
                self._ready.notify_all()
                return
            lane = Lane(device, compiled, self._workers(compiled))
            self._on_lane(lane)
            current = list(self.lanes.lanes)
            active = [other for other in current if not other.draining]
            draining = [other for other in current if other.draining]
            if role == "actual":
                draining += active
                active = [lane]
            else:
                active.append(lane)
            # under the lock, so that begin() sees the lane when it wakes up
            self.dispatcher.set_lanes(self.lanes, active, draining)
            self._ready.notify_all()

    def _drained(self, lane: Lane) -> None:
        """A draining lane's last run is back: forget it and release its model (on a thread
        of its own: releasing joins the device's idle worker threads)."""
        self.dispatcher.drop_lane(self.lanes, lane)
        threading.Thread(target=lane.compiled.release, name="aioinfer:AUTO release",
                         daemon=True).start()

    def _all_failed(self) -> DeviceNotFoundError:
        text = "; ".join(f"{d}: {why}" for d, why in self.failures.items())
        return DeviceNotFoundError(f"AUTO: no device could compile model {self.model.name!r}: "
                                   f"{text}", device="AUTO")

    # -- runtime fallback ------------------------------------------------------------------------
    def _failed(self, lane: Lane, error: BaseException) -> bool:
        """A run failed on ``lane`` and no other lane may take it: compile the next
        candidate on a thread. True if one is on its way."""
        with self._lock:
            lane.draining = True
            if self._pending:
                return True
            used = {other.device for other in self.lanes.lanes} | set(self.failures)
            following = [d for d in self.devices if d not in used]
            if not following or self._closed:
                return False
            device = following[0]
            self._pending.add(device)
        threading.Thread(target=self._fallback, args=(device, error),
                         name=f"aioinfer:AUTO fallback {device}", daemon=True).start()
        return True

    def _fallback(self, device: str, error: BaseException) -> None:
        self._compile_in_background(device, "fallback")
        if device in self.failures:
            self.dispatcher.fail_stranded(self.lanes, error)

    def close(self) -> None:
        """The model was released: a compile still running is released when it lands."""
        with self._lock:
            self._closed = True

    def state(self) -> dict[str, Any]:
        """The actual device, the helper, the failures and what serves now."""
        return {"actual": self.actual, "helper": self.helper, "serving": self.lanes.devices,
                "failures": dict(self.failures), "compiling": sorted(self._pending)}
