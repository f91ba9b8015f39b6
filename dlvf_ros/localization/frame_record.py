"""The per-frame result record that localizer_node publishes with each processed stereo frame.

It travels as the key/value pairs of a diagnostic_msgs/DiagnosticStatus (values are strings); `dlvf replay` records
them and `dlvf evaluate` reads them back with `FrameRecord.from_dict`. The node may add keys of its own (timings,
matches); a status carrying `FRAME_STAMP_KEY` is a frame record.
"""

from __future__ import annotations

from dataclasses import dataclass

FRAME_STAMP_KEY = "frame_stamp_ns"
FRAME_STATE_KEY = "state"
FRAME_INLIERS_KEY = "inliers"
FRAME_LATENCY_KEY = "latency_ms"
FRAME_KEYFRAME_KEY = "keyframe_id"
FRAME_ERROR_KEY = "last_error"


@dataclass(frozen=True)
class FrameRecord:
    """One processed frame: image stamp (ns), health state, inliers of its fix (0 without), latency (ms, NaN where
    not reported), matched keyframe (-1 without a fix) and the input error that stopped it ("" without)."""

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

        def number(key: str, kind: type, default: float | int) -> float | int:
            text = values.get(key, "")
            return default if text in ("", None) else kind(text)

        if FRAME_STAMP_KEY not in values:
            raise ValueError(f"not a frame record: no {FRAME_STAMP_KEY!r} in {sorted(values)}")
        return cls(
            int(values[FRAME_STAMP_KEY]),
            str(values.get(FRAME_STATE_KEY, "")),
            number(FRAME_INLIERS_KEY, int, 0),
            number(FRAME_LATENCY_KEY, float, float("nan")),
            number(FRAME_KEYFRAME_KEY, int, -1),
            str(values.get(FRAME_ERROR_KEY, "")),
        )
