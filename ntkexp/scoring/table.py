"""Precomputed scores shipped as a table (as NAS-Bench-Suite-Zero ships zero-cost scores): ``score_table=<file>``
makes a run read an arch's scores at initialisation from the table instead of computing them, after checking that the
table was computed under the run's conventions (network, NTK conventions, init, probe data, seed, metric settings);
a difference is refused in one line naming it. Archs the table lacks are computed as usual.

A table is an ``.npz``: ``arch`` (strings), one float column per metric, ``flags`` (strings), ``seconds``, and
``meta`` (JSON: the conventions and the provenance). ``python -m ntkexp.scoring export-table OUT RUN_DIR...`` writes
one from ``task=correlate`` / ``task=score`` runs made under one set of conventions (their ``scores.csv`` and
``summary.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ntkexp.io import atomic_write, resolve_path
from ntkexp.scoring.keys import key_conventions

NOT_METRICS = {"arch", "index", "accuracy", "flags", "seconds", "cached", "error", "train_loss", "train_acc"}


def comparable(conventions: Mapping[str, Any]) -> dict[str, Any]:
    """The conventions that decide a score, flattened to dotted keys (memory and speed settings left out, as the
    cache keys leave them out)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = value

    walk("", json.loads(json.dumps(key_conventions(conventions), default=str)))
    return out


@dataclass
class ScoreTable:
    """Scores of archs under one set of conventions (see the module docstring)."""

    path: str
    frame: pd.DataFrame  # indexed by arch: metric columns, flags, seconds
    conventions: dict[str, Any]
    provenance: str

    @classmethod
    def load(cls, path: str | Path) -> "ScoreTable":
        where = resolve_path(path)
        if not where.is_file():
            raise ValueError(f"score_table={path}: no such file ({where})")
        try:
            with np.load(where, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                columns = {k: data[k] for k in data.files if k != "meta"}
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"score_table={path}: not a score table ({err}); make one with "
                             "python -m ntkexp.scoring export-table") from None
        frame = pd.DataFrame({k: v.astype(str) if k in ("arch", "flags") else v for k, v in columns.items()})
        return cls(str(path), frame.set_index("arch"), meta["conventions"], meta.get("provenance", ""))

    @property
    def metrics(self) -> list[str]:
        return [c for c in self.frame.columns if c not in NOT_METRICS]

    def check(self, conventions: Mapping[str, Any]) -> None:
        """Refuse, in one line, a run whose conventions differ from the table's (naming the first differences)."""
        ours, theirs = comparable(conventions), comparable(self.conventions)
        differ = sorted(k for k in set(ours) | set(theirs) if ours.get(k, "(absent)") != theirs.get(k, "(absent)"))
        if differ:
            shown = "; ".join(f"{k}: run {ours.get(k, '(absent)')!r}, table {theirs.get(k, '(absent)')!r}"
                              for k in differ[:3])
            more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
            raise ValueError(f"score_table={self.path} was computed under other conventions: {shown}{more}; run "
                             "with the table's settings or without score_table")

    def lookup(self, arch: str, names: list[str]) -> tuple[dict[str, float], list[str], float] | None:
        """(values, flags, seconds) of ``arch`` for the metrics ``names``, or None when the table lacks any."""
        if arch not in self.frame.index or any(n not in self.frame.columns for n in names):
            return None
        row = self.frame.loc[arch]
        flags = [f for f in str(row.get("flags", "")).split(";") if f and f != "nan"]
        return {n: float(row[n]) for n in names}, flags, float(row.get("seconds", 0.0))


def export(out: Path, runs: list[Path]) -> Path:
    """One table from runs made under one set of conventions (their scores.csv and summary.json)."""
    frames, conventions, provenance = [], None, []
    for run in runs:
        scores, summary = run / "scores.csv", run / "summary.json"
        if not scores.is_file() or not summary.is_file():
            raise ValueError(f"{run} is not a finished task=correlate or task=score run (no scores.csv / summary.json)")
        meta = json.loads(summary.read_text())
        trained = meta.get("config", {}).get("metric", {}).get("train_epochs", 0)
        if trained or meta.get("conventions") is None:
            raise ValueError(f"{run}: only scores at initialisation with recorded conventions go into a table")
        if conventions is None:
            conventions = meta["conventions"]
        elif comparable(meta["conventions"]) != comparable(conventions):
            ScoreTable(str(run), pd.DataFrame(), conventions, "").check(meta["conventions"])
        frames.append(pd.read_csv(scores, keep_default_na=True))
        versions = meta.get("versions", {})
        provenance.append(f"{run.name}: {meta.get('network', '')}; {meta.get('data', '')}; {meta.get('device', '')}; "
                          f"ntkexp {versions.get('ntkexp', '?')} ({versions.get('ntkexp_commit', 'commit unknown')}), "
                          f"torch {versions.get('torch', '?')}")
    frame = pd.concat(frames).drop_duplicates("arch", keep="last")
    if "error" in frame:  # a failed arch is computed again by a run, not read as NaN from the table
        frame = frame[frame["error"].isna()]
    metrics = [c for c in frame.columns if c not in NOT_METRICS]
    flags = frame["flags"] if "flags" in frame else pd.Series(index=frame.index, dtype=object)
    arrays: dict[str, np.ndarray] = {  # fixed-width strings: the table loads without pickle
        "arch": np.array([str(a) for a in frame["arch"]], dtype=str),
        "flags": np.array(["" if pd.isna(f) else str(f) for f in flags], dtype=str),
        "seconds": frame["seconds"].to_numpy(float) if "seconds" in frame else np.zeros(len(frame))}
    arrays.update({m: frame[m].to_numpy(float) for m in metrics})
    arrays["meta"] = np.array(json.dumps({"conventions": conventions, "provenance": " | ".join(provenance)}))
    out = Path(out)
    with atomic_write(out) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return out
