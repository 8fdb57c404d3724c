#!/usr/bin/env python
"""``python run.py ...`` in a checkout is the installed ``ntkexp ...`` command (see README)."""
from ntkexp.cli import main

if __name__ == "__main__":
    main()
