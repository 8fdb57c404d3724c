"""``python -m ntkexp.data status``: every data set and benchmark ntkexp knows, whether it is present, where, its
size and how it is got; ``python -m ntkexp.data fetch <name> ...``: download resources now (see
:mod:`ntkexp.downloads`). The data root is ``--data-root``, else ``$NTKEXP_DATA_ROOT``, else the user cache folder's
``ntkexp/data`` (the default of ``paths.data_root``, :mod:`ntkexp.places`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ntkexp.downloads import (
    RESOURCES,
    DownloadError,
    DownloadSettings,
    ensure,
    human_bytes,
    status,
)
from ntkexp.places import user_place


def _default_root() -> str:
    return user_place("data")


def main(argv: list[str] | None = None) -> int:
    description = ("python -m ntkexp.data status: every data set and benchmark ntkexp knows, present or not, where, "
                   "its size and how it is got. python -m ntkexp.data fetch NAME ...: download them now. The data "
                   "root is --data-root, else $NTKEXP_DATA_ROOT, else the user cache folder's ntkexp/data (the default of "
                   "paths.data_root).")
    parser = argparse.ArgumentParser(prog="python -m ntkexp.data", description=description)
    parser.add_argument("--data-root", default=_default_root(), help="where data sets and benchmark files live")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="list every data set and benchmark, present or not")
    fetch = commands.add_parser("fetch", help="download resources now")
    fetch.add_argument("names", nargs="+", help=f"one or more of: {', '.join(RESOURCES)}")
    fetch.add_argument("--mirror", default=None, help="fetch <mirror>/<file name> instead of each file's own URL")
    args = parser.parse_args(argv)

    if args.command == "status":
        print(f"data root: {os.path.abspath(args.data_root)}")
        print(f"score cache: {os.path.abspath(user_place('cache'))} (paths.cache_dir, $NTKEXP_CACHE_DIR)")
        rows = status(args.data_root)
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            state = "present" if r["present"] else "partial" if r["partial"] else "missing"
            size = human_bytes(int(r["bytes"])) if r["bytes"] else "-"
            print(f"{r['name']:<{width}}  {r['kind']:<9}  {state:<7}  {size:>10}  {r['how']:<26}  "
                  f"{r['path']}")
        return 0

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = DownloadSettings(mirror=args.mirror)
    for name in args.names:
        try:
            print(f"{name}: {ensure(name, args.data_root, settings)}")
        except (DownloadError, ValueError, KeyError, OSError) as err:  # an unknown name: UnknownNameError
            print(f"ntkexp: error: {err}", file=sys.stderr)
            return 2
    return 0


def cli() -> None:
    """The console command ``ntkexp-data`` (``python -m ntkexp.data``)."""
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... status | head`: the reader stopped listening, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


if __name__ == "__main__":
    cli()
