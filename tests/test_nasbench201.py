"""NAS-Bench-201 space: official index mapping, exact network (parameter counts), sampling, mutation, errors."""

from __future__ import annotations

import bz2
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntkexp.spaces import InvalidArchError, NASBench201
from ntkexp.spaces.nasbench201 import NUM_ARCHS, OPS, parse_string

from .conftest import shared

SPACE = NASBench201()


def test_index_string_round_trip_over_all_15625_archs() -> None:
    strings = [SPACE.arch_of(i) for i in range(NUM_ARCHS)]
    assert len(set(strings)) == NUM_ARCHS
    assert all(SPACE.index_of(s) == i for i, s in enumerate(strings))


def test_index_order_is_the_official_one() -> None:
    meta = shared("nats_tss_sample_archs/meta.pickle.pbz2")
    with bz2.open(meta, "rb") as fh:
        official = pickle.load(fh)["meta_archs"]
    assert [SPACE.arch_of(i) for i in range(NUM_ARCHS)] == official


def test_index_order_matches_the_200_epoch_table() -> None:
    import pandas as pd

    table = pd.read_csv(shared("nb201_nats_tss_200ep/nats_bench.csv"))
    idx = np.random.default_rng(0).choice(len(table), size=500, replace=False)
    assert all(SPACE.arch_of(int(i)) == table["ArchitectureString"].iloc[i] for i in idx)


@pytest.mark.parametrize("index", [0, 11, 284])
def test_parameter_counts_equal_the_official_records(index: int) -> None:
    with bz2.open(shared(f"nats_tss_sample_archs/{index:06d}.pickle.pbz2"), "rb") as fh:
        record = pickle.load(fh)["200"]
    assert SPACE.arch_of(index) == record["arch_str"]
    for dataset, classes in (("cifar10", 10), ("cifar100", 100), ("ImageNet16-120", 120)):
        official_mb = record["all_results"][(dataset, 777)]["params"]
        net = SPACE.build(record["arch_str"], num_classes=classes)
        assert sum(p.numel() for p in net.parameters()) / 1e6 == pytest.approx(official_mb, abs=1e-9)


def test_known_parameter_count_without_shared_data() -> None:
    # arch 0 of the benchmark: 0.129306 M parameters on CIFAR-10 (NATS-Bench record)
    net = SPACE.build(SPACE.arch_of(0), num_classes=10)
    assert sum(p.numel() for p in net.parameters()) == 129306


def test_sampling_is_seeded_and_uniform_over_ops() -> None:
    a = [SPACE.sample(np.random.default_rng(7)) for _ in range(3)]
    assert len(set(a)) == 1
    rng = np.random.default_rng(0)
    ops = [op for _ in range(2000) for op in parse_string(SPACE.sample(rng))]
    counts = np.array([ops.count(o) for o in OPS]) / len(ops)
    assert np.allclose(counts, 0.2, atol=0.02)


def test_mutation_changes_exactly_one_edge() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = SPACE.sample(rng)
        child = SPACE.mutate(arch, rng)
        assert sum(a != b for a, b in zip(parse_string(arch), parse_string(child))) == 1


@pytest.mark.parametrize("bad", ["", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~0|+|none~0|+|none~0|none~1|none~2|", 42])
def test_malformed_arch_strings_get_a_clear_error(bad: object) -> None:
    with pytest.raises(InvalidArchError):
        SPACE.validate(bad)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="|+~_0123abcdeilnnoprstvxkz", max_size=80))
def test_fuzzed_strings_are_valid_or_cleanly_refused(text: str) -> None:
    try:
        canonical = SPACE.validate(text)
    except InvalidArchError:
        return
    assert SPACE.arch_of(SPACE.index_of(canonical)) == canonical


def test_reduced_width_and_depth() -> None:
    import torch

    net = NASBench201(C=4, N=1).build(SPACE.arch_of(5), num_classes=3, in_channels=1)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(ValueError):
        NASBench201(C=0)
