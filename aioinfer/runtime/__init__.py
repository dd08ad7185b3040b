"""Infer requests, their stages and the executors that run them.

- :mod:`.request`: ``InferRequest`` (``infer``, ``infer_async``, ``start_async``/``wait``/
  ``wait_for``/``set_callback``/``cancel``).
- :mod:`.pipeline`: one async run, its stages chained across executors.
- :mod:`.executors`: per-device worker threads (one per stream), ``HOST`` and ``WAIT``.
- :mod:`.completion`: per-loop completion ports (asyncio, uvloop, trio), one wake-up for many.
- :mod:`.infer_queue`: ``AsyncInferQueue``; :mod:`.streaming`: ``compiled.stream``.
"""
