"""Shared fixtures: composed configs (hydra.compose, as a user's command line would), tiny settings, shared data."""

from __future__ import annotations

import atexit
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import hypothesis
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from ntkexp.main import register_schemas
from ntkexp.metrics import METRICS
from ntkexp.metrics.combine import COMBINATIONS
from ntkexp.search.base import SEARCH_ALGOS
from ntkexp.spaces import SPACES
from ntkexp.tasks.base import TASKS

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "ntkexp" / "conf"
SHARED = Path(os.environ.get("NTKEXP_SHARED_DATA", ROOT.parent / "shared" / "data"))
FIXTURES = ROOT / "tests" / "fixtures"
#: the tests' own config options (the tiny digits benchmark) on Hydra's search path; pass it to run.py too
SEARCHPATH = f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]"
#: the tiny fixture benchmark (NB201 C8N1 cells trained on sklearn digits), for tests that train
DIGITS = [SEARCHPATH, "search_space=nb201_digits"]
DIGITS_TABLE = FIXTURES / "nb201_digits.csv"

os.environ["NTKEXP_TEST_FIXTURES"] = str(FIXTURES)
# every run.py started by a test computes on one thread (two runs on two cores must not each spin two threads);
# this process keeps torch's own default, restored after each test below
_THREADS = torch.get_num_threads()
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(_THREADS)
# property-based tests draw the same examples on every run
hypothesis.settings.register_profile("ntkexp", derandomize=True, deadline=None)
hypothesis.settings.load_profile("ntkexp")
# no test reaches the internet: a missing data set or benchmark file is an error naming its URL (test_downloads
# turns downloads on against its own local server)
os.environ["NTKEXP_DOWNLOAD"] = "false"
# the tests' data root and score cache are their own (empty, temporary), never the user's ~/.cache/ntkexp
_PLACES = Path(tempfile.mkdtemp(prefix="ntkexp-tests-"))
os.environ["NTKEXP_DATA_ROOT"] = str(_PLACES / "data")
os.environ["NTKEXP_CACHE_DIR"] = str(_PLACES / "scores")
atexit.register(shutil.rmtree, _PLACES, ignore_errors=True)
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
register_schemas()


@pytest.fixture(autouse=True)
def _restore_global_state():  # type: ignore[no-untyped-def]
    """Whatever a test registers (metrics, search algorithms) or sets (torch's threads) is undone after it."""
    registries = [METRICS, COMBINATIONS, SEARCH_ALGOS, SPACES, TASKS]
    before = [set(r.names()) for r in registries]
    yield
    for registry, names in zip(registries, before):
        for name in set(registry.names()) - names:
            registry.unregister(name)
    torch.set_num_threads(_THREADS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test whose body reads ../shared/data through :func:`shared` carries the ``shared_data`` marker, so
    ``-m "not shared_data"`` selects exactly the tests that run on a machine without it."""
    for item in items:
        fn = getattr(item, "function", None)
        try:
            source = inspect.getsource(fn) if fn is not None else ""
        except (OSError, TypeError):
            continue
        if "shared(" in source or "NEEDS_SHARED" in source:
            item.add_marker(pytest.mark.shared_data)


def shared(path: str) -> Path:
    """A file under ../shared/data, or skip the test when it is absent."""
    full = SHARED / path
    if not full.exists():
        pytest.skip(f"shared data {full} is not on this machine")
    return full


def make_cfg(overrides: list[str], tmp_path: Path | None = None) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[SEARCHPATH, *overrides], return_hydra_config=False)
    if tmp_path is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.cache_dir = str(tmp_path / "cache")
    return cfg


#: quiet, fast settings for end-to-end runs: a small probe batch, CSV logging, no progress bar, one thread
QUIET = ["ntk.batch_size=8", "logger=csv", "task.progress=false", "threads=1"]
#: QUIET on six archs: a whole run on the default (the real NAS-Bench-201 on the shipped CIFAR-10 probe) in seconds
TINY = ["n_archs=6", *QUIET]


def python(*argv: str, env: dict[str, str] | None = None, timeout: float = 600,
           cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python *argv`` in the repository, as a user runs it (output captured as text): the one way tests run
    ntkexp's command lines (``cli`` for ``run.py``; ``-m ntkexp.data``, ``scripts/report.py`` through this)."""
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600,
        cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python run.py *args``."""
    return python(str(ROOT / "run.py"), *args, env=env, timeout=timeout, cwd=cwd)


def cli_started(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.Popen[str]:
    """``python run.py *args`` started in the background (for tests that signal it or run several at once)."""
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def tiny_cfg(tmp_path: Path) -> DictConfig:
    return make_cfg(TINY, tmp_path)


def nds_darts_records() -> list[dict]:
    """Four records in the published NDS JSON layout (one DARTS genotype at four width/depth settings, each with a
    test error curve): an NDS ``DARTS.json`` small enough for an end-to-end run."""
    from ntkexp.spaces.nds import parse_genotype

    geno = parse_genotype("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('max_pool_3x3', 0), "
                          "('dil_conv_3x3', 2), ('sep_conv_5x5', 1), ('avg_pool_3x3', 0), ('skip_connect', 2), "
                          "('sep_conv_3x3', 3)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
                          "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('avg_pool_3x3', 0), "
                          "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
    cells = {k: geno[k] for k in ("normal", "normal_concat", "reduce", "reduce_concat")}
    return [{"net": {"genotype": cells, "width": w, "depth": d}, "test_ep_top1": [60.0, 10.0 + w / 10]}
            for w, d in ((4, 2), (6, 2), (8, 2), (4, 3))]
