"""task=score: archs of any space scored with no benchmark installed; the design card's command without the NDS data
says in one line what is missing and points to it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ntkexp.main import run

from .conftest import QUIET, cli, make_cfg

CARD = ["search_space=nds_darts", "metric=ncn", "init=gaussian"]


@pytest.mark.parametrize("network", ["none", "download=false"])
def test_the_design_cards_command_without_the_nds_data_is_one_line_pointing_to_task_score(tmp_path: Path,
                                                                                          network: str) -> None:
    with socket.socket() as sock:  # a port nothing listens on: as good as no network, and quick
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    offline = ["download=true", f"download_mirror={dead}"] if network == "none" else ["download=false"]
    proc = cli(*CARD, *offline, "logger=none", f"paths.data_root={tmp_path / 'none'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1
    assert "benchmark ground truth not found" in proc.stderr and "task=score" in proc.stderr
    assert "https://dl.fbaipublicfiles.com/nds/data.zip" in proc.stderr  # the exact URL, for the manual way


def test_task_score_scores_nds_darts_archs_with_no_benchmark(tmp_path: Path) -> None:
    summary = run(make_cfg([*CARD, "task=score", "n_archs=3", "ntk.batch_size=8", "search_space.kwargs.C=4",
                            "search_space.kwargs.layers=2", "logger=csv", "task.progress=false", "threads=1",
                            f"paths.data_root={tmp_path / 'none'}"], tmp_path))
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    assert len(scores) == 3 == scores["arch"].nunique() and np.isfinite(scores["ncn"]).all()
    assert "accuracy" not in scores.columns
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["task"] == "score" and summary["n_archs"] == 3
    assert written["conventions"]["init"]["name"] == "gaussian" and "init gaussian" in written["convention"]
    assert written["conventions"]["ntk"]["bn_mode"] == "per_sample"


def test_score_and_correlate_draw_the_same_archs_for_the_same_seed(tmp_path: Path) -> None:
    """task=score and task=correlate with seed 3 drew different NB201 archs; now the same draw."""
    from ntkexp.main import run

    for task in ("score", "correlate"):
        run(make_cfg([f"task={task}", "seed=3", "n_archs=5", "metric=fnorm", *QUIET], tmp_path / task))
    score = pd.read_csv(tmp_path / "score" / "run" / "scores.csv")["arch"].tolist()
    correlate = pd.read_csv(tmp_path / "correlate" / "run" / "scores.csv")["arch"].tolist()
    assert score == correlate
