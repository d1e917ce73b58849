#!/usr/bin/env bash
# One GPU session (issue 15, "Speed"): reference vs fast MLAD at the paper's MultiTHUMOS
# configuration, batch 32, fp32 and bf16, eager and torch.compile; then one whole
# MultiTHUMOS-sized training epoch with 8 loader workers (bf16, compile).
# Usage: OUT=/some/dir bash benchmarks/gpu_session.sh [--dry]   (--dry: CPU, --quick sizes)
# Installs nothing; each step has its own timeout so one failure does not lose the rest.
set -u
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
DRY=0; [ "${1:-}" = "--dry" ] && DRY=1
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MLADLIB_PROGRESS=0 MLADLIB_CACHE="${MLADLIB_CACHE:-/tmp/mladlib_cache}"
step() {  # step NAME SECONDS COMMAND...: run, log to $OUT/NAME.log, report the status
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s): $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  echo "=== $name: exit $rc"
}
{ nvidia-smi -L || echo "nvidia-smi not available"; } | tee "$OUT/gpu.txt"
$PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" | tee -a "$OUT/gpu.txt"
if ! $PY -c "import h5py, sklearn, scipy" 2>/dev/null; then
  echo "MISSING python packages (install the carried wheels, then rerun):"
  for m in h5py sklearn scipy tqdm; do $PY -c "import $m" 2>/dev/null || echo "  - $m"; done
fi
if [ $DRY = 1 ]; then DEV=cpu; QUICK=--quick; COMPILE=""; else DEV=cuda; QUICK=""; COMPILE=--compile; fi
# (b) the model step: reference vs fast, fp32 and bf16 (+ a compiled row), MultiTHUMOS, B = 32
step bench_model 240 $PY benchmarks/bench_model.py --device $DEV $QUICK --data multithumos \
  --batch-sizes 32 --dtype both $COMPILE --time-budget-s 200
# (c) one whole MultiTHUMOS-sized epoch, 8 workers, bf16, compiled step
step bench_train 240 $PY benchmarks/bench_train.py --device $DEV $QUICK --num-workers 8 \
  $([ $DRY = 1 ] || echo "--dtype bf16 --compile")
cp -f benchmarks/results/*.json "$OUT/" 2>/dev/null || true
echo "logs and results in $OUT"
