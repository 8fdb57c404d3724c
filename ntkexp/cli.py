"""The ``ntkexp`` command (``python run.py`` in a checkout): check the command line, compose with Hydra, run.

User errors (a missing file, an invalid arch, an unknown name, a data set that does not fit the space, an unusable
path) end a single run with one line on stderr, ``ntkexp: error: ...`` (also in ``run.log``), and exit status 2;
nothing half-written is left looking complete (every result file is written atomically, at the end), and a W&B run is
finished as failed.

In a sweep (``--multirun``) a failing job does not stop the others: it leaves a ``FAILED`` file in its directory
saying why (with the traceback of an unexpected error), every other job runs, and the sweep ends with exit status 1
and the list of failed jobs (:class:`SweepFailures`, a Hydra callback).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ntkexp.main import CONF_DIR, FAILED, USER_ERRORS, clear_earlier_results, log, run

#: top-level settings that take whole numbers (True: null too), checked in every value of a sweep before Hydra
#: composes the jobs (a bad value in a sweep's second job would otherwise fail deep inside Hydra)
WHOLE_NUMBERS = {"seed": False, "n_archs": True, "threads": True}


def group_options(conf_dir: Path, group: str) -> list[str]:
    """The options of config group ``group``: its YAML files (less the shared bases, ``_*``) and what the config
    store holds for it (the generated single-metric options)."""
    from hydra.core.config_store import ConfigStore

    files = {p.stem for p in (conf_dir / group).glob("*.yaml") if not p.stem.startswith("_")}
    try:
        stored = {n.removesuffix(".yaml") for n in ConfigStore.instance().list(group)}
    except (OSError, KeyError, ValueError):  # no such group in the store
        stored = set()
    return sorted(files | stored)


#: settings checked by what reads them (a space's, a simulated search's per-algorithm ones), added with ``++``
OPEN_SETTINGS = ("search_space.kwargs.", "task.algorithms.")


def open_settings(args: list[str]) -> list[str]:
    """``search_space.kwargs.<name>=...`` as ``++search_space.kwargs.<name>=...``: a space's settings are checked
    against the space when it is built (one line listing the settings it has), so Hydra's own "not in struct" with a
    '+' hint never comes first."""
    return [f"++{a}" if a.startswith(OPEN_SETTINGS) and "=" in a else a for a in args]


def _check_known_key(arg: str, key: str) -> None:
    """A top-level setting, or a setting of a fixed-schema group (trainer.lr, ntk.batch_size, ...), that the schema
    lacks: refused with the close known names (Hydra would suggest adding it with '+', which ntkexp then refuses)."""
    import dataclasses
    import difflib
    import typing

    from ntkexp.config import RunConfig

    hints = typing.get_type_hints(RunConfig)
    head, _, rest = key.partition(".")
    if not rest:
        known = [f.name for f in dataclasses.fields(RunConfig)]
    elif head in hints and dataclasses.is_dataclass(hints[head]) and "." not in rest and \
            head not in ("task", "metric", "search_space", "search_algo", "logger", "dataset"):  # open or per-option
        known = [f.name for f in dataclasses.fields(hints[head])]
        key = rest
    else:
        return
    if key in known:
        return
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    prefix = f"{head}." if rest else ""
    hint = f"; did you mean {' or '.join(prefix + c for c in close)}?" if close else \
        f"; the settings there: {', '.join(sorted(known))}"
    raise ValueError(f"{arg}: ntkexp has no setting {prefix}{key}{hint}")


#: Hydra's own flags that take a value (the value is not an override)
HYDRA_VALUE_FLAGS = {"-c", "--cfg", "-p", "--package", "-sc", "--shell-completion", "-cp", "--config-path", "-cn",
                     "--config-name", "-cd", "--config-dir", "--experimental-rerun", "-i", "--info"}


def overrides_of(args: list[str]) -> list[str]:
    """The overrides in a command line: Hydra's flags and the values they take left out (``-sc query=bash`` is a
    shell-completion query, not a setting ``query``)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
            if "=" not in arg or arg.split("=", 1)[0] in ("query", "install", "uninstall"):
                continue
        if arg in HYDRA_VALUE_FLAGS:
            skip = True
            continue
        if arg.startswith("-") and not arg.startswith(("+", "~")):
            continue
        out.append(arg)
    return out


def check_output_dirs(args: list[str]) -> None:
    """``hydra.run.dir`` / ``hydra.sweep.dir`` on a place this process cannot write (a read-only file system, no
    permission): one line before Hydra tries to create it (Hydra's own failure is a traceback)."""
    for arg in args:
        key, sep, value = arg.lstrip("+~").partition("=")
        if key not in ("hydra.run.dir", "hydra.sweep.dir") or not sep or "${" in value:
            continue
        place = Path(value).expanduser().absolute()
        while not place.exists() and place != place.parent:
            place = place.parent
        if place.is_dir() and not os.access(place, os.W_OK | os.X_OK):
            raise ValueError(f"{arg}: cannot create the run folder there: {place} is not writable (a read-only file "
                             "system or no permission); choose a folder you can write to")
        if place.exists() and not place.is_dir():
            raise ValueError(f"{arg}: {place} is a file, not a folder; choose another run folder")


def check_group_overrides(args: list[str], conf_dir: Path) -> None:
    """Refuse, with one line each, what Hydra would accept or fail on deep inside: a config-group override whose value
    is not an option name (``metric=[1,2]``), a shared base (``search_space=_nds``), and a key added with ``+``/``++``
    that the schema does not have (``+foo=1``; unknown keys are refused otherwise too)."""
    for arg in args:
        if arg.startswith("--"):
            continue
        key, sep, value = arg.lstrip("+~").partition("=")
        if key in WHOLE_NUMBERS and sep:
            for item in (v.strip() for v in value.split(",")):
                if not (item.lstrip("-").isdigit() or (WHOLE_NUMBERS[key] and item == "null")):
                    raise ValueError(f"{arg}: {item!r} is not a whole number ({key} takes whole numbers"
                                     f"{' or null' if WHOLE_NUMBERS[key] else ''}; comma-separate several to sweep "
                                     "with --multirun)")
        # a space's settings, a metric's own: checked against the space or the metric's settings when they are built
        settings = ".kwargs." in key or key.startswith(("metric.settings.", "task.algorithms."))
        if arg.startswith("+") and not key.startswith("hydra") and not settings and not (conf_dir / key).is_dir():
            raise ValueError(f"{arg}: ntkexp's config has no key {key!r} to add (every key is in the schema; "
                             "override an existing one without '+')")
        if key.startswith("task.") and sep:
            _check_task_setting(key, args, conf_dir)
        if key.startswith("search_algo.") and key.count(".") == 1 and sep:
            _check_algo_setting(key, args, conf_dir)
        if sep and not arg.startswith("+") and not key.startswith("hydra") and not settings and \
                not (conf_dir / key).is_dir():
            _check_known_key(arg, key)
        if key == "dataset.batch_size" and sep:  # one name for the training batch
            raise ValueError(f"{arg}: the training batch is set with trainer.batch_size (dataset.batch_size is only "
                             "the data set's default for it; the probe batch is ntk.batch_size)")
        group = conf_dir / key
        if not sep or not group.is_dir() or key == "hydra":
            continue
        options = group_options(conf_dir, key)
        if value.strip().startswith(("[", "{")) or not value.strip():
            raise ValueError(f"{key}={value}: a config group takes one option name (comma-separate several to "
                             f"sweep with --multirun); options: {', '.join(options)}")
        if any(v.strip().startswith("_") for v in value.split(",")):
            raise ValueError(f"{key}={value}: names starting with '_' are shared bases of other options, not options; "
                             f"options: {', '.join(options)}")
        searchpath = any(a.lstrip("+").startswith("hydra.searchpath") for a in args)  # a plug-in's own options
        unknown = [v.strip() for v in value.split(",") if v.strip() and v.strip() not in options]
        if unknown and not searchpath and key != "hydra/launcher" and "/" not in key:
            import difflib

            close = difflib.get_close_matches(unknown[0], options, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise ValueError(f"{key}={unknown[0]}: no such option{hint} (options: {', '.join(options)})")


def _chosen(args: list[str], group: str) -> list[str]:
    """The options of config group ``group`` a command line picks (several in a sweep; empty: not on it)."""
    for arg in reversed(args):
        key, sep, value = arg.lstrip("+~").partition("=")
        if key == group and sep:
            return [v.strip() for v in value.split(",") if v.strip()]
    return []


def _chosen_names(args: list[str], conf_dir: Path, group: str) -> list[str]:
    """The ``name`` of each ``group`` option a command line runs (several in a sweep), as Hydra composes it: the
    group's option(s) on the command line, else what the chosen experiment(s) pick, else the default. Composes the
    group and experiment choices only (a few tenths of a second; only when a setting needs checking, once per group)."""
    return list(_composed_names(tuple(args), conf_dir, group))


@functools.lru_cache(maxsize=None)
def _composed_names(args: tuple[str, ...], conf_dir: Path, group: str) -> tuple[str, ...]:
    from ntkexp.main import compose_config

    names = []
    for option in _chosen(list(args), group) or [None]:
        for experiment in _chosen(list(args), "experiment") or [None]:
            overrides = [f"{g}={v}" for g, v in ((group, option), ("experiment", experiment)) if v is not None]
            overrides += [a for a in args if a.lstrip("+").startswith("hydra.searchpath")]  # a plug-in's options
            try:
                cfg = compose_config(overrides, conf_dir)
            except Exception:  # an unknown option: Hydra refuses it with the list of options when it composes
                continue
            names.append(str(cfg[group].name))
    return tuple(dict.fromkeys(names))


def _check_algo_setting(key: str, args: list[str], conf_dir: Path) -> None:
    """Refuse, in one line, ``search_algo.<setting>=...`` that the chosen algorithm does not have (its schema would
    refuse it in several lines), naming its settings and the algorithms that have it."""
    import dataclasses
    import difflib

    from ntkexp.config import SearchAlgoConfig
    from ntkexp.search import SEARCH_ALGOS

    setting = key.split(".")[1]
    if setting in {f.name for f in dataclasses.fields(SearchAlgoConfig)}:
        return
    owners = [n for n in SEARCH_ALGOS if setting in SEARCH_ALGOS.get(n).own_settings]
    if not owners:
        every = sorted({f.name for n in SEARCH_ALGOS for f in dataclasses.fields(SEARCH_ALGOS.get(n).config)})
        close = difflib.get_close_matches(setting, every, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join('search_algo.' + c for c in close)}?" if close else ""
        raise ValueError(f"{key}: no search algorithm has a setting {setting}{hint}")
    for name in _chosen_names(args, conf_dir, "search_algo"):
        algo = SEARCH_ALGOS.get(name) if name in SEARCH_ALGOS else None
        if algo is not None and setting not in algo.own_settings:
            theirs = ", ".join(algo.own_settings) or "none beyond every algorithm's"
            raise ValueError(f"{key} is not a setting of search_algo={name} (its own settings: {theirs}); it is a "
                             f"setting of search_algo={' or '.join(owners)}")


def _check_task_setting(key: str, args: list[str], conf_dir: Path) -> None:
    """Refuse, in one line, ``task.<setting>=...`` for a task that has no such setting (Hydra would refuse it in
    several lines): a setting of another task does not apply."""
    from ntkexp.tasks import TASKS

    import dataclasses
    import difflib
    import typing

    parts = key.split(".")
    setting = parts[1]
    for name in _chosen(args, "task") or _chosen_names(args, conf_dir, "task"):
        if name not in TASKS:
            continue  # an unknown task is refused with the list of tasks
        own = TASKS.get(name).settings()
        if setting not in own:
            others = [t for t in TASKS if setting in TASKS.get(t).settings()]
            where = f"; it is a setting of task={' or '.join(others)}" if others else ""
            raise ValueError(f"{key} does not apply to task={name} (its settings: {', '.join(own)}){where}")
        group = typing.get_type_hints(TASKS.get(name).config).get(setting)
        if len(parts) == 3 and dataclasses.is_dataclass(group):  # task.simulated.<x>, task.prune.<x>
            known = [f.name for f in dataclasses.fields(group)]
            if parts[2] not in known:
                close = difflib.get_close_matches(parts[2], known, n=3, cutoff=0.6)
                hint = (f"; did you mean {' or '.join(f'task.{setting}.{c}' for c in close)}?" if close
                        else f"; its settings: {', '.join(known)}")
                raise ValueError(f"{key}: task={name} has no setting {setting}.{parts[2]}{hint}")


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN

def interrupted_note(cfg: DictConfig) -> str:
    """What an interrupted run kept: the scores committed to the cache (each arch's row is whole or absent)."""
    if not cfg.get("use_cache", True):
        return "the cache was off (use_cache=false): nothing was kept"
    import sqlite3

    from ntkexp.store import CACHE_FILE

    path = Path(cfg.paths.cache_dir) / CACHE_FILE
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0) as db:
            rows = int(db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
    except Exception:  # no cache yet, or one being written: say what is known
        return f"no score was kept yet in {path}"
    return (f"the score cache {path} holds {rows} scored arch(s); run the same command again to resume (archs "
            "already scored are read back, not computed again)")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, ``kill``), raised where the run is so that it unwinds as Ctrl-C does: the
    scores kept are committed, the W&B run is finished (as failed), one line says how to resume."""


def _terminate_like_ctrl_c() -> Any:
    """Make SIGTERM raise :class:`Terminated` in this (main) thread; returns the handler it replaced (None when
    signals cannot be set here, e.g. outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    return signal.signal(signal.SIGTERM, handler)


FILE_ONLY = "ntkexp_file_only"


class _NotOnConsole(logging.Filter):
    """Drops the records marked file-only from a console handler (their line is printed on stderr instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, FILE_ONLY, False)


def _console_skips_file_only() -> None:
    for handler in logging.getLogger().handlers + log.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) and \
                not any(isinstance(f, _NotOnConsole) for f in handler.filters):
            handler.addFilter(_NotOnConsole())


def run_cli(cfg: DictConfig) -> Any:
    """``run`` for the command line. A single run: user errors become one line and exit status 2, a run in which
    nothing scored one line and status 1, Ctrl-C one line and status 130. A sweep's job: any error is recorded in
    the job's ``FAILED`` file and the sweep goes on."""
    from omegaconf.errors import OmegaConfBaseException

    from ntkexp.registry import UnknownNameError
    from ntkexp.scoring import NothingScored

    # one line each: bad input (exit 2), and a run that failed as a whole for the reason its message names (exit 1)
    clean = (*USER_ERRORS, UnknownNameError, OmegaConfBaseException, NothingScored)
    job_dir = Path(cfg.paths.output_dir)
    (job_dir / FAILED).unlink(missing_ok=True)  # a job run again starts clean
    clear_earlier_results(job_dir)
    previous = _terminate_like_ctrl_c()
    logging.raiseExceptions = False  # a full disk under the run folder: no '--- Logging error ---' per log line
    _console_skips_file_only()
    try:
        return run(cfg)
    except KeyboardInterrupt as err:
        how = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        line = f"ntkexp: {how}; {interrupted_note(cfg)}"
        log.error(line, extra={FILE_ONLY: True})  # in run.log; the terminal gets it once, on stderr
        print(line, file=sys.stderr)
        sys.exit(143 if isinstance(err, Terminated) else 130)  # the shell's statuses for SIGTERM and Ctrl-C
    except Exception as err:
        line = f"ntkexp: error: {err}" if isinstance(err, clean) else f"ntkexp: error: {type(err).__name__}: {err}"
        log.error(line, extra={FILE_ONLY: not _in_sweep() and isinstance(err, clean)})
        if not _in_sweep():
            if not isinstance(err, clean):
                raise
            print(line, file=sys.stderr)
            sys.exit(1 if isinstance(err, NothingScored) else 2)
        import traceback

        job_dir.mkdir(parents=True, exist_ok=True)
        detail = "" if isinstance(err, clean) else "\n" + traceback.format_exc()
        (job_dir / FAILED).write_text(line.removeprefix("ntkexp: error: ") + "\n" + detail)
        return None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if _in_sweep() and os.environ.get(LEDGER_ENV):
            _note_job(Path(os.environ[LEDGER_ENV]), job_dir)


#: the environment variable naming a sweep's job list (set at the sweep's start, inherited by launcher workers)
LEDGER_ENV = "NTKEXP_SWEEP_LEDGER"
LEDGER = ".ntkexp-jobs"


def _note_job(ledger: Path, job_dir: Path) -> None:
    """Add a finished job's folder to its sweep's list (one appended line: several workers may write at once). A
    sweep over tasks puts its jobs in several folders (``outputs/<task>/multirun/...``); the list finds them all."""
    try:
        with open(ledger, "a") as fh:
            fh.write(f"{job_dir.absolute()}\n")
    except OSError as err:
        log.warning("could not note job %s in the sweep's list %s (%s)", job_dir, ledger, err)


def sweep_jobs(sweep: Path) -> list[Path]:
    """The job folders of the sweep rooted at ``sweep``: those its jobs noted, and its own subfolders."""
    ledger = sweep / LEDGER
    noted = [Path(line) for line in ledger.read_text().splitlines() if line.strip()] if ledger.is_file() else []
    own = [p.absolute() for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")] if sweep.is_dir() else []
    jobs = list(dict.fromkeys([*noted, *own]))
    return sorted(jobs, key=lambda p: (str(p.parent), len(p.name), p.name))


def summarise_sweep(jobs: list[Path]) -> list[Path]:
    """At a sweep's end: the report over seeds (``ntkexp-report``: ``report.md``, tables and figures) written into
    each folder holding its jobs, and its tables printed; returns the reports written. A report that cannot be made
    is a warning: the jobs' own results stand."""
    from ntkexp.report import write_report

    reports = []
    for folder in dict.fromkeys(j.parent for j in jobs):
        if not any(folder.rglob("summary.json")):
            continue
        try:
            report = write_report(folder)
        except Exception as err:  # noqa: BLE001 - a summary must never fail a finished sweep
            print(f"ntkexp: warning: no sweep report for {folder} ({type(err).__name__}: {err}); run ntkexp-report "
                  f"{folder} to retry", file=sys.stderr)
            continue
        reports.append(report)
        tables = [line for line in report.read_text().splitlines() if not line.startswith("![")]
        print("\n".join(tables).rstrip())
        print(f"sweep report: {report} (tables and figures beside it)")
    return reports


#: set once Hydra has composed the config and starts a run or sweep; Hydra's exit status 1 before that is a refused
#: config (bad settings), which the command line reports as ntkexp's own bad settings are, with status 2
COMPOSED = False


class SweepFailures(Callback):
    """Hydra callback: at the end of a sweep, write and print its report over seeds, list the jobs that failed (their
    ``FAILED`` files, wherever the jobs' folders are) and exit 1; and note that composition succeeded
    (:data:`COMPOSED`)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        global COMPOSED
        COMPOSED = True

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global COMPOSED
        COMPOSED = True
        sweep = Path(config.hydra.sweep.dir)
        for stale in sweep.glob(f"*/{FAILED}"):
            stale.unlink(missing_ok=True)
        sweep.mkdir(parents=True, exist_ok=True)
        (sweep / LEDGER).write_text("")
        os.environ[LEDGER_ENV] = str((sweep / LEDGER).absolute())

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        os.environ.pop(LEDGER_ENV, None)
        jobs = sweep_jobs(sweep)
        failed = [job for job in jobs if (job / FAILED).is_file()]
        summarise_sweep([job for job in jobs if job not in failed])
        if not failed:
            return
        print(f"ntkexp: error: {len(failed)} of {len(jobs)} sweep jobs failed:", file=sys.stderr)
        for job in failed:
            print(f"  {job}: {(job / FAILED).read_text().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


#: the config groups ``ntkexp --help`` lists, in the order a user meets them
HELP_GROUPS = ("task", "search_space", "metric", "dataset", "init", "bn_mode", "ntk", "trainer", "search_algo",
               "experiment", "logger")


def help_text(conf_dir: Path = CONF_DIR) -> str:
    """``ntkexp --help``: usage, every config group's options, where data, scores and runs go, examples. (Hydra's own
    help composes the config once per group, several seconds here; ``--hydra-help`` still shows it.)"""
    from ntkexp.places import user_place

    import textwrap

    groups = "\n".join(textwrap.fill(", ".join(group_options(conf_dir, g)), width=118, initial_indent=f"  {g:<13}",
                                      subsequent_indent=" " * 15) for g in HELP_GROUPS)
    return f"""usage: ntkexp [group=option ...] [key=value ...] [--multirun] [--cfg job] [--hydra-help]

Judge neural architectures with Neural-Tangent-Kernel metrics (a Hydra app). With no arguments: NTK metrics at
initialisation of 100 NAS-Bench-201 networks on the CIFAR-10 probe images that ship with ntkexp, ranked against the
benchmark's accuracy (Kendall tau, Spearman rho).

config groups (one option each; comma-separate several to sweep with --multirun):
{groups}

settings: seed, n_archs, archs, target (test|valid), threads, device, use_cache, plus each group's own keys
  (e.g. ntk.batch_size=64, trainer.lr=0.1, task.plot=false); `ntkexp --cfg job [overrides]` prints the composed config.

places: data sets and benchmark files in {user_place("data")} ($NTKEXP_DATA_ROOT), scores in
  {user_place("cache")} ($NTKEXP_CACHE_DIR), runs under ./outputs (hydra.run.dir).

examples:
  ntkexp search_space=nasbench201 metric=lga bn_mode=eval n_archs=1000
  ntkexp --multirun seed=0,1,2 metric=lga,ncn threads=1
  ntkexp experiment=lga_after_training_cpu
  ntkexp-report outputs/correlate/multirun/<date>/<time>
"""


def main() -> None:
    """The console command: ``ntkexp [overrides] [--multirun]`` from any folder (the config ships in the package)."""
    import hydra

    from ntkexp.main import register_schemas
    from ntkexp.registry import PluginError, load_plugins

    # OpenMP's threads sleep while they wait instead of spinning: a spinning thread on a core another process needs
    # (a sweep, a shared node) loses most of its time (scripts/bench_threads.py); set before torch loads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.argv[1:] = open_settings(sys.argv[1:])
    try:  # installed plug-ins first, so that their metrics' settings are in the schema's defaults
        load_plugins()
        register_schemas()
        if any(a in ("--help", "-h") for a in sys.argv[1:]):
            print(help_text(), end="")
            sys.exit(0)
        if not {"-sc", "--shell-completion"} & set(sys.argv[1:]):  # completion answers quietly, checks nothing
            check_group_overrides(overrides_of(sys.argv[1:]), CONF_DIR)
            check_output_dirs(overrides_of(sys.argv[1:]))
    except (PluginError, ValueError) as err:
        print(f"ntkexp: error: {err}", file=sys.stderr)
        sys.exit(2)
    app = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(run_cli)
    try:
        app()
    except SystemExit as done:
        if done.code == 1 and not COMPOSED:  # Hydra refused the config: bad settings, status 2 as ours
            sys.exit(2)
        raise
