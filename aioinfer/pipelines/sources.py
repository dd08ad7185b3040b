"""Frame sources. Each is an async iterable of :class:`~aioinfer.pipelines.Frame` that
decodes on a pipeline worker thread, a few frames per hand-over (``chunk``), never on the
event loop.

``live`` says how :func:`~aioinfer.pipelines.run_pipeline` treats a source by default: a live
source (a camera) produces at its own pace and only its newest frame is kept; the others are
read losslessly, at the model's pace.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import anyio
import numpy as np

from ..errors import AioInferError
from .frames import Frame
from .workers import off_loop

Item = tuple[np.ndarray, "int | None"]
"""What a source's reader yields: an ``H x W x 3`` uint8 RGB image and its label (or None)."""


class Source(Protocol):
    """An async iterable of frames with ``live`` (drop-oldest by default) and ``fps`` (its
    frame rate, 0 when unknown)."""

    live: bool
    fps: float

    def __aiter__(self) -> AsyncGenerator[Frame, None]: ...


def require_av() -> Any:
    """Import PyAV, or raise an error that names the extra to install."""
    try:
        import av
    except ImportError as exc:
        raise AioInferError("video files and cameras need PyAV: pip install "
                            "'aioinfer[video]'") from exc
    return av


def yuv_converter(av: Any, format: str) -> Callable[[Any], Any]:
    """A function converting PyAV frames to pixel ``format`` with one reformatter (one
    swscale context) on the calling thread.

    ``frame.to_ndarray(format=...)`` and the encoder's own conversion build a context per
    frame and, on recent PyAV, a pool of slice threads for it; on a small frame that costs
    several times the decoding (0.6-2.7 ms against 0.1 ms a frame measured on the demo's
    128x128 video, 2 shared cores).
    """
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    try:
        reformatter.reformat(av.VideoFrame(16, 16, "rgb24"), format=format, threads=1)
        options: dict[str, Any] = {"threads": 1}
    except TypeError:  # older PyAV: no `threads`, swscale runs on the calling thread
        options = {}

    def convert(frame: Any) -> Any:
        return reformatter.reformat(frame, format=format, **options)

    return convert


def rgb_converter(av: Any) -> Callable[[Any], np.ndarray]:
    """Decoded PyAV frames -> ``H x W x 3`` uint8 RGB arrays (see :func:`yuv_converter`);
    the same pixels as ``frame.to_ndarray(format="rgb24")``."""
    convert = yuv_converter(av, "rgb24")
    return lambda frame: convert(frame).to_ndarray()


class _ReaderSource:
    """A source over a blocking reader (an iterator of :data:`Item`) made on a worker thread.

    ``pace``: release frame ``i`` no earlier than ``i / fps`` seconds after the start (a file
    or generator played back as a camera would deliver it).
    """

    live = False
    fps = 0.0

    def __init__(self, *, chunk: int = 8, pace: bool = False) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.chunk = chunk
        self.pace = pace

    def _open(self) -> Iterator[Item]:
        raise NotImplementedError

    async def __aiter__(self) -> AsyncGenerator[Frame, None]:
        reader = await off_loop(self._open)
        period = 1.0 / self.fps if self.pace and self.fps > 0 else 0.0
        chunk = 1 if period or self.live else self.chunk
        start = anyio.current_time()
        index = 0
        try:
            while True:
                items = await off_loop(lambda: list(islice(reader, chunk)))
                now = time.perf_counter()
                for image, label in items:
                    if period:
                        await anyio.sleep_until(start + index * period)
                        now = time.perf_counter()
                    yield Frame(index, image, now, label)
                    index += 1
                if len(items) < chunk:
                    break
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                close()  # a generator's close runs its `finally` (the container is closed)


class VideoFile(_ReaderSource):
    """Every frame of a video file, decoded by PyAV (``aioinfer[video]``) to RGB.

    ``labels``: the known class of each frame (by index), for accuracy; ``pace=True`` plays
    the file at its frame rate, like a camera (combine with ``live``).
    """

    def __init__(self, path: str | Path, *, labels: Iterable[int] | None = None,
                 chunk: int = 8, pace: bool = False, live: bool = False) -> None:
        super().__init__(chunk=chunk, pace=pace)
        av = require_av()
        self.path = Path(path)
        if not self.path.is_file():
            raise AioInferError(f"video file {str(self.path)!r} does not exist")
        self.labels = list(labels) if labels is not None else None
        self.live = live
        with av.open(str(self.path)) as container:
            if not container.streams.video:
                raise AioInferError(f"{str(self.path)!r} has no video stream")
            stream = container.streams.video[0]
            self.fps = float(stream.average_rate or 0.0)
            self.frames = int(stream.frames or 0)
            self.size = (int(stream.height), int(stream.width))

    def _open(self) -> Iterator[Item]:
        av = require_av()
        labels = self.labels

        def read() -> Iterator[Item]:
            rgb = rgb_converter(av)
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for k, frame in enumerate(container.decode(stream)):
                    label = labels[k] if labels is not None and k < len(labels) else None
                    yield rgb(frame), label

        return read()


class Camera(_ReaderSource):
    """A capture device through PyAV, live: ``Camera("/dev/video0")`` (Linux, ``v4l2``),
    ``Camera("0", format="avfoundation")`` (macOS), ``Camera("video=...", format="dshow")``.
    ``options`` go to FFmpeg (e.g. ``{"framerate": "30", "video_size": "640x480"}``)."""

    live = True

    def __init__(self, device: str, *, format: str | None = "v4l2",
                 options: dict[str, str] | None = None, fps: float = 30.0) -> None:
        super().__init__(chunk=1)
        require_av()
        self.device = device
        self.format = format
        self.options = dict(options or {})
        self.fps = fps

    def _open(self) -> Iterator[Item]:
        av = require_av()
        try:
            container = av.open(self.device, format=self.format, options=self.options)
        except Exception as exc:  # PyAV's errors (FileNotFoundError, av.error.*)
            raise AioInferError(f"camera {self.device!r} (format {self.format}) could not be "
                                f"opened: {exc}") from exc

        def read() -> Iterator[Item]:
            rgb = rgb_converter(av)
            with container:
                for frame in container.decode(video=0):
                    yield rgb(frame), None

        return read()


class ImageFolder(_ReaderSource):
    """The images of a folder in name order (Pillow, ``aioinfer[image]``), as RGB."""

    def __init__(self, path: str | Path, *, pattern: str = "*",
                 labels: Iterable[int] | None = None, chunk: int = 8) -> None:
        super().__init__(chunk=chunk)
        self.path = Path(path)
        if not self.path.is_dir():
            raise AioInferError(f"image folder {str(self.path)!r} does not exist")
        suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
        self.files = sorted(p for p in self.path.glob(pattern)
                            if p.suffix.lower() in suffixes)
        self.labels = list(labels) if labels is not None else None

    def _open(self) -> Iterator[Item]:
        try:
            from PIL import Image
        except ImportError as exc:
            raise AioInferError("image folders need Pillow: pip install 'aioinfer[image]'") \
                from exc
        labels = self.labels

        def read() -> Iterator[Item]:
            for k, file in enumerate(self.files):
                with Image.open(file) as image:
                    pixels = np.array(image.convert("RGB"))
                yield pixels, (labels[k] if labels is not None and k < len(labels) else None)

        return read()


class Synthetic(_ReaderSource):
    """Frames from ``make()``, a function returning an iterable of ``(image, label)``, called
    on a worker thread; ``fps > 0`` paces them (``live=True``: a synthetic camera)."""

    def __init__(self, make: Callable[[], Iterable[Item]], *, fps: float = 0.0,
                 live: bool = False, chunk: int = 8) -> None:
        super().__init__(chunk=chunk, pace=fps > 0)
        self.make = make
        self.fps = fps
        self.live = live

    def _open(self) -> Iterator[Item]:
        return iter(self.make())
