"""Build the data that ships inside the package (``ntkexp/resources/``) from the benchmark files it comes from.

* ``nb201.npz``: NAS-Bench-201 / NATS-Bench-TSS records of all 15,625 archs (one row per official index):
  the 200-epoch test accuracies (seed means), the 200-epoch CIFAR-10 validation accuracy, the 12-epoch validation
  accuracies and the training seconds per epoch the benchmark recorded (for simulated searches), and the size.
* ``cifar10_probe.npz``: 1,000 real CIFAR-10 training images (the first 100 of each class, in the file's order)
  and 250 test images (the first 25 of each class), uint8 NCHW, with their labels.

Every value is checked against its source (and the sources against each other) before anything is written; see
``ntkexp/resources/PROVENANCE.md``. Usage::

    python scripts/make_resources.py --shared ../shared/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ntkexp.benchmarks.groundtruth import write_table
from ntkexp.spaces.nasbench201 import NUM_ARCHS, string_of_index

OUT = Path(__file__).resolve().parents[1] / "ntkexp" / "resources"
EPOCHS_200 = 200.0


def build_nb201(shared: Path) -> pd.DataFrame:
    final = pd.read_csv(shared / "nb201_nats_tss_200ep" / "nats_bench.csv")
    per_seed = pd.read_csv(shared / "nb201_nats_tss_per_seed" / "nb201_per_seed_valid_oritest_time.csv")
    mini = pd.read_pickle(shared / "nb201_mini_12ep" / "mini-bench-arch-cell-accs.pd")
    official = [string_of_index(i) for i in range(NUM_ARCHS)]
    for name, archs in (("nats_bench.csv", final["ArchitectureString"]), ("per-seed table", per_seed["arch_str"]),
                        ("mini 12-epoch table", mini["cellstr"])):
        if len(archs) != NUM_ARCHS or list(archs) != official:
            raise SystemExit(f"{name}: rows are not the 15,625 archs in official index order")
    if list(per_seed["arch_index"]) != list(range(NUM_ARCHS)) or list(mini["arch"]) != list(range(NUM_ARCHS)):
        raise SystemExit("an index column disagrees with the row order")
    frame = pd.DataFrame({
        "arch_index": np.arange(NUM_ARCHS, dtype=np.int32),
        "arch_str": official,
        # final (200-epoch) test accuracy, mean over seeds: cifar10 on ori-test, cifar100 / ImageNet16-120 on x-test
        "cifar10": final["CIFAR10TestAccuracy200Epochs"].to_numpy(np.float64),
        "cifar100": final["CIFAR100TestAccuracy200Epochs"].to_numpy(np.float64),
        "ImageNet16-120": final["ImageNetTestAccuracy200Epochs"].to_numpy(np.float64),
        # final validation accuracy: cifar10-valid (trained on 25k images) on x-valid, mean over seeds
        "cifar10_valid": per_seed["cifar10valid_xvalid_acc_mean"].to_numpy(np.float64),
        # 12-epoch schedule (hp=12), validation accuracy on x-valid
        "cifar10_valid_12ep": mini["cifar10-val"].to_numpy(np.float64),
        "cifar100_valid_12ep": mini["cifar100-val"].to_numpy(np.float64),
        "ImageNet16-120_valid_12ep": mini["imagenet-val"].to_numpy(np.float64),
        # recorded training time of one epoch (train-all-time of the 200-epoch run / 200), seconds
        "cifar10_valid_epoch_seconds": per_seed["cifar10_train_all_time_s"].to_numpy(np.float64) / EPOCHS_200,
        "cifar100_epoch_seconds": per_seed["cifar100_train_all_time_s"].to_numpy(np.float64) / EPOCHS_200,
        "ImageNet16-120_epoch_seconds": per_seed["imagenet_train_all_time_s"].to_numpy(np.float64) / EPOCHS_200,
        "params_mb": per_seed["cifar10_size_mb"].to_numpy(np.float64),
    })
    # cross-checks against values quoted in the sources' provenance notes
    best = frame.loc[frame["cifar10"].idxmax()]
    assert abs(best["cifar10"] - 94.3733) < 1e-3, best
    assert abs(frame.loc[11, "cifar10"] - 91.5833) < 1e-3 and abs(frame.loc[11, "cifar10_valid"] - 87.94) < 1e-3
    assert abs(frame["cifar10_valid"].max() - 91.6067) < 1e-3
    assert frame["cifar10_valid_12ep"].max() < 90.0  # a 12-epoch number, not a final one
    assert frame.notna().all().all()
    return frame


def build_probe(shared: Path, per_class_train: int = 100, per_class_test: int = 25) -> dict[str, np.ndarray]:
    arrays = np.load(shared / "cifar10_partial" / "cifar10_partial.npz")

    def first_per_class(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:k] for c in range(10)]))
        if len(idx) != 10 * k:
            raise SystemExit(f"fewer than {k} images of some class")
        return np.ascontiguousarray(x[idx].transpose(0, 3, 1, 2)), y[idx].astype(np.int64), idx

    train_x, train_y, train_idx = first_per_class(arrays["train_x"], arrays["train_y"], per_class_train)
    test_x, test_y, test_idx = first_per_class(arrays["test_x"], arrays["test_y"], per_class_test)
    assert train_x.dtype == np.uint8 and train_x.shape == (10 * per_class_train, 3, 32, 32)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y,
            "train_src_batch": arrays["train_src_batch"][train_idx].astype(np.int8),
            "train_position": (train_idx % 932).astype(np.int16), "test_position": test_idx.astype(np.int16)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    table = build_nb201(args.shared)
    write_table(table, args.out / "nb201.npz")  # one array per column: read with numpy alone
    np.savez_compressed(args.out / "cifar10_probe.npz", **build_probe(args.shared))
    for name in ("nb201.npz", "cifar10_probe.npz"):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
