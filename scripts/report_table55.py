#!/usr/bin/env python
"""Regenerate docs/RESULTS.md's GradSign Table 5.5 block from task=simulated_search run folders (never typed).

    python scripts/report_table55.py RUN_DIR [RUN_DIR ...]              # each method from the folder with most runs
    python scripts/report_table55.py RUN_DIR --print                     # the block on stdout only
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from ntkexp.report import table55
    from ntkexp.report.generated import write_block

    p = argparse.ArgumentParser(prog="report_table55.py", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", type=Path, nargs="+", help="task=simulated_search run folders (runs.csv, summary.json)")
    p.add_argument("--results", type=Path, default=ROOT / "docs" / "RESULTS.md")
    p.add_argument("--print", action="store_true", help="print the block instead of writing it")
    args = p.parse_args(argv)
    try:
        said = write_block(args.results, table55.BLOCK, table55.section(args.runs), args.print)
        if said:
            print(said)
        return 0
    except (ValueError, OSError) as err:
        print(f"report_table55: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
