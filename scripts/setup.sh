#!/usr/bin/env bash
# Set up mcdm in ./.venv: torch, the engine and the built-in modality plugins (with --test: pytest and the
# test-only plugin too). Safe to run again: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# torchvision (pulled in by open-clip-torch, and by controlnet-aux for the tests) must match torch exactly.
packages=(torch==2.14.1 torchvision==0.29.1 -e ".[serve]" -e plugins/mcdm-sketch -e plugins/mcdm-segmentation -e plugins/mcdm-text -e plugins/mcdm-joint)
if [[ "${1:-}" == "--test" ]]; then
  packages=(torch==2.14.1 torchvision==0.29.1 -e ".[test,serve]" -e plugins/mcdm-sketch -e plugins/mcdm-segmentation
            -e plugins/mcdm-text -e plugins/mcdm-joint -e "plugins/mcdm-diffusers[sd]" -e tests/plugins/mcdm-toy
            -e examples/plugins/mcdm-thumbnail -e examples/plugins/mcdm-hair -e examples/plugins/mcdm-tags)
fi
# The page's browser test drives Debian's chromium (never a browser download); it skips only if none installs.
# MCDM_NO_BROWSER=1 (scripts/device-check.sh) leaves it out.
if [[ "${1:-}" == "--test" && -z "${MCDM_NO_BROWSER:-}" ]] && ! command -v chromium > /dev/null && command -v apt-get > /dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium > /dev/null) || echo "chromium not installed: the browser test will skip"
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "${packages[@]}"
