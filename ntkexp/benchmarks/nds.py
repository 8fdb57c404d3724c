"""NDS ground truth (Radosavovic et al., "On Network Design Spaces for Visual Recognition") and the DARTS-space CSV of
SWAP-NAS, converted once to compact tables.

* ``nds_json``: the published NDS files (``DARTS.json``, ``ENAS.json``, ``NASNet.json``, ``Amoeba.json``,
  ``PNAS.json``, ``*_fix-w-d.json``, ...): a list of records, each with ``net`` = {``genotype``: {normal,
  normal_concat, reduce, reduce_concat}, ``width``, ``depth``, ...} and ``test_ep_top1`` (top-1 error per epoch);
  ``cifar10`` = 100 - the last epoch's error; ``params`` when the record has it.
* ``darts_csv``: header-less rows ``Genotype(...)``, CIFAR-10 validation accuracy (%) -> ``cifar10_valid``; the
  SWAP authors' own training protocol, not NDS's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ntkexp.benchmarks.groundtruth import merge_duplicates, register_converter, write_table
from ntkexp.spaces.nds import format_genotype, parse_genotype


@register_converter("nds_json")
def convert_nds_json(source: Path, out: Path) -> pd.DataFrame:
    records = json.loads(Path(source).read_text())
    if isinstance(records, dict):  # some copies key the records by id
        records = list(records.values())
    if not records:
        raise ValueError(f"the NDS file {source} holds no records (an empty list); replace it with the published "
                         "file")
    rows = []
    for rec in records:
        net = rec["net"]
        geno = dict(net["genotype"])
        geno.update({"width": int(net["width"]), "depth": int(net["depth"])})
        row = {"arch_str": format_genotype(parse_genotype(json.dumps(geno))),
               "cifar10": 100.0 - float(rec["test_ep_top1"][-1])}
        if "params" in rec:
            row["params"] = rec["params"]
        rows.append(row)
    frame = merge_duplicates(pd.DataFrame(rows), source)
    write_table(frame, out)
    return frame


@register_converter("darts_csv")
def convert_darts_csv(source: Path, out: Path) -> pd.DataFrame:
    table = pd.read_csv(source, header=None, names=["genotype", "accuracy"])
    frame = pd.DataFrame({"arch_str": [format_genotype(parse_genotype(g)) for g in table["genotype"]],
                          "cifar10_valid": table["accuracy"].astype(float)})
    frame = merge_duplicates(frame, source)
    write_table(frame, out)
    return frame
