"""Generated blocks of docs/RESULTS.md: text between a pair of markers that a report step rewrites from a run's table,
so no number or direction in them is typed by hand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


def markers(name: str) -> tuple[str, str]:
    return (f"<!-- BEGIN generated: {name} (edit the generator, not this text) -->",
            f"<!-- END generated: {name} -->")


def replace_block(document: str, name: str, text: str) -> str:
    """``document`` with the block ``name`` replaced by ``text`` (which starts and ends with its markers); refused,
    naming the markers, when the document has none."""
    begin, end = markers(name)
    start, stop = document.find(begin), document.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"the results file has no generated block {name!r} (the markers {begin!r} ... {end!r}); "
                         f"add them where the section goes")
    return document[:start] + text.rstrip("\n") + document[stop + len(end):]


def write_block(results: Path, name: str, text: str, print_only: bool = False) -> str:
    """Print the block (``print_only``) or write it into ``results``; the line to tell the user."""
    if print_only:
        print(text, end="")
        return ""
    results.write_text(replace_block(results.read_text(), name, text))
    return f"wrote the {name} block of {results}"


def block_main(argv: list[str] | None, prog: str, doc: str, block: str, build: Callable[[list[Path]], str],
               folders: str, results: Path) -> int:
    """The command line of a report script that builds one block from run folders: ``FOLDER [FOLDER ...]``,
    ``--results`` (default ``results``) and ``--print``; a bad folder is one line and status 2."""
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    p.add_argument("runs", type=Path, nargs="+", help=folders)
    p.add_argument("--results", type=Path, default=results)
    p.add_argument("--print", action="store_true", help="print the block instead of writing it")
    args = p.parse_args(argv)
    try:
        said = write_block(args.results, block, build(args.runs), args.print)
        if said:
            print(said)
        return 0
    except (ValueError, OSError, KeyError) as err:
        print(f"{prog.removesuffix('.py')}: error: {err}", file=sys.stderr)
        return 2
