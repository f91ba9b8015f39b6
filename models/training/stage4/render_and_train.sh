#!/usr/bin/env bash
# Stage 4 in one go on a many-core machine with a GPU (run from the repository root): render `training`-style
# worlds on every core plus the held_out_validation world 3001 (checkpoint selection), build the pairs, fine-tune.
# Env: OUT (results: log, metrics, checkpoints), PY, N_TRAIN, SEED0 (training seeds SEED0+1 .. SEED0+N_TRAIN),
# PATH_M, PAR (processes), RENDER_S and TRAIN_UNTIL_S (seconds from the start; 0: render and pair only), INIT,
# W (scratch), TRAIN_CONFIG, TRAIN_SIM_CONFIG (a `dlvf sim --config` YAML for the training worlds only, e.g.
# aperiodic textures; world 3001 is always rendered with the defaults).
# On a lent machine without the GL loaders or moderngl, unpack the carried .gl/*.deb and .whl/*.whl first
# (/work/.library/device/README.md); both are skipped when absent, the wheels also when an earlier call in this
# session installed them (train_variants.sh renders a second set of worlds).
set -uo pipefail
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
S=models/training/stage4
PY=${PY:-python3}; N_TRAIN=${N_TRAIN:-30}; SEED0=${SEED0:-2000}; PATH_M=${PATH_M:-40}; PAR=${PAR:-16}
RENDER_S=${RENDER_S:-230}; TRAIN_UNTIL_S=${TRAIN_UNTIL_S:-540}; INIT=${INIT:-models/training/stage3/best.pt}
W=${W:-/tmp/stage4}; TRAIN_CONFIG=${TRAIN_CONFIG:-$S/train.yaml}; TRAIN_SIM_CONFIG=${TRAIN_SIM_CONFIG:-}
mkdir -p $W $OUT; exec > >(tee -a $OUT/log.txt) 2>&1
if [ -n "$(ls .gl/*.deb 2>/dev/null)" ]; then for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; fi
if [ -n "$(ls .whl/*.whl 2>/dev/null)" ] && [ ! -d /tmp/site/moderngl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 TQDM_MININTERVAL=30
if ! $PY -c 'import moderngl; moderngl.create_context(standalone=True, backend="egl")'; then
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
echo "[$(el)s] render: world 3001 (held_out_validation) + $N_TRAIN training worlds, $PATH_M m, $PAR at a time"
render() {  # seed style [sim config]
  local out=$W/world_$1
  $PY -m dlvf_ros.cli sim --out $out --seed $1 --style $2 --path-length $PATH_M --spacing 1.0 \
    --lightings morning,evening,overcast,dusk,night,glare ${3:+--config $3} --overwrite > $out.log 2>&1 \
    && touch $out/done
  echo "[$(el)s] world $1 ($2) $([ -f $out/done ] && echo done || echo failed)"
}
export -f render el; export T0 PY W PATH_M
( { echo "3001 held_out_validation"
    # no trailing blank: xargs -L would join the next line to this one
    for i in $(seq 1 $N_TRAIN); do echo "$((SEED0 + i)) training${TRAIN_SIM_CONFIG:+ $TRAIN_SIM_CONFIG}"; done; } \
  | xargs -P $PAR -L 1 bash -c 'render $0 $1 $2' ) &
RENDER_PID=$!
while kill -0 $RENDER_PID 2>/dev/null; do  # past RENDER_S, go on with the worlds done (at least 8); 90 s later anyway
  n=$(ls $W/world_[0-2]*/done 2>/dev/null | wc -l)
  if [ $(el) -ge $RENDER_S ] && [ -f $W/world_3001/done ] && [ $n -ge 8 ]; then break; fi
  [ $(el) -ge $((RENDER_S + 90)) ] && break
  sleep 3
done
pkill -f "dlvf_ros.cli sim"; sleep 1
[ -f $W/world_3001/done ] || { echo "the validation world did not render"; exit 3; }
TRAIN_ROOTS=$(for d in $W/world_[0-2]*/; do [ -f $d/done ] && echo ${d%/}; done | tr '\n' ' ')
N=$(echo $TRAIN_ROOTS | wc -w); echo "[$(el)s] training worlds: $N"
grep -aoh "world [0-9]* style [^ ]*" $W/world_*.log
sed "s/train: \[[^]]*\]/train: [$(seq -s, 1 $N)]/" $S/dataset.yaml > $W/dataset.yaml
$PY -m dlvf_ros.cli dataset --data $W/world_3001 $TRAIN_ROOTS --out $W/pairs --config $W/dataset.yaml --workers $PAR
cp $W/pairs/dataset.json $OUT/
if [ "$TRAIN_UNTIL_S" -le 0 ]; then echo "[$(el)s] pairs ready; TRAIN_UNTIL_S=0: no training"; exit 0; fi
copy_out() { for f in best.pt last.pt; do [ -f $W/run/checkpoints/$f ] && cp $W/run/checkpoints/$f $OUT/; done
             [ -f $W/run/metrics.csv ] && cp $W/run/metrics.csv $OUT/; }
( while true; do sleep 20; copy_out; done ) & COPY_PID=$!
echo "[$(el)s] training until ${TRAIN_UNTIL_S}s"
timeout $((TRAIN_UNTIL_S - $(el))) $PY -m dlvf_ros.cli train --dataset $W/pairs --out $W/run --config $TRAIN_CONFIG \
  --init $INIT
echo "[$(el)s] train exit $?"
kill $COPY_PID; copy_out; cp $W/run/training_curve.png $OUT/ 2>/dev/null; ls -la $OUT
