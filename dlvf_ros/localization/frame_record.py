"""The per-frame result that the stereo nodes publish for each stereo frame they handle, and where it goes.

It travels on `FRAME_STATUS_TOPIC` (under the node's namespace) as a diagnostic_msgs/DiagnosticArray stamped with the
frame's image time, holding one DiagnosticStatus "<node name>: frame" whose key/value pairs (strings) are
`FrameRecord.to_dict` plus keys of the node's own (timings, matches); reliable, keep last `FRAME_STATUS_DEPTH`. It is
never sent on /diagnostics, which carries only each node's ~1 Hz health summary. `dlvf replay` records it and
`dlvf evaluate` reads it back with `FrameRecord.from_dict`; a status carrying `FRAME_STAMP_KEY` is a frame record
(recordings made before the topic existed hold them among the /diagnostics statuses).
"""

from __future__ import annotations

from dataclasses import dataclass

FRAME_STATUS_TOPIC = "localization/frame_status"
FRAME_STATUS_DEPTH = 100  # keep last, reliable: a replay at several times real time loses no frame's result
FRAME_STATUS_KIND = "frame"  # the status name is "<node name>: frame"

FRAME_STAMP_KEY = "frame_stamp_ns"
FRAME_STATE_KEY = "state"
FRAME_INLIERS_KEY = "inliers"
FRAME_LATENCY_KEY = "latency_ms"
FRAME_KEYFRAME_KEY = "keyframe_id"
FRAME_ERROR_KEY = "last_error"


@dataclass(frozen=True)
class FrameRecord:
    """One handled frame: image stamp (ns), health state (localizer_node; "" for teach_node), inliers of its fix (0
    without), latency (ms from the set's arrival at the node to its result; NaN where not reported), keyframe (the
    one the localizer's fix matched, the one teach_node stored from the frame; -1 without) and the input error that
    stopped it ("" without)."""

    stamp_ns: int
    state: str
    inliers: int = 0
    latency_ms: float = float("nan")
    keyframe_id: int = -1
    error: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            FRAME_STAMP_KEY: str(self.stamp_ns),
            FRAME_STATE_KEY: self.state,
            FRAME_INLIERS_KEY: str(self.inliers),
            FRAME_LATENCY_KEY: f"{self.latency_ms:.1f}",
            FRAME_KEYFRAME_KEY: "" if self.keyframe_id < 0 else str(self.keyframe_id),
            FRAME_ERROR_KEY: self.error,
        }

    @classmethod
    def from_dict(cls, values: dict) -> FrameRecord:
        """Parse a status's values (strings; missing or empty fields take their defaults). ValueError on a
        malformed number or a missing stamp."""

        def integer(key: str, default: int) -> int:
            text = values.get(key, "")
            return default if text in ("", None) else int(text)

        def real(key: str, default: float) -> float:
            text = values.get(key, "")
            return default if text in ("", None) else float(text)

        if FRAME_STAMP_KEY not in values:
            raise ValueError(f"not a frame record: no {FRAME_STAMP_KEY!r} in {sorted(values)}")
        return cls(
            int(values[FRAME_STAMP_KEY]),
            str(values.get(FRAME_STATE_KEY, "")),
            integer(FRAME_INLIERS_KEY, 0),
            real(FRAME_LATENCY_KEY, float("nan")),
            integer(FRAME_KEYFRAME_KEY, -1),
            str(values.get(FRAME_ERROR_KEY, "")),
        )
