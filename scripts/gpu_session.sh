#!/usr/bin/env bash
# Everything a lent GPU should run, as one device call (fits the 10-minute limit):
#
#   run(command="bash scripts/gpu_session.sh", timeout_s=580)
#
# (``bash scripts/gpu_session.sh gru``: the GRU / SimpleRNN cells instead, their GPU
# tests (with recurrent dropout masks on every plan, the LSTM's masked warp plans too)
# and gpu_check.py's GRU section, also one call.)
#
# 1. install gpulstm into the device's python (nothing can be downloaded there);
# 2. the real-GPU tests (tests/test_cuda_gpu.py: kernels against the float64
#    reference, and whole models kept on the device with real CuPy);
# 3. the pytest-benchmark GPU groups (gpulstm-cuda beside torch-cuda, quick subset,
#    each validated before timing);
# 4. scripts/gpu_check.py --quick: the validated CUDA-event table beside cuDNN.
# Each step has its own time limit so a slow one cannot take the others' results;
# every log and JSON lands in $OUT (the folder the device tool brings back).
set -uo pipefail
OUT=${OUT:-/tmp/gpulstm-gpu}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
nvidia-smi -L > "$OUT/device.txt" 2>&1
python3 -m pip install --no-deps --no-build-isolation -e . > "$OUT/install.log" 2>&1 \
    || { echo "install failed"; tail -5 "$OUT/install.log"; exit 1; }
if [ "${1:-}" = gru ]; then
    # the GRU / SimpleRNN cells of the persistent driver (one call of its own), masked
    # (recurrent dropout) and not:
    #   run(command="bash scripts/gpu_session.sh gru", timeout_s=580)
    timeout 300 python3 -m pytest -q -m gpu tests/test_cuda_gpu_cells.py -p no:cacheprovider \
        > "$OUT/gpu_cells_tests.log" 2>&1
    echo "gpu cell tests: $(tail -1 "$OUT/gpu_cells_tests.log")"
    timeout 220 python3 scripts/gpu_check.py --out "$OUT" --quick --skip-spike --only-gru \
        --budget-s 180 > "$OUT/gpu_check_gru.log" 2>&1
    echo "gpu_check --only-gru: $(tail -1 "$OUT/gpu_check_gru.log")"
    tail -20 "$OUT/gpu_check_gru.log"
    exit 0
fi
timeout 200 python3 -m pytest -q -m gpu tests/test_cuda_gpu.py -p no:cacheprovider \
    > "$OUT/gpu_tests.log" 2>&1
echo "gpu tests: $(tail -1 "$OUT/gpu_tests.log")"
timeout 150 python3 -m pytest bench --benchmark-only --quick --gpulstm-backends cuda \
    --peers torch-cuda --threads 1 --benchmark-json "$OUT/bench_gpu_quick.json" \
    -p no:cacheprovider > "$OUT/bench_gpu.log" 2>&1
echo "bench groups: $(tail -1 "$OUT/bench_gpu.log")"
timeout 180 python3 scripts/gpu_check.py --out "$OUT" --quick --budget-s 150 \
    > "$OUT/gpu_check.log" 2>&1
echo "gpu_check: $(tail -1 "$OUT/gpu_check.log")"
tail -25 "$OUT/gpu_check.log"
