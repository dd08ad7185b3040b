"""The ``aioinfer`` command: ``devices``, ``benchmark``, ``run`` and ``partition``.

This module only parses arguments and prints; the work is in :mod:`aioinfer.tools`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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


def _devices(args: argparse.Namespace) -> int:
    core = Core()
    for device in core.available_devices:
        print(device)
        supported = core.get_property(device, P.SUPPORTED_PROPERTIES)
        for key in _KEY_PROPERTIES:
            if key in supported:
                print(f"    {key:<26} {core.get_property(device, key)}")
        if args.verbose:
            for key in sorted(set(supported) - set(_KEY_PROPERTIES)):
                print(f"    {key:<26} {core.get_property(device, key)}  ({supported[key]})")
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aioinfer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    devices = sub.add_parser("devices", help="list devices and their key properties")
    devices.add_argument("-v", "--verbose", action="store_true", help="every property")
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
    return parser


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", dest="model", default="cnn",
                        help="ONNX file or built-in model (cnn, mlp, bert, gpt2, cnn-qdq, "
                        "bert-qdq; builder args as cnn:image_size=64); default: cnn")
    parser.add_argument("-d", dest="device", default="CPU", help="device (default CPU)")
    parser.add_argument("-shape", help="input shapes, e.g. input[1,3,224,224]")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")


if __name__ == "__main__":
    sys.exit(main())
