"""The powered LGA_t study: many archs trained briefly, every NTK metric at every t, in parallel, resumable.

The archs are a fixed seeded order of the benchmark's archs (so 200 archs extend 100), split into chunks; each chunk
is one ``task=kernel_evolution`` run (``archs_file=`` the chunk) and N workers take chunks from one queue. All runs
share one score cache and one folder of kept training states, so:

* a part that needs trained networks (the exact train-mode NTK at t = 196, the ladder to t = 588) continues from the
  states the per-sample part kept, and waits for the chunk that keeps them;
* a killed study resumes where it stopped: a finished chunk is skipped (its ``evolution.csv`` exists), a chunk cut
  in the middle recomputes nothing its finished archs hold (the score cache) and resumes an arch's training from its
  latest kept state.

Parts (each optional, each its own BN mode and t's): ``per_sample`` (every arch), ``train`` (the exact train-mode NTK
on the first ``train_archs`` archs, the same kept networks), ``ladder`` (more steps on the first ``ladder_archs``).
``table`` gathers every finished chunk into one per-arch table (``study.csv``: part, BN mode, arch, t in steps, every
metric, the kernel's change, train accuracy, the benchmark accuracy) and ``study.json`` (what was run, where, at what
cost per arch). The report (:mod:`ntkexp.report.lga_t`) reads only that table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ntkexp.places import source_commit

ROOT = Path(__file__).resolve().parents[2]
DONE_FILE = "evolution.csv"


@dataclass(frozen=True)
class Part:
    """One part of the study: its archs (the first ``n_archs`` of the order), BN mode and t's (in steps)."""

    name: str
    n_archs: int
    bn_mode: str
    steps: tuple[int, ...]
    needs: str | None = None  # the part whose kept training states it reads (its chunks must be done first)


@dataclass
class Plan:
    out: Path
    parts: list[Part]
    overrides: list[str]
    jobs: int
    threads: int
    device: str
    chunk: int
    seed: int = 0
    archs: list[str] = field(default_factory=list)


def machine_size(device: str) -> tuple[str, int]:
    """('cuda' | 'cpu', CPU cores this process may use)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return device, cores


def size_jobs(device: str, cores: int, jobs: int | None, threads: int | None) -> tuple[int, int]:
    """N parallel runs and threads per run, so that jobs x threads never exceeds the cores. On a CPU one thread per
    job (measured: OpenMP's spinning threads lose most of their time when the cores are shared); on a GPU, 8
    processes share it (the measured sweet spot on an H200) and split the cores for their data and NTK work."""
    if jobs is None:
        jobs = min(8, cores) if device == "cuda" else max(1, cores // (threads or 1))
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: at least one job")
    if threads is None:
        threads = max(1, cores // jobs)
    if jobs * threads > cores:
        raise ValueError(f"--jobs {jobs} x --threads {threads} = {jobs * threads} threads on {cores} cores would "
                         f"oversubscribe them; lower one of the two")
    return jobs, threads


def compose(overrides: list[str]) -> Any:
    """The composed config of the study's runs (to draw the archs from their benchmark)."""
    from ntkexp.main import compose_config, register_schemas

    register_schemas()
    return compose_config(overrides)


def arch_order(overrides: list[str], seed: int, n: int) -> list[str]:
    """The first ``n`` of a seeded permutation of the benchmark's archs that have the target accuracy (the same
    order for every n, so a larger study extends a smaller one)."""
    import numpy as np

    from ntkexp.scoring import RunContext

    ctx = RunContext.build(compose([*overrides, f"paths.output_dir={ROOT / 'outputs'}"]))
    try:
        available = ctx.require_ground_truth().scored_archs(ctx.accuracy_key)
    finally:
        ctx.close()
    if n > len(available):
        raise ValueError(f"{n} archs asked for, the benchmark has {len(available)}")
    order = np.random.default_rng(seed).permutation(len(available))
    return [available[i] for i in order[:n]]


@dataclass
class Chunk:
    part: Part
    index: int
    archs: list[str]

    def dir(self, out: Path) -> Path:
        return out / self.part.name / f"chunk_{self.index:03d}"

    def done(self, out: Path) -> bool:
        return (self.dir(out) / "0" / DONE_FILE).exists()


def chunks_of(plan: Plan) -> list[Chunk]:
    out = []
    for part in plan.parts:
        archs = plan.archs[:part.n_archs]
        groups = [archs[i:i + plan.chunk] for i in range(0, len(archs), plan.chunk)]
        if len(groups) > 1 and len(groups[-1]) < 2:  # a run needs 2 archs (a rank correlation): join the last one
            groups[-2:] = [groups[-2] + groups[-1]]
        out += [Chunk(part, i, group) for i, group in enumerate(groups)]
    return out


def command(plan: Plan, chunk: Chunk) -> list[str]:
    run_dir = chunk.dir(plan.out)
    archs_file = run_dir / "archs.txt"
    steps = ",".join(str(s) for s in chunk.part.steps)
    return [sys.executable, str(ROOT / "run.py"), *plan.overrides, f"archs_file={archs_file}",
            f"task.track_epochs=[{steps}]", f"bn_mode={chunk.part.bn_mode}", f"threads={plan.threads}",
            f"device={plan.device}", f"paths.cache_dir={plan.out / 'cache'}", f"hydra.sweep.dir={run_dir}",
            f"hydra.run.dir={run_dir / '0'}",
            "logger=csv", "task.progress=false", "task.plot=false", f"name=lga_t-{chunk.part.name}-{chunk.index}"]


def run_chunk(plan: Plan, chunk: Chunk) -> tuple[bool, float, str]:
    """Run one chunk (its output and log in its folder); (ok, seconds, last line of its log)."""
    run_dir = chunk.dir(plan.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "archs.txt").write_text("\n".join(chunk.archs) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": str(plan.threads), "MKL_NUM_THREADS": str(plan.threads),
           "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    start = time.perf_counter()
    with open(run_dir / "run.out", "w") as log:
        proc = subprocess.Popen(command(plan, chunk), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        with _LOCK:
            _CHILDREN.add(proc)
        try:
            rc = proc.wait()
        finally:
            with _LOCK:
                _CHILDREN.discard(proc)
    seconds = time.perf_counter() - start
    lines = (run_dir / "run.out").read_text(errors="replace").strip().splitlines()
    ok = rc == 0 and chunk.done(plan.out)
    if ok:
        cached = _cached_count(run_dir / "0")
        (run_dir / "timing.json").write_text(json.dumps({"seconds": seconds, "archs": len(chunk.archs),
                                                         "computed": len(chunk.archs) - cached,
                                                         "jobs": plan.jobs, "threads": plan.threads,
                                                         "commit": _commit()}))
    return ok, seconds, lines[-1] if lines else f"exit status {rc}"


_CHILDREN: set[subprocess.Popen[bytes]] = set()
_LOCK = threading.Lock()


def _stop_children(signum: int, frame: Any) -> None:
    """Ctrl-C / SIGTERM: end the runs in flight (each keeps what it finished in the cache) and stop."""
    with _LOCK:
        for proc in _CHILDREN:
            proc.send_signal(signal.SIGTERM)
    raise KeyboardInterrupt


def _cached_count(run_dir: Path) -> int:
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return 0
    return int(summary.get("n_cached", 0) or 0)


def run_plan(plan: Plan, say: Any = print) -> list[str]:
    """Run every chunk not yet done, ``plan.jobs`` at a time, a chunk only once the chunks it reads are done;
    returns the failures (one line each)."""
    pending = [c for c in chunks_of(plan) if not c.done(plan.out)]
    total, done_before = len(chunks_of(plan)), len(chunks_of(plan)) - len(pending)
    say(f"lga_t study: {total} chunks ({done_before} already done), {plan.jobs} jobs x {plan.threads} threads on "
        f"{plan.device}, results in {plan.out}")
    lock = threading.Lock()
    failures: list[str] = []
    running: set[tuple[str, int]] = set()
    started = time.perf_counter()
    finished = 0

    every = chunks_of(plan)

    def needed(c: Chunk) -> list[Chunk]:  # the chunks that keep the training states ``c`` reads
        return [d for d in every if d.part.name == c.part.needs and set(d.archs) & set(c.archs)]

    def ready(c: Chunk) -> bool:
        return all(d.done(plan.out) for d in needed(c))

    def blocked_forever(c: Chunk) -> bool:  # what it needs failed or is not in the queue any more
        names = {(d.part.name, d.index) for d in pending}
        return any(not d.done(plan.out) and (d.part.name, d.index) not in names | running for d in needed(c))

    def worker() -> None:
        nonlocal finished
        while True:
            with lock:
                chunk = next((c for c in pending if ready(c)), None)
                if chunk is None:
                    stuck = [c for c in pending if blocked_forever(c)]
                    for c in stuck:
                        pending.remove(c)
                        failures.append(f"{c.part.name} chunk {c.index}: skipped, the {c.part.needs} chunk it "
                                        f"reads failed")
                    if not pending:
                        return
                else:
                    pending.remove(chunk)
                    running.add((chunk.part.name, chunk.index))
            if chunk is None:
                time.sleep(1.0)
                continue
            ok, seconds, last = run_chunk(plan, chunk)
            with lock:
                running.discard((chunk.part.name, chunk.index))
                finished += 1
                if not ok:
                    failures.append(f"{chunk.part.name} chunk {chunk.index} ({chunk.dir(plan.out)}): {last}")
                elapsed = time.perf_counter() - started
                left = len(pending) + len(running)
                eta = elapsed / finished * left / max(1, plan.jobs) * min(plan.jobs, max(1, left)) if finished else 0
                say(f"  {'done' if ok else 'FAILED'} {chunk.part.name} chunk {chunk.index} "
                    f"({len(chunk.archs)} archs, {seconds:.0f} s); {done_before + finished}/{total} chunks, "
                    f"{elapsed / 60:.1f} min so far, about {eta / 60:.0f} min left")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(plan.jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def gather(plan: Plan) -> tuple[Any, dict[str, Any]]:
    """(the per-arch table of every finished chunk, what was run: for ``study.csv`` / ``study.json``)."""
    import numpy as np
    import pandas as pd

    frames, timings, notes, commits = [], {}, {}, []
    for c in chunks_of(plan):
        if not c.done(plan.out):
            continue
        frame = pd.read_csv(c.dir(plan.out) / "0" / DONE_FILE)
        frame.insert(0, "part", c.part.name)
        frame.insert(1, "bn_mode", c.part.bn_mode)
        frames.append(frame)
        timing = c.dir(plan.out) / "timing.json"
        if timing.exists():
            record = json.loads(timing.read_text())
            timings.setdefault(c.part.name, record)
            commits.append(record.get("commit", "unknown"))
        if c.part.name not in notes:
            try:
                notes[c.part.name] = json.loads((c.dir(plan.out) / "0" / "summary.json").read_text())["note"]
            except (OSError, ValueError, KeyError):
                pass
    if not frames:
        raise ValueError(f"no chunk of the study in {plan.out} has finished yet")
    table = pd.concat(frames, ignore_index=True)
    order = {a: i for i, a in enumerate(plan.archs)}
    table.insert(3, "order", table["arch"].map(order))
    table = table.sort_values(["part", "order", "step"], kind="stable").reset_index(drop=True)
    cost = {}
    for name, part in table.groupby("part"):
        per_arch = part.groupby("arch").first()
        computed = per_arch[~per_arch["cached"].astype(bool)]["seconds"] if "cached" in per_arch else []
        if len(computed) and name in timings:
            cost[name] = {"median_seconds": float(np.median(computed)), "archs_timed": int(len(computed)),
                          "jobs": timings[name]["jobs"], "threads": timings[name]["threads"]}
    first = notes.get("per_sample") or next(iter(notes.values()), "")
    note = first.rsplit(" | ", 1)[0] if first.endswith(" archs") else first
    for o in plan.overrides:  # the data folder is this machine's: name it by its setting
        if o.startswith("paths.data_root="):
            note = note.replace(o.split("=", 1)[1].rstrip("/"), "<paths.data_root>")
    return table, {"cost": cost, "note": note, "chunk_commits": sorted(set(commits), key=commits.index)}


def _commit() -> str:
    return source_commit(dirty=False)


def provenance(plan: Plan) -> dict[str, Any]:
    import torch

    commit = _commit()
    if plan.device == "cuda":
        device = f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    else:
        device = f"{machine_size('cpu')[1]} CPU cores, {platform.processor() or platform.machine()} " \
                 f"(torch {torch.__version__})"
    return {"commit": commit, "device": device, "overrides": plan.overrides, "seed": plan.seed,
            "jobs": plan.jobs, "threads": plan.threads, "chunk": plan.chunk,
            "parts": [asdict(p) for p in plan.parts]}


def write_table(plan: Plan, to: Path | None = None) -> Path:
    table, extra = gather(plan)
    to = to or plan.out / "study.csv"
    to.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(to, index=False, float_format="%.8g")
    meta = {**provenance(plan), **extra,
            "archs_done": {p: int(table[table.part == p]["arch"].nunique()) for p in table["part"].unique()}}
    to.with_suffix(".json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return to


def parse_parts(args: argparse.Namespace) -> list[Part]:
    steps = tuple(sorted({0, *[int(s) for s in args.steps.split(",")]}))
    parts = [Part("per_sample", args.archs, "per_sample", steps)]
    if args.train_archs:
        train_steps = tuple(sorted({0, *[int(s) for s in args.train_steps.split(",")]}))
        parts.append(Part("train", min(args.train_archs, args.archs), "train", train_steps, needs="per_sample"))
    if args.ladder_archs:
        ladder = tuple(sorted({0, *[int(s) for s in args.ladder_steps.split(",")]}))
        parts.append(Part("ladder", min(args.ladder_archs, args.archs), "per_sample", ladder, needs="per_sample"))
    for part in parts:
        if part.n_archs < 2:
            raise ValueError(f"part {part.name}: {part.n_archs} archs; a rank correlation needs at least 2")
        if min(part.steps) < 0:
            raise ValueError(f"part {part.name}: steps must be >= 0, got {part.steps}")
    return parts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="study_lga_t.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Extra Hydra overrides go after --, e.g. -- paths.data_root=../shared/data")
    p.add_argument("command", choices=["run", "table", "plan"], help="run (and gather), gather only, or print the plan")
    p.add_argument("out", type=Path, help="the study's folder (its cache, kept states, chunks, study.csv)")
    p.add_argument("--archs", type=int, default=100, help="archs of the per-sample part (default 100)")
    p.add_argument("--steps", default="0,19,196", help="t in optimiser steps of the per-sample part")
    p.add_argument("--train-archs", type=int, default=40, help="first archs also measured with the exact "
                   "train-mode NTK (0: none)")
    p.add_argument("--train-steps", default="0,196", help="t of the train-mode part")
    p.add_argument("--ladder-archs", type=int, default=0, help="first archs trained on to --ladder-steps (0: none)")
    p.add_argument("--ladder-steps", default="588", help="t of the ladder part (continues from the kept states)")
    p.add_argument("--experiment", default="lga_after_training_cpu", help="the protocol (an experiment= config; none: only the overrides after --)")
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--jobs", type=int, default=None, help="parallel runs (default: sized to the machine)")
    p.add_argument("--threads", type=int, default=None, help="threads per run (default: cores / jobs)")
    p.add_argument("--chunk", type=int, default=4, help="archs per run (a finished run is never repeated)")
    p.add_argument("--seed", type=int, default=0, help="the arch order's seed")
    p.add_argument("--to", type=Path, default=None, help="table: where to write the table (default OUT/study.csv)")
    args, extra = p.parse_known_args(argv)
    extra = [e for e in extra if e != "--"]
    try:
        device, cores = machine_size(args.device)
        jobs, threads = size_jobs(device, cores, args.jobs, args.threads)
        parts = parse_parts(args)
        if args.chunk < 2:
            raise ValueError(f"--chunk {args.chunk}: each run needs at least 2 archs (it rank-correlates them)")
        overrides = [*([f"experiment={args.experiment}"] if args.experiment != "none" else []),
                     f"paths.data_root={args.data_root}", f"seed={args.seed}", *extra]
        out = args.out.resolve()
        plan = Plan(out, parts, overrides, jobs, threads, device, args.chunk, args.seed)
        n = max(part.n_archs for part in parts)
        plan.archs = study_archs(plan, n)
        if args.command == "plan":
            for c in chunks_of(plan):
                print(("done " if c.done(out) else "todo ") + " ".join(command(plan, c)))
            return 0
        if args.command == "run":
            signal.signal(signal.SIGTERM, _stop_children)
            signal.signal(signal.SIGINT, _stop_children)
            try:
                failures = run_plan(plan)
            except KeyboardInterrupt:
                print(f"study_lga_t: stopped; run the same command again to resume (finished chunks and the "
                      f"archs in {out / 'cache'} are kept)", file=sys.stderr)
                return 130
            if failures:
                print("failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        else:
            failures = []
        path = write_table(plan, args.to)
        print(f"table: {path} (and {path.with_suffix('.json').name})")
        return 1 if failures else 0
    except (ValueError, OSError) as err:
        print(f"study_lga_t: error: {err}", file=sys.stderr)
        return 2


def study_archs(plan: Plan, n: int) -> list[str]:
    """The study's arch order, drawn once and kept in ``archs.txt`` (a rerun with more archs extends it; with other
    settings that would draw another order, refused)."""
    plan.out.mkdir(parents=True, exist_ok=True)
    kept = plan.out / "archs.txt"
    meta = plan.out / "archs.json"
    key = {"overrides": [o for o in plan.overrides if not o.startswith("paths.")], "seed": plan.seed}
    if kept.exists() and meta.exists():
        old = json.loads(meta.read_text())
        if old["key"] != key:
            raise ValueError(f"{plan.out} holds a study drawn with other settings ({old['key']}); use another folder")
        archs = kept.read_text().split()
        if len(archs) >= n:
            return archs[:n]
    archs = arch_order(plan.overrides, plan.seed, n)
    kept.write_text("\n".join(archs) + "\n")
    meta.write_text(json.dumps({"key": key, "n": n}))
    return archs


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
