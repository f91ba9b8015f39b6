"""The process entry shared by the nodes: init without rclpy's signal handlers, own SIGINT/SIGTERM flag, spin loop.

rclpy's default SIGINT handling races with `take_message` during shutdown (about 2 exits in 15 returned 1 here);
a flag set by our own handler and a `spin_once` loop exit cleanly every time. A node
whose start-up fails with `StartupError` logs one FATAL line naming the problem, destroys what it had created while
the context is still valid, and the process exits with 1.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Protocol


class StartupError(RuntimeError):
    """The node cannot start (missing map, map/model mismatch, bad parameter): fatal, with the fix in the message."""


class ClosableNode(Protocol):
    def close(self) -> None: ...

    def destroy_node(self) -> None: ...


def run_node(make_node: Callable[[], ClosableNode], name: str, argv: list[str] | None = None) -> int:
    """Create the node, spin until SIGINT/SIGTERM, then `close()` it (finalise outputs) and shut down."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.signals import SignalHandlerOptions

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rclpy.init(args=sys.argv if argv is None else argv, signal_handler_options=SignalHandlerOptions.NO)
    try:
        startup_error = ""
        try:
            node = make_node()
        except StartupError as exc:
            startup_error = str(exc)
        if startup_error:
            rclpy.logging.get_logger(name).fatal(startup_error)
            gc.collect()  # the half-built node (held by the traceback) releases its DDS entities before shutdown
            return 1
        if not isinstance(node, Node):
            raise TypeError(f"{name}: make_node returned a {type(node).__name__}, not an rclpy Node")
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            while not stop.is_set() and rclpy.ok():
                executor.spin_once(timeout_sec=0.1)
        finally:
            node.close()
            executor.remove_node(node)
            node.destroy_node()
        return 0
    finally:
        if rclpy.ok():
            rclpy.shutdown()


def make_node_backend(node_name: str, backend: str, model: str, torch_threads: int):
    """The feature backend of a node; an empty `model` with the learned backend means the shipped model. The
    installed torch is checked first (`dlvf_ros.features.torch_support`), against the model's too."""
    import torch

    from dlvf_ros.features.backends import make_backend
    from dlvf_ros.features.torch_support import TorchVersionError, check_torch_version, recorded_torch_version
    from dlvf_ros.features.xfeat_backend import XFeatMissingError
    from dlvf_ros.package_share import package_share_directory, shipped_model_path

    model_path: str | Path | None = model or None
    if backend == "learned" and model_path is None:
        model_path = shipped_model_path()
        if model_path is None:
            raise StartupError(
                f"{node_name}: the learned backend needs -p model:=PATH (no single *.pt shipped in "
                f"{package_share_directory() / 'models'}); or set backend to orb or sift"
            )
    try:
        model_torch = recorded_torch_version(model_path) if backend == "learned" and model_path is not None else None
        check_torch_version(torch.__version__, model_torch, f"model {model_path}")
        feature_backend = make_backend(backend, model_path)
    except (ValueError, FileNotFoundError, XFeatMissingError, TorchVersionError) as exc:
        raise StartupError(f"{node_name}: {exc}") from exc
    if feature_backend.name in ("learned", "xfeat"):  # the backends that run their network in torch
        torch.set_num_threads(torch_threads)
    return feature_backend
