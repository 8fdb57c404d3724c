"""Regenerate ``ntkexp/resources/nb201_official_order.npy`` from the official NATS-Bench meta file.

The official NAS-Bench-201 / NATS-Bench-TSS arch index is a fixed permutation of the 5^6 cells, defined only by the
benchmark's ``meta_archs`` list. ntkexp ships that permutation (uint16, 31 KB) so that the embedded default and every
table use indices identical to the benchmark's. Usage::

    python scripts/make_nb201_order.py /path/to/NATS-tss-v1_0-3ffb9-simple/meta.pickle.pbz2
"""

from __future__ import annotations

import argparse
import bz2
import pickle
from pathlib import Path

import numpy as np

from ntkexp.spaces.nasbench201 import code_of_string


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("meta", type=Path, help="meta.pickle.pbz2 of the NATS-Bench TSS (simple) directory")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "ntkexp/resources/nb201_official_order.npy")
    args = parser.parse_args()
    with bz2.open(args.meta, "rb") as fh:
        meta_archs = pickle.load(fh)["meta_archs"]
    codes = np.array([code_of_string(s) for s in meta_archs], dtype=np.uint16)
    if len(codes) != 5**6 or len(set(codes.tolist())) != 5**6:
        raise SystemExit(f"{args.meta}: expected a permutation of 15625 archs, got {len(codes)} entries")
    np.save(args.out, codes)
    print(f"wrote {args.out} ({len(codes)} archs)")


if __name__ == "__main__":
    main()
