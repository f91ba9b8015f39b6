"""Contact sheets as labelled PNGs: the same places (rows) under each run's lighting (columns), or one view of
several styles (rows) under several lightings (columns)."""

from __future__ import annotations

import io

import numpy as np

from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim.config import RenderConfig, WorldConfig
from dlvf_ros.sim.lighting import lighting_preset
from dlvf_ros.sim.trajectory import Trajectory, pose_on_path


def place_arc_lengths(path_length_m: float, places: int) -> np.ndarray:
    """`places` arc lengths (m) spread evenly along the taught path (centres of equal segments)."""
    if places < 1:
        raise ValueError(f"contact sheet: need at least one place, got {places}")
    return (np.arange(places) + 0.5) * path_length_m / places


def nearest_frames(trajectory: Trajectory, place_s_m: np.ndarray) -> list[int]:
    """Pose id of the frame of `trajectory` closest along the path to each place."""
    return [int(np.argmin(np.abs(trajectory.path_s_m - s))) for s in place_s_m]


def contact_sheet_png(
    images: list[list[np.ndarray]],
    row_labels: list[str],
    column_labels: list[str],
    title: str,
    label_width_in: float = 0.0,
) -> bytes:
    """PNG bytes of a grid: images[row][column] (H, W, 3) uint8 RGB, labelled rows and columns. Row labels run
    vertically, or horizontally in a column `label_width_in` inches wide when that is given (long labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(images), len(images[0])
    if len(row_labels) != rows or len(column_labels) != cols or any(len(r) != cols for r in images):
        raise ValueError("contact sheet: images must be rows x columns with one label per row and per column")
    h, w = images[0][0].shape[:2]
    cell_w = min(max(w / 110.0, 1.4), 2.6)  # inches at 110 dpi: about the images' own size, within limits
    size = (cell_w * cols + 0.6 + label_width_in, cell_w * h / w * rows + 0.8)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.imshow(images[r][c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column_labels[c], fontsize=9)
            if c == 0 and label_width_in:
                ax.set_ylabel(row_labels[r], fontsize=7, rotation=0, ha="right", va="center", labelpad=4)
            elif c == 0:
                ax.set_ylabel(row_labels[r], fontsize=9)
    fig.suptitle(title, fontsize=10, wrap=True)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def style_views(
    specs: list[str],
    seed: int,
    lightings: list[str],
    rig: StereoRig,
    world_config: WorldConfig,
    render_config: RenderConfig | None = None,
    s_m: float = 6.0,
) -> tuple[list[list[np.ndarray]], list]:
    """(images[row][column], worlds): the left image `s_m` along the taught path of world `seed` in each style spec
    (rows) under each lighting (columns), the vehicle moving at 1 m/s (motion blur where the camera has it)."""
    import dataclasses

    from dlvf_ros.sim.renderer import StereoRenderer
    from dlvf_ros.sim.world import generate_world

    rows, worlds = [], []
    for spec in specs:
        world = generate_world(seed, dataclasses.replace(world_config, style=spec))
        worlds.append(world)
        T_world_vehicle = pose_on_path(world, s_m)
        with StereoRenderer(world, rig, render_config) as renderer:
            rows.append(
                [
                    renderer.render(
                        T_world_vehicle,
                        lighting_preset(name),
                        noise_seed=1,
                        motion_vehicle=(np.array([1.0, 0.0, 0.0]), np.zeros(3)),
                    ).left
                    for name in lightings
                ]
            )
    return rows, worlds
