"""The per-frame match image a field team looks at: the left image, its keypoints, the fix's inliers and the verdict.

`draw_match_image` marks every keypoint of the frame (grey), the inliers of the fix (green), and writes the health
state, inlier and match counts and the reason on top, so a frame that failed shows why (no keypoints, no matches,
too few inliers).
"""

from __future__ import annotations

import cv2
import numpy as np

GREY = (160, 160, 160)
GREEN = (40, 220, 40)
STATE_COLOURS = {"LOCALIZED": (40, 220, 40), "DEGRADED": (250, 190, 30), "LOST": (240, 50, 50)}


def draw_match_image(
    left_rgb: np.ndarray, keypoints_uv: np.ndarray, inliers_uv: np.ndarray, state: str, lines: list[str]
) -> np.ndarray:
    """A copy of `left_rgb` ((H, W, 3) uint8 RGB) with `keypoints_uv` (N, 2) as grey dots, `inliers_uv` (M, 2) as
    green circles (pixels, (0, 0) the top-left pixel centre) and `state` then `lines` written at the top left."""
    image = np.ascontiguousarray(left_rgb).copy()
    for u, v in np.round(np.asarray(keypoints_uv, dtype=np.float64).reshape(-1, 2)).astype(int):
        cv2.circle(image, (int(u), int(v)), 1, GREY, -1)
    for u, v in np.round(np.asarray(inliers_uv, dtype=np.float64).reshape(-1, 2)).astype(int):
        cv2.circle(image, (int(u), int(v)), 4, GREEN, 1)
    scale = max(0.35, image.shape[1] / 1400.0)
    for row, (text, colour) in enumerate(
        [(state, STATE_COLOURS.get(state, GREY))] + [(t, (255, 255, 255)) for t in lines]
    ):
        origin = (6, int((row + 1) * 22 * scale / 0.5))
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    return image
