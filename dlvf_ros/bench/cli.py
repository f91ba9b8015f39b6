"""`dlvf bench NAME`: dispatch to a benchmark module exposing `add_arguments(parser)` and `run(args) -> int`."""
from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "render": ("dlvf_ros.bench.render", "synthetic stereo rendering throughput (pairs/s)"),
    "features": ("dlvf_ros.bench.features", "feature extraction time: learned (eager/TorchScript/ONNX), ORB, SIFT"),
    "localize": ("dlvf_ros.bench.localize", "end-to-end localization latency per stereo frame"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (module_name, help_text) in BENCHMARKS.items():
        bench_parser = sub.add_parser(name, help=help_text, description=help_text)
        bench_parser.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(bench_parser)


def run(args: argparse.Namespace) -> int:
    return importlib.import_module(args._module).run(args)
