"""`dlvf bench NAME [OPTIONS]`: dispatch to a benchmark module exposing `add_arguments(parser)` and `run(args) -> int`.

Only the chosen benchmark's module is imported, so one benchmark's dependencies never break another.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "render": ("dlvf_ros.bench.render", "synthetic stereo rendering throughput (pairs/s)"),
    "features": ("dlvf_ros.bench.features", "feature extraction time: learned (eager/TorchScript/ONNX), ORB, SIFT"),
    "localize": ("dlvf_ros.bench.localize", "end-to-end localization latency per stereo frame"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "benchmark",
        choices=sorted(BENCHMARKS),
        help="; ".join(f"{name}: {help_text}" for name, (_, help_text) in BENCHMARKS.items()),
    )
    parser.add_argument(
        "options", nargs=argparse.REMAINDER, help="the benchmark's own options (dlvf bench NAME --help)"
    )


def run(args: argparse.Namespace) -> int:
    module_name, help_text = BENCHMARKS[args.benchmark]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"dlvf bench {args.benchmark}", description=help_text)
    module.add_arguments(parser)
    return module.run(parser.parse_args(args.options))
