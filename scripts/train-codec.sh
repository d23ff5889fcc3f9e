#!/usr/bin/env bash
# Reproduce the embedded Kodama tokenizer checkpoint (mio/talker/codec/embedded) on 2 CPU cores.
#
#   bash scripts/train-codec.sh            # all stages; each resumes if its folder already has a run
#   STAGES="3" bash scripts/train-codec.sh # only the GAN stage (needs stage 2's folder)
#
# Stage 1 (~35 min alone on one core at ~4.5 steps/s; it took ~2 h here beside other jobs):
#   mel floor 1e-5, constant learning rate, no GAN.
# Stage 2 (~50 min): the same run resumed to 22000 steps with the mel floor at 1e-3 and a cosine
#   decay from 16000. Resuming reproduces a straight run: the batches are drawn from
#   (seed, step, rank) and the RNG state is restored, and the learning rate is constant before 16000.
# Stage 3 (~50 min, 2 processes): the GAN of Eq. 1-3 joins (multi-period + multi-scale STFT
#   discriminators) with lambda_mel = 15, warm-started from stage 2, 2200 steps, decay from 1300.
# Then it copies the chosen stage's checkpoint into the package (EXPORT=2 keeps stage 2's).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-out/train}
STAGES=${STAGES:-"1 2 3"}
EXPORT=${EXPORT:-3}
export OMP_NUM_THREADS=1 MIO_TRAIN_THREADS=1
common=(--corpus out/codec-corpus --batch 4 --segment-frames 6 --threads 1)

for stage in $STAGES; do
  case $stage in
    1) mkdir -p "$OUT"
       "$PY" -m mio.cli train codec "${common[@]}" --build-corpus 1000 --preset embedded --quantizer cosine --steps 8500 \
         --lr 1.5e-3 --gan-start 1000000 --mel-floor 1e-5 --save-every 250 --out "$OUT/codec-stage1"
       rm -rf "$OUT/codec-stage2" && cp -r "$OUT/codec-stage1" "$OUT/codec-stage2" ;;
    2) "$PY" -m mio.cli train codec "${common[@]}" --preset embedded --steps 22000 --decay-start 16000 \
         --lr 1.5e-3 --gan-start 1000000 --mel-floor 1e-3 --save-every 250 --out "$OUT/codec-stage2" ;;
    3) "${PY%python}torchrun" --nproc_per_node 2 -m mio.cli train codec "${common[@]}" \
         --init-from "$OUT/codec-stage2" --steps 2200 --decay-start 1300 --gan-start 0 --lr 5e-4 \
         --mel-weight 15 --mel-floor 1e-3 --save-every 100 --seed 3 --out "$OUT/codec-stage3" ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
src="$OUT/codec-stage$EXPORT"
cp "$src/config.json" "$src/model.safetensors" mio/talker/codec/embedded/
echo "exported $src -> mio/talker/codec/embedded"
