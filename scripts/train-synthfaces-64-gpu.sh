#!/usr/bin/env bash
# Train the synthfaces-64 set on one CUDA GPU, from the configs the CPU runs use:
#   1. the 64x64 VAE (configs/vae/vae-64.yaml) and the 64x64 CLIP (configs/clip/clip-64.yaml), side by side;
#   2. the prior and the sketch, segmentation and text models on the VAE's latents, and the joint oracle their
#      composition is measured against (same latents, joint.yaml's budget), all five side by side
#      (1 M-parameter UNets: one GPU holds them at once), in bf16; beside them the 64x64 judges
#      (configs/judges/judges-64.yaml) on the CPU cores (their trainer has no device key).
# Usage: bash scripts/train-synthfaces-64-gpu.sh RUNS_FOLDER [--resume]
# Each run logs to RUNS_FOLDER/NAME.log; --resume continues every run from its newest checkpoint (a run that had
# finished returns at once). The script stops at the first run that fails, naming its log.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 RUNS_FOLDER [--resume]" >&2; exit 2; }
RUNS=$(realpath -m "$1")
RESUME=${2:-}
MCDM=${MCDM:-.venv/bin/mcdm}
PYTHON=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1
mkdir -p "$RUNS"

pids=() names=()
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # a failure stops the runs still going
start() {  # start NAME COMMAND...: one run in the background, its output in RUNS/NAME.log
  local name=$1; shift
  "$@" > "$RUNS/$name.log" 2>&1 &
  pids+=($!) names+=("$name")
}
finish() {  # wait for every started run; the first failure stops the script
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "${names[$i]} failed: see $RUNS/${names[$i]}.log" >&2; exit 1; }
    echo "${names[$i]} done"
  done
  pids=() names=()
}

# the denoisers' 50,000 training faces, rendered once while the VAE trains (four runs would each render them)
start faces-64 "$PYTHON" -c "from mcdm.data.cache import load_or_build_cache as build; build(64, 50000, 0, 'train')"
start vae $MCDM train vae configs/vae/vae-64.yaml out="$RUNS/vae" $RESUME
start clip $MCDM train clip configs/clip/clip-64.yaml out="$RUNS/clip" device=cuda precision=bf16 $RESUME
finish

# their latents, encoded once by the trained VAE (four runs starting together would each encode them)
start latents-64 "$PYTHON" -c "
from mcdm.data.cache import load_or_build_cache
from mcdm.latent import load_vae
from mcdm.latent_cache import load_or_build_latents
latent = load_vae('$RUNS/vae/model')
latent.vae.to('cuda')  # where the runs would encode them
load_or_build_latents(load_or_build_cache(64, 50000, 0, 'train'), latent)"
finish

LATENT=(vae="$RUNS/vae/model" data.size=64 mixed_precision=bf16)
for modality in prior sketch segmentation; do
  start "$modality" $MCDM train denoiser "configs/train/$modality.yaml" out="$RUNS/$modality" "${LATENT[@]}" $RESUME
done
for modality in text joint; do
  start "$modality" $MCDM train denoiser "configs/train/$modality.yaml" out="$RUNS/$modality" "${LATENT[@]}" \
    denoiser.clip_path="$RUNS/clip/clip" $RESUME
done
# on the CPU cores, from the faces rendered above; its trainer does not checkpoint: a finished run is kept, an
# unfinished one starts again
[ -f "$RUNS/judges/judges.json" ] || start judges $MCDM train judges configs/judges/judges-64.yaml out="$RUNS/judges" threads=8
finish
echo "trained: $RUNS/{vae,clip,judges,prior,sketch,segmentation,text,joint}"
