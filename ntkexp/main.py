"""Run one composed config: take the run directory, build the logger, dispatch to the task, always close the logger.

The command line around it (pre-checks, exit statuses, signals, sweep failures) is :mod:`ntkexp.cli`.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("ntkexp")

USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, NotImplementedError)
FAILED = "FAILED"


def _quiet_third_party() -> None:
    os.environ.setdefault("WANDB_SILENT", "true")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="lightning")


def run(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Execute ``cfg`` (a composed ntkexp config) and return the task's summary."""
    _quiet_third_party()
    from ntkexp.io import storage_error
    from ntkexp.registry import load_plugins
    from ntkexp.scoring import to_run_config

    load_plugins(list(cfg.get("plugins") or []))  # a user's own metrics, spaces, ... register themselves on import
    config = to_run_config(cfg)
    run_dir = Path(run_dir or config.paths.output_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only, forbidden or full place for results: one line naming it
        raise storage_error(err, run_dir, "create the run directory") or err from None
    lock = hold_run_dir(run_dir)  # two runs writing one folder would mix their files: the second is refused
    try:
        return _run_holding(cfg, config, run_dir)
    finally:
        lock.close()


def _run_holding(cfg: DictConfig, config: Any, run_dir: Path) -> dict[str, Any]:
    from ntkexp.loggers import DeferredLogger, build_logger, check_logger
    from ntkexp.scoring import RunContext
    from ntkexp.tasks import TASKS, RunOutput

    task = TASKS.get(config.task.name)
    task.check_space(config.search_space.name)
    task.check_search_algo(config.search_algo)
    check_logger(config.logger)
    ctx = RunContext.build(config, need_ground_truth=task.needs_ground_truth)
    try:
        # the dashboard run is created at the first thing logged: a config refused before that (bad settings,
        # missing data) creates no failed W&B / MLflow run
        resolved = OmegaConf.to_container(cfg, resolve=True)
        logger = DeferredLogger(run_dir, lambda: build_logger(config.logger, run_dir, resolved, config.name))
        exit_code = 1
        try:
            summary = task.run(ctx, RunOutput(run_dir, logger, ctx))
            exit_code = 0
        except USER_ERRORS:
            exit_code = 2  # the process's own status for bad input: the dashboard says the same
            raise
        finally:
            logger.finish(exit_code)  # every job ends its dashboard run (a failed one as failed)
    finally:
        ctx.close()
    log.info("results in %s", run_dir)
    return summary


RUN_LOCK = ".ntkexp-run.lock"


def hold_run_dir(run_dir: Path) -> Any:
    """Take ``run_dir`` for this run alone (an exclusive lock on a file in it, released when the process ends, however
    it ends); a folder another live run holds is refused in one line naming it and that run's process."""
    import fcntl

    path = run_dir / RUN_LOCK
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise ValueError(f"the run folder {run_dir} is in use by another live run (process {holder}); give this run "
                         f"its own folder (hydra.run.dir=...) or wait for that one to end") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


#: ntkexp's own config (installed with the package; ``conf/`` in a checkout links here)
CONF_DIR = Path(__file__).resolve().parent / "conf"


def compose_config(overrides: list[str], conf_dir: Path = CONF_DIR) -> DictConfig:
    """ntkexp's config composed with ``overrides``, as a run would be (outside a Hydra run; the schemas registered)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def register_schemas(conf_dir: Path = CONF_DIR) -> None:
    """Put the run schema and every task's settings schema into Hydra's config store (before composing), and the
    option ``metric=<name>`` of every metric of ntkexp's own that has no ``conf/metric/<name>.yaml`` (a YAML is only
    needed for a preset of several metrics or with settings; a plug-in's metric brings its own)."""
    from hydra.core.config_store import ConfigStore

    import ntkexp.tasks  # noqa: F401 - each task registers its settings schema (task_schema/<name>)
    from ntkexp.config import register_configs
    from ntkexp.metrics import METRICS

    register_configs()
    store = ConfigStore.instance()
    for name in METRICS:  # ntkexp's own (a plug-in's YAML may lie anywhere on the search path: it brings its own)
        if METRICS.get(name).fn.__module__.startswith("ntkexp.") and not (conf_dir / "metric" / f"{name}.yaml").exists():
            store.store(group="metric", name=name, node={"names": [name]})


EARLIER_RESULTS = ("summary.json", "metrics.jsonl", "*.csv", "*.png")


def clear_earlier_results(run_dir: Path) -> list[str]:
    """A run into a directory that holds an earlier run's results (its ``summary.json``) removes those result files
    first (named in the log), so that neither a mix of two runs nor, after a failure, the earlier run's
    complete-looking results are left there. Other files are not touched."""
    if not (run_dir / "summary.json").is_file():
        return []
    removed = sorted({p.name for pattern in EARLIER_RESULTS for p in run_dir.glob(pattern) if p.is_file()})
    for name in removed:
        (run_dir / name).unlink(missing_ok=True)
    log.warning("%s held an earlier run's results; removed them before this run: %s", run_dir, ", ".join(removed))
    return removed


