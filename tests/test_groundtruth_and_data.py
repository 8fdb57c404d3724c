"""Ground-truth tables (official NATS loader, third-party CSV, errors) and the data readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ntkexp.benchmarks import BenchmarkConfig, load_ground_truth
from ntkexp.data import ArrayDataModule, DataConfig, MissingFileError, load_arrays
from ntkexp.data.datamodule import TensorBatches

from .conftest import DIGITS_TABLE, shared


def test_official_nats_files_are_converted_once_to_a_table(tmp_path: Path) -> None:
    source = shared("nats_tss_sample_archs")
    table = tmp_path / "nb201.csv"
    gt = load_ground_truth(BenchmarkConfig(table=str(table), source=str(source)))
    assert table.exists() and len(gt) == 3
    # NATS-Bench record of arch 11 (mean of seeds 777/888/999 at epoch 199, see PROVENANCE.md)
    arch11 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    acc = {k: gt.accuracy([arch11], k)[0] for k in ("cifar10", "cifar100", "ImageNet16-120")}
    assert acc["cifar10"] == pytest.approx(91.5833, abs=1e-3)
    assert acc["cifar100"] == pytest.approx(67.6067, abs=1e-3)
    assert acc["ImageNet16-120"] == pytest.approx(30.1667, abs=1e-3)
    # the second load reads the converted table (the source is unchanged: no second conversion)
    written = table.stat().st_mtime_ns
    again = load_ground_truth(BenchmarkConfig(table=str(table), source=str(source)))
    assert again.accuracy([arch11], "cifar10")[0] == pytest.approx(acc["cifar10"]) and table.stat().st_mtime_ns == written
    # a converted table whose configured source has gone is not used blindly; as a plain table it still is
    with pytest.raises(MissingFileError, match="was converted from"):
        load_ground_truth(BenchmarkConfig(table=str(table), source=str(tmp_path / "gone")))
    assert len(load_ground_truth(BenchmarkConfig(table=str(table)))) == 3


def test_third_party_table_columns_are_recognised() -> None:
    gt = load_ground_truth(BenchmarkConfig(table=str(shared("nb201_nats_tss_200ep/nats_bench.csv"))))
    assert len(gt) == 15625 and {"cifar10", "cifar100", "ImageNet16-120"} <= set(gt.columns)
    assert gt.frame["cifar10"].max() == pytest.approx(94.3733, abs=1e-3)


def test_missing_benchmark_says_which_file_and_how_to_get_it(tmp_path: Path) -> None:
    cfg = BenchmarkConfig(table=str(tmp_path / "t.csv"), source=str(tmp_path / "NATS"), how_to_get="Download X.")
    with pytest.raises(MissingFileError) as info:
        load_ground_truth(cfg)
    msg = str(info.value)
    assert str(tmp_path / "t.csv") in msg and str(tmp_path / "NATS") in msg and "Download X." in msg


def test_truncated_table_is_a_clean_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1\x00\x01")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_ground_truth(BenchmarkConfig(table=str(bad)))


def test_missing_dataset_column_names_the_mismatch() -> None:
    gt = load_ground_truth(BenchmarkConfig(table=str(DIGITS_TABLE)))
    with pytest.raises(ValueError, match="ImageNet16-120"):
        gt.require("ImageNet16-120")


def test_cifar_npz_reader_on_real_images() -> None:
    path = shared("cifar10_partial/cifar10_partial.npz")
    train, test = load_arrays("npz", path=path)
    assert train.x.shape == (4660, 3, 32, 32) and test.x.shape == (932, 3, 32, 32)
    assert train.y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]  # the official CIFAR-10 order


def test_cifar_pickle_reader(tmp_path: Path) -> None:
    """The python-pickle CIFAR-10 layout, written here in miniature."""
    import pickle

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(base / name, "wb") as fh:
            pickle.dump({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}, fh)
    train, test = load_arrays("cifar10", root=tmp_path)
    assert train.x.shape == (20, 3, 32, 32) and test.y.tolist() == [0, 1, 2, 3]
    with pytest.raises(MissingFileError, match="cifar-100-python"):
        load_arrays("cifar100", root=tmp_path)


def test_digits_datamodule_probe_batch_is_fixed_by_seed() -> None:
    dm = ArrayDataModule(DataConfig(name="digits", kind="digits", path=None, in_channels=1, resolution=8, mean=[0.3],
                                     std=[0.4], benchmark_key="digits"))
    x1, y1 = dm.probe_batch(16, seed=3)
    x2, y2 = dm.probe_batch(16, seed=3)
    x3, _ = dm.probe_batch(16, seed=4)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert x1.shape == (16, 1, 8, 8)
    batches = list(dm.train_dataloader())
    n, b = len(dm.train_tensors[1]), dm.cfg.batch_size
    assert len(batches) == dm.steps_per_epoch == -(-n // b)  # one epoch: the training set in full batches
    assert all(len(batch[1]) == b for batch in batches)


def _stream_batches(n: int, batch: int, steps: int, seed: int, groups: list[int]) -> list[torch.Tensor]:
    """The label batches of ``steps`` stream steps, taken as consecutive epochs of the sizes in ``groups``."""
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    y = torch.arange(n)
    out: list[torch.Tensor] = []
    start = 0
    for size in groups:
        tb = TensorBatches(x, y, batch, None, seed, start_fn=lambda s=start: s, steps=size)
        out += [yb for _, yb in tb]
        start += size
    assert start == steps
    return out


def test_training_stream_is_one_shuffled_pass_after_another_whatever_the_epoch_length() -> None:
    n, batch = 50, 16  # 4 steps = 64 images: the first pass of 50 and 14 of the second
    one_epoch = _stream_batches(n, batch, 7, seed=3, groups=[7])
    per_step = _stream_batches(n, batch, 7, seed=3, groups=[1] * 7)
    mixed = _stream_batches(n, batch, 7, seed=3, groups=[3, 4])
    for other in (per_step, mixed):
        assert all(torch.equal(a, b) for a, b in zip(one_epoch, other))
    flat = torch.cat(one_epoch)
    assert sorted(flat[:n].tolist()) == list(range(n))  # the first 50 images seen are every image once
    assert sorted(flat[n : 2 * n].tolist()) == list(range(n))  # and so are the next 50 (second pass)
    assert not torch.equal(flat[:n], flat[n : 2 * n])  # reshuffled
    assert not torch.equal(torch.cat(_stream_batches(n, batch, 7, seed=4, groups=[7])), flat)


def _table_with(tmp_path: Path, cells: dict[int, object]) -> Path:
    frame = pd.read_csv(DIGITS_TABLE)
    frame["digits"] = frame["digits"].astype(object)
    for row, value in cells.items():
        frame.loc[row, "digits"] = value
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def test_archs_without_accuracy_are_left_out_loudly_and_never_drawn(tmp_path: Path, caplog) -> None:
    from ntkexp.scoring import RunContext, choose_archs

    from .conftest import DIGITS, make_cfg

    path = _table_with(tmp_path, {0: "n/a", 1: None, 2: ""})
    table = pd.read_csv(DIGITS_TABLE)
    cfg = make_cfg([*DIGITS, f"search_space.benchmark.table={path}", "n_archs=null", "threads=1"], tmp_path)
    with caplog.at_level("WARNING", logger="ntkexp"):
        archs = choose_archs(RunContext.build(cfg))
    assert len(archs) == len(table) - 3 and not set(table["arch_str"].head(3)) & set(archs)
    assert "3 of the" in caplog.text


def test_text_where_an_accuracy_belongs_is_refused_with_file_column_and_row(tmp_path: Path) -> None:
    from ntkexp.scoring import RunContext

    from .conftest import DIGITS, make_cfg

    path = _table_with(tmp_path, {4: "ninety"})
    cfg = make_cfg([*DIGITS, f"search_space.benchmark.table={path}", "threads=1"], tmp_path)
    with pytest.raises(ValueError, match=r"column 'digits', row 5 .*'ninety' is not a number"):
        RunContext.build(cfg)


@pytest.mark.parametrize("bad", ["inf", "-inf", "1000.0", "-5"])
def test_an_accuracy_outside_0_to_100_is_refused_with_file_column_and_row(tmp_path: Path, bad: str) -> None:
    """+inf would rank best in tau and rho, 1000.0 (a table in per-mille or a typo) would dominate: refused."""
    from ntkexp.scoring import RunContext

    from .conftest import DIGITS, make_cfg

    path = _table_with(tmp_path, {4: bad})
    cfg = make_cfg([*DIGITS, f"search_space.benchmark.table={path}", "threads=1"], tmp_path)
    with pytest.raises(ValueError, match=r"column 'digits', row 5 .* is not an accuracy in percent"):
        RunContext.build(cfg)


def test_a_csv_cut_inside_its_last_row_loses_that_row_with_a_warning(tmp_path: Path, caplog) -> None:
    """A download or copy cut mid-row turns 91.10 into 9.1 (or 9.0): the row has no newline, so it is left out,
    named, never used."""
    from ntkexp.benchmarks import BenchmarkConfig, load_ground_truth

    whole = pd.read_csv(DIGITS_TABLE)
    text = DIGITS_TABLE.read_text().rstrip("\n")
    path = tmp_path / "cut.csv"
    path.write_text(text[:-2])  # the last accuracy loses its last two characters
    with caplog.at_level("WARNING", logger="ntkexp"):
        gt = load_ground_truth(BenchmarkConfig(table=str(path), allow_incomplete=True))
    assert len(gt) == len(whole) - 1 and whole["arch_str"].iloc[-1] not in gt.archs()
    assert "does not end in a newline" in caplog.text and f"row {len(whole)}" in caplog.text
    path.write_text(text + "\n")
    assert len(load_ground_truth(BenchmarkConfig(table=str(path), allow_incomplete=True))) == len(whole)


@pytest.mark.parametrize("dtype", ["float32", "int64", "float64"])
def test_npz_images_on_the_0_255_scale_in_any_dtype_read_as_the_uint8_ones(tmp_path: Path, dtype: str) -> None:
    """float32 or int64 images holding 0..255 were taken as already in [0, 1] (LGA moved by up to .05): the scale
    is decided from dtype and range, so they read exactly as the uint8 original."""
    from ntkexp.data import load_arrays

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 3, 8, 8), dtype=np.uint8)
    y = np.arange(6) % 3
    np.savez(tmp_path / "u8.npz", train_x=x, train_y=y, test_x=x, test_y=y)
    np.savez(tmp_path / "other.npz", train_x=x.astype(dtype), train_y=y, test_x=x.astype(dtype), test_y=y)
    (ref, _), (got, _) = (load_arrays("npz", path=tmp_path / n) for n in ("u8.npz", "other.npz"))
    as_unit = (lambda a: a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64))
    np.testing.assert_allclose(as_unit(got.x), as_unit(ref.x), atol=1e-6)
    np.savez(tmp_path / "unit.npz", train_x=x / 255.0, train_y=y, test_x=x / 255.0, test_y=y)
    np.testing.assert_allclose(as_unit(load_arrays("npz", path=tmp_path / "unit.npz")[0].x), as_unit(ref.x),
                               atol=1e-6)


@pytest.mark.parametrize("bad", [np.full((2, 3, 4, 4), 300.0), np.full((2, 3, 4, 4), -1.0),
                                 np.full((2, 3, 4, 4), np.inf), np.full((2, 3, 4, 4), 1000, dtype=np.int64)])
def test_npz_images_on_no_known_scale_are_refused_in_one_line(tmp_path: Path, bad: np.ndarray) -> None:
    from ntkexp.data import load_arrays

    y = np.array([0, 1])
    np.savez(tmp_path / "bad.npz", train_x=bad, train_y=y, test_x=bad, test_y=y)
    with pytest.raises(ValueError, match=r"neither \[0, 1\] nor 0..255"):
        load_arrays("npz", path=tmp_path / "bad.npz")


def _cifar_folder(root: Path, key: object, label_key: object) -> None:
    import pickle

    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {key: rng.integers(0, 256, size=(4, 3072), dtype=np.uint8), label_key: [0, 1, 2, 3]}
        (base / name).write_bytes(pickle.dumps(batch))


def test_cifar_pickles_with_bytes_keys_read_like_the_release(tmp_path: Path) -> None:
    from ntkexp.data import load_arrays

    _cifar_folder(tmp_path, b"data", b"labels")
    train, test = load_arrays("cifar10", root=tmp_path)
    assert train.x.shape == (20, 3, 32, 32) and list(test.y) == [0, 1, 2, 3]


def test_cifar_pickles_without_the_data_entry_are_named(tmp_path: Path) -> None:
    from ntkexp.data import load_arrays

    _cifar_folder(tmp_path, "images", "labels")
    with pytest.raises(ValueError, match=r"has no 'data' entry .* not the python release"):
        load_arrays("cifar10", root=tmp_path)


def test_an_empty_nds_file_is_named_as_the_source(tmp_path: Path) -> None:
    from ntkexp.benchmarks.nds import convert_nds_json

    (tmp_path / "DARTS.json").write_text("[]")
    with pytest.raises(ValueError, match=r"DARTS.json holds no records"):
        convert_nds_json(tmp_path / "DARTS.json", tmp_path / "out.parquet")


def test_local_cifar_files_that_are_not_the_release_are_refused_unless_asked_for(tmp_path: Path) -> None:
    """A validly formatted CIFAR-10 folder of noise images was accepted as "CIFAR-10 (python release)": each file is
    checked against its published MD5 when first read; dataset.verify=false takes a deliberate subset."""
    from ntkexp.data import load_arrays
    from ntkexp.data.sources import CIFAR_MD5, VERIFIED, verify_files

    _cifar_folder(tmp_path, "data", "labels")
    with pytest.raises(ValueError, match=r"data_batch_1 is not the published CIFAR10 file .* dataset.verify=false"):
        load_arrays("cifar10", root=tmp_path, verify=True)
    assert load_arrays("cifar10", root=tmp_path, verify=False)[0].x.shape == (20, 3, 32, 32)
    # a file that matches is recorded and not read again until it changes
    import hashlib
    import json

    base = tmp_path / "cifar-10-batches-py"
    published = {n: hashlib.md5((base / n).read_bytes()).hexdigest() for n in CIFAR_MD5["cifar10"]}
    verify_files(base, published, "CIFAR10")
    assert set(json.loads((base / VERIFIED).read_text())) == set(published)
    (base / "test_batch").write_bytes(b"changed")
    with pytest.raises(ValueError, match="test_batch is not the published"):
        verify_files(base, published, "CIFAR10")
