"""Streaming pipelines: source -> decode -> infer (bounded in flight) -> postprocess -> sinks.

    frames = VideoFile("clip.mp4")                         # or Camera, ImageFolder, Synthetic
    stats = await run_pipeline(compiled, frames, sinks=[VideoSink("out.mp4"),
                                                          JsonLinesSink("out.jsonl")])

Decoding, postprocessing, drawing and encoding run on worker threads in batches; inference
runs on the device's executors through ``compiled.stream``; the event loop only schedules.
Files are processed losslessly (every frame once, in order); live sources (cameras) keep only
the newest frame while the model is busy and count the frames they drop. Cancelling (Ctrl-C)
stops the source, reports the frames still in flight, flushes the sinks and closes the files.
The preprocessing belongs in the model (:class:`aioinfer.preprocess.PrePostProcessor`), so
a decoded ``uint8`` frame goes to the request as it is. PyAV is the optional extra
``aioinfer[video]``; Pillow (``aioinfer[image]``) reads image folders.
"""

from .frames import Detection, Frame, FrameResult
from .postprocess import Classify, nms
from .runner import run_pipeline
from .sinks import CallbackSink, JsonLinesSink, Sink, VideoSink
from .sources import Camera, ImageFolder, Source, Synthetic, VideoFile
from .stats import PipelineStats

__all__ = [
    "run_pipeline",
    "Frame",
    "FrameResult",
    "Detection",
    "PipelineStats",
    "Source",
    "VideoFile",
    "Camera",
    "ImageFolder",
    "Synthetic",
    "Sink",
    "VideoSink",
    "JsonLinesSink",
    "CallbackSink",
    "Classify",
    "nms",
]
