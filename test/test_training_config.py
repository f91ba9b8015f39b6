"""The stage configs: YAML files in config/ equal the dataclass defaults; bad values are refused with a clear error."""

from pathlib import Path

import pytest
import yaml

from dlvf_ros.config import ConfigError, from_dict, load_config, to_dict
from dlvf_ros.training.config import DatasetConfig, PerFrameConfig, TrainConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


@pytest.mark.parametrize("name, cls", [("dataset", DatasetConfig), ("train", TrainConfig), ("test", PerFrameConfig)])
def test_yaml_files_equal_the_defaults(name, cls):
    assert load_config(cls, CONFIG_DIR / f"{name}.yaml") == cls()
    assert yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text()) == to_dict(cls())


def test_reference_defaults():
    train = TrainConfig()
    assert (train.learning_rate, train.grad_clip_norm, train.batch_size, train.loss.pose_from_epoch) == (
        1e-4,
        2.0,
        3,
        4,
    )
    assert train.loss.planar_weights == [1.0, 50.0, 10.0] and train.loss.keypoint_weight == 2.5
    assert train.pipeline.matching.temperature == 0.01 and train.pipeline.outlier_threshold_m == 3.0
    assert train.pipeline.min_inliers == 6 and train.early_stopping_patience == 50
    assert DatasetConfig().max_edges == 4 and DatasetConfig().sgbm.num_disparities == 48


@pytest.mark.parametrize(
    "cls, data, message",
    [
        (DatasetConfig, {"image_width": 300}, "multiples of 16"),
        (DatasetConfig, {"split": {"train": [0, 1], "validation": [1]}}, "disjoint"),
        (DatasetConfig, {"split": {"by": "roots"}}, "not one of"),
        (TrainConfig, {"pipeline": {"matching": {"mode": "fuzzy"}}}, "not one of"),
        (TrainConfig, {"pipeline": {"min_inliers": 2}}, "min_inliers"),
        (TrainConfig, {"loss": {"planar_weights": [1, 2]}}, "planar_weights"),
        (TrainConfig, {"learning_rate": 0}, "learning_rate"),
        (TrainConfig, {"lr": 0.1}, "unknown key"),
        (PerFrameConfig, {"image_width": 320}, "both"),
        (PerFrameConfig, {"sgbm_width": 0}, "sgbm_width"),
    ],
)
def test_bad_values_are_refused(cls, data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(cls, data, "test.yaml")


def test_per_frame_disparity_range_scales_with_the_test_width():
    """Every backend gets depth down to the same distance: 48 disparities at the reference's 320 px, 80 at 512 px."""
    config = PerFrameConfig()
    assert config.localizer_config(320).stereo.sgbm.num_disparities == 48
    assert config.localizer_config(512).stereo.sgbm.num_disparities == 80
    assert config.sgbm_for_width(384).num_disparities == 64
    assert config.sgbm_for_width(512).block_size == config.sgbm.block_size
    assert PerFrameConfig(sgbm_width=None).localizer_config(512).stereo.sgbm.num_disparities == 48
