"""Training speed of ntkexp's path against a plain PyTorch loop, in one run, for two NAS-Bench-201 archs.

For the heaviest NB201 arch (every edge a 3x3 conv) and a median one (median recorded CIFAR-10 epoch time in the
benchmark), at batch 256 on the same batches (the step-indexed stream of ``ArrayDataModule``), it times:

* ``plain fp32``: the loop a new user writes: float32, NCHW, SGD step by step;
* ``plain fast``: the same loop with ntkexp's resolved precision (bf16 autocast where the device has native
  bfloat16) and channels_last;
* ``ntkexp``: :func:`ntkexp.train.fit` (Lightning) with ``trainer.precision=auto``, ``channels_last=null``.

and prints images/s, the speed-up of ntkexp's path over the plain float32 loop (goal on a CPU with bfloat16: >= 1.8x),
Lightning's overhead against the plain loop at the same precision (goal: < 10 %), and the fraction of this machine's
measured matmul peak (same dtype, 2048^3 matmuls) that training reaches, from the FLOPs of one training step counted
by ``torch.utils.flop_counter``. Optionally (``--compile``) it also times ``torch.compile`` on the fast loop,
with the compile time reported apart.

    python scripts/bench_train.py --data-root ../shared/data      # cifar10_partial images (else random images)
    python scripts/bench_train.py --steps 6 --warmup 2             # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ntkexp.benchmarks.groundtruth import read_table
from ntkexp.data import ArrayDataModule, DataConfig
from ntkexp.io import resolve_path
from ntkexp.spaces import NASBench201
from ntkexp.train import TrainConfig, fit

HEAVIEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def median_arch() -> str:
    """The NB201 arch whose recorded CIFAR-10 epoch time is the median of the benchmark's 15,625."""
    table = read_table(resolve_path("pkg://nb201.npz"))
    seconds = table["cifar10_valid_epoch_seconds"]
    return str(table.loc[(seconds - seconds.median()).abs().idxmin(), "arch_str"])


def datamodule(args: argparse.Namespace, steps: int, device: torch.device) -> ArrayDataModule:
    base = dict(num_classes=10, in_channels=3, resolution=32, benchmark_key="cifar10", batch_size=args.batch)
    npz = Path(args.data_root) / "cifar10_partial" / "cifar10_partial.npz" if args.data_root else None
    if npz is None or not npz.exists():
        npz = Path("/tmp/ntkexp_bench_random.npz")
        rng = np.random.default_rng(0)
        np.savez(npz, train_x=rng.integers(0, 256, (4660, 32, 32, 3), dtype=np.uint8),
                 train_y=rng.integers(0, 10, 4660), test_x=np.zeros((2, 32, 32, 3), np.uint8),
                 test_y=np.zeros(2, np.int64))
        print(f"(random images: no cifar10_partial under {args.data_root})")
    cfg = DataConfig(name="cifar10_npz", kind="npz", path=str(npz), **base)  # type: ignore[arg-type]
    dm = ArrayDataModule(cfg, seed=0, device=device, epoch_steps=steps)
    dm.setup()
    return dm


def batches(dm: ArrayDataModule) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    return iter(dm.train_dataloader())


def build(arch: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return NASBench201(16, 5).build(arch, num_classes=10).to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_loop(model: torch.nn.Module, dm: ArrayDataModule, warmup: int, device: torch.device, bf16: bool,
               channels_last: bool, compile_model: bool = False, compile_mode: str = "default") -> tuple[float, float]:
    """Images/s of a hand-written SGD loop over the same batches (after ``warmup`` steps), and the seconds of the
    warm-up (which holds the compile time with ``compile_model``)."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    step_fn = torch.compile(model, mode=compile_mode) if compile_model else model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    start = time.perf_counter()
    n_images, t0 = 0, None
    for i, (x, y) in enumerate(batches(dm)):
        if i == warmup:
            sync(device)
            t0 = time.perf_counter()
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(step_fn(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if t0 is not None:
            n_images += len(y)
    sync(device)
    assert t0 is not None, "more steps than warm-up steps are needed"
    return n_images / (time.perf_counter() - t0), t0 - start


class StepClock(L.Callback):
    """Wall time from the end of step ``warmup`` to the end of the last step: every step's whole cost, Lightning's
    between-step work included."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.t0: float | None = None
        self.images = 0
        self.t1 = 0.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        sync(self.device)
        if trainer.global_step == self.warmup:
            self.t0 = time.perf_counter()
        elif self.t0 is not None:
            self.images += len(batch[1])
            self.t1 = time.perf_counter()


def ntkexp_path(model: torch.nn.Module, dm: ArrayDataModule, warmup: int, device: torch.device,
                cfg: TrainConfig) -> float:
    clock = StepClock(warmup, device)
    fit(model, dm, cfg, max_epochs=1, callbacks=[clock])
    assert clock.t0 is not None
    return clock.images / (clock.t1 - clock.t0)


def step_flops(arch: str, device: torch.device, batch: int, bf16: bool) -> int:
    """FLOPs of one training step (forward + backward) at ``batch``, counted by torch's FLOP counter."""
    model = build(arch, device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
    return int(counter.get_total_flops())


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, seconds: float = 1.5) -> float:
    """FLOP/s of repeated n x n matmuls in ``dtype`` on ``device`` (the best of a few timed rounds)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        sync(device)
        t = time.perf_counter()
        for _ in range(3):
            a @ b
        sync(device)
        best = max(best, 3 * 2 * n**3 / (time.perf_counter() - t))
    return best


def quiet() -> contextlib.AbstractContextManager[Any]:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    return contextlib.nullcontext()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile on the fast plain loop")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode (default | reduce-overhead: CUDA graphs | max-autotune)")
    parser.add_argument("--archs", default="heaviest,median", help="which of heaviest,median to time")
    args = parser.parse_args()
    quiet()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = TrainConfig(schedule="constant")
    precision = cfg.resolved_precision(device.type)
    bf16 = precision.startswith("bf16")
    channels_last = cfg.use_channels_last(device.type)
    dm = datamodule(args, args.warmup + args.steps, device)
    peak = matmul_peak(device, torch.bfloat16 if bf16 else torch.float32)
    peak32 = peak if not bf16 else matmul_peak(device, torch.float32)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"device {device} ({where}, torch {torch.__version__}), ntkexp precision {precision}, channels_last "
          f"{channels_last}; matmul peak {peak / 1e9:.0f} GFLOP/s ({'bf16' if bf16 else 'fp32'}), "
          f"{peak32 / 1e9:.0f} GFLOP/s fp32; batch {args.batch}, {args.steps} timed steps after {args.warmup}")
    chosen = {"heaviest": HEAVIEST, "median": None}
    for label in args.archs.split(","):
        arch = chosen[label] or median_arch()
        plain32, _ = plain_loop(build(arch, device), dm, args.warmup, device, bf16=False, channels_last=False)
        fast, _ = plain_loop(build(arch, device), dm, args.warmup, device, bf16=bf16, channels_last=channels_last)
        ours = ntkexp_path(build(arch, device), dm, args.warmup, device, cfg)
        flops = step_flops(arch, device, args.batch, bf16)
        reached = flops / args.batch * ours
        print(f"\n{label} arch {arch}")
        print(f"  plain fp32 loop      {plain32:8.1f} img/s")
        print(f"  plain loop, {precision:<9}{fast:8.1f} img/s (channels_last {channels_last})")
        print(f"  ntkexp (Lightning)   {ours:8.1f} img/s: a 50,000-image epoch in {50000 / ours:.2f} s")
        print(f"  speed-up of ntkexp over the plain fp32 loop: {ours / plain32:.2f}x (goal >= 1.8x on a bf16 CPU)")
        print(f"  Lightning's overhead at the same precision: {100 * (fast / ours - 1):+.1f} % (goal < 10 %)")
        print(f"  {flops / args.batch / 1e9:.2f} GFLOP per image and step: {reached / 1e9:.0f} GFLOP/s, "
              f"{100 * reached / peak:.0f} % of the measured matmul peak")
        if args.compile:
            compiled, warm = plain_loop(build(arch, device), dm, args.warmup, device, bf16=bf16,
                                        channels_last=channels_last, compile_model=True,
                                        compile_mode=args.compile_mode)
            print(f"  torch.compile ({args.compile_mode}), fast loop: {compiled:8.1f} img/s ({compiled / fast:.2f}x the eager fast loop; "
                  f"compile + warm-up {warm:.0f} s, paid again by every arch)")


if __name__ == "__main__":
    main()
