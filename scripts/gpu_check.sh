#!/usr/bin/env bash
# One prepared device session (issue 32): every task run on CUDA, the NTK engine and the trainer timed on the GPU, and
# as much of NAS-Bench-201 scored (per-sample BN, F-Norm/Mean/NCN/LGA, batch 64) as the time allows.
#
#   scripts/gpu_check.sh OUT_DIR                      # on the GPU machine (device=cuda)
#   DEVICE=cpu SPACE_S=20 CHUNK=20 JOBS=2 SMOKE_ARCHS=3 scripts/gpu_check.sh /tmp/dry   # a dry run on a CPU
#
# Needs the cifar10_partial images under $NTKEXP_DATA_ROOT (default ../shared/data). Every part has its own timeout
# and writes its own log under OUT_DIR, so one failing part leaves the others' figures:
#   smoke.log        one line per task run on the device (exit code, seconds) and the tail of each failed one
#   bench_ntk.log    scripts/bench_ntk.py: engine vs loop, every BN mode, full NB201 at batch 64
#   bench_train.log  scripts/bench_train.py: images/s of the full NB201 net at batch 256 (bf16, channels_last)
#   space.log        archs scored per second by JOBS parallel runs over chunks of the space, SPACE_S seconds at most,
#                    then one correlate run over every finished arch (read back from the score cache)
#   space_summary.json, space_scores.csv   that final run's summary and scores
set -u
OUT=${1:?usage: scripts/gpu_check.sh OUT_DIR}
DEVICE=${DEVICE:-cuda}
SPACE_S=${SPACE_S:-100}     # seconds for scoring the space (chunks started after that are skipped)
JOBS=${JOBS:-8}             # parallel runs over the space (the GPU is shared; each run has THREADS CPU threads)
THREADS=${THREADS:-2}
CHUNK=${CHUNK:-250}         # archs per run over the space
SMOKE_ARCHS=${SMOKE_ARCHS:-8}
SMOKE_S=${SMOKE_S:-180}     # each smoke run's limit (they run side by side)
PARTS=${PARTS:-"env tests smoke bench_ntk bench_train space"}   # which parts to run
SMOKE=${SMOKE:-"correlate_per_sample_all correlate_train correlate_eval kernel_evolution search_lga_t search_ntk simulated_search prune_search"}
NTK_MODES=${NTK_MODES:-train,eval,per_sample}
want() { [[ " $PARTS " == *" $1 "* ]]; }
export NTKEXP_DATA_ROOT=${NTKEXP_DATA_ROOT:-../shared/data} WANDB_MODE=offline PYTHONUNBUFFERED=1
WORK=${WORK:-/tmp/ntkexp_gpu_check}
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
export NTKEXP_CACHE_DIR=$WORK/cache
COMMON=(device="$DEVICE" logger=csv task.progress=false threads="$THREADS")

if want env; then
python - <<'EOF' >"$OUT/env.log" 2>&1
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB", p.multi_processor_count, "SMs", "bf16",
          torch.cuda.is_bf16_supported())
EOF
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$OUT/env.log" 2>&1
fi
if want tests; then  # the CUDA tests (skipped on a machine without a GPU): GPU against CPU, every metric and BN mode
  timeout "${TESTS_S:-150}" python -m pytest -q -p no:cacheprovider tests/test_cuda.py >"$OUT/tests.log" 2>&1 &
fi

# ---- 1. smoke: every task on the device, in parallel (few archs each) --------------------------------------------
smoke() {  # name, timeout, overrides...
  local name=$1 limit=$2; shift 2
  [[ " $SMOKE " == *" $name "* ]] && want smoke || return 0
  local start=$SECONDS
  timeout "$limit" python run.py "${COMMON[@]}" hydra.run.dir="$WORK/smoke/$name" "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - start))s :: $*" >>"$OUT/smoke.log"
  if [ $rc -ne 0 ]; then tail -40 "$WORK/$name.log" | sed "s/^/    $name| /" >>"$OUT/smoke.log"; fi
  grep -hE "kendall_tau|found|best|LGA|lga_t|top" "$WORK/$name.log" | grep -v "┃" | head -12 | sed "s/^/    $name> /" >>"$OUT/smoke.log"
}
N=$SMOKE_ARCHS
smoke correlate_per_sample_all "$SMOKE_S" n_archs=$N bn_mode=per_sample metric=all &
smoke correlate_train "$SMOKE_S" n_archs=$N bn_mode=train metric=ntk &
smoke correlate_eval "$SMOKE_S" n_archs=$N bn_mode=eval metric=ntk &
smoke kernel_evolution "$SMOKE_S" task=kernel_evolution dataset=cifar10_npz task.select=sample n_archs=4 \
  "task.track_epochs=[0,5]" trainer.epoch_steps=1 metric=ntk &
smoke search_lga_t "$SMOKE_S" task=search dataset=cifar10_npz metric=lga metric.train_epochs=1 trainer.epoch_steps=3 \
  search_algo=rea search_algo.budget_evals=$N &
smoke search_ntk "$SMOKE_S" task=search metric=ntk search_algo=rea search_algo.budget_evals=$((3 * N)) &
smoke simulated_search "$SMOKE_S" task=simulated_search metric=synflow task.simulated.runs=1 \
  task.simulated.budget_train_seconds=1500 search_algo.pool_size=5 &
smoke prune_search "$SMOKE_S" task=prune_search metric=tegnas_paper "metric.names=[cond,linear_regions]" &
wait
echo "smoke done at ${SECONDS}s" >>"$OUT/smoke.log"

# ---- 2. benchmarks, alone on the device --------------------------------------------------------------------------
if want bench_ntk; then
  timeout "${BENCH_NTK_S:-100}" python scripts/bench_ntk.py --device "$DEVICE" --repeats 3 --modes "$NTK_MODES" \
    >"$OUT/bench_ntk.log" 2>&1
  echo "rc=$? at ${SECONDS}s" >>"$OUT/bench_ntk.log"
fi
if want bench_train; then
  timeout 120 python scripts/bench_train.py --data-root "$NTKEXP_DATA_ROOT" --steps 30 --warmup 5 \
    >"$OUT/bench_train.log" 2>&1
  echo "rc=$? at ${SECONDS}s" >>"$OUT/bench_train.log"
fi

# ---- 3. the space: JOBS parallel correlate runs over chunks of CHUNK archs, started until SPACE_S has passed -----
if want space; then
python - "$WORK/chunks" "$CHUNK" <<'EOF'
import sys
from pathlib import Path
import pandas as pd
from ntkexp.io import resolve_path
archs = read_table(resolve_path("pkg://nb201.npz"))["arch_str"].tolist()
out, size = Path(sys.argv[1]), int(sys.argv[2])
out.mkdir(parents=True)
for i in range(0, len(archs), size):
    (out / f"{i // size:03d}.txt").write_text("\n".join(archs[i:i + size]) + "\n")
EOF
DEADLINE=$(($(date +%s) + SPACE_S))
export DEADLINE WORK THREADS DEVICE
SPACE_START=$(date +%s.%N)
ls "$WORK"/chunks/*.txt | xargs -P "$JOBS" -I{} bash -c '
  [ "$(date +%s)" -lt "$DEADLINE" ] || exit 0
  name=$(basename {} .txt)
  timeout $((DEADLINE - $(date +%s) + ${MARGIN_S:-60})) python run.py device=$DEVICE logger=csv task.progress=false task.plot=false \
    threads=$THREADS n_archs=null archs_file={} metric=ntk bn_mode=per_sample hydra.run.dir=$WORK/space/$name \
    >$WORK/space_$name.log 2>&1 && touch $WORK/space/$name/DONE'
SPACE_END=$(date +%s.%N)
cat "$WORK"/space/*/DONE >/dev/null 2>&1
DONE_CHUNKS=$(ls "$WORK"/space/*/DONE 2>/dev/null | wc -l)
: >"$WORK/finished.txt"
for d in "$WORK"/space/*/; do
  [ -f "$d/DONE" ] && cat "$WORK/chunks/$(basename "$d").txt" >>"$WORK/finished.txt"
done
N_DONE=$(grep -c . "$WORK/finished.txt")
python - "$SPACE_START" "$SPACE_END" "$N_DONE" "$DONE_CHUNKS" "$JOBS" "$CHUNK" <<'EOF' >"$OUT/space.log" 2>&1
import sys
t0, t1, n, chunks, jobs, chunk = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), *map(int, sys.argv[4:])
wall = t1 - t0
rate = n / wall if wall > 0 else float("nan")
print(f"{n} archs in {chunks} finished chunks of {chunk} by {jobs} parallel runs in {wall:.1f} s wall "
      f"(process start-up included): {rate:.2f} archs/s; the 15,625 archs would take {15625 / rate / 60:.1f} min "
      f"at this rate" + (" (extrapolated)" if n < 15625 else ""))
EOF
for f in "$WORK"/space_*.log; do
  if ! grep -q "results in" "$f"; then echo "--- $(basename "$f") did not finish:" >>"$OUT/space.log"; tail -5 "$f" >>"$OUT/space.log"; fi
done
if [ "$N_DONE" -ge 2 ]; then
  start=$SECONDS
  timeout "${FINAL_S:-90}" python run.py device="$DEVICE" logger=csv task.progress=false n_archs=null archs_file="$WORK/finished.txt" \
    metric=ntk bn_mode=per_sample hydra.run.dir="$WORK/space_all" >"$WORK/space_all.log" 2>&1
  echo "correlate over the $N_DONE finished archs (from the cache): rc=$? in $((SECONDS - start)) s" >>"$OUT/space.log"
  grep -E "kendall_tau|cached|scored" "$WORK/space_all.log" | head -20 >>"$OUT/space.log"
  cp "$WORK/space_all/summary.json" "$OUT/space_summary.json" 2>/dev/null
  cp "$WORK/space_all/scores.csv" "$OUT/space_scores.csv" 2>/dev/null
  ls "$WORK"/space_all/*.png >/dev/null 2>&1 && cp "$(ls "$WORK"/space_all/*.png | head -1)" "$OUT/space_scatter.png"
fi
fi
wait  # the tests
echo "all done at ${SECONDS}s" >>"$OUT/smoke.log"
