"""Stage 14 rule 1: pool `dlvf test` frames over the six validation worlds (3004-3006 night only), per candidate.

Usage: python pool_validation.py DIR NAME [NAME ...], where DIR holds the outputs NAME_{3001..3006}/frames.csv.
Prints, per candidate: overall success / strict success, wrong-fix rate among localized frames, and the same at night.
"""

import csv
import sys

WORLDS = (3001, 3002, 3003, 3004, 3005, 3006)


def rates(rows: list[dict]) -> str:
    n = len(rows)
    localized = sum(r["localized"] == "1" for r in rows)
    success = 100 * sum(r["success"] == "1" for r in rows) / n
    strict = 100 * sum(r["strict"] == "1" for r in rows) / n
    wrong = sum(r["wrong_fix"] == "1" for r in rows)
    return f"{success:.1f} / {strict:.1f} %, wrong {100 * wrong / max(localized, 1):.1f} % ({wrong}/{localized}), n={n}"


def main(root: str, names: list[str]) -> None:
    for name in names:
        rows = []
        for world in WORLDS:
            with open(f"{root}/{name}_{world}/frames.csv") as f:
                rows += [r for r in csv.DictReader(f) if world < 3004 or r["lighting"] == "night"]
        night = [r for r in rows if r["lighting"] == "night"]
        print(f"{name}: overall {rates(rows)} | night {rates(night)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
