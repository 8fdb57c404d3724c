"""The report machinery: the registry of task sections, collecting a sweep's summaries, writing the report."""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd
import yaml

from ntkexp.io import atomic_write
from ntkexp.registry import Registry

RowsFn = Callable[[dict[str, Any], dict[str, Any]], list[dict[str, Any]]]
SectionFn = Callable[[pd.DataFrame, Path], list[str]]


@dataclass(frozen=True)
class ReportSection:
    """How a task's jobs appear in a sweep report: ``rows(summary, base)`` turns one job's summary into tidy rows
    (``base`` holds the job's group, seed and directory); ``section(rows, out_dir)`` returns the report's Markdown
    lines for all of them, writing its figures and tables to ``out_dir``."""

    task: str
    rows: RowsFn
    section: SectionFn


SECTIONS: Registry[ReportSection] = Registry("report section")


def register_section(task: str, rows: RowsFn) -> Callable[[SectionFn], SectionFn]:
    """Register ``section(frame, out_dir) -> lines`` with ``rows`` as task ``task``'s part of a sweep report."""

    def wrap(section: SectionFn) -> SectionFn:
        SECTIONS.register(task, ReportSection(task, rows, section))
        return section

    return wrap


def _overrides(job_dir: Path) -> dict[str, str]:
    """The job's command-line overrides (key -> value), less the seed and hydra's own."""
    path = job_dir / ".hydra" / "overrides.yaml"
    items = (yaml.safe_load(path.read_text()) or []) if path.exists() else []
    pairs = dict(o.split("=", 1) for o in items if "=" in o)
    return {k: v for k, v in pairs.items() if k != "seed" and not k.startswith("hydra")}


def _group_labels(jobs: list[Path]) -> dict[Path, str]:
    """Each job's group: the overrides whose values differ between the sweep's jobs (the seed excluded)."""
    per_job = {job: _overrides(job) for job in jobs}
    keys = sorted({k for o in per_job.values() for k in o})
    varying = [k for k in keys if len({o.get(k) for o in per_job.values()}) > 1]
    return {job: " ".join(f"{k}={o.get(k, '-')}" for k in varying) or "all" for job, o in per_job.items()}


def collect(sweep_dir: Path) -> dict[str, pd.DataFrame]:
    """Tidy per-job rows for each task found under ``sweep_dir``."""
    rows: dict[str, list[dict[str, Any]]] = {}
    paths = sorted(sweep_dir.rglob("summary.json"))
    labels = _group_labels([p.parent for p in paths])
    for summary_path in paths:
        summary = json.loads(summary_path.read_text())
        task = summary.get("task")
        if task not in SECTIONS:
            continue
        job = summary_path.parent
        base = {"group": labels[job], "seed": summary.get("config", {}).get("seed"), "job": str(job)}
        rows.setdefault(task, []).extend(SECTIONS.get(task).rows(summary, base))
    return {task: pd.DataFrame(r) for task, r in rows.items() if r}


def write_report(sweep_dir: Path, out_dir: Path | None = None, title: str | None = None) -> Path:
    """Write ``report.md``, per task ``<task>_jobs.csv`` and its section's tables and PNG figures into ``out_dir``
    (default: the sweep directory); returns the report's path."""
    if not sweep_dir.is_dir():
        raise ValueError(f"{sweep_dir} is not a directory")
    out_dir = out_dir or sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = collect(sweep_dir)
    if not tables:
        raise ValueError(f"no job summaries (summary.json) under {sweep_dir}")
    parts = [f"# {title or 'ntkexp report'}", "", f"Sweep: `{sweep_dir}`", ""]
    for task, frame in tables.items():
        with atomic_write(out_dir / f"{task}_jobs.csv") as tmp:
            frame.to_csv(tmp, index=False)
        parts += SECTIONS.get(task).section(frame, out_dir)
    report = out_dir / "report.md"
    with atomic_write(report) as tmp:
        tmp.write_text("\n".join(parts) + "\n")
    return report
