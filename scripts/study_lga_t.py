#!/usr/bin/env python
"""The powered LGA_t study (docs/RESULTS.md "LGA_t on the benchmarked network"): NB201 C16N5 trained with NB201's
protocol on cifar10_partial, every NTK metric at t = 0, 19, 196 steps on 100+ archs in per-sample BN and the exact
train-mode NTK on the first 40 (same kept networks), split over parallel runs sized to the machine, resumable.

    python scripts/study_lga_t.py run outputs/lga_t_study                      # run (or resume), then gather
    python scripts/study_lga_t.py run outputs/lga_t_study --archs 200 --ladder-archs 200 --ladder-steps 588,980,1960
    python scripts/study_lga_t.py table outputs/lga_t_study --to docs/results/lga_t/study.csv
    python scripts/report_lga_t.py docs/results/lga_t/study.csv                # the RESULTS section, regenerated

Measured cost per arch (t = 0, 19, 196 steps, three per-sample NTKs; one job alone): on 2 CPU cores (bf16 autocast)
see docs/results/lga_t/study.json "cost"; on an NVIDIA H200, 8 processes trained 101 archs in 220 s (about 17 s per
arch per process). The exact train-mode NTK adds 30-60 s per kernel on the CPU, 0.2 s on the H200.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ntkexp.studies.lga_t import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
