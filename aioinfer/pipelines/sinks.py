"""Sinks: where results go. A sink's methods are synchronous and run on a pipeline worker
thread, a batch of results at a time, in frame order; ``close`` is called once, also after
a failure or a cancellation, so files are always finished (a video's index written)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

from .annotate import annotate
from .frames import Frame, FrameResult
from .sources import require_av, yuv_converter


class Sink(Protocol):
    """Receives every delivered result, in order."""

    def write(self, frame: Frame, result: FrameResult) -> None: ...

    def close(self) -> None: ...


class VideoSink:
    """An annotated video (:func:`~aioinfer.pipelines.annotate.annotate`) written with PyAV
    (``aioinfer[video]``): H.264 in MP4 by default, opened at the first frame's size.

    The default x264 preset is ``ultrafast``: on the demo's noisy frames ``veryfast`` spends
    about three times as long per frame (1.3-1.5 ms against 0.4-0.5 ms, measured), more than
    the inference, for a file that is only looked at; pass ``options`` for a smaller one."""

    def __init__(self, path: str | Path, *, fps: float = 30.0, codec: str = "libx264",
                 options: dict[str, str] | None = None, draw: bool = True) -> None:
        self.av = require_av()
        self.path = Path(path)
        self.fps = fps
        self.codec = codec
        self.options = {"preset": "ultrafast", "crf": "20"} if options is None and \
            codec == "libx264" else dict(options or {})
        self.draw = draw
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._to_yuv: Any = None

    def _open(self, height: int, width: int) -> None:
        from fractions import Fraction

        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = self.av.open(str(self.path), mode="w")
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = container.add_stream(self.codec, rate=rate, options=self.options)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        self._container, self._stream = container, stream
        self._to_yuv = yuv_converter(self.av, "yuv420p")

    def write(self, frame: Frame, result: FrameResult) -> None:
        image = annotate(frame.image, result) if self.draw else frame.image
        if self._container is None:
            self._open(*image.shape[:2])
        stream = self._stream
        image = image[:stream.height, :stream.width]
        video = self._to_yuv(self.av.VideoFrame.from_ndarray(image, format="rgb24"))
        for packet in stream.encode(video):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():  # flush the encoder
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None


class JsonLinesSink:
    """One JSON object per frame (:meth:`FrameResult.to_json`) to a file or a text stream."""

    def __init__(self, target: str | Path | TextIO) -> None:
        if isinstance(target, (str, Path)):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._file: TextIO = open(target, "w", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._file, self._owned = target, False

    def write(self, frame: Frame, result: FrameResult) -> None:
        self._file.write(json.dumps(result.to_json()) + "\n")

    def close(self) -> None:
        if self._owned:
            self._file.close()
        else:
            self._file.flush()


class CallbackSink:
    """Calls ``fn(frame, result)`` for every result (on a worker thread)."""

    def __init__(self, fn: Callable[[Frame, FrameResult], None]) -> None:
        self.fn = fn

    def write(self, frame: Frame, result: FrameResult) -> None:
        self.fn(frame, result)

    def close(self) -> None:
        pass
