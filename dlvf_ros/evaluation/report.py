"""Text tables of evaluation summaries (`evaluate.summarize`), one line per protocol, protocols side by side.

Protocols: "nodes" (through localizer_node with odometry, submaps and the fix gate: what a path tracker gets) and
"per frame" (each frame against its ground-truth-nearest keyframe: feature quality alone).
"""

from __future__ import annotations

NODES = "nodes"
PER_FRAME = "per frame"


def _wrong(summary: dict) -> str:
    return f"{summary['wrong_fix_rate']:.1%} ({summary['wrong_fixes']}/{summary['fixes_with_ground_truth']})"


def summary_table(rows: dict[str, dict[str, dict]]) -> str:
    """`rows[label][protocol]` = a summary; each label's protocols on consecutive lines."""
    header = (
        f"{'run / lighting':<24} {'protocol':<9} {'frames':>6} {'success':>8} {'strict':>7} {'wrong fixes':>15} "
        f"{'inliers':>7} {'along RMSE':>11} {'lateral RMSE':>13} {'heading RMSE':>13} {'latency':>9}"
    )
    lines = [header, "-" * len(header)]
    for label, by_protocol in rows.items():
        for i, (protocol, s) in enumerate(by_protocol.items()):
            lines.append(
                f"{label if i == 0 else '':<24} {protocol:<9} {s['frames']:>6d} {s['success_rate']:>8.1%} "
                f"{s['strict_success_rate']:>7.1%} {_wrong(s):>15} {s['inliers_median']:>7.0f} "
                f"{s['along_track_m']['rmse']:>9.3f} m {s['lateral_m']['rmse']:>11.3f} m "
                f"{s['heading_deg']['rmse']:>9.2f} deg {s['latency_ms_median']:>6.0f} ms"
            )
    return "\n".join(lines)
