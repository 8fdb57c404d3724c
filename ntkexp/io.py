"""Generic file I/O every layer uses: package-resource paths, all-or-nothing writes, JSON, and the missing-file error.

Written results keep the permissions the user's umask gives a new file (a temporary file from ``tempfile`` would be
0600, unreadable to others on a shared machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import numpy as np

PKG_PREFIX = "pkg://"


class MissingFileError(FileNotFoundError):
    """A data or benchmark file that is not where the config says; the message says how to get it."""


def resolve_path(path: str | Path) -> Path:
    """``pkg://<file>`` names a file shipped in ``ntkexp/resources``; anything else is a path (``~`` expanded)."""
    text = str(path)
    if text.startswith(PKG_PREFIX):
        return Path(str(resources.files("ntkexp.resources").joinpath(text[len(PKG_PREFIX):])))
    return Path(text).expanduser()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` only when the block finishes without error.

    The result gets the mode a plainly created file would (0666 less the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return str(obj)


def write_json(path: Path, payload: Any) -> None:
    """``payload`` as indented JSON (NaN kept as NaN), written atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=_json_default, allow_nan=True) + "\n")
