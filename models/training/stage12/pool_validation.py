"""Stage 12 rules 1-2: pool frames.csv over the six validation worlds (3004-3006 night only), per protocol and size.

Usage: python pool_validation.py DIR, where DIR holds the `dlvf test` outputs {R,C}{240,288}_{3001..3006}/.
"""

import csv
import sys

E = sys.argv[1]
worlds = [3001, 3002, 3003, 3004, 3005, 3006]


def rates(rows):
    n = len(rows)
    loc = sum(r["localized"] == "1" for r in rows)
    s = sum(r["success"] == "1" for r in rows)
    st = sum(r["strict"] == "1" for r in rows)
    w = sum(r["wrong_fix"] == "1" for r in rows)
    return (100 * s / n, 100 * st / n, 100 * w / max(loc, 1), w, loc, n)


res = {}
for p in "RC":
    for m in (240, 288):
        rows = []
        for s in worlds:
            with open(f"{E}/{p}{m}_{s}/frames.csv") as f:
                rr = list(csv.DictReader(f))
            rows += [r for r in rr if s < 3004 or r["lighting"] == "night"]
        night = [r for r in rows if r["lighting"] == "night"]
        res[p, m] = (rates(rows), rates(night))
        a, n = res[p, m]
        print(
            f"{p} {m}: overall {a[0]:.1f} / {a[1]:.1f} %, wrong {a[2]:.1f} % ({a[3]}/{a[4]}), n={a[5]} | "
            f"night {n[0]:.1f} / {n[1]:.1f} %, wrong {n[3]}/{n[4]}, n={n[5]}"
        )
(aR, nR), (bR, mR) = res["R", 240], res["R", 288]
(aC, nC), (bC, mC) = res["C", 240], res["C", 288]
r = {
    "R night strict >= +1": mR[1] >= nR[1] + 1,
    "R night >= -0.5": mR[0] >= nR[0] - 0.5,
    "R overall >= -1": bR[0] >= aR[0] - 1,
    "R strict >= -1": bR[1] >= aR[1] - 1,
    "R wrong <= +0.5": bR[2] <= aR[2] + 0.5,
    "C night >= -0.5": mC[0] >= nC[0] - 0.5,
    "C overall >= -0.5": bC[0] >= aC[0] - 0.5,
    "C strict >= -0.5": bC[1] >= aC[1] - 0.5,
    "C wrong <= +0.5": bC[2] <= aC[2] + 0.5,
}
for k, v in r.items():
    print(f"  {k}: {v}")
print("rule 2:", "288x384 qualifies" if all(r.values()) else "288x384 does not qualify")
