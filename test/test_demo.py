"""The demo's plan, cache and table (the full demo is `make demo`; its pieces are tested end to end elsewhere)."""

from pathlib import Path

import pytest

from dlvf_ros import demo_cli
from dlvf_ros.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_config_file_equals_the_defaults():
    assert load_config(demo_cli.DemoConfig, ROOT / "config" / "demo.yaml") == demo_cli.DemoConfig()


@pytest.mark.parametrize(
    "data, message",
    [({"backends": ["orb", "surf"]}, "surf"), ({"lightings": []}, "at least one"), ({"replay_rate": 0.0}, "> 0")],
)
def test_config_is_validated(tmp_path, data, message):
    import yaml

    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_config(demo_cli.DemoConfig, path)


def test_plan_renders_teaches_then_replays_every_lighting_per_backend(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    config = demo_cli.DemoConfig(lightings=["dusk", "night"], backends=["learned", "orb"])
    steps, replays = demo_cli.plan(config, tmp_path, model)
    names = [step.name for step in steps]
    assert names == [
        "render world",
        "teach learned",
        "replay learned dusk",
        "replay learned night",
        "evaluate learned",
        "teach orb",
        "replay orb dusk",
        "replay orb night",
        "evaluate orb",
        "closed loop learned",
        "closed loop orb",
    ]
    closed_loop = steps[-2].argv
    assert closed_loop[closed_loop.index("--lightings") + 1] == "night,glare" and "--model" in closed_loop
    assert closed_loop[closed_loop.index("--seed") + 1] == "100" and "--model" not in steps[-1].argv
    assert replays["orb"] == [tmp_path / "replays" / "orb" / "dusk", tmp_path / "replays" / "orb" / "night"]
    replay_night = steps[3].argv
    assert replay_night[replay_night.index("--bag") + 1].endswith("run_000002")  # run 2 is the second repeat
    assert "--model" in steps[1].argv and "--model" not in steps[5].argv  # classical maps need no model
    # a different model changes the learned steps' keys, not the classical ones
    model.write_bytes(b"other weights")
    steps_after, _ = demo_cli.plan(config, tmp_path, model)
    changed = [a.name for a, b in zip(steps, steps_after) if a.key != b.key]
    assert changed == [
        "teach learned",
        "replay learned dusk",
        "replay learned night",
        "evaluate learned",
        "closed loop learned",
    ]
    evaluate_learned = steps[4].argv
    assert "--per-frame" in evaluate_learned and evaluate_learned[evaluate_learned.index("--model") + 1] == str(model)
    assert evaluate_learned[evaluate_learned.index("--max-translation-error-m") + 1] == "0.25"


def test_step_is_cached_only_with_its_marker_and_key(tmp_path):
    marker = tmp_path / "out" / "done.json"
    step = demo_cli.Step("x", ["--help"], "key1", marker, tmp_path / "logs")
    assert not step.cached()
    marker.parent.mkdir()
    marker.write_text("{}")
    assert not step.cached()  # the output without the key of the inputs that made it
    step.key_file.write_text("key1")
    assert step.cached()
    assert not demo_cli.Step("x", ["--help"], "key2", marker, tmp_path / "logs").cached()


def test_failed_step_reports_its_log(tmp_path):
    step = demo_cli.Step("bad step", ["sim", "--out"], "k", tmp_path / "never", tmp_path / "logs")
    with pytest.raises(SystemExit, match="bad step.*failed"):
        step.run()
    assert step.log.is_file()


def test_table_has_a_row_per_lighting_and_backend():
    stats = {"median_abs": 0.05}
    row = {
        "success_rate": 0.975,
        "strict_success_rate": 0.9,
        "wrong_fix_rate": 0.0,
        "wrong_fixes": 0,
        "fixes_with_ground_truth": 39,
        "frames": 39,
        "images": 40,
        "inliers_median": 120.0,
        "lateral_m": stats,
        "heading_deg": {"median_abs": 0.4},
        "latency_ms_median": 140.0,
    }
    orb = dict(row, success_rate=0.1, wrong_fix_rate=0.25, wrong_fixes=1, fixes_with_ground_truth=4)
    config = demo_cli.DemoConfig(lightings=["night"], backends=["learned", "orb"])
    results = {
        "learned": {
            "by_lighting": {"night": row},
            "per_frame": {"by_lighting": {"night": dict(row, success_rate=1.0)}},
        },
        "orb": {"by_lighting": {"night": orb}},
    }
    text = demo_cli.table(config, results)
    lines = text.splitlines()
    assert len(lines) == 4 and "97.5%" in lines[2] and lines[2].startswith("night") and "10.0%" in lines[3]
    assert " 39/40" in lines[2] and "0.0%  0" in lines[2] and "25.0%  1" in lines[3]  # wrong fixes, count
    assert lines[2].split()[-2:] == ["100.0%", "90.0%"] and lines[3].rstrip().endswith("-")  # per frame


def test_code_changes_invalidate_the_cached_steps_behind_them(tmp_path, monkeypatch):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    config = demo_cli.DemoConfig(lightings=["night"], backends=["orb"])
    before = {step.name: step.key for step in demo_cli.plan(config, tmp_path, model)[0]}
    assert demo_cli.source_fingerprint("localization") == demo_cli.source_fingerprint("localization")
    assert demo_cli.source_fingerprint("localization") != demo_cli.source_fingerprint("sim")
    real = demo_cli.source_fingerprint
    monkeypatch.setattr(
        demo_cli, "source_fingerprint", lambda *names: real(*names) + ("x" if "localization" in names else "")
    )
    after = {step.name: step.key for step in demo_cli.plan(config, tmp_path, model)[0]}
    assert after["render world"] == before["render world"]
    assert after["teach orb"] != before["teach orb"] and after["replay orb night"] != before["replay orb night"]
