"""run_pipeline on real models and real sources: lossless order, live drops, failures,
cancellation, and the sinks' files."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import numpy as np
import pytest

import aioinfer
from aioinfer import models
from aioinfer.demo import held_out_digits, prepared_model
from aioinfer.demo.render import sample_frames
from aioinfer.pipelines import (
    CallbackSink,
    Classify,
    Frame,
    FrameResult,
    ImageFolder,
    JsonLinesSink,
    PipelineStats,
    Synthetic,
    VideoFile,
    VideoSink,
    run_pipeline,
)
from aioinfer.pipelines.prepare import for_frames


@pytest.fixture(scope="module")
def digits() -> aioinfer.CompiledModel:
    return aioinfer.Core().compile_model(prepared_model(), "CPU",
                                         {"PERFORMANCE_HINT": "THROUGHPUT"})


def digit_source(count: int, **kw: object) -> Synthetic:
    images, labels = held_out_digits()
    return Synthetic(lambda: sample_frames(images, labels, count, hold=3, seed=3), **kw)


@pytest.mark.anyio
async def test_lossless_delivers_every_frame_once_in_order_with_its_own_result(
    digits: aioinfer.CompiledModel,
) -> None:
    seen: list[tuple[int, tuple[int, ...]]] = []
    frames: dict[int, np.ndarray] = {}

    def keep(frame: Frame, result: FrameResult) -> None:
        frames[frame.index] = frame.image
        seen.append((result.index, result.classes))

    stats = await run_pipeline(digits, digit_source(40), sinks=[CallbackSink(keep)],
                               postprocess=Classify(3), requests=3)
    assert [index for index, _ in seen] == list(range(40))
    assert stats.delivered == stats.pulled == 40 and stats.dropped == stats.abandoned == 0
    assert 1 <= stats.max_in_flight <= 3 and stats.labelled == 40
    for index, classes in seen:  # each result is its own frame's: recompute synchronously
        best = np.argsort(-digits(frames[index][None])[0][0], kind="stable")[:3]
        assert classes[0] == best[0]
    assert len({classes[0] for _, classes in seen}) > 3


@pytest.mark.anyio
async def test_live_source_faster_than_the_model_drops_instead_of_queueing() -> None:
    slow = aioinfer.Core().compile_model(for_frames(aioinfer.Core().read_model(
        models.cnn(image_size=96, widths=(16, 32), num_classes=10))), "CPU")
    image = np.zeros((96, 96, 3), np.uint8)
    produced = 0
    waiting: list[int] = []  # frames made by the source, not yet taken nor dropped
    computed: list[int] = []  # frames taken, results not yet written
    stats = PipelineStats()

    def camera():
        nonlocal produced
        for _ in range(300):
            produced += 1
            yield image, None

    def watch(result: FrameResult) -> None:
        waiting.append(produced - stats.pulled - stats.dropped)
        computed.append(stats.pulled - stats.delivered)

    source = Synthetic(camera, fps=3000, live=True)
    await run_pipeline(slow, source, requests=2, stats=stats, on_result=watch, buffer=4)
    assert stats.mode == "live" and stats.dropped > 0
    assert stats.delivered + stats.dropped == 300 and stats.abandoned == 0
    assert max(waiting) <= 2  # the slot and the frame being read: nothing queues up
    assert max(computed) <= 2 + 4 + 32  # in flight, the channel, the drain's batch


@pytest.mark.anyio
async def test_a_failing_sink_stops_the_run_and_closes_the_other_sinks(
    digits: aioinfer.CompiledModel, tmp_path: Path,
) -> None:
    def fail(frame: Frame, result: FrameResult) -> None:
        if frame.index == 5:
            raise RuntimeError("sink is full")

    jsonl = JsonLinesSink(tmp_path / "out.jsonl")
    stats = PipelineStats()
    with pytest.raises(RuntimeError, match="sink is full"):
        await run_pipeline(digits, digit_source(200), sinks=[jsonl, CallbackSink(fail)],
                           requests=2, stats=stats)
    assert stats.interrupted and stats.pulled < 200
    lines = (tmp_path / "out.jsonl").read_text().splitlines()  # closed: complete lines
    assert [json.loads(line)["frame"] for line in lines] == list(range(6))


@pytest.mark.anyio
async def test_cancelled_run_writes_what_it_computed_and_closes_the_video(
    digits: aioinfer.CompiledModel, tmp_path: Path,
) -> None:
    av = pytest.importorskip("av")
    stats = PipelineStats()
    video = tmp_path / "out.mp4"
    with anyio.move_on_after(0.6) as scope:
        await run_pipeline(digits, digit_source(100_000, fps=200), stats=stats,
                           sinks=[VideoSink(video, fps=30)], requests=2)
    assert scope.cancelled_caught and stats.interrupted
    assert stats.delivered > 0 and stats.pulled == stats.delivered + stats.abandoned
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == stats.delivered


@pytest.mark.anyio
async def test_video_file_round_trip_keeps_every_frame(digits: aioinfer.CompiledModel,
                                                       tmp_path: Path) -> None:
    pytest.importorskip("av")
    from aioinfer.demo import write_sample_video

    labels = write_sample_video(tmp_path / "in.mp4", 30, seed=1)
    source = VideoFile(tmp_path / "in.mp4", labels=labels)
    assert source.frames == 30 and source.size == (128, 128) and source.fps == 30
    got: list[int] = []
    stats = await run_pipeline(digits, source, sinks=[VideoSink(tmp_path / "out.mp4")],
                               on_result=lambda r: got.append(r.index))
    assert got == list(range(30)) and stats.labelled == 30
    again = VideoFile(tmp_path / "out.mp4")
    assert again.frames == 30


@pytest.mark.anyio
async def test_image_folder_in_name_order(digits: aioinfer.CompiledModel,
                                          tmp_path: Path) -> None:
    image_mod = pytest.importorskip("PIL.Image")
    images, labels = held_out_digits()
    frames = list(sample_frames(images, labels, 6, hold=1, seed=2))
    for k, (image, _) in enumerate(frames):
        image_mod.fromarray(image).save(tmp_path / f"{k:03d}.png")
    source = ImageFolder(tmp_path, labels=[label for _, label in frames])
    results: list[FrameResult] = []
    await run_pipeline(digits, source, on_result=results.append, requests=2)
    assert [r.index for r in results] == list(range(6))
    expected = [int(digits(image[None])[0].argmax()) for image, _ in frames]
    assert [r.classes[0] for r in results] == expected


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    from aioinfer.errors import AioInferError

    with pytest.raises(AioInferError, match="does not exist"):
        ImageFolder(tmp_path / "nope")
    pytest.importorskip("av")
    with pytest.raises(AioInferError, match="does not exist"):
        VideoFile(tmp_path / "nope.mp4")


@pytest.mark.anyio
async def test_bad_mode_is_refused(digits: aioinfer.CompiledModel) -> None:
    with pytest.raises(ValueError, match="mode must be"):
        await run_pipeline(digits, digit_source(1), mode="fast")


@pytest.mark.anyio
@pytest.mark.parametrize("batch, requests", [(8, 2), (5, 3)])
async def test_batched_lossless_gives_every_frame_its_own_result_once_in_order(
    digits: aioinfer.CompiledModel, batch: int, requests: int,
) -> None:
    seen: list[FrameResult] = []
    images: dict[int, np.ndarray] = {}

    def keep(frame: Frame, result: FrameResult) -> None:
        images[frame.index] = frame.image
        seen.append(result)

    stats = await run_pipeline(digits, digit_source(43), sinks=[CallbackSink(keep)],
                               postprocess=Classify(3), requests=requests, batch=batch)
    assert [r.index for r in seen] == list(range(43))  # 43: the last inference is partial
    assert stats.delivered == stats.pulled == 43 and stats.dropped == stats.abandoned == 0
    assert batch < stats.max_in_flight <= batch * requests
    one_by_one = [digits(images[r.index][None])[0][0] for r in seen]
    for result, scores in zip(seen, one_by_one, strict=True):  # the frame's own row
        assert result.classes[0] == int(np.argmax(scores))
        assert result.scores[0] == pytest.approx(float(scores.max()), rel=1e-5)
        assert result.label is not None and result.latency > 0


@pytest.mark.anyio
async def test_batch_splits_where_the_frame_size_changes(digits: aioinfer.CompiledModel) -> None:
    images, labels = held_out_digits()
    rendered = [image for image, _ in sample_frames(images, labels, 10, hold=1, seed=5)]
    sizes = [96, 96, 96, 128, 128, 96, 96, 96, 96, 128]
    shaped = [image[:s, :s] for image, s in zip(rendered, sizes, strict=True)]
    shapes: list[tuple[int, ...]] = []

    def prepare(batch: np.ndarray) -> np.ndarray:
        shapes.append(batch.shape)
        return batch

    results: list[FrameResult] = []
    await run_pipeline(digits, Synthetic(lambda: ((x, None) for x in shaped)), batch=4,
                       requests=2, prepare=prepare, on_result=results.append)
    assert [r.index for r in results] == list(range(10))
    # groups of 4 in order, each split into runs of one size: 96 96 96|128, 128|96 96 96, 96|128
    assert [s[:2] for s in shapes] == [(3, 96), (1, 128), (1, 128), (3, 96), (1, 96), (1, 128)]
    expected = [int(digits(x[None])[0].argmax()) for x in shaped]
    assert [r.classes[0] for r in results] == expected


@pytest.mark.anyio
async def test_live_mode_infers_the_newest_frame_alone_whatever_the_batch(
    digits: aioinfer.CompiledModel,
) -> None:
    sizes: list[int] = []

    def prepare(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        return batch

    stats = await run_pipeline(digits, digit_source(60, fps=2000, live=True), batch=8,
                               prepare=prepare, requests=2)
    assert stats.mode == "live" and set(sizes) == {1}
    assert stats.delivered + stats.dropped == 60


@pytest.mark.anyio
async def test_bad_batch_is_refused(digits: aioinfer.CompiledModel) -> None:
    with pytest.raises(ValueError, match="batch must be"):
        await run_pipeline(digits, digit_source(1), batch=0)


def test_rgb_converter_gives_the_pixels_of_to_ndarray() -> None:
    av = pytest.importorskip("av")
    from aioinfer.pipelines.sources import rgb_converter, yuv_converter

    rng = np.random.default_rng(0)
    rgb, to_yuv = rgb_converter(av), yuv_converter(av, "yuv420p")
    for size in [(128, 128), (96, 64), (128, 128)]:  # one converter, sizes changing
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        frame = to_yuv(av.VideoFrame.from_ndarray(image, format="rgb24"))
        assert frame.format.name == "yuv420p" and (frame.height, frame.width) == size
        np.testing.assert_array_equal(rgb(frame), frame.to_ndarray(format="rgb24"))
