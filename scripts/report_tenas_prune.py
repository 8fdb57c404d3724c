#!/usr/bin/env python
"""Regenerate docs/RESULTS.md's TE-NAS pruning block from task=prune_search sweep folders (never typed).

    python scripts/report_tenas_prune.py docs/results/tenas_prune/*/    # one table per sweep (*/summary.json)
    python scripts/report_tenas_prune.py SWEEP_DIR --print               # the block on stdout only
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ntkexp.report import tenas_prune  # noqa: E402
from ntkexp.report.generated import block_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(block_main(None, "report_tenas_prune.py", __doc__, tenas_prune.BLOCK,
                        tenas_prune.section, "task=prune_search sweep folders (*/summary.json)",
                        ROOT / "docs" / "RESULTS.md"))
