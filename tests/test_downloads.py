"""Data on demand (ntkexp.downloads) against a real HTTP server on 127.0.0.1 serving small fabricated archives in the
real formats: downloaded once, resumed after an interruption, refused when corrupt or not the published file,
one line when there is no server, and the design card's command fetching the NDS data itself."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import pickle
import socket
import tarfile
import threading
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from ntkexp.data import load_arrays
from ntkexp.downloads import RESOURCES, STAGING, DownloadError, DownloadSettings, ensure

from .conftest import cli, nds_darts_records, python


class _Server:
    """Serves ``files`` (name -> bytes) with range requests; ``cut[name] = n`` drops the connection after n bytes
    of that file's next response; ``requests`` records (name, Range header) of every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[name], 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if name in server.cut:
                    payload = payload[: server.cut.pop(name)]
                self.wfile.write(payload)
                self.wfile.flush()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.requests if n == name)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cifar10_archive(n: int = 12) -> tuple[bytes, np.ndarray]:
    """A cifar-10-python.tar.gz in the real layout (pickled batches of uint8 rows), ``n`` images per batch; and the
    first training batch's images (N, 3, 32, 32)."""
    rng = np.random.default_rng(0)
    buf, first = io.BytesIO(), None
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            first = data if first is None else first
            payload = pickle.dumps({"data": data, "labels": list(rng.integers(0, 10, n))} if name != "batches.meta"
                                   else {"label_names": [str(i) for i in range(10)]})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue(), first.reshape(-1, 3, 32, 32)


def _leftovers(root: Path) -> list[str]:
    """What the staging directory holds besides the (empty) lock files (nothing once it is tidied away)."""
    if not (root / STAGING).exists():
        return []
    return sorted(p.name for p in (root / STAGING).iterdir() if not p.name.endswith(".lock"))


def _fabricated_cifar10(server: _Server) -> tuple[object, np.ndarray]:
    """The cifar10 resource with the fabricated archive's MD5 (the real one's is checked in another test)."""
    archive, first = _cifar10_archive()
    server.files["cifar-10-python.tar.gz"] = archive
    return replace(RESOURCES.get("cifar10"), md5=hashlib.md5(archive).hexdigest()), first


def test_a_missing_data_set_is_downloaded_verified_and_unpacked_once(tmp_path: Path, server: _Server) -> None:
    resource, first = _fabricated_cifar10(server)
    settings = DownloadSettings(mirror=server.url)
    where = ensure(resource, tmp_path, settings)
    assert where == tmp_path / "cifar-10-batches-py" and (where / "test_batch").exists()
    train, test = load_arrays("cifar10", root=tmp_path)
    assert train.x.shape == (60, 3, 32, 32) and np.array_equal(train.x[:12], first) and len(test.y) == 12
    assert _leftovers(tmp_path) == []  # no archive, part or scratch left behind
    ensure(resource, tmp_path, settings)  # a second run downloads nothing
    assert server.count("cifar-10-python.tar.gz") == 1


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path: Path, server: _Server) -> None:
    resource, first = _fabricated_cifar10(server)
    size = len(server.files["cifar-10-python.tar.gz"])
    server.cut["cifar-10-python.tar.gz"] = size // 3
    settings = DownloadSettings(mirror=server.url)
    with pytest.raises(DownloadError, match="broke off.*run again to resume"):
        ensure(resource, tmp_path, settings)
    part = tmp_path / STAGING / "cifar-10-python.tar.gz.part"
    assert part.stat().st_size == size // 3 and not (tmp_path / "cifar-10-batches-py").exists()
    ensure(resource, tmp_path, settings)
    assert server.requests[-1] == ("cifar-10-python.tar.gz", f"bytes={size // 3}-")  # only the rest was asked for
    assert np.array_equal(load_arrays("cifar10", root=tmp_path)[0].x[:12], first) and not part.exists()


def test_the_published_checksum_refuses_a_file_that_is_not_the_real_one(tmp_path: Path, server: _Server) -> None:
    server.files["cifar-10-python.tar.gz"] = _cifar10_archive()[0]  # the real resource: the published MD5
    with pytest.raises(DownloadError, match="MD5 .* not the published c58f30108f718f92721af3b95e74349a"):
        ensure("cifar10", tmp_path, DownloadSettings(mirror=server.url))
    assert not (tmp_path / "cifar-10-batches-py").exists()
    assert not any((tmp_path / STAGING).glob("*.part"))  # removed: the next run downloads afresh


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_archive_is_refused_and_nothing_is_left_half_written(tmp_path: Path, server: _Server,
                                                                       damage: str) -> None:
    archive = _cifar10_archive()[0]
    body = archive[: len(archive) // 2] if damage == "truncated" else b"<html>not found</html>" * 100
    server.files["cifar-10-python.tar.gz"] = body
    resource = replace(RESOURCES.get("cifar10"), md5=None)  # no checksum: the archive's own structure must catch it
    with pytest.raises(DownloadError, match="truncated or corrupt"):
        ensure(resource, tmp_path, DownloadSettings(mirror=server.url))
    assert not (tmp_path / "cifar-10-batches-py").exists()
    assert _leftovers(tmp_path) == []


def test_an_archive_without_the_expected_files_is_refused(tmp_path: Path, server: _Server) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("nds_data/README.txt", "no json here")
    server.files["data.zip"] = buf.getvalue()
    with pytest.raises(DownloadError, match="does not hold nds_data/DARTS.json"):
        ensure("nds", tmp_path, DownloadSettings(mirror=server.url))
    assert not (tmp_path / "nds").exists()


def test_parallel_runs_download_once(tmp_path: Path, server: _Server) -> None:
    resource, _ = _fabricated_cifar10(server)
    settings = DownloadSettings(mirror=server.url, progress=False)
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            ensure(resource, tmp_path, settings)
        except BaseException as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and server.count("cifar-10-python.tar.gz") == 1


def test_downloads_off_or_no_link_name_the_url_and_the_manual_steps(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"download=false.*https://www.cs.toronto.edu/~kriz/cifar-10-python"):
        ensure("cifar10", tmp_path, DownloadSettings(enabled=False))
    with pytest.raises(DownloadError, match=f"cannot be downloaded automatically: expected at {tmp_path}/ImageNet16"):
        ensure("imagenet16_120", tmp_path, DownloadSettings())


#: what every run here adds: downloads on (the tests turn them off elsewhere), quiet
ONLINE = ["download=true", "logger=csv", "task.progress=false"]


def test_no_server_is_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    proc = cli(*ONLINE, "dataset=cifar10", "n_archs=2", f"paths.data_root={tmp_path}",
                f"download_mirror=http://127.0.0.1:{_closed_port()}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("ntkexp: error: cannot download cifar10 from")
    assert "kriz/cifar-10-python.tar.gz by hand" in proc.stderr  # the real URL, for the manual way
    assert not (tmp_path / STAGING).exists()  # no empty staging folder left behind


def _nds_zip() -> bytes:
    """NDS's data.zip in its real layout (nds_data/<SPACE>.json), with four DARTS-space records."""
    records = nds_darts_records()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("nds_data/DARTS.json", json.dumps(records))
        z.writestr("nds_data/ENAS.json", "[]")
    return buf.getvalue()


def test_the_design_cards_command_downloads_the_nds_data_and_correlates(tmp_path: Path, server: _Server) -> None:
    server.files["data.zip"] = _nds_zip()
    card = ["search_space=nds_darts", "metric=ncn", "init=gaussian", f"paths.data_root={tmp_path / 'data'}",
            f"paths.cache_dir={tmp_path / 'cache'}", "ntk.batch_size=8", "n_archs=4", f"download_mirror={server.url}"]
    proc = cli(*ONLINE, *card, f"hydra.run.dir={tmp_path / 'run1'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    assert summary["n_archs"] == 4 and np.isfinite(summary["correlations"]["ncn"]["kendall_tau"])
    assert (tmp_path / "data" / "nds" / "DARTS.json").exists() and server.count("data.zip") == 1
    proc = cli(*ONLINE, *card, f"hydra.run.dir={tmp_path / 'run2'}")  # a second run downloads nothing
    assert proc.returncode == 0 and server.count("data.zip") == 1, proc.stderr[-2000:]

    status = python("-m", "ntkexp.data", "--data-root", str(tmp_path / "data"), "status", timeout=60)
    lines = {line.split()[0]: line for line in status.stdout.splitlines()[2:]}
    assert status.returncode == 0 and "present" in lines["nds"] and str(tmp_path / "data" / "nds") in lines["nds"]


def test_status_on_a_fresh_clone_lists_what_ships_and_what_is_missing(tmp_path: Path) -> None:
    proc = python("-m", "ntkexp.data", "--data-root", str(tmp_path), "status", timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[2:]}
    assert set(lines) == set(RESOURCES)
    for shipped in ("nb201", "cifar10_probe"):
        assert lines[shipped][2] == "present" and "ships" in lines[shipped]
    for absent in ("cifar10", "nds", "nb101_vis_1k", "imagenet16_120"):
        assert lines[absent][2] == "missing", lines[absent]
    assert "hand" in lines["imagenet16_120"] and "demand" in lines["nds"]


@pytest.mark.parametrize("check", ["sha256", "size"])
def test_a_sha256_or_size_checked_resource_refuses_a_file_that_is_not_it(tmp_path: Path, server: _Server,
                                                                         check: str) -> None:
    """The SHA-256 (the NB101 export, the SWAP CSV) and size-only checks had no test of their own: a resource checked
    one of those ways could skip its check unseen. The right file passes; a file of the right name that is not it is
    refused and removed."""
    archive, _ = _cifar10_archive()
    other, _ = _cifar10_archive(n=13)
    base = replace(RESOURCES.get("cifar10"), md5=None, sha256=None, size=None)
    resource = (replace(base, sha256=hashlib.sha256(archive).hexdigest()) if check == "sha256"
                else replace(base, size=len(archive)))
    server.files["cifar-10-python.tar.gz"] = other
    match = "SHA256 .* not the published" if check == "sha256" else f"bytes, not {len(archive):,}"
    with pytest.raises(DownloadError, match=match):
        ensure(resource, tmp_path, DownloadSettings(mirror=server.url))
    assert not (tmp_path / "cifar-10-batches-py").exists()
    assert not any((tmp_path / STAGING).glob("*.part"))
    server.files["cifar-10-python.tar.gz"] = archive
    assert (ensure(resource, tmp_path, DownloadSettings(mirror=server.url)) / "test_batch").exists()


def test_fetching_an_unknown_name_is_one_line_listing_the_names() -> None:
    from .conftest import python

    proc = python("-m", "ntkexp.data", "fetch", "bogus")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "unknown data resource 'bogus'" in proc.stderr and "cifar10" in proc.stderr
    helped = python("-m", "ntkexp.data", "--help")
    assert "``" not in helped.stdout and ":mod:" not in helped.stdout
