#!/usr/bin/env bash
# The GPU check, unattended, in under 8 minutes on one H100/H200: set up, run the test suite with the GPU
# selected (MCDM_TEST_DEVICE=cuda), run the GPU benchmark, and write results.json and results.md under the
# folder it names (default: device-check-results/). Every phase has a time limit; a phase that fails or runs
# out of time is recorded as such and the next one still runs, so the results always come back.
#
#   bash scripts/device-check.sh [OUT_DIR]
#
# Limits (seconds): SETUP_TIMEOUT (120), DEVICE_TESTS_TIMEOUT (70), TESTS_TIMEOUT (170), BENCH_TIMEOUT (100).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-device-check-results}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
started=$(date +%s)
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

status_of() {  # run a phase under its time limit; write its exit status (124: out of time) and log
  local name="$1" limit="$2"
  shift 2
  local rc=0
  echo "== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1 || rc=$?
  echo "$rc" > "$out/$name.rc"
  echo "   exit $rc, $(( $(date +%s) - started ))s so far; log: $out/$name.log"
  tail -n 3 "$out/$name.log" | sed 's/^/   /'
}

# 1. the machine
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2> /dev/null || echo "no nvidia-smi"; } \
  > "$out/gpu.txt" 2>&1
git rev-parse HEAD > "$out/commit.txt" 2>/dev/null || echo "not a git checkout" > "$out/commit.txt"

# 2. set up: the same script as everywhere (its PyPI torch wheel carries CUDA), without the browser test's
# chromium; an existing .venv is kept if the setup cannot run (no network), and the results say so
status_of setup "${SETUP_TIMEOUT:-120}" env MCDM_NO_BROWSER=1 bash scripts/setup.sh --test
python=.venv/bin/python
if ! "$python" -c "import torch, mcdm" > /dev/null 2>&1; then
  echo "no usable .venv after setup: see $out/setup.log"
  python=python3
fi
"$python" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())" \
  > "$out/torch.txt" 2>&1 || true

# 3. the test suite on the GPU: the tests that take a device first, then everything (the wheel-install test
# builds every wheel from PyPI: left to CI)
status_of tests-device "${DEVICE_TESTS_TIMEOUT:-70}" env MCDM_TEST_DEVICE=cuda "$python" -m pytest -q -p no:cacheprovider \
  tests/test_device.py tests/test_fused.py tests/test_combine.py tests/test_train.py::test_a_gpu_run_trains_resumes_and_exports
status_of tests "${TESTS_TIMEOUT:-170}" env MCDM_TEST_DEVICE=cuda "$python" -m pytest -q -p no:cacheprovider \
  -m "not install"

# 4. the GPU benchmark: the shipped composition, N = 3, 25 steps, bf16, fused/unfused x compiled/eager
status_of bench "${BENCH_TIMEOUT:-100}" "$python" benchmarks/bench_gpu.py --out "$out/bench.json" \
  --time-budget $(( ${BENCH_TIMEOUT:-100} - 25 ))

# 5. one JSON and one Markdown file of everything above
"$python" scripts/device_report.py "$out" || python3 scripts/device_report.py "$out"
echo "wrote $out/results.json and $out/results.md in $(( $(date +%s) - started ))s"
