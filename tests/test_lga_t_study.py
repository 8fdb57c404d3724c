"""The powered LGA_t study: the paired interval, the generated report (no claim its interval does not support, the
same section byte for byte), and the runner (sized to the machine, resumable without recomputing finished archs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ntkexp.report import lga_t
from ntkexp.stats import bootstrap_interval, paired_bootstrap_difference
from ntkexp.studies.lga_t import size_jobs
from tests.conftest import DIGITS, python


def synthetic_table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    """LGA: noisy at t = 0, nearly the accuracy at t = 196 (a real rise); NCN: the same scores at both t's but for
    a tiny jitter (no change); F-Norm: good at t = 0, noise at t = 196 (a real fall)."""
    rng = np.random.default_rng(seed)
    acc = rng.uniform(60, 95, n)
    shared = rng.normal(0, 10, n)
    rows = []
    for i in range(n):
        for step, lga, ncn, fnorm in ((0, acc[i] + rng.normal(0, 25), acc[i] + shared[i], acc[i] + rng.normal(0, 2)),
                                      (196, acc[i] + rng.normal(0, 2), acc[i] + shared[i] + rng.normal(0, 0.01),
                                       rng.normal(0, 1))):
            rows.append({"part": "per_sample", "bn_mode": "per_sample", "arch": f"a{i}", "order": i, "step": step,
                         "lga": lga, "ncn": ncn, "fnorm": fnorm, "mean": fnorm, "kernel_corr": 1.0 - step / 400,
                         "kernel_rel_diff": step / 400, "train_acc": 40.0, "accuracy": acc[i]})
    return pd.DataFrame(rows)


def test_paired_difference_agrees_with_scipy_and_is_narrower_than_two_separate_intervals() -> None:
    rng = np.random.default_rng(1)
    acc = rng.uniform(0, 1, 60)
    common = rng.normal(0, 0.5, 60)
    before, after = acc + common + rng.normal(0, 0.05, 60), acc + common + rng.normal(0, 0.05, 60) + 0.3 * acc
    point, lo, hi = paired_bootstrap_difference(before, after, acc, +1)
    direct = stats.kendalltau(after, acc).statistic - stats.kendalltau(before, acc).statistic
    assert point == pytest.approx(direct, abs=1e-12)
    assert lo <= point <= hi
    # the archs' shared difficulty cancels in the pair: narrower than either statistic's own interval
    a_lo, a_hi = bootstrap_interval(before, acc, +1)
    assert hi - lo < 0.5 * (a_hi - a_lo)
    # an orientation of -1 flips both statistics, hence the difference
    flipped = paired_bootstrap_difference(before, after, acc, -1)
    assert flipped[0] == pytest.approx(-point, abs=1e-12)


def test_paired_difference_refuses_unpaired_lengths() -> None:
    with pytest.raises(ValueError, match="one value per arch"):
        paired_bootstrap_difference(np.ones(5), np.ones(4), np.ones(5), +1)


def test_report_states_only_the_directions_its_paired_intervals_support(tmp_path: Path) -> None:
    table = synthetic_table()
    diffs = {d.metric: d for d in lga_t.differences(table)}
    assert diffs["lga"].lo > 0 and diffs["fnorm"].hi < 0
    assert diffs["ncn"].lo <= 0 <= diffs["ncn"].hi  # the jitter moves nothing
    text = lga_t.section(table, {"seed": 0, "device": "test", "commit": "x", "note": "synthetic"}, tmp_path, "f")
    assert "**LGA rises with training**" in text
    assert "**F-Norm falls with training**" in text
    assert "**NCN: no direction resolved**" in text
    assert "NCN rises" not in text and "NCN falls" not in text
    # what n a resolving interval would need, from its width
    assert "archs)." in text.split("**NCN: no direction resolved**")[1].splitlines()[0]
    assert (tmp_path / "lga_t_study_tau.png").stat().st_size > 1000
    assert (tmp_path / "lga_t_study_bands.png").stat().st_size > 1000


def test_the_guided_search_table_marks_only_the_differences_its_intervals_resolve() -> None:
    """Random search of 10 archs guided by each metric (Mok et al.'s Table 2 rows, on the study's archs): LGA nearly
    the accuracy at t = 196 finds better archs than noisy LGA at t = 0 (marked); NCN unchanged is not marked; the pick
    never beats the pool's best."""
    table = synthetic_table()
    lines = lga_t.search_table(table, "per_sample")
    head = lines[0]
    oracle = float(head.split("The pool's best (oracle): ")[1].split(" ")[0])
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in lines if line.startswith("| 196")}
    lga, ncn = rows["196"][0], rows["196"][1]
    assert "✱" in lga and float(lga.split("Δ ")[1].split(" ")[0]) > 0
    assert "✱" not in ncn and ncn.split("Δ ")[1].startswith(("+0.00", "-0.00"))
    assert float(lga.split(" ")[0]) <= oracle
    assert lga_t.search_table(synthetic_table(n=20), "per_sample") == []  # pools of 10 from 20 archs: too few


def test_a_difference_whose_interval_contains_zero_is_never_a_claim() -> None:
    for lo, hi, point in ((-0.01, 0.14, 0.067), (-0.3, -0.0, -0.1), (0.0, 0.2, 0.1)):
        d = lga_t.Difference("per_sample", "lga", 196, 179, 0.447, 0.513, point, lo, hi)
        assert not d.resolved
        assert "rises" not in d.sentence() and "falls" not in d.sentence()
    # the numbers: +.067 [-.010, +.144] over 179 archs needs about 1.3x the archs at that width
    d = lga_t.Difference("per_sample", "lga", 196, 179, 0.447, 0.513, 0.067, -0.010, 0.144)
    assert d.needed_archs() == int(np.ceil(179 * (0.077 / 0.067) ** 2))
    assert lga_t.Difference("per_sample", "lga", 196, 179, 0.4, 0.5, 0.1, 0.01, 0.2).resolved


def test_report_is_the_same_byte_for_byte_and_replaces_only_its_block(tmp_path: Path) -> None:
    table = synthetic_table(40, seed=3)
    path = tmp_path / "study.csv"
    table.to_csv(path, index=False)
    (tmp_path / "study.json").write_text(json.dumps({"seed": 0, "device": "d", "commit": "c", "note": "n"}))
    doc = tmp_path / "RESULTS.md"
    doc.write_text(f"# before\n\n{lga_t.BEGIN}\nold text\n{lga_t.END}\n\n# after\n")
    runs = []
    for _ in range(2):
        proc = python("scripts/report_lga_t.py", str(path), "--results", str(doc))
        assert proc.returncode == 0, proc.stderr
        runs.append(doc.read_text())
    assert runs[0] == runs[1]
    assert runs[0].startswith("# before\n\n" + lga_t.BEGIN) and runs[0].endswith(lga_t.END + "\n\n# after\n")
    assert "old text" not in runs[0]
    doc.write_text("# no markers\n")
    proc = python("scripts/report_lga_t.py", str(path), "--results", str(doc))
    assert proc.returncode == 2 and "markers" in proc.stderr and "Traceback" not in proc.stderr


def test_jobs_and_threads_never_oversubscribe_the_cores() -> None:
    assert size_jobs("cpu", 2, None, None) == (2, 1)
    assert size_jobs("cpu", 16, None, 2) == (8, 2)
    assert size_jobs("cuda", 16, None, None) == (8, 2)
    assert size_jobs("cuda", 4, None, None) == (4, 1)
    with pytest.raises(ValueError, match="oversubscribe"):
        size_jobs("cpu", 2, 2, 2)


@pytest.mark.slow
def test_the_study_resumes_without_recomputing_finished_archs(tmp_path: Path) -> None:
    out = tmp_path / "study"
    args = ["scripts/study_lga_t.py", "run", str(out), "--experiment", "none", "--archs", "6", "--steps", "0,1",
            "--train-archs", "0", "--chunk", "2", "--jobs", "1", "--", *DIGITS, "task=kernel_evolution",
            "task.select=sample", "ntk.batch_size=8", "trainer.epoch_steps=1"]
    first = python(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    table = pd.read_csv(out / "study.csv")
    assert table["arch"].nunique() == 6 and set(table["step"]) == {0, 1}
    assert json.loads((out / "study.json").read_text())["archs_done"] == {"per_sample": 6}
    # a chunk cut before its end (its table missing), the others finished
    runs = sorted((out / "per_sample").glob("chunk_*"))
    (runs[1] / "0" / "evolution.csv").unlink()
    untouched = (runs[0] / "run.out").stat().st_mtime_ns
    again = python(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(2 already done)" in again.stdout
    assert (runs[0] / "run.out").stat().st_mtime_ns == untouched  # a finished chunk is not run again
    summary = json.loads((runs[1] / "0" / "summary.json").read_text())
    assert summary["n_cached"] == 2  # its archs came from the score cache, nothing trained again
    # the same values (the resumed chunk's archs read from the cache say so in their own column)
    again_table = pd.read_csv(out / "study.csv")
    assert again_table["cached"].sum() == 4  # two archs x two t's
    pd.testing.assert_frame_equal(again_table.drop(columns="cached"), table.drop(columns="cached"))


def test_the_results_file_holds_every_generated_block() -> None:
    """scripts/report_lga_t.py, report_table55.py and report_tenas_prune.py rewrite their blocks of docs/RESULTS.md:
    the markers must be there, each once, in order."""
    from ntkexp.report import table55, tenas_prune
    from ntkexp.report.generated import markers, replace_block
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "RESULTS.md").read_text()
    for block in (lga_t.BLOCK, table55.BLOCK, tenas_prune.BLOCK):
        begin, end = markers(block)
        assert text.count(begin) == 1 and text.count(end) == 1 and text.index(begin) < text.index(end)
        assert replace_block(text, block, f"{begin}\nx\n{end}").count("\nx\n") == 1
