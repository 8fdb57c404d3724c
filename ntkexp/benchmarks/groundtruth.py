"""Per-arch final accuracies of a benchmark, as one compact table.

A table has an ``arch_str`` column (the space's canonical arch string), optionally ``arch_index``, and one final
accuracy column per data set (``cifar10``, ``cifar100``, ``ImageNet16-120``, ...), in percent. Other columns follow a
naming rule: ``<key>_valid`` a final validation accuracy, ``<key>_valid_12ep`` one after a 12-epoch schedule,
``*_seconds`` times, ``params``/``params_mb`` sizes; only the final accuracies count as the benchmark's data sets. It is read from
CSV or parquet. Known third-party layouts are renamed on reading (e.g. the NATS-Bench landscape CSV's
``CIFAR10TestAccuracy200Epochs`` -> ``cifar10``).

When the table does not exist but the official benchmark (``source``) does, the table is converted once from it and
the source's identity (path, size, modification time) is recorded beside it (``<table>.source.json``); when the
source changes the table is converted again, and a converted table whose source has gone is refused rather than
used blindly. A benchmark that knows its size (``expected_rows``) refuses an incomplete table unless
``allow_incomplete``. Converters:
a NATS-Bench topology directory (``NATS-tss-v1_0-3ffb9-simple``, through ``nats_bench``) or a NAS-Bench-201
``.pth`` (through ``nas_201_api``); the 200-epoch test accuracy (mean over seeds) is taken for cifar10 (ori-test),
cifar100 and ImageNet16-120 (x-test), as those benchmarks define their final test accuracy.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ntkexp.io import MissingFileError, atomic_write, resolve_path, storage_error
from ntkexp.spaces.base import InvalidArchError

log = logging.getLogger("ntkexp")

ALIASES = {
    "ArchitectureString": "arch_str",
    "arch": "arch_str",
    "CIFAR10TestAccuracy200Epochs": "cifar10",
    "CIFAR100TestAccuracy200Epochs": "cifar100",
    "ImageNetTestAccuracy200Epochs": "ImageNet16-120",
    "index": "arch_index",
}
NB201_DATASETS = {"cifar10": "ori-test", "cifar100": "x-test", "ImageNet16-120": "x-test"}
METADATA = {"arch_str", "arch_index", "UniqueString", "hash", "params", "params_mb", "n_seeds", "train_seconds"}
NOT_FINAL = ("_valid", "_12ep", "_seconds", "_mb")
NO_BENCHMARK = "Without it, task=score scores archs of the space (no correlation)."


@dataclass
class BenchmarkConfig:
    """Where a search space's ground truth lives. ``table`` may be ``pkg://<file>`` for a table shipped in
    ``ntkexp/resources``. ``how_to_get`` is shown when neither file exists."""

    table: str | None = None
    source: str | None = None
    source_format: str = "auto"  # auto | nats_tss | nb201_pth
    how_to_get: str = ""
    label: str = ""  # what the accuracies are (shown in outputs), e.g. "NB201 200-epoch test accuracy"
    column_map: dict[str, str] = field(default_factory=dict)  # dataset key -> table column (e.g. cifar10 -> cifar10_valid)
    expected_rows: int | None = None  # how many archs the complete benchmark has (None: not known)
    allow_incomplete: bool = False  # use a table with fewer rows than expected_rows anyway
    resource: str | None = None  # the ntkexp.downloads resource that provides ``source`` (fetched when missing)


class GroundTruth:
    """An accuracy table indexed by canonical arch string."""

    def __init__(self, frame: pd.DataFrame, label: str = "", path: str = "",
                 column_map: dict[str, str] | None = None) -> None:
        frame = frame.rename(columns={k: v for k, v in ALIASES.items() if k in frame.columns})
        if "arch_str" not in frame.columns:
            raise ValueError(f"ground-truth table {path or ''} has no arch column (arch_str); columns: {list(frame.columns)}")
        if frame.empty:
            raise ValueError(f"ground-truth table {path} is empty")
        if frame["arch_str"].duplicated().any():
            raise ValueError(f"ground-truth table {path} lists an arch twice: "
                             f"{frame.loc[frame['arch_str'].duplicated(), 'arch_str'].iloc[0]}")
        for key, column in (column_map or {}).items():
            if column not in frame.columns:
                raise ValueError(f"ground-truth table {path}: column_map sends {key!r} to {column!r}, which it lacks")
            frame = frame.assign(**{key: frame[column]})
        self.frame = frame.set_index("arch_str", drop=False)
        self.label, self.path = label, path
        self.source: dict[str, object] | None = None  # the identity of the file it was converted from, if any
        self.expected_rows: int | None = None

    @property
    def columns(self) -> list[str]:
        """Every data column (accuracies of any kind, times, sizes)."""
        return [c for c in self.frame.columns if c not in ("arch_str", "arch_index", "UniqueString", "hash")]

    @property
    def datasets(self) -> list[str]:
        """The final-accuracy columns: the benchmark's data sets (see the module docstring)."""
        return [c for c in self.columns if c not in METADATA and not c.endswith(NOT_FINAL)]

    def training_seconds(self, archs: list[str], key: str, epochs: int = 200) -> tuple[float, str] | None:
        """The training time the benchmark records for ``archs`` on data set ``key`` (``epochs`` epochs each, from
        the ``<key>_epoch_seconds`` column, else ``<key>_valid_epoch_seconds``), and that column's name; None where
        the table has no such record."""
        for column in (f"{key}_epoch_seconds", f"{key}_valid_epoch_seconds"):
            if column in self.frame.columns:
                return float(self.frame[column].reindex(archs).sum() * epochs), column
        return None

    def provenance(self) -> dict[str, object]:
        """Where the ground truth came from and how much of it there is (written to every summary)."""
        return {"label": self.label, "path": self.path, "rows": len(self.frame), "expected_rows": self.expected_rows,
                "converted_from": self.source, "datasets": self.datasets}

    def archs(self) -> list[str]:
        return list(self.frame["arch_str"])

    def validate_archs(self, validate: Callable[[str], str]) -> None:
        """Check every arch string with the search space's ``validate`` (a damaged table fails here, clearly)."""
        for row, arch in enumerate(self.frame["arch_str"]):
            try:
                canonical = validate(arch)
            except ValueError as err:
                raise ValueError(f"ground-truth table {self.path}, row {row + 1}: {err}") from None
            if canonical != arch:
                raise ValueError(f"ground-truth table {self.path}, row {row + 1}: {arch!r} is not in canonical form "
                                 f"{canonical!r}")

    def require(self, key: str, context: str = "") -> None:
        """Refuse a missing column, a column with text where numbers belong, and accuracies outside 0-100 % (an infinity,
        a fraction table's 1000.0), naming the file, column and row."""
        if key not in self.frame.columns:
            raise ValueError(f"the ground truth {self.path} has no accuracy for data set {key!r} (it has: "
                             f"{', '.join(self.columns)}){context}")
        column = self.frame[key]
        if not pd.api.types.is_numeric_dtype(column):
            numeric = pd.to_numeric(column, errors="coerce")
            bad = numeric.isna() & column.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise ValueError(f"ground-truth table {self.path}, column {key!r}, row {row + 1} "
                                 f"({column.index[row]}): {column.iloc[row]!r} is not a number")
            self.frame[key] = numeric
        values = self.frame[key].to_numpy(dtype=np.float64)
        bad = ~np.isnan(values) & ~((values >= 0.0) & (values <= 100.0))  # +-inf included
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"ground-truth table {self.path}, column {key!r}, row {row + 1} "
                             f"({self.frame.index[row]}): {values[row]!r} is not an accuracy in percent (0 to 100)"
                             + (f"; {int(bad.sum())} such rows in all" if bad.sum() > 1 else "")
                             + "; fix or blank those cells (a blank cell is an arch without an accuracy)")

    def scored_archs(self, key: str) -> list[str]:
        """The archs that have an accuracy for ``key`` (a NaN, e.g. a blank or 'n/a' cell, has none)."""
        self.require(key)
        return list(self.frame.index[self.frame[key].notna()])

    def accuracy(self, archs: list[str], key: str) -> np.ndarray:
        self.require(key)
        return self.frame[key].reindex(archs).to_numpy(dtype=np.float64)

    def __len__(self) -> int:
        return len(self.frame)


class DamagedTableError(ValueError):
    """A ground-truth table that exists but cannot be parsed; ``damage`` says what is wrong with it (the message
    adds what to do, which depends on whether a source can rebuild it)."""

    def __init__(self, damage: str, advice: str) -> None:
        super().__init__(f"{damage}: {advice}")
        self.damage = damage


def _npz_frame(path: Path) -> pd.DataFrame:
    """A table stored as one array per column (``np.savez_compressed``: numbers at their dtype, text as unicode),
    read with numpy alone; column order is the file's."""
    with np.load(path, allow_pickle=False) as arrays:
        return pd.DataFrame({name: (arrays[name].astype(object) if arrays[name].dtype.kind == "U" else arrays[name])
                             for name in arrays.files})


def _npz_write(frame: pd.DataFrame, out: Any) -> None:
    np.savez_compressed(out, **{str(c): (frame[c].astype(str).to_numpy(dtype=str) if not
                                         pd.api.types.is_numeric_dtype(frame[c]) else frame[c].to_numpy())
                                for c in frame.columns})


def read_table(path: Path) -> pd.DataFrame:
    """A ground-truth table by its suffix: ``.npz`` (the shipped one; numpy only), ``.parquet`` (needs pyarrow, the
    ``benchmarks`` extra) or CSV."""
    try:
        if path.suffix == ".npz":
            return _npz_frame(path)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        frame = pd.read_csv(path)
        if len(frame) and not _ends_in_newline(path):  # cut inside its last row: "91.10" may read as 9.0
            log.warning("ground-truth table %s: its last row (row %d, %s) does not end in a newline, so the file was "
                        "cut inside it; that row is left out", path, len(frame), frame.iloc[-1, 0])
            frame = frame.iloc[:-1]
        return frame
    except ImportError as err:  # no parquet engine: a missing extra, not a damaged table
        raise ValueError(f"ground-truth table {path}: reading parquet needs pyarrow, which is not installed "
                         f"({err}); pip install 'ntkexp[benchmarks]', or convert the table to .npz or .csv") from None
    except Exception as err:  # pandas/pyarrow raise many types for damaged files
        storage = storage_error(err, path, "read")
        if storage is not None:  # a forbidden path is not a damaged table
            raise storage from None
        raise DamagedTableError(f"ground-truth table {path} cannot be read ({type(err).__name__}: {err}); it is "
                                "truncated or corrupt", "replace it with a good copy (it has no benchmark source "
                                "configured to rebuild it from)") from None


def merge_duplicates(frame: pd.DataFrame, source: Path | str) -> pd.DataFrame:
    """One row per arch, the same way in every converter: records of one arch are merged into one row, their numbers
    averaged (other columns: the first record's); where the records disagree, a warning names the first such arch,
    its values and how many archs were merged."""
    dup = frame["arch_str"].duplicated(keep=False)
    if not dup.any():
        return frame
    numbers = [c for c in frame.columns if c != "arch_str" and pd.api.types.is_numeric_dtype(frame[c])]
    groups = frame[dup].groupby("arch_str", sort=False)
    spread = groups[numbers].agg(lambda s: float(s.max() - s.min()) if s.notna().any() else 0.0) if numbers else None
    disagree = [] if spread is None else list(spread.index[(spread > 1e-9).any(axis=1)])
    n_archs = frame.loc[dup, "arch_str"].nunique()
    if disagree:
        first = disagree[0]
        values = {c: frame.loc[frame.arch_str == first, c].tolist() for c in numbers
                  if spread.loc[first, c] > 1e-9}
        log.warning("%s lists %d archs more than once and %d of them with different numbers (e.g. %s: %s); each "
                    "arch's records are averaged", source, n_archs, len(disagree), first, values)
    else:
        log.warning("%s lists %d archs more than once (with the same numbers); one row each is kept", source, n_archs)
    merged = frame.groupby("arch_str", sort=False, as_index=False).agg(
        {c: ("mean" if c in numbers else "first") for c in frame.columns if c != "arch_str"})
    return merged[frame.columns]


def _ends_in_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return True
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")


def convert_nats_tss(source: Path, out: Path) -> pd.DataFrame:
    """Extract the final 200-epoch test accuracies from a NATS-Bench TSS directory (fast mode) into ``out``."""
    from ntkexp.extras import require

    nats_bench = require("nats_bench", "converting NATS-Bench files (source_format=nats_tss)")

    api = nats_bench.create(str(source), "tss", fast_mode=True, verbose=False)
    rows = []
    for index in range(len(api)):
        if not (source / f"{index:06d}.pickle.pbz2").exists():  # partial copies: keep the archs that are there
            continue
        row = {"arch_index": index, "arch_str": api.arch(index)}
        for ds in NB201_DATASETS:
            row[ds] = api.get_more_info(index, ds, hp="200", is_random=False)["test-accuracy"]
        rows.append(row)
    if not rows:
        raise MissingFileError(f"{source} holds no per-arch NATS files (000000.pickle.pbz2, ...)")
    frame = pd.DataFrame(rows)
    write_table(frame, out)
    return frame


def convert_nb201_pth(source: Path, out: Path) -> pd.DataFrame:
    """Extract the final 200-epoch test accuracies from ``NAS-Bench-201-v1_*.pth`` (nas_201_api) into ``out``."""
    import torch
    from ntkexp.extras import require

    api_module = require("nas_201_api", "converting the NAS-Bench-201 .pth file (source_format=nb201_pth)")
    NASBench201API = api_module.NASBench201API

    original = torch.load

    def load(*args, **kwargs):  # the benchmark is a pickle of python objects; torch >= 2.6 refuses those by default
        kwargs["weights_only"] = False
        return original(*args, **kwargs)

    torch.load = load
    try:
        api = NASBench201API(str(source), verbose=False)
    finally:
        torch.load = original
    rows = []
    for index in range(len(api)):
        row = {"arch_index": index, "arch_str": api.arch(index)}
        for ds, split in NB201_DATASETS.items():
            results = api.query_by_index(index, ds, hp="200")
            row[ds] = float(np.mean([r.get_eval(split)["accuracy"] for r in results.values()]))
        rows.append(row)
    frame = pd.DataFrame(rows)
    write_table(frame, out)
    return frame


def write_table(frame: pd.DataFrame, out: Path) -> None:
    """``frame`` as the compact table ``out`` (npz, parquet or CSV by its suffix), all or nothing."""
    with atomic_write(out) as tmp:
        if out.suffix == ".npz":
            with open(tmp, "wb") as fh:  # savez would add ".npz" to a path without it
                _npz_write(frame, fh)
        elif out.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)


#: source_format -> converter(source, out) writing the compact table and returning it
CONVERTERS: dict[str, Callable[[Path, Path], pd.DataFrame]] = {}


def register_converter(name: str) -> Callable[[Callable[[Path, Path], pd.DataFrame]], Callable[[Path, Path], pd.DataFrame]]:
    def wrap(fn: Callable[[Path, Path], pd.DataFrame]) -> Callable[[Path, Path], pd.DataFrame]:
        CONVERTERS[name] = fn
        return fn

    return wrap


register_converter("nats_tss")(convert_nats_tss)
register_converter("nb201_pth")(convert_nb201_pth)


def source_identity(source: Path) -> dict[str, object]:
    """Path, size and modification time of a benchmark source (a file, or a directory's files taken together)."""
    if source.is_dir():
        files = [p for p in source.iterdir() if p.is_file()]
        stats = [p.stat() for p in files]
        return {"path": str(source.resolve()), "files": len(files), "size": sum(st.st_size for st in stats),
                "mtime_ns": max((st.st_mtime_ns for st in stats), default=0)}
    st = source.stat()
    return {"path": str(source.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sidecar(table: Path) -> Path:
    return table.with_name(table.name + ".source.json")


def _convert(cfg: BenchmarkConfig, source: Path, table: Path | None) -> tuple[pd.DataFrame, Path]:
    fmt = cfg.source_format
    if fmt == "auto":
        fmt = "nb201_pth" if source.suffix == ".pth" else "nats_tss"
    if fmt not in CONVERTERS:
        raise ValueError(f"unknown benchmark source_format {fmt!r}; valid: {', '.join(sorted(CONVERTERS))}")
    out = table or source.with_name(source.name + ".ntkexp.csv")
    try:
        frame = CONVERTERS[fmt](source, out)
    except MissingFileError:
        raise
    except InvalidArchError as err:
        raise ValueError(f"the benchmark files at {source} hold an arch this search space does not accept: {err}") \
            from None
    except Exception as err:  # the official readers fail in many ways on damaged files
        raise ValueError(f"the benchmark files at {source} cannot be read ({type(err).__name__}: {err}); "
                         "they are truncated or corrupt: download them again") from None
    with atomic_write(_sidecar(out)) as tmp:
        tmp.write_text(json.dumps({"format": fmt, "source": source_identity(source)}, indent=2) + "\n")
    return frame, out


def _check_complete(gt: GroundTruth, cfg: BenchmarkConfig) -> GroundTruth:
    gt.expected_rows = cfg.expected_rows
    if cfg.expected_rows is not None and len(gt) < cfg.expected_rows and not cfg.allow_incomplete:
        raise ValueError(f"the ground truth {gt.path} has {len(gt):,} archs but the benchmark has "
                         f"{cfg.expected_rows:,}: it is incomplete (a truncated file or a partial copy); set "
                         "search_space.benchmark.allow_incomplete=true to use it anyway")
    return gt


def load_ground_truth(cfg: BenchmarkConfig, fetch: Callable[[str], Path] | None = None) -> GroundTruth:
    """The table at ``cfg.table``; converted from ``cfg.source`` first when only the official benchmark is present,
    or again when the source it was converted from has changed (see the module docstring). With ``fetch`` (e.g.
    :func:`ntkexp.downloads.fetcher`), a missing source is downloaded first when ``cfg.resource`` names where from."""
    table = resolve_path(cfg.table) if cfg.table else None
    source = resolve_path(cfg.source) if cfg.source else None
    if fetch is not None and cfg.resource and source is not None and not source.exists() \
            and not (table is not None and table.exists() and not _sidecar(table).exists()):
        try:
            fetch(cfg.resource)  # downloads the benchmark files
        except MissingFileError as err:  # off, no network, a bad download: one line, with what can be done instead
            raise type(err)(f"benchmark ground truth not found: looked for {source}; {err}. {NO_BENCHMARK}") from None
    if table is not None and table.exists():
        sidecar = _sidecar(table)
        recorded = json.loads(sidecar.read_text()) if sidecar.exists() else None
        if recorded is None or source is None:  # a table given as it is
            return _check_complete(GroundTruth(read_table(table), cfg.label, str(table), dict(cfg.column_map)), cfg)
        if not source.exists():
            raise MissingFileError(
                f"the table {table} was converted from {recorded['source']['path']}, but the configured source "
                f"{source} is not there: point paths.data_root at the benchmark files, or use the table as it is "
                "with search_space.benchmark.source=null")
        if recorded["source"] == source_identity(source):
            try:
                gt = GroundTruth(read_table(table), cfg.label, str(table), dict(cfg.column_map))
                gt.source = recorded["source"]
                return _check_complete(gt, cfg)
            except DamagedTableError as err:  # converted from a source that is still there: convert it again
                log.warning("%s; converting it again from %s", err.damage, source)
        else:
            log.info("the benchmark source %s changed since %s was converted from it: converting again", source, table)
    if source is not None and source.exists():
        frame, out = _convert(cfg, source, table)
        gt = GroundTruth(frame, cfg.label, str(out), dict(cfg.column_map))
        gt.source = source_identity(source)
        return _check_complete(gt, cfg)
    looked = [str(p) for p in (table, source) if p is not None]
    raise MissingFileError(
        f"benchmark ground truth not found: looked for {' and '.join(looked) or '(no path configured)'}. "
        f"{cfg.how_to_get} Set search_space.benchmark.table=<file> (or paths.data_root=<dir>). {NO_BENCHMARK}"
    )
