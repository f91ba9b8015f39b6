"""Run a ROS 2 node (console script or `python -m module`) as its own process: start, wait until ready, stop.

Each child gets its own process group (so a stop reaches everything it started), the `--ros-args` for remaps and
parameters, and the caller's environment (tests and `dlvf replay` apply dlvf_ros.replay.environment first, so children
share the machine-local DDS settings). Its stdout and stderr go to one log file, quoted in every error.
Readiness = the node is visible in the ROS graph and named topics have its publisher / subscription.
Stop = SIGINT to the group, SIGKILL after a timeout. rclpy is imported only inside the readiness check.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import yaml


class RosProcessError(RuntimeError):
    """A child ROS process did not start, did not become ready, or failed; the message quotes its log."""


def python_module_command(module: str, *args: str) -> list[str]:
    """Command that runs `python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def format_parameter(value: Any) -> str:
    """A parameter value as `-p name:=VALUE` expects it (YAML flow style; strings that look like numbers quoted)."""
    if isinstance(value, (list, tuple)):
        value = list(value)
    elif not isinstance(value, (bool, int, float, str)):
        raise ValueError(f"parameter values must be bool, int, float, str or a list of them, got {value!r}")
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip().removesuffix("...").strip()


def ros_arguments(
    node_name: str | None = None,
    remap: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
    params_file: str | Path | None = None,
    log_level: str | None = None,
) -> list[str]:
    """`--ros-args` list: node rename (`-r __node:=NAME`), topic remaps, `--params-file`, then `-p` overrides."""
    args: list[str] = []
    if node_name:
        args += ["-r", f"__node:={node_name}"]
    for source, target in (remap or {}).items():
        args += ["-r", f"{source}:={target}"]
    if params_file is not None:
        if not Path(params_file).is_file():
            raise FileNotFoundError(f"parameter file {params_file} does not exist")
        args += ["--params-file", str(params_file)]
    for name, value in (parameters or {}).items():  # after the file: later rules win, so `-p` overrides it
        args += ["-p", f"{name}:={format_parameter(value)}"]
    if log_level:
        args += ["--log-level", log_level]
    return ["--ros-args", *args] if args else []


class RosProcess:
    """A started child process; use as a context manager to stop it on exit."""

    def __init__(self, command: list[str], node_name: str | None, log_path: Path, popen: subprocess.Popen) -> None:
        self.command, self.node_name, self.log_path, self.popen = command, node_name, log_path, popen
        self.pid = popen.pid

    def __enter__(self) -> RosProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self, tail_lines: int | None = None) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""
        return "\n".join(text.splitlines()[-tail_lines:]) if tail_lines else text

    def failure_reason(self) -> str:
        """The process's own account of why it failed: its last FATAL or ERROR log line (else its last line)."""
        lines = [line.strip() for line in self.log_text().splitlines() if line.strip()]
        for level in ("[FATAL]", "[ERROR]"):
            marked = [line for line in lines if level in line]
            if marked:
                return marked[-1].split("]: ", 1)[-1]
        return lines[-1] if lines else "no output"

    def _error(self, message: str) -> RosProcessError:
        return RosProcessError(
            f"{message}\n  command: {' '.join(self.command)}\n  log ({self.log_path}), last lines:\n"
            + "\n".join("    " + line for line in self.log_text(40).splitlines())
        )

    def wait_ready(
        self, timeout_s: float = 30.0, publishes: Iterable[str] = (), subscribes: Iterable[str] = (), node: Any = None
    ) -> None:
        """Wait until the node is in the graph and has a publisher on each of `publishes` and a subscription on
        each of `subscribes`. `node`: an rclpy node to look with (default: a temporary one in its own context)."""
        if self.node_name is None:
            raise ValueError("wait_ready needs the node name: start the process with node_name=...")
        publishes, subscribes = list(publishes), list(subscribes)
        if node is not None:
            return self._wait_ready(node, timeout_s, publishes, subscribes)
        import rclpy

        context = rclpy.Context()
        rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        try:
            probe = rclpy.create_node(f"dlvf_probe_{os.getpid()}_{self.pid}", context=context)
            try:
                self._wait_ready(probe, timeout_s, publishes, subscribes)
            finally:
                probe.destroy_node()
        finally:
            rclpy.shutdown(context=context)

    def _wait_ready(self, node: Any, timeout_s: float, publishes: list[str], subscribes: list[str]) -> None:
        deadline = time.monotonic() + timeout_s
        missing = ["the node in the ROS graph"]
        while time.monotonic() < deadline:
            if not self.alive():
                raise self._error(f"{self.node_name} exited with code {self.returncode} before it was ready")
            missing = []
            if self.node_name not in {name for name, _ in node.get_node_names_and_namespaces()}:
                missing.append("the node in the ROS graph")
            for topic in publishes:
                if self.node_name not in {i.node_name for i in node.get_publishers_info_by_topic(topic)}:
                    missing.append(f"a publisher on {topic}")
            for topic in subscribes:
                if self.node_name not in {i.node_name for i in node.get_subscriptions_info_by_topic(topic)}:
                    missing.append(f"a subscription to {topic}")
            if not missing:
                return
            time.sleep(0.05)
        raise self._error(f"{self.node_name} not ready after {timeout_s:.1f} s; missing: {', '.join(missing)}")

    def wait(self, timeout_s: float) -> int:
        """Wait for the process to exit by itself; returns its code (RosProcessError on timeout: it keeps running)."""
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise self._error(f"{self.node_name or self.command[0]} still running after {timeout_s:.1f} s") from None

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGINT to the process group, SIGKILL after `timeout_s`; returns the exit code (-9 if killed)."""
        if self.alive():
            self._signal_group(signal.SIGINT)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)  # the child leads its own group (start_new_session)


def start_ros_process(
    command: list[str],
    node_name: str | None = None,
    remap: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
    params_file: str | Path | None = None,
    env: dict[str, str] | None = None,
    log_dir: str | Path | None = None,
    cwd: str | Path | None = None,
    log_level: str | None = None,
) -> RosProcess:
    """Start `command` + `--ros-args ...` in its own process group; output goes to LOG_DIR/NAME.log.

    `env` is added to this process's environment. If neither ROS_LOG_DIR nor HOME is set, ROS_LOG_DIR is set to
    the log directory (rclpy.init fails without one of them).
    """
    if not command:
        raise ValueError("start_ros_process: empty command")
    label = node_name or Path(command[0]).name
    log_dir = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="dlvf-proc-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{label}.log"
    child_env = {**os.environ, **(env or {})}
    if "ROS_LOG_DIR" not in child_env and "HOME" not in child_env:
        child_env["ROS_LOG_DIR"] = str(log_dir)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    full = [*command, *ros_arguments(node_name, remap, parameters, params_file, log_level)]
    with open(log_path, "wb") as log:
        try:
            popen = subprocess.Popen(
                full,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise RosProcessError(f"cannot start {' '.join(full)}: {exc}") from exc
    return RosProcess(full, node_name, log_path, popen)
