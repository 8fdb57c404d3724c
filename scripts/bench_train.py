"""Seconds per training epoch of one NB201 arch, with the plain DataLoader path and the device-resident tensor path,
in one run, and their ratio (issue: one CIFAR-10 epoch in <= 4 s on an H100 at batch 256).

    python scripts/bench_train.py --data-root ../shared/data                 # cifar10_partial npz (4,660 images)
    python scripts/bench_train.py --cifar-root /data  --epochs 2             # the full CIFAR-10 pickles

Without CIFAR-10 on disk it uses random 32x32 images of the same size (say so when quoting the figure). The
reported figure is the median epoch time after a warm-up epoch; the images per second are printed too, so a
figure from a partial data set can be scaled to the 50,000-image epoch.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch

from ntkexp.data import ArrayDataModule, DataConfig
from ntkexp.spaces import NASBench201
from ntkexp.train import TrainConfig, fit

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._start)


def data_config(args: argparse.Namespace, loader: str) -> DataConfig:
    base = dict(num_classes=10, in_channels=3, resolution=32, mean=[0.4914, 0.4822, 0.4465],
                std=[0.2470, 0.2435, 0.2616], benchmark_key="cifar10", batch_size=args.batch, loader=loader)
    if args.cifar_root:
        return DataConfig(name="cifar10", kind="cifar10", root=args.cifar_root, **base)
    npz = Path(args.data_root) / "cifar10_partial" / "cifar10_partial.npz" if args.data_root else None
    if npz is None or not npz.exists():
        npz = Path("/tmp/ntkexp_bench_random.npz")
        rng = np.random.default_rng(0)
        np.savez(npz, train_x=rng.integers(0, 256, (args.random_images, 32, 32, 3), dtype=np.uint8),
                 train_y=rng.integers(0, 10, args.random_images), test_x=np.zeros((2, 32, 32, 3), np.uint8),
                 test_y=np.zeros(2, np.int64))
    return DataConfig(name="cifar10_npz", kind="npz", path=str(npz), **base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default=ARCH)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3, help="including one warm-up epoch")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--cifar-root", default=None)
    parser.add_argument("--random-images", type=int, default=5000)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    args = parser.parse_args()
    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = {}
    for loader in ("dataloader", "tensor"):
        cfg = data_config(args, loader)
        # the plain path keeps the data on the host (copied every step); the tensor path keeps it on the device
        dm = ArrayDataModule(cfg, seed=0, device=device if loader == "tensor" else "cpu")
        dm.setup()
        torch.manual_seed(0)
        model = NASBench201(args.C, args.N).build(args.arch, num_classes=10).to(device)
        timer = EpochTimer()
        fit(model, dm, TrainConfig(schedule_epochs=200), max_epochs=args.epochs, callbacks=[timer])
        n = len(dm.train_tensors[1])
        per_epoch = statistics.median(timer.times[1:] or timer.times)
        results[loader] = per_epoch
        print(f"{loader:<10} {per_epoch:8.3f} s/epoch  {n / per_epoch:9.0f} img/s  ({n} images, batch {args.batch}, "
              f"{device}, precision {TrainConfig().resolved_precision(device.type)})", flush=True)
    print(f"speed-up of the device-resident path: {results['dataloader'] / results['tensor']:.2f}x")
    print(f"projected 50,000-image epoch (tensor path): {50000 / (len(dm.train_tensors[1]) / results['tensor']):.1f} s")


if __name__ == "__main__":
    main()
