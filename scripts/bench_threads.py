"""Threads and OpenMP's wait policy on a shared machine: time the same small run under several settings, in one
run, and print each one's time and its ratio to the default.

    python scripts/bench_threads.py                 # this machine as it is (idle, or carrying other work)
    python scripts/bench_threads.py --load 4        # plus 4 busy processes (a loaded cluster node, a sweep)

Each setting runs ``ntkexp n_archs=<n>`` (NTK metrics at init of the full NB201 net on the shipped probe, the score
cache off) ``--repeats`` times; the figure is the median wall time, start-up included. The default is what a user
gets: ``threads=null`` (the usable cores / the jobs a launcher runs at once) with ``OMP_WAIT_POLICY=PASSIVE``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def busy() -> None:  # a process that wants a whole core
    while True:
        pass


def timed(settings: list[str], policy: str | None, n_archs: int, repeats: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "run.py"), f"n_archs={n_archs}", "use_cache=false",
                            "logger=csv", "task.progress=false", "task.plot=false", f"hydra.run.dir={out}", *settings],
                           env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-archs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=0, help="busy processes running beside the measurements")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = [multiprocessing.Process(target=busy, daemon=True) for _ in range(args.load)]
    for w in workers:
        w.start()
    try:
        cases = [("default: threads=null, OMP_WAIT_POLICY=PASSIVE (as ntkexp sets it)", [], None),
                 (f"threads={cores}, OMP_WAIT_POLICY=ACTIVE (OpenMP's threads spin while they wait)",
                  [f"threads={cores}"], "ACTIVE"),
                 (f"threads={cores}, OMP_WAIT_POLICY=PASSIVE", [f"threads={cores}"], "PASSIVE"),
                 ("threads=1, OMP_WAIT_POLICY=PASSIVE", ["threads=1"], "PASSIVE")]
        results = [(label, timed(settings, policy, args.n_archs, args.repeats)) for label, settings, policy in cases]
    finally:
        for w in workers:
            w.terminate()
    base = results[0][1]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.n_archs} archs, {cores} usable cores, {args.load} busy processes added, load average {load:.1f}; "
          f"median of {args.repeats}")
    for label, seconds in results:
        print(f"  {seconds:6.1f} s  {seconds / base:5.2f}x the default  {label}")


if __name__ == "__main__":
    main()
