#!/usr/bin/env python
"""Regenerate docs/RESULTS.md's GradSign Table 5.5 block from task=simulated_search run folders (never typed).

    python scripts/report_table55.py RUN_DIR [RUN_DIR ...]              # each method from the folder with most runs
    python scripts/report_table55.py RUN_DIR --print                     # the block on stdout only
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ntkexp.report import table55  # noqa: E402
from ntkexp.report.generated import block_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(block_main(None, "report_table55.py", __doc__, table55.BLOCK,
                        table55.section, "task=simulated_search run folders (runs.csv, summary.json)",
                        ROOT / "docs" / "RESULTS.md"))
