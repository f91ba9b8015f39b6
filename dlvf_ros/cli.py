"""`dlvf`: one command-line entry point; each sub-command lives in its own module.

A sub-command module exposes `add_arguments(parser)` and `run(args) -> int`. Modules are imported only when their
command runs, so `dlvf sim` never loads torch and `dlvf --help` loads nothing.

Errors the package raises for bad input (ValueError and its kinds: ConfigError, MapStoreError, BagError,
ModelContractError, ...; OSError: a missing, unreadable or misplaced file) end the command with one line on stderr,
`dlvf COMMAND: error: MESSAGE`, and exit code 2; `--debug` (or DLVF_DEBUG=1) shows the traceback instead. Anything
else is a bug and keeps its traceback. Ctrl-C and SIGTERM end a command with exit code 130 after stopping the node
processes it started.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import signal
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("dlvf_ros.sim.sim_cli", "render a synthetic teach-and-repeat world (UTIAS layout + rosbag2 bags)"),
    "dataset": ("dlvf_ros.training.dataset_cli", "build cross-run training pairs and the disparity cache"),
    "train": ("dlvf_ros.training.train_cli", "train the feature network (single process or torchrun DDP)"),
    "test": ("dlvf_ros.evaluation.per_frame_cli", "per-frame mode: later runs against earlier ones; success, plots"),
    "export": ("dlvf_ros.features.export_cli", "export a checkpoint to a TorchScript model with metadata"),
    "teach": ("dlvf_ros.localization.teach_cli", "build a map store from a teach bag"),
    "map": ("dlvf_ros.localization.map_cli", "inspect, verify or re-extract a map store"),
    "replay": ("dlvf_ros.replay.replay_cli", "play a bag through the real nodes and record their outputs"),
    "evaluate": ("dlvf_ros.evaluation.evaluate_cli", "errors of recorded localization against ground truth; plots"),
    "bench": ("dlvf_ros.bench.bench_cli", "benchmarks: render, features, localize (table + JSON)"),
    "closed-loop": (
        "dlvf_ros.replay.closed_loop_cli",
        "teach a simulated world, then let the path tracker drive repeats at other lightings; scores and plot",
    ),
    "demo": ("dlvf_ros.demo_cli", "the day-to-night teach-and-repeat demo on a synthetic world"),
}


INPUT_ERRORS = (ValueError, OSError)
INPUT_ERROR_EXIT_CODE = 2
DEBUG_HELP = "show the traceback of an error instead of one line (also DLVF_DEBUG=1)"


def error_line(exc: BaseException) -> str:
    """The one-line message of an input error (an OSError as 'FILE: reason' when it names a file)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        message = f"{exc.filename}: {exc.strerror}"
    else:
        message = str(exc) or type(exc).__name__
    return re.sub(r"\s*\n\s*", " ", message.strip())


def interrupt(signum: int, _frame: object) -> None:
    """SIGTERM unwinds a command like Ctrl-C does, so the `with` blocks stop the node processes it started."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("DLVF_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere, also after a sub-command's own sub-command
    # library modules log their progress and warnings (`logging.getLogger(__name__)`); commands print their results
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(
        prog="dlvf", description="Long-term visual teach and repeat with learned features."
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help or an error for unknown commands
        parser.print_help()
        return 2
    module_name, help_text = COMMANDS[argv[0]]
    module = importlib.import_module(module_name)
    command_parser = argparse.ArgumentParser(prog=f"dlvf {argv[0]}", description=help_text)
    command_parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    module.add_arguments(command_parser)
    args = command_parser.parse_args(argv[1:])
    previous_sigterm = signal.signal(signal.SIGTERM, interrupt)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"dlvf {argv[0]}: interrupted", file=sys.stderr)
        return 130
    except INPUT_ERRORS as exc:
        if debug:
            raise
        print(f"dlvf {argv[0]}: error: {error_line(exc)}", file=sys.stderr)
        return INPUT_ERROR_EXIT_CODE
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)


if __name__ == "__main__":
    sys.exit(main())
