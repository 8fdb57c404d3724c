#!/usr/bin/env python
"""Regenerate docs/RESULTS.md's LGA_t study section from the study's per-arch table (never typed by hand).

    python scripts/report_lga_t.py docs/results/lga_t/study.csv                # writes into docs/RESULTS.md
    python scripts/report_lga_t.py TABLE --results OTHER.md --figures DIR      # another document / figure folder
    python scripts/report_lga_t.py TABLE --print                                # the section on stdout only

The same table gives the same section, byte for byte (every bootstrap is seeded). A sentence stating that a metric
rises or falls with training is printed only where its paired 95 % interval against t = 0 excludes zero.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    import json

    from ntkexp.report import lga_t
    from ntkexp.report.generated import write_block

    p = argparse.ArgumentParser(prog="report_lga_t.py", description=__doc__.split("\n\n")[0])
    p.add_argument("table", type=Path, help="study.csv (with study.json beside it)")
    p.add_argument("--results", type=Path, default=ROOT / "docs" / "RESULTS.md")
    p.add_argument("--figures", type=Path, default=None, help="figure folder (default: figures/ beside --results)")
    p.add_argument("--independent", type=Path, default=None,
                   help="an independent run's figures to quote (default: independent.json beside the table)")
    p.add_argument("--print", action="store_true", help="print the section instead of writing it")
    args = p.parse_args(argv)
    try:
        table, meta = lga_t.load(args.table)
        figures = args.figures or args.results.parent / "figures"
        independent_path = args.independent or args.table.parent / "independent.json"
        independent = json.loads(independent_path.read_text()) if independent_path.exists() else None
        link = os.path.relpath(figures.resolve(), args.results.resolve().parent)
        table_link = os.path.relpath(args.table.resolve(), args.results.resolve().parent)
        try:
            source = str(args.table.resolve().relative_to(ROOT))
        except ValueError:
            source = str(args.table)
        text = lga_t.section(table, meta, figures, link, independent, table_link, source)
        said = write_block(args.results, lga_t.BLOCK, text, args.print)
        if said:
            print(said)
        return 0
    except (ValueError, OSError) as err:
        print(f"report_lga_t: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
