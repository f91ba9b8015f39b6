"""Stage 11's measurement of photometric augmentation on one training batch (12 pairs = 24 images, 240x320).

Pixels on the images' device (`dlvf_ros.training.augment` now) against the CPU round trip it replaced (the module at
935a49b), for the default config and for the night-only config of `variants.txt`; median of 20 calls after 3
warm-ups, 2 torch threads. Run from the repository root on a machine with a GPU:

    mkdir -p /tmp/old && git show 935a49b:dlvf_ros/training/augment.py > /tmp/old/augment_old.py
    PYTHONPATH=$PWD python3 models/training/stage11/bench_augment.py

Its output on one H200 is `bench_augment.txt`.
"""

import importlib.util
import statistics
import sys
import time

import torch

from dlvf_ros.training.augment import AugmentConfig, augment_images

spec = importlib.util.spec_from_file_location("augment_old", "/tmp/old/augment_old.py")
assert spec is not None and spec.loader is not None
augment_old = sys.modules["augment_old"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(augment_old)

torch.set_num_threads(2)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
images = torch.rand(24, 3, 240, 320, device=device)
NIGHT_ONLY = AugmentConfig(
    enabled=True,
    p_night=0.5,
    exposure_log2_std=0,
    gamma_range=[1, 1],
    contrast_range=[1, 1],
    saturation_range=[1, 1],
    white_balance_std=0,
    p_glare=0,
    p_vignette=0,
    p_blur=0,
)


def median_ms(augment, config: AugmentConfig) -> float:
    times = []
    for seed in range(23):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        augment(images, torch.Generator().manual_seed(seed), config)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[3:])


name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
print(f"device {device}, {name}, torch {torch.__version__}, 2 threads")
for label, config in {"default": AugmentConfig(enabled=True), "night only": NIGHT_ONLY}.items():
    old, new = median_ms(augment_old.augment_images, config), median_ms(augment_images, config)
    print(
        f"{label:10s}  CPU round trip (old) {old:7.1f} ms   on the device (new) {new:7.1f} ms   ratio {old / new:5.1f}x"
    )
