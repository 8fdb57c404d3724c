"""``python -m ntkexp.scoring export-table OUT.npz RUN_DIR [RUN_DIR ...]``: a score table (``score_table=OUT.npz``)
from runs made under one set of conventions (see :mod:`ntkexp.scoring.table`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ntkexp.scoring.table import ScoreTable, export


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "export-table":
        print("usage: python -m ntkexp.scoring export-table OUT.npz RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    try:
        written = export(Path(argv[1]), [Path(p) for p in argv[2:]])
    except ValueError as err:
        print(f"ntkexp: error: {err}", file=sys.stderr)
        return 2
    table = ScoreTable.load(written)
    print(f"wrote {written}: {len(table.frame)} archs, metrics {', '.join(table.metrics)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
