"""Readers for the image data sets the benchmarks were trained on, straight from their published file formats.

* ``cifar10`` / ``cifar100``: the python-pickle releases (``cifar-10-batches-py/``, ``cifar-100-python/``), the same
  files torchvision reads (torchvision itself is not needed).
* ``imagenet16``: ImageNet16 (``train_data_batch_1..10``, ``val_data``), the down-sampled ImageNet of Chrabaszcz et
  al.; ImageNet16-120 keeps the classes 1..120 as NAS-Bench-201 does.
* ``npz``: any ``.npz`` with uint8 HWC (or float NCHW) images and integer labels under configurable keys, e.g.
  ``cifar10_partial.npz``, or ``pkg://cifar10_probe.npz``, the CIFAR-10 probe images that ship with ntkexp.
* ``digits``: scikit-learn's 8x8 handwritten digits, shipped inside scikit-learn, split 80/20 with a fixed seed
  (the tests' tiny fixture benchmark trains on them).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ntkexp.downloads import RESOURCES, DownloadSettings, digest, ensure
from ntkexp.io import MissingFileError, resolve_path, storage_error

DATASET_KINDS = ("cifar10", "cifar100", "imagenet16", "npz", "digits")


@dataclass
class DataSplit:
    """uint8 or float images in NCHW layout, and int64 labels."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} images but {len(self.y)} labels")


def _require(path: Path, what: str, how: str) -> Path:
    if not path.exists():
        raise MissingFileError(f"{what} not found: looked for {path}. {how}")
    return path


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh, encoding="latin1")
        if isinstance(data, dict):  # a pickle written with bytes keys (b"data", b"labels") reads like the others
            data = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in data.items()}
        return data
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ValueError(f"{path} is not a readable data pickle ({err}); the file is truncated or corrupt") from None
    except OSError as err:  # a forbidden path is not a damaged file
        raise storage_error(err, path, "read") or err from None


#: the published MD5 of each file of the python releases (the CIFAR page's files, as torchvision checks them)
CIFAR_MD5 = {"cifar10": {"data_batch_1": "c99cafc152244af753f735de768cd75f",
                         "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                         "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
                         "data_batch_4": "634d18415352ddfa80567beed471001a",
                         "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
                         "test_batch": "40351d587109b95175f43aff81a1287e"},
             "cifar100": {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc"}}
VERIFIED = ".ntkexp-verified.json"


def verify_files(base: Path, published: dict[str, str], what: str) -> None:
    """Check each file against its published MD5 once: a file whose (size, mtime) was verified before (recorded in
    ``VERIFIED`` beside it, where the folder is writable) is not read again. A mismatch is refused, naming the file;
    ``dataset.verify=false`` accepts a deliberate subset."""
    import json

    record_path = base / VERIFIED
    try:
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
    except (OSError, ValueError):
        record = {}
    changed = False
    for name, md5 in published.items():
        path = base / name
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        if record.get(name) == stamp:
            continue
        got = digest(path, "md5")
        if got != md5:
            raise ValueError(f"{path} is not the published {what} file (MD5 {got}, published {md5}); "
                             f"replace it with the release's file, or set dataset.verify=false to use it as a "
                             f"deliberate subset (and say so when quoting)")
        record[name], changed = stamp, True
    if changed:
        try:
            record_path.write_text(json.dumps(record))
        except OSError:  # a read-only data folder: verified again next time
            pass


def _cifar(root: Path, name: str, download: DownloadSettings | None,
           verify: bool = False) -> tuple[DataSplit, DataSplit]:
    resource = RESOURCES.get(name)
    if download is not None:  # fetched (or refused with the URL and the manual steps) when missing
        ensure(resource, root, download)
    how = (f"Download the python version of {name.upper()} ({resource.url}) and unpack it under dataset.root (set "
           f"dataset.root=... or paths.data_root=...), or let ntkexp download it (download=true).")
    if name == "cifar10":
        base = _require(root / "cifar-10-batches-py", "CIFAR-10 directory", how)
        train = [_unpickle(_require(base / f"data_batch_{i}", "CIFAR-10 batch", how)) for i in range(1, 6)]
        test = [_unpickle(_require(base / "test_batch", "CIFAR-10 test batch", how))]
        key = "labels"
    else:
        base = _require(root / "cifar-100-python", "CIFAR-100 directory", how)
        train = [_unpickle(_require(base / "train", "CIFAR-100 train file", how))]
        test = [_unpickle(_require(base / "test", "CIFAR-100 test file", how))]
        key = "fine_labels"
    if verify:
        verify_files(base, CIFAR_MD5[name], name.upper())

    def join(parts: list[dict]) -> DataSplit:
        for p in parts:
            missing = [k for k in ("data", key) if k not in p]
            if missing:
                raise ValueError(f"a {name.upper()} file under {base} has no {missing[0]!r} entry (it has: "
                                 f"{', '.join(map(str, list(p)[:6]))}); it is not the python release of {name.upper()}")
        x = np.concatenate([np.asarray(p["data"], dtype=np.uint8) for p in parts]).reshape(-1, 3, 32, 32)
        return DataSplit(x, np.concatenate([np.asarray(p[key], dtype=np.int64) for p in parts]))

    return join(train), join(test)


def _imagenet16(root: Path, num_classes: int) -> tuple[DataSplit, DataSplit]:
    resource = RESOURCES.get("imagenet16_120")
    how = f"Get {resource.description} and put them in dataset.root. {resource.manual}"
    base = _require(root, "ImageNet16 directory", how)

    def read(names: list[str]) -> DataSplit:
        parts = [_unpickle(_require(base / n, "ImageNet16 file", how)) for n in names]
        x = np.concatenate([np.asarray(p["data"], dtype=np.uint8) for p in parts]).reshape(-1, 3, 16, 16)
        y = np.concatenate([np.asarray(p["labels"], dtype=np.int64) for p in parts]) - 1  # files count from 1
        keep = y < num_classes
        return DataSplit(x[keep], y[keep])

    return read([f"train_data_batch_{i}" for i in range(1, 11)]), read(["val_data"])


def _npz(path: Path, keys: dict[str, str]) -> tuple[DataSplit, DataSplit]:
    _require(path, "npz data file", "Point dataset.path at an .npz with image and label arrays (see dataset.keys).")
    try:
        arrays = np.load(path)
        missing = [k for k in keys.values() if k not in arrays.files]
    except Exception as err:  # zipfile.BadZipFile, OSError, ValueError, EOFError for truncated or foreign files
        storage = storage_error(err, path, "read")
        if storage is not None:  # permission denied is not "truncated or corrupt"
            raise storage from None
        raise ValueError(f"{path} is not a readable .npz ({type(err).__name__}: {err}); it is truncated or corrupt") \
            from None
    if missing:
        raise ValueError(f"{path} lacks the arrays {missing}; it has {arrays.files} (set dataset.keys)")

    def split(xk: str, yk: str) -> DataSplit:
        try:
            x, y = arrays[keys[xk]], arrays[keys[yk]]
        except Exception as err:  # a member cut short
            raise ValueError(f"{path}: array {keys[xk]!r} or {keys[yk]!r} cannot be read ({err}); the file is "
                             "truncated or corrupt") from None
        if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)  # HWC -> CHW
        return DataSplit(np.ascontiguousarray(_pixel_scale(x, path, keys[xk])), y.astype(np.int64))

    return split("train_x", "train_y"), split("test_x", "test_y")


def _pixel_scale(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    """Images as uint8 (0..255) or float in [0, 1], whatever their dtype: integers of any width in 0..255 become
    uint8, floats in [0, 1] stay, floats in 0..255 are divided by 255; anything else is refused in one line."""
    if x.dtype == np.uint8 or x.size == 0:
        return x
    if np.issubdtype(x.dtype, np.bool_) or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{path}: images {key!r} are of type {x.dtype}, not numbers")
    with np.errstate(invalid="ignore"):  # NaN pixels are refused with their count when the data are checked
        lo, hi = (float(np.nanmin(x)), float(np.nanmax(x))) if not np.isnan(x).all() else (0.0, 0.0)
    if np.issubdtype(x.dtype, np.integer) and lo >= 0 and hi <= 255:
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating) and np.isfinite(lo) and np.isfinite(hi) and lo >= 0:
        if hi <= 1.0:
            return x.astype(np.float32)
        if hi <= 255.0:
            return (x / 255.0).astype(np.float32)
    raise ValueError(f"{path}: images {key!r} ({x.dtype}) range from {lo:g} to {hi:g}, neither [0, 1] nor 0..255; "
                     "store them as uint8 0..255 or float 0..1")


def _digits(seed: int = 0) -> tuple[DataSplit, DataSplit]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ValueError("dataset kind 'digits' needs scikit-learn (pip install scikit-learn, or the [dev] extra)") \
            from None

    bunch = load_digits()
    x = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_train = int(round(0.8 * len(y)))
    return DataSplit(x[order[:n_train]], y[order[:n_train]]), DataSplit(x[order[n_train:]], y[order[n_train:]])


def load_arrays(kind: str, root: str | Path = ".", path: str | Path | None = None, num_classes: int = 10,
                keys: dict[str, str] | None = None, download: DownloadSettings | None = None,
                verify: bool = False) -> tuple[DataSplit, DataSplit]:
    """(train, test) splits of the data set ``kind``; with ``download``, CIFAR-10/100 missing under ``root`` are
    fetched first (:mod:`ntkexp.downloads`)."""
    if kind == "cifar10" or kind == "cifar100":
        return _cifar(Path(root).expanduser(), kind, download, verify)
    if kind == "imagenet16":
        return _imagenet16(Path(root), num_classes)
    if kind == "npz":
        if path is None:
            raise ValueError("dataset kind 'npz' needs dataset.path")
        default = {"train_x": "train_x", "train_y": "train_y", "test_x": "test_x", "test_y": "test_y"}
        return _npz(resolve_path(path), {**default, **(keys or {})})
    if kind == "digits":
        return _digits()
    raise ValueError(f"unknown dataset kind {kind!r}; valid kinds: {', '.join(DATASET_KINDS)}")
