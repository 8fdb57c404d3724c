"""ntkexp as a library (ntkexp.empirical_ntk, ntkexp.score) on a torchvision-free model defined here, checked against
a per-sample gradient loop written in this file, and the README's example run as written."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

import ntkexp
from ntkexp.metrics import register_metric

from .conftest import ROOT


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(6, 5))


def loop_ntk(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Per-sample BN by hand: each image alone through the network in train mode (its own batch statistics), the
    gradient of its summed logits w.r.t. every parameter, Theta = G G^T (on a copy: the running stats move)."""
    import copy

    net = copy.deepcopy(model).train()
    params = list(net.parameters())
    rows = []
    for i in range(len(images)):
        out = net(images[i:i + 1]).sum()
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(out, params)]))
    g = torch.stack(rows).double()
    return g @ g.T


def test_empirical_ntk_matches_a_per_sample_gradient_loop_and_leaves_the_model_alone() -> None:
    model, images = small_model(), torch.randn(6, 3, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    theta = ntkexp.empirical_ntk(model, images, bn_mode="per_sample")
    assert theta.shape == (6, 6) and theta.dtype == torch.float64
    torch.testing.assert_close(theta, loop_ntk(model, images), rtol=1e-4, atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # running stats untouched


def test_score_computes_lga_and_ncn_from_that_kernel_and_records_the_conventions() -> None:
    model, images = small_model(), torch.randn(8, 3, 8, 8)
    labels = torch.tensor([0, 1, 0, 1, 2, 2, 3, 4])
    result = ntkexp.score(model, images, labels, metrics=["lga", "ncn", "fnorm"])
    theta = loop_ntk(model, images).numpy()
    same = (labels[:, None] == labels[None, :]).double().numpy() * 2 - 1
    tc, lc = theta - theta.mean(), same - same.mean()
    assert result["lga"] == pytest.approx((tc * lc).sum() / (np.linalg.norm(tc) * np.linalg.norm(lc)), rel=1e-4)
    eig = np.linalg.eigvalsh(theta)
    assert result["ncn"] == pytest.approx(-eig[-1] / eig[0], rel=1e-3)
    assert result["fnorm"] == pytest.approx(np.linalg.norm(theta), rel=1e-4)
    conventions = result.conventions
    assert conventions["ntk"]["bn_mode"] == "per_sample" and conventions["ntk"]["reduction"] == "sum"
    assert conventions["batch"] == 8 and conventions["num_classes"] == 5 and result.flags == {"lga": [], "ncn": [],
                                                                                               "fnorm": []}


def test_score_refuses_bad_input_in_one_clear_line() -> None:
    model, images, labels = small_model(), torch.randn(4, 3, 8, 8), torch.arange(4)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        ntkexp.score(model, images, labels[:3])
    with pytest.raises(ValueError, match="NaN or infinite"):
        ntkexp.score(model, images * float("nan"), labels)
    with pytest.raises(ValueError, match="ranks a set of archs"):
        ntkexp.score(model, images, labels, metrics=["tegnas"])
    with pytest.raises(Exception, match="nope"):
        ntkexp.score(model, images, labels, metrics=["nope"])
    with pytest.raises(ValueError, match=r"held-out labelled batch \(ntkexp.score\(..., held_out=\(images, labels\)\)"):
        ntkexp.score(model, images, labels, metrics=["ntk_mse"])
    assert np.isfinite(ntkexp.score(model, images, labels, metrics=["ntk_mse"],
                                    held_out=(torch.randn(4, 3, 8, 8), labels)).values["ntk_mse"])


def test_a_metric_registered_from_user_code_is_scored_by_name() -> None:
    @register_metric("kernel_trace_test", direction=1)
    def kernel_trace(ctx):  # type: ignore[no-untyped-def]
        return float(torch.trace(ctx.ntk().kernel))

    model, images = small_model(), torch.randn(5, 3, 8, 8)
    result = ntkexp.score(model, images, torch.arange(5), metrics=["kernel_trace_test"])
    assert result["kernel_trace_test"] == pytest.approx(float(torch.trace(loop_ntk(model, images))), rel=1e-4)


def test_the_readme_library_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- library-example.*?-->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "the README's library example is missing"
    exec(compile(block.group(1), "README.md", "exec"), {})  # noqa: S102 (the README's own code)
    printed = capsys.readouterr().out
    lga = float(printed.split()[0])
    assert "per_sample" in printed and -1.0 <= lga <= 1.0  # LGA is a correlation


class _Tuple(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
        return self.lin(x.flatten(1)), x


@pytest.mark.parametrize("case, match", [
    ("labels_fraction", r"labels must be whole class numbers"),
    ("labels_negative", r"labels must be classes 0..2 .* got -1"),
    ("labels_too_big", r"labels must be classes 0..2 .* got 3"),
    ("no_parameters", r"model has no parameters"),
    ("tuple_output", r"model must return one logits tensor"),
    ("float64_images", r"images are torch.float64 but the model's parameters are torch.float32"),
    ("held_out_lengths", r"4 images but 3 held_out labels"),
    ("int_images", r"images are torch.int64"),
])
def test_score_refuses_bad_arguments_in_one_line_naming_them(case: str, match: str) -> None:
    """Some metrics accepted labels 5.5 or -1, others raised torch errors; a parameterless model raised a bare
    StopIteration: each bad argument is one ValueError naming it."""
    import ntkexp

    torch.manual_seed(0)
    model: torch.nn.Module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x, y = torch.randn(4, 1, 2, 2), torch.tensor([0, 1, 2, 0])
    kwargs: dict = {}
    if case == "labels_fraction":
        y = torch.tensor([0.0, 1.5, 2.0, 0.0])
    elif case == "labels_negative":
        y = torch.tensor([0, -1, 2, 0])
    elif case == "labels_too_big":
        y = torch.tensor([0, 3, 2, 0])
    elif case == "no_parameters":
        model = torch.nn.Flatten()
    elif case == "tuple_output":
        model = _Tuple()
    elif case == "float64_images":
        x = x.double()
    elif case == "held_out_lengths":
        kwargs["held_out"] = (torch.randn(4, 1, 2, 2), torch.tensor([0, 1, 2]))
    elif case == "int_images":
        x = torch.ones(4, 1, 2, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match=match):
        ntkexp.score(model, x, y, metrics=["lga", "ntk_mse"] if case == "held_out_lengths" else ["lga"], **kwargs)
