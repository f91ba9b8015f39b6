#!/usr/bin/env bash
# The stage-4 recipe's ablation, in one go on a many-core machine with a GPU (run from the repository root).
# Renders and pairs the stage-4 worlds (models/training/stage4/render_and_train.sh with TRAIN_UNTIL_S=0), then trains
# every variant of variants.txt at once on the one GPU for the same wall time, same data and seed. A snapshot of each
# variant is kept at every epoch; at the end each is exported at the last epoch that every variant reached, so the
# comparison is at an equal number of epochs. OUT receives one tar per variant (metrics.csv, export, train.yaml).
# Env: OUT, PY, TRAIN_UNTIL_S (seconds from the start), WORKERS (loader processes per variant), EXTRA (changes for
# every variant, e.g. "device=cpu batch_size=2" for a smoke run), and the env of render_and_train.sh.
set -uo pipefail
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
A=models/training/ablation; PY=${PY:-python3}; W=${W:-/tmp/stage4}; TRAIN_UNTIL_S=${TRAIN_UNTIL_S:-540}
WORKERS=${WORKERS:-3}
mkdir -p $W $OUT
TRAIN_UNTIL_S=0 bash models/training/stage4/render_and_train.sh  # logs to $OUT/log.txt; stops before training
exec > >(tee -a $OUT/log.txt) 2>&1
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 TQDM_MININTERVAL=60
[ -f $W/pairs/dataset.json ] || { echo "no pairs"; exit 3; }
VARIANTS=$(grep -v '^#' $A/variants.txt | awk '{print $1}')
while read -r name init changes; do
  mkdir -p $W/ab/$name/snap
  $PY models/training/variant_config.py models/training/stage4/train.yaml "$changes" $W/ab/$name/train.yaml
  echo "[$(el)s] $name: init $init, $changes"
  timeout $((TRAIN_UNTIL_S - $(el))) $PY -m dlvf_ros.cli train --dataset $W/pairs --out $W/ab/$name \
    --config $W/ab/$name/train.yaml --init $init < /dev/null > $W/ab/$name/log.txt 2>&1 &
done < <(grep -v '^#' $A/variants.txt)
snapshot() {  # keep last.pt of each finished epoch (last.pt is written before its metrics row)
  for v in $VARIANTS; do
    m=$W/ab/$v/metrics.csv; [ -f $m ] || continue
    e=$(( $(wc -l < $m) - 2 )); [ $e -ge 0 ] && [ ! -f $W/ab/$v/snap/e$e.pt ] && cp $W/ab/$v/checkpoints/last.pt $W/ab/$v/snap/e$e.pt
  done
}
while [ -n "$(jobs -r)" ]; do sleep 5; snapshot; done
snapshot
E=$(for v in $VARIANTS; do ls $W/ab/$v/snap | sed 's/e\([0-9]*\).pt/\1/' | sort -n | tail -1; done | sort -n | head -1)
echo "[$(el)s] epochs reached: $(for v in $VARIANTS; do echo -n "$v $(ls $W/ab/$v/snap | wc -l) "; done); compared at epoch $E"
for v in $VARIANTS; do
  $PY -m dlvf_ros.cli export --checkpoint $W/ab/$v/snap/e$E.pt --out $W/ab/$v/${v}_e$E.pt --height 240 --width 320 \
    --dataset $W/pairs > /dev/null 2>&1 || echo "export $v failed"
  echo "$v: $(grep -ao "epoch [0-9]*: train[^,]*, val [^ ]*" $W/ab/$v/log.txt | tail -1)"
  tar -C $W/ab/$v -cf $OUT/$v.tar metrics.csv train.yaml log.txt ${v}_e$E.pt
done
cp $W/ab/stage5/checkpoints/best.pt $OUT/stage5_best.pt  # the candidate to ship, chosen by its validation loss
ls -la $OUT; echo "[$(el)s] done"
