"""Localization health: LOCALIZED / DEGRADED / LOST with hysteresis.

Each frame is graded by its inlier count: GOOD (>= `good_inliers`), WEAK (a fix, but fewer inliers) or FAILED (no
fix). Transitions need runs of consecutive grades, so one bad frame never flips the state:
- LOCALIZED -> DEGRADED after `frames_to_degrade` non-GOOD frames in a row;
- DEGRADED  -> LOCALIZED after `frames_to_recover` GOOD frames in a row;
- any       -> LOST after `frames_to_lose` FAILED frames in a row, or when the distance driven on odometry alone
               since the last fix exceeds `max_dead_reckoning_m`;
- LOST      -> DEGRADED on any fix, and on to LOCALIZED through the DEGRADED rule.
The monitor starts LOST (nothing is known before the first fix).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dlvf_ros.config import check_settings, setting


class HealthState(str, enum.Enum):  # noqa: UP042 (str() must stay the member name)
    LOCALIZED = "LOCALIZED"
    DEGRADED = "DEGRADED"
    LOST = "LOST"


@dataclass
class HealthConfig:
    """Thresholds of the health state machine (inlier counts, frame counts, metres)."""

    good_inliers: int = setting(40, "inliers for a frame to count as good", (1, 1_000_000))
    frames_to_degrade: int = setting(3, "non-good frames in a row: LOCALIZED -> DEGRADED", (1, 100_000))
    frames_to_recover: int = setting(3, "good frames in a row: DEGRADED -> LOCALIZED", (1, 100_000))
    frames_to_lose: int = setting(10, "frames without a fix in a row: -> LOST", (1, 100_000))
    max_dead_reckoning_m: float = setting(
        10.0, "metres on odometry alone since the last fix: -> LOST", (0.001, 100_000.0)
    )

    def __post_init__(self) -> None:
        check_settings(self)


class HealthMonitor:
    """Feeds per-frame outcomes through the state machine; `state` and `reason` describe the latest update."""

    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self.reset()

    def reset(self) -> None:
        """Back to the start-up state: LOST, no fix yet."""
        self.state = HealthState.LOST
        self.reason = "no fix yet"
        self._good_run = 0
        self._not_good_run = 0
        self._failed_run = 0

    def update(self, fixed: bool, inliers: int, distance_since_fix_m: float) -> HealthState:
        """Grade one frame (`fixed`: a pose was accepted) and return the new state."""
        cfg = self.config
        good = fixed and inliers >= cfg.good_inliers
        self._good_run = self._good_run + 1 if good else 0
        self._not_good_run = 0 if good else self._not_good_run + 1
        self._failed_run = 0 if fixed else self._failed_run + 1

        if not fixed and distance_since_fix_m > cfg.max_dead_reckoning_m:
            self._set(HealthState.LOST, f"{distance_since_fix_m:.1f} m on odometry alone since the last fix")
        elif self._failed_run >= cfg.frames_to_lose:
            self._set(HealthState.LOST, f"{self._failed_run} frames in a row without a fix")
        elif self.state == HealthState.LOST:
            if fixed:
                self._set(HealthState.DEGRADED, f"re-localized with {inliers} inliers")
        elif self.state == HealthState.DEGRADED:
            if self._good_run >= cfg.frames_to_recover:
                self._set(HealthState.LOCALIZED, f"{self._good_run} frames in a row with >= {cfg.good_inliers} inliers")
        elif self._not_good_run >= cfg.frames_to_degrade:
            self._set(HealthState.DEGRADED, f"{self._not_good_run} frames in a row below {cfg.good_inliers} inliers")
        return self.state

    def _set(self, state: HealthState, reason: str) -> None:
        if state != self.state:
            self.state = state
            self.reason = reason
