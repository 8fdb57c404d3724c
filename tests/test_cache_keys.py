"""Cache-key completeness: every setting that changes a score recomputes it; settings that do not (threads, logger)
read the cached score. Each case scores one arch twice on one score cache, the second time with one setting
changed, and checks whether the second score was computed or read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from ntkexp.scoring import ArchScorer, RunContext

from .conftest import DIGITS, make_cfg

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|"
BASE = [*DIGITS, "ntk.batch_size=8", "logger=csv", "threads=1", "metric=ntk", "dataset.train_subset=128",
        "trainer.batch_size=32"]
TRAINED = ["metric.train_epochs=1", "trainer.epoch_steps=2", "trainer.precision=32-true"]

# (base extra, the changed setting): each changes what is computed
CHANGES_THE_SCORE = {
    "init": ([], "init=gaussian"),
    "init std": (["init=gaussian"], "init.std=0.5"),
    "bn mode": ([], "bn_mode=eval"),
    "reduction": ([], "ntk.reduction=trace"),
    "logit": (["ntk.reduction=logit"], "ntk.logit_index=3"),
    "parameter subset": ([], "ntk.params=weights"),
    "dtype": ([], "ntk.dtype=float64"),
    "probe batch": ([], "ntk.batch_size=12"),
    "seed": ([], "seed=1"),
    "network width": ([], "search_space.kwargs.C=4"),
    "probe images": ([], "dataset.train_subset=100"),
    "normalisation": ([], "dataset.mean=[0.2]"),
    "repeats": ([], "metric.repeats=2"),
    "gradsign params": (["metric=gradsign"], "metric.settings.gradsign.params=all"),
    "gradsign bn": (["metric=gradsign"], "metric.settings.gradsign.bn_mode=eval"),
    "linear regions inputs": (["metric=linear_regions", "metric.settings.linear_regions.inputs=20"],
                              "metric.settings.linear_regions.inputs=30"),
    "epochs trained": (TRAINED, "metric.train_epochs=2"),
    "training precision": (TRAINED, "trainer.precision=bf16-mixed"),
    "steps per epoch": (TRAINED, "trainer.epoch_steps=3"),
    "learning rate": (TRAINED, "trainer.lr=0.05"),
    "optimiser": (TRAINED, "trainer.optimizer=rmsprop"),
    "training batch": (TRAINED, "trainer.batch_size=16"),
    "augmentation": (TRAINED, "dataset.crop_padding=2"),
    "memory format": (TRAINED, "trainer.channels_last=false"),
}
# settings that do not change a score: the cached one is read back
KEEPS_THE_SCORE = {
    "threads": ([], "threads=2"),
    "NTK memory chunks": ([], "ntk.chunk_size=3"),  # a memory setting: recorded, not part of the key
    "NTK implementation": (["bn_mode=eval"], "ntk.implementation=batched_vjp"),  # the same kernel, another way
    "logger": ([], "logger=none"),
    "progress": ([], "task.progress=false"),
    "accelerator named or auto": (TRAINED, "trainer.accelerator=cpu"),
}


def _score(tmp_path: Path, overrides: list[str]) -> bool:
    """Score ARCH on the shared cache under tmp_path; True when it was read from the cache."""
    ctx = RunContext.build(make_cfg(BASE + overrides, tmp_path), need_ground_truth=False)
    return ArchScorer(ctx).score(ARCH).cached


@pytest.mark.parametrize("case", sorted(CHANGES_THE_SCORE))
def test_a_setting_that_changes_the_score_recomputes_it(tmp_path: Path, case: str) -> None:
    base, change = CHANGES_THE_SCORE[case]
    assert not _score(tmp_path, base)
    assert _score(tmp_path, base)  # the same settings read it back
    assert not _score(tmp_path, [*base, change]), f"{change} returned the cached score of {base or 'the defaults'}"


@pytest.mark.parametrize("case", sorted(KEEPS_THE_SCORE))
def test_a_setting_that_does_not_change_the_score_reads_the_cache(tmp_path: Path, case: str) -> None:
    base, change = KEEPS_THE_SCORE[case]
    assert not _score(tmp_path, base)
    assert _score(tmp_path, [*base, change])


def test_the_keys_cached_before_chunk_size_left_the_key_stay_valid() -> None:
    """A key is the SHA-256 of its JSON payload; with ntk.chunk_size at its default (null) it is exactly the key
    written before chunk_size was left out, and another chunk_size gives the same key."""
    import hashlib
    import json

    from ntkexp.scoring.keys import SCORE_SCHEMA, cache_key

    conventions = {"ntk": {"bn_mode": "per_sample", "batch_size": 64, "chunk_size": None}, "seed": 0}
    written = hashlib.sha256(json.dumps({"schema": SCORE_SCHEMA, "purpose": "score", "arch": "a", **conventions},
                                        sort_keys=True, default=str).encode()).hexdigest()
    assert cache_key("score", "a", conventions) == written
    assert cache_key("score", "a", {**conventions, "ntk": {**conventions["ntk"], "chunk_size": 8}}) == written
    assert cache_key("score", "a", {**conventions, "ntk": {**conventions["ntk"], "batch_size": 32}}) != written
    # ntk.implementation came after these keys were written: left out, at any value
    for impl in ("auto", "batched_vjp"):
        assert cache_key("score", "a", {**conventions, "ntk": {**conventions["ntk"], "implementation": impl}}) == written
