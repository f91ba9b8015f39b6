"""Bad input through every offline `dlvf` command: one line on stderr naming the input, a non-zero exit code, no
traceback, and nothing created. (`dlvf teach` has its own matrix in test_localization_teach_cli.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from dlvf_ros import cli


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `dlvf ARGV` as a shell would see them (SystemExit("message") prints the
    message on stderr and exits 1)."""
    try:
        code = cli.main(argv)
        message = ""
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        message = exc.code if isinstance(exc.code, str) else ""
    captured = capsys.readouterr()
    return code, captured.out, captured.err + (message + "\n" if message else "")


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "a_file").write_text("hello\n")
    (tmp_path / "an_empty_dir").mkdir()
    (tmp_path / "corrupt.yaml").write_text("seed: [1,\n")
    (tmp_path / "unknown.yaml").write_text("no_such_key: 1\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    return tmp_path


CASES = [
    (["dataset", "--data", "missing", "--out", "out"], "missing"),
    (["dataset", "--data", "a_file", "--out", "out"], "a_file"),
    (["dataset", "--data", "an_empty_dir", "--out", "out"], "an_empty_dir"),
    (["dataset", "--data", "an_empty_dir", "--out", "out", "--config", "corrupt.yaml"], "corrupt.yaml: not valid YAML"),
    (["dataset", "--data", "an_empty_dir", "--out", "out", "--config", "unknown.yaml"], "['no_such_key']"),
    (["dataset", "--data", "an_empty_dir", "--out", "out", "--config", "binary.yaml"], "binary.yaml is not text"),
    (["dataset", "--data", "an_empty_dir", "--out", "out", "--config", "an_empty_dir"], "an_empty_dir is not a file"),
    (["train", "--dataset", "missing", "--out", "out"], "missing"),
    (["train", "--dataset", "an_empty_dir", "--out", "out", "--config", "corrupt.yaml"], "corrupt.yaml"),
    (["train", "--dataset", "an_empty_dir", "--out", "out", "--config", "unknown.yaml"], "['no_such_key']"),
    (["test", "--data", "missing", "--out", "out"], "missing"),
    (["test", "--data", "an_empty_dir", "--out", "out", "--config", "corrupt.yaml"], "corrupt.yaml"),
    (["export", "--checkpoint", "missing", "--out", "out.pt"], "missing"),
    (["export", "--checkpoint", "a_file", "--out", "out.pt"], "a_file"),
    (["export", "--checkpoint", "an_empty_dir", "--out", "out.pt"], "an_empty_dir"),
    (["sim", "--out", "out", "--config", "corrupt.yaml"], "corrupt.yaml"),
    (["closed-loop", "--out", "out", "--model", "missing.pt"], "missing.pt"),
    (["closed-loop", "--out", "out", "--map", "an_empty_dir"], "an_empty_dir is not a map store"),
    (["closed-loop", "--out", "out", "--lightings", ","], "--lightings"),
    (["closed-loop", "--out", "out", "--lightings", "noon,noonish"], "noonish"),
    (["closed-loop", "--out", "out", "--size", "320x200"], "320x200"),
    (["closed-loop", "--out", "an_empty_dir/../a_file"], "a_file is a file"),
    (["sim", "--out", "out", "--config", "unknown.yaml"], "['no_such_key']"),
    (["sim", "--out", "a_file/sub"], "a_file"),
    (["evaluate", "--replay", "missing", "--out", "out"], "missing"),
    (["evaluate", "--replay", "a_file", "--out", "out"], "a_file"),
    (["map", "info", "missing"], "missing does not exist"),
    (["map", "info", "a_file"], "a_file is a file, not a map directory"),
    (["map", "info", "an_empty_dir"], "an_empty_dir is not a map store"),
    (["map", "verify", "a_file"], "a_file is a file"),
    (["map", "reextract", "missing", "--backend", "orb"], "missing does not exist"),
    (["map", "upgrade", "an_empty_dir"], "an_empty_dir is not a map store"),
]


@pytest.mark.parametrize("argv, named", CASES, ids=[" ".join(a[:3]) + f" {n}" for a, n in CASES])
def test_bad_input_is_one_line_naming_it_and_creates_nothing(inputs, capsys, monkeypatch, argv, named):
    monkeypatch.chdir(inputs)
    monkeypatch.delenv("DLVF_DEBUG", raising=False)
    before = sorted(p.name for p in inputs.rglob("*"))
    code, out, err = run_cli(argv, capsys)
    if argv[:2] == ["map", "verify"]:  # a report on stdout: one BAD line per problem, then a summary
        assert code == 1 and out.startswith("BAD  ") and out.count("BAD  ") == 1, out
        err = out.splitlines()[0]
    lines = err.strip().splitlines()
    assert code in (1, 2) and lines, (code, err)
    assert lines[-1].startswith(f"dlvf {argv[0]}") or lines[-1].startswith("BAD  "), err
    assert named in lines[-1] and "Traceback" not in err, err
    assert len([line for line in lines if line.startswith(("dlvf", "BAD"))]) == 1, err
    assert sorted(p.name for p in inputs.rglob("*")) == before  # nothing created


def test_debug_shows_the_traceback_instead(inputs, capsys, monkeypatch):
    from dlvf_ros.localization.map_format import MapStoreError

    monkeypatch.chdir(inputs)
    with pytest.raises(MapStoreError, match="missing does not exist"):
        cli.main(["map", "info", "missing", "--debug"])
    with pytest.raises(MapStoreError, match="missing does not exist"):
        cli.main(["--debug", "map", "info", "missing"])
    monkeypatch.setenv("DLVF_DEBUG", "1")
    with pytest.raises(MapStoreError):
        cli.main(["map", "info", "missing"])
    monkeypatch.setenv("DLVF_DEBUG", "0")
    assert cli.main(["map", "info", "missing"]) == 2


def test_os_errors_name_the_file():
    assert cli.error_line(PermissionError(13, "Permission denied", "/maps/trail/index.jsonl")) == (
        "/maps/trail/index.jsonl: Permission denied"
    )
    assert cli.error_line(ValueError("first line\n  second line")) == "first line second line"


def test_sigterm_stops_the_processes_a_command_started(tmp_path):
    """`kill` of a running `dlvf` command (a supervisor stopping it) must not leave its node processes running."""
    script = tmp_path / "command.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time, types
            from dlvf_ros import cli
            from dlvf_ros.replay.processes import start_ros_process

            def run(args):
                with start_ros_process(["sleep", "60"], log_dir=sys.argv[1]) as child:
                    print(child.pid, flush=True)
                    time.sleep(60)

            sys.modules["a_command"] = types.SimpleNamespace(add_arguments=lambda parser: None, run=run)
            cli.COMMANDS["a-command"] = ("a_command", "starts a child and waits")
            sys.exit(cli.main(["a-command"]))
            """
        )
    )
    command = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    child_pid = int(command.stdout.readline())
    command.send_signal(signal.SIGTERM)
    assert command.wait(timeout=30) == 130
    assert "dlvf a-command: interrupted" in command.stderr.read()
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)
