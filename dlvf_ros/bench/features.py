"""`dlvf bench features`: feature extraction time of every candidate side by side, and training throughput.

Extraction (uint8 RGB image in, keypoints/descriptors/scores out; median over repeats after warm-up; torch and
ONNX Runtime on `--threads` threads) at each size, for:
- reference-style: the U-Net, then the full-resolution 31m-channel descriptor map, sampled at the keypoints;
- eager: the same network sampling each encoder level at the keypoints (`FeatureNet.forward`);
- TorchScript: the exported model through `load_feature_model(...).extract` (the deployment path);
- ONNX Runtime: the contract's `forward` exported to ONNX;
- ORB (1000 keypoints) and SIFT (1000 keypoints), the OpenCV baselines of `dlvf_ros.features.backends`.
The ratio column is median time / reference-style median time at the same size. Floor: TorchScript at 384x512 must
take at most half the reference-style time (exit status 1 otherwise). Torch on 2 threads slows down several-fold
when other processes load the cores (its threads wait on each other); the min column shows the unloaded cost.

Training throughput (pairs/s) at the training size: forward + backward + Adam step through the training pipeline
(`PosePipeline`, dense and sparse matching) on one synthetic pair per step, and the network alone (forward + backward
of two images) for reference. Weights are random: timing does not depend on them.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Literal

import cv2
import numpy as np
import torch
from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.features.backends import OrbBackend, SiftBackend
from dlvf_ros.features.export import export_feature_net, onnx_model_bytes
from dlvf_ros.features.keypoints import soft_argmax_keypoints
from dlvf_ros.features.model_file import load_feature_model
from dlvf_ros.features.sampling import dense_descriptors, normalize_descriptors, sample_map, sample_scores
from dlvf_ros.features.unet import FeatureNet

log = logging.getLogger(__name__)

REFERENCE = "reference-style (dense map)"
FLOOR_CANDIDATE, FLOOR_SIZE, FLOOR_RATIO = "TorchScript export", (384, 512), 0.5


def parse_size(text: str) -> tuple[int, int]:
    """'384x512' -> (384, 512) as (H, W)."""
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size {text!r} must look like HEIGHTxWIDTH, e.g. 384x512") from exc
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=parse_size,
        nargs="+",
        default=[(384, 512), (240, 320)],
        help="extraction sizes HEIGHTxWIDTH (default 384x512 240x320)",
    )
    parser.add_argument("--m", type=int, default=16, help="U-Net base width (default 16: 2.75 M parameters)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per candidate and size (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch / ONNX Runtime threads (default 2)")
    parser.add_argument("--train-size", type=parse_size, default=(240, 320), help="training size (default 240x320)")
    parser.add_argument("--train-repeats", type=int, default=3, help="timed training steps per variant (default 3)")
    parser.add_argument("--no-training", action="store_true", help="skip the training-throughput measurement")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime candidate")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON to this path")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG bar chart of the extraction times")


def interleaved_times_ms(
    functions: dict[str, Callable[[], object]], repeats: int, warmup: int, desc: str
) -> dict[str, list[float]]:
    """Wall times (ms) of `repeats` runs of each function. Runs are interleaved (every function once per round, the
    order rotating each round) so that load from other processes on a shared machine hits every candidate alike."""
    names = list(functions)
    for name in names:
        for _ in range(warmup):
            functions[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in tqdm(range(repeats), desc=desc, unit="round"):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            functions[name]()
            times[name].append(1e3 * (time.perf_counter() - start))
    return times


def bench_image(height: int, width: int) -> np.ndarray:
    """A real photograph (Middlebury motorcycle, left view) resized to height x width, uint8 RGB."""
    import skimage.data

    left = skimage.data.stereo_motorcycle()[0]
    return cv2.resize(left, (width, height), interpolation=cv2.INTER_AREA)


def to_tensor(image_rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image_rgb).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def reference_style(net: FeatureNet, image_rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference's inference: build the full-resolution descriptor map, then sample it at the keypoints."""
    image = to_tensor(image_rgb)
    maps = net.encoder(image)
    keypoint_logits, score_map = net.heads(maps)
    keypoints = soft_argmax_keypoints(keypoint_logits, net.conf["cell"], net.conf["temperature"])
    descriptor_map = dense_descriptors(maps, (image.shape[2], image.shape[3]))
    descriptors = normalize_descriptors(sample_map(descriptor_map, keypoints))
    return keypoints, descriptors, sample_scores(score_map, keypoints)


def extraction_candidates(
    net: FeatureNet, size: tuple[int, int], workdir: Path, threads: int, with_onnx: bool
) -> dict[str, Callable[[np.ndarray], object]]:
    candidates = {
        REFERENCE: lambda image: reference_style(net, image),
        "eager (per-level sampling)": lambda image: net({"image": to_tensor(image)}),
    }
    model_path = workdir / f"model_{size[0]}x{size[1]}.pt"
    export_feature_net(net, model_path, size)
    candidates[FLOOR_CANDIDATE] = load_feature_model(model_path, expected_input_size=size).extract
    if with_onnx:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(onnx_model_bytes(net, size), options, providers=["CPUExecutionProvider"])
        candidates["ONNX Runtime"] = lambda image: session.run(None, {"image": to_tensor(image).numpy()})
    orb, sift = OrbBackend(n_features=1000), SiftBackend(n_features=1000)
    candidates["OpenCV ORB (1000 kp)"] = orb.extract
    candidates["OpenCV SIFT (1000 kp)"] = sift.extract
    return candidates


def bench_extraction(args: argparse.Namespace, net: FeatureNet) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlvf_bench_features_") as workdir, torch.inference_mode():
        for size in args.sizes:
            image = bench_image(*size)
            candidates = extraction_candidates(net, size, Path(workdir), args.threads, not args.no_onnx)
            timings = interleaved_times_ms(
                {name: functools.partial(extract, image) for name, extract in candidates.items()},
                args.repeats,
                args.warmup,
                f"extraction {size[0]}x{size[1]}",
            )
            reference_ms = statistics.median(timings[REFERENCE])
            rows += [
                {
                    "size": f"{size[0]}x{size[1]}",
                    "candidate": name,
                    "median_ms": statistics.median(times),
                    "min_ms": min(times),
                    "ratio": statistics.median(times) / reference_ms,
                    "times_ms": times,
                }
                for name, times in timings.items()
            ]
    return rows


def synthetic_pair_batch(height: int, width: int) -> dict:
    """One (source, target) pair for `PosePipeline`: a real photo and a noisy copy, a planar disparity field (5 to
    20 px), the default rig's field of view at the training size. The ground truth (0.3 m, 2 deg yaw) is not the
    photo's motion; it keeps the matches within the 3 m inlier gate and the pose error away from zero."""
    from dlvf_ros.geometry import transforms
    from dlvf_ros.geometry.camera import StereoRig

    image = to_tensor(bench_image(height, width))
    noisy = (image + 0.02 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    rig = StereoRig(width, height, f=StereoRig().f * width / StereoRig().width, cu=(width - 1) / 2, cv=(height - 1) / 2)
    rows = torch.linspace(5.0, 20.0, height).view(1, 1, height, 1).expand(1, 1, height, width).contiguous()
    return {
        "image_source": image,
        "image_target": noisy,
        "disparity_source": rows,
        "disparity_target": rows.clone(),
        "valid_source": torch.ones_like(rows),
        "valid_target": torch.ones_like(rows),
        "intrinsics": torch.tensor([[rig.f, rig.cu, rig.cv, rig.baseline]], dtype=torch.float32),
        "T_vehicle_camera": torch.from_numpy(rig.T_vehicle_camera).float().unsqueeze(0),
        "T_target_source": torch.from_numpy(transforms.from_xyz_rpy(0.3, 0.0, 0.0, yaw=np.deg2rad(2.0))).float()[None],
        "index": torch.tensor([0]),
    }


def bench_training(args: argparse.Namespace) -> list[dict]:
    """Pairs/s of a full training step through PosePipeline (dense, sparse) and of the network alone."""
    from dlvf_ros.training.config import LossConfig

    height, width = args.train_size
    batch = synthetic_pair_batch(height, width)
    loss_config = LossConfig()
    variants: dict[str, Literal["dense", "sparse"] | None] = {
        "training step, PosePipeline dense matching": "dense",
        "training step, PosePipeline sparse matching": "sparse",
        "network only, forward + backward of 2 images": None,
    }
    steps: dict[str, Callable[[], float | None]] = {}
    usable: dict[str, list[float | None]] = {}
    skipped: dict[str, list[int]] = {}
    for label, mode in variants.items():
        usable[label], skipped[label] = [], [0]
        steps[label] = training_step(FeatureNet(m=args.m).train(), mode, batch, loss_config, skipped[label])
    timings = interleaved_times_ms(
        {label: functools.partial(_keep, usable[label], steps[label]) for label in variants},
        args.train_repeats,
        1,
        f"training {height}x{width}",
    )
    rows = []
    for label, times in timings.items():
        ms = statistics.median(times)
        active = [value for value in usable[label] if value is not None]
        rows.append(
            {
                "size": f"{height}x{width}",
                "variant": label,
                "median_ms_per_pair": ms,
                "pairs_per_s": 1e3 / ms,
                "pose_loss_active_fraction": statistics.mean(active) if active else None,
                "steps": args.train_repeats + 1,
                "steps_skipped_nonfinite_gradient": skipped[label][0],
            }
        )
    return rows


def _keep(values: list[float | None], step: Callable[[], float | None]) -> None:
    """Run one training step and keep what it returns."""
    values.append(step())


def training_step(
    net: FeatureNet, mode: Literal["dense", "sparse"] | None, batch: dict, loss_config, skipped: list[int]
) -> Callable[[], float | None]:
    """One optimisation step: PosePipeline (`mode` dense/sparse) with the trainer's losses, or (None) the network
    alone; returns the fraction of pairs whose pose loss was active (None for the network alone). Steps with a
    non-finite gradient are counted in `skipped[0]` and make no update."""
    from dlvf_ros.training.config import PipelineConfig, SoftMatchConfig
    from dlvf_ros.training.objective import compute_losses
    from dlvf_ros.training.pipeline import PosePipeline

    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    pipeline = PosePipeline(net, PipelineConfig(matching=SoftMatchConfig(mode=mode))) if mode else None

    def step() -> float | None:
        optimizer.zero_grad(set_to_none=False)
        active = None
        if pipeline is None:
            out = net({"image": torch.cat([batch["image_source"], batch["image_target"]])})
            loss = sum(value.sum() for value in (out["keypoints"], out["keypoint_scores"], out["descriptors"]))
        else:
            result = pipeline(batch)
            losses = compute_losses(result, batch["T_target_source"], loss_config, True, score_failures=False)
            loss = losses.total + result.anchor
            active = float(result.ok.float().mean())
        loss.backward()
        if all(bool(torch.isfinite(p.grad).all()) for p in net.parameters() if p.grad is not None):
            torch.nn.utils.clip_grad_norm_(net.parameters(), 2.0)
            optimizer.step()
        else:  # as the trainer does: a non-finite gradient skips the update instead of poisoning the weights
            skipped[0] += 1
        return active

    return step


def print_tables(extraction: list[dict], training: list[dict], floor: dict | None) -> None:
    print(f"\n{'size':<9} {'candidate':<30} {'median ms':>10} {'min ms':>8} {'ratio':>7}")
    for row in extraction:
        print(
            f"{row['size']:<9} {row['candidate']:<30} {row['median_ms']:>10.1f} {row['min_ms']:>8.1f} "
            f"{row['ratio']:>7.3f}"
        )
    if floor:
        verdict = "met" if floor["met"] else "MISSED"
        print(
            f"floor: {FLOOR_CANDIDATE} at {floor['size']} / reference-style = {floor['ratio']:.3f} "
            f"(<= {FLOOR_RATIO}): {verdict}"
        )
    if training:
        print(f"\n{'size':<9} {'training variant':<46} {'ms / pair':>10} {'pairs/s':>8} {'skipped':>8}")
        for row in training:
            print(
                f"{row['size']:<9} {row['variant']:<46} {row['median_ms_per_pair']:>10.0f} {row['pairs_per_s']:>8.2f} "
                f"{row['steps_skipped_nonfinite_gradient']:>4}/{row['steps']}"
            )


def save_plot(extraction: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(dict.fromkeys(row["size"] for row in extraction))
    names = list(dict.fromkeys(row["candidate"] for row in extraction))
    figure, axis = plt.subplots(figsize=(9, 4.5))
    bar_width = 0.8 / len(sizes)
    for i, size in enumerate(sizes):
        times = [
            next((r["median_ms"] for r in extraction if r["size"] == size and r["candidate"] == n), np.nan)
            for n in names
        ]
        axis.barh(np.arange(len(names)) + i * bar_width, times, height=bar_width, label=size)
    axis.set_yticks(np.arange(len(names)) + bar_width * (len(sizes) - 1) / 2, names)
    axis.invert_yaxis()  # first candidate on top
    axis.set_xscale("log")
    axis.set_xlabel("median extraction time per image (ms, log scale)")
    axis.set_title("Feature extraction on CPU")
    axis.legend(title="H x W")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    fileio.atomic_write_bytes(path, buffer.getvalue())


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1 or args.warmup < 0 or args.train_repeats < 1 or args.threads < 1:
        raise SystemExit("dlvf bench features: --repeats, --train-repeats and --threads must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    torch.manual_seed(0)
    net = FeatureNet(m=args.m).eval()
    extraction = bench_extraction(args, net)
    training = [] if args.no_training else bench_training(args)
    floor_rows = [
        r for r in extraction if r["candidate"] == FLOOR_CANDIDATE and r["size"] == "{}x{}".format(*FLOOR_SIZE)
    ]
    floor = None
    if floor_rows:
        floor = {
            "candidate": FLOOR_CANDIDATE,
            "size": floor_rows[0]["size"],
            "ratio": floor_rows[0]["ratio"],
            "max_ratio": FLOOR_RATIO,
            "met": floor_rows[0]["ratio"] <= FLOOR_RATIO,
        }
    print_tables(extraction, training, floor)
    result = {
        "benchmark": "features",
        "m": args.m,
        "threads": args.threads,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "torch_version": torch.__version__,
        "opencv_version": cv2.__version__,
        "machine": platform.processor() or platform.machine(),
        "extraction": extraction,
        "training": training,
        "floor": floor,
    }
    if args.json:
        fileio.atomic_write_text(args.json, json.dumps(result, indent=2))
        log.info("wrote %s", args.json)
    if args.plot:
        save_plot(extraction, args.plot)
        log.info("wrote %s", args.plot)
    return 0 if floor is None or floor["met"] else 1
