#!/usr/bin/env bash
# Fine-tune by every variant of a variants file at once on a many-core machine with a GPU (run from the repository
# root; stages 6 and 9): render and pair the worlds (models/training/stage4/render_and_train.sh with
# TRAIN_UNTIL_S=0: world 3001 for selection and N_TRAIN `training` worlds), build each other pair set the variants
# name from the same worlds, then fine-tune INIT by every variant at once until TRAIN_UNTIL_S (each variant's config:
# BASE with its changes, by models/training/variant_config.py). Pair sets: `pairs` (stage 4's dataset.yaml),
# `pairs192` (the same at 256x192), `pairs_anchor` (every pair's target in the noon teach run, run 0),
# `pairs_aperiodic` (stage 4's pairs of the same training seeds rendered again with APERIODIC_SIM_CONFIG, default
# stage 13's aperiodic_sim.yaml: tiles that never repeat; world 3001 as in `pairs`).
# OUT receives log.txt, dataset.json, dataset_<set>.json and one tar per variant (best.pt by validation loss,
# metrics.csv, train.yaml, log.txt), refreshed every 30 s so that a cut-off run still brings its checkpoints back.
# Env: OUT, PY, VARIANTS (default stage 6's), BASE (default stage 5's train.yaml), TRAIN_UNTIL_S (seconds from the
# start), WORKERS (loader processes per variant), INIT, EXTRA (changes for every variant, e.g. "device=cpu
# batch_size=2" for a smoke run), SAME_START (1: start every variant once every pair set is built, so that all
# train for the same wall time; default 0: each as soon as its pairs are ready, as stages 6-11 ran), and the env of
# render_and_train.sh.
set -uo pipefail
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
S=models/training/stage6; PY=${PY:-python3}; W=${W:-/tmp/stage4}; TRAIN_UNTIL_S=${TRAIN_UNTIL_S:-530}
WORKERS=${WORKERS:-4}; INIT=${INIT:-models/training/stage5/best.pt}
VARIANTS=${VARIANTS:-$S/variants.txt}; BASE=${BASE:-models/training/stage5/train.yaml}; SAME_START=${SAME_START:-0}
APERIODIC_SIM_CONFIG=${APERIODIC_SIM_CONFIG:-models/training/stage13/aperiodic_sim.yaml}
mkdir -p $W $OUT
TRAIN_UNTIL_S=0 bash models/training/stage4/render_and_train.sh  # logs to $OUT/log.txt; stops before training
exec > >(tee -a $OUT/log.txt) 2>&1
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 TQDM_MININTERVAL=60
[ -f $W/pairs/dataset.json ] || { echo "no pairs"; exit 3; }
start() {  # name pairs changes
  mkdir -p $W/v/$1
  $PY models/training/variant_config.py $BASE "$3" $W/v/$1/train.yaml
  echo "[$(el)s] $1: pairs $2, $3"
  timeout $((TRAIN_UNTIL_S - $(el))) $PY -m dlvf_ros.cli train --dataset $W/$2 --out $W/v/$1 \
    --config $W/v/$1/train.yaml --init $INIT < /dev/null > $W/v/$1/log.txt 2>&1 &
}
copy_out() {
  for d in $W/v/*/; do
    v=$(basename $d); [ -f $d/checkpoints/best.pt ] || continue
    cp $d/checkpoints/best.pt $d/best.pt
    tar -C $d -cf $OUT/$v.tar.tmp best.pt metrics.csv train.yaml log.txt 2>/dev/null && mv $OUT/$v.tar.tmp $OUT/$v.tar
  done
}
start_on() {  # pairs: start every variant of the variants file that trains on these pairs
  while read -r name pairs changes; do [ $pairs = $1 ] && start $name $pairs "$changes"; done \
    < <(grep -v '^#' $VARIANTS)
}
build_aperiodic() {  # the pairs_aperiodic set: render and pair the training seeds again, with tiles that never repeat
  W=$W/aperiodic OUT=$OUT/aperiodic TRAIN_UNTIL_S=0 TRAIN_SIM_CONFIG=$APERIODIC_SIM_CONFIG \
    bash models/training/stage4/render_and_train.sh > $W/pairs_aperiodic.log 2>&1
  ln -sfn $W/aperiodic/pairs $W/pairs_aperiodic
  echo "[$(el)s] pairs_aperiodic: $(tail -1 $W/pairs_aperiodic.log)"
  cp $W/pairs_aperiodic/dataset.json $OUT/dataset_pairs_aperiodic.json
}
pair_config() {  # pair set name -> its dataset config on stdout, from the 320x240 pairs' config
  case $1 in
    pairs192) sed 's/image_width: 320/image_width: 256/; s/image_height: 240/image_height: 192/' $W/dataset.yaml ;;
    pairs_anchor) cat $W/dataset.yaml; printf '\nanchor_run: 0\n' ;;
    *) echo "unknown pair set $1" >&2; return 1 ;;
  esac
}
[ $SAME_START = 1 ] || start_on pairs
ROOTS=$($PY -c 'import json, sys; print(*(r["path"] for r in json.load(open(sys.argv[1]))["roots"]))' \
  $W/pairs/dataset.json)  # the 320x240 pairs' roots, in their order (the split names roots by index)
SETS=$(grep -v '^#' $VARIANTS | awk '$2 != "pairs" {print $2}' | sort -u)
for set in $SETS; do
  if [ $set = pairs_aperiodic ]; then build_aperiodic; [ $SAME_START = 1 ] || start_on $set; continue; fi
  pair_config $set > $W/dataset_$set.yaml || exit 3
  $PY -m dlvf_ros.cli dataset --data $ROOTS --out $W/$set --config $W/dataset_$set.yaml --workers 8 \
    --cache $W/pairs/disparity > $W/$set.log 2>&1
  echo "[$(el)s] $set: $(tail -1 $W/$set.log)"; cp $W/$set/dataset.json $OUT/dataset_$set.json
  [ $SAME_START = 1 ] || start_on $set
done
if [ $SAME_START = 1 ]; then for set in pairs $SETS; do start_on $set; done; fi
cp $W/pairs/dataset.json $OUT/
while [ -n "$(jobs -r)" ]; do sleep 30; copy_out; done
copy_out
for d in $W/v/*/; do echo "$(basename $d): $(grep -ao "epoch [0-9]*: train[^,]*, val [^ ]* (best [^)]*)" $d/log.txt | tail -1)"; done
ls -la $OUT; echo "[$(el)s] done"
