"""Time the fast NTK engine against the per-sample backward-loop reference, in one run, and print the ratios.

    python scripts/bench_ntk.py                        # full NB201 (C=16, N=5), batch 64, every BN mode
    python scripts/bench_ntk.py --batch 16 --repeats 1 # quicker

Each figure is the median wall time over ``--repeats`` calls after one warm-up call; the kernels of the two
implementations are compared too (relative Frobenius difference), so a fast-but-wrong engine cannot pass unseen.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ntkexp.ntk import NTKConfig, empirical_ntk, ntk_reference
from ntkexp.spaces import NASBench201

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def timed(fn, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default=ARCH)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--modes", default="train,eval,per_sample")
    parser.add_argument("--chunk", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    net = NASBench201(C=args.C, N=args.N).build(args.arch, num_classes=10).to(args.device)
    x = torch.randn(args.batch, 3, 32, 32, device=args.device)
    where = torch.cuda.get_device_name(args.device) if str(args.device).startswith("cuda") else "CPU"
    print(f"device={args.device} ({where}) float32 threads={torch.get_num_threads()} torch={torch.__version__} "
          f"NB201 C={args.C} N={args.N} batch={args.batch} params={sum(p.numel() for p in net.parameters())}")
    print(f"{'bn_mode':<10} {'fast s':>9} {'loop s':>9} {'speed-up':>9} {'rel diff':>10}")
    for mode in args.modes.split(","):
        cfg = NTKConfig(bn_mode=mode, chunk_size=args.chunk)
        t_fast, k_fast = timed(lambda: empirical_ntk(net, x, cfg).kernel, args.repeats)
        print(f"{mode:<10} {t_fast:9.3f}", end=" ", flush=True)
        t_loop, k_loop = timed(lambda: ntk_reference(net, x, cfg), args.repeats)
        rel = float((k_fast - k_loop.to(k_fast.device)).norm() / k_loop.norm())
        print(f"{t_loop:9.3f} {t_loop / t_fast:8.1f}x {rel:10.2e}", flush=True)


if __name__ == "__main__":
    main()
