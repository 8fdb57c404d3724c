#!/usr/bin/env python
"""``python scripts/report.py SWEEP_DIR`` in a checkout is the installed ``ntkexp-report SWEEP_DIR``."""
from ntkexp.report.__main__ import main

if __name__ == "__main__":
    main()
