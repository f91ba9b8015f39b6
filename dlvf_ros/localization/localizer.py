"""The localizer core (no ROS): one stereo frame with odometry in, the pose against the teach map out.

Per frame: features and stereo 3-D points (`StereoFrontend`) -> candidate teach keyframes (`search_window`: around
the last fix propagated by odometry; the whole map at start-up or when LOST) -> descriptor matching against each
candidate -> the matches of a *local submap* (a reference keyframe and its neighbours, their points moved into the
reference's left optical frame with the teach poses) go together through RANSAC with score-weighted sampling and
weighted-SVD refinement (3-D to 3-D) -> Gauss-Newton on the stereo reprojection error (`refine`) -> T_keyframe_vehicle
relative to the reference and T_map_vehicle = T_map_keyframe T_keyframe_vehicle, with a 6x6 covariance
(`covariance`), and the health state machine (`health`) is updated. Tracking uses one submap (the window, its
nearest keyframe the reference); a global search tries the `global_ransac_candidates` keyframes with the most
matches, each with its neighbours, and keeps the one with the most inliers.

Why a submap: on a trail that looks alike along the track, a matcher that pairs "the same image place" finds a
consistent identity pose against *any* single keyframe (flat ground at the same pixel has the same depth), which
one-keyframe RANSAC accepts. Against several keyframes those false matches contradict each other (each implies its
own keyframe's pose), while true matches to every keyframe agree on one pose.

A fix farther from the odometry prediction than the search radius is rejected. A frame without a fix reports the
dead-reckoned pose (last fix + odometry) with a grown covariance.

Bad input (wrong image size, non-finite or non-rigid odometry, time going backwards) raises ValueError before any
state changes, so the localizer keeps working on the next good frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from dlvf_ros.config import setting
from dlvf_ros.features.backends import make_backend
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.ransac import RansacConfig, ransac_rigid
from dlvf_ros.geometry.stereo_matching import SgbmConfig
from dlvf_ros.localization.covariance import CovarianceConfig, adjoint, grow, to_ros_covariance
from dlvf_ros.localization.frontend import StereoFeatures, StereoFrontend, full_resolution_sgbm
from dlvf_ros.localization.health import HealthConfig, HealthMonitor, HealthState
from dlvf_ros.localization.map_store import MapStore
from dlvf_ros.localization.refine import RefineConfig, RefineResult, refine_stereo_pose, stereo_measurements
from dlvf_ros.localization.search_window import WindowConfig, keyframes_in_window, search_radius_m
from dlvf_ros.matching.descriptor_matching import MatchingConfig, match_descriptors


def _default_ransac() -> RansacConfig:
    # RANSAC only seeds the stereo reprojection refinement. 0.5 m 3-D tolerance: at 1 m a "standing on the keyframe"
    # pose keeps the true matches of a frame up to 1 m away as inliers. Minimal 3-point samples, 512 hypotheses: a
    # submap of 3 keyframes brings more outliers than one keyframe (6-point samples: 0.3^6 per draw).
    return RansacConfig(iterations=512, sample_size=3, inlier_threshold_m=0.5, min_inliers=10)


@dataclass
class LocalizerConfig:
    """Every localizer knob with its default (mirrored by config/localizer_node.yaml)."""

    sgbm: SgbmConfig = field(default_factory=full_resolution_sgbm)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    ransac: RansacConfig = field(default_factory=_default_ransac)
    refine: RefineConfig = field(default_factory=RefineConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    covariance: CovarianceConfig = field(default_factory=CovarianceConfig)
    min_matches: int = setting(12, "descriptor matches a candidate keyframe needs to go through RANSAC", (3, 1_000_000))
    # falls back to the whole map after health.frames_to_lose frames without a fix
    initial_keyframe_id: int | None = setting(
        None, "start-up: search around this keyframe instead of the whole map", (-1, 100_000_000), none_value=-1
    )

    def __post_init__(self) -> None:
        if self.min_matches < self.ransac.min_inliers:
            raise ValueError(
                f"LocalizerConfig: min_matches ({self.min_matches}) must be >= ransac.min_inliers "
                f"({self.ransac.min_inliers})"
            )
        if self.initial_keyframe_id is not None and self.initial_keyframe_id < 0:
            raise ValueError(f"LocalizerConfig: initial_keyframe_id must be >= 0, got {self.initial_keyframe_id}")


@dataclass
class LocalizationResult:
    """Outcome of one frame. Poses are None before the first fix; `fixed` says whether this frame gave a new fix."""

    stamp_ns: int
    fixed: bool
    state: HealthState
    health_reason: str
    T_map_vehicle: np.ndarray | None  # the fix, or the last fix propagated by odometry
    covariance: np.ndarray | None  # 6x6, ROS order (x, y, z, rx, ry, rz), map frame, m^2 / rad^2
    keyframe_id: int | None  # matched keyframe (None without a fix)
    T_keyframe_vehicle: np.ndarray | None
    num_inliers: int
    num_matches: int
    search: str  # "window" or "global"
    search_radius_m: float | None
    candidates: list[int]
    distance_since_fix_m: float
    # ms per stage: features, stereo (SGBM + triangulation), matching, ransac (RANSAC + reprojection refinement),
    # localize_total (everything after the front end)
    timings_ms: dict[str, float]
    inlier_points_camera: np.ndarray | None = None  # (N, 3) the fix's inlier points in the left optical frame (m)


@dataclass
class _Fix:
    T_map_vehicle: np.ndarray
    T_odom_vehicle: np.ndarray
    stamp_ns: int
    covariance: np.ndarray


@dataclass
class _Candidate:
    keyframe_id: int  # the reference keyframe
    src: np.ndarray  # current frame points (left optical, m)
    tgt: np.ndarray  # map points in the reference keyframe's left optical frame (m)
    weights: np.ndarray


class Localizer:
    """Localizes stereo frames against a map store; keep one instance per run (it tracks the last fix)."""

    def __init__(self, map_store: MapStore, frontend: StereoFrontend, config: LocalizerConfig | None = None) -> None:
        if len(map_store) == 0:
            raise ValueError(f"Localizer: map {map_store.path} has no keyframes; teach a path first")
        map_store.check_compatible(frontend.backend, frontend.rig)
        self.map = map_store
        self.frontend = frontend
        self.config = config or LocalizerConfig()
        if self.config.initial_keyframe_id is not None and self.config.initial_keyframe_id >= len(map_store):
            raise ValueError(
                f"Localizer: initial_keyframe_id {self.config.initial_keyframe_id} is not in the map "
                f"(ids 0..{len(map_store) - 1})"
            )
        self.health = HealthMonitor(self.config.health)
        self._T_vehicle_camera = map_store.rig.T_vehicle_camera
        self._refine = scaled_refine_config(self.config.refine, frontend.backend.keypoint_scale(map_store.rig.width))
        self.reset()

    @classmethod
    def from_map(cls, map_path, model_path=None, config: LocalizerConfig | None = None) -> Localizer:
        """Open a map and build the backend it was taught with (`model_path` for a learned map)."""
        map_store = MapStore.open(map_path)
        config = config or LocalizerConfig()
        frontend = StereoFrontend(make_backend(map_store.manifest["backend"], model_path), map_store.rig, config.sgbm)
        return cls(map_store, frontend, config)

    def reset(self) -> None:
        """Forget the last fix: the next frame searches as at start-up."""
        self.health.reset()
        self._fix: _Fix | None = None
        self._last_T_odom_vehicle: np.ndarray | None = None
        self._last_stamp_ns: int | None = None
        self._distance_since_fix_m = 0.0
        self._frames_without_fix = 0
        self._start_up_window = True  # initial_keyframe_id applies
        self._seed: tuple[np.ndarray, float] | None = None

    def relocalize(self) -> None:
        """Forget the last fix and search the whole map from the next frame on (initial_keyframe_id ignored)."""
        self.reset()
        self._start_up_window = False

    def seed(self, T_map_vehicle: np.ndarray, covariance: np.ndarray) -> None:
        """Forget the last fix and search around `T_map_vehicle` (an initial pose, e.g. /initialpose) from the next
        frame on: within 3 sigma of its planar position (6x6 ROS covariance, m^2), at least `window.radius_m`. It is
        a search hint, never a fix; after `health.frames_to_lose` frames without a fix the whole map is searched."""
        if not transforms.is_rigid(np.asarray(T_map_vehicle, dtype=np.float64), tol=1e-4):
            raise ValueError("Localizer.seed: T_map_vehicle must be a finite rigid 4x4 transform")
        sigma_m = float(np.sqrt(max(covariance[0][0], covariance[1][1], 0.0)))
        if not np.isfinite(sigma_m):
            raise ValueError("Localizer.seed: the covariance must be finite")
        radius = min(max(3.0 * sigma_m, self.config.window.radius_m), self.config.window.max_radius_m)
        self.reset()
        self._seed = (np.asarray(T_map_vehicle, dtype=np.float64), radius)

    def update_config(self, config: LocalizerConfig) -> None:
        """Use `config` from the next frame on (between frames; the front end's `sgbm` stays as built)."""
        self.config = config
        self.health.config = config.health
        self._refine = scaled_refine_config(config.refine, self.frontend.backend.keypoint_scale(self.map.rig.width))

    def process(
        self, stamp_ns: int, left_rgb: np.ndarray, right_rgb: np.ndarray, T_odom_vehicle: np.ndarray
    ) -> LocalizationResult:
        """Localize one rectified RGB stereo pair taken at `stamp_ns` with the vehicle at `T_odom_vehicle`."""
        self._check_inputs(stamp_ns, T_odom_vehicle)
        frame = self.frontend.process(left_rgb, right_rgb)
        return self.localize(stamp_ns, frame, T_odom_vehicle)

    def localize(self, stamp_ns: int, frame: StereoFeatures, T_odom_vehicle: np.ndarray) -> LocalizationResult:
        """Localize already-extracted stereo features (see `process`)."""
        self._check_inputs(stamp_ns, T_odom_vehicle)
        T_odom_vehicle = np.asarray(T_odom_vehicle, np.float64)
        start = time.perf_counter()
        if self._last_T_odom_vehicle is not None:
            step = transforms.invert(self._last_T_odom_vehicle) @ T_odom_vehicle
            self._distance_since_fix_m += float(np.linalg.norm(step[:3, 3]))
        self._last_T_odom_vehicle = T_odom_vehicle
        self._last_stamp_ns = int(stamp_ns)

        predicted = self._predicted_T_map_vehicle(T_odom_vehicle)
        search, radius, centre, candidates = self._candidates(predicted)
        current = frame.subset_valid()
        timings = dict(frame.timings_ms)
        t0 = time.perf_counter()
        per_keyframe = {int(k): self._match(current, int(k)) for k in candidates}
        matched = [
            self._submap(reference, members, per_keyframe)
            for reference, members in self._submaps(search, candidates, per_keyframe)
        ]
        matched = [m for m in matched if len(m.weights) >= self.config.min_matches]
        timings["matching"] = 1000 * (time.perf_counter() - t0)

        t0 = time.perf_counter()
        best, best_refined = None, None
        with _torch_threads(1):  # tiny batched problems: a thread pool costs more than it gives
            for candidate in matched:
                refined = self._estimate(candidate)
                if refined is not None and (best_refined is None or refined.num_inliers > best_refined.num_inliers):
                    best, best_refined = candidate, refined
        timings["ransac"] = 1000 * (time.perf_counter() - t0)

        fix_pose, T_keyframe_vehicle = None, None
        if best is not None:
            T_keyframe_vehicle = (
                self._T_vehicle_camera
                @ transforms.invert(best_refined.T_cur_keyframe)
                @ transforms.invert(self._T_vehicle_camera)
            )
            fix_pose = self.map.entries[best.keyframe_id].T_map_keyframe @ T_keyframe_vehicle
            if search == "window" and np.linalg.norm(fix_pose[:2, 3] - centre[:2]) > radius:
                fix_pose = None  # inconsistent with odometry: a wrong keyframe won

        fixed = fix_pose is not None
        self._frames_without_fix = 0 if fixed else self._frames_without_fix + 1
        num_inliers = best_refined.num_inliers if fixed else 0
        state = self.health.update(fixed, num_inliers, self._distance_since_fix_m)
        if fixed:
            # xi perturbs T_cur_keyframe on the left, i.e. the current camera: map it with Ad(T_map_camera)
            Ad = adjoint(fix_pose @ self._T_vehicle_camera)
            covariance = to_ros_covariance(Ad @ best_refined.covariance @ Ad.T, fix_pose, self.config.covariance)
            self._fix = _Fix(fix_pose, T_odom_vehicle, int(stamp_ns), covariance)
            self._distance_since_fix_m = 0.0
            T_map_vehicle = fix_pose
        elif self._fix is not None:
            T_map_vehicle = predicted
            covariance = grow(
                self._fix.covariance,
                self._distance_since_fix_m,
                (stamp_ns - self._fix.stamp_ns) * 1e-9,
                self.config.covariance,
            )
        else:
            T_map_vehicle, covariance = None, None
        timings["localize_total"] = 1000 * (time.perf_counter() - start)
        return LocalizationResult(
            stamp_ns=int(stamp_ns),
            fixed=fixed,
            state=state,
            health_reason=self.health.reason,
            T_map_vehicle=T_map_vehicle,
            covariance=covariance,
            keyframe_id=best.keyframe_id if fixed else None,
            T_keyframe_vehicle=T_keyframe_vehicle if fixed else None,
            num_inliers=num_inliers,
            num_matches=len(best.weights) if fixed else max((len(m.weights) for m in matched), default=0),
            search=search,
            search_radius_m=radius,
            candidates=[int(c) for c in candidates],
            distance_since_fix_m=self._distance_since_fix_m,
            timings_ms=timings,
            inlier_points_camera=best.src[best_refined.inliers] if fixed else None,
        )

    def _check_inputs(self, stamp_ns: int, T_odom_vehicle: np.ndarray) -> None:
        if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, (int, np.integer)):
            raise ValueError(f"Localizer: stamp_ns must be an integer (nanoseconds), got {stamp_ns!r}")
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            raise ValueError(
                f"Localizer: stamp_ns {stamp_ns} is earlier than the previous frame's "
                f"{self._last_stamp_ns}; call reset() when a bag or run restarts"
            )
        if not transforms.is_rigid(np.asarray(T_odom_vehicle, dtype=np.float64), tol=1e-4):
            raise ValueError(
                "Localizer: T_odom_vehicle must be a finite rigid 4x4 transform (got NaN/inf or a "
                "non-orthonormal rotation); check the odometry source"
            )

    def _predicted_T_map_vehicle(self, T_odom_vehicle: np.ndarray) -> np.ndarray | None:
        if self._fix is None:
            return None
        return self._fix.T_map_vehicle @ transforms.invert(self._fix.T_odom_vehicle) @ T_odom_vehicle

    def _candidates(self, predicted: np.ndarray | None) -> tuple[str, float | None, np.ndarray | None, np.ndarray]:
        """(search kind, radius m, window centre (3,) in the map frame, candidate keyframe ids)."""
        cfg = self.config.window
        if (
            self._fix is None
            and self._seed is not None
            and self._frames_without_fix < self.config.health.frames_to_lose
        ):
            T_seed, radius = self._seed
            centre = T_seed[:3, 3]
            return (
                "window",
                radius,
                centre,
                keyframes_in_window(self.map.positions_m, centre, radius, cfg.max_candidates),
            )
        start_up_window = (
            self._fix is None
            and self._start_up_window
            and self.config.initial_keyframe_id is not None
            and self._frames_without_fix < self.config.health.frames_to_lose
        )
        if start_up_window:
            predicted = self.map.entries[self.config.initial_keyframe_id].T_map_keyframe
        if predicted is None or (self.health.state == HealthState.LOST and not start_up_window):
            return "global", None, None, np.arange(len(self.map))
        radius = search_radius_m(cfg, self._distance_since_fix_m, self.health.state != HealthState.LOCALIZED)
        centre = predicted[:3, 3]
        return "window", radius, centre, keyframes_in_window(self.map.positions_m, centre, radius, cfg.max_candidates)

    def _submaps(
        self, search: str, candidates: np.ndarray, per_keyframe: dict[int, _Candidate]
    ) -> list[tuple[int, list[int]]]:
        """(reference keyframe, member keyframes) of each submap to try (see the module docstring)."""
        if len(candidates) == 0:
            return []
        if search == "window":
            return [(int(candidates[0]), [int(k) for k in candidates])]
        cfg = self.config.window
        ranked = sorted(per_keyframe, key=lambda k: -len(per_keyframe[k].weights))[: cfg.global_ransac_candidates]
        positions = self.map.positions_m
        return [
            (k, [int(m) for m in keyframes_in_window(positions, positions[k], cfg.radius_m, cfg.max_candidates)])
            for k in ranked
        ]

    def _submap(self, reference: int, members: list[int], per_keyframe: dict[int, _Candidate]) -> _Candidate:
        """The members' matches together, map points moved into the reference keyframe's left optical frame."""
        T_camera_vehicle = transforms.invert(self._T_vehicle_camera)
        T_reference_map = transforms.invert(self.map.entries[reference].T_map_keyframe)
        src, tgt, weights = [], [], []
        for member in members:
            matches = per_keyframe[member]
            T_refcam_membercam = (
                T_camera_vehicle @ T_reference_map @ self.map.entries[member].T_map_keyframe @ self._T_vehicle_camera
            )
            src.append(matches.src)
            tgt.append(transforms.transform_points(T_refcam_membercam, matches.tgt))
            weights.append(matches.weights)
        return _Candidate(reference, np.concatenate(src), np.concatenate(tgt), np.concatenate(weights))

    def _match(self, current: StereoFeatures, keyframe_id: int) -> _Candidate:
        keyframe = self.map.keyframe(keyframe_id)
        valid = keyframe.valid
        matches = match_descriptors(
            current.features.descriptors, keyframe.descriptors[valid], self.map.descriptor_metric, self.config.matching
        )
        weights = (
            matches.quality * current.features.scores[matches.index_a] * keyframe.scores[valid][matches.index_b]
        ).astype(np.float64)
        return _Candidate(
            keyframe_id,
            current.points_camera[matches.index_a],
            keyframe.points_camera[valid][matches.index_b],
            np.maximum(weights, 1e-6),
        )

    def _estimate(self, candidate: _Candidate) -> RefineResult | None:
        """RANSAC on 3-D points for a start, then stereo reprojection refinement; None if either fails."""
        ransac = ransac_rigid(candidate.src, candidate.tgt, candidate.weights, self.config.ransac)
        if not ransac.success:
            return None
        refined = refine_stereo_pose(
            transforms.invert(ransac.T_tgt_src),
            candidate.tgt,
            stereo_measurements(self.map.rig, candidate.src),
            candidate.weights if self.config.refine.weight_by_scores else np.ones(len(candidate.weights)),
            ransac.inliers,
            self.map.rig,
            self._refine,
        )
        return refined if refined.num_inliers >= self.config.ransac.min_inliers else None


def scaled_refine_config(config: RefineConfig, scale: float) -> RefineConfig:
    """`config` with its pixel gates and noise floor multiplied by `scale` (keypoint pixels -> image pixels)."""
    return dataclasses.replace(
        config,
        initial_threshold_px=config.initial_threshold_px * scale,
        inlier_threshold_px=config.inlier_threshold_px * scale,
        huber_px=config.huber_px * scale,
        min_sigma_px=config.min_sigma_px * scale,
    )


@contextlib.contextmanager
def _torch_threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
