"""The ``aioinfer`` command: ``devices``, ``benchmark``, ``run``, ``partition``, ``pipeline``
and ``demo``.

This module only parses arguments and prints; the work is in :mod:`aioinfer.tools`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from . import properties as P
from .core import Core
from .errors import AioInferError

_KEY_PROPERTIES = (P.FULL_DEVICE_NAME, P.OPTIMIZATION_CAPABILITIES, P.PERFORMANCE_HINT,
                   P.NUM_STREAMS, P.INFERENCE_NUM_THREADS, P.INFERENCE_PRECISION_HINT)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aioinfer`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (AioInferError, ValueError, KeyError) as exc:
        print(f"aioinfer {args.command}: error: {exc}", file=sys.stderr)
        return 1


_VIRTUAL = ("HETERO", "MULTI", "AUTO", "BATCH")


def _devices(args: argparse.Namespace) -> int:
    core = Core()
    listed: list[tuple[str, str]] = [(d, "device") for d in core.available_devices]
    hidden: list[str] = getattr(core, "_devices", lambda: ([], []))()[1]  # behind a proxy
    listed += [(d, "behind a proxy") for d in hidden if d not in dict(listed)]
    listed += [(d, "virtual") for d in _VIRTUAL if d not in dict(listed)]
    report: dict[str, dict[str, Any]] = {}
    for device, kind in listed:
        try:
            supported = core.get_property(device, P.SUPPORTED_PROPERTIES)
        except AioInferError:
            continue  # a virtual plugin that is not installed
        keys = [k for k in _KEY_PROPERTIES if k in supported]
        if args.verbose:
            keys += sorted(set(supported) - set(_KEY_PROPERTIES))
        props: dict[str, object] = {}
        for key in keys:
            try:
                props[key] = core.get_property(device, key)
            except AioInferError as exc:  # a virtual device's property needs its targets
                props[key] = f"<{type(exc).__name__}>"
        report[device] = {"kind": kind, "properties": props}
    if args.json:
        import json

        print(json.dumps(report, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="aioinfer devices", title_justify="left")
    table.add_column("device", style="bold")
    table.add_column("kind")
    table.add_column("property")
    table.add_column("value", overflow="fold")
    for device, entry in report.items():
        props = entry["properties"]
        first = True
        for key, value in props.items() or [("", "")]:
            table.add_row(device if first else "", str(entry["kind"]) if first else "",
                          key, str(value))
            first = False
        table.add_section()
    Console(width=120).print(table)
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from .tools.benchmark import BenchmarkConfig, benchmark, format_perf_counts, format_report

    config = BenchmarkConfig(
        model=args.model, device=args.device, api=args.api, hint=args.hint,
        nstreams=args.nstreams, nireq=args.nireq, seconds=args.time, niter=args.niter,
        shape=args.shape, perf_counts=args.pc, loop=args.loop, seed=args.seed,
        progress=not args.no_progress,
    )
    report = benchmark(config, log=lambda line: print(f"[ INFO ] {line}", flush=True))
    print(format_report(report))
    if args.pc:
        print(format_perf_counts(report))
    if args.json:
        report.write_json(args.json)
        print(f"Report written to {args.json}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .tools.run_model import format_results, run_model

    results = run_model(args.model, args.device, args.input, args.shape, args.seed)
    print(format_results(results))
    return 0


def _partition(args: argparse.Namespace) -> int:
    import json

    from .tools.model_source import load_model

    core = Core()
    model = load_model(core, args.model)
    config: dict[str, object] = {}
    if args.affinity:
        if args.affinity.startswith("alternate:"):
            devices = args.affinity.split(":", 1)[1].split(",")
            config["AFFINITY"] = {node.name: devices[k % len(devices)]
                                  for k, node in enumerate(model.proto.graph.node)}
        else:
            with open(args.affinity, encoding="utf-8") as f:
                config["AFFINITY"] = json.load(f)
    with core.compile_model(model, args.device, config) as compiled:
        partition = getattr(compiled, "partition", None)
        if partition is None:
            print(f"aioinfer partition: {args.device} does not split models (use HETERO:...)",
                  file=sys.stderr)
            return 1
        dot = partition.to_dot()
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(dot)
        else:
            print(dot, end="")
        subgraphs = partition.subgraphs
        summary = ", ".join(f"#{s.index} {s.device} ({len(s.nodes)} nodes)" for s in subgraphs)
        print(f"{len(subgraphs)} subgraphs, {len(partition.boundaries)} cut edges: {summary}",
              file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .tools.streaming import print_result, run_with_progress, stats_rows, summary_table

    report, stats, stopped = run_with_progress(
        lambda stats, on_result, on_start: run_demo(
            args.out, frames=args.frames, device=args.device, requests=args.requests,
            batch=args.batch, seed=args.seed, stats=stats, on_result=on_result,
            on_start=on_start),
        progress=not (args.json or args.no_progress), description="demo")
    payload = report.as_dict() if report is not None else {"device": args.device,
                                                           **stats.as_dict()}
    rows = [("device", args.device), *stats_rows(stats)]
    if report is not None:
        rows += [("sample video", str(report.sample_video)),
                 ("annotated video", str(report.annotated_video)),
                 ("results", str(report.results)), *(("note", n) for n in report.notes)]
    print_result(payload, summary_table("aioinfer demo: handwritten digits, held out", rows),
                 as_json=args.json)
    return 130 if stopped else 0


def _pipeline(args: argparse.Namespace) -> int:
    from .tools.streaming import print_result, run_with_progress, stats_rows, summary_table
    from .tools.streaming_pipeline import run_pipeline_command

    outcome, stats, stopped = run_with_progress(
        lambda stats, on_result, on_start: run_pipeline_command(args, stats, on_result,
                                                                on_start),
        progress=not (args.json or args.no_progress), description="pipeline")
    rows = [("model", args.model), ("source", args.input), ("device", args.device),
            *stats_rows(stats)]
    outputs = {"video": args.output, "jsonl": args.jsonl}
    rows += [(k, str(v)) for k, v in outputs.items() if v]
    print_result({"model": args.model, "source": args.input, "device": args.device,
                  **stats.as_dict(), **outputs},
                 summary_table("aioinfer pipeline", rows), as_json=args.json)
    return 130 if stopped else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aioinfer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    devices = sub.add_parser("devices", help="list devices and their key properties")
    devices.add_argument("-v", "--verbose", action="store_true", help="every property")
    devices.add_argument("--json", action="store_true", help="one JSON object on stdout")
    devices.set_defaults(handler=_devices)

    bench = sub.add_parser("benchmark", help="measure latency and throughput "
                           "(like OpenVINO's benchmark_app)")
    _model_args(bench)
    bench.add_argument("-hint", choices=["latency", "throughput", "cumulative_throughput",
                                         "none"], type=str.lower,
                       help="performance hint (default: throughput for async, latency for sync)")
    bench.add_argument("-nstreams", type=int, help="number of streams")
    bench.add_argument("-nireq", type=int, help="requests in flight (async API)")
    bench.add_argument("-t", dest="time", type=float,
                       help="seconds to run (default 10 unless -niter is given)")
    bench.add_argument("-niter", type=int, help="number of iterations")
    bench.add_argument("-pc", action="store_true", help="print per-node profiling")
    bench.add_argument("--api", choices=["sync", "async"], default="async")
    bench.add_argument("--loop", choices=["asyncio", "uvloop", "trio"], default="asyncio",
                       help="event loop of the async API")
    bench.add_argument("--json", metavar="FILE", help="write the report as JSON")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.set_defaults(handler=_benchmark)

    run = sub.add_parser("run", help="infer once and print the outputs")
    _model_args(run)
    run.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                     help="an input from a .npy file (repeatable; others get random data)")
    run.set_defaults(handler=_run)

    part = sub.add_parser("partition", help="split a model over devices and print the "
                          "partition as Graphviz DOT (nodes coloured by device)")
    _model_args(part)
    part.set_defaults(device="HETERO:NUMPY,TEMPLATE")
    part.add_argument("--affinity", metavar="FILE.json|alternate:A,B",
                      help="pin nodes: a JSON {node: device}, or alternate:A,B to cycle the "
                      "nodes over the devices")
    part.add_argument("-o", dest="output", metavar="FILE.dot", help="write the DOT there")
    part.set_defaults(handler=_partition)

    demo = sub.add_parser("demo", help="the embedded demo: classify a video of held-out "
                          "handwritten digits (no downloads), write the annotated video")
    demo.add_argument("-d", dest="device", default="CPU", help="device (default CPU)")
    demo.add_argument("--frames", type=int, help="frames of the sample video (default: "
                      "every held-out digit, 6 frames each: 2160)")
    demo.add_argument("--out", default="aioinfer-demo", help="output folder "
                      "(default ./aioinfer-demo)")
    demo.add_argument("--requests", type=int, default=0,
                      help="inferences in flight (0: the device's optimal number)")
    demo.add_argument("--batch", type=int, default=8,
                      help="frames per inference (default 8)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the sample video")
    _output_args(demo)
    demo.set_defaults(handler=_demo)

    pipe = sub.add_parser("pipeline", help="run a video file, camera or image folder "
                          "through an image classifier")
    pipe.add_argument("-m", dest="model", default="digits",
                      help="ONNX image classifier (NCHW or NHWC with static H, W), or "
                      "'digits' (the demo's); default digits")
    pipe.add_argument("-i", dest="input", required=True,
                      help="video file, image folder, or camera as camera:/dev/video0")
    pipe.add_argument("-d", dest="device", default="CPU", help="device (default CPU)")
    pipe.add_argument("--mode", choices=["auto", "lossless", "live"], default="auto",
                      help="lossless: every frame in order; live: newest frame wins "
                      "(default: live for cameras)")
    pipe.add_argument("--requests", type=int, default=0,
                      help="inferences in flight (0: the device's optimal number)")
    pipe.add_argument("--batch", type=int, default=1,
                      help="frames per inference in lossless mode (the model's batch "
                      "dimension must be dynamic; default 1)")
    pipe.add_argument("--top-k", type=int, default=5)
    pipe.add_argument("--layout", default="NCHW", help="the model's input layout")
    pipe.add_argument("--scale", type=float, nargs="+", default=[255.0],
                      help="divide the pixels by this (one value or one per channel)")
    pipe.add_argument("--mean", type=float, nargs="+",
                      help="subtract this first (0..255 scale; one value or one per channel)")
    pipe.add_argument("-o", dest="output", help="write the annotated video here (.mp4)")
    pipe.add_argument("--jsonl", help="write one JSON line per frame here")
    _output_args(pipe)
    pipe.set_defaults(handler=_pipeline)
    return parser


def _output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout (no table, no progress bar)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", dest="model", default="cnn",
                        help="ONNX file or built-in model (cnn, mlp, bert, gpt2, cnn-qdq, "
                        "bert-qdq; builder args as cnn:image_size=64); default: cnn")
    parser.add_argument("-d", dest="device", default="CPU", help="device (default CPU)")
    parser.add_argument("-shape", help="input shapes, e.g. input[1,3,224,224]")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")


if __name__ == "__main__":
    sys.exit(main())
