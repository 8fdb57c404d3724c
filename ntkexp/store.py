"""A durable per-arch score cache: one SQLite row per (arch, full scoring config), committed as it is computed.

The key is a SHA-256 of the canonical JSON of everything that changes a score (search space settings, arch, metric
names and their settings, NTK conventions, init, data set, probe batch, seed, training epochs), so a re-run, a resumed
killed run, or another job of a multirun reuses finished archs and recomputes nothing. SQLite's write-ahead log and a
busy timeout let concurrent jobs share one file; a row is either fully committed or absent.
"""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from ntkexp.io import StorageError, storage_error

log = logging.getLogger("ntkexp")
#: how long a call waits for a cache another process holds locked, and after how long it says that it waits
LOCK_WAIT, LOCK_NOTICE = 60.0, 2.0


#: the score cache's file in ``paths.cache_dir``
CACHE_FILE = "scores.sqlite"


class ScoreStore:
    def __init__(self, path: str | Path | None) -> None:
        """``path=None`` keeps nothing (an in-memory store)."""
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise ValueError(f"the score cache's folder {self.path.parent} (paths.cache_dir) is, or lies under, a "
                                 "file: point paths.cache_dir at a directory") from None
            except OSError as err:  # read-only, forbidden, full: say it is the score cache's folder
                raise storage_error(err, f"the score cache's folder {self.path.parent} (paths.cache_dir)",
                                    "create") or err from None
        try:
            self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", timeout=LOCK_NOTICE)

            def setup() -> None:
                if self.path is not None:
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self._db.commit()

            self._waiting(setup)
        except sqlite3.OperationalError as err:  # where the file lives (full, read-only, forbidden), not what it holds
            raise self._storage(err, "open") from None
        except sqlite3.DatabaseError as err:  # "file is not a database", "database disk image is malformed"
            raise ValueError(f"score cache {self.path} is corrupt ({err}); delete it (scores are recomputed)") from None

    def _storage(self, err: sqlite3.OperationalError, doing: str) -> OSError:
        """A one-line error for SQLite's operational failures, which are about the disk, not the cache's contents."""
        text = str(err).lower()
        if "full" in text:
            reason, code = "the disk is full", errno.ENOSPC
        elif "readonly" in text or "read-only" in text:
            reason, code = "it is read-only (a read-only file system or file)", errno.EROFS
        elif "unable to open" in text:
            reason, code = "it cannot be opened (a folder of that name, or no permission)", errno.EACCES
        elif "locked" in text or "busy" in text:
            reason, code = "another process holds it locked for over a minute", errno.EBUSY
        else:
            reason, code = f"SQLite: {err}", errno.EIO
        return StorageError(code, f"cannot {doing} the score cache {self.path}: {reason}; the scores kept in it are "
                                  "intact (each row is committed whole or not at all): fix that and run the same "
                                  "command again to resume")

    def _waiting(self, call: Any) -> Any:
        """``call()``, waiting (and saying so once) while another process holds the cache locked, up to LOCK_WAIT s."""
        start, said = time.monotonic(), False
        while True:
            try:
                return call()
            except sqlite3.OperationalError as err:
                text = str(err).lower()
                if not ("locked" in text or "busy" in text) or time.monotonic() - start > LOCK_WAIT:
                    raise
                if not said:
                    log.warning("the score cache %s is locked by another process (another run writing to it); "
                                "waiting up to %.0f s for it", self.path, LOCK_WAIT)
                    said = True
                time.sleep(0.2)

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            row = self._waiting(lambda: self._db.execute("SELECT value FROM scores WHERE key = ?", (key,)).fetchone())
        except sqlite3.OperationalError as err:
            raise self._storage(err, "read") from None
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError as err:  # a row damaged by hand or by a foreign writer: recompute it
            log.warning("the score cache %s holds an unreadable row (key %s...: %s); it is removed and recomputed",
                        self.path, key[:16], err)
            self.delete(key)
            return None

    def delete(self, key: str) -> None:
        try:
            with self._db:
                self._waiting(lambda: self._db.execute("DELETE FROM scores WHERE key = ?", (key,)))
        except sqlite3.OperationalError as err:
            raise self._storage(err, "write to") from None

    def put(self, key: str, value: dict[str, Any]) -> None:
        def write() -> None:
            with self._db:  # one transaction per row: committed whole or not at all
                self._db.execute("INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)", (key, json.dumps(value)))

        try:
            self._waiting(write)
        except sqlite3.OperationalError as err:  # e.g. the disk filled up during the run
            raise self._storage(err, "write to") from None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def close(self) -> None:
        self._db.close()
