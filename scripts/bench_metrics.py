"""Time ``metric=all`` computed in one pass (shared NTK, joint kernels, activations and loss gradients) against the
sum of the metrics computed one by one (a fresh context each), for one NB201 arch, in one run.

    python scripts/bench_metrics.py                          # full NB201 (C=16, N=5), batch 64, train-mode BN
    python scripts/bench_metrics.py --C 8 --N 1 --batch 32   # a quick CPU figure
"""

from __future__ import annotations

import argparse
import time

import torch

from ntkexp.metrics import METRICS, MetricContext, compute_metrics
from ntkexp.ntk import NTKConfig
from ntkexp.spaces import NASBench201

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--bn-mode", default="train")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    net = NASBench201(args.C, args.N).build(ARCH, num_classes=10).to(args.device)
    x, xt = (torch.randn(args.batch, 3, 32, 32, device=args.device) for _ in range(2))
    y = torch.arange(args.batch, device=args.device) % 10
    cfg = NTKConfig(bn_mode=args.bn_mode)
    names = METRICS.names()

    def context() -> MetricContext:
        return MetricContext(net, x, y, 10, cfg, x_test=xt, y_test=y.clone())

    compute_metrics(["fnorm"], context())  # warm-up
    start = time.perf_counter()
    together = compute_metrics(names, context())
    t_all = time.perf_counter() - start
    singles = {}
    per_metric = {}
    for name in names:
        start = time.perf_counter()
        singles.update(compute_metrics([name], context()))
        per_metric[name] = time.perf_counter() - start
    t_sum = sum(per_metric.values())
    print(f"device={args.device} NB201 C={args.C} N={args.N} batch={args.batch} bn_mode={args.bn_mode} "
          f"metrics={len(names)}")
    for name, seconds in sorted(per_metric.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<15} {seconds:8.3f} s alone")
    print(f"metric=all in one pass: {t_all:.3f} s; one by one: {t_sum:.3f} s; ratio {t_sum / t_all:.2f}x")
    same = all(together[n] == singles[n] or (together[n] != together[n] and singles[n] != singles[n]) for n in names)
    print(f"identical values either way: {same}")


if __name__ == "__main__":
    main()
