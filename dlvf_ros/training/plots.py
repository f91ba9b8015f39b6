"""Matplotlib (Agg) figures of training results, written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

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
