"""Where ntkexp keeps what outlives a run: data sets and benchmark files, and the score cache.

``$NTKEXP_DATA_ROOT`` / ``$NTKEXP_CACHE_DIR`` when set, else the platform's per-user cache folder (``~/.cache/ntkexp``
on Linux, ``~/Library/Caches/ntkexp`` on macOS), so a run started from any folder finds the same data and scores;
run folders follow the current folder, as Hydra's do.
"""

from __future__ import annotations

import os
from pathlib import Path

#: what each place is called under the user cache folder, and the variable that moves it
PLACES = {"data": ("data", "NTKEXP_DATA_ROOT"), "cache": ("scores", "NTKEXP_CACHE_DIR")}


def user_place(kind: str) -> str:
    """The folder for ``kind`` (``data`` or ``cache``): its environment variable, else the user cache folder's."""
    if kind not in PLACES:
        raise ValueError(f"unknown place {kind!r}; known: {', '.join(PLACES)}")
    sub, variable = PLACES[kind]
    if os.environ.get(variable):
        return os.environ[variable]
    from platformdirs import user_cache_dir

    return str(Path(user_cache_dir("ntkexp", appauthor=False)) / sub)


def source_commit(dirty: bool = True) -> str:
    """The git commit of the checkout this package runs from (``+dirty`` when ``dirty`` and tracked files differ from
    it), so a summary says which code computed it; ``unknown`` for an installed wheel or without git."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return "unknown"

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True,
                              timeout=20).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        if dirty and git("status", "--porcelain", "--untracked-files=no"):
            commit += "+dirty"
        return commit
    except (OSError, subprocess.SubprocessError):
        return "unknown"
