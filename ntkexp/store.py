"""A durable per-arch score cache: one SQLite row per (arch, full scoring config), committed as it is computed.

The key is a SHA-256 of the canonical JSON of everything that changes a score (search space settings, arch, metric
names and their settings, NTK conventions, init, data set, probe batch, seed, training epochs), so a re-run, a resumed
killed run, or another job of a multirun reuses finished archs and recomputes nothing. SQLite's write-ahead log and a
busy timeout let concurrent jobs share one file; a row is either fully committed or absent.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any


#: the score cache's file in ``paths.cache_dir``
CACHE_FILE = "scores.sqlite"


def config_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


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
        try:
            self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", timeout=60.0)
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.commit()
        except sqlite3.DatabaseError as err:
            raise ValueError(f"score cache {self.path} is corrupt ({err}); delete it (scores are recomputed)") from None

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM scores WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._db:  # one transaction per row: committed whole or not at all
            self._db.execute("INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def close(self) -> None:
        self._db.close()
