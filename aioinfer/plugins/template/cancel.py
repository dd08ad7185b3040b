"""Cancellation inside a TEMPLATE inference: between top-level nodes and between the
iterations of Loop and Scan, so a cancelled request stops even in a model that loops for
ever (a Loop whose trip count is 2**62)."""

from __future__ import annotations

from ...errors import RequestCancelledError
from ...runtime.pipeline import current_run


def stop_if_cancelled(where: str) -> None:
    """Raise :class:`RequestCancelledError` if the async run this thread serves was
    cancelled (``infer()`` runs have none: they are never cancelled)."""
    run = current_run()
    if run is not None and run.cancelled:
        raise RequestCancelledError(f"cancelled before {where}")
