#!/usr/bin/env bash
# One device-machine session for issue 10: the GPU benchmark, then the GPU
# test suite, each under its own time limit so that one cannot eat the other.
#
# Here, first (the device image lacks these and has no network):
#   printf '/.whl/\n/.site/\n' >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl \
#       array-api-compat array-api-extra fast-pytorch-kmeans==0.2.2
# then through the device tool, with carry [".whl"] and timeout_s 590:
#   bash benchmarks/gpu_session.sh
# Everything lands in $OUT (at most 8 files come back): nvidia-smi.txt,
# bench.log, gpu.md, gpu.json, pytest.log.  BENCH_S / TEST_S cap each part
# (seconds), BENCH_ARGS adds benchmark options (--knn-shapes 1000000x64 for a
# short run), PYTEST_ARGS pytest's (-n 8 where pytest-xdist is installed:
# the suite takes over 4 minutes in one process on an H100 machine).  pytest
# runs verbose, so that a run cut by its limit still names its failures (-q
# prints them only at the end), and without the image's pytest-benchmark
# plugin, whose warning under xdist is an error with our filterwarnings.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
    --format=csv >"$OUT/nvidia-smi.txt" 2>&1
python3 -c "import torch, cupy; print(torch.__version__, cupy.__version__)" \
    >>"$OUT/nvidia-smi.txt" 2>&1
# shellcheck disable=SC2086 # word splitting of the *_ARGS is wanted
timeout "${BENCH_S:-300}" python3 benchmarks/gpu.py --out "$OUT" --profile \
    ${BENCH_ARGS:-} >"$OUT/bench.log" 2>&1
echo "benchmark exit $?" >>"$OUT/bench.log"
timeout "${TEST_S:-240}" python3 -m pytest -v -p no:cacheprovider -p no:benchmark -rfE \
    --backends=numpy,torch,cupy --durations=10 ${PYTEST_ARGS:-} \
    >"$OUT/pytest.log" 2>&1
echo "pytest exit $?" >>"$OUT/pytest.log"
tail -n 5 "$OUT/bench.log" "$OUT/pytest.log"
