"""Matplotlib (Agg) figures of training and test results, written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from dlvf_ros import fileio


def _save(figure, path: str | Path) -> None:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    fileio.atomic_write_bytes(path, buffer.getvalue())


def plot_training_curve(rows: list[dict], path: str | Path, initial_val_loss: float | None = None) -> None:
    """Losses and validation errors per epoch from metrics rows (values may be strings, as read from CSV), with the
    validation loss before training (untrained, or the `--init` weights) as a reference line."""
    epochs = [int(row["epoch"]) for row in rows]
    column = lambda key: [float(row[key]) for row in rows]  # noqa: E731
    figure, (losses, errors) = plt.subplots(1, 2, figsize=(11, 4))
    losses.plot(epochs, column("train_loss"), "o-", label="train (optimised terms)")
    losses.plot(epochs, column("val_loss"), "s-", label="validation (all weighted terms)")
    losses.plot(epochs, column("val_pose_loss"), ":", label="validation pose")
    if any(float(row.get("val_descriptor_loss") or 0.0) > 0 for row in rows):
        losses.plot(
            epochs,
            [float(row.get("val_descriptor_loss") or "nan") for row in rows],
            "--",
            label="validation descriptor",
        )
    if initial_val_loss is not None:
        losses.axhline(initial_val_loss, color="tab:orange", linestyle="-.", label="validation before training")
    active = [e for e, a in zip(epochs, column("pose_loss_active")) if a]
    if active:
        losses.axvline(active[0] - 0.5, color="grey", linestyle="--", label="pose loss on")
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss")
    losses.set_yscale("log")
    losses.legend()
    losses.set_title("training curve")
    errors.plot(epochs, column("val_rmse_x_m"), "o-", label="x RMSE (m)")
    errors.plot(epochs, column("val_rmse_y_m"), "s-", label="y RMSE (m)")
    errors.plot(epochs, column("val_rmse_heading_deg"), "^-", label="heading RMSE (deg)")
    errors.plot(epochs, column("val_ok_fraction"), "k--", label="elements with enough inliers")
    if all(row.get("val_match_accuracy") not in (None, "") for row in rows):
        errors.plot(epochs, column("val_match_accuracy"), "g-.", label="keypoints matched within reach of the truth")
    errors.set_xlabel("epoch")
    errors.legend()
    errors.set_title("validation pose errors")
    _save(figure, path)


def plot_test_results(summary: dict, frames: list[dict], path: str | Path, title: str = "") -> None:
    """Success rate per run pair, inliers per lighting, and per-frame planar / heading errors."""
    figure, (success, inliers, errors) = plt.subplots(1, 3, figsize=(15, 4))
    pairs = summary["per_run_pair"]
    success.bar(list(pairs), [100 * v["success_rate"] for v in pairs.values()], color="tab:green")
    success.set_ylim(0, 100)
    success.set_ylabel("success (%)")
    success.set_xlabel("live run -> map run")
    success.set_title(f"success {100 * summary['success_rate']:.1f} % of {summary['frames']} frames")
    lightings = sorted({f["lighting"] for f in frames})
    inliers.boxplot(
        [[f["inliers"] for f in frames if f["lighting"] == name] for name in lightings], tick_labels=lightings
    )
    inliers.set_ylabel("RANSAC inliers")
    inliers.set_xlabel("lighting of the live run")
    inliers.set_title("inliers per lighting")
    localized = [f for f in frames if f["localized"]]
    if localized:
        planar = [float(np.hypot(f["errors"]["x_m"], f["errors"]["y_m"])) for f in localized]
        heading = [abs(f["errors"]["yaw_deg"]) for f in localized]
        colours = ["tab:green" if f["success"] else "tab:red" for f in localized]
        errors.scatter(planar, heading, c=colours, s=12)
        errors.set_xscale("symlog", linthresh=0.1)
        errors.set_yscale("symlog", linthresh=1.0)
    errors.set_xlabel("planar error (m)")
    errors.set_ylabel("|heading error| (deg)")
    errors.set_title(f"localized frames ({len(localized)}); green = success")
    if title:
        figure.suptitle(title)
    _save(figure, path)
