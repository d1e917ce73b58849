#!/usr/bin/env bash
# One device session (lead, 2026-12-04): the GPU benchmarks on cores 0-6 while the semi-real
# protocol (benchmarks/SEMIREAL_PROTOCOL.md, budget "cpu", one thread a run) runs on cores
# 7-15, split by stage and seed into processes that each write their own record.
set -u
OUT=${OUT:?}
export PYTHONPATH="$PWD" MLADLIB_PROGRESS=0 MLADLIB_CACHE=/tmp/mladlib_cache
ann=.cache/shared_data
mkdir -p "$OUT/semireal"
core=7
for s in 0 1 2; do
  for stage in main sweep; do
    taskset -c $core python3 benchmarks/bench_semireal.py --dataset multithumos --annotations $ann/multithumos \
      --stages $stage --seeds $s --out "$OUT/semireal/multithumos_${stage}_seed$s.json" \
      > "$OUT/semireal/multithumos_${stage}_seed$s.log" 2>&1 &
    core=$((core + 1))
  done
done
for s in 0 1 2; do
  [ $core -le 15 ] || break
  taskset -c $core python3 benchmarks/bench_semireal.py --dataset charades --annotations $ann/charades \
    --seeds $s --out "$OUT/semireal/charades_seed$s.json" > "$OUT/semireal/charades_seed$s.log" 2>&1 &
  core=$((core + 1))
done
taskset -c 0-6 bash benchmarks/gpu_session.sh
echo "=== benchmarks done at $(date +%T); semi-real runs go on until the limit"
sleep "${SEMIREAL_EXTRA_S:-60}"
for f in "$OUT"/semireal/*.log; do echo "--- $f"; tail -n 3 "$f"; done
