"""Generic file I/O every layer uses: package-resource paths, all-or-nothing writes, JSON, and the missing-file error.

Written results keep the permissions the user's umask gives a new file (a temporary file from ``tempfile`` would be
0600, unreadable to others on a shared machine).
"""

from __future__ import annotations

import contextlib
import errno
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


#: errors that come from where a file lives, not from what it holds: never reported as a damaged file
STORAGE_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                   errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                   errno.EPERM: "permission denied"}


class StorageError(OSError):
    """A file that cannot be read or written because of where it lives (a full disk, a read-only or forbidden path),
    not because of what it holds; the message says which, and that nothing was damaged."""

    def __str__(self) -> str:  # the message alone, without OSError's "[Errno 28]" prefix
        return str(self.strerror)


def storage_error(err: BaseException, path: str | Path, doing: str) -> StorageError | None:
    """A one-line :class:`StorageError` for ``err`` (raised while ``doing`` ``path``, e.g. "write", "read") when it
    is a full disk, a quota, a read-only file system or a refused permission; None for any other error."""
    if isinstance(err, StorageError):
        return err
    if not isinstance(err, OSError) or err.errno not in STORAGE_REASONS:
        return None
    reason = STORAGE_REASONS[err.errno]
    advice = ("free some space (or point the path at another disk) and run again"
              if err.errno in (errno.ENOSPC, errno.EDQUOT) else "use a path you can write to (or read)")
    return StorageError(err.errno, f"cannot {doing} {path}: {reason} ({err.strerror}); nothing was damaged: {advice}")


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
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:  # a full disk or a forbidden path: one line naming the file; the old file is untouched
        storage = storage_error(err, path, "write")
        if storage is None:
            raise
        raise storage from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return str(obj)


def write_json(path: Path, payload: Any) -> None:
    """``payload`` as indented JSON (NaN kept as NaN), written atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=_json_default, allow_nan=True) + "\n")
