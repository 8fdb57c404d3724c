#!/usr/bin/env bash
# The CPU study of docs/RESULTS.md "LGA_t on the benchmarked network": NB201 C16N5 trained with NB201's protocol on
# the 4,660 real CIFAR-10 images of cifar10_partial (a reduced stand-in: see experiment=lga_after_training_cpu).
#   1. 100 archs (seed 0), t = 0 and 19 optimiser steps, per-sample BN;
#   2. 12 of them (every 5th of the 100, first 12), the exact train-mode NTK at t = 0 and 19 (same trained networks);
#   3. 20 of them (every 5th), t = 0, 19 and 196 steps (each continues from its kept 19-step state).
# Every stage reads and writes one score cache, so an interrupted study resumes where it stopped (run it again).
#   bash scripts/study_lga_after_training_cpu.sh [DATA_ROOT] [OUT_DIR]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-outputs/lga_after_training_cpu}
mkdir -p "$OUT"
COMMON=(experiment=lga_after_training_cpu "paths.data_root=$DATA" "paths.cache_dir=$OUT/cache" threads=2 logger=csv)
stage() {  # name, overrides...
  local name=$1; shift
  python run.py "${COMMON[@]}" "$@" "hydra.sweep.dir=$OUT/$name" 2>&1 | tee "$OUT/$name.log"
}
stage t19 n_archs=100
python - "$OUT" <<'PY'
import sys, pandas as pd
out = sys.argv[1]
archs = pd.read_csv(f"{out}/t19/0/evolution.csv").query("epoch == 0")["arch"].tolist()[::5]
open(f"{out}/archs20.txt", "w").write("\n".join(archs) + "\n")
open(f"{out}/archs12.txt", "w").write("\n".join(archs[:12]) + "\n")
PY
stage exact_train_bn "archs_file=$OUT/archs12.txt" bn_mode=train
stage t196 "archs_file=$OUT/archs20.txt" "task.track_epochs=[0,19,196]"
