"""Data on demand: the public files ntkexp can fetch itself, fetched once, resumed, verified and unpacked atomically.

Every data set and benchmark file a run may need is a :class:`Resource` in :data:`RESOURCES`: where it lies under a
data root (``paths.data_root``, or ``dataset.root`` for a data set), and, where its source is public and stable, the
URL it comes from, with the published checksum where one exists (else its size and the files the archive must hold).
:func:`ensure` returns the resource's path, downloading it first when it is missing and downloads are allowed:

* the download goes to ``<root>/.ntkexp-downloads/<file>.part`` and resumes from there (an HTTP range request) after
  an interruption; a progress bar (or, off a terminal, a log line at each tenth) shows it;
* the finished file is checked (MD5 / SHA-256, else size) and an archive is read through completely (a truncated or
  damaged archive is refused and removed, so the next run starts afresh);
* an archive is unpacked into a private directory beside the target and renamed into place only when whole: a
  crash leaves either nothing or the complete data set, never half of it.

With downloads off (``download=false``), no URL, or no network, the error names the URL and the manual steps.
``download_mirror=<base URL>`` fetches every file from ``<base URL>/<file name>`` instead (a local copy, a proxy,
the tests' local server). ``python -m ntkexp.data status`` lists every resource, whether it is present, where, and
its size; ``python -m ntkexp.data fetch <name>`` downloads one.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ntkexp.io import MissingFileError, resolve_path
from ntkexp.registry import Registry

log = logging.getLogger("ntkexp")

STAGING = ".ntkexp-downloads"  # under the data root: partial downloads and unpacking in progress
CHUNK = 1 << 16


class DownloadError(MissingFileError):
    """A missing file that could not be downloaded (off, no URL, no network, a bad or corrupt download)."""


@dataclass(frozen=True)
class Resource:
    """A data set or benchmark file set. ``path`` is relative to the data root (``pkg://...`` for what ships with
    ntkexp); ``url`` None means there is no direct public link (``manual`` says how to get it). ``archive`` is
    ``tar.gz``/``zip`` (unpacked; ``archive_dir`` is the directory inside it that becomes ``path``) or None (a plain
    file saved as ``path``). ``members`` are files (relative to ``path``) the result must hold: the structure check,
    and what tells an incomplete copy from a complete one."""

    name: str
    kind: str  # dataset | benchmark
    description: str
    path: str
    url: str | None = None
    archive: str | None = None
    archive_dir: str | None = None
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    members: tuple[str, ...] = ()
    manual: str = ""

    def location(self, root: str | Path) -> Path:
        return resolve_path(self.path) if self.path.startswith("pkg://") else Path(root).expanduser() / self.path

    def present(self, root: str | Path) -> bool:
        where = self.location(root)
        if not where.exists():
            return False
        return all((where / m).exists() for m in self.members) if where.is_dir() else True

    @property
    def file_name(self) -> str:
        assert self.url is not None
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class DownloadSettings:
    """Whether missing files may be downloaded (``download``), and from where (``download_mirror``)."""

    enabled: bool = True
    mirror: str | None = None
    timeout_s: float = 60.0
    progress: bool = True


#: every resource ntkexp knows, by name (datasets first, as listed here)
RESOURCES: Registry[Resource] = Registry("data resource")

for _resource in (
    Resource("cifar10", "dataset", "CIFAR-10, python version (Krizhevsky 2009)", "cifar-10-batches-py",
             url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", archive="tar.gz",
             archive_dir="cifar-10-batches-py", md5="c58f30108f718f92721af3b95e74349a",
             members=("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")),
    Resource("cifar100", "dataset", "CIFAR-100, python version (Krizhevsky 2009)", "cifar-100-python",
             url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", archive="tar.gz",
             archive_dir="cifar-100-python", md5="eb9058c3a382ffc7106e4002c42a8d85", members=("train", "test")),
    Resource("imagenet16_120", "dataset", "ImageNet16 (Chrabaszcz et al. 2017), the files NAS-Bench-201 used",
             "ImageNet16", members=("val_data", *(f"train_data_batch_{i}" for i in range(1, 11))),
             manual="There is no direct public link (the down-sampled ImageNet needs an image-net.org login; "
                    "NAS-Bench-201's copy is behind a Google-Drive link): put train_data_batch_1..10 and val_data "
                    "in this directory."),
    Resource("cifar10_probe", "dataset", "1,250 real CIFAR-10 images (ships with ntkexp)", "pkg://cifar10_probe.npz"),
    Resource("nb201", "benchmark", "NAS-Bench-201 / NATS-Bench TSS final accuracies, 15,625 archs (ships with ntkexp)",
             "pkg://nb201.npz"),
    Resource("nats_tss", "benchmark", "NATS-Bench TSS benchmark files (to convert the NB201 table yourself)",
             "NATS-tss-v1_0-3ffb9-simple", members=("meta.pickle.pbz2",),
             manual="NATS-Bench's archives are behind a Google-Drive link (github.com/D-X-Y/NATS-Bench): unpack "
                    "NATS-tss-v1_0-3ffb9-simple.tar here."),
    Resource("nds", "benchmark", "NDS design spaces, CIFAR-10 (Radosavovic et al. 2019): DARTS.json, ENAS.json, ...",
             "nds", url="https://dl.fbaipublicfiles.com/nds/data.zip", archive="zip", archive_dir="nds_data",
             members=("DARTS.json",),
             manual="The link is in github.com/facebookresearch/nds's README; unzip it and rename nds_data to this "
                    "directory."),
    Resource("nb101_vis_1k", "benchmark", "NAS-Bench-101, 1,000 archs with 108-epoch validation accuracy "
             "(nasbench-vis export)", "nb101_vis_1k/nb101_1k.json",
             url="https://raw.githubusercontent.com/tiga1231/nasbench-vis/e7d7625150510d04d9350d622fd1aad8a4a557f2/"
                 "static/data/data-1k.json",
             sha256="97508235d7b6e1e4cee998629e87ec661d9a27ca882cc31f1503126340d6f1f2", size=1_073_227),
    Resource("darts_swap_1000", "benchmark", "DARTS space, 1,000 genotypes with CIFAR-10 validation accuracy "
             "(SWAP-NAS)", "darts_swap_1000/DARTS_archs_CIFAR10.csv",
             url="https://raw.githubusercontent.com/pym1024/SWAP/8d6225609ea3cf1c08980250d9b68113c34a0474/"
                 "datasets/DARTS_archs_CIFAR10.csv",
             sha256="d28d263aa7dd4103b6a1da1775b1b03ae16ffd2516409ca3bd493c8784abe6b0", size=423_509),
    Resource("nb101_full", "benchmark", "NAS-Bench-101, all 423,624 archs (nasbench_only108 pickle layout)",
             "nb101/nasbench_only108.pkl",
             manual="The official nasbench_only108.tfrecord needs TensorFlow to read; convert it to the pickle layout "
                    "with NASLib's script (or use the 1k export, nb101_vis_1k) and put it here."),
):
    RESOURCES.register(_resource.name, _resource)


def source_url(resource: Resource, settings: DownloadSettings) -> str:
    """Where ``resource`` is fetched from: its URL, or the mirror's copy of the same file name."""
    if resource.url is None:
        raise ValueError(f"{resource.name} has no download URL")
    if settings.mirror:
        return settings.mirror.rstrip("/") + "/" + resource.file_name
    return resource.url


def _manual_steps(resource: Resource, where: Path) -> str:
    if resource.url is None:
        return f"{resource.description} cannot be downloaded automatically: expected at {where}. {resource.manual}"
    steps = f"download {resource.url} by hand"
    if resource.archive:
        steps += f" and unpack it so that {where} holds {', '.join(resource.members) or 'its files'}"
    else:
        steps += f" and save it as {where}"
    return steps


def ensure(name: str | Resource, root: str | Path, settings: DownloadSettings | None = None) -> Path:
    """The path of resource ``name`` under ``root``, downloaded, verified and unpacked first when it is missing."""
    resource = name if isinstance(name, Resource) else RESOURCES.get(name)
    settings = settings or DownloadSettings()
    where = resource.location(root)
    if resource.present(root):
        return where
    if resource.url is None:
        raise DownloadError(_manual_steps(resource, where))
    if not settings.enabled:
        raise DownloadError(f"{resource.description} not found at {where}, and downloads are off (download=false): "
                            f"run again with download=true, or {_manual_steps(resource, where)}")
    root = Path(root).expanduser()
    staging = root / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    url = source_url(resource, settings)
    part = staging / (resource.file_name + ".part")
    try:
        with open(staging / (resource.file_name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # parallel runs (a sweep) download once; the others wait, then find it
            if resource.present(root):
                return where
            log.info("downloading %s from %s into %s", resource.name, url, root)
            _download(url, part, settings, resource)
            try:
                _verify(resource, part, url)
                if resource.archive:
                    _unpack(resource, part, staging, where)
                else:
                    where.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(part, where)
            except DownloadError:
                part.unlink(missing_ok=True)  # a finished but bad download: the next attempt starts afresh
                raise
            part.unlink(missing_ok=True)
    finally:
        _tidy(staging)
    log.info("%s is ready at %s", resource.name, where)
    return where


def _tidy(staging: Path) -> None:
    """Remove the staging folder when it holds nothing to resume: its lock files that no process holds, then the
    folder itself if empty (a partial download's ``.part`` keeps it)."""
    try:
        for path in staging.glob("*.lock"):
            with open(path, "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # another run holds it
                path.unlink(missing_ok=True)
        staging.rmdir()
    except OSError:  # not empty (a .part to resume, another run's files) or already gone
        pass


def _download(url: str, part: Path, settings: DownloadSettings, resource: Resource) -> None:
    """Fetch ``url`` into ``part``, continuing a partial file with a range request."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "ntkexp", **({"Range": f"bytes={have}-"} if have else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=settings.timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the range starts at the end: the partial file is already whole
            return
        raise DownloadError(f"cannot download {resource.name} from {url}: HTTP {err.code} {err.reason}; "
                            f"{_manual_steps(resource, resource.location(part.parent.parent))}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot download {resource.name} from {url} ({reason}): no network? "
                            f"{_manual_steps(resource, resource.location(part.parent.parent))}") from None
    with response:
        resumed = have and response.status == 206
        if have and not resumed:
            have = 0  # the server sent the whole file again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else resource.size
        if resumed:
            log.info("resuming %s at %s", part.name, human_bytes(have))
        try:
            with open(part, "ab" if resumed else "wb") as out, _Meter(resource.name, total, have, settings) as meter:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    meter.advance(len(chunk))
        except OSError as err:  # a dropped connection; the partial file stays for the next run to resume
            raise DownloadError(f"the download of {resource.name} from {url} broke off ({err}); "
                                f"{part.stat().st_size if part.exists() else 0:,} bytes are kept in {part}: run "
                                "again to resume it") from None
    got = part.stat().st_size
    if length is not None and got != total:
        raise DownloadError(f"the download of {resource.name} from {url} broke off at {got:,} of {total:,} bytes; the "
                            f"part is kept in {part}: run again to resume it")


def digest(path: Path, algorithm: str) -> str:
    """The hex digest (``md5``, ``sha256``, ...) of the file at ``path``, read in blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _verify(resource: Resource, part: Path, url: str) -> None:
    for algorithm, expected in (("md5", resource.md5), ("sha256", resource.sha256)):
        if expected is not None:
            got = digest(part, algorithm)
            if got != expected:
                raise DownloadError(f"the file downloaded from {url} for {resource.name} has {algorithm.upper()} "
                                    f"{got}, not the published {expected}: it is not the file expected (a corrupt "
                                    "transfer or a changed source); it was removed, nothing was unpacked")
            return
    if resource.size is not None and part.stat().st_size != resource.size:
        raise DownloadError(f"the file downloaded from {url} for {resource.name} has {part.stat().st_size:,} bytes, "
                            f"not {resource.size:,}; it was removed")


def _unpack(resource: Resource, part: Path, staging: Path, where: Path) -> None:
    """Unpack the archive ``part`` into ``staging`` and move its ``archive_dir`` to ``where`` when it is whole."""
    scratch = staging / f"{resource.name}.unpacking"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        try:
            if resource.archive == "zip":
                with zipfile.ZipFile(part) as archive:
                    bad = archive.testzip()  # reads every member: a damaged one fails its CRC here
                    if bad is not None:
                        raise zipfile.BadZipFile(f"member {bad} is damaged")
                    for member in archive.namelist():
                        if Path(member).is_absolute() or ".." in Path(member).parts:
                            raise zipfile.BadZipFile(f"member {member} would land outside the target")
                    archive.extractall(scratch)
            else:
                with tarfile.open(part, "r:*") as archive:
                    archive.extractall(scratch, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
            if isinstance(err, OSError) and getattr(err, "errno", None) is not None:
                raise  # a full disk or a permission problem is not a corrupt archive
            raise DownloadError(f"the archive downloaded for {resource.name} is truncated or corrupt ({err}); it was "
                                "removed, nothing was unpacked: run again to download it afresh") from None
        inner = scratch / resource.archive_dir if resource.archive_dir else scratch
        missing = [m for m in resource.members if not (inner / m).exists()]
        if not inner.is_dir() or missing:
            raise DownloadError(f"the archive downloaded for {resource.name} does not hold "
                                f"{resource.archive_dir or '.'}/{', '.join(missing) or ''} (not the expected data "
                                "set); it was removed, nothing was unpacked")
        if not where.exists():
            where.parent.mkdir(parents=True, exist_ok=True)
            os.replace(inner, where)  # the whole directory appears at once
        else:  # an incomplete copy the user made: add what it lacks, never overwrite a file of theirs
            for path in sorted(inner.rglob("*")):
                target = where / path.relative_to(inner)
                if path.is_file() and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def human_bytes(n: float) -> str:
    """A byte count in words: B, KB, MB or GB."""
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class _Meter:
    """A rich download bar on a terminal; elsewhere a log line at each tenth of the file."""

    def __init__(self, name: str, total: int | None, done: int, settings: DownloadSettings) -> None:
        self.name, self.total, self.done = name, total, done
        self.enabled = settings.progress
        self.start = time.perf_counter()
        self._bar = self._task = None
        self._next_tenth = 1 + (10 * done // total if total else 0)

    def __enter__(self) -> "_Meter":
        if self.enabled and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(f"downloading {self.name}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn())
            self._bar.__enter__()
            self._task = self._bar.add_task(self.name, total=self.total, completed=self.done)
        return self

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif self.enabled and self.total and 10 * self.done >= self._next_tenth * self.total:
            self._next_tenth = 10 * self.done // self.total + 1
            rate = self.done / max(time.perf_counter() - self.start, 1e-9)
            log.info("downloading %s: %s of %s (%.0f %%, %s/s)", self.name, human_bytes(self.done),
                     human_bytes(self.total), 100 * self.done / self.total, human_bytes(rate))

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def status(root: str | Path) -> list[dict[str, object]]:
    """Every resource: its name, kind, whether it is present under ``root``, where, its size, and how it is got."""
    rows = []
    for resource in sorted((RESOURCES.get(n) for n in RESOURCES), key=lambda r: (r.kind != "dataset", r.name)):
        where = resource.location(root)
        present = resource.present(root)
        how = ("ships with ntkexp" if resource.path.startswith("pkg://")
               else "downloaded on demand" if resource.url else "by hand (no direct link)")
        rows.append({"name": resource.name, "kind": resource.kind, "present": present, "path": str(where),
                     "bytes": _size(where) if present else (where.exists() and _size(where)) or 0,
                     "partial": where.exists() and not present, "how": how, "description": resource.description})
    return rows


def fetcher(root: str | Path, settings: DownloadSettings) -> Callable[[str], Path]:
    """``ensure`` bound to ``root`` and ``settings``."""
    return lambda name: ensure(name, root, settings)


__all__ = ["DownloadError", "DownloadSettings", "RESOURCES", "Resource", "ensure", "fetcher", "human_bytes",
           "source_url", "status"]
