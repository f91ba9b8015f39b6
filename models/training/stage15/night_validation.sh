#!/usr/bin/env bash
# Stage 15: night-only validation worlds with the named-only validation camera `dashcam` (highlight metering), then
# the shipped model and XFeat per frame. Usage: bash models/training/stage15/night_validation.sh DATA OUT
set -euo pipefail
DATA=${1:?data folder}; OUT=${2:?output folder}; mkdir -p "$OUT"
i=0
for h in led_flood led_flood halogen led_spot; do
  s=$((3015 + i)); i=$((i + 1))
  [ -d "$DATA/world_$s" ] || dlvf sim --out "$DATA/world_$s" --seed $s --style held_out_validation,camera=dashcam,headlights=$h \
    --path-length 40 --spacing 1.0 --lightings night > "$OUT/sim_$s.log" 2>&1
  dlvf test --data "$DATA/world_$s" --model models/dlvf_m8_c8_240x320.pt --map-run 0 --out "$OUT/learned_$s" > "$OUT/learned_$s.log" 2>&1
  dlvf test --data "$DATA/world_$s" --backend xfeat --map-run 0 --out "$OUT/xfeat_$s" > "$OUT/xfeat_$s.log" 2>&1
  echo "== world $s, headlights $h"; grep -hE "^lighting night" "$OUT/learned_$s.log" "$OUT/xfeat_$s.log"
done
