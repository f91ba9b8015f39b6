"""PNG figures of evaluated runs (matplotlib, Agg backend): errors, inliers and latency over time, per lighting; the
per-frame results of `dlvf test`; closed-loop repeats (driven versus taught path, error along the path)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dlvf_ros import fileio
from dlvf_ros.evaluation.closed_loop import TrackingTrace
from dlvf_ros.evaluation.evaluate import RunEvaluation
from dlvf_ros.evaluation.metrics import SuccessCriteria


def _save(fig, path: str | Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    fileio.atomic_write_bytes(path, buffer.getvalue())


def _seconds(run: RunEvaluation):
    return (run.stamp_ns - run.stamp_ns[0]) * 1e-9 if len(run.stamp_ns) else run.stamp_ns * 1.0


def _label(run: RunEvaluation) -> str:
    return f"{run.name} ({run.lighting})"


def plot_errors(runs: list[RunEvaluation], path: str | Path, max_translation_m: float, max_heading_deg: float) -> None:
    """Along-track, lateral and heading error over time, one line per run, success bounds dashed."""
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    for run in runs:
        t = _seconds(run)
        for ax, key in zip(axes, ("along_track_m", "lateral_m", "heading_deg")):
            ax.plot(t, run.errors[key], ".-", ms=3, lw=0.8, label=_label(run))
    for ax, key, bound in zip(
        axes,
        ("along-track [m]", "lateral [m]", "heading [deg]"),
        (max_translation_m, max_translation_m, max_heading_deg),
    ):
        ax.set_ylabel(key)
        ax.axhline(bound, ls="--", c="grey", lw=0.8)
        ax.axhline(-bound, ls="--", c="grey", lw=0.8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("time since first frame [s]")
    fig.suptitle("Localization error against ground truth (vehicle frame)")
    fig.tight_layout()
    _save(fig, path)


def plot_inliers_latency(runs: list[RunEvaluation], path: str | Path) -> None:
    """Inliers and per-frame latency over time, one line per run; unlocalized frames marked with x."""
    fig, (ax_inliers, ax_latency) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for run in runs:
        t = _seconds(run)
        (line,) = ax_inliers.plot(t, run.inliers, ".-", ms=3, lw=0.8, label=_label(run))
        lost = ~run.localized
        ax_inliers.plot(t[lost], run.inliers[lost], "x", c=line.get_color(), ms=5)
        ax_latency.plot(t, run.latency_ms, ".-", ms=3, lw=0.8, c=line.get_color())
    ax_inliers.set_ylabel("inliers")
    ax_latency.set_ylabel("latency [ms]")
    ax_latency.set_xlabel("time since first frame [s]")
    for ax in (ax_inliers, ax_latency):
        ax.grid(alpha=0.3)
    ax_inliers.legend(fontsize=7, loc="upper right")
    fig.suptitle("Inliers and latency per frame (x: not localized)")
    fig.tight_layout()
    _save(fig, path)


def plot_per_lighting(by_lighting: dict[str, dict], path: str | Path) -> None:
    """Success rate, median inliers and median latency per lighting (bars)."""
    labels = list(by_lighting)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, key, title in zip(
        axes,
        ("success_rate", "inliers_median", "latency_ms_median"),
        ("success rate", "median inliers", "median latency [ms]"),
    ):
        values = [by_lighting[label][key] for label in labels]
        ax.bar(labels, values, color="tab:blue")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylim(0, 1.05)
    fig.tight_layout()
    _save(fig, path)


def plot_trajectories(runs: list[RunEvaluation], path: str | Path) -> None:
    """Top view (map frame) of estimated and true vehicle positions."""
    fig, ax = plt.subplots(figsize=(7, 6))
    for run in runs:
        (line,) = ax.plot(
            run.T_map_vehicle_gt[:, 0, 3],
            run.T_map_vehicle_gt[:, 1, 3],
            "-",
            lw=1.5,
            alpha=0.5,
            label=f"{_label(run)} ground truth",
        )
        ax.plot(
            run.T_map_vehicle_est[:, 0, 3],
            run.T_map_vehicle_est[:, 1, 3],
            ".",
            ms=3,
            c=line.get_color(),
            label=f"{_label(run)} estimate",
        )
    ax.set_xlabel("x (map) [m]")
    ax.set_ylabel("y (map) [m]")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_per_frame_results(
    per_run_pair: dict[str, dict],
    runs: list[RunEvaluation],
    criteria: SuccessCriteria,
    path: str | Path,
    title: str = "",
) -> None:
    """`dlvf test`: success per run pair, inliers per lighting, and planar against heading error per frame."""
    fig, (success, inliers, errors) = plt.subplots(1, 3, figsize=(15, 4))
    success.bar(list(per_run_pair), [100 * v["success_rate"] for v in per_run_pair.values()], color="tab:green")
    success.set_ylim(0, 100)
    success.set_ylabel("success (%)")
    success.set_xlabel("live run -> map run")
    frames = sum(len(run.stamp_ns) for run in runs)
    rate = np.concatenate([run.success for run in runs]).mean()
    success.set_title(f"success {100 * rate:.1f} % of {frames} frames")
    lightings = sorted({run.lighting for run in runs})
    inliers.boxplot(
        [np.concatenate([run.inliers for run in runs if run.lighting == name]) for name in lightings],
        tick_labels=lightings,
    )
    inliers.set_ylabel("RANSAC inliers")
    inliers.set_xlabel("lighting of the live run")
    inliers.set_title("inliers per lighting")
    localized = np.concatenate([run.localized for run in runs])
    good = np.concatenate([run.success for run in runs])[localized]
    planar = np.concatenate([run.errors["translation_m"] for run in runs])[localized]
    heading = np.abs(np.concatenate([run.errors["heading_deg"] for run in runs])[localized])
    errors.scatter(planar, heading, c=np.where(good, "tab:green", "tab:red"), s=12)
    errors.axvline(criteria.max_translation_error_m, ls="--", c="grey", lw=0.8)
    errors.axhline(criteria.max_heading_error_deg, ls="--", c="grey", lw=0.8)
    errors.set_xscale("symlog", linthresh=0.1)
    errors.set_yscale("symlog", linthresh=1.0)
    errors.set_xlabel("planar error (m)")
    errors.set_ylabel("|heading error| (deg)")
    errors.set_title(f"localized frames ({int(localized.sum())}); green = success")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_closed_loop(taught_xy: np.ndarray, traces: dict[str, TrackingTrace], path: str | Path) -> None:
    """Top view (world frame) of the taught path and each run's driven path, and each run's lateral error along the
    path."""
    fig, (top, along) = plt.subplots(2, 1, figsize=(8, 9), gridspec_kw={"height_ratios": [2, 1]})
    top.plot(taught_xy[:, 0], taught_xy[:, 1], "k-", lw=3, alpha=0.25, label="taught")
    for label, trace in traces.items():
        (line,) = top.plot(trace.xy[:, 0], trace.xy[:, 1], "-", lw=1.2, label=label)
        along.plot(trace.progress_m, trace.lateral_m, "-", lw=1.0, c=line.get_color(), label=label)
    top.plot(*taught_xy[0], "ko", ms=5)
    top.set_xlabel("x (world) [m]")
    top.set_ylabel("y (world) [m]")
    top.set_aspect("equal", adjustable="datalim")
    top.grid(alpha=0.3)
    top.legend(fontsize=7)
    top.set_title("closed-loop repeats: driven versus taught path")
    along.axhline(0.0, c="k", lw=0.8)
    along.set_xlabel("progress along the taught path [m]")
    along.set_ylabel("lateral error [m] (+ left)")
    along.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
