"""The bad-input probes a new user tries on the command line (issue 39's rerun, kept cheap): each runs ``ntkexp`` in
this process with its arguments and must end in one clear line on stderr (``ntkexp: error: ...`` naming the thing
and what to do), the probe's exit status, and no traceback; none may exit 0 with something wrong. Probes that need
work before they can be refused (a data set, a benchmark) stay in the topic's own test file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ntkexp.cli import main

#: (arguments, exit status, text the error line must hold)
PROBES = [
    (["n_arch=3"], 2, "did you mean n_archs"),
    (["trainer.momentun=0.5"], 2, "did you mean trainer.momentum"),
    (["metric=[lga,ncn]"], 2, "a config group takes one option name"),
    (["search_space=_nds"], 2, "shared bases of other options"),
    (["+foo=1"], 2, "has no key 'foo' to add"),
    (["seed=abc"], 2, "'abc' is not a whole number"),
    (["--multirun", "seed=0,x"], 2, "'x' is not a whole number"),
    (["threads=0"], 2, "threads=0 must be a positive number"),
    (["target=best"], 2, "target='best' must be 'test' or 'valid'"),
    (["dataset.batch_size=64"], 2, "the training batch is set with trainer.batch_size"),
    (["search_space.kwargs.X=1"], 2, "is not a setting of the nasbench201 space; its settings: C, N"),
    (["task=simulated_search", "task.top_k=[0.1]"], 2, "task.top_k does not apply to task=simulated_search"),
    (["task=search", "search_algo=random", "search_algo.population_size=3"], 2,
     "search_algo.population_size is not a setting of search_algo=random"),
    (["task=search", "search_algo=rea", "search_algo.populaton_size=3"], 2, "did you mean search_algo.population_size"),
    (["task=search", "search_algo=reinforce", "search_algo.lr=nan"], 2, "search_algo.lr=nan is not a finite number"),
    (["task=search", "search_algo.budget_evals=null"], 2, "task=search needs a budget"),
    (["search_algo=rea"], 2, "search_algo.name='rea' does not apply: task=correlate runs no search algorithm"),
    (["task=simulated_search", "task.algorithms.rea.lr=0.1"], 2, "task.algorithms.rea: search algorithm rea has no "
                                                                 "setting 'lr'"),
    (["task=simulated_search", "task.simulated.budget_seconds=5"], 2,
     "did you mean task.simulated.budget_train_seconds"),  # its name before issue 41's rename
    (["task=search", "search_algo.budget_seconds=5"], 2, "did you mean search_algo.budget_score_seconds"),
    (["task=prune_search", "task.prune.zzz=1"], 2, "task=prune_search has no setting prune.zzz; its settings: C, N"),
    (["task=prune_search", "task.prune.weights=per_arch", "metric=cond"], 2, "task.prune.weights must be one of"),
    (["ntk.bn_mode=batch"], 2, "ntk bn_mode='batch' is not one of"),
    (["trainer.lr=-1"], 2, "trainer.lr must be a finite number > 0"),
    (["metric.train_epochs=-1"], 2, "metric.train_epochs must be >= 0"),
    (["n_archs=0"], 2, "n_archs"),
    (["archs=[bogus]"], 2, "bogus"),
    (["task=kernel_evolution"], 2, "needs a training set, but dataset=cifar10_probe holds only the probe images"),
    (["logger=comet"], 2, "logger=comet: no such option (options: csv, mlflow, none, tensorboard, wandb)"),
    (["metric=lgaa"], 2, "metric=lgaa: no such option; did you mean lga?"),
    (["--multirun", "metric=lga,ncnn"], 2, "metric=ncnn: no such option; did you mean ncn?"),
]


@pytest.mark.parametrize("args, status, text", PROBES, ids=[" ".join(p[0]) for p in PROBES])
def test_a_bad_command_line_is_one_clear_line(args: list[str], status: int, text: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    where = "hydra.sweep.dir" if "--multirun" in args else "hydra.run.dir"
    given = {a.split("=")[0] for a in args}
    quiet = [f"{k}={v}" for k, v in (("logger", "none"), ("n_archs", "3")) if k not in given]
    monkeypatch.setattr(sys, "argv", ["ntkexp", *args, f"{where}={tmp_path / 'run'}", "task.progress=false", *quiet])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main()
    out, err = capsys.readouterr()
    assert done.value.code == status, (err or out)[-1500:]
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("ntkexp: error: ") and text in lines[-1], err[-1500:]
    assert len(lines) == 1, err[-1500:]  # one line: the error, once
