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
