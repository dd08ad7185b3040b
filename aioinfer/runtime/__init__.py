"""Infer requests, their stages and the executors that run them.

- :mod:`.request`: ``InferRequest`` (``infer``, ``infer_async``, ``start_async``/``wait``/
  ``wait_for``/``set_callback``/``cancel``).
- :mod:`.stages`: ``Stage`` and ``StageGraph`` (a request's stages as a small DAG), the
  ``StageExecutor`` protocol.
- :mod:`.pipeline`: one async run, its stage graph scheduled across executors.
- :mod:`.executors`: per-device worker threads (one per stream), ``HOST`` and ``WAIT``, the
  per-plugin ``ExecutorRegistry``.
- :mod:`.streams`: sync streams, notifications, data transfers, ``StreamExecutor``.
- :mod:`.subrequest`: ``RequestExecutor``, a stage driving another compiled model's request.
- :mod:`.completion`: per-loop completion ports (asyncio, uvloop, trio), one wake-up for many.
- :mod:`.infer_queue`: ``AsyncInferQueue``; :mod:`.streaming`: ``compiled.stream``.
"""
