"""``ntkexp-report SWEEP_DIR``: collect a sweep directory into tidy tables (mean, std, n over seeds), PNG figures and
a Markdown report (a sweep writes the same at its end by itself).

    ntkexp-report outputs/correlate/multirun/<date>/<time> [--out DIR] [--title TEXT] [--wandb]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ntkexp.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(prog="ntkexp-report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--title", default=None)
    parser.add_argument("--wandb", action="store_true", help="also log the tables and figures to W&B (offline unless "
                                                             "WANDB_MODE=online)")
    args = parser.parse_args()
    try:
        report = write_report(args.sweep_dir, args.out, args.title)
    except (ValueError, OSError) as err:
        raise SystemExit(f"ntkexp-report: error: {err}") from None
    print(f"wrote {report}")
    if args.wandb:
        import os

        import pandas as pd
        import wandb

        os.environ.setdefault("WANDB_MODE", "offline")
        run = wandb.init(project="ntkexp", job_type="report", dir=str(report.parent), name=args.title)
        for csv in report.parent.glob("*_summary.csv"):
            run.log({csv.stem: wandb.Table(dataframe=pd.read_csv(csv))})
        for png in report.parent.glob("*.png"):
            run.log({png.stem: wandb.Image(str(png))})
        run.finish()


if __name__ == "__main__":
    main()
