"""``enable_profiling``: per-node timings of each run, written as onnxruntime writes them (a
Chrome trace JSON array: ``chrome://tracing`` or Perfetto open it)."""

from __future__ import annotations

import datetime
import json
import os
import threading
import time
from typing import Any


class Profiler:
    """Collects the profiling entries of each run (from ``InferRequest.profiling_info``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.start_ns = time.time_ns()
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, name: str, entries: list[dict[str, Any]], started_ns: int) -> None:
        """One run's entries; ``started_ns`` is when the run began (``time.time_ns()``)."""
        ts = (started_ns - self.start_ns) / 1000.0
        run: list[dict[str, Any]] = []
        total = 0.0
        for entry in entries:
            dur = float(entry.get("real_time", 0.0)) * 1e6
            kind = "Node" if entry.get("node_type") != "Stage" else "Stage"
            run.append({"cat": kind, "pid": os.getpid(), "tid": threading.get_ident(),
                        "ts": ts + (total if kind == "Node" else 0.0), "dur": dur, "ph": "X",
                        "name": str(entry.get("node_name", "")),
                        "args": {"op_name": str(entry.get("node_type", "")),
                                 "provider": str(entry.get("exec_type", ""))}})
            if kind == "Node":
                total += dur
        with self._lock:
            self._events.append({"cat": "Session", "pid": os.getpid(),
                                 "tid": threading.get_ident(), "ts": ts, "dur": total,
                                 "ph": "X", "name": f"{name}_run", "args": {}})
            self._events.extend(run)

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def write(self) -> str:
        """Write the trace to ``<prefix><date>.json`` and return its name."""
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
        path = f"{self.prefix}{stamp}.json"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.events(), f)
        return path
