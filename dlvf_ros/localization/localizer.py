"""The localizer core (no ROS): one stereo frame with odometry in, the pose against the teach map out.

Per frame: features and stereo 3-D points (`StereoFrontend`) -> candidate teach keyframes (`search_window`: around
the last fix propagated by odometry while the distance driven since it is within `health.max_dead_reckoning_m`, LOST
by frame count included; around a start-up prior, an initial keyframe or pose; the whole map otherwise) ->
descriptor matching against each candidate -> the matches of a *local submap* (a reference keyframe and its
neighbours, their points moved into the reference's left optical frame with the teach poses) go together through
RANSAC and the stereo reprojection refinement (`keyframe_pose`, the steps the per-frame mode shares) ->
T_keyframe_vehicle relative to the reference and T_map_vehicle = T_map_keyframe T_keyframe_vehicle, with a 6x6
covariance (`covariance`). Tracking uses one submap (the window, its nearest keyframe the reference); a global search
tries the `global_ransac_candidates` keyframes with the most matches, each with its neighbours, and keeps the one
with the most inliers. While tracking (not LOST), a frame in which this finds no pose, one that agrees with the
prediction but is too uncertain, or one that the innovation gate refuses, is matched again with guidance: each
keyframe point only against the current keypoints within `guided_radius_px` of where the odometry prediction projects
it (`keyframe_pose.Guidance`); its pose goes through the same gate. A guided pose replaces a refused one only if it
keeps at least as many inliers: the matches, not the prediction, decide between the two (on a self-similar trail the
unguided pose is often an along-track alias a few decimetres off; on validation world 3001 this took the learned
model from 91.5-98.8 % to 97.6-98.8 % per lighting through the nodes, no wrong fix). A pose off the path is not
searched for again so.

Why a submap: on a trail that looks alike along the track, a matcher that pairs "the same image place" finds a
consistent identity pose against *any* single keyframe (flat ground at the same pixel has the same depth), which
one-keyframe RANSAC accepts. Against several keyframes those false matches contradict each other (each implies its
own keyframe's pose), while true matches to every keyframe agree on one pose.

A pose found so is published as a fix only when it passes `fix_gate`: it lies on the taught path (not beyond its ends,
near the keyframes it was matched against), and it agrees with the odometry prediction (Mahalanobis innovation gate)
or, without one (start-up, beyond odometry's reach), more than one keyframe of its submap supports it, it has many
inliers (fewer near a start-up prior, which it must agree with too) and the next frame's pose agrees with it
(confirmation; near a start-up prior a pose further on that moves with odometry from it, or the next frame of a pose
off every keyframe). A frame without a fix reports the dead-reckoned pose (last fix + odometry) with a grown
covariance, and `fix_refused` says why a pose was held back. The health state machine (`health`) is updated with every
frame.

Bad input (wrong image size, non-finite or non-rigid odometry, time going backwards) raises ValueError before any
state changes, so the localizer keeps working on the next good frame.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dlvf_ros.config import check_settings, setting
from dlvf_ros.features.backends import make_backend
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.ransac import RansacConfig
from dlvf_ros.localization.covariance import (
    CovarianceConfig,
    fix_covariance,
    grow,
    planar_position_std_m,
    with_disagreement,
)
from dlvf_ros.localization.fix_gate import (
    FixGateConfig,
    TaughtPath,
    mahalanobis2,
    planar_innovation,
    precision_refusal,
    submap_refusal,
)
from dlvf_ros.localization.frontend import StereoConfig, StereoFeatures, StereoFrontend
from dlvf_ros.localization.health import HealthConfig, HealthMonitor, HealthState
from dlvf_ros.localization.keyframe_pose import Correspondences, Guidance, PoseEstimator, match_keyframe
from dlvf_ros.localization.map_store import MapStore
from dlvf_ros.localization.refine import RefineConfig, RefineResult
from dlvf_ros.localization.search_window import WindowConfig, keyframes_in_window, search_radius_m
from dlvf_ros.matching.descriptor_matching import MatchingConfig

MOVING_CANDIDATES = 50  # start-up poses near the prior kept for their confirmation (`_confirmed_near_prior`)


def localizer_ransac() -> RansacConfig:
    """The localizer's RANSAC, which only seeds the stereo reprojection refinement. 0.5 m 3-D tolerance: at 1 m a
    "standing on the keyframe" pose keeps the true matches of a frame up to 1 m away as inliers. Minimal 3-point
    samples, up to 512 hypotheses: a submap of 3 keyframes brings more outliers than one keyframe (6-point samples:
    0.3^6 per draw). Adaptive stop at 99.99 %: at the learned model's ~45 % inliers one round of 128 is enough; the
    final poses equal those of all 512 (measured on the simulator's frames). Uniform sampling: the highest-weighted
    matches are often far points, whose depth error exceeds the 3-D tolerance, so the inliers held 16-32 % of the
    weight against 42-50 % of the matches and weighted draws needed 384-512 hypotheses instead of 128-256 (same
    success on the validation worlds; models/README.md, "Stage 10")."""
    return RansacConfig(
        iterations=512,
        sample_size=3,
        inlier_threshold_m=0.5,
        min_inliers=10,
        confidence=0.9999,
        weighted_sampling=False,
    )


@dataclass
class LocalizerConfig:
    """Every localizer knob with its default (mirrored by config/localizer_node.yaml)."""

    stereo: StereoConfig = field(default_factory=StereoConfig)  # its method must be the map's (teach's)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    ransac: RansacConfig = field(default_factory=localizer_ransac)
    refine: RefineConfig = field(default_factory=RefineConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    covariance: CovarianceConfig = field(default_factory=CovarianceConfig)
    gate: FixGateConfig = field(default_factory=FixGateConfig)
    min_matches: int = setting(12, "descriptor matches a candidate keyframe needs to go through RANSAC", (3, 1_000_000))
    guided_radius_px: float = setting(
        48.0,
        "tracking: a frame in which matching finds no pose, one that agrees but is too uncertain, or one the "
        "innovation gate refuses (then only if the guided pose keeps as many inliers) is matched again, each map "
        "point only against keypoints within this radius (px at the camera's resolution) of where the odometry "
        "prediction projects it; 0: off",
        (0.0, 10_000.0),
    )
    # falls back to the whole map after health.frames_to_lose frames without a fix
    initial_keyframe_id: int | None = setting(
        None, "start-up: search around this keyframe instead of the whole map", (-1, 100_000_000), none_value=-1
    )
    start_sigma_m: float = setting(
        1.0,
        "start-up prior: 1-sigma planar position (m) of the vehicle about initial_keyframe_id",
        (0.01, 1000.0),
    )
    start_sigma_deg: float = setting(
        15.0,
        "start-up prior: 1-sigma heading (deg) of the vehicle about initial_keyframe_id",
        (0.1, 180.0),
    )

    def __post_init__(self) -> None:
        check_settings(self)
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
    num_inliers: int  # of the published fix (0 without one)
    num_matches: int
    search: str  # "window" or "global"
    search_radius_m: float | None
    candidates: list[int]
    distance_since_fix_m: float
    # ms per stage: features, stereo (disparity at the keypoints + triangulation), matching, ransac (RANSAC +
    # reprojection refinement), localize_total (everything after the front end)
    timings_ms: dict[str, float]
    fix_refused: str = ""  # why a pose that matching found was not published ("" when published or none found)
    guided: bool = False  # the fix came from guided matching (`guided_radius_px`), see the module docstring
    inliers_per_keyframe: dict[int, int] = field(default_factory=dict)  # of the pose found, by submap keyframe
    innovation_mahalanobis2: float = float("nan")  # of the gated pose against its prediction (NaN: not gated)
    inlier_points_camera: np.ndarray | None = None  # (N, 3) the fix's inlier points in the left optical frame (m)


@dataclass
class _Fix:
    T_map_vehicle: np.ndarray
    T_odom_vehicle: np.ndarray
    stamp_ns: int
    covariance: np.ndarray  # ROS order, map frame
    odometer_m: float  # distance driven since start-up when it was taken

    def predicted(self, T_odom_vehicle: np.ndarray) -> np.ndarray:
        """This fix propagated by odometry to a vehicle at T_odom_vehicle."""
        return self.T_map_vehicle @ transforms.invert(self.T_odom_vehicle) @ T_odom_vehicle


@dataclass
class _Submap:
    reference: int  # keyframe whose left optical frame the target points are in
    members: list[int]
    matches: Correspondences
    keyframe_of_match: np.ndarray  # (N,) the member keyframe of each match

    def inliers_per_keyframe(self, inliers: np.ndarray) -> dict[int, int]:
        return {k: int(np.sum(inliers & (self.keyframe_of_match == k))) for k in self.members}


@dataclass
class _Decision:
    """What `Localizer._decide` made of a frame's best pose: the fix to publish (None: none), why a found pose was
    refused, its squared Mahalanobis innovation (NaN: not gated), T_keyframe_vehicle and inliers per keyframe."""

    fix: _Fix | None = None
    refused: str = ""
    innovation_m2: float = float("nan")
    T_keyframe_vehicle: np.ndarray | None = None
    support: dict[int, int] = field(default_factory=dict)


class Localizer:
    """Localizes stereo frames against a map store; keep one instance per run (it tracks the last fix)."""

    def __init__(self, map_store: MapStore, frontend: StereoFrontend, config: LocalizerConfig | None = None) -> None:
        if len(map_store) == 0:
            raise ValueError(f"Localizer: map {map_store.path} has no keyframes; teach a path first")
        map_store.check_compatible(frontend.backend, frontend.rig, frontend.stereo.method)
        self.map = map_store
        self.frontend = frontend
        self.config = config or LocalizerConfig()
        if self.config.initial_keyframe_id is not None and self.config.initial_keyframe_id >= len(map_store):
            raise ValueError(
                f"Localizer: initial_keyframe_id {self.config.initial_keyframe_id} is not in the map "
                f"(ids 0..{len(map_store) - 1})"
            )
        self.health = HealthMonitor(self.config.health)
        self._configure()
        self.reset()

    def _configure(self) -> None:
        """Build what depends on `config` beyond the health monitor: the taught path's gate and the pose estimator."""
        self.path = TaughtPath(np.stack([e.T_map_keyframe for e in self.map.entries]), self.config.gate)
        self.estimator = PoseEstimator(
            self.map.rig,
            self.config.ransac,
            self.config.refine,
            self.frontend.backend.keypoint_scale(self.map.rig.width),
        )

    @classmethod
    def from_map(cls, map_path, model_path=None, config: LocalizerConfig | None = None) -> Localizer:
        """Open a map and build the backend it was taught with (`model_path` for a learned map)."""
        map_store = MapStore.open(map_path)
        config = config or LocalizerConfig()
        frontend = StereoFrontend(make_backend(map_store.manifest["backend"], model_path), map_store.rig, config.stereo)
        return cls(map_store, frontend, config)

    def reset(self) -> None:
        """Forget the last fix: the next frame searches as at start-up."""
        self.health.reset()
        self._fix: _Fix | None = None
        self._unconfirmed: _Fix | None = None  # start-up / LOST: a pose waiting for the next frame to confirm it
        self._last_T_odom_vehicle: np.ndarray | None = None
        self._last_stamp_ns: int | None = None
        self._odometer_m = 0.0
        self._frames_without_fix = 0
        self._frames_off_prior = 0  # frames without a fix in which no pose agreed with the start-up prior
        self._prior_agreed = False  # this frame's pose passed the innovation gate against the start-up prior
        self._moving_candidates: deque[_Fix] = deque(maxlen=MOVING_CANDIDATES)  # fix_gate rule 2, near a prior
        self._start_up_window = True  # initial_keyframe_id applies
        self._seed: tuple[np.ndarray, np.ndarray] | None = None  # an initial pose and its covariance (ROS order)
        self._start_prior: _Fix | None = None  # the start-up prior, held at the odometry of the first frame after it

    def relocalize(self) -> None:
        """Forget the last fix and search the whole map from the next frame on (initial_keyframe_id ignored)."""
        self.reset()
        self._start_up_window = False

    def seed(self, T_map_vehicle: np.ndarray, covariance: np.ndarray) -> None:
        """Forget the last fix and start up around `T_map_vehicle` (an initial pose, e.g. /initialpose, with its 6x6
        ROS covariance in m^2 / rad^2) from the next frame on, as around `initial_keyframe_id`
        (`_start_prior_pose`). It is a prior, never a fix by itself."""
        T_map_vehicle = np.asarray(T_map_vehicle, dtype=np.float64)
        covariance = np.asarray(covariance, dtype=np.float64)
        if not transforms.is_rigid(T_map_vehicle, tol=1e-4):
            raise ValueError("Localizer.seed: T_map_vehicle must be a finite rigid 4x4 transform")
        if covariance.shape != (6, 6) or not np.all(np.isfinite(covariance)):
            raise ValueError("Localizer.seed: the covariance must be a finite 6x6 matrix (ROS order)")
        self.reset()
        self._seed = (T_map_vehicle, covariance)

    def update_config(self, config: LocalizerConfig) -> None:
        """Use `config` from the next frame on (between frames; the front end's `stereo` stays as built)."""
        self.config = config
        self.health.config = config.health
        self._configure()

    @property
    def _distance_since_fix_m(self) -> float:
        return self._odometer_m - (self._fix.odometer_m if self._fix is not None else 0.0)

    def process(
        self, stamp_ns: int, left_rgb: np.ndarray, right_rgb: np.ndarray, T_odom_vehicle: np.ndarray
    ) -> LocalizationResult:
        """Localize one rectified RGB stereo pair taken at `stamp_ns` with the vehicle at `T_odom_vehicle`."""
        self._check_inputs(stamp_ns, T_odom_vehicle)
        return self.localize(stamp_ns, self.frame_features(left_rgb, right_rgb), T_odom_vehicle)

    def frame_features(self, left_rgb: np.ndarray, right_rgb: np.ndarray) -> StereoFeatures:
        """Stereo features of a rectified RGB pair, with what refining its matches needs when that is on."""
        return self.frontend.process(left_rgb, right_rgb, resampler=self.config.matching.refines)

    def localize(self, stamp_ns: int, frame: StereoFeatures, T_odom_vehicle: np.ndarray) -> LocalizationResult:
        """Localize already-extracted stereo features (see `process`)."""
        self._check_inputs(stamp_ns, T_odom_vehicle)
        T_odom_vehicle = np.asarray(T_odom_vehicle, np.float64)
        start = time.perf_counter()
        if self._last_T_odom_vehicle is not None:
            step = transforms.invert(self._last_T_odom_vehicle) @ T_odom_vehicle
            self._odometer_m += float(np.linalg.norm(step[:3, 3]))
        self._last_T_odom_vehicle = T_odom_vehicle
        self._last_stamp_ns = int(stamp_ns)

        # the last fix predicts the pose while odometry since it is trusted (LOST by frame count included)
        within_reach = self._distance_since_fix_m <= self.config.health.max_dead_reckoning_m
        predicted = self._fix.predicted(T_odom_vehicle) if self._fix is not None and within_reach else None
        prior = self._start_prior_pose(stamp_ns, T_odom_vehicle)
        search, radius, centre, candidates = self._candidates(predicted, prior, stamp_ns, T_odom_vehicle)
        current = frame.subset_valid()
        timings = dict(frame.timings_ms)
        submaps, best, best_refined = self._search(current, search, candidates, None, timings)
        decision = self._decide(best, best_refined, predicted, prior, T_odom_vehicle, stamp_ns)
        guided = False
        # guidance where no pose was published while tracking: none found, one that agreed but was too uncertain, or
        # one the innovation gate refused, which a guided pose replaces only if it keeps as many inliers
        gated = not np.isnan(decision.innovation_m2)
        disagreed = decision.innovation_m2 > self.config.gate.max_mahalanobis2  # False for NaN (not gated)
        if predicted is not None and decision.fix is None and (best is None or gated) and self._may_guide():
            guided_search = self._search(current, search, candidates, predicted, timings)
            guided_decision = self._decide(*guided_search[1:], predicted, prior, T_odom_vehicle, stamp_ns)
            refused_inliers = best_refined.num_inliers if disagreed and best_refined is not None else 0
            guided_refined = guided_search[2]
            if (
                guided_decision.fix is not None
                and guided_refined is not None
                and guided_refined.num_inliers >= refused_inliers
            ):
                (submaps, best, best_refined), decision, guided = guided_search, guided_decision, True
        fix, refused, innovation_m2 = decision.fix, decision.refused, decision.innovation_m2
        T_keyframe_vehicle, support = decision.T_keyframe_vehicle, decision.support

        fixed = fix is not None
        self._frames_without_fix = 0 if fixed else self._frames_without_fix + 1
        self._frames_off_prior = 0 if fixed else self._frames_off_prior + (not self._prior_agreed)
        self._prior_agreed = False
        if fix is not None and best is not None and best_refined is not None:  # a fix is the best submap's pose
            num_inliers, keyframe_id, num_matches = best_refined.num_inliers, best.reference, len(best.matches)
            inlier_points_camera = best.matches.src[best_refined.inliers]
        else:
            num_inliers, keyframe_id, inlier_points_camera = 0, None, None
            num_matches = max((len(s.matches) for s in submaps), default=0)
        if fix is not None:
            self._fix, self._unconfirmed = fix, None
        state = self.health.update(fixed, num_inliers, self._distance_since_fix_m)
        T_map_vehicle: np.ndarray | None
        if fix is not None:
            T_map_vehicle, covariance = fix.T_map_vehicle, fix.covariance
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
            keyframe_id=keyframe_id,
            T_keyframe_vehicle=T_keyframe_vehicle if fixed else None,
            num_inliers=num_inliers,
            num_matches=num_matches,
            search=search,
            search_radius_m=radius,
            candidates=[int(c) for c in candidates],
            distance_since_fix_m=self._distance_since_fix_m,
            timings_ms=timings,
            fix_refused=refused,
            guided=guided,
            inliers_per_keyframe=support,
            innovation_mahalanobis2=innovation_m2,
            inlier_points_camera=inlier_points_camera,
        )

    def _may_guide(self) -> bool:
        """Guided matching is tried while tracking with a prediction, not LOST, and with `guided_radius_px` > 0."""
        return self.health.state != HealthState.LOST and self.config.guided_radius_px > 0

    def _search(
        self,
        current: StereoFeatures,
        search: str,
        candidates: np.ndarray,
        guide: np.ndarray | None,
        timings: dict[str, float],
    ) -> tuple[list[_Submap], _Submap | None, RefineResult | None]:
        """(submaps with enough matches, the one whose RANSAC + refinement kept the most inliers, its result). With
        `guide` (a predicted T_map_vehicle) each map point is only matched near where that pose projects it
        (`guided_radius_px`). Adds the time spent to `timings` "matching" and "ransac" (ms)."""
        t0 = time.perf_counter()
        per_keyframe = {int(k): self._match(current, int(k), guide) for k in candidates}
        submaps = [
            self._submap(reference, members, per_keyframe)
            for reference, members in self._submaps(search, candidates, per_keyframe)
        ]
        submaps = [s for s in submaps if len(s.matches) >= self.config.min_matches]
        timings["matching"] = timings.get("matching", 0.0) + 1000 * (time.perf_counter() - t0)

        t0 = time.perf_counter()
        best: _Submap | None = None
        best_refined: RefineResult | None = None
        for submap in submaps:
            refined = self.estimator.estimate(submap.matches)
            if refined is not None and (best_refined is None or refined.num_inliers > best_refined.num_inliers):
                best, best_refined = submap, refined
        timings["ransac"] = timings.get("ransac", 0.0) + 1000 * (time.perf_counter() - t0)
        return submaps, best, best_refined

    def _decide(
        self,
        best: _Submap | None,
        best_refined: RefineResult | None,
        predicted: np.ndarray | None,
        prior: _Fix | None,
        T_odom_vehicle: np.ndarray,
        stamp_ns: int,
    ) -> _Decision:
        """Whether the best submap's pose is published as a fix (see the module docstring and `fix_gate`)."""
        decision = _Decision()
        if best is None or best_refined is None:
            return decision
        support = best.inliers_per_keyframe(best_refined.inliers)
        T_keyframe_vehicle = self.estimator.vehicle_pose(best_refined)
        T_map_vehicle = self.map.entries[best.reference].T_map_keyframe @ T_keyframe_vehicle
        found = _Fix(
            T_map_vehicle,
            T_odom_vehicle,
            int(stamp_ns),
            fix_covariance(
                best_refined.covariance,
                T_map_vehicle,
                self.map.rig.T_vehicle_camera,
                self.config.covariance,
            ),
            self._odometer_m,
        )
        fix: _Fix | None = None
        innovation_m2 = float("nan")
        tracking = predicted is not None
        refused = self.path.refusal(T_map_vehicle, best.members)
        one_keyframe = "" if refused or tracking else submap_refusal(support, self.config.gate)  # rule 4
        if refused or (one_keyframe and prior is None):
            refused = refused or one_keyframe
        elif one_keyframe and prior is not None:
            fix, refused, innovation_m2 = self._confirm_at_start(
                found, best_refined.num_inliers, prior, max(support, key=support.__getitem__), one_keyframe
            )
        else:
            fix, refused, innovation_m2 = self._gate(found, best_refined.num_inliers, tracking, prior)
        disagrees = innovation_m2 > self.config.gate.max_mahalanobis2  # False for NaN (not gated)
        if fix is None and tracking and disagrees and self.health.state == HealthState.LOST:
            # the prediction itself may be wrong (a wrong fix followed by odometry): while LOST a pose that
            # disagrees with it can still re-localize the way a start-up pose does (fix_gate rules 2 and 4)
            refused = submap_refusal(support, self.config.gate)
            if not refused:
                fix, refused, innovation_m2 = self._gate(found, best_refined.num_inliers, False, None)
        if fix is not None:  # its covariance now holds the disagreement with odometry too
            refused = precision_refusal(fix.covariance, self.config.gate)
            fix = None if refused else fix
        return _Decision(fix, refused, innovation_m2, T_keyframe_vehicle, support)

    def _gate(
        self, found: _Fix, num_inliers: int, tracking: bool, prior: _Fix | None
    ) -> tuple[_Fix | None, str, float]:
        """(the fix to publish or None, why not, squared Mahalanobis innovation) for a pose on the taught path.

        Tracking: gated against the last fix propagated by odometry. Otherwise (start-up, LOST) the pose is held
        back until the next frame's pose, propagated by odometry, agrees with it (confirmation); each of the two needs
        `gate.min_inliers_without_prediction` inliers. Near a start-up prior (an initial pose or keyframe) each needs
        `gate.min_inliers_with_prior`, must pass the innovation gate against the prior, and the confirmation must
        span motion unless both poses lie off every keyframe (`_confirmed_near_prior`): a vehicle parked at its start
        sees one view, whose "standing on a keyframe" explanation two frames confirm as well as the true one
        (closed-loop dusk started 0.9 m off so).
        """
        gate = self.config.gate
        if not tracking:
            needed = gate.min_inliers_with_prior if prior is not None else gate.min_inliers_without_prediction
            if num_inliers < needed:
                where = " near the start-up prior" if prior is not None else ""
                return (
                    None,
                    f"{num_inliers} inliers; without a prediction (start-up or LOST) a pose{where} needs {needed}",
                    np.nan,
                )
            if prior is not None:
                refusal, distance2 = self._prior_refusal(prior, found)
                if refusal:
                    return None, refusal, distance2
                return self._confirmed_near_prior(found)
            reference, self._unconfirmed = self._unconfirmed, found
            if reference is None:
                return (
                    None,
                    "held back until the next frame's pose confirms it (start-up or LOST: no prediction)",
                    np.nan,
                )
        else:
            assert self._fix is not None  # tracking: a fix propagated by odometry is the prediction
            reference = self._fix
        innovation, distance2 = self._innovation(reference, found)
        if distance2 > gate.max_mahalanobis2:
            what = "the odometry prediction" if tracking else "the previous frame's unconfirmed pose"
            return None, self._disagreement(what, innovation, distance2), distance2
        found.covariance = with_disagreement(found.covariance, innovation)
        return found, "", distance2

    def _confirm_at_start(
        self, found: _Fix, num_inliers: int, prior: _Fix, keyframe_id: int, one_keyframe: str
    ) -> tuple[_Fix | None, str, float]:
        """(fix or None, why not, squared Mahalanobis innovation) for a pose near the start-up prior that one keyframe
        (`keyframe_id`) of its submap alone supports (`one_keyframe`: rule 4's refusal). Only a vehicle at its start is
        localized so: the keyframe must be the one nearest the prior and the vehicle must have driven no further than
        the prior's 1-sigma position uncertainty since it; then `_gate` decides as for any pose near the prior (inliers,
        agreement with the prior, confirmation: a "standing on the keyframe" pose stays on its keyframe while the
        vehicle moves, and a pose off every keyframe is not one). (A view that matches the keyframe one spacing ahead as
        if it were the current one moves with the vehicle too, shifted by the spacing: SIFT at night along the whole
        path; hence only at the start, against the start's own keyframe.)"""
        start_keyframe = self.path.nearest_keyframe(prior.T_map_vehicle)
        if keyframe_id != start_keyframe or found.odometer_m - prior.odometer_m > planar_position_std_m(
            prior.covariance
        ):
            return None, f"{one_keyframe} (not the start's keyframe {start_keyframe}, at the start)", np.nan
        fix, refused, distance2 = self._gate(found, num_inliers, False, prior)
        return fix, f"{one_keyframe}; {refused}" if refused else "", distance2

    def _confirmed_near_prior(self, found: _Fix) -> tuple[_Fix | None, str, float]:
        """Confirmation near the start-up prior: (`found` as a fix, or None when it is held as a candidate; why it is
        held; squared Mahalanobis innovation). It is a fix when an earlier candidate agrees with it propagated by
        odometry, and either would not without that motion (the innovation gate refuses the vehicle having stood
        still between them) or both lie at least `gate.stationary_confirmation_m` from every keyframe: "standing on a
        keyframe" explains neither, so a standing vehicle needs no motion to tell them from it."""
        max_distance2 = self.config.gate.max_mahalanobis2
        off_keyframes = self._off_keyframes(found)
        for earlier in reversed(self._moving_candidates):  # the latest first
            innovation, distance2 = self._innovation(earlier, found)
            standing = dataclasses.replace(earlier, T_odom_vehicle=found.T_odom_vehicle)  # no motion between them
            if distance2 <= max_distance2 and (
                (off_keyframes and self._off_keyframes(earlier)) or self._innovation(standing, found)[1] > max_distance2
            ):
                found.covariance = with_disagreement(found.covariance, innovation)
                return found, "", distance2
        self._moving_candidates.append(found)
        if off_keyframes:
            return (
                None,
                "held back until the next frame's pose agrees with it or a pose further on moves with odometry "
                "(start-up)",
                np.nan,
            )
        return (
            None,
            f"held back until a pose further on moves with odometry from it (start-up: within "
            f"{self.config.gate.stationary_confirmation_m} m of a keyframe, 'standing on the keyframe' explains it "
            "too)",
            np.nan,
        )

    def _off_keyframes(self, found: _Fix) -> bool:
        return self.path.keyframe_distance_m(found.T_map_vehicle) >= self.config.gate.stationary_confirmation_m

    def _prior_refusal(self, prior: _Fix, found: _Fix) -> tuple[str, float]:
        """(why `found` disagrees with the start-up prior or "", squared Mahalanobis innovation); notes an agreement
        (the prior then holds for this frame, `_start_prior_pose`)."""
        innovation, distance2 = self._innovation(prior, found)
        if distance2 > self.config.gate.max_mahalanobis2:
            return self._disagreement("the start-up prior", innovation, distance2), distance2
        self._prior_agreed = True
        return "", distance2

    def _innovation(self, reference: _Fix, found: _Fix) -> tuple[np.ndarray, float]:
        """(planar innovation, squared Mahalanobis distance) of `found` against `reference` propagated by odometry,
        its covariance grown over the distance and time between them."""
        covariance_predicted = grow(
            reference.covariance,
            found.odometer_m - reference.odometer_m,
            (found.stamp_ns - reference.stamp_ns) * 1e-9,
            self.config.covariance,
        )
        innovation = planar_innovation(reference.predicted(found.T_odom_vehicle), found.T_map_vehicle)
        return innovation, mahalanobis2(innovation, covariance_predicted, found.covariance)

    def _disagreement(self, what: str, innovation: np.ndarray, distance2: float) -> str:
        return (
            f"disagrees with {what} by {np.hypot(*innovation[:2]):.2f} m, {np.degrees(innovation[2]):.1f} deg "
            f"(squared Mahalanobis distance {distance2:.1f} > {self.config.gate.max_mahalanobis2})"
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

    def _start_prior_pose(self, stamp_ns: int, T_odom_vehicle: np.ndarray) -> _Fix | None:
        """Where the vehicle is believed to be before its first fix: an initial pose (`seed`) or, at start-up,
        `initial_keyframe_id` (with `start_sigma_m` / `start_sigma_deg`), taken as a pose at the odometry of the first
        frame after it. It holds until `health.frames_to_lose` frames without a fix found no pose that agrees with it
        (then the whole map is searched); None when there is none or a fix exists."""
        if self._fix is not None or self._frames_off_prior >= self.config.health.frames_to_lose:
            return None
        if self._start_prior is None:
            if self._seed is not None:
                T_map_vehicle, covariance = self._seed
            elif self._start_up_window and self.config.initial_keyframe_id is not None:
                T_map_vehicle = self.map.entries[self.config.initial_keyframe_id].T_map_keyframe
                sigma_m, sigma_rad = self.config.start_sigma_m, np.radians(self.config.start_sigma_deg)
                covariance = np.diag([sigma_m**2, sigma_m**2, 0.0, 0.0, 0.0, sigma_rad**2])
            else:
                return None
            self._start_prior = _Fix(
                T_map_vehicle, np.asarray(T_odom_vehicle), int(stamp_ns), covariance, self._odometer_m
            )
        return self._start_prior

    def _candidates(
        self, predicted: np.ndarray | None, prior: _Fix | None, stamp_ns: int, T_odom_vehicle: np.ndarray
    ) -> tuple[str, float | None, np.ndarray | None, np.ndarray]:
        """(search kind, radius m, window centre (3,) in the map frame, candidate keyframe ids): around the last fix
        propagated by odometry (`predicted`, tracking; LOST too while within odometry's reach); around the start-up
        prior propagated by odometry, within 3 sigma of its planar position (its covariance grown since) and at least
        `window.radius_m` plus `window.growth_per_m` per metre driven since; the whole map otherwise."""
        cfg = self.config.window
        if predicted is not None:
            centre = predicted[:3, 3]
            radius = search_radius_m(cfg, self._distance_since_fix_m, self.health.state != HealthState.LOCALIZED)
        elif prior is not None:
            centre = prior.predicted(T_odom_vehicle)[:3, 3]
            driven_m = self._odometer_m - prior.odometer_m
            covariance = grow(prior.covariance, driven_m, (stamp_ns - prior.stamp_ns) * 1e-9, self.config.covariance)
            sigma_m = float(np.sqrt(max(covariance[0, 0], covariance[1, 1])))
            radius = min(max(3.0 * sigma_m, search_radius_m(cfg, driven_m, degraded=False)), cfg.max_radius_m)
        else:
            return "global", None, None, np.arange(len(self.map))
        return "window", radius, centre, keyframes_in_window(self.map.positions_m, centre, radius, cfg.max_candidates)

    def _submaps(
        self, search: str, candidates: np.ndarray, per_keyframe: dict[int, Correspondences]
    ) -> list[tuple[int, list[int]]]:
        """(reference keyframe, member keyframes) of each submap to try (see the module docstring)."""
        if len(candidates) == 0:
            return []
        if search == "window":
            return [(int(candidates[0]), [int(k) for k in candidates])]
        cfg = self.config.window
        ranked = sorted(per_keyframe, key=lambda k: -len(per_keyframe[k]))[: cfg.global_ransac_candidates]
        positions = self.map.positions_m
        return [
            (k, [int(m) for m in keyframes_in_window(positions, positions[k], cfg.radius_m, cfg.max_candidates)])
            for k in ranked
        ]

    def _submap(self, reference: int, members: list[int], per_keyframe: dict[int, Correspondences]) -> _Submap:
        """The members' matches together, map points moved into the reference keyframe's left optical frame."""
        T_map_reference = self.map.entries[reference].T_map_keyframe
        parts = []
        for member in members:
            matches = per_keyframe[member]
            T_refcam_membercam = self._camera_from_camera(T_map_reference, self.map.entries[member].T_map_keyframe)
            parts.append(
                Correspondences(
                    matches.src, transforms.transform_points(T_refcam_membercam, matches.tgt), matches.weights
                )
            )
        keyframe_of_match = np.concatenate([np.full(len(per_keyframe[m]), m) for m in members])
        return _Submap(reference, members, Correspondences.concatenate(parts), keyframe_of_match)

    def _camera_from_camera(self, T_map_vehicle_a: np.ndarray, T_map_vehicle_b: np.ndarray) -> np.ndarray:
        """T_camera_a_camera_b: left optical frame of the rig on vehicle pose b into that on vehicle pose a."""
        T_vehicle_camera = self.map.rig.T_vehicle_camera
        return transforms.invert(T_map_vehicle_a @ T_vehicle_camera) @ T_map_vehicle_b @ T_vehicle_camera

    def _match(self, current: StereoFeatures, keyframe_id: int, guide: np.ndarray | None) -> Correspondences:
        """Matches of `current` against one keyframe; with `guide` (a predicted T_map_vehicle) only near where it
        projects the keyframe's points into the current left image."""
        keyframe = self.map.keyframe(keyframe_id)
        guidance = None
        if guide is not None:
            T_current_keyframe = self._camera_from_camera(guide, self.map.entries[keyframe_id].T_map_keyframe)
            guidance = Guidance(T_current_keyframe, self.map.rig, self.config.guided_radius_px)
        return match_keyframe(
            current,
            StereoFeatures(keyframe.features, keyframe.points_camera, keyframe.valid),
            self.map.descriptor_metric,
            self.config.matching,
            guidance,
        )
