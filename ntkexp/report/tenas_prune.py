"""TE-NAS's pruning search in docs/RESULTS.md, generated from ``task=prune_search`` sweeps (each run folder's
``summary.json``): per sweep, the scale line (supernet, repeats, batch, init, BN, how weights and data are drawn, data
set, device, commit), the found arch of every seed with its accuracies, mean ± std with the standard error and n, the
published TE-NAS row (TEG-NAS's Table 2: 4 runs) and, per data set, the difference in standard errors of the
difference, a cell beyond 2 of them marked and listed with the departures of the run that can explain it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ntkexp.report.generated import markers
from ntkexp.stats import difference_in_se, mean_std_se

BLOCK = "tenas pruning (scripts/report_tenas_prune.py)"
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "ImageNet16-120": "ImageNet16-120"}
#: TEG-NAS (Chen et al.), Table 2, the TE-NAS row: mean (std) test accuracy over four runs with different seeds
PUBLISHED = {"cifar10": (93.9, 0.47), "cifar100": (71.24, 0.56), "ImageNet16-120": (42.38, 0.46)}
PUBLISHED_RUNS = 4


def load_sweep(sweep: Path) -> list[dict[str, Any]]:
    """The summaries of a sweep's finished runs, by seed; refused, naming the folder, when it holds none."""
    found = sorted(sweep.glob("*/summary.json")) or sorted(sweep.glob("summary.json"))
    summaries = [json.loads(p.read_text()) for p in found]
    summaries = [s for s in summaries if s.get("task") == "prune_search"]
    if not summaries:
        raise ValueError(f"{sweep} holds no finished task=prune_search run (no */summary.json)")
    return sorted(summaries, key=lambda s: int(s["config"]["seed"]))


def departures(summary: dict[str, Any]) -> list[str]:
    """How this run departs from TE-NAS's released protocol, read from its own summary."""
    cfg, out = summary["config"], []
    repeats = int(summary.get("repeats", 1))
    if repeats != 3:
        out.append(f"{repeats} repeat(s) per candidate (TE-NAS: 3)")
    if summary.get("weights", "per_repeat") != "per_round":
        out.append("each repeat re-initialised (the released code: one weight set per round)")
    if summary.get("batches", "per_repeat") != "per_call":
        out.append("fixed probe batches (the released code: a new augmented training batch per call)")
    data = cfg["dataset"]
    if data["name"] != "cifar10":
        out.append(f"images: {data.get('label') or data['name']} (the released code: CIFAR-10's 50,000 training "
                   "images)")
    if cfg["init"]["name"] != "default":
        out.append(f"init {cfg['init']['name']} (the released code runs PyTorch's default init)")
    out.append("the thin network of the linear regions drawn once per round (the released code: per candidate)")
    return out


def scale_line(summaries: list[dict[str, Any]]) -> str:
    s, cfg = summaries[0], summaries[0]["config"]
    seeds = [int(x["config"]["seed"]) for x in summaries]
    commits = sorted({x.get("versions", {}).get("ntkexp_commit", "not recorded") for x in summaries})
    seconds = [x["cost"]["score_seconds"] for x in summaries]
    init = cfg["init"]["name"] + (f" ({cfg['init']['mode']})" if cfg["init"]["name"] == "kaiming" else "")
    return (f"**Scale.** {s['supernet']}; pruned by {' + '.join(s['driving_metrics'])}, {s['repeats']} repeat(s) per "
            f"candidate; NTK: BN {cfg['ntk']['bn_mode']}, params {cfg['ntk']['params']}, batch "
            f"{cfg['ntk']['batch_size']}; init {init}; {s.get('protocol', 'weights and data per repeat')}; images: "
            f"{cfg['dataset'].get('label') or cfg['dataset']['name']}; {len(seeds)} seeds "
            f"({', '.join(map(str, seeds))}); {s['cost']['supernets_scored']} supernets scored per seed, "
            f"{np.median(seconds):.0f} s median per seed on {s['cost']['device']}; commit {', '.join(commits)}.")


def sweep_table(summaries: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The per-seed rows, the mean row and the paper's; and the cells beyond 2 standard errors, in sentences."""
    datasets = [d for d in DATASETS if d in summaries[0]["found"]["accuracy"]]
    head = ["seed", "found arch", *[DATASETS[d] for d in datasets]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        arch = s["found"]["arch"].replace("|", "\\|")
        lines.append(f"| {s['config']['seed']} | `{arch}` | "
                     + " | ".join(f"{s['found']['accuracy'][d]:.2f}" for d in datasets) + " |")
    cells, flagged = [], []
    searched = summaries[0]["config"]["dataset"].get("benchmark_key", "cifar10")
    for d in datasets:
        why = departures(summaries[0])
        if d != searched:  # TE-NAS's row for this column comes from a search on that data set's own images
            why.append(f"the arch was searched on {DATASETS.get(searched, searched)} images and only judged on "
                       f"{DATASETS[d]} (TE-NAS searches each data set on its own images)")
        mean, std, se, n = mean_std_se(np.array([s["found"]["accuracy"][d] for s in summaries], dtype=float))
        z = difference_in_se(mean, std, n, *PUBLISHED[d], PUBLISHED_RUNS)
        mark = f" ✱ ({z:+.1f} SE)" if np.isfinite(z) and abs(z) > 2 else (f" ({z:+.1f} SE)" if np.isfinite(z) else "")
        cells.append(f"**{mean:.2f} ± {std:.2f}** (SE {se:.2f}, n {n}){mark}")
        if mark.startswith(" ✱"):
            flagged.append(f"- **{DATASETS[d]}**: {mean:.2f} against the published {PUBLISHED[d][0]:.2f}, {z:+.1f} "
                           "standard errors of the difference. Departures of this run that can explain it: "
                           + "; ".join(why) + ".")
    lines.append("| mean ± std | | " + " | ".join(cells) + " |")
    lines.append("| TEG-NAS Table 2, TE-NAS (4 runs) | | "
                 + " | ".join(f"{PUBLISHED[d][0]:.2f} ± {PUBLISHED[d][1]:.2f}" for d in datasets) + " |")
    return lines, flagged


def section(sweeps: list[Path]) -> str:
    begin, end = markers(BLOCK)
    out = [begin, ""]
    for sweep in sweeps:
        summaries = load_sweep(sweep)
        lines, flagged = sweep_table(summaries)
        out += [scale_line(summaries), "", *lines, "",
                "(SE) in the mean row: the difference from the published mean in standard errors of the difference "
                "(our std and n, the paper's std over its 4 runs); ✱ beyond 2.", "",
                "**Beyond 2 standard errors**" + (":" if flagged else ": none (no column's mean differs from the "
                                                                    "published one by more than 2 standard errors of "
                                                                    "the difference)."), "",
                *flagged, "", "Departures from the released protocol that remain in this sweep: "
                + "; ".join(departures(summaries[0])) + ".", ""]
    out.append(end)
    return "\n".join(out) + "\n"


def collect(sweep: Path, dest: Path, commit: str | None = None) -> list[Path]:
    """Copy a sweep's finished runs (``summary.json``, ``prune_rounds.csv``) into ``dest/<seed>/`` (the folder the
    RESULTS block is generated from, committed with it), this machine's data, output and package folders replaced by
    their names. ``commit``: the code's commit for runs whose summary does not record one (said so)."""
    package = str(Path(__file__).resolve().parents[1])
    written = []
    for summary_path in sorted(sweep.glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        if summary.get("task") != "prune_search":
            continue
        if commit and "ntkexp_commit" not in summary.get("versions", {}):
            summary.setdefault("versions", {})["ntkexp_commit"] = f"{commit} (given when collected)"
        text = json.dumps(summary, indent=2)
        for name, folder in summary["config"].get("paths", {}).items():
            if folder:
                text = text.replace(str(folder).rstrip("/"), f"<paths.{name}>")
        text = re.sub(r'"[^"]*/ntkexp/resources/', '"<ntkexp>/resources/', text.replace(package, "<ntkexp>"))
        out = dest / str(summary["config"]["seed"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(text)
        rounds = summary_path.parent / "prune_rounds.csv"
        if rounds.exists():
            (out / "prune_rounds.csv").write_text(rounds.read_text())
        written.append(out)
    if not written:
        raise ValueError(f"{sweep} holds no finished task=prune_search run (no */summary.json)")
    return written


if __name__ == "__main__":  # python -m ntkexp.report.tenas_prune collect SWEEP DEST [COMMIT]
    import sys

    if len(sys.argv) not in (4, 5) or sys.argv[1] != "collect":
        sys.exit("usage: python -m ntkexp.report.tenas_prune collect SWEEP_DIR DEST_DIR [COMMIT]")
    for folder in collect(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] if len(sys.argv) == 5 else None):
        print(f"collected {folder}")
