"""NAS-Bench-101 and the NDS spaces: random archs build, train a step and give an NTK; counts and hashes match the
benchmark records; the NDS JSON loader reads the published layout."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ntkexp.benchmarks import BenchmarkConfig, load_ground_truth
from ntkexp.data import MissingFileError
from ntkexp.main import run
from ntkexp.ntk import NTKConfig, empirical_ntk
from ntkexp.scoring import build_space
from ntkexp.spaces import SPACES, InvalidArchError, NASBench101, NDSSpace
from ntkexp.spaces.nasbench101 import from_official, module_hash
from ntkexp.spaces.nds import SPACE_OPS, parse_genotype

from .conftest import make_cfg, shared

DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
            "reduce_concat=[2, 3, 4, 5])")
SMALL = {"nasbench101": dict(stem_channels=8, num_stacks=2, cells_per_stack=1),
         **{f"nds_{v}": dict(C=4, layers=3) for v in SPACE_OPS}}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_twenty_random_archs_build_step_and_give_an_ntk(name: str) -> None:
    space = build_space(name, SMALL[name])
    rng = np.random.default_rng(0)
    archs: set[str] = set()
    for _ in range(500):
        archs.add(space.sample(rng))
        if len(archs) == 20:
            break
    assert len(archs) == 20
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    for i, arch in enumerate(sorted(archs)):
        assert space.validate(arch) == arch
        net = space.build(arch, num_classes=10)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        assert np.isfinite(float(loss.detach()))
        if i < 3:  # the NTK is slower; a few per space
            before = [id(p) for p in net.parameters()]
            kernel = empirical_ntk(net, x, NTKConfig(bn_mode="train")).kernel
            assert kernel.shape == (4, 4) and torch.isfinite(kernel).all()
            assert [id(p) for p in net.parameters()] == before  # the network is left as it was
        child = space.mutate(arch, rng)
        assert child != arch and space.validate(child) == child


def test_darts_v2_parameter_count_matches_the_published_one() -> None:
    # DARTS (Liu et al.) reports 3.349342 M parameters for DARTS_V2 at C=36, 20 cells, no auxiliary head
    net = NDSSpace("darts", C=36, layers=20).build(DARTS_V2, num_classes=10)
    assert sum(p.numel() for p in net.parameters()) == 3_349_342


def test_nb101_parameter_counts_and_hashes_match_the_records() -> None:
    data = json.loads(shared("nb101_vis_1k/nb101_1k.json").read_text())
    codes = {-1: "input", -2: "output", 0: "conv3x3-bn-relu", 1: "conv1x1-bn-relu", 2: "maxpool3x3"}
    space = NASBench101()
    for i in (0, 1, 7, 42, 500):
        arch = from_official(data["adjacency"][i], data["operations"][i], codes)
        assert module_hash(arch) == data["key"][i]
        net = space.build(arch, num_classes=10)
        assert sum(p.numel() for p in net.parameters()) == data["trainable_parameters"][i]


def test_nb101_pickle_layout_loader(tmp_path: Path) -> None:
    source = shared("nb101_naslib_30archs/nb101_dummy.pkl")
    gt = load_ground_truth(BenchmarkConfig(table=str(tmp_path / "t.csv"), source=str(source),
                                           source_format="nb101_pkl"))
    with open(source, "rb") as fh:
        raw = pickle.load(fh)
    key, (fixed, computed) = next(iter(raw.items()))
    row = gt.frame[gt.frame["hash"] == key].iloc[0]
    assert row["cifar10"] == pytest.approx(100 * np.mean([r["final_test_accuracy"] for r in computed[108]]))
    assert module_hash(row["arch_str"]) == key
    assert sum(p.numel() for p in NASBench101().build(row["arch_str"], 10).parameters()) == fixed["trainable_parameters"]


def test_nb101_rejects_invalid_cells() -> None:
    space = NASBench101()
    with pytest.raises(InvalidArchError, match="upper triangular"):
        space.validate("0010|input,output")
    with pytest.raises(InvalidArchError):
        space.validate("00000|input,output")
    too_many = np.triu(np.ones((7, 7), dtype=int), 1)
    with pytest.raises(InvalidArchError, match="edges"):
        from_official(too_many, ["input", *["conv3x3-bn-relu"] * 5, "output"])


def test_nds_json_loader_on_the_published_layout(tmp_path: Path) -> None:
    geno = parse_genotype(DARTS_V2)
    records = [{"net": {"genotype": {k: geno[k] for k in ("normal", "normal_concat", "reduce", "reduce_concat")},
                        "width": w, "depth": d, "aux": False, "drop_prob": 0.0},
                "test_ep_top1": [50.0, 20.0, err]} for w, d, err in ((8, 5, 7.5), (12, 8, 6.25))]
    (tmp_path / "DARTS.json").write_text(json.dumps(records))
    cfg = BenchmarkConfig(table=str(tmp_path / "nds.csv"), source=str(tmp_path / "DARTS.json"), source_format="nds_json")
    gt = load_ground_truth(cfg)
    assert sorted(gt.frame["cifar10"]) == [92.5, 93.75]
    space = SPACES.get("nds_darts")(C=99, layers=99)
    arch = gt.frame.loc[gt.frame["cifar10"] == 93.75, "arch_str"].iloc[0]
    net = space.build(arch, num_classes=10)  # the arch's own width and depth win over the space's defaults
    assert len(net.cells) == 8 and net.stem[0].out_channels == 3 * 12


def test_missing_nds_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = make_cfg(["search_space=nds_enas", f"paths.data_root={tmp_path}", "logger=none"], tmp_path)
    with pytest.raises(MissingFileError, match="ENAS.json"):
        run(cfg)


@pytest.mark.parametrize("space_cfg,extra", [
    ("nasbench101", ["search_space.kwargs.stem_channels=8", "search_space.kwargs.cells_per_stack=1"]),
    ("darts_swap", ["search_space.kwargs.C=4", "search_space.kwargs.layers=3"]),
])
def test_correlate_on_the_real_data_here(tmp_path: Path, space_cfg: str, extra: list[str]) -> None:
    root = shared("")
    cfg = make_cfg([f"search_space={space_cfg}", *extra, f"paths.data_root={root}",
                    "n_archs=6", "ntk.batch_size=8", "metric=ntk", "logger=csv", "task.progress=false"], tmp_path)
    assert cfg.dataset.name == "cifar10_probe"  # the space's natural data set, shipped with ntkexp
    summary = run(cfg)
    assert summary["n_archs"] == 6 and "validation" in summary["accuracy_label"]


def test_nb101_cell_with_an_aliased_output_projection_keeps_its_weights() -> None:
    """nasbench-pytorch registers the input->output projection twice (``input_op[-1]`` is ``last_inop``): the NTK must
    equal the loop reference and leave the real parameters in place, so training and ``.cpu()`` still work after it."""
    from ntkexp.ntk import ntk_reference

    arch = ("0101011001000000010000000100000001000000010000000|input,conv1x1-bn-relu,maxpool3x3,maxpool3x3,"
            "maxpool3x3,maxpool3x3,output")
    torch.manual_seed(0)
    net = NASBench101(stem_channels=8, num_stacks=2, cells_per_stack=1).build(arch, num_classes=10)
    assert any(m.last_inop is m.input_op[-1] for m in net.modules() if hasattr(m, "last_inop"))
    x = torch.randn(6, 3, 16, 16)
    for bn_mode in ("train", "eval"):
        cfg = NTKConfig(bn_mode=bn_mode, dtype="float64")
        first = empirical_ntk(net, x, cfg).kernel
        again = empirical_ntk(net, x, cfg).kernel
        ref = ntk_reference(net, x, cfg)
        assert torch.equal(first, again) and float((first - ref).norm() / ref.norm()) < 1e-9
    assert not any(torch._C._functorch.is_functorch_wrapped_tensor(p) for p in net.parameters())
    net.cpu()
    torch.nn.functional.cross_entropy(net(x), torch.arange(6) % 10).backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_the_swap_nas_darts_space_names_itself_for_its_benchmark_not_nds() -> None:
    """One name per concept: search_space=darts_swap (SWAP-NAS's archs) is recorded as darts_swap, not nds_darts."""
    cfg = make_cfg(["search_space=darts_swap"])
    space = SPACES.get(cfg.search_space.name)(**cfg.search_space.kwargs)
    assert cfg.search_space.name == "darts_swap" and space.describe()["name"] == "darts_swap"
    assert "darts_swap" in space.label() and "NDS" not in space.label()
    assert SPACES.get("nds_darts")().describe()["name"] == "nds_darts"


def test_an_nds_genotype_listed_twice_is_averaged_with_a_warning_naming_it(tmp_path, caplog) -> None:
    """NDS JSON with one genotype at 90 % and again at 20 %: the first was kept silently; every converter now merges an
    arch's records the same way (averaged) and says which arch disagreed."""
    import json

    from ntkexp.benchmarks.nds import convert_nds_json

    from .conftest import nds_darts_records

    records = nds_darts_records()[:2]
    twin = json.loads(json.dumps(records[0]))
    records[0]["test_ep_top1"] = [50.0, 10.0]  # 90 %
    twin["test_ep_top1"] = [50.0, 80.0]  # 20 %
    source = tmp_path / "DARTS.json"
    source.write_text(json.dumps([records[0], records[1], twin]))
    with caplog.at_level("WARNING"):
        frame = convert_nds_json(source, tmp_path / "out.parquet")
    assert len(frame) == 2
    assert frame["cifar10"].iloc[0] == pytest.approx(55.0)
    assert "different numbers" in caplog.text and "[90.0, 20.0]" in caplog.text
