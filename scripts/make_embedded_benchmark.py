"""Build the embedded default benchmark: NAS-Bench-201 cells at reduced width, trained on scikit-learn digits.

ntkexp must run with no download. This script makes a small but real benchmark with the framework's own training code:
``--n-archs`` cells drawn uniformly (without replacement, by official NB201 index) are built as TinyNetworks with
C=8, N=1 (1 input channel, 10 classes), trained from a fixed seed with SGD(0.05, momentum 0.9, nesterov,
wd 5e-4) and a cosine schedule for ``--epochs`` epochs on 1,438 of the 1,797 8x8 digits (random crop, padding 1),
and their top-1 accuracy on the 359 held-out digits is recorded. The table (and a JSON with the protocol) is written
to ``ntkexp/resources/nb201_digits.csv``; rows are appended as archs finish, so an interrupted run resumes.

    python scripts/make_embedded_benchmark.py --n-archs 300 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

RESOURCES = Path(__file__).parents[1] / "ntkexp" / "resources"
PROTOCOL = {"C": 8, "N": 1, "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "batch_size": 128,
            "schedule": "cosine", "crop_padding": 1, "flip": False, "dataset": "sklearn digits 8x8, 80/20 split seed 0"}


def train_one(index: int, epochs: int, seed: int) -> dict:
    import torch

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    from ntkexp.data import DataConfig, build_datamodule
    from ntkexp.init import arch_seed
    from ntkexp.spaces.nasbench201 import NASBench201
    from ntkexp.train import TrainConfig, evaluate_accuracy, fit

    space = NASBench201(C=PROTOCOL["C"], N=PROTOCOL["N"])
    arch = space.arch_of(index)
    dm = build_datamodule(DataConfig(crop_padding=PROTOCOL["crop_padding"], flip=PROTOCOL["flip"],
                                     batch_size=PROTOCOL["batch_size"]), seed=seed)
    torch.manual_seed(arch_seed(seed, arch))
    model = space.build(arch, num_classes=10, in_channels=1)
    start = time.perf_counter()
    fit(model, dm, TrainConfig(epochs=epochs, lr=PROTOCOL["lr"], momentum=PROTOCOL["momentum"],
                               weight_decay=PROTOCOL["weight_decay"], nesterov=PROTOCOL["nesterov"], accelerator="cpu"))
    return {"arch_index": index, "arch_str": arch, "digits": round(evaluate_accuracy(model, *dm.test_tensors), 4),
            "params": sum(p.numel() for p in model.parameters()), "train_seconds": round(time.perf_counter() - start, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-archs", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    parser.add_argument("--out", type=Path, default=RESOURCES / "nb201_digits.csv")
    args = parser.parse_args()

    from joblib import Parallel, delayed

    indices = sorted(np.random.default_rng(args.seed).choice(15625, size=args.n_archs, replace=False).tolist())
    done = set(pd.read_csv(args.out)["arch_index"]) if args.out.exists() else set()
    todo = [i for i in indices if i not in done]
    print(f"{len(done)} archs already in {args.out}; training {len(todo)} more")
    header = not args.out.exists()
    with open(args.out, "a") as fh:
        results = Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
            delayed(train_one)(i, args.epochs, args.seed) for i in todo)
        for k, row in enumerate(results, 1):
            pd.DataFrame([row]).to_csv(fh, header=header, index=False)
            header = False
            fh.flush()
            print(f"[{k}/{len(todo)}] {row['arch_str']} {row['digits']:.2f}%", flush=True)
    table = pd.read_csv(args.out).sort_values("arch_index").drop_duplicates("arch_index")
    table.to_csv(args.out, index=False)
    meta = {**PROTOCOL, "epochs": args.epochs, "seed": args.seed, "n_archs": len(table),
            "metric": "top-1 test accuracy (%) on the 359 held-out digits", "script": "scripts/make_embedded_benchmark.py"}
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.out} ({len(table)} archs)")


if __name__ == "__main__":
    main()
