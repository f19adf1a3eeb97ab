#!/usr/bin/env bash
# Train the synthfaces-64 set on one CUDA GPU, from the configs the CPU runs use:
#   1. the 64x64 VAE (configs/vae/vae-64.yaml) and the 64x64 CLIP (configs/clip/clip-64.yaml), side by side;
#   2. the prior and the sketch, segmentation and text models on the VAE's latents, all four side by side
#      (1 M-parameter UNets: one GPU holds them at once), in bf16.
# Usage: bash scripts/train-synthfaces-64-gpu.sh RUNS_FOLDER [--resume]
# Each run logs to RUNS_FOLDER/NAME.log; --resume continues every run from its newest checkpoint (a run that had
# finished returns at once). The script stops at the first run that fails, naming its log.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 RUNS_FOLDER [--resume]" >&2; exit 2; }
RUNS=$(realpath -m "$1")
RESUME=${2:-}
MCDM=${MCDM:-.venv/bin/mcdm}
export HF_HUB_OFFLINE=1
mkdir -p "$RUNS"

pids=() names=()
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # a failure stops the runs still going
start() {  # start NAME COMMAND...: one run in the background, its output in RUNS/NAME.log
  local name=$1; shift
  "$@" $RESUME > "$RUNS/$name.log" 2>&1 &
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
start faces-64 .venv/bin/python -c "from mcdm.data.cache import load_or_build_cache as build; build(64, 50000, 0, 'train')"
start vae $MCDM train vae configs/vae/vae-64.yaml out="$RUNS/vae"
start clip $MCDM train clip configs/clip/clip-64.yaml out="$RUNS/clip" device=cuda precision=bf16
finish

# their latents, encoded once by the trained VAE (four runs starting together would each encode them)
start latents-64 .venv/bin/python -c "
from mcdm.data.cache import load_or_build_cache
from mcdm.latent import load_vae
from mcdm.latent_cache import load_or_build_latents
latent = load_vae('$RUNS/vae/model')
latent.vae.to('cuda')  # where the runs would encode them
load_or_build_latents(load_or_build_cache(64, 50000, 0, 'train'), latent)"
finish

LATENT=(vae="$RUNS/vae/model" data.size=64 mixed_precision=bf16)
for modality in prior sketch segmentation; do
  start "$modality" $MCDM train denoiser "configs/train/$modality.yaml" out="$RUNS/$modality" "${LATENT[@]}"
done
start text $MCDM train denoiser configs/train/text.yaml out="$RUNS/text" "${LATENT[@]}" \
  denoiser.clip_path="$RUNS/clip/clip"
finish
echo "trained: $RUNS/{vae,clip,prior,sketch,segmentation,text}"
